"""The producer SDK: ``emit()`` from inside an agent, never blocked, nothing lost.

``emit`` validates and encodes the event in the caller, then appends it to a
bounded in-memory queue and returns. A background task drains the queue: it
waits a short linger, groups the events by the partition their session maps
to, and sends each group as one Kafka record holding a JSON array. A
session's events therefore stay in order on its partition.

When the broker cannot be reached, or the queue is full, events go to an
on-disk :class:`~hermes_stream.spool.Spool`; while anything is spooled, new
events are spooled behind it, and the spool is replayed in order once the
broker answers again. Memory stays bounded by the queue size.

    async with EventProducer.from_settings(Settings.from_env()) as producer:
        producer.emit(make_event("api_call", "sess_1", model=…, …))
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from hermes_stream import codec
from hermes_stream.events import SCHEMA_VERSION, Event, new_event_id, record_is_valid, validate_event
from hermes_stream.exceptions import BrokerUnavailable, InvalidEvent, JSONError
from hermes_stream.redact import redact, redact_value
from hermes_stream.sender import KafkaSender, Record, Sender, partition_for
from hermes_stream.settings import Settings
from hermes_stream.spool import Spool
from hermes_stream.topics import Topics

log = logging.getLogger(__name__)

MAX_RECORD_EVENTS = 1000
_MAX_BACKOFF = 5.0


@dataclass
class ProducerStats:
    """Counters: events accepted, delivered to Kafka, written to the spool, rejected."""

    emitted: int = 0
    sent: int = 0
    spooled: int = 0
    rejected: int = 0


@dataclass(frozen=True)
class ContentCapture:
    """Whether ``tool_result`` events keep their ``args`` and ``result`` (off: both are dropped).

    When on, every string in them is redacted and ``result`` is cut to
    ``max_result_chars`` characters (after redaction, so no secret is cut in half).
    """

    enabled: bool = False
    max_result_chars: int = 2000

    @classmethod
    def from_settings(cls, settings: Settings) -> ContentCapture:
        return cls(settings.capture_content, settings.capture_max_chars)

    def apply(self, event: Event) -> Event:
        if event.get("type") != "tool_result" or ("args" not in event and "result" not in event):
            return event
        if not self.enabled:
            return {key: value for key, value in event.items() if key not in ("args", "result")}
        captured = dict(event)
        if "args" in captured:
            captured["args"] = redact_value(captured["args"])
        result = captured.get("result")
        if isinstance(result, str):
            captured["result"] = redact(result)[: self.max_result_chars]
        return captured


def encode_event(
    event: Event, max_bytes: int, capture: ContentCapture = ContentCapture()
) -> tuple[str, bytes]:
    """Fill the envelope defaults, redact secrets, validate and encode; return (session_id, JSON bytes).

    ``args`` and ``result`` of a ``tool_result`` are kept only as *capture* says.
    """
    if not isinstance(event, dict):  # a list or None must be rejected, not crash the filling below
        validate_event(event)
    event = capture.apply(event)
    if "event_id" not in event or "ts" not in event or "schema_version" not in event:
        event = {"event_id": new_event_id(), "schema_version": SCHEMA_VERSION, **event}
        event.setdefault("ts", time.time())
    message = event.get("error_message")
    if isinstance(message, str) and (cleaned := redact(message)) != message:
        event = {**event, "error_message": cleaned}  # no secret leaves the agent
    try:
        data = codec.dumps(event)
    except JSONError as exc:
        validate_event(event)  # names the field, when it is a known one
        raise InvalidEvent("event", str(exc)) from exc
    # Checking the encoded bytes is ~2x cheaper than validate_event; the encoder
    # writes NaN and infinities as null, so a null anywhere takes the slow path.
    if b"null" in data or not record_is_valid(data):
        validate_event(event)
    if len(data) > max_bytes:
        raise InvalidEvent("event", f"is {len(data)} bytes encoded; the limit is {max_bytes}")
    session_id: str = event["session_id"]
    return session_id, data


def build_records(events: list[tuple[str, bytes]], partitions: int, max_bytes: int) -> list[Record]:
    """Group encoded events into JSON-array records, one partition each, order kept."""
    groups: dict[int, list[tuple[str, bytes]]] = {}
    for item in events:
        groups.setdefault(partition_for(item[0].encode(), partitions), []).append(item)
    records = []
    for partition, items in groups.items():
        start = 0
        size = 2
        for i, (_, data) in enumerate(items):
            if i > start and (size + len(data) + 1 > max_bytes or i - start >= MAX_RECORD_EVENTS):
                records.append(_record(partition, items[start:i]))
                start, size = i, 2
            size += len(data) + 1
        records.append(_record(partition, items[start:]))
    return records


def _record(partition: int, items: list[tuple[str, bytes]]) -> Record:
    return Record(partition, items[0][0].encode(), b"[" + b",".join(d for _, d in items) + b"]")


class EventProducer:
    """Publishes events to the input topic in batches; see the module docstring."""

    def __init__(
        self,
        sender: Sender,
        *,
        topic: str,
        spool_dir: Path,
        linger: float = 0.02,
        queue_size: int = 20_000,
        max_record_bytes: int = 1_048_576,
        capture: ContentCapture = ContentCapture(),
    ) -> None:
        self.stats = ProducerStats()
        self._sender = sender
        self._topic = topic
        self._spool = Spool(spool_dir)
        self._linger = linger
        self._queue_size = queue_size
        self._max_bytes = max_record_bytes
        self.capture = capture
        self._queue: deque[tuple[str, bytes]] = deque()
        self._spooling = False
        self._partitions = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._room = asyncio.Event()  # set when the queue is taken for delivery, or spooling starts
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> EventProducer:
        if not settings.broker:
            raise BrokerUnavailable("HERMES_STREAM_BROKER is not set")
        return cls(
            KafkaSender(settings.broker, settings.max_record_bytes),
            topic=Topics(settings.topic_prefix).events,
            spool_dir=settings.spool_dir,
            linger=settings.linger_ms / 1000,
            queue_size=settings.queue_size,
            max_record_bytes=settings.max_record_bytes,
            capture=ContentCapture.from_settings(settings),
        )

    async def start(self) -> None:
        """Open the spool (replaying what an earlier run left) and start delivering."""
        self._spool.open()
        self._spooling = self._spool.pending
        self._task = asyncio.create_task(self._run(), name="hermes-stream-producer")

    @property
    def max_event_bytes(self) -> int:
        """The largest encoded event accepted: one record must be able to hold it."""
        return self._max_bytes - 2

    def emit(self, event: Event) -> bool:
        """Queue *event*; return False (and log why) if it is invalid. Never blocks, never raises."""
        try:
            session_id, data = self.encode(event)
        except (InvalidEvent, ValueError) as exc:
            self.stats.rejected += 1
            log.warning("rejected event: %s", exc)
            return False
        self.enqueue(session_id, data)
        return True

    def encode(self, event: Event) -> tuple[str, bytes]:
        """:func:`encode_event` with this producer's limit and content capture."""
        return encode_event(event, self.max_event_bytes, self.capture)

    def enqueue(self, session_id: str, data: bytes) -> None:
        """Queue an event already validated and encoded by :func:`encode_event`."""
        self.stats.emitted += 1
        if self._spooling or len(self._queue) >= self._queue_size:
            self._spool.append(data)
            self.stats.spooled += 1
            self._spooling = True
            self._room.set()
        else:
            self._queue.append((session_id, data))
        self._idle.clear()
        self._wake.set()

    @property
    def backlog(self) -> int:
        """Events waiting in memory; a bulk publisher can pace itself on it."""
        return len(self._queue)

    @property
    def spooling(self) -> bool:
        return self._spooling

    async def paced(self) -> None:
        """Wait while the in-memory queue is half full and the broker keeps up.

        For bulk publishers (``hermes-stream emit``, the benchmark) that would
        otherwise outrun the broker and fill the spool; agents just ``emit``.
        It wakes when the queue is taken for delivery or spooling starts, not
        on a timer.
        """
        while len(self._queue) >= self._queue_size // 2 and not self._spooling:
            self._room.clear()
            await self._room.wait()

    @property
    def spool_depth_bytes(self) -> int:
        return self._spool.depth_bytes()

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything emitted so far is delivered; False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued within *timeout*; spool the rest for the next run."""
        if self._task is None:
            return
        await self._settle(timeout)
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None
        self._spill()
        self._spool.close()
        await self._sender.stop()

    async def _settle(self, timeout: float) -> None:
        """Wait until the queue is delivered, but not once the broker turns out to be away."""
        deadline = time.monotonic() + timeout
        while not self._spooling and time.monotonic() < deadline:
            if await self.flush(min(0.05, deadline - time.monotonic())):
                return

    async def __aenter__(self) -> EventProducer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _run(self) -> None:
        backoff = 0.0
        while True:
            if backoff:
                await asyncio.sleep(backoff)
            try:
                progressed = await self._step()
                backoff = 0.0
            except BrokerUnavailable as exc:
                self._spill()
                backoff = min(_MAX_BACKOFF, max(0.1, backoff * 2))
                log.warning("broker unavailable (%s); events are spooled, retrying in %.1fs", exc, backoff)
                continue
            if not progressed:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()

    async def _step(self) -> bool:
        """Deliver one batch; return False when there is nothing to deliver."""
        if not self._partitions:
            await self._connect()
        if self._queue:
            if len(self._queue) < MAX_RECORD_EVENTS and self._linger:
                await asyncio.sleep(self._linger)
            await self._send_queue()
            return True
        if self._spooling:
            await self._replay()
            return True
        return False

    async def _connect(self) -> None:
        await self._sender.start()
        try:
            self._partitions = await self._sender.partition_count(self._topic)
        except BrokerUnavailable:
            await self._sender.stop()
            raise

    async def _send_queue(self) -> None:
        batch = list(self._queue)
        self._queue.clear()
        self._room.set()
        try:
            await self._sender.send(self._topic, build_records(batch, self._partitions, self._max_bytes))
        except BrokerUnavailable:
            self._queue.extendleft(reversed(batch))  # older than what was emitted during the send
            await self._disconnect()
            raise
        except asyncio.CancelledError:  # close() gave up waiting: let it spool the batch
            self._queue.extendleft(reversed(batch))
            raise
        self.stats.sent += len(batch)

    def _spill(self) -> None:
        """Move the queue to the front of the spool and spool what comes next.

        Called when the broker is away (so the events survive this process) and on
        close. Queued events are older than anything already spooled.
        """
        if self._queue:
            self._spool.prepend([data for _, data in self._queue])
            self.stats.spooled += len(self._queue)
            self._queue.clear()
        self._spooling = True
        self._room.set()

    async def _replay(self) -> None:
        spooled = self._spool.read(MAX_RECORD_EVENTS * max(1, self._partitions), 8 * self._max_bytes)
        if not spooled.events:
            self._spooling = False
            return
        items = [(_session_of(data), data) for data in spooled.events]
        try:
            await self._sender.send(self._topic, build_records(items, self._partitions, self._max_bytes))
        except BrokerUnavailable:
            await self._disconnect()
            raise
        self._spool.commit(spooled)
        self.stats.sent += len(items)
        if not self._spool.pending:
            self._spooling = False

    async def _disconnect(self) -> None:
        self._partitions = 0
        await self._sender.stop()


def _session_of(data: bytes) -> str:
    event: dict[str, Any] = codec.loads(data)
    session_id: str = event["session_id"]
    return session_id
