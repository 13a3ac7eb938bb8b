"""Reading a Hermes state.db into events: current and old schemas, ids, errors."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hermes_stream.backfill import BackfillError, ImportSummary, parse_ts, read_hermes, tool_error
from hermes_stream.events import validate_event

CURRENT = """
CREATE TABLE sessions (
    id TEXT PRIMARY KEY, source TEXT, model TEXT, started_at REAL, ended_at REAL, end_reason TEXT,
    message_count INTEGER, tool_call_count INTEGER, input_tokens INTEGER, output_tokens INTEGER,
    cache_read_tokens INTEGER, cache_write_tokens INTEGER, reasoning_tokens INTEGER,
    billing_provider TEXT, estimated_cost_usd REAL, actual_cost_usd REAL
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT, role TEXT, content TEXT,
    tool_call_id TEXT, tool_calls TEXT, tool_name TEXT, timestamp REAL
);
CREATE TABLE session_model_usage (
    session_id TEXT, model TEXT, billing_provider TEXT DEFAULT '', billing_base_url TEXT DEFAULT '',
    billing_mode TEXT DEFAULT '', task TEXT DEFAULT '', api_call_count INTEGER, input_tokens INTEGER,
    output_tokens INTEGER, cache_read_tokens INTEGER, cache_write_tokens INTEGER,
    reasoning_tokens INTEGER, estimated_cost_usd REAL, actual_cost_usd REAL,
    first_seen REAL, last_seen REAL
);
"""

OLD = """
CREATE TABLE sessions (id TEXT PRIMARY KEY, model TEXT, started_at TEXT, ended_at TEXT,
    input_tokens INTEGER, output_tokens INTEGER);
CREATE TABLE messages (id INTEGER PRIMARY KEY, session_id TEXT, role TEXT, content TEXT, timestamp TEXT);
"""

T0 = 1_750_000_000.0  # 2025-06-15


def make_db(path: Path, schema: str, rows: dict[str, list[dict[str, Any]]]) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(schema)
    for table, items in rows.items():
        for item in items:
            names = ", ".join(item)
            conn.execute(
                f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(item))})", tuple(item.values())
            )
    conn.commit()
    conn.close()
    return path


def current_db(tmp_path: Path) -> Path:
    calls = json.dumps([{"id": "c1", "type": "function", "function": {"name": "terminal"}}])
    return make_db(
        tmp_path / "state.db",
        CURRENT,
        {
            "sessions": [
                {
                    "id": "s1",
                    "source": "cli",
                    "model": "claude-sonnet-4",
                    "started_at": T0,
                    "ended_at": T0 + 60,
                    "end_reason": "user_exit",
                    "message_count": 4,
                    "input_tokens": 999,
                    "output_tokens": 999,
                    "billing_provider": "anthropic",
                },
                # Still running, no usage rows: one api_call from the session totals.
                {
                    "id": "s2",
                    "model": "gpt-5",
                    "started_at": T0 + 100,
                    "input_tokens": 100,
                    "output_tokens": 10,
                    "cache_read_tokens": 50,
                    "billing_provider": "openai",
                    "estimated_cost_usd": 0.02,
                    "actual_cost_usd": 0,
                },
            ],
            "session_model_usage": [
                {
                    "session_id": "s1",
                    "model": "claude-sonnet-4",
                    "billing_provider": "anthropic",
                    "api_call_count": 3,
                    "input_tokens": 100,
                    "output_tokens": 40,
                    "cache_read_tokens": 1000,
                    "cache_write_tokens": 200,
                    "reasoning_tokens": 10,
                    "estimated_cost_usd": 0.5,
                    "actual_cost_usd": 0.4,
                    "first_seen": T0 + 1,
                    "last_seen": T0 + 50,
                },
                {
                    "session_id": "s1",
                    "model": "claude-haiku",
                    "billing_provider": "anthropic",
                    "task": "compress",
                    "input_tokens": 30,
                    "output_tokens": 5,
                    "reasoning_tokens": 20,
                    "last_seen": T0 + 40,
                },
            ],
            "messages": [
                {"session_id": "s1", "role": "user", "content": "hi", "timestamp": T0 + 1},
                {"session_id": "s1", "role": "assistant", "tool_calls": calls, "timestamp": T0 + 2},
                {
                    "session_id": "s1",
                    "role": "tool",
                    "tool_call_id": "c1",
                    "timestamp": T0 + 3,
                    "content": json.dumps({"output": "", "exit_code": 2, "error": None}),
                },
                {
                    "session_id": "s1",
                    "role": "tool",
                    "tool_name": "read_file",
                    "tool_call_id": "c2",
                    "content": "file contents",
                    "timestamp": T0 + 4,
                },
            ],
        },
    )


def old_db(tmp_path: Path) -> Path:
    return make_db(
        tmp_path / "old.db",
        OLD,
        {
            "sessions": [
                {
                    "id": "o1",
                    "model": "gpt-4",
                    "started_at": "2024-03-01T10:00:00",
                    "ended_at": "2024-03-01T10:05:00+00:00",
                    "input_tokens": 500,
                    "output_tokens": 50,
                },
                {
                    "id": "o2",
                    "model": "gpt-4",
                    "started_at": "2024-01-01T00:00:00",
                    "ended_at": None,
                    "input_tokens": 0,
                    "output_tokens": 0,
                },
            ],
            "messages": [
                {
                    "session_id": "o1",
                    "role": "tool",
                    "timestamp": "2024-03-01T10:01:00",
                    "content": "Traceback (most recent call last):\n  File ...\nValueError: boom",
                },
            ],
        },
    )


def by_type(events: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == type_]


def test_current_schema_maps_usage_tools_and_ends(tmp_path: Path) -> None:
    summary = ImportSummary()
    events = list(read_hermes(current_db(tmp_path), summary=summary))

    assert (summary.sessions, summary.api_calls, summary.tool_results, summary.session_ends) == (2, 3, 2, 1)
    assert summary.invalid == 0
    for event in events:
        validate_event(event)
    s1 = [e for e in events if e["session_id"] == "s1"]
    assert s1[-1]["type"] == "session_end"
    assert [e["ts"] for e in s1[:-1]] == sorted(e["ts"] for e in s1[:-1])

    sonnet, haiku = sorted(by_type(s1, "api_call"), key=lambda e: e["model"], reverse=True)
    # Hermes counts uncached input only: cache reads and writes are added, never twice.
    assert sonnet["input_tokens"] == 1300 and sonnet["cache_read_tokens"] == 1000
    assert sonnet["output_tokens"] == 40 and sonnet["reasoning_tokens"] == 10
    assert sonnet["cost_usd"] == 0.4 and sonnet["provider"] == "anthropic" and sonnet["source"] == "cli"
    assert sonnet["finish_reason"] == "aggregated" and sonnet["aggregated"] is True
    assert sonnet["api_call_count"] == 3 and sonnet["ts"] == T0 + 50
    assert haiku["output_tokens"] == 25  # reasoning counted apart from output is added to it
    assert "cost_usd" not in haiku or haiku["cost_usd"] is None

    failed, ok = by_type(s1, "tool_result")
    assert (
        failed["tool_name"] == "terminal" and failed["status"] == "error" and failed["tool_call_id"] == "c1"
    )
    assert "exit_code" in failed["error_message"]
    assert ok["tool_name"] == "read_file" and ok["status"] == "ok" and ok["error_message"] is None

    end = by_type(s1, "session_end")[0]
    assert end["end_reason"] == "user_exit" and end["message_count"] == 4 and end["started_at"] == T0

    (s2_call,) = [e for e in events if e["session_id"] == "s2"]
    assert s2_call["input_tokens"] == 150 and s2_call["cost_usd"] == 0.02 and s2_call["source"] == "hermes"


def test_old_schema_reads_with_defaults(tmp_path: Path) -> None:
    summary = ImportSummary()
    events = list(read_hermes(old_db(tmp_path), summary=summary))

    for event in events:
        validate_event(event)
    # Session totals are stamped at the session's end: after the tool, before session_end.
    assert [e["type"] for e in events] == ["tool_result", "api_call", "session_end"]
    tool, call, end = events
    assert call["input_tokens"] == 500 and call["provider"] == "unknown" and call["model"] == "gpt-4"
    assert call["ts"] == end["ts"] == dt.datetime(2024, 3, 1, 10, 5, tzinfo=dt.UTC).timestamp()
    assert tool["tool_name"] == "unknown" and tool["status"] == "error"
    assert tool["error_message"].startswith("Traceback")
    assert end["end_reason"] == "completed" and end["source"] == "hermes"
    # o2 has no tokens and never ended: read, but nothing to emit.
    assert summary.sessions == 2 and summary.invalid == 0


def test_event_ids_are_stable_across_reads(tmp_path: Path) -> None:
    path = current_db(tmp_path)
    first = [e["event_id"] for e in read_hermes(path)]
    second = [e["event_id"] for e in read_hermes(path)]
    assert first == second and len(set(first)) == len(first)


def test_since_skips_older_sessions(tmp_path: Path) -> None:
    summary = ImportSummary()
    events = list(read_hermes(old_db(tmp_path), since=dt.date(2024, 2, 1), summary=summary))
    assert {e["session_id"] for e in events} == {"o1"}
    assert summary.skipped == 1 and summary.sessions == 1


def test_invalid_events_are_counted_not_yielded(tmp_path: Path) -> None:
    rows = {"sessions": [{"id": "x", "model": "m", "started_at": "garbage", "input_tokens": 5}]}
    summary = ImportSummary()
    events = list(read_hermes(make_db(tmp_path / "bad.db", OLD, rows), summary=summary))
    assert events == [] and summary.invalid == 1
    assert "ts" in summary.problems[0]


def test_database_is_opened_read_only(tmp_path: Path) -> None:
    path = current_db(tmp_path)
    before = path.read_bytes()
    list(read_hermes(path))
    assert path.read_bytes() == before


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackfillError, match="no such file"):
        read_hermes(tmp_path / "nope.db")


def test_text_file_is_not_a_hermes_db(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a database\n" * 50)
    with pytest.raises(BackfillError, match="not a Hermes state.db"):
        read_hermes(path)


def test_sqlite_without_sessions_is_not_a_hermes_db(tmp_path: Path) -> None:
    path = make_db(tmp_path / "other.db", "CREATE TABLE things (id INTEGER);", {})
    with pytest.raises(BackfillError, match=r"not a Hermes state.db \(no sessions table\)"):
        read_hermes(path)


@pytest.mark.parametrize(
    ("content", "is_error"),
    [
        ("Error: file not found", True),
        ("error: permission denied", True),
        ("some output\nTraceback (most recent call last):\n  x", True),
        ("command failed with exit code 1", True),
        ("done, exit code 0", False),
        ('{"success": false, "message": "nope"}', True),
        ('{"error": "rate limited"}', True),
        ('{"output": "ok", "exit_code": 0, "error": null}', False),
        ("errors are discussed in this file", False),
        ("all good", False),
    ],
)
def test_tool_error_heuristic(content: str, is_error: bool) -> None:
    assert (tool_error(content) is not None) is is_error


def test_tool_error_message_is_truncated() -> None:
    message = tool_error("Error: " + "x" * 2000)
    assert message is not None and len(message) == 500


def test_parse_ts_accepts_epoch_and_iso() -> None:
    assert parse_ts(T0) == T0
    assert parse_ts(T0 * 1000) == T0
    assert parse_ts(str(T0)) == T0
    assert parse_ts("2025-06-15T15:06:40Z") == dt.datetime(2025, 6, 15, 15, 6, 40, tzinfo=dt.UTC).timestamp()
    assert parse_ts("yesterday") is None and parse_ts(None) is None
