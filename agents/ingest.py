"""Ingest: ``hermes.events`` → sessions table → DuckDB; bad input → ``hermes.dlq``.

Run: ``hermes-stream worker`` (one or more, sharing the topic's partitions).

Records are taken in batches; each batch is decoded and folded by
:func:`hermes_stream.pipeline.process_records`, session states are written
back to the table once per batch, and the rows are written to DuckDB before
the batch's offsets are acknowledged, so Kafka only commits what is durable.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.types import EventT, StreamT

from hermes_stream import codec
from hermes_stream.pipeline import process_records
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
    dlq, finished = outputs.dlq, outputs.sessions
    table = app.Table(
        "sessions",
        key_type=bytes,
        value_type=bytes,  # SessionStats as JSON from hermes_stream.codec
        partitions=settings.partitions,
        use_partitioner=True,  # a batch spans partitions: place each key by its own hash
    )
    store = Store(settings.db, settings.lock_timeout)

    def lookup(session_id: str) -> SessionStats | None:
        state = table.get(session_id.encode())
        return SessionStats.from_dict(codec.loads(state)) if state else None

    async def ingest(events: StreamT[bytes]) -> AsyncIterator[None]:
        stream = cast(faust.Stream[bytes], events)  # take_events is on Stream, not StreamT
        # A flush is due every sink_interval; sink_batch is a ceiling that a
        # worker at ~10k records/s does not reach (Faust's take has stalled
        # here on a full buffer after a restart, so it is kept out of the way).
        async for batch in stream.take_events(settings.sink_batch, within=settings.sink_interval):
            records = [(e.message.value, _origin(e)) for e in batch]
            result = process_records(records, lookup, settings.max_record_bytes)
            for session_id, stats in result.sessions.items():
                table[session_id.encode()] = codec.dumps(stats.to_dict())
            await write_before_ack(store, result.sink)
            # force=True sends now; without it Faust attaches the message to
            # the current offset and delivers it only at the next commit,
            # which would wait for this very batch to be acknowledged.
            sent = [await dlq.send(value=letter.to_dict(), force=True) for letter in result.dead_letters]
            sent += [
                await finished.send(key=s.session_id.encode(), value=s.row(), force=True)
                for s in result.finalised
            ]
            await asyncio.gather(*sent)
            yield None

    app.agent(source, name="ingest")(ingest)


def _origin(event: EventT[Any]) -> Origin:
    message = event.message
    return Origin(message.topic, message.partition, message.offset)


async def write_before_ack(store: Store, batch: SinkBatch) -> None:
    """Write *batch* to DuckDB, retrying until it is durable.

    Faust acknowledges a batch's records when this agent step returns, even
    when it raises, so a failed write must never simply propagate: it is
    retried, and a stop that arrives mid-write waits for the write to finish.
    """
    task = asyncio.ensure_future(_write_with_retry(store, batch))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await _finish_or_exit(task, store.lock_timeout)
        raise


async def _write_with_retry(store: Store, batch: SinkBatch) -> None:
    backoff = 0.1
    while True:
        try:
            await asyncio.to_thread(store.write, batch)
            return
        except Exception as exc:  # any failure: the rows must land before the ack
            log.error("DuckDB write failed (%s); retrying in %.1fs", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(_MAX_BACKOFF, backoff * 2)


async def _finish_or_exit(task: Awaitable[None], timeout: float) -> None:
    try:
        await asyncio.wait_for(task, timeout)
    except (TimeoutError, asyncio.CancelledError):
        # Exiting without a commit is safe: the records are read again.
        log.critical("stopping with a DuckDB write unfinished; exiting so no offset is committed")
        os._exit(70)
