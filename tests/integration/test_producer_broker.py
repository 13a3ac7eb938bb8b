"""The producer SDK against a real broker that is not there yet."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hermes_stream.broker import EmbeddedBroker, free_port
from hermes_stream.events import make_event
from hermes_stream.producer import EventProducer
from hermes_stream.settings import Settings
from hermes_stream.topics import Topics, ensure_topics
from tests.integration.conftest import events_in, read_topic


def test_events_emitted_before_the_broker_exists_all_arrive(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(
        broker=f"127.0.0.1:{port}", spool_dir=tmp_path / "spool", topic_prefix="late", linger_ms=5
    )
    events = [
        make_event("tool_result", f"sess-{i % 7}", tool_name="terminal", status="ok", seq=i)
        for i in range(500)
    ]

    async def scenario() -> tuple[int, int]:
        producer = EventProducer.from_settings(settings)
        await producer.start()
        for event in events:
            assert producer.emit(event)
        await asyncio.sleep(0.5)  # let the producer find out the broker is missing
        spooled = producer.stats.spooled
        with EmbeddedBroker(port) as broker:
            await ensure_topics(broker.bootstrap, Topics("late").all(), 4)
            assert await producer.flush(timeout=60)
            await producer.close()
            values = await asyncio.to_thread(read_topic, broker.bootstrap, Topics("late").events)
            received = events_in(values)
        return spooled, received

    spooled, received = asyncio.run(scenario())
    assert spooled == len(events)
    assert sorted(e["event_id"] for e in received) == sorted(e["event_id"] for e in events)
    for session in {e["session_id"] for e in events}:
        sequence = [e["seq"] for e in received if e["session_id"] == session]
        assert sequence == sorted(sequence), f"{session} arrived out of order"
    assert not list((tmp_path / "spool").glob("*.spool"))
