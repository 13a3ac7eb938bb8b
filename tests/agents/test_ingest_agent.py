"""The ingest agent in Faust's test context: no broker, channels for outputs, a real DuckDB file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import faust
import pytest

from agents import codec as faust_codec
from agents import ingest
from hermes_stream import codec
from hermes_stream.events import make_event
from hermes_stream.settings import Settings
from hermes_stream.store import WriterProcess, query


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        db=tmp_path / "hermes.duckdb", data_dir=tmp_path / "state", partitions=1, sink_interval=0.01
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[faust.App]:
    # Async, so Faust binds to the test's running loop rather than making one.
    faust_codec.register()
    app = faust.App(
        "agent-test", broker="kafka://127.0.0.1:1", store="memory://", datadir=str(settings.data_dir)
    )
    yield app
    # The stream touches app.consumer, whose never-started thread made a loop.
    thread_loop = app.consumer._thread.thread_loop
    if not thread_loop.is_closed():
        thread_loop.close()


class Sent(list[tuple[str, bytes, Any]]):
    """The in-memory publish seam: (topic, key, decoded value) in order."""

    async def __call__(self, messages: Sequence[tuple[str, bytes, bytes]]) -> list[Any]:
        self.extend((topic, key, codec.loads(value)) for topic, key, value in messages)
        return []

    def on(self, topic: str) -> list[tuple[bytes, Any]]:
        """(key, value) of what went to *topic*, in order."""
        return [(key, value) for sent_to, key, value in self if sent_to == topic]


@pytest.fixture
async def outputs(app: faust.App) -> ingest.Outputs:
    return ingest.Outputs(dlq=app.channel(), publish=Sent())


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
    ingest.register(app, settings, WriterProcess(settings.db, settings.lock_timeout), outputs)
    dlq = subscribe(outputs.dlq)
    async with app.agents["ingest"].test_context() as agent:
        events = [
            api_call("s1", 10),
            api_call("s1", 20),
            make_event("session_end", "s1", end_reason="completed"),
        ]
        await agent.put(codec.dumps(events))
        await agent.put(b"not json")
        await eventually(lambda: session_rows(settings) == [("ended", 2, 30)])
        await agent.put(codec.dumps(api_call("s1", 5)))  # after the end: updates the same row
        await eventually(lambda: session_rows(settings) == [("ended", 3, 35)])
        # Published once durable, which the rows becoming visible may precede.
        sent = outputs.publish
        assert isinstance(sent, Sent)
        await eventually(lambda: dlq.queue.qsize() == 1 and len(sent.on("hermes.sessions")) == 2)
    _, dead = query(settings.db, "SELECT reason FROM dead_letters")
    assert len(dead) == 1 and "not valid JSON" in dead[0][0]
    letters = drain(dlq)
    assert [letter["reason"] for letter in letters] == [dead[0][0]]
    published = sent.on("hermes.sessions")
    assert [(key, s["api_calls"]) for key, s in published] == [(b"s1", 2), (b"s1", 3)]  # then the late update
    # The table's changes go out with the rest, for recovery from the changelog.
    changelog = app.tables["sessions"].changelog_topic.get_topic_name()
    assert [(key, s["api_calls"]) for key, s in sent.on(changelog)] == [(b"s1", 2), (b"s1", 3)]
    assert codec.loads(app.tables["sessions"][b"s1"])["api_calls"] == 3


async def test_records_are_written_once_the_input_pauses_without_waiting_for_the_interval(
    app, settings, outputs
) -> None:
    settings = settings.with_(sink_interval=3600.0)
    ingest.register(app, settings, WriterProcess(settings.db, settings.lock_timeout), outputs)
    async with app.agents["ingest"].test_context() as agent:
        await agent.put(codec.dumps([api_call("s1", 10), api_call("s1", 20)]))
        await eventually(lambda: session_rows(settings) == [("active", 2, 30)])


async def test_a_trickle_of_records_is_written_at_most_every_pause_spacing(app, settings, outputs) -> None:
    # Each record is followed by a pause; one write per record cost the writer ~40 ms each.
    settings = settings.with_(sink_interval=3600.0)
    ingest.register(app, settings, WriterProcess(settings.db, settings.lock_timeout), outputs)
    agent_ = app.agents["ingest"]
    state = agent_.fun.__self__  # the Ingest behind the agent
    async with agent_.test_context() as agent:
        started = asyncio.get_running_loop().time()
        for tokens in range(1, 13):
            await agent.put(codec.dumps(api_call("s1", tokens)))
            await asyncio.sleep(0.1)  # longer than the 50 ms pause
        await eventually(lambda: session_rows(settings) == [("active", 12, 78)])
        elapsed = asyncio.get_running_loop().time() - started
    assert 1 <= state.counters.writes <= elapsed / ingest.PAUSE_SPACING + 1


def call(session: str, **fields: Any) -> dict[str, Any]:
    base = {"model": "claude-sonnet-4", "provider": "anthropic", "input_tokens": 10, "output_tokens": 1}
    return make_event("api_call", session, **(base | {"status": "ok"} | fields))


async def test_each_failed_call_goes_to_the_topic_of_its_category_at_once(app, settings, outputs) -> None:
    ingest.register(app, settings, WriterProcess(settings.db, settings.lock_timeout), outputs)
    sent = outputs.publish
    secret = "sk-ant-api03-" + "Zx9" * 20
    async with app.agents["ingest"].test_context() as agent:
        await agent.put(
            codec.dumps(
                [
                    call("s1"),
                    call("s1", status="error", http_status=529, error_type="overloaded_error"),
                    call("s1", status="error", http_status=401, error_message=f"invalid x-api-key {secret}"),
                    make_event(
                        "tool_result", "s1", tool_name="terminal", status="error", error_message="exit 1"
                    ),
                ]
            )
        )
        await agent.put(b"not json")  # a dead letter; the agent goes on
        await agent.put(codec.dumps(call("s2", status="error", http_status=500)))
        await eventually(lambda: len(sent) == 5)  # before any DuckDB write is waited for
        await eventually(lambda: settings.db.exists() and query(settings.db, "FROM errors")[1] != [])
        await eventually(lambda: query(settings.db, "SELECT count(*) FROM errors")[1] == [(4,)])
    records = [(topic, key, value) for topic, key, value in sent if topic.startswith("hermes.errors.")]
    assert [(t, k, v["kind"], v["reason"]) for t, k, v in records] == [
        ("hermes.errors.retryable", b"s1", "api", "overloaded"),
        ("hermes.errors.permanent", b"s1", "api", "auth"),
        ("hermes.errors.unknown", b"s1", "tool", "unknown"),
        ("hermes.errors.retryable", b"s2", "api", "server_error"),
    ]
    assert set(records[0][2]) == {
        "event_id", "session_id", "ts", "kind", "category", "reason", "should_retry", "max_retries",
        "backoff_seconds", "http_status", "error_type", "model", "provider", "tool_name", "message",
    }  # fmt: skip
    alerts = [value for topic, _, value in sent if topic == "hermes.alerts"]
    assert [(a["rule"], a["subject"]) for a in alerts] == [("permanent_failure", "anthropic/claude-sonnet-4")]
    # Nothing of the key reached a topic or a table.
    assert all(secret not in str(value) for _, _, value in sent)
    _, stored = query(
        settings.db,
        "SELECT a.error_message, a.error_category, a.error_reason, e.message "
        "FROM api_calls a JOIN errors e USING (event_id) WHERE a.http_status = 401",
    )
    assert stored == [("invalid x-api-key [REDACTED]", "permanent", "auth", "invalid x-api-key [REDACTED]")]


async def test_a_session_over_budget_is_alerted_once_it_is_durable(app, settings, outputs) -> None:
    settings = settings.with_(session_budget_usd=1.0)
    ingest.register(app, settings, WriterProcess(settings.db, settings.lock_timeout), outputs)
    async with app.agents["ingest"].test_context() as agent:
        await agent.put(codec.dumps([call("s1", cost_usd=0.7), call("s1", cost_usd=0.7)]))
        await agent.put(codec.dumps(call("s1", cost_usd=0.7)))
        await eventually(lambda: any(topic == "hermes.alerts" for topic, _, _ in outputs.publish))
    alerts = [value for topic, _, value in outputs.publish if topic == "hermes.alerts"]
    assert [(a["rule"], a["subject"], a["evidence"]["budget_usd"]) for a in alerts] == [
        ("session_budget", "s1", 1.0)
    ]
