"""The one place JSON is encoded and decoded.

The producer SDK, the worker, the sink and the CLI all use these two
functions, so every part agrees on the options: UTF-8 bytes out, non-string
dict keys allowed, NaN and Infinity rejected on both sides.
"""

from __future__ import annotations

from typing import Any

import orjson

from hermes_stream.exceptions import JSONError

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """Encode *value* as compact UTF-8 JSON."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        raise JSONError(f"cannot encode as JSON: {exc}") from exc


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode JSON; NaN and Infinity are not JSON and are refused."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise JSONError(f"not valid JSON: {exc}") from exc
