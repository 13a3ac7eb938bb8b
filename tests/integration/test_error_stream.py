"""Failed calls end to end: SDK → broker → worker → error topics, alerts, DuckDB."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hermes_stream import codec
from hermes_stream.events import make_event
from hermes_stream.generator import generate_events
from hermes_stream.store import query
from hermes_stream.topics import Topics
from tests.conftest import wait_for
from tests.integration.conftest import publish, read_topic, scalar

SECRET = "sk-proj-" + "Ab3dE6gH9" * 5


def call(session: str, ts: float, **fields: Any) -> dict[str, Any]:
    base = {"model": "gpt-4o", "provider": "openai", "input_tokens": 900, "output_tokens": 20, "status": "ok"}
    return make_event("api_call", session, ts=ts, **(base | fields))


def test_failed_calls_reach_their_topics_the_tables_and_the_alerts(settings_factory, worker_factory) -> None:
    settings = settings_factory(session_budget_usd=1.0)
    t0 = 1_767_225_600.0
    events = [
        call(
            "s1", t0, status="error", http_status=401, error_message=f"Incorrect API key provided: {SECRET}"
        ),
        call("s1", t0 + 1, status="error", http_status=401, error_message="Incorrect API key provided"),
        call("s1", t0 + 2, status="error", http_status=529, error_type="overloaded_error"),
        make_event(
            "tool_result", "s1", ts=t0 + 3, tool_name="terminal", status="error", error_message="exit 2"
        ),
        call("s2", t0 + 4, cost_usd=0.8),
        call("s2", t0 + 5, cost_usd=0.8),
        call("cron_job1_20260101_000000", t0 + 6, source="cron", context_window=32_768, input_tokens=1000),
    ]
    worker_factory(settings)
    publish(settings, events)
    assert settings.broker is not None
    topics = Topics(settings.topic_prefix)

    by_topic = {
        category: [codec.loads(v) for v in read_topic(settings.broker, topics.errors(category), expected=n)]
        for category, n in (("permanent", 2), ("retryable", 1), ("unknown", 1))
    }
    assert {c: [(r["kind"], r["reason"]) for r in records] for c, records in by_topic.items()} == {
        "permanent": [("api", "auth"), ("api", "auth")],
        "retryable": [("api", "overloaded")],
        "unknown": [("tool", "unknown")],
    }
    alerts = [codec.loads(v) for v in read_topic(settings.broker, topics.alerts, expected=3)]
    # One auth alert for two failures (deduplicated), the small cron context window, the budget.
    assert Counter(a["rule"] for a in alerts) == {
        "permanent_failure": 1,
        "context_window": 1,
        "session_budget": 1,
    }

    wait_for(lambda: scalar(settings, "SELECT count(*) FROM alerts") == 3, timeout=30)
    assert scalar(settings, "SELECT count(*) FROM errors") == 4
    assert (
        scalar(
            settings,
            "SELECT count(*) FROM api_calls WHERE error_category = 'permanent' AND error_reason = 'auth'",
        )
        == 2
    )
    _, rows = query(settings.db, "SELECT error_message FROM api_calls UNION ALL SELECT message FROM errors")
    stored = " ".join(str(message) for (message,) in rows)
    on_topics = b"".join(read_topic(settings.broker, topics.events, expected=1))
    assert SECRET not in stored and SECRET.encode() not in on_topics  # redacted before it left the SDK
    assert "[REDACTED]" in stored


def test_a_generated_workload_classifies_every_failed_call(settings_factory, worker_factory) -> None:
    settings = settings_factory()
    events = list(generate_events(60, seed=9))
    failed = [e for e in events if e["type"] in ("api_call", "tool_result") and e["status"] == "error"]
    worker_factory(settings)
    publish(settings, events)
    wait_for(lambda: scalar(settings, "SELECT count(*) FROM errors") == len(failed), timeout=60)
    assert scalar(settings, "SELECT count(*) FROM errors WHERE category IS NULL OR reason IS NULL") == 0
    assert (
        scalar(
            settings,
            "SELECT count(*) FROM api_calls a JOIN errors e USING (event_id) "
            "WHERE a.error_reason IS DISTINCT FROM e.reason",
        )
        == 0
    )
