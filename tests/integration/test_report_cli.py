"""``hermes-stream report`` as a user runs it, on a small file built like the report benchmark's.

No broker: the reports only read the DuckDB file.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hermes_stream import codec
from hermes_stream.cli import cli
from hermes_stream.report_bench import build_store

COLUMNS = {
    "daily": ["date", "sessions", "api_calls", "api_errors", "total_tokens", "total_cost_usd"],
    "sessions": ["session_id", "source", "category", "task_type", "models", "started_at"],
    "models": [
        "provider",
        "model",
        "calls",
        "errors",
        "tokens",
        "cost_usd",
        "p50_latency_ms",
        "priced",
        "price",
    ],
}
UNPRICED_NOTE = "no price for 1 model: ollama/qwen2.5-coder:32b"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reports") / "reports.duckdb"
    build_store(path, api_calls=6_000, sessions=120, days=30)
    return path


def report(db: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["report", *args], env={"HERMES_STREAM_DB": str(db)})


@pytest.mark.parametrize("name", list(COLUMNS))
def test_each_report_as_json_is_a_list_of_rows(db: Path, name: str) -> None:
    result = report(db, name, "--format", "json")

    assert result.exit_code == 0, result.output
    rows = codec.loads(result.output)
    assert rows and isinstance(rows, list)
    assert list(rows[0])[: len(COLUMNS[name])] == COLUMNS[name]


@pytest.mark.parametrize("name", list(COLUMNS))
def test_each_report_as_csv_has_a_header_and_rows_only(db: Path, name: str) -> None:
    result = report(db, name, "--format", "csv")

    assert result.exit_code == 0, result.output
    header, *rows = list(csv.reader(io.StringIO(result.output)))
    assert header[: len(COLUMNS[name])] == COLUMNS[name]
    assert rows and all(len(row) == len(header) for row in rows)


@pytest.mark.parametrize("name", list(COLUMNS))
def test_each_report_as_a_table_is_aligned(db: Path, name: str) -> None:
    result = report(db, name)

    assert result.exit_code == 0, result.output
    header, rule, *rows = result.output.split("\n\n")[0].splitlines()
    spans = [m.span() for m in re.finditer("-+", rule)]
    assert [header[start:end].strip() for start, end in spans][: len(COLUMNS[name])] == COLUMNS[name]
    assert rows
    for row in rows:  # every cell inside its column, blanks between columns
        gaps = zip([end for _, end in spans], [start for start, _ in spans[1:]] + [None], strict=True)
        assert all(not row[end:start].strip() for end, start in gaps), row


def test_the_models_table_ends_with_the_models_without_a_price(db: Path) -> None:
    table = report(db, "models").output
    assert table.rstrip().splitlines()[-1].startswith(UNPRICED_NOTE)
    assert "unknown" in next(line for line in table.splitlines() if "qwen2.5-coder:32b" in line)

    rows = codec.loads(report(db, "models", "--format", "json").output)  # rows only: no note to parse around
    assert [(r["priced"], r["price"]) for r in rows if r["model"] == "qwen2.5-coder:32b"] == [
        (False, "unknown")
    ]
    assert UNPRICED_NOTE not in report(db, "models", "--format", "csv").output


def test_daily_date_picks_one_day(db: Path) -> None:
    every_day = codec.loads(report(db, "daily", "--format", "json").output)
    day = every_day[3]["date"]

    rows = codec.loads(report(db, "daily", "--date", day, "--format", "json").output)

    assert rows == [every_day[3]]
    assert report(db, "daily", "--date", "2030-01-01").output.strip() == "(no rows)"


def test_sessions_top_and_by(db: Path) -> None:
    rows = codec.loads(report(db, "sessions", "--top", "5", "--by", "tokens", "--format", "json").output)

    assert len(rows) == 5
    tokens = [r["tokens"] for r in rows]
    assert tokens == sorted(tokens, reverse=True)
    by_cost = codec.loads(report(db, "sessions", "--top", "200", "--format", "json").output)
    assert len(by_cost) == 120
    costs = [r["estimated_cost_usd"] for r in by_cost]
    known = [c for c in costs if c is not None]
    assert known == sorted(known, reverse=True) and costs == known + [None] * (len(costs) - len(known))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["daily", "--date", "2026-02-30"], "'2026-02-30' is not a day as YYYY-MM-DD"),
        (["daily", "--date", "yesterday"], "'yesterday' is not a day as YYYY-MM-DD"),
        (["sessions", "--top", "0"], "0 is not in the range x>=1"),
        (["sessions", "--by", "score"], "'score' is not one of 'cost', 'tokens', 'errors', 'duration'"),
        (["sessions", "--date", "2026-01-01"], "--date applies to the daily report only, not sessions"),
        (["daily", "--top", "3"], "--top applies to the sessions report only, not daily"),
        (["models", "--by", "cost"], "--by applies to the sessions report only, not models"),
        (["models", "--days", "3"], "--days applies to the errors report only, not models"),
        (["errors", "--top", "3"], "--top applies to the sessions report only, not errors"),
        (["summary", "--date", "2026-01-01"], "--date applies to the daily report only, not summary"),
    ],
)
def test_options_a_report_does_not_take_are_refused(db: Path, args: list[str], message: str) -> None:
    result = report(db, *args)

    assert result.exit_code == 2
    assert message in result.output


def test_an_option_at_its_default_value_is_still_refused(db: Path) -> None:
    result = report(db, "daily", "--by", "cost")  # the value --by has anyway: still a mistake
    assert result.exit_code == 2 and "--by applies to the sessions report only" in result.output


def test_the_installed_command_prints_reports_and_errors(db: Path, tmp_path: Path) -> None:
    env = {**os.environ, "HERMES_STREAM_DB": str(db)}
    command = [sys.executable, "-m", "hermes_stream", "report"]

    models = subprocess.run([*command, "models"], env=env, capture_output=True, timeout=60)
    assert models.returncode == 0, models.stderr.decode()
    assert UNPRICED_NOTE in models.stdout.decode()
    summary = subprocess.run(
        [*command, "summary", "--format", "json"], env=env, capture_output=True, timeout=60
    )
    assert codec.loads(summary.stdout)[0]["sessions"] == 120
    missing = subprocess.run(
        [*command, "daily", "--db", str(tmp_path / "nope.duckdb")], env=env, capture_output=True, timeout=60
    )
    assert missing.returncode == 1
    assert missing.stderr.decode().startswith("error: no database at") and b"Traceback" not in missing.stderr
