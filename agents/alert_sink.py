"""Alert sink: ``hermes.alerts`` → the DuckDB ``alerts`` table.

Run: ``hermes-stream worker`` (beside ingest; both write through one DuckDB writer).

Alerts come from two places (the errors agent and, for session budgets, the
ingest agent); storing what is on the topic keeps the table and the topic
the same. A batch's offsets are committed once its rows are durable; rows
are upserted by ``alert_id``, so a replay changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import faust
from faust.types import StreamT

from hermes_stream import codec
from hermes_stream.alerts import table_row
from hermes_stream.exceptions import JSONError
from hermes_stream.schema import ALERTS
from hermes_stream.settings import Settings
from hermes_stream.store import SinkBatch, WriterProcess
from hermes_stream.topics import Topics

from .ingest import write_durably

log = logging.getLogger(__name__)

#: Longest wait, in seconds, before the alerts received are written.
WITHIN = 0.5


def register(app: faust.App, settings: Settings, writer: WriterProcess) -> None:
    source = app.topic(
        Topics(settings.topic_prefix).alerts,
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        partitions=settings.partitions,
    )

    async def alert_sink(alerts: StreamT[bytes]) -> AsyncIterator[None]:
        stream = cast(faust.Stream[bytes], alerts)
        try:
            async for values in stream.take(1000, within=WITHIN):
                batch = SinkBatch()
                for value in values:
                    row = alert_row(value)
                    if row is not None:
                        batch.add(ALERTS, ALERTS.row(row))
                await write_durably(writer, batch)  # the batch is acknowledged when the loop moves on
                yield None
        finally:
            writer.close()

    app.agent(source, name="alert_sink")(alert_sink)


def alert_row(value: bytes | None) -> dict[str, Any] | None:
    """The ``alerts`` row of a message on the alert topic; None (logged) if it is not an alert."""
    try:
        alert = codec.loads(value or b"")
        if not isinstance(alert, dict) or not alert.get("alert_id"):
            raise JSONError("not an alert object")
    except JSONError as exc:
        log.error("skipped a message on the alert topic: %s", exc)
        return None
    return table_row(alert)
