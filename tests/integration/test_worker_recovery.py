"""The worker end to end, and after a SIGKILL mid-stream."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hermes_stream import codec
from hermes_stream.generator import generate_events
from hermes_stream.settings import Settings
from hermes_stream.store import query
from hermes_stream.topics import Topics
from hermes_stream.worker import WorkerProcess
from tests.conftest import wait_for
from tests.integration.conftest import committed_offsets, publish, read_topic, scalar

SESSION_COLUMNS = (
    "session_id, status, events, api_calls, api_errors, tool_calls, tool_errors, skill_invocations, "
    "input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, total_tokens, "
    "round(estimated_cost_usd, 9), cost_status, end_reason, message_count, started_at, ended_at, "
    "category, task_type, round(score, 9), is_successful, CAST(tool_counts AS VARCHAR), models"
)


def snapshot(settings: Settings) -> dict[str, Any]:
    """What an analyst would compare: row counts and every per-session sum."""
    counts = {
        table: scalar(settings, f"SELECT count(*) FROM {table}")
        for table in ("api_calls", "tool_results", "sessions", "dead_letters", "errors")
    }
    _, sessions = query(settings.db, f"SELECT {SESSION_COLUMNS} FROM sessions ORDER BY session_id")
    _, errors = query(
        settings.db,
        "SELECT kind, category, reason, count(*) FROM errors GROUP BY ALL ORDER BY ALL",
    )
    # Alerts are left out: the rules' dedupe state lives in memory, so a restarted
    # worker may raise an alert once more for replayed records (README, Alerts).
    return {"counts": counts, "sessions": sessions, "errors": errors}


def all_landed(settings: Settings, sessions: int, events: int) -> Callable[[], bool]:
    def check() -> bool:
        ended = scalar(settings, "SELECT count(*) FROM sessions WHERE status = 'ended'")
        rows = scalar(
            settings, "SELECT (SELECT count(*) FROM api_calls) + (SELECT count(*) FROM tool_results)"
        )
        return ended == sessions and rows == events

    return check


def test_every_event_lands_and_sessions_add_up(settings_factory, worker_factory) -> None:
    settings = settings_factory()
    events = list(generate_events(40, seed=3))
    worker_factory(settings)
    publish(settings, events)
    row_events = sum(e["type"] in ("api_call", "tool_result") for e in events)
    wait_for(all_landed(settings, 40, row_events), timeout=60)

    expected_input = sum(e["input_tokens"] for e in events if e["type"] == "api_call")
    assert scalar(settings, "SELECT sum(input_tokens) FROM sessions") == expected_input
    assert scalar(settings, "SELECT sum(events) FROM sessions") == len(events)
    tool_errors = sum(e["type"] == "tool_result" and e["status"] == "error" for e in events)
    assert scalar(settings, "SELECT sum(tool_errors) FROM sessions") == tool_errors


def test_sigkill_mid_stream_ends_identical_to_uninterrupted_run(
    settings_factory: Callable[..., Settings], worker_factory: Callable[[Settings], WorkerProcess]
) -> None:
    events = list(generate_events(150, seed=5))
    quarter, half = len(events) // 4, len(events) // 2
    row_events = sum(e["type"] in ("api_call", "tool_result") for e in events)

    reference = settings_factory()
    worker_factory(reference)
    publish(reference, events)
    wait_for(all_landed(reference, 150, row_events), timeout=90)

    # Frequent flushes, so the kill lands with some rows durable and work pending.
    crashed = settings_factory(sink_interval=0.05)
    worker = worker_factory(crashed)
    publish(crashed, events[:quarter])
    # Once offsets are committed, the restart reads on from them: the sessions
    # those records began must come back from the table's changelog.
    wait_for(lambda: committed_offsets(crashed) > 0, timeout=60, interval=0.2)
    before = scalar(crashed, "SELECT count(*) FROM api_calls")
    publish(crashed, events[quarter:half])
    wait_for(lambda: scalar(crashed, "SELECT count(*) FROM api_calls") > before, timeout=60, interval=0.02)
    writers = children(worker.pid)
    assert writers, "the worker writes DuckDB from a child process"
    worker.kill()
    wait_for(lambda: not any(map(alive, writers)), timeout=10)  # the writer does not outlive it
    assert scalar(crashed, "SELECT count(*) FROM api_calls") < row_events
    publish(crashed, events[half:])
    worker_factory(crashed)
    wait_for(all_landed(crashed, 150, row_events), timeout=120)

    assert snapshot(crashed) == snapshot(reference)
    # hermes.sessions is at least once: every ended session is on it, even those
    # whose publish the kill cut short (a replay publishes them again).
    assert crashed.broker is not None
    finished = read_topic(crashed.broker, Topics(crashed.topic_prefix).sessions, expected=150)
    assert {codec.loads(value)["session_id"] for value in finished} == {
        row[0] for row in query(crashed.db, "SELECT session_id FROM sessions")[1]
    }


def children(pid: int) -> list[int]:
    """Processes whose parent is *pid* (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _stat(int(entry.name))[1:2] == [str(pid)]:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    state = _stat(pid)[:1]
    return bool(state) and state != ["Z"]


def _stat(pid: int) -> list[str]:
    """State and parent pid of *pid*, or [] once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return text.rsplit(")", 1)[1].split()[:2]
