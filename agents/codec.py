"""Faust codec ``hermes-json``: the project's one JSON module, registered with Faust."""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

from hermes_stream import codec

NAME = "hermes-json"


class HermesJSON(codecs.Codec):
    """The encoder and decoder of :mod:`hermes_stream.codec`."""

    def _dumps(self, obj: Any) -> bytes:
        return codec.dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return codec.loads(s)


def register() -> None:
    codecs.register(NAME, HermesJSON())
