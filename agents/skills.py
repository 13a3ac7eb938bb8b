"""Skills: ``hermes.skill_invocations`` → live averages per skill × model → ``hermes.alerts``.

Run: ``hermes-stream worker`` (beside ingest).

The ingest agent publishes each finalised invocation keyed by skill and
model, so this agent's table (``skill_trends``, keyed the same way) is
co-partitioned with its input and every worker keeps the averages of the
pairs on its partitions. Each invocation updates its
:class:`hermes_stream.skill_trend.SkillTrend`; a regression is published to
``hermes.alerts`` (the alert sink stores it).
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.types import StreamT, TableT

from hermes_stream import codec
from hermes_stream.exceptions import JSONError
from hermes_stream.settings import Settings
from hermes_stream.skill_trend import SkillTrend, TrendConfig
from hermes_stream.topics import Topics

from .ingest import Publish

log = logging.getLogger(__name__)


def register(app: faust.App, settings: Settings, publish: Publish) -> TableT[bytes, bytes]:
    topics = Topics(settings.topic_prefix)
    source = app.topic(
        topics.skill_invocations,
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        partitions=settings.partitions,
    )
    table = app.Table("skill_trends", key_type=bytes, value_type=bytes, partitions=settings.partitions)
    trends = SkillTrends(table, settings.trend_config(), publish, topics.alerts)
    app.agent(source, name="skills")(trends.run)
    return table


class SkillTrends:
    """Fold finalised invocations into their (skill, model) trend."""

    def __init__(
        self, table: TableT[bytes, bytes], config: TrendConfig, publish: Publish, alerts: str
    ) -> None:
        self.table = table
        self.config = config
        self.publish = publish
        self.alerts = alerts

    async def run(self, stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            await self.add(event.message.key, event.message.value)

    async def add(self, key: bytes | None, value: bytes | None) -> None:
        try:
            row: dict[str, Any] = codec.loads(value or b"")
            name = row["skill_name"]
        except (JSONError, KeyError, TypeError) as exc:
            log.error("skipped a message on the skill invocations topic: %s", exc)
            return
        key = key or name.encode()
        state = self.table.get(key)
        trend = SkillTrend.from_dict(codec.loads(state)) if state else SkillTrend(name, row.get("model"))
        alert = trend.add(row, self.config)
        self.table[key] = codec.dumps(trend.to_dict())
        if alert is not None:
            log.warning("alert %s: %s", alert.rule, alert.message)
            await self.publish([(self.alerts, alert.subject.encode(), codec.dumps(alert.to_dict()))])
