"""Publishing many events at once: ``hermes-stream emit``, the demo, the benchmark."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hermes_stream import codec
from hermes_stream.events import Event
from hermes_stream.exceptions import InvalidEvent, JSONError
from hermes_stream.producer import EventProducer, ProducerStats
from hermes_stream.settings import Settings


@dataclass
class PublishReport:
    """What a publish did: events delivered, lines rejected, events left in the spool."""

    sent: int = 0
    invalid: int = 0
    spooled: int = 0


async def publish_events(
    settings: Settings, events: Iterable[Event], on_progress: Callable[[int], object] | None = None
) -> ProducerStats:
    """Emit *events*, pacing on the producer's queue, and wait until Kafka has them.

    *on_progress* gets the number emitted so far, every 2000 events and at the end.
    """
    async with EventProducer.from_settings(settings) as producer:
        count = 0
        for count, event in enumerate(events, 1):
            producer.emit(event)
            await producer.paced()
            if on_progress and count % 2000 == 0:
                on_progress(count)
        if on_progress:
            on_progress(count)
        await producer.flush(timeout=120)
    return producer.stats


async def publish_lines(
    settings: Settings, lines: Iterable[bytes], on_invalid: Callable[[int, str], None]
) -> PublishReport:
    """Publish every valid line; call *on_invalid(line_number, reason)* for the others."""
    report = PublishReport()
    producer = EventProducer.from_settings(settings)
    await producer.start()
    try:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                session_id, data = producer.encode(codec.loads(line))
            except (JSONError, InvalidEvent) as exc:
                report.invalid += 1
                on_invalid(number, str(exc))
                continue
            producer.enqueue(session_id, data)
            await producer.paced()
        await producer.flush(timeout=30)
    finally:
        await producer.close()
    report.sent = producer.stats.sent
    report.spooled = producer.stats.emitted - producer.stats.sent
    return report
