"""Ingest: ``hermes.events`` → sessions table → DuckDB; bad input → ``hermes.dlq``.

Run: ``hermes-stream worker`` (one or more, sharing the topic's partitions).

Records are taken in batches and folded one by one by
:class:`hermes_stream.pipeline.Fold`. Whenever the DuckDB writer is idle,
what has been folded so far is handed over: session states are written back
to the table and the rows go to DuckDB, written by a child process while
folding goes on. Offsets are released for the commit only once the rows
are durable.
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
from hermes_stream.pipeline import BatchResult, Fold
from hermes_stream.records import Origin
from hermes_stream.sessions import SessionStats
from hermes_stream.settings import Settings
from hermes_stream.store import SinkBatch, WriterProcess
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
    ingest = Ingest(settings, table, WriterProcess(settings.db, settings.lock_timeout), outputs)
    app.agent(source, name="ingest")(ingest.run)


#: Events folded between two looks at the DuckDB writer.
LOOK_EVERY_EVENTS = 2000
#: Within a batch, once this many events are folded and the writer is idle,
#: they are handed to it: a backlog is written while it is being folded, and
#: no write is so small that its fixed cost (open, commit, checkpoint) dominates.
HAND_OVER_EVENTS = 20000


class Ingest:
    """The ingest agent: fold records, write them while folding the next ones."""

    def __init__(
        self, settings: Settings, table: TableT[bytes, bytes], writer: WriterProcess, outputs: Outputs
    ) -> None:
        self.settings = settings
        self.table = table
        self.writer = writer
        self.outputs = outputs
        self.fold = Fold(self.lookup, settings.max_record_bytes)
        self._fold_seconds = 0.0
        self._written: asyncio.Future[None] | None = None  # the DuckDB write in progress
        self._finished: asyncio.Future[None] | None = None  # ... and its publish and release

    def lookup(self, session_id: str) -> SessionStats | None:
        state = self.table.get(session_id.encode())
        return SessionStats.from_dict(codec.loads(state)) if state else None

    async def run(self, events: StreamT[bytes]) -> AsyncIterator[None]:
        stream = cast(faust.Stream[bytes], events)  # take_events is on Stream, not StreamT
        held: list[EventT[Any]] = []  # folded, not yet handed to the writer
        # A batch comes every sink_interval; sink_batch is a ceiling that a
        # worker at ~10k records/s does not reach (Faust's take has stalled
        # here on a full buffer after a restart, so it is kept out of the way).
        batches = stream.take_events(self.settings.sink_batch, within=self.settings.sink_interval)
        try:
            async for batch in batches:
                since_look = 0
                for event in batch:
                    event.message.incref()  # released by finish() once the rows are durable
                    held.append(event)
                    since_look += self._fold(event) or 1
                    if since_look >= LOOK_EVERY_EVENTS:
                        since_look = 0
                        await asyncio.sleep(0)  # lets a finished write be seen, and Kafka be read
                        idle = self._written is None or self._written.done()
                        if idle and self.fold.result.events >= HAND_OVER_EVENTS:
                            self.hand_over(stream, held)
                            held = []
                if held:  # the rest of the batch, once the writer is free
                    waited = time.perf_counter()
                    if self._written is not None:
                        await self._written  # one DuckDB write at a time, in order
                    log.info("waited %.0f ms for the previous write", (time.perf_counter() - waited) * 1000)
                    self.hand_over(stream, held)
                    held = []
                yield None
        finally:
            if self._finished is not None:  # let the last write commit on a clean stop
                with contextlib.suppress(asyncio.CancelledError):
                    await self._finished
            self.writer.close()

    def _fold(self, event: EventT[Any]) -> int:
        started = time.perf_counter()
        message = event.message
        events = self.fold.add(message.value, Origin(message.topic, message.partition, message.offset))
        self._fold_seconds += time.perf_counter() - started
        return events

    def hand_over(self, stream: faust.Stream[bytes], held: list[EventT[Any]]) -> None:
        """Write the folded session states to the table; start writing the rest to DuckDB."""
        result = self.fold.take()
        for session_id, stats in result.sessions.items():
            self.table[session_id.encode()] = codec.dumps(stats.to_dict())
        log.info(
            "%d records, %d events, %d dead letters folded in %.0f ms",
            result.records,
            result.events,
            len(result.dead_letters),
            self._fold_seconds * 1000,
        )
        self._fold_seconds = 0.0
        self._written = asyncio.ensure_future(write_durably(self.writer, result.sink))
        self._finished = asyncio.ensure_future(
            self.finish(stream, held, result, self._written, self._finished)
        )

    async def finish(
        self,
        stream: faust.Stream[bytes],
        held: Sequence[EventT[Any]],
        result: BatchResult,
        written: asyncio.Future[None],
        previous: asyncio.Future[None] | None,
    ) -> None:
        """Once *result* is durable, publish it and release its records for the commit.

        Runs while the next records are folded. take_events acknowledges each
        batch when the agent moves on, but every record holds an extra
        reference until here, so no offset is committed before its rows are
        in DuckDB and its dead letters and finished sessions are on Kafka.
        Results are published in the order they were folded.
        """
        await written
        if previous is not None:
            await previous
        try:
            await self.publish(result)
        except Exception as exc:  # stopping, or Kafka refused: the records will be read again
            log.warning("could not publish a batch's dead letters or sessions (%s); it will be replayed", exc)
            return
        for event in held:
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


async def write_durably(writer: WriterProcess, batch: SinkBatch) -> None:
    """Write *batch* to DuckDB, retrying until it lands.

    A failure never propagates: the batch's records are only released for
    the offset commit after this returns, so retrying is the only way on.
    Cancelled (the worker stops), the records are simply read again later.
    """
    backoff = 0.1
    started = time.perf_counter()
    while True:
        try:
            await writer.write(batch)
            log.info(
                "%d events, %d session and dead letter rows written in %.0f ms",
                batch.event_count,
                len(batch) - batch.event_count,
                (time.perf_counter() - started) * 1000,
            )
            return
        except Exception as exc:  # any failure: the rows must land before the ack
            log.error("DuckDB write failed (%s); retrying in %.1fs", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(_MAX_BACKOFF, backoff * 2)
