"""The ingest agent in Faust's test context: no broker, channels for outputs, a real DuckDB file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.types import TP

from agents import codec as faust_codec
from agents import ingest
from hermes_stream import codec
from hermes_stream.events import make_event
from hermes_stream.settings import Settings
from hermes_stream.store import query


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        db=tmp_path / "hermes.duckdb", data_dir=tmp_path / "state", partitions=1, sink_interval=0.01
    )


@pytest.fixture
async def app(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[faust.App]:
    # Async, so Faust binds to the test's running loop rather than making one.
    faust_codec.register()
    app = faust.App(
        "agent-test", broker="kafka://127.0.0.1:1", store="memory://", datadir=str(settings.data_dir)
    )
    # The sessions table places keys with the producer's partitioner, which
    # needs broker metadata; with one partition the answer is always 0.
    monkeypatch.setattr(app.producer, "key_partition", lambda topic, key: TP(topic, 0))
    yield app
    # The stream touches app.consumer, whose never-started thread made a loop.
    thread_loop = app.consumer._thread.thread_loop
    if not thread_loop.is_closed():
        thread_loop.close()


@pytest.fixture
async def outputs(app: faust.App) -> ingest.Outputs:
    return ingest.Outputs(dlq=app.channel(), sessions=app.channel())


def subscribe(channel: faust.types.ChannelT[Any]) -> faust.types.ChannelT[Any]:
    """A subscriber that receives what is sent to *channel* from now on."""
    subscriber: faust.types.ChannelT[Any] = channel.__aiter__()
    return subscriber


def api_call(session: str, tokens: int) -> dict[str, Any]:
    return make_event(
        "api_call", session, model="m", provider="p", input_tokens=tokens, output_tokens=1, status="ok"
    )


def session_rows(settings: Settings) -> list[tuple[Any, ...]]:
    if not settings.db.exists():
        return []
    return query(settings.db, "SELECT status, api_calls, input_tokens FROM sessions")[1]


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def drain(channel: faust.types.ChannelT[Any]) -> list[Any]:
    items = []
    while not channel.queue.empty():
        items.append(channel.queue.get_nowait().value)
    return items


async def test_records_become_rows_sessions_and_dead_letters(app, settings, outputs) -> None:
    ingest.register(app, settings, outputs)
    dlq, sessions = subscribe(outputs.dlq), subscribe(outputs.sessions)
    async with app.agents["ingest"].test_context() as agent:
        events = [
            api_call("s1", 10),
            api_call("s1", 20),
            make_event("session_end", "s1", end_reason="completed"),
        ]
        await agent.put(codec.dumps(events))
        await agent.put(b"not json")
        await agent.put(codec.dumps(api_call("s1", 5)))  # after the end: updates the same row
        await eventually(lambda: session_rows(settings) == [("ended", 3, 35)])
    _, dead = query(settings.db, "SELECT reason FROM dead_letters")
    assert len(dead) == 1 and "not valid JSON" in dead[0][0]
    letters = drain(dlq)
    assert [letter["reason"] for letter in letters] == [dead[0][0]]
    published = drain(sessions)
    assert [s["api_calls"] for s in published] == [2, 3]  # at the end, then the late update
