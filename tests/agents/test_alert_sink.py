"""The alert sink and the skills agent in Faust's test context: no broker, a real DuckDB file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import faust
import pytest

from agents import alert_sink, skills
from agents import codec as faust_codec
from hermes_stream import codec
from hermes_stream.settings import Settings
from hermes_stream.store import Store, WriterProcess, query


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(db=tmp_path / "hermes.duckdb", data_dir=tmp_path / "state", partitions=1)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[faust.App]:
    faust_codec.register()
    app = faust.App(
        "agent-test", broker="kafka://127.0.0.1:1", store="memory://", datadir=str(settings.data_dir)
    )
    yield app
    thread_loop = app.consumer._thread.thread_loop
    if not thread_loop.is_closed():
        thread_loop.close()


async def test_the_alert_sink_stores_each_alert_once(app, settings) -> None:
    Store(settings.db).ensure_schema()
    writer = WriterProcess(settings.db, settings.lock_timeout, hold=0)
    alert_sink.register(app, settings, writer)
    alert = {
        "alert_id": "permanent_failure-1",
        "ts": 1_767_225_600.0,
        "rule": "permanent_failure",
        "severity": "critical",
        "subject": "openai/gpt-4o",
        "message": "openai/gpt-4o: auth",
        "evidence": {"reason": "auth"},
    }
    async with app.agents["alert_sink"].test_context() as agent:
        await agent.put(codec.dumps(alert))
        await agent.put(b"junk")  # skipped with a log line
        await agent.put(codec.dumps(alert))  # a replay
        await eventually(lambda: rows(settings) != [])
    assert rows(settings) == [
        ("permanent_failure-1", "permanent_failure", "openai/gpt-4o", '{"reason":"auth"}')
    ]


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def rows(settings: Settings) -> list[tuple[Any, ...]]:
    return query(settings.db, "SELECT alert_id, rule, subject, CAST(evidence AS VARCHAR) FROM alerts")[1]


class Sent(list[tuple[str, bytes, Any]]):
    async def __call__(self, messages: Sequence[tuple[str, bytes, bytes]]) -> list[Any]:
        self.extend((topic, key, codec.loads(value)) for topic, key, value in messages)
        return []


async def test_the_skills_agent_keeps_a_trend_per_skill_and_model_and_alerts_on_regression(
    app, settings
) -> None:
    settings = settings.with_(skill_min_samples=3, skill_success_floor=0.5)
    sent = Sent()
    table = skills.register(app, settings, sent)
    async with app.agents["skills"].test_context() as agent:
        for i in range(4):
            invocation = {
                "invocation_id": f"i{i}",
                "skill_name": "digest",
                "model": "qwen",
                "provider": "ollama",
                "invoked_at": 1_767_225_600.0 + i,
                "completed_at": 1_767_225_660.0 + i,
                "success": False,
            }
            await agent.put(codec.dumps(invocation), key=b"digest|qwen")
        await agent.put(b"junk", key=b"x")  # skipped with a log line
    state = codec.loads(table[b"digest|qwen"])
    assert (state["samples"], state["outcomes"]) == (4, 4)
    alerts = [value for topic, _, value in sent if topic == "hermes.alerts"]
    assert [(a["rule"], a["subject"]) for a in alerts] == [("skill_regression", "digest on qwen")]
