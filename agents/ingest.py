"""Ingest: ``hermes.events`` → sessions table → DuckDB; bad input → ``hermes.dlq``.

Run: ``hermes-stream worker`` (one or more, sharing the topic's partitions).

Records are taken in batches; each batch is decoded and folded by
:func:`hermes_stream.pipeline.process_records` and session states are
written back to the table once per batch. The batch's rows are then written
to DuckDB while the next batch is processed (DuckDB works outside the GIL),
and its offsets are released for the commit only once they are durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.types import EventT, StreamT, TableT

from hermes_stream import codec
from hermes_stream.pipeline import BatchResult, process_records
from hermes_stream.records import Origin
from hermes_stream.sessions import SessionStats
from hermes_stream.settings import Settings
from hermes_stream.store import SinkBatch, Store
from hermes_stream.topics import Topics

from .codec import NAME as JSON

log = logging.getLogger(__name__)

_MAX_BACKOFF = 5.0


@dataclass(frozen=True)
class Outputs:
    """Where the agent publishes: topics in production, channels in agent tests."""

    dlq: faust.types.ChannelT[Any]
    sessions: faust.types.ChannelT[Any]


def register(app: faust.App, settings: Settings, outputs: Outputs | None = None) -> None:
    """Declare the ingest topics, the sessions table and the agent on *app*."""
    topics = Topics(settings.topic_prefix)
    source = app.topic(
        topics.events,
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        partitions=settings.partitions,
    )
    if outputs is None:
        outputs = Outputs(
            dlq=app.topic(topics.dlq, key_type=bytes, value_serializer=JSON, partitions=settings.partitions),
            sessions=app.topic(
                topics.sessions, key_type=bytes, value_serializer=JSON, partitions=settings.partitions
            ),
        )
    table = app.Table(
        "sessions",
        key_type=bytes,
        value_type=bytes,  # SessionStats as JSON from hermes_stream.codec
        partitions=settings.partitions,
        use_partitioner=True,  # a batch spans partitions: place each key by its own hash
    )
    ingest = Ingest(settings, table, Store(settings.db, settings.lock_timeout), outputs)
    app.agent(source, name="ingest")(ingest.run)


class Ingest:
    """The ingest agent: fold each batch, write it while folding the next."""

    def __init__(
        self, settings: Settings, table: TableT[bytes, bytes], store: Store, outputs: Outputs
    ) -> None:
        self.settings = settings
        self.table = table
        self.store = store
        self.outputs = outputs

    def lookup(self, session_id: str) -> SessionStats | None:
        state = self.table.get(session_id.encode())
        return SessionStats.from_dict(codec.loads(state)) if state else None

    async def run(self, events: StreamT[bytes]) -> AsyncIterator[None]:
        stream = cast(faust.Stream[bytes], events)  # take_events is on Stream, not StreamT
        flushing: asyncio.Future[None] | None = None
        # A flush is due every sink_interval; sink_batch is a ceiling that a
        # worker at ~10k records/s does not reach (Faust's take has stalled
        # here on a full buffer after a restart, so it is kept out of the way).
        batches = stream.take_events(self.settings.sink_batch, within=self.settings.sink_interval)
        try:
            async for batch in batches:
                for event in batch:
                    event.message.incref()  # released by flush() once the rows are durable
                result = self.fold(batch)
                waited = time.perf_counter()
                if flushing is not None:
                    await flushing  # one DuckDB write at a time, in batch order
                log.info("waited %.0f ms for the previous write", (time.perf_counter() - waited) * 1000)
                flushing = asyncio.ensure_future(self.flush(stream, batch, result))
                yield None
        finally:
            if flushing is not None:  # let the last batch commit on a clean stop
                with contextlib.suppress(asyncio.CancelledError):
                    await flushing

    def fold(self, batch: Sequence[EventT[Any]]) -> BatchResult:
        """Decode and fold a batch; write the touched sessions back to the table."""
        started = time.perf_counter()
        records = [(e.message.value, _origin(e)) for e in batch]
        result = process_records(records, self.lookup, self.settings.max_record_bytes)
        for session_id, stats in result.sessions.items():
            self.table[session_id.encode()] = codec.dumps(stats.to_dict())
        log.info(
            "batch of %d records, %d events, %d dead letters folded in %.0f ms",
            len(batch),
            result.events,
            len(result.dead_letters),
            (time.perf_counter() - started) * 1000,
        )
        return result

    async def flush(
        self, stream: faust.Stream[bytes], batch: Sequence[EventT[Any]], result: BatchResult
    ) -> None:
        """Make a batch durable and published, then release its records for the commit.

        Runs while the next batch is folded. take_events acknowledges each
        batch when the agent moves on, but every record holds an extra
        reference until here, so no offset is committed before its rows are
        in DuckDB and its dead letters and finished sessions are on Kafka.
        """
        await write_durably(self.store, result.sink)
        try:
            await self.publish(result)
        except Exception as exc:  # stopping, or Kafka refused: the records will be read again
            log.warning("could not publish a batch's dead letters or sessions (%s); it will be replayed", exc)
            return
        for event in batch:
            await stream.ack(event)

    async def publish(self, result: BatchResult) -> None:
        # force=True sends now; without it Faust attaches the message to the
        # current offset and delivers it only at a later commit.
        dlq, finished = self.outputs.dlq, self.outputs.sessions
        sent = [await dlq.send(value=letter.to_dict(), force=True) for letter in result.dead_letters]
        sent += [
            await finished.send(key=s.session_id.encode(), value=s.row(), force=True)
            for s in result.finalised
        ]
        await asyncio.gather(*sent)


def _origin(event: EventT[Any]) -> Origin:
    message = event.message
    return Origin(message.topic, message.partition, message.offset)


async def write_durably(store: Store, batch: SinkBatch) -> None:
    """Write *batch* to DuckDB, retrying until it lands.

    A failure never propagates: the batch's records are only released for
    the offset commit after this returns, so retrying is the only way on.
    Cancelled (the worker stops), the records are simply read again later.
    """
    backoff = 0.1
    while True:
        try:
            await asyncio.to_thread(store.write, batch)
            return
        except Exception as exc:  # any failure: the rows must land before the ack
            log.error("DuckDB write failed (%s); retrying in %.1fs", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(_MAX_BACKOFF, backoff * 2)
