"""``hermes-stream templates`` as a user runs it, on a DuckDB file prepared with two sessions.

No broker: the commands only read and write the DuckDB file.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from hermes_stream import codec
from hermes_stream.store import Store

HERMES = str(Path(sys.executable).parent / "hermes-stream")
START = dt.datetime(2026, 3, 1, 9, 0)
SECRET = "sk-proj-Abc123def456ghi789jkl012mno"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """An ended, successful coding session with four tool calls (one failed), and an active one."""
    path = tmp_path / "hermes.duckdb"
    Store(path).ensure_schema()
    with duckdb.connect(str(path)) as con:
        for session_id, status, successful in [("sess-good", "ended", True), ("sess-live", "active", None)]:
            con.execute(
                "INSERT INTO sessions (session_id, status, category, task_type, score, tool_calls,"
                " tool_errors, error_rate, is_successful, is_proficient)"
                " VALUES (?, ?, 'coding', 'file', 0.75, 4, 0, 0.0, ?, ?)",
                [session_id, status, successful, successful],
            )
        results: list[tuple[str, str, Any]] = [
            ("ok", "def main():\n    return 1  # the whole of main.py, long enough", {"path": "main.py"}),
            ("error", "permission denied", {"path": "/root"}),
            ("ok", f"wrote 120 bytes to config.py with api key {SECRET}", {"path": "config.py"}),
            ("ok", "tests passed: 12 of 12 in 0.4 seconds, no warnings at all", {"cmd": "pytest -q"}),
        ]
        for i, (status, result, args) in enumerate(results):
            con.execute(
                "INSERT INTO tool_results (event_id, session_id, ts, tool_name, tool_call_id, status, args,"
                " result) VALUES (?, 'sess-good', ?, 'read_file', ?, ?, ?, ?)",
                [f"ev-{i}", START + dt.timedelta(seconds=i), f"call_{i}", status, codec.dumps(args).decode()]
                + [result],
            )
    return path


def hermes(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HERMES_STREAM_DB": str(db)}
    return subprocess.run(
        [HERMES, "templates", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_capture_list_show_provision_stats_export_delete_import(db: Path, tmp_path: Path) -> None:
    captured = ok(hermes(db, "capture", "sess-good", "--tags", "python, fs", "--description", "edit config"))
    assert captured.strip() == (
        "captured coding-sess-good: 3 tool calls (6 messages) from session sess-good, category coding, "
        "score 0.750"
    )

    listed = codec.loads(ok(hermes(db, "list", "--category", "coding", "--tags", "fs", "--format", "json")))
    assert [(t["name"], t["tags"], t["messages"], t["provisions"]) for t in listed] == [
        ("coding-sess-good", ["python", "fs"], 6, 0)
    ]
    assert ok(hermes(db, "list", "--tags", "rust")).strip() == "(no rows)"
    table = ok(hermes(db, "show", "coding-sess-good"))
    assert "edit config" in table and "seed messages (6):" in table and SECRET not in table

    provisioned = hermes(db, "provision", "--category", "coding", "--task-hint", "add a setting")
    seed = codec.loads(ok(provisioned))
    assert [m["role"] for m in seed] == ["assistant", "tool"] * 3
    assert [m["tool_call_id"] for m in seed if m["role"] == "tool"] == ["call_0", "call_2", "call_3"]
    assert "[REDACTED]" in seed[3]["content"] and SECRET not in provisioned.stdout
    assert (
        "template coding-sess-good (category coding, score 0.750), provisioned 1 time" in provisioned.stderr
    )

    stats = codec.loads(ok(hermes(db, "stats", "--format", "json")))
    assert (stats["templates"], stats["provisions"]) == (1, 1)
    assert stats["categories"][0]["category"] == "coding"
    assert stats["recent_provisions"][0]["task_hint"] == "add a setting"
    assert "per category:" in ok(hermes(db, "stats"))

    file = tmp_path / "template.json"
    ok(hermes(db, "export", "coding-sess-good", "-o", str(file)))
    exported = codec.loads(file.read_bytes())
    assert exported["seed_messages"] == seed

    assert ok(hermes(db, "delete", "coding-sess-good")).strip() == "deleted template coding-sess-good"
    assert ok(hermes(db, "list")).strip() == "(no rows)"
    ok(hermes(db, "import", str(file)))
    shown = codec.loads(ok(hermes(db, "show", "coding-sess-good", "--format", "json")))
    assert {**shown, "provisions": None} == {**exported, "provisions": None}


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (
            ["capture", "sess-live"],
            "error: cannot capture session 'sess-live': it has not ended (status 'active')",
        ),
        (["capture", "nobody"], "error: no session 'nobody' in the store"),
        (["provision", "--category", "ops"], "error: no templates yet"),
        (["delete", "nothing"], "error: no template named 'nothing'"),
        (["show", "nothing"], "error: no template named 'nothing'"),
    ],
)
def test_a_refusal_exits_1_with_the_reason_on_stderr(db: Path, args: list[str], reason: str) -> None:
    result = hermes(db, *args)

    assert result.returncode == 1
    assert result.stderr.startswith(reason)
    assert result.stdout == ""
