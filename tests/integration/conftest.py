"""Integration fixtures: the real embedded broker over a socket, a real worker process.

One broker serves the whole test session; every test gets its own topic
prefix, consumer group, DuckDB file and spool, so tests never see each
other's data.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from hermes_stream import codec
from hermes_stream.broker import EmbeddedBroker, free_port
from hermes_stream.events import Event
from hermes_stream.publish import publish_events
from hermes_stream.settings import Settings
from hermes_stream.topics import Topics
from hermes_stream.worker import WorkerProcess, count_rows, prepare

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    with EmbeddedBroker(log=log) as embedded:
        yield embedded


@pytest.fixture
def settings_factory(broker: EmbeddedBroker, tmp_path: Path) -> Callable[..., Settings]:
    """Fresh settings per call: own prefix, group, DuckDB file, spool."""

    def make(**changes: object) -> Settings:
        name = f"t{uuid.uuid4().hex[:10]}"
        base = tmp_path / name
        settings = Settings(
            broker=broker.bootstrap,
            topic_prefix=name,
            app_id=name,
            db=base / "hermes.duckdb",
            data_dir=base / "state",
            spool_dir=base / "spool",
            partitions=4,
            sink_interval=0.1,
            lock_timeout=20.0,
            log_level="INFO",
            web_port=free_port(),
        )
        return settings.with_(**changes)

    return make


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[Callable[[Settings], WorkerProcess]]:
    workers: list[WorkerProcess] = []

    def start(settings: Settings) -> WorkerProcess:
        prepare(settings)
        worker = WorkerProcess(settings, tmp_path / f"worker-{len(workers)}.log").start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop(timeout=15)


def publish(settings: Settings, events: Iterable[Event]) -> None:
    """Publish *events* through the SDK and wait until Kafka has them all."""
    events = list(events)
    stats = asyncio.run(publish_events(settings, events))
    assert stats.rejected == 0
    assert stats.sent == len(events)


scalar = count_rows  # one number from the test's DuckDB file (0 before it exists)


def committed_offsets(settings: Settings) -> int:
    """The offsets the worker's consumer group has committed on the input topic, summed."""

    async def fetch() -> int:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.broker, group_id=settings.app_id, enable_auto_commit=False
        )
        await consumer.start()
        try:
            topic = Topics(settings.topic_prefix).events
            offsets = [await consumer.committed(TopicPartition(topic, p)) for p in range(settings.partitions)]
            return sum(offset or 0 for offset in offsets)
        finally:
            await consumer.stop()

    return asyncio.run(fetch())


def read_topic(bootstrap: str, topic: str, expected: int = 1, timeout: float = 20.0) -> list[bytes]:
    """Every record value of *topic* from the start: at least *expected*, until it is drained."""

    async def run() -> list[bytes]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=16 * 1024 * 1024,
        )
        await consumer.start()
        values: list[bytes] = []
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while loop.time() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                if not batches and len(values) >= expected:
                    break
                values += [m.value for messages in batches.values() for m in messages]
        finally:
            await consumer.stop()
        return values

    return asyncio.run(run())


def events_in(values: list[bytes]) -> list[Event]:
    events: list[Event] = []
    for value in values:
        decoded = codec.loads(value)
        events += decoded if isinstance(decoded, list) else [decoded]
    return events


def default_sigint() -> None:
    """``preexec_fn`` for a child a test stops with SIGINT, as Ctrl+C would.

    A shell starts a background job with SIGINT ignored, and a child inherits
    that: without this, the tests hung when the suite was run with ``&``.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
