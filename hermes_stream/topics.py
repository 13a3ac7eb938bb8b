"""Topic names and their creation.

Every topic name starts with the configured prefix (``hermes`` by default).
``hermes.events`` is the input, keyed by session id so that one session's
events stay in order on one partition.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from hermes_stream.exceptions import BrokerUnavailable


@dataclass(frozen=True)
class Topics:
    """The names of hermes-stream's topics for one prefix."""

    prefix: str = "hermes"

    @property
    def events(self) -> str:
        return f"{self.prefix}.events"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}.dlq"

    @property
    def sessions(self) -> str:
        return f"{self.prefix}.sessions"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts"

    @property
    def skill_invocations(self) -> str:
        return f"{self.prefix}.skill_invocations"

    def errors(self, category: str) -> str:
        return f"{self.prefix}.errors.{category}"

    def all(self) -> tuple[str, ...]:
        categories = ("retryable", "permanent", "unknown")
        return (
            self.events,
            *(self.errors(c) for c in categories),
            self.alerts,
            self.sessions,
            self.skill_invocations,
            self.dlq,
        )


async def ensure_topics(bootstrap: str, names: tuple[str, ...], partitions: int) -> None:
    """Create the topics that do not exist yet; existing ones are left alone."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, partitions, 1) for n in names if n not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process created them first
    except KafkaError as exc:
        raise BrokerUnavailable(f"cannot create topics on {bootstrap}: {exc}") from exc
    finally:
        await admin.close()


def ensure_topics_sync(bootstrap: str, names: tuple[str, ...], partitions: int) -> None:
    asyncio.run(ensure_topics(bootstrap, names, partitions))
