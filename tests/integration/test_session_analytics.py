"""Session analytics end to end: cost, kind, idle timeout, late events, the live view and counters."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Any

from hermes_stream import codec
from hermes_stream.events import make_event
from hermes_stream.store import query
from hermes_stream.topics import Topics
from tests.conftest import wait_for
from tests.integration.conftest import publish, read_topic, scalar

T0 = 1_767_225_600.0


def call(session: str, ts: float, **fields: Any) -> dict[str, Any]:
    base = {
        "model": "gpt-4o",
        "provider": "openai",
        "input_tokens": 1000,
        "output_tokens": 100,
        "status": "ok",
    }
    return make_event("api_call", session, ts=ts, **(base | fields))


def tool(session: str, ts: float, name: str, status: str = "ok") -> dict[str, Any]:
    return make_event("tool_result", session, ts=ts, tool_name=name, status=status)


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, codec.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, codec.loads(exc.read()) if exc.code in (404, 503) else {}
    except urllib.error.URLError:  # the web server is not up yet
        return 0, {}


def test_a_quiet_session_ends_by_idle_timeout_and_a_late_event_updates_it(settings_factory, worker_factory):
    settings = settings_factory(session_idle_timeout=2.0)
    worker_factory(settings)
    publish(settings, [call("quiet", T0), *(tool("quiet", T0 + i, "execute_code") for i in range(1, 5))])

    live = f"http://{settings.web_host}:{settings.web_port}/sessions/quiet"
    wait_for(lambda: get(live)[0] == 200, timeout=30)
    status, state = get(live)  # the live view, while the session is still going
    assert state["live"] is True and state["tool_calls"] == 4 and state["category"] is None
    assert get(f"http://{settings.web_host}:{settings.web_port}/sessions/nobody")[0] == 404

    wait_for(
        lambda: scalar(settings, "SELECT count(*) FROM sessions WHERE status = 'ended'") == 1, timeout=30
    )
    _, rows = query(
        settings.db, "SELECT end_reason, ended_at = last_event_at, category, task_type FROM sessions"
    )
    assert rows == [("idle_timeout", True, "coding", "code")]
    assert settings.broker is not None
    (published,) = read_topic(settings.broker, Topics(settings.topic_prefix).sessions, expected=1)
    assert codec.loads(published)["end_reason"] == "idle_timeout"

    publish(settings, [tool("quiet", T0 + 9, "terminal", status="error")])  # late: the same row changes
    wait_for(lambda: scalar(settings, "SELECT tool_calls FROM sessions") == 5, timeout=30)
    assert scalar(settings, "SELECT count(*) FROM sessions") == 1

    status, counters = get(f"http://{settings.web_host}:{settings.web_port}/stats")
    assert status == 200
    assert (counters["records"], counters["events"], counters["dead_letters"]) == (2, 6, 0)
    assert counters["writes"] >= 2 and counters["events_pending"] == 0
    assert time.time() - 60 < counters["last_write_at"] <= time.time()


def test_costs_are_reported_estimated_or_unknown(settings_factory, worker_factory):
    settings = settings_factory()
    worker_factory(settings)
    end = {"end_reason": "completed"}
    publish(
        settings,
        [
            call("reported", T0, cost_usd=0.5),
            make_event("session_end", "reported", ts=T0 + 1, **end),
            call("estimated", T0, input_tokens=1_000_000, output_tokens=0),
            make_event("session_end", "estimated", ts=T0 + 1, **end),
            call("unknown", T0, provider="ollama", model="no-such-model:7b"),
            make_event("session_end", "unknown", ts=T0 + 1, **end),
        ],
    )
    wait_for(
        lambda: scalar(settings, "SELECT count(*) FROM sessions WHERE status = 'ended'") == 3, timeout=30
    )
    _, rows = query(
        settings.db, "SELECT session_id, cost_status, estimated_cost_usd FROM sessions ORDER BY session_id"
    )
    costs = {sid: (status, cost) for sid, status, cost in rows}
    assert costs["reported"] == ("reported", 0.5)
    assert (
        costs["estimated"][0] == "estimated" and costs["estimated"][1] > 0
    )  # a million input tokens of gpt-4o
    assert costs["unknown"] == ("unknown", None)  # never a silent $0
    _, priced = query(settings.db, "SELECT model, priced FROM model_prices ORDER BY model")
    assert priced == [("gpt-4o", True), ("no-such-model:7b", False)]


def test_skill_invocations_are_joined_with_their_session(settings_factory, worker_factory):
    settings = settings_factory()
    worker_factory(settings)
    sid = "cron_job7_20260101_000000"

    def cron(type_: str, ts: float, **fields: Any) -> dict[str, Any]:
        return make_event(type_, sid, source="cron", ts=ts, **fields)

    publish(
        settings,
        [
            cron("skill_invoked", T0, skill_name="digest", cron_id="job7"),
            cron("skill_invoked", T0 + 1, skill_name="triage", cron_id="job7", cost_usd=0.05),
            call(sid, T0 + 2, cost_usd=0.4, input_tokens=2000, source="cron"),
            cron("session_end", T0 + 20, end_reason="cron_complete", completed=True),
        ],
    )
    wait_for(
        lambda: scalar(settings, "SELECT count(*) FROM skill_invocations WHERE success") == 2, timeout=30
    )
    _, rows = query(
        settings.db,
        "SELECT skill_name, cron_id, input_tokens, estimated_cost_usd, cost_shared, duration_seconds "
        "FROM skill_invocations ORDER BY skill_name",
    )
    assert rows == [("digest", "job7", 1000, 0.2, True, 10.0), ("triage", "job7", 1000, 0.05, False, 10.0)]
    assert scalar(settings, "SELECT invocation_count FROM skill_stats_daily WHERE skill_name = 'digest'") == 1
    assert settings.broker is not None
    published = [
        codec.loads(v)
        for v in read_topic(settings.broker, Topics(settings.topic_prefix).skill_invocations, expected=2)
    ]
    assert sorted(p["skill_name"] for p in published) == ["digest", "triage"]


def test_captured_tool_content_lands_redacted_only_when_capture_is_on(settings_factory, worker_factory):
    key = "sk-ant-api03-" + "Qw7" * 20
    settings = settings_factory(capture_content=True, capture_max_chars=80)
    worker_factory(settings)
    content = {"args": {"path": "src/app.py", "api_key": key}, "result": f"read 2 KB; key {key} " + "z" * 500}
    publish(
        settings, [make_event("tool_result", "cap", ts=T0, tool_name="read_file", status="ok", **content)]
    )
    wait_for(lambda: scalar(settings, "SELECT count(*) FROM tool_results") == 1, timeout=30)
    _, rows = query(settings.db, "SELECT args->>'path', args->>'api_key', result FROM tool_results")
    ((path, api_key, result),) = rows
    assert (path, api_key) == ("src/app.py", "[REDACTED]")
    assert len(result) == 80 and key not in result and result.startswith("read 2 KB; key [REDACTED]")
