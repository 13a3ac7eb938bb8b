"""Live view: ``GET /sessions/{session_id}`` on the worker's web server.

Run: ``hermes-stream worker`` serves it on ``HERMES_STREAM_WEB_HOST:HERMES_STREAM_WEB_PORT``.

Answers with the session's state as the sessions table holds it, including
what was folded since the last hand-over to DuckDB. With several workers,
any of them answers: the request is routed to the worker that owns the
session's partition.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust
from faust.types import TableT

from hermes_stream.sessions import SessionStats

Lookup = Callable[[str], SessionStats | None]


def register(app: faust.App, table: TableT[bytes, bytes], lookup: Lookup) -> None:
    async def answer(web: Any, request: Any, session_id: str) -> Any:
        stats = lookup(session_id)
        if stats is None:
            return web.json({"error": f"no session {session_id!r} on this worker's partitions"}, status=404)
        return web.json({**stats.row(), "live": not stats.ended})

    routed: Any = app.table_route(table=table, match_info="session_id")(answer)

    @app.page("/sessions/{session_id}")
    async def session(web: Any, request: Any, session_id: str) -> Any:
        try:
            return await routed(web, request, session_id=session_id)
        except (TypeError, KeyError):  # no partition metadata yet: Faust fails to route
            return web.json({"error": "the worker is starting; try again in a moment"}, status=503)
