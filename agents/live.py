"""Live view on the worker's web server: ``GET /sessions/{session_id}`` and ``GET /stats``.

Run: ``hermes-stream worker`` serves it on ``HERMES_STREAM_WEB_HOST:HERMES_STREAM_WEB_PORT``.

``/sessions/{session_id}`` answers with the session's state as the sessions
table holds it, including what was folded since the last hand-over to
DuckDB. With several workers, any of them answers: the request is routed to
the worker that owns the session's partition.

``/stats`` answers with this worker's own sink counters: writes, records,
events and dead letters made durable in DuckDB since it started, when the
last write became durable, and the events folded but not yet handed over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust
from faust.types import TableT

from hermes_stream.sessions import SessionStats

Lookup = Callable[[str], SessionStats | None]
Stats = Callable[[], dict[str, Any]]


def register(app: faust.App, table: TableT[bytes, bytes], lookup: Lookup, stats: Stats) -> None:
    async def answer(web: Any, request: Any, session_id: str) -> Any:
        state = lookup(session_id)
        if state is None:
            return web.json({"error": f"no session {session_id!r} on this worker's partitions"}, status=404)
        return web.json({**state.row(), "live": not state.ended})

    routed: Any = app.table_route(table=table, match_info="session_id")(answer)

    @app.page("/sessions/{session_id}")
    async def session(web: Any, request: Any, session_id: str) -> Any:
        try:
            return await routed(web, request, session_id=session_id)
        except (TypeError, KeyError):  # no partition metadata yet: Faust fails to route
            return web.json({"error": "the worker is starting; try again in a moment"}, status=503)

    @app.page("/stats")
    async def counters(web: Any, request: Any) -> Any:
        return web.json(stats())
