"""The async producer: validates in the caller, batches per partition, never blocks, loses nothing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest

from hermes_stream.events import SCHEMA_VERSION, make_event
from hermes_stream.exceptions import ConfigError, InvalidEvent
from hermes_stream.producer import (
    MAX_RECORD_EVENTS,
    ContentCapture,
    EventProducer,
    build_records,
    encode_event,
)
from hermes_stream.sender import MemorySender, Record, Sender, partition_for
from hermes_stream.settings import Settings
from tests.unit.delivery import delivered as delivered_events
from tests.unit.delivery import seqs_by_session

Event = dict[str, Any]
TOPIC = "test.events"


class MakeProducer(Protocol):
    def __call__(self, sender: Sender, **options: Any) -> Awaitable[EventProducer]: ...


class GatedSender(MemorySender):
    """A MemorySender whose sends wait at :attr:`gate`: a slow broker, or one that fails mid-send."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.in_flight = 0

    async def send(self, topic: str, records: Sequence[Record]) -> None:
        self.in_flight += 1
        try:
            await self.gate.wait()
        finally:
            self.in_flight -= 1
        await super().send(topic, records)


class HangingSender(MemorySender):
    """Connects, then never finishes a send: a broker that stopped answering."""

    async def send(self, topic: str, records: Sequence[Record]) -> None:
        await asyncio.Event().wait()


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
async def make_producer(spool_dir: Path) -> AsyncIterator[MakeProducer]:
    """Start producers on the test's spool directory; close them all afterwards."""
    producers: list[EventProducer] = []

    async def make(sender: Sender, **options: Any) -> EventProducer:
        options.setdefault("spool_dir", spool_dir)
        producer = EventProducer(sender, topic=TOPIC, **options)
        await producer.start()
        producers.append(producer)
        return producer

    yield make
    for producer in producers:
        await producer.close(timeout=0.1)


def tool_event(session_id: str, seq: int, **fields: Any) -> Event:
    """A valid event; ``seq`` (an extra field the contract allows) records emit order."""
    return make_event("tool_result", session_id, tool_name="search", status="ok", seq=seq, **fields)


def interleaved(sessions: int, per_session: int, start: int = 0) -> list[Event]:
    """Events of several sessions mixed together, as concurrent agents emit them."""
    return [
        tool_event(f"sess_{s}", seq) for seq in range(start, start + per_session) for s in range(sessions)
    ]


def emit_all(producer: EventProducer, events: Iterable[Event]) -> None:
    assert all(producer.emit(event) for event in events)


def delivered(sender: MemorySender) -> list[Event]:
    assert all(topic == TOPIC for topic, _ in sender.records)
    return delivered_events(sender)


def on_disk(directory: Path) -> list[Event]:
    """Events the spool directory holds and has not delivered, in replay order."""
    events = []
    for path in sorted(directory.glob("*.spool")):
        pos_path = path.with_suffix(".pos")
        position = int(pos_path.read_text() or 0) if pos_path.exists() else 0
        events += [json.loads(line) for line in path.read_bytes()[position:].splitlines()]
    return events


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll *condition* until true; fail the test after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(0.005)


# emit validates


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({k: v for k, v in tool_event("s", 0).items() if k != "session_id"}, id="no-session"),
        pytest.param({**tool_event("s", 0), "type": "nonsense"}, id="unknown-type"),
        pytest.param({**tool_event("s", 0), "duration_ms": -1}, id="negative-number"),
        pytest.param({**tool_event("s", 0), "status": "maybe"}, id="bad-choice"),
        pytest.param({**tool_event("s", 0), "extra": object()}, id="not-json-encodable"),
        pytest.param({**tool_event("s", 0), "duration_ms": float("nan")}, id="nan-optional"),
        pytest.param({**tool_event("s", 0), "ts": float("inf")}, id="inf-required"),
        pytest.param({**tool_event("s", 0), "error_message": "x" * 5000}, id="oversized"),
        pytest.param(None, id="none"),
        pytest.param(["not", "an", "object"], id="list"),
        pytest.param("tool_result", id="string"),
    ],
)
async def test_invalid_event_is_rejected_without_raising(make_producer: MakeProducer, event: Any) -> None:
    sender = MemorySender()
    producer = await make_producer(sender, max_record_bytes=4096)

    assert producer.emit(event) is False

    assert await producer.flush(5)
    assert (producer.stats.rejected, producer.stats.emitted) == (1, 0)
    assert sender.records == []


async def test_valid_event_is_accepted_and_delivered_unchanged(make_producer: MakeProducer) -> None:
    sender = MemorySender()
    producer = await make_producer(sender)
    event = tool_event("sess_1", 0, duration_ms=12.5)

    assert producer.emit(event) is True

    assert await producer.flush(5)
    assert delivered(sender) == [event]
    assert (producer.stats.emitted, producer.stats.rejected) == (1, 0)


async def test_missing_envelope_fields_are_filled_in(make_producer: MakeProducer) -> None:
    sender = MemorySender()
    producer = await make_producer(sender)
    bare = {"type": "tool_result", "session_id": "sess_1", "source": "cli", "tool_name": "t", "status": "ok"}
    before = time.time()

    assert producer.emit(dict(bare)) is True
    assert producer.emit(dict(bare)) is True

    assert await producer.flush(5)
    first, second = delivered(sender)
    assert first["schema_version"] == SCHEMA_VERSION
    assert before <= first["ts"] <= time.time()
    assert first["event_id"] and first["event_id"] != second["event_id"]
    assert {k: first[k] for k in bare} == bare


async def test_an_invalid_event_does_not_hold_back_valid_ones(make_producer: MakeProducer) -> None:
    sender = MemorySender()
    producer = await make_producer(sender)

    producer.emit(tool_event("sess_1", 0))
    producer.emit({"type": "tool_result"})
    producer.emit(tool_event("sess_1", 1))

    assert await producer.flush(5)
    assert seqs_by_session(delivered(sender)) == {"sess_1": [0, 1]}


# batching


async def test_many_events_of_many_sessions_become_few_json_array_records(
    make_producer: MakeProducer,
) -> None:
    sender = MemorySender(partitions=4)
    producer = await make_producer(sender)
    events = interleaved(sessions=20, per_session=40)

    emit_all(producer, events)

    assert await producer.flush(5)
    assert len(sender.records) <= sender.partitions
    assert all(isinstance(json.loads(record.value), list) for _, record in sender.records)
    assert len(delivered(sender)) == len(events)


async def test_a_sessions_events_land_on_one_partition_in_emit_order(make_producer: MakeProducer) -> None:
    sender = MemorySender(partitions=4)
    producer = await make_producer(sender, max_record_bytes=8192)  # forces several records per partition
    events = interleaved(sessions=12, per_session=30)

    emit_all(producer, events)

    assert await producer.flush(5)
    for _, record in sender.records:
        for event in json.loads(record.value):
            assert record.partition == partition_for(event["session_id"].encode(), 4)
    assert seqs_by_session(delivered(sender)) == seqs_by_session(events)
    assert len({record.partition for _, record in sender.records}) > 1


async def test_records_never_exceed_max_record_bytes(make_producer: MakeProducer) -> None:
    sender = MemorySender(partitions=2)
    producer = await make_producer(sender, max_record_bytes=4096)
    events = interleaved(sessions=3, per_session=100)

    emit_all(producer, events)

    assert await producer.flush(5)
    assert all(len(record.value) <= 4096 for _, record in sender.records)
    assert len(sender.records) < len(events) / 5  # still batched, not one record per event
    assert seqs_by_session(delivered(sender)) == seqs_by_session(events)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"duration_ms": float("nan")}, "duration_ms"),
        ({"ts": float("-inf")}, "ts"),
        ({"duration_ms": object()}, "duration_ms"),
        ({"status": None}, "status"),
    ],
)
def test_encode_event_names_the_field_the_encoder_hides(change: dict[str, Any], field: str) -> None:
    # The encoder writes NaN as null and refuses objects; the message still names the field.
    with pytest.raises(InvalidEvent, match=field):
        encode_event({**tool_event("s", 0), **change}, 1 << 20)


def test_encode_event_keeps_what_only_the_full_validator_accepts() -> None:
    session_id, data = encode_event({**tool_event("s", 0), "http_status": 404.0}, 1 << 20)
    assert json.loads(data)["http_status"] == 404.0


def test_encode_event_redacts_secrets_from_the_message_and_leaves_the_caller_s_event_alone() -> None:
    key = "sk-ant-api03-" + "q7W" * 20
    event = {**tool_event("s", 0), "status": "error", "error_message": f"401 with x-api-key {key}"}
    _, data = encode_event(event, 1 << 20)
    assert json.loads(data)["error_message"] == "401 with x-api-key [REDACTED]"
    assert key in event["error_message"]  # a copy was redacted, not the caller's dict


def encoded(session_id: str, seq: int, pad: int = 0) -> tuple[str, bytes]:
    """An encoded event; a fixed ts and 4-digit seq make every one the same size."""
    event = tool_event(session_id, 1000 + seq, error_message="x" * pad, ts=1_767_225_600.5)
    return encode_event(event, 1 << 20)


def test_build_records_of_nothing_is_no_records() -> None:
    assert build_records([], 4, 1 << 20) == []


def test_build_records_groups_by_partition_keeping_order() -> None:
    items = [encoded(f"sess_{i % 5}", i) for i in range(50)]

    records = build_records(items, 3, 1 << 20)

    assert len(records) == len({partition_for(s.encode(), 3) for s, _ in items})
    for record in records:
        events = json.loads(record.value)
        assert {partition_for(e["session_id"].encode(), 3) for e in events} == {record.partition}
        assert record.key == events[0]["session_id"].encode()
        assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


def test_build_records_splits_at_max_record_events() -> None:
    items = [encoded("sess_1", i) for i in range(2 * MAX_RECORD_EVENTS + 5)]

    records = build_records(items, 4, 1 << 30)

    assert [len(json.loads(r.value)) for r in records] == [MAX_RECORD_EVENTS, MAX_RECORD_EVENTS, 5]
    assert [e["seq"] - 1000 for r in records for e in json.loads(r.value)] == list(range(len(items)))


def test_build_records_splits_at_max_bytes() -> None:
    items = [encoded("sess_1", i, pad=100) for i in range(30)]
    max_bytes = 3 * len(items[0][1]) + 6  # room for three events ("[a,b,c]"), not four

    records = build_records(items, 1, max_bytes)

    assert [len(json.loads(r.value)) for r in records] == [3] * 10
    assert all(len(r.value) <= max_bytes for r in records)


def test_build_records_fits_an_event_of_the_largest_allowed_size() -> None:
    item = encoded("sess_1", 0, pad=500)
    max_bytes = len(item[1]) + 2

    [record] = build_records([item, item], 1, max_bytes)[:1]

    assert len(record.value) == max_bytes
    assert len(build_records([item, item], 1, max_bytes)) == 2


# counters


async def test_counters_add_up_across_an_outage(make_producer: MakeProducer, spool_dir: Path) -> None:
    sender = MemorySender()
    producer = await make_producer(sender)
    emit_all(producer, interleaved(sessions=3, per_session=10))
    assert await producer.flush(5)

    sender.available = False
    emit_all(producer, interleaved(sessions=3, per_session=10, start=10))
    producer.emit({"type": "api_call"})
    await eventually(lambda: len(on_disk(spool_dir)) == 30)
    sender.available = True

    assert await producer.flush(5)
    stats = producer.stats
    assert (stats.emitted, stats.sent, stats.spooled, stats.rejected) == (60, 60, 30, 1)
    assert len(delivered(sender)) == stats.sent


# outage


async def test_outage_from_the_start_spools_to_disk_then_delivers_in_order(
    make_producer: MakeProducer, spool_dir: Path
) -> None:
    sender = MemorySender()
    sender.available = False
    producer = await make_producer(sender)
    events = interleaved(sessions=5, per_session=40)

    emit_all(producer, events)

    await eventually(lambda: len(on_disk(spool_dir)) == len(events))
    assert seqs_by_session(on_disk(spool_dir)) == seqs_by_session(events)
    assert producer.backlog == 0
    assert sender.records == []

    sender.available = True
    assert await producer.flush(5)
    assert seqs_by_session(delivered(sender)) == seqs_by_session(events)
    assert on_disk(spool_dir) == []
    assert producer.stats.sent == len(events)


async def test_outage_in_the_middle_loses_nothing_and_keeps_order(
    make_producer: MakeProducer, spool_dir: Path
) -> None:
    sender = MemorySender()
    producer = await make_producer(sender)
    before = interleaved(sessions=4, per_session=10)
    during = interleaved(sessions=4, per_session=10, start=10)
    after = interleaved(sessions=4, per_session=10, start=20)
    emit_all(producer, before)
    assert await producer.flush(5)

    sender.available = False
    emit_all(producer, during)
    await eventually(lambda: len(on_disk(spool_dir)) == len(during))
    emit_all(producer, after)
    sender.available = True

    assert await producer.flush(5)
    assert seqs_by_session(delivered(sender)) == seqs_by_session(before + during + after)
    assert on_disk(spool_dir) == []


async def test_events_emitted_while_a_send_fails_keep_their_place(make_producer: MakeProducer) -> None:
    sender = GatedSender()
    producer = await make_producer(sender)
    emit_all(producer, [tool_event("sess_1", seq) for seq in range(5)])
    assert await producer.flush(5)

    sender.gate.clear()
    emit_all(producer, [tool_event("sess_1", seq) for seq in range(5, 10)])
    await eventually(lambda: sender.in_flight == 1)
    emit_all(producer, [tool_event("sess_1", seq) for seq in range(10, 15)])  # queued behind the send
    sender.available = False
    sender.gate.set()  # the send in flight fails
    await eventually(lambda: producer.spooling)
    emit_all(producer, [tool_event("sess_1", seq) for seq in range(15, 20)])
    sender.available = True

    assert await producer.flush(5)
    assert seqs_by_session(delivered(sender)) == {"sess_1": list(range(20))}


async def test_queue_overflow_spools_instead_of_growing_memory(
    make_producer: MakeProducer, spool_dir: Path
) -> None:
    sender = MemorySender()
    sender.available = False
    producer = await make_producer(sender, queue_size=10)
    events = interleaved(sessions=4, per_session=50)

    for event in events:
        assert producer.emit(event)
        assert producer.backlog <= 10
    assert len(on_disk(spool_dir)) >= len(events) - 10

    sender.available = True
    assert await producer.flush(5)
    assert seqs_by_session(delivered(sender)) == seqs_by_session(events)


async def test_a_slow_sender_spools_the_overflow_and_delivers_it_in_order(
    make_producer: MakeProducer,
) -> None:
    sender = GatedSender()
    sender.gate.clear()
    producer = await make_producer(sender, queue_size=10)
    first = interleaved(sessions=2, per_session=5)
    emit_all(producer, first)
    await eventually(lambda: sender.in_flight == 1)

    rest = interleaved(sessions=2, per_session=100, start=5)
    for event in rest:
        assert producer.emit(event)
        assert producer.backlog <= 10
    assert producer.stats.spooled >= len(rest) - 10

    sender.gate.set()
    assert await producer.flush(5)
    assert seqs_by_session(delivered(sender)) == seqs_by_session(first + rest)


async def half_full_behind_a_held_send(make_producer: MakeProducer) -> tuple[GatedSender, EventProducer]:
    """A producer of 10 whose first send waits at the gate, with 5 events queued behind it."""
    sender = GatedSender()
    sender.gate.clear()
    producer = await make_producer(sender, queue_size=10)
    emit_all(producer, interleaved(sessions=1, per_session=1))
    await eventually(lambda: sender.in_flight == 1)
    emit_all(producer, interleaved(sessions=1, per_session=5, start=1))
    return sender, producer


async def test_paced_waits_while_the_queue_is_half_full_and_wakes_when_it_is_taken(
    make_producer: MakeProducer,
) -> None:
    sender, producer = await half_full_behind_a_held_send(make_producer)

    paced = asyncio.create_task(producer.paced())
    await asyncio.sleep(0.05)
    assert not paced.done()

    sender.gate.set()  # the send in flight ends; the queue is taken for the next
    await asyncio.wait_for(paced, 5)
    assert await producer.flush(5)
    assert producer.stats.spooled == 0


async def test_paced_returns_once_the_producer_spools(make_producer: MakeProducer) -> None:
    _, producer = await half_full_behind_a_held_send(make_producer)  # the gate stays shut

    paced = asyncio.create_task(producer.paced())
    await asyncio.sleep(0.05)
    assert not paced.done()

    emit_all(producer, interleaved(sessions=1, per_session=20, start=5))  # past the queue: spooled
    await asyncio.wait_for(paced, 5)
    assert producer.spooling


# close and restart


async def test_close_with_the_broker_down_leaves_the_events_in_the_spool(
    make_producer: MakeProducer, spool_dir: Path
) -> None:
    sender = MemorySender()
    sender.available = False
    producer = await make_producer(sender)
    events = interleaved(sessions=3, per_session=20)
    emit_all(producer, events)

    await producer.close(timeout=5)

    assert seqs_by_session(on_disk(spool_dir)) == seqs_by_session(events)
    assert sender.records == []


async def test_a_new_producer_replays_the_spool_before_its_own_events(
    make_producer: MakeProducer, spool_dir: Path
) -> None:
    down = MemorySender()
    down.available = False
    old = await make_producer(down)
    earlier = interleaved(sessions=3, per_session=20)
    emit_all(old, earlier)
    await old.close(timeout=5)

    sender = MemorySender()
    new = await make_producer(sender)
    later = interleaved(sessions=3, per_session=5, start=20)
    emit_all(new, later)

    assert await new.flush(5)
    assert seqs_by_session(delivered(sender)) == seqs_by_session(earlier + later)
    assert len({e["event_id"] for e in delivered(sender)}) == len(earlier + later)
    await new.close()
    assert on_disk(spool_dir) == []


async def test_nothing_is_replayed_twice_after_a_clean_run(
    make_producer: MakeProducer, spool_dir: Path
) -> None:
    first = MemorySender()
    producer = await make_producer(first)
    emit_all(producer, interleaved(sessions=2, per_session=10))
    await producer.close()
    assert len(delivered(first)) == 20

    assert on_disk(spool_dir) == []

    second = MemorySender()
    assert await (await make_producer(second)).flush(5)
    assert second.records == []


async def test_a_replay_after_an_outage_is_not_repeated_by_the_next_producer(
    make_producer: MakeProducer,
) -> None:
    sender = MemorySender()
    sender.available = False
    producer = await make_producer(sender)
    emit_all(producer, interleaved(sessions=2, per_session=10))
    await eventually(lambda: producer.stats.spooled == 20)
    sender.available = True
    assert await producer.flush(5)
    await producer.close()

    again = MemorySender()
    second = await make_producer(again)

    assert await second.flush(5)
    assert again.records == []


# never blocks


async def test_emit_never_blocks_on_a_hanging_broker(make_producer: MakeProducer) -> None:
    producer = await make_producer(HangingSender(), queue_size=1000)
    events = interleaved(sessions=10, per_session=1000)

    results = [producer.emit(event) for event in events]

    assert results == [True] * 10_000
    assert producer.stats.emitted == 10_000
    assert producer.backlog <= 1000


async def test_close_on_a_hanging_broker_spools_what_was_in_flight(
    make_producer: MakeProducer, spool_dir: Path
) -> None:
    sender = HangingSender()
    producer = await make_producer(sender)
    events = interleaved(sessions=4, per_session=25)
    emit_all(producer, events)
    assert not await producer.flush(0.2)  # the batch is stuck in the sender

    await producer.close(timeout=0.1)

    assert seqs_by_session(on_disk(spool_dir)) == seqs_by_session(events)


# content capture


def tool_with_content(**fields: Any) -> dict[str, Any]:
    key = "sk-proj-" + "Zq8" * 15
    return {
        **tool_event("s", 0),
        "args": {
            "cmd": f"curl -H 'Authorization: Bearer {key}' https://x.test",
            "n": [1, {"token": "abc12345xyz"}],
        },
        "result": f"ok {key} " + "y" * 5000,
        **fields,
    }


def test_content_is_dropped_unless_capture_is_on() -> None:
    _, data = encode_event(tool_with_content(), 1 << 20)
    assert "args" not in json.loads(data) and "result" not in json.loads(data)


def test_captured_content_is_redacted_and_the_result_truncated() -> None:
    _, data = encode_event(tool_with_content(), 1 << 20, ContentCapture(enabled=True, max_result_chars=100))
    event = json.loads(data)
    assert "sk-proj-" not in data.decode() and "abc12345xyz" not in data.decode()
    assert event["args"]["n"][0] == 1 and "[REDACTED]" in event["args"]["cmd"]
    assert len(event["result"]) == 100 and event["result"].startswith("ok [REDACTED] yyy")


def test_the_setting_turns_capture_on(tmp_path: Any) -> None:
    settings = Settings.from_env(
        {"HERMES_STREAM_CAPTURE_CONTENT": "true", "HERMES_STREAM_CAPTURE_MAX_CHARS": "10"}
    )
    assert ContentCapture.from_settings(settings) == ContentCapture(True, 10)
    with pytest.raises(ConfigError, match="CAPTURE_CONTENT"):
        Settings.from_env({"HERMES_STREAM_CAPTURE_CONTENT": "maybe"})
