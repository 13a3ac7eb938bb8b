"""Finding the Faust app package, which ships as ``hermes_stream.agents``.

The source tree keeps the agents in the top-level ``agents/`` folder. A wheel
maps that folder to ``hermes_stream/agents`` (a top-level ``agents`` package
would clash with other libraries, openai-agents among them); an editable
install, as in this repository's ``.venv``, imports it as ``agents`` from the
project root.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import faust

    from hermes_stream.settings import Settings


def agents_package() -> ModuleType:
    try:
        return importlib.import_module("hermes_stream.agents")
    except ModuleNotFoundError as exc:
        if exc.name != "hermes_stream.agents":
            raise
        return importlib.import_module("agents")


def create_app(settings: Settings, **options: Any) -> faust.App:
    app: faust.App = agents_package().create_app(settings, **options)
    return app
