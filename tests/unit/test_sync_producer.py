"""The thread-backed producer facade: emit from any thread, same guarantees as the async one."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hermes_stream.events import make_event
from hermes_stream.exceptions import BrokerUnavailable
from hermes_stream.producer import EventProducer
from hermes_stream.sender import MemorySender
from hermes_stream.sync_producer import SyncEventProducer
from tests.unit.delivery import delivered, seqs_by_session

Event = dict[str, Any]
TOPIC = "test.events"
MakeSync = Callable[..., SyncEventProducer]


@pytest.fixture
def make_sync(tmp_path: Path) -> Iterator[MakeSync]:
    """Start sync producers over a MemorySender on one spool directory; close them afterwards."""
    producers: list[SyncEventProducer] = []

    def make(sender: MemorySender, **options: Any) -> SyncEventProducer:
        def factory() -> EventProducer:
            return EventProducer(sender, topic=TOPIC, spool_dir=tmp_path / "spool", **options)

        producer = SyncEventProducer(factory=factory).start()
        producers.append(producer)
        return producer

    yield make
    for producer in producers:
        producer.close(timeout=1)


def tool_event(session_id: str, seq: int, **fields: Any) -> Event:
    return make_event("tool_result", session_id, tool_name="search", status="ok", seq=seq, **fields)


def emit_from_threads(producer: SyncEventProducer, threads: int, per_thread: int) -> list[bool]:
    """Each thread plays one agent: its own two sessions, emitted in order."""
    results: list[bool] = []

    def agent(n: int) -> None:
        ok = [producer.emit(tool_event(f"sess_{n}_{seq % 2}", seq)) for seq in range(per_thread)]
        results.extend(ok)

    workers = [threading.Thread(target=agent, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


def expected_seqs(threads: int, per_thread: int) -> dict[str, list[int]]:
    return {
        f"sess_{n}_{parity}": list(range(parity, per_thread, 2)) for n in range(threads) for parity in (0, 1)
    }


def test_events_from_several_threads_are_all_delivered_in_session_order(make_sync: MakeSync) -> None:
    sender = MemorySender()
    producer = make_sync(sender)

    results = emit_from_threads(producer, threads=4, per_thread=500)

    assert results == [True] * 2000
    assert producer.flush(5)
    assert seqs_by_session(delivered(sender)) == expected_seqs(4, 500)
    assert len(sender.records) < 2000  # batched


def test_stats_count_emitted_sent_and_rejected(make_sync: MakeSync) -> None:
    sender = MemorySender()
    producer = make_sync(sender)

    emit_from_threads(producer, threads=3, per_thread=100)
    producer.emit({"type": "tool_result", "session_id": "sess_x"})
    assert producer.flush(5)

    stats = producer.stats
    assert (stats.emitted, stats.sent, stats.spooled, stats.rejected) == (300, 300, 0, 1)


def test_invalid_event_is_rejected_in_the_callers_thread(
    make_sync: MakeSync, caplog: pytest.LogCaptureFixture
) -> None:
    producer = make_sync(MemorySender())

    with caplog.at_level(logging.WARNING, logger="hermes_stream"):
        assert producer.emit({**tool_event("sess_1", 0), "status": "maybe"}) is False
        assert producer.emit(None) is False  # type: ignore[arg-type]

    assert producer.stats.rejected == 2
    assert producer.stats.emitted == 0
    rejections = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert [r.threadName for r in rejections] == [threading.current_thread().name] * 2
    assert "status" in rejections[0].getMessage()


def test_the_producers_record_size_limit_applies(make_sync: MakeSync) -> None:
    sender = MemorySender()
    producer = make_sync(sender, max_record_bytes=2048)

    assert producer.emit(tool_event("sess_1", 0, error_message="x" * 4096)) is False
    assert producer.emit(tool_event("sess_1", 1, error_message="x" * 100)) is True

    assert producer.flush(5)
    assert all(len(record.value) <= 2048 for _, record in sender.records)
    assert producer.stats.rejected == 1


def test_close_delivers_what_was_emitted(make_sync: MakeSync) -> None:
    sender = MemorySender()
    producer = make_sync(sender)
    for seq in range(50):
        producer.emit(tool_event("sess_1", seq))

    producer.close()

    assert seqs_by_session(delivered(sender)) == {"sess_1": list(range(50))}


def test_close_with_the_broker_down_keeps_events_for_the_next_producer(make_sync: MakeSync) -> None:
    down = MemorySender()
    down.available = False
    first = make_sync(down)
    for seq in range(30):
        first.emit(tool_event("sess_1", seq))
    first.close()
    assert down.records == []

    sender = MemorySender()
    second = make_sync(sender)
    second.emit(tool_event("sess_1", 30))

    assert second.flush(5)
    assert seqs_by_session(delivered(sender)) == {"sess_1": list(range(31))}


def test_context_manager_starts_and_closes(tmp_path: Path) -> None:
    sender = MemorySender()

    def factory() -> EventProducer:
        return EventProducer(sender, topic=TOPIC, spool_dir=tmp_path / "spool")

    with SyncEventProducer(factory=factory) as producer:
        assert producer.emit(tool_event("sess_1", 0))

    assert seqs_by_session(delivered(sender)) == {"sess_1": [0]}


def test_using_the_producer_before_start_says_so(tmp_path: Path) -> None:
    producer = SyncEventProducer(
        factory=lambda: EventProducer(MemorySender(), topic=TOPIC, spool_dir=tmp_path / "spool")
    )

    with pytest.raises(RuntimeError, match="start"):
        producer.flush(1)
    producer.close()


def test_a_failed_start_raises_and_leaves_no_thread_behind() -> None:
    def factory() -> EventProducer:
        raise BrokerUnavailable("no broker configured")

    before = threading.active_count()

    with pytest.raises(BrokerUnavailable):
        SyncEventProducer(factory=factory).start()
    assert threading.active_count() == before
