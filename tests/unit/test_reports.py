"""The canned reports' rows, on a small real DuckDB file (the real schema, rows inserted)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pytest

from hermes_stream.exceptions import ConfigError
from hermes_stream.report_bench import report_timings
from hermes_stream.reports import (
    ReportName,
    ReportOptions,
    daily_report,
    parse_day,
    report_notes,
    report_sql,
    sessions_report,
)
from hermes_stream.schema import API_CALLS, MODEL_PRICES, SESSIONS, Table
from hermes_stream.store import Store, query, rebuild_model_aggregates

T0 = dt.datetime(2026, 1, 1, 9, 0)
Rows = Iterable[Mapping[str, Any]]


@pytest.fixture
def store_factory(tmp_path: Path) -> Callable[..., Path]:
    """A fresh DuckDB file with the real schema and the given rows, by table."""

    made = itertools.count()

    def make(sessions: Rows = (), api_calls: Rows = (), model_prices: Rows = ()) -> Path:
        path = tmp_path / f"reports-{next(made)}.duckdb"
        Store(path).ensure_schema()
        con = duckdb.connect(str(path))
        try:
            for table, rows in ((SESSIONS, sessions), (API_CALLS, api_calls), (MODEL_PRICES, model_prices)):
                _insert(con, table, rows)
            rebuild_model_aggregates(con)  # the calls came around the sink, which keeps them
        finally:
            con.close()
        return path

    return make


def _insert(con: duckdb.DuckDBPyConnection, table: Table, rows: Rows) -> None:
    for row in rows:
        names = list(row)
        marks = ", ".join("?" * len(names))
        con.execute(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})", list(row.values()))


def session(session_id: str, started_at: dt.datetime = T0, **columns: Any) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "source": "cli",
        "status": "ended",
        "model": "claude-sonnet-4-5",
        "provider": "anthropic",
        "started_at": started_at,
        "wall_time_seconds": 60.0,
        "api_calls": 2,
        "api_errors": 0,
        "tool_calls": 3,
        "tool_errors": 0,
        "total_tokens": 100,
        "estimated_cost_usd": 0.5,
        "cost_status": "estimated",
        "category": "coding",
        "task_type": "code",
        "score": 0.75,
        **columns,
    }


def call(event_id: str, provider: str, model: str, **columns: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "session_id": "s1",
        "ts": T0,
        "provider": provider,
        "model": model,
        "status": "ok",
        "input_tokens": 0,
        "output_tokens": 0,
        "latency_ms": 100.0,
        **columns,
    }


def price(provider: str, model: str, *mtok: float | None) -> dict[str, Any]:
    input_mtok, output_mtok, cache_read, cache_write = (*mtok, None, None, None, None)[:4]
    return {
        "price_key": f"{provider}/{model}",
        "provider": provider,
        "model": model,
        "priced": input_mtok is not None,
        "input_mtok": input_mtok,
        "output_mtok": output_mtok,
        "cache_read_mtok": cache_read,
        "cache_write_mtok": cache_write,
    }


def rows_of(path: Path, name: ReportName, options: ReportOptions | None = None) -> list[dict[str, Any]]:
    columns, rows = query(path, report_sql(name, options))
    return [dict(zip(columns, row, strict=True)) for row in rows]


# daily


@pytest.fixture
def daily_db(store_factory: Callable[..., Path]) -> Path:
    return store_factory(
        sessions=[
            session("a", T0, total_tokens=100, estimated_cost_usd=1.25),
            session("b", T0 + dt.timedelta(hours=14, minutes=59), total_tokens=204, estimated_cost_usd=None),
            session("c", T0 + dt.timedelta(days=1), api_calls=7, api_errors=2),
            session("d", T0 + dt.timedelta(days=3), status="active", wall_time_seconds=None),
        ]
    )


def test_daily_has_one_row_per_utc_day_in_order(daily_db: Path) -> None:
    rows = rows_of(daily_db, "daily")

    assert [(r["date"], r["sessions"]) for r in rows] == [
        (dt.date(2026, 1, 1), 2),
        (dt.date(2026, 1, 2), 1),
        (dt.date(2026, 1, 4), 1),
    ]
    first = rows[0]
    assert first["total_tokens"] == 304
    assert first["total_cost_usd"] == pytest.approx(1.25)  # an unknown cost is not a $0 one
    assert first["avg_tokens_per_session"] == 152
    assert (rows[1]["api_calls"], rows[1]["api_errors"]) == (7, 2)


def test_daily_with_a_date_shows_only_that_day(daily_db: Path) -> None:
    rows = rows_of(daily_db, "daily", ReportOptions(date=dt.date(2026, 1, 2)))
    assert [(r["date"], r["api_calls"]) for r in rows] == [(dt.date(2026, 1, 2), 7)]
    assert rows_of(daily_db, "daily", ReportOptions(date=dt.date(2026, 1, 3))) == []


@pytest.mark.parametrize("text", ["2026-02-30", "2026-13-01", "2026/01/05", "01-05-2026", "yesterday", ""])
def test_a_bad_date_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="is not a day as YYYY-MM-DD"):
        parse_day(text)


def test_a_date_is_a_day() -> None:
    assert parse_day("2026-01-05") == dt.date(2026, 1, 5)
    with pytest.raises(ConfigError):
        daily_report(dt.datetime(2026, 1, 5, 12))  # type: ignore[arg-type]  # a time is not a day
    with pytest.raises(ConfigError):
        daily_report("2026-01-05' OR true --")  # type: ignore[arg-type]


# sessions


@pytest.fixture
def sessions_db(store_factory: Callable[..., Path]) -> Path:
    return store_factory(
        sessions=[
            session("s1", estimated_cost_usd=1.0, total_tokens=100, api_errors=1, wall_time_seconds=60.4),
            session(
                "s2",
                estimated_cost_usd=None,
                cost_status="unknown",
                total_tokens=500,
                api_errors=3,
                tool_errors=2,
                wall_time_seconds=600.0,
                models=["qwen2.5-coder:32b", "gpt-4o"],
            ),
            session("s3", estimated_cost_usd=3.0, total_tokens=50, status="active", wall_time_seconds=None),
            session("s4", estimated_cost_usd=1.0, total_tokens=500, wall_time_seconds=10.0, models=[]),
        ]
    )


@pytest.mark.parametrize(
    ("by", "order"),
    [
        ("cost", ["s3", "s1", "s4", "s2"]),  # s1 and s4 tie: by id; no cost known: last
        ("tokens", ["s2", "s4", "s1", "s3"]),
        ("errors", ["s2", "s1", "s3", "s4"]),  # api + tool errors
        ("duration", ["s2", "s1", "s4", "s3"]),  # still active: no wall time, last
    ],
)
def test_sessions_are_ranked_highest_first_unknown_last(sessions_db: Path, by: str, order: list[str]) -> None:
    rows = rows_of(sessions_db, "sessions", ReportOptions(by=by))  # type: ignore[arg-type]
    assert [r["session_id"] for r in rows] == order


def test_sessions_top_limits_the_list(sessions_db: Path) -> None:
    rows = rows_of(sessions_db, "sessions", ReportOptions(top=2, by="tokens"))
    assert [r["session_id"] for r in rows] == ["s2", "s4"]


def test_sessions_rows_are_readable(sessions_db: Path) -> None:
    by_id = {r["session_id"]: r for r in rows_of(sessions_db, "sessions")}

    assert list(by_id["s1"]) == [
        "session_id",
        "source",
        "category",
        "task_type",
        "models",
        "started_at",
        "wall_time_seconds",
        "api_calls",
        "tool_calls",
        "errors",
        "tokens",
        "estimated_cost_usd",
        "cost_status",
        "score",
    ]
    assert by_id["s2"]["models"] == "qwen2.5-coder:32b, gpt-4o"
    assert by_id["s4"]["models"] == by_id["s1"]["models"] == "claude-sonnet-4-5"  # no list: the last model
    assert by_id["s2"]["errors"] == 5
    assert (by_id["s2"]["estimated_cost_usd"], by_id["s2"]["cost_status"]) == (None, "unknown")
    assert by_id["s1"]["wall_time_seconds"] == 60


@pytest.mark.parametrize("top", [0, -3, True, 2.5])
def test_sessions_top_must_be_a_positive_whole_number(top: Any) -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        sessions_report(top=top)


def test_sessions_rank_only_by_known_orders() -> None:
    with pytest.raises(ConfigError, match="cost, tokens, errors, duration"):
        sessions_report(by="score; DROP TABLE sessions")  # type: ignore[arg-type]


# models


@pytest.fixture
def models_db(store_factory: Callable[..., Path]) -> Path:
    claude = ("anthropic", "claude-sonnet-4-5")
    mini = ("openai", "gpt-4o-mini")
    qwen = ("ollama", "qwen2.5-coder:32b")
    mystery = ("local", "mystery")
    return store_factory(
        api_calls=[
            # priced with its cache prices: (500 * 3 + 400 * 0.3 + 100 * 3.75 + 200 * 15) / 1e6
            call(
                "c1",
                *claude,
                input_tokens=1000,
                cache_read_tokens=400,
                cache_write_tokens=100,
                output_tokens=200,
                latency_ms=100.0,
            ),  # fmt: skip
            call("c2", *claude, input_tokens=10, output_tokens=10, cost_usd=0.5, latency_ms=300.0),
            call("c3", *claude, status="error", latency_ms=200.0),
            call(
                "c4",
                *claude,
                input_tokens=1,
                output_tokens=1,
                latency_ms=1000.0,
                ts=T0 + dt.timedelta(days=1),
            ),
            # no cache price: cache reads cost the input price
            call("m1", *mini, input_tokens=2000, cache_read_tokens=1000, output_tokens=100),
            call("q1", *qwen, input_tokens=50, output_tokens=5),
            call("q2", *qwen, input_tokens=50, output_tokens=5, status="error"),
            call("x1", *mystery, input_tokens=7, output_tokens=3, cost_usd=0.01),
        ],
        model_prices=[price(*claude, 3.0, 15.0, 0.3, 3.75), price(*mini, 0.075, 0.6), price(*qwen)],
    )


def test_models_report_calls_errors_tokens_cost_and_latency(models_db: Path) -> None:
    rows = {(r["provider"], r["model"]): r for r in rows_of(models_db, "models")}

    claude = rows["anthropic", "claude-sonnet-4-5"]
    assert (claude["calls"], claude["errors"], claude["tokens"]) == (4, 1, 1222)
    assert claude["cost_usd"] == pytest.approx(0.5 + 4995e-6 + 18e-6)
    # Over every day, not from daily p50s; from the latency histogram, so the median
    # call's latency (200 ms) within ±1.3%, not the exact median (250, between 200 and 300).
    assert claude["p50_latency_ms"] == pytest.approx(200, rel=0.013)
    assert (claude["priced"], claude["price"]) == (True, "$3.00 in / $15.00 out per Mtok")
    mini = rows["openai", "gpt-4o-mini"]
    assert mini["cost_usd"] == pytest.approx((2000 * 0.075 + 100 * 0.6) / 1e6)
    assert mini["price"] == "$0.075 in / $0.60 out per Mtok"


def test_models_cost_is_the_sum_of_model_stats_daily(models_db: Path) -> None:
    _, daily = query(models_db, "SELECT provider, model, sum(cost_usd) FROM model_stats_daily GROUP BY ALL")
    report = {(r["provider"], r["model"]): r["cost_usd"] for r in rows_of(models_db, "models")}
    for provider, model, cost in daily:
        assert report[provider, model] == (None if cost is None else pytest.approx(cost))


def test_models_without_a_price_are_listed(models_db: Path) -> None:
    rows = rows_of(models_db, "models")

    assert [(r["provider"], r["model"]) for r in rows] == [
        ("anthropic", "claude-sonnet-4-5"),
        ("ollama", "qwen2.5-coder:32b"),
        ("local", "mystery"),
        ("openai", "gpt-4o-mini"),
    ]
    qwen, mystery = rows[1], rows[2]
    assert (qwen["calls"], qwen["errors"], qwen["priced"], qwen["price"]) == (2, 1, False, "unknown")
    assert qwen["cost_usd"] is None  # unknown, never a silent $0
    # No model_prices row at all: still listed, its cost only as its provider reported it.
    assert (mystery["priced"], mystery["price"], mystery["cost_usd"]) == (False, "unknown", 0.01)


def test_the_models_table_names_the_models_without_a_price(models_db: Path) -> None:
    columns, rows = query(models_db, report_sql("models"))

    (note,) = report_notes("models", columns, rows)
    assert "no price for 2 models: ollama/qwen2.5-coder:32b, local/mystery" in note
    priced = [row for row in rows if row[columns.index("priced")]]
    assert report_notes("models", columns, priced) == []
    assert report_notes("daily", columns, rows) == []


# every report


def test_unknown_reports_are_refused() -> None:
    with pytest.raises(ConfigError, match="no report 'weekly'"):
        report_sql("weekly")  # type: ignore[arg-type]


def test_every_report_runs_on_an_empty_store(store_factory: Callable[..., Path]) -> None:
    path = store_factory()
    for name in ("daily", "sessions", "models", "summary", "errors"):
        columns, rows = query(path, report_sql(name))  # type: ignore[arg-type]
        assert columns and (rows == [] or name == "summary")


def test_the_report_bench_builds_a_store_the_reports_read(tmp_path: Path) -> None:
    figures = report_timings(tmp_path, api_calls=20_000, sessions=400)

    assert figures["report_rows_api_calls"] == 20_000 and figures["report_rows_sessions"] == 400
    for name in ("daily", "sessions", "models"):
        assert 0 < figures[f"report_{name}_ms"] <= figures[f"report_{name}_cold_ms"]
    path = tmp_path / "report-bench.duckdb"
    models = rows_of(path, "models")
    assert len(models) == 12 and sum(r["calls"] for r in models) == 20_000
    assert [r["model"] for r in models if not r["priced"]] == ["qwen2.5-coder:32b"]
    assert 0.03 < sum(r["errors"] for r in models) / 20_000 < 0.07
    days = rows_of(path, "daily")
    assert len(days) == 90 and sum(d["sessions"] for d in days) == 400
    assert len(rows_of(path, "sessions", ReportOptions(top=500))) == 400
