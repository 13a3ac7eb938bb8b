"""``skill_ema`` and ``hermes-stream report skills`` on a real DuckDB file, EMAs worked out by hand.

A day *age* days old weighs ``(1 - alpha) ** age``; each expected value below
is that weighted mean written out, over the days that have the metric.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result

import hermes_stream
from hermes_stream import codec
from hermes_stream.cli import cli
from hermes_stream.exceptions import ConfigError, StoreError
from hermes_stream.reports import report_sql
from hermes_stream.skill_averages import SkillEma, skill_ema
from hermes_stream.store import Store

NOW = dt.datetime(2026, 3, 15, 12, 0)  # naive: UTC
COLUMNS = [
    "skill_name",
    "model",
    "provider",
    "sample_count",
    "success_count",
    "failure_count",
    "ema_success_rate",
    "ema_duration_s",
    "ema_cost_per_call",
    "days_with_data",
    "last_invoked_at",
]

Run = Callable[..., None]
_ids = itertools.count()


def at(age: int, time: str = "12:00:00", now: dt.datetime = NOW) -> dt.datetime:
    """The UTC time *time* on the day *age* days before *now*'s day."""
    day = now.date() - dt.timedelta(days=age)
    return dt.datetime.combine(day, dt.time.fromisoformat(time))


def insert(
    con: duckdb.DuckDBPyConnection,
    invoked_at: dt.datetime,
    skill: str = "summarize",
    model: str | None = "m1",
    provider: str | None = "p1",
    success: bool | None = True,
    duration: float | None = None,
    cost: float | None = None,
) -> None:
    con.execute(
        "INSERT INTO skill_invocations (invocation_id, session_id, skill_name, model, provider, invoked_at,"
        " success, duration_seconds, estimated_cost_usd) VALUES (?, 'sess', ?, ?, ?, ?, ?, ?, ?)",
        [f"inv-{next(_ids)}", skill, model, provider, invoked_at, success, duration, cost],
    )


def new_store(path: Path) -> duckdb.DuckDBPyConnection:
    Store(path).ensure_schema()
    return duckdb.connect(str(path))


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = new_store(tmp_path / "skills.duckdb")
    yield connection
    connection.close()


@pytest.fixture
def run(con: duckdb.DuckDBPyConnection) -> Run:
    """Record one invocation *age* days before NOW: ``run(age, time=…, skill=…, success=…, …)``."""

    def record(age: int, time: str = "12:00:00", **fields: object) -> None:
        insert(con, at(age, time), **fields)  # type: ignore[arg-type]

    return record


def by_pair(rows: list[SkillEma]) -> dict[tuple[str, str | None], SkillEma]:
    return {(row.skill_name, row.model): row for row in rows}


# weighting


def test_a_day_without_runs_is_skipped_not_counted_as_zero(con: duckdb.DuckDBPyConnection, run: Run) -> None:
    run(0, success=True)
    run(3, success=False)
    run(3, success=False)

    (row,) = skill_ema(con, alpha=0.5, now=NOW)

    # Days 1 and 2 are not zeros, and the 3-day-old day keeps its age: 0.5**3, not 0.5**1.
    assert row.ema_success_rate == pytest.approx((1 * 1.0 + 0.125 * 0.0) / (1 + 0.125))
    assert (row.sample_count, row.success_count, row.failure_count, row.days_with_data) == (3, 1, 2, 2)


def test_each_day_weighs_by_its_age_and_each_metric_is_a_per_day_value(
    con: duckdb.DuckDBPyConnection, run: Run
) -> None:
    run(1, "08:00:00", success=True, duration=10, cost=0.01)
    run(1, "09:00:00", success=True, duration=30, cost=0.03)  # day 1: rate 1, 20 s, $0.02 a call
    run(2, success=False, duration=40, cost=0.05)  # day 2: rate 0, 40 s, $0.05
    run(5, success=True, duration=100, cost=0.10)
    run(5, success=None, duration=100, cost=0.10)  # day 5: rate 1/2 (unknown is not a success)

    (row,) = skill_ema(con, alpha=0.3, now=NOW)

    w1, w2, w5 = 0.7, 0.49, 0.16807  # 0.7**1, 0.7**2, 0.7**5; nothing today
    total = w1 + w2 + w5
    assert row.ema_success_rate == pytest.approx((w1 * 1 + w2 * 0 + w5 * 0.5) / total)  # 0.5773
    assert row.ema_duration_s == pytest.approx((w1 * 20 + w2 * 40 + w5 * 100) / total)  # 37.117
    assert row.ema_cost_per_call == pytest.approx((w1 * 0.02 + w2 * 0.05 + w5 * 0.10) / total)  # 0.04072
    assert (row.sample_count, row.success_count, row.failure_count, row.days_with_data) == (5, 3, 1, 3)


def test_null_durations_and_costs_are_skipped_for_that_metric_only(
    con: duckdb.DuckDBPyConnection, run: Run
) -> None:
    run(0, success=True, duration=None, cost=1.0)
    run(0, success=True, duration=None, cost=1.0)  # today: no duration at all
    run(1, success=False, duration=30, cost=None)
    run(1, success=False, duration=None, cost=None)  # day 1: 30 s (the known one), no cost
    run(2, success=True, duration=60, cost=3.0)
    run(0, skill="never-timed", success=True)

    rows = by_pair(skill_ema(con, alpha=0.5, now=NOW))

    row = rows["summarize", "m1"]
    assert row.ema_duration_s == pytest.approx((0.5 * 30 + 0.25 * 60) / (0.5 + 0.25))  # 40, not 17.1
    assert row.ema_cost_per_call == pytest.approx((1 * 1.0 + 0.25 * 3.0) / (1 + 0.25))  # 1.4
    assert row.ema_success_rate == pytest.approx((1 * 1 + 0.5 * 0 + 0.25 * 1) / (1 + 0.5 + 0.25))
    untimed = rows["never-timed", "m1"]
    assert untimed.ema_duration_s is None and untimed.ema_cost_per_call is None
    assert untimed.ema_success_rate == 1.0


def test_unknown_outcomes_lower_the_rate_but_are_not_failures(
    con: duckdb.DuckDBPyConnection, run: Run
) -> None:
    for success in (True, False, None):
        run(0, success=success)

    (row,) = skill_ema(con, now=NOW)

    assert (row.sample_count, row.success_count, row.failure_count) == (3, 1, 1)
    assert row.ema_success_rate == pytest.approx(1 / 3)


def test_weights_of_old_days_do_not_underflow(con: duckdb.DuckDBPyConnection, run: Run) -> None:
    run(300, success=True, duration=7.5)  # 0.001**300 is below the smallest double
    run(301, success=False, duration=9.5)

    (row,) = skill_ema(con, window_days=400, alpha=0.999, now=NOW)

    assert row.ema_success_rate == pytest.approx(1 / (1 + 0.001))
    assert row.ema_duration_s == pytest.approx((7.5 + 0.001 * 9.5) / (1 + 0.001))


# rows


def test_one_row_per_skill_and_model(con: duckdb.DuckDBPyConnection, run: Run) -> None:
    run(0, skill="summarize", model="m1", success=True)
    run(0, skill="summarize", model="m2", success=False)
    run(1, skill="triage", model="m1", success=True)
    run(1, skill="triage", model="m1", success=False)
    run(2, skill="triage", model=None, success=True)

    rows = by_pair(skill_ema(con, alpha=0.5, now=NOW))

    summary = {pair: (row.sample_count, row.ema_success_rate) for pair, row in rows.items()}
    assert summary == {
        ("summarize", "m1"): (1, 1.0),
        ("summarize", "m2"): (1, 0.0),
        ("triage", "m1"): (2, 0.5),
        ("triage", None): (1, 1.0),
    }


def test_providers_of_one_day_make_one_day_and_the_latest_provider_is_shown(
    con: duckdb.DuckDBPyConnection, run: Run
) -> None:
    run(1, "23:00:00", provider="p-old", success=True)
    for time in ("08:00:00", "08:10:00", "08:20:00"):
        run(0, time, provider="p-b", success=True)
    run(0, "09:00:00", provider="p-c", success=False)

    (row,) = skill_ema(con, alpha=0.5, now=NOW)

    assert row.provider == "p-c"
    assert row.days_with_data == 2
    # Today is 3 of 4 (not the mean of p-b's 1 and p-c's 0).
    assert row.ema_success_rate == pytest.approx((1 * 0.75 + 0.5 * 1) / (1 + 0.5))
    assert row.last_invoked_at == at(0, "09:00:00")


def test_an_unknown_provider_on_the_latest_day_is_not_replaced_by_an_older_one(
    con: duckdb.DuckDBPyConnection, run: Run
) -> None:
    run(1, provider="p-old")
    run(0, provider=None)

    (row,) = skill_ema(con, now=NOW)

    assert row.provider is None


def test_rows_are_newest_first(con: duckdb.DuckDBPyConnection, run: Run) -> None:
    run(0, "08:00:00", skill="beta")
    run(0, "10:00:00", skill="gamma")
    run(2, "23:00:00", skill="alpha")
    for _ in range(5):
        run(3, skill="alpha")

    rows = skill_ema(con, now=NOW)

    assert [row.skill_name for row in rows] == ["gamma", "beta", "alpha"]
    assert [row.last_invoked_at for row in rows] == [at(0, "10:00:00"), at(0, "08:00:00"), at(2, "23:00:00")]


# the window


def test_the_window_has_today_and_the_days_before_it_but_not_the_day_window_days_old(
    con: duckdb.DuckDBPyConnection, run: Run
) -> None:
    run(3, "23:59:59", success=False)  # exactly window_days old: out
    run(2, "00:00:00", success=True)  # the oldest day in
    run(0, "23:59:59", success=True)  # today, though later than now
    run(-1, "00:00:00", success=False)  # tomorrow: out
    run(3, skill="stale")

    rows = skill_ema(con, window_days=3, now=NOW)

    (row,) = rows
    assert (row.skill_name, row.sample_count, row.days_with_data) == ("summarize", 2, 2)
    assert row.failure_count == 0 and row.last_invoked_at == at(0, "23:59:59")
    (today,) = skill_ema(con, window_days=1, now=NOW)
    assert today.sample_count == 1


def test_today_is_the_utc_date_of_now(con: duckdb.DuckDBPyConnection, run: Run) -> None:
    run(0, success=True)
    run(-1, "00:30:00", success=False)  # 2026-03-16 00:30 UTC

    east = dt.datetime(2026, 3, 16, 3, 0, tzinfo=dt.timezone(dt.timedelta(hours=5)))  # 2026-03-15 22:00 UTC
    (row,) = skill_ema(con, now=east)
    assert row.sample_count == 1

    (row,) = skill_ema(con, now=dt.datetime(2026, 3, 16, 1, 0, tzinfo=dt.UTC))
    assert row.sample_count == 2


def test_now_defaults_to_the_current_utc_time(con: duckdb.DuckDBPyConnection) -> None:
    current = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    insert(con, current - dt.timedelta(hours=1))
    insert(con, current - dt.timedelta(days=30))

    (row,) = skill_ema(con)

    assert row.sample_count == 1


def test_an_empty_store_gives_no_rows(con: duckdb.DuckDBPyConnection) -> None:
    assert skill_ema(con, now=NOW) == []


# errors


@pytest.mark.parametrize("alpha", [0, 1, 0.0, 1.0, -0.1, 1.5, float("nan"), float("inf"), True, "0.3", None])
def test_alpha_outside_zero_to_one_is_an_error(con: duckdb.DuckDBPyConnection, alpha: object) -> None:
    with pytest.raises(ConfigError, match="alpha must be a number strictly between 0 and 1"):
        skill_ema(con, alpha=alpha, now=NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize("window_days", [0, -1, True, 1.5, "14", None])
def test_window_days_below_one_is_an_error(con: duckdb.DuckDBPyConnection, window_days: object) -> None:
    with pytest.raises(ConfigError, match="window_days must be a whole number of days of at least 1"):
        skill_ema(con, window_days=window_days, now=NOW)  # type: ignore[arg-type]


def test_now_must_be_a_datetime(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ConfigError, match="now must be a datetime"):
        skill_ema(con, now=NOW.date())  # type: ignore[arg-type]


def test_a_store_without_the_table_is_a_store_error() -> None:
    with duckdb.connect() as bare, pytest.raises(StoreError, match="skill EMA query failed"):
        skill_ema(bare, now=NOW)


def test_skill_ema_is_exported_and_the_report_is_not_one_sql_query() -> None:
    assert hermes_stream.skill_ema is skill_ema and "skill_ema" in hermes_stream.__all__
    with pytest.raises(ConfigError, match="skill_ema"):
        report_sql("skills")


# the command


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A closed store with two pairs, 1 and 2 days old whatever the clock says."""
    path = tmp_path / "cli.duckdb"
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with new_store(path) as con:
        insert(con, at(2, now=now), provider="p1", success=False, duration=40, cost=0.5)
        insert(con, at(1, now=now), provider="p2", success=True, duration=10, cost=0.25)
        insert(con, at(2, "06:00:00", now=now), skill="triage", model="m2", provider=None, success=None)
    return path


def report(db: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["report", "skills", *args], env={"HERMES_STREAM_DB": str(db)})


def test_report_skills_as_json(db: Path) -> None:
    result = report(db, "--format", "json", "--alpha", "0.5")

    assert result.exit_code == 0, result.output
    summarize, triage = codec.loads(result.output)
    assert list(summarize) == COLUMNS
    assert summarize["skill_name"] == "summarize" and summarize["provider"] == "p2"
    # Only the two days' relative age matters: 1 and 0.5, whichever day today is.
    assert summarize["ema_success_rate"] == pytest.approx(1 / 1.5, abs=1e-6)  # 6 places
    assert summarize["ema_duration_s"] == pytest.approx((10 + 0.5 * 40) / 1.5, abs=1e-6)
    assert summarize["ema_cost_per_call"] == pytest.approx((0.25 + 0.5 * 0.5) / 1.5, abs=1e-6)
    assert (summarize["sample_count"], summarize["days_with_data"]) == (2, 2)
    assert dt.datetime.fromisoformat(summarize["last_invoked_at"]).time() == dt.time(12)
    assert triage["model"] == "m2" and triage["provider"] is None and triage["ema_duration_s"] is None


def test_report_skills_window_days_and_other_formats(db: Path) -> None:
    assert codec.loads(report(db, "--format", "json", "--window-days", "1").output) == []

    header, *rows = list(csv.reader(io.StringIO(report(db, "--format", "csv").output)))
    assert header == COLUMNS and len(rows) == 2
    table = report(db).output
    assert table.splitlines()[0].split() == COLUMNS and "summarize" in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["skills", "--alpha", "1"], "alpha must be a number strictly between 0 and 1"),
        (["skills", "--alpha", "nan"], "alpha must be a number strictly between 0 and 1"),
        (["skills", "--window-days", "0"], "0 is not in the range x>=1"),
        (["skills", "--days", "3"], "--days applies to the errors report only, not skills"),
        (["daily", "--alpha", "0.5"], "--alpha applies to the skills report only, not daily"),
        (["errors", "--window-days", "3"], "--window-days applies to the skills report only, not errors"),
    ],
)
def test_report_skills_usage_errors(db: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["report", *args], env={"HERMES_STREAM_DB": str(db)})

    assert result.exit_code == 2
    assert message in result.output
