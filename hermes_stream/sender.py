"""The seam under the producer: how batch records reach Kafka.

:class:`KafkaSender` talks to a real broker through aiokafka;
:class:`MemorySender` keeps records in a list and can play an outage, for
tests of the producer's batching and spooling logic.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from hermes_stream.exceptions import BrokerUnavailable


class Record(NamedTuple):
    """One Kafka record: its partition, key and value."""

    partition: int
    key: bytes
    value: bytes


_PARTITIONER = DefaultPartitioner()


@functools.lru_cache(maxsize=65_536)
def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for *key* (murmur2).

    Cached: aiokafka's murmur2 is pure Python (~5 µs) and a session's key
    comes back for every one of its events.
    """
    return _PARTITIONER(key, range(partitions), range(partitions))  # type: ignore[no-any-return]


class Sender(Protocol):
    """Delivers records to a topic; raises :class:`BrokerUnavailable` on any failure."""

    async def start(self) -> None: ...

    async def partition_count(self, topic: str) -> int: ...

    async def send(self, topic: str, records: Sequence[Record]) -> None: ...

    async def stop(self) -> None: ...


class KafkaSender:
    """A :class:`Sender` over aiokafka."""

    def __init__(self, bootstrap: str, max_record_bytes: int, request_timeout_ms: int = 10_000) -> None:
        self._bootstrap = bootstrap
        self._max_request = max_record_bytes + 64 * 1024
        self._timeout_ms = request_timeout_ms
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            linger_ms=0,  # the event producer batches already
            max_request_size=self._max_request,
            request_timeout_ms=self._timeout_ms,
        )
        try:
            await producer.start()
        except (KafkaError, OSError) as exc:
            await producer.stop()
            raise BrokerUnavailable(f"cannot reach the broker at {self._bootstrap}: {exc}") from exc
        self._producer = producer

    async def partition_count(self, topic: str) -> int:
        producer = self._started()
        try:
            partitions = await producer.partitions_for(topic)
        except (KafkaError, OSError) as exc:
            raise BrokerUnavailable(f"no metadata for topic {topic!r}: {exc}") from exc
        if not partitions:
            raise BrokerUnavailable(f"topic {topic!r} does not exist")
        return len(partitions)

    async def send(self, topic: str, records: Sequence[Record]) -> None:
        producer = self._started()
        try:
            futures = [await producer.send(topic, r.value, key=r.key, partition=r.partition) for r in records]
            for future in futures:
                await future
        except (KafkaError, OSError) as exc:
            raise BrokerUnavailable(f"send to {topic!r} failed: {exc}") from exc

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise BrokerUnavailable("the sender is not started")
        return self._producer


class MemorySender:
    """A :class:`Sender` that appends to :attr:`records`; set :attr:`available` to play an outage."""

    def __init__(self, partitions: int = 4) -> None:
        self.partitions = partitions
        self.available = True
        self.records: list[tuple[str, Record]] = []

    async def start(self) -> None:
        self._check()

    async def partition_count(self, topic: str) -> int:
        self._check()
        return self.partitions

    async def send(self, topic: str, records: Sequence[Record]) -> None:
        self._check()
        self.records.extend((topic, r) for r in records)

    async def stop(self) -> None:
        pass

    def _check(self) -> None:
        if not self.available:
            raise BrokerUnavailable("memory sender is unavailable")
