"""Ingest: ``hermes.events`` → sessions table → DuckDB, and the error and alert topics.

Run: ``hermes-stream worker`` (one or more, sharing the topic's partitions).

Records are folded one by one as they arrive, by
:class:`hermes_stream.pipeline.Fold`. Each failed call's error record goes
to ``hermes.errors.<category>`` at once, and so does each alert the rules
raise (to ``hermes.alerts``), so that they are out within a fraction of a
second. When the DuckDB writer is idle and 20,000 events have been
folded, records have paused for 50 ms (at most every 0.5 s), or
``sink_interval`` has passed, what has been folded is handed over: the
rows go to DuckDB, written by a child process while folding goes on (few
large writes under load, quick ones when it is quiet), and session states
are written back to the table.
Offsets are released for the commit only once the rows are durable; the
table's changes (its changelog), finished sessions (``hermes.sessions``),
dead letters (``hermes.dlq``) and sessions over budget (``hermes.alerts``)
are published then.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import EventT, StreamT, TableT

from hermes_stream import codec
from hermes_stream.pipeline import BatchResult, Fold
from hermes_stream.records import Origin
from hermes_stream.sender import partition_for
from hermes_stream.sessions import SessionStats
from hermes_stream.settings import Settings
from hermes_stream.skills import skill_key
from hermes_stream.store import SinkBatch, WriterProcess
from hermes_stream.topics import Topics

from . import live
from .codec import NAME as JSON

log = logging.getLogger(__name__)

_MAX_BACKOFF = 5.0

#: A message to publish: (topic, key, value).
Message = tuple[str, bytes, bytes]
#: Sends messages, in order per topic and key; returns their delivery futures.
Publish = Callable[[Sequence[Message]], Awaitable[Sequence[Any]]]


@dataclass(frozen=True)
class Outputs:
    """Where the agent publishes: topics in production, a channel and a list in agent tests."""

    dlq: faust.types.ChannelT[Any]
    #: Error records, alerts, finished sessions, skill invocations and the sessions
    #: table's changes, straight to the producer (thousands a second at peak).
    publish: Publish


def register(
    app: faust.App, settings: Settings, writer: WriterProcess, outputs: Outputs | None = None
) -> None:
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
            publish=producer_publish(app),
        )
    table = app.Table(
        "sessions",
        key_type=bytes,
        value_type=bytes,  # SessionStats as JSON from hermes_stream.codec
        partitions=settings.partitions,
        use_partitioner=True,  # each key on the partition of its hash, as hand_over sends changes
    )
    ingest = Ingest(settings, table, writer, outputs)
    app.agent(source, name="ingest")(ingest.run)
    app.on_partitions_revoked.connect(ingest.on_partitions_revoked)
    live.register(app, table, ingest.live_state, ingest.stats)


def producer_publish(app: faust.App) -> Publish:
    """Send through the producer, one Kafka batch per topic partition, not one send per message.

    Each message stays a record of its own. A send costs tens of µs of
    Python (Faust's and aiokafka's layers; the benchmark's error records took
    0.4–1.6 s of the worker's CPU), appending to a batch ~1.3 µs. Partitions are picked
    as Kafka's default partitioner does (murmur2 of the key). Faust flushes
    the producer before it commits an offset, so what a record produced is
    delivered before the record counts as processed.
    """

    async def publish(messages: Sequence[Message]) -> list[asyncio.Future[Any]]:
        # Faust keeps aiokafka's producer to itself; its batch API is aiokafka's own.
        kafka = cast(faust_aiokafka.Producer, app.producer)._ensure_producer()
        partitions: dict[str, int] = {}
        batches: dict[tuple[str, int], Any] = {}
        sent: list[asyncio.Future[Any]] = []
        for topic, key, value in messages:
            if topic not in partitions:
                partitions[topic] = len(await kafka.partitions_for(topic))
            where = (topic, partition_for(key, partitions[topic]))
            batch = batches.get(where)
            if batch is None or batch.append(key=key, value=value, timestamp=None) is None:
                if batch is not None:  # full: send it, start another
                    sent.append(await kafka.send_batch(batch, topic, partition=where[1]))
                batch = batches[where] = kafka.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        for (topic, partition), batch in batches.items():
            sent.append(await kafka.send_batch(batch, topic, partition=partition))
        for delivery in sent:
            delivery.add_done_callback(_log_failure)
        return sent

    return publish


def _log_failure(delivery: asyncio.Future[Any]) -> None:
    if not delivery.cancelled() and delivery.exception() is not None:
        log.error("could not publish an error record or alert: %s", delivery.exception())


#: Events folded between two looks at the DuckDB writer.
LOOK_EVERY_EVENTS = 2000
#: Once this many events are folded and the writer is idle, they are handed
#: to it: a backlog is written while it is being folded, and no write is so
#: small that its fixed cost (open, commit, checkpoint) dominates.
HAND_OVER_EVENTS = 20000
#: Past this many folded events, folding waits for the writer (bounds memory).
MAX_FOLDED_EVENTS = 200_000
#: Once no record has come for this long, what has been folded is handed over
#: (when the writer is idle) without waiting for ``sink_interval``: a burst is
#: written as soon as it ends, and a quiet stream's rows land within a second.
QUIET_GAP = 0.05
#: ... but no sooner than this after the last hand-over. A write costs the
#: writer ~40 ms of CPU however few its rows: an agent's events, a record every
#: 100 ms each followed by a pause, took half a core as one write per record.
PAUSE_SPACING = 0.5


@dataclass
class SinkCounters:
    """What this worker has made durable since it started (``GET /stats``)."""

    writes: int = 0
    records: int = 0
    events: int = 0
    dead_letters: int = 0
    #: Wall-clock time the last write became durable (its COMMIT returned).
    last_write_at: float | None = None

    def written(self, result: BatchResult, write: asyncio.Future[None]) -> None:
        if write.cancelled():
            return
        self.writes += 1
        self.records += result.records
        self.events += result.events
        self.dead_letters += len(result.dead_letters)
        self.last_write_at = time.time()


class Ingest:
    """The ingest agent: fold records, publish errors and alerts, write while folding on."""

    def __init__(
        self, settings: Settings, table: TableT[bytes, bytes], writer: WriterProcess, outputs: Outputs
    ) -> None:
        self.settings = settings
        self.table = table
        self.writer = writer
        self.outputs = outputs
        self.topics = Topics(settings.topic_prefix)
        self.fold = Fold(self.lookup, settings.max_record_bytes, settings.alert_config())
        self.counters = SinkCounters()
        self._fold_seconds = 0.0
        self._held: list[EventT[Any]] = []  # folded, not yet handed to the writer
        self._handed_at = self._folded_at = time.monotonic()
        self._idle_checked = 0.0
        self._indexed = False  # the table's open sessions are in fold.active
        self._written: asyncio.Future[None] | None = None  # the DuckDB write in progress
        self._finished: asyncio.Future[None] | None = None  # ... and its publish and release

    def lookup(self, session_id: str) -> SessionStats | None:
        state = self.table.get(session_id.encode())
        return SessionStats.from_dict(codec.loads(state)) if state else None

    def stats(self) -> dict[str, Any]:
        """The sink counters, and the events folded but not yet handed to the writer."""
        return {**dataclasses.asdict(self.counters), "events_pending": self.fold.result.events}

    def live_state(self, session_id: str) -> SessionStats | None:
        """The session as folded so far, handed over or not."""
        return self.fold.result.sessions.get(session_id) or self.lookup(session_id)

    async def on_partitions_revoked(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Another worker may fold the revoked partitions' sessions now: read them from the table again."""
        self.fold.forget()

    @property
    def writer_idle(self) -> bool:
        return self._written is None or self._written.done()

    async def run(self, events: StreamT[bytes]) -> None:
        stream = cast(faust.Stream[bytes], events)
        ticker = asyncio.ensure_future(self._tick(stream))
        since_look = 0
        try:
            async for event in stream.events():
                if not self._indexed:
                    self._index_open_sessions()
                event.message.incref()  # released by finish() once the rows are durable
                self._held.append(event)
                since_look += self._fold(event) or 1
                await self._publish_now()
                if since_look >= LOOK_EVERY_EVENTS:
                    since_look = 0
                    await asyncio.sleep(0)  # lets a finished write be seen, and Kafka be read
                    folded = self.fold.result.events
                    if folded >= MAX_FOLDED_EVENTS and self._written is not None:
                        await self._written
                    if self.writer_idle and folded >= HAND_OVER_EVENTS:
                        self.hand_over(stream)
        finally:
            ticker.cancel()
            if self._finished is not None:  # let the last write commit on a clean stop
                with contextlib.suppress(asyncio.CancelledError):
                    await self._finished
            self.writer.close()

    async def _tick(self, stream: faust.Stream[bytes]) -> None:
        """End idle sessions; hand over what has waited ``sink_interval``, or all once records pause."""
        interval = self.settings.sink_interval
        timeout = self.settings.session_idle_timeout
        while True:
            await asyncio.sleep(max(min(interval, QUIET_GAP) / 2, 0.005))
            wall = time.time()
            if self._indexed and wall - self._idle_checked >= min(60.0, timeout / 20):
                self._idle_checked = wall
                ended = self.fold.expire_idle(wall, timeout)
                if ended:
                    log.info("%d sessions ended after %.0f s without events", ended, timeout)
            now = time.monotonic()
            waited = now - self._handed_at
            paused = now - self._folded_at >= QUIET_GAP and waited >= PAUSE_SPACING
            due = waited >= interval or paused
            if (self._held or self.fold.result.sessions) and due and self.writer_idle:
                self.hand_over(stream)

    def _index_open_sessions(self) -> None:
        """Note the table's sessions that have not ended, so an idle one ends even after a restart.

        Done when the first record comes, once the table has been recovered.
        """
        self._indexed = True
        for key, state in self.table.items():
            stats = SessionStats.from_dict(codec.loads(state))
            if not stats.ended:
                self.fold.active.setdefault(key.decode(), stats.seen_at)

    def _fold(self, event: EventT[Any]) -> int:
        started = time.perf_counter()
        message = event.message
        events = self.fold.add(message.value, Origin(message.topic, message.partition, message.offset))
        self._fold_seconds += time.perf_counter() - started
        self._folded_at = time.monotonic()
        return events

    async def _publish_now(self) -> None:
        """Send the error records and alerts of the record just folded."""
        errors, alerts = self.fold.take_outbox()
        if not errors and not alerts:
            return
        topics = self.topics
        messages = [
            (topics.errors(record["category"]), record["session_id"].encode(), codec.dumps(record))
            for record in errors
        ]
        messages += [(topics.alerts, a.subject.encode(), codec.dumps(a.to_dict())) for a in alerts]
        await self.outputs.publish(messages)

    def hand_over(self, stream: faust.Stream[bytes]) -> None:
        """Start writing the folded rows to DuckDB; put the session states in the table.

        The states' changelog messages go out in :meth:`finish`, once the rows are durable.
        """
        held, self._held = self._held, []
        self._handed_at = time.monotonic()
        result = self.fold.take()
        self._written = write_durably(self.writer, result.sink)  # the child starts now
        self._written.add_done_callback(functools.partial(self.counters.written, result))
        # ... while the table is updated. Setting table[key] would send each change
        # on its own (~25 µs each); they go in finish() with the batch's other outputs.
        changelog = self.table.changelog_topic.get_topic_name()
        changes: list[Message] = []
        for session_id, stats in result.sessions.items():
            key, value = session_id.encode(), codec.dumps(stats.to_dict())
            self.table.data[key] = value
            changes.append((changelog, key, value))
        log.info(
            "%d records, %d events, %d dead letters folded in %.0f ms",
            result.records,
            result.events,
            len(result.dead_letters),
            self._fold_seconds * 1000,
        )
        self._fold_seconds = 0.0
        self._finished = asyncio.ensure_future(
            self.finish(stream, held, result, changes, self._written, self._finished)
        )

    async def finish(
        self,
        stream: faust.Stream[bytes],
        held: Sequence[EventT[Any]],
        result: BatchResult,
        changes: Sequence[Message],
        written: asyncio.Future[None],
        previous: asyncio.Future[None] | None,
    ) -> None:
        """Once *result* is durable, publish it and release its records for the commit.

        Runs while the next records are folded. Faust acknowledges each record
        when the agent moves on, but every record holds an extra reference
        until here, so no offset is committed before its rows are in DuckDB
        and its table *changes*, dead letters, finished sessions and budget
        alerts are on Kafka. Results are published in the order they were
        folded, so a session's last change on the changelog is its newest.
        """
        await written
        if previous is not None:
            await previous
        try:
            await self.publish(result, changes)
        except Exception as exc:  # stopping, or Kafka refused: the records will be read again
            log.warning("could not publish a batch's dead letters or sessions (%s); it will be replayed", exc)
            return
        for event in held:
            await stream.ack(event)

    async def publish(self, result: BatchResult, changes: Sequence[Message]) -> None:
        # force=True sends now; without it Faust attaches the message to the
        # current offset and delivers it only at a later commit.
        dlq, topics = self.outputs.dlq, self.topics
        sent = [await dlq.send(value=letter.to_dict(), force=True) for letter in result.dead_letters]
        messages = list(changes)
        messages += [(topics.alerts, a.subject.encode(), codec.dumps(a.to_dict())) for a in result.alerts]
        for stats in result.finalised:  # the rows written to DuckDB, published as they are
            row = result.session_rows[stats.session_id]
            messages.append((topics.sessions, stats.session_id.encode(), codec.dumps(row)))
            for skill_row in result.skill_rows[stats.session_id]:  # keyed for the skills agent's table
                key = skill_key(skill_row["skill_name"], skill_row["model"])
                messages.append((topics.skill_invocations, key.encode(), codec.dumps(skill_row)))
        sent += await self.outputs.publish(messages)
        await asyncio.gather(*sent)


def write_durably(writer: WriterProcess, batch: SinkBatch) -> asyncio.Future[None]:
    """Start writing *batch* to DuckDB now; the future is done once it is durable.

    The write is retried until it lands. A failure never propagates: the
    batch's records are only released for the offset commit once it is
    durable, so retrying is the only way on. Cancelled (the worker stops),
    the records are simply read again later.
    """
    return asyncio.ensure_future(_until_durable(writer, batch, writer.write(batch)))


async def _until_durable(writer: WriterProcess, batch: SinkBatch, attempt: asyncio.Future[None]) -> None:
    backoff = 0.1
    started = time.perf_counter()
    while True:
        try:
            await attempt
            log.info(
                "%d events, %d other rows written in %.0f ms",
                batch.event_count,
                len(batch) - batch.event_count,
                (time.perf_counter() - started) * 1000,
            )
            return
        except Exception as exc:  # any failure: the rows must land before the ack
            log.error("DuckDB write failed (%s); retrying in %.1fs", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(_MAX_BACKOFF, backoff * 2)
        attempt = writer.write(batch)
