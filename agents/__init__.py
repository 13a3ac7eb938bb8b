"""The Faust app of hermes-stream: thin agents around pure functions in ``hermes_stream``.

Run it with ``hermes-stream worker`` (the console script builds the app from
the environment with :func:`create_app` and runs a Faust worker).
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
