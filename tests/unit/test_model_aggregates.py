"""The per-day model aggregates the sink keeps, on real DuckDB files: sums over ``api_calls``, replay-safe."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest

from hermes_stream import codec
from hermes_stream.events import Event
from hermes_stream.generator import DEFAULT_START, generate_events
from hermes_stream.model_aggregates import LATENCY_BUCKETS_PER_E
from hermes_stream.pipeline import process_records
from hermes_stream.records import Origin
from hermes_stream.report_bench import build_store
from hermes_stream.reports import report_sql
from hermes_stream.store import SinkBatch, Store, query

#: 22:00 UTC: the sessions run past midnight, so their calls fall on two days.
LATE_EVENING = DEFAULT_START - 2 * 3600

#: What ``model_calls_daily`` must hold: its columns, as a GROUP BY over the calls.
CALLS_BY_DAY = """
    SELECT CAST(ts AS DATE), provider, model, count(*), count(*) FILTER (WHERE status = 'error'),
           sum(input_tokens), sum(output_tokens), sum(input_tokens + output_tokens), sum(cost_usd),
           sum(input_tokens) FILTER (WHERE cost_usd IS NULL),
           sum(coalesce(cache_read_tokens, 0)) FILTER (WHERE cost_usd IS NULL),
           sum(coalesce(cache_write_tokens, 0)) FILTER (WHERE cost_usd IS NULL),
           sum(output_tokens) FILTER (WHERE cost_usd IS NULL)
    FROM api_calls GROUP BY ALL
"""
STORED_CALLS = """
    SELECT day, provider, model, calls, errors, input_tokens, output_tokens, tokens, reported_cost_usd,
           unreported_input_tokens, unreported_cache_read_tokens, unreported_cache_write_tokens,
           unreported_output_tokens
    FROM model_calls_daily
"""
LATENCY_BY_DAY = f"""
    SELECT CAST(ts AS DATE), provider, model,
           CAST(floor(ln(greatest(latency_ms, 1)) * {LATENCY_BUCKETS_PER_E}) AS INTEGER), count(*)
    FROM api_calls WHERE latency_ms IS NOT NULL GROUP BY ALL
"""
STORED_LATENCY = "SELECT day, provider, model, bucket, calls FROM model_latency_daily"

#: The ``models`` report as it was before the aggregates: one pass over ``api_calls``.
MODELS_FROM_CALLS = """
    WITH calls AS (
        SELECT provider, model, count(*) AS calls, count_if(status = 'error') AS errors,
               sum(input_tokens + output_tokens) AS tokens, sum(cost_usd) AS reported_usd,
               sum(CASE WHEN cost_usd IS NULL THEN input_tokens END) AS input_tokens,
               sum(CASE WHEN cost_usd IS NULL THEN coalesce(cache_read_tokens, 0) END) AS cache_read_tokens,
               sum(CASE WHEN cost_usd IS NULL THEN coalesce(cache_write_tokens, 0) END) AS cache_write_tokens,
               sum(CASE WHEN cost_usd IS NULL THEN output_tokens END) AS output_tokens,
               quantile_cont(latency_ms, 0.5) AS p50_latency_ms
        FROM api_calls GROUP BY ALL
    ), costed AS (
        SELECT c.*, p.input_mtok, p.output_mtok,
               coalesce(p.priced AND p.input_mtok IS NOT NULL AND p.output_mtok IS NOT NULL, false) AS known,
               ((c.input_tokens - c.cache_read_tokens - c.cache_write_tokens) * p.input_mtok
                + c.cache_read_tokens * coalesce(p.cache_read_mtok, p.input_mtok)
                + c.cache_write_tokens * coalesce(p.cache_write_mtok, p.input_mtok)
                + c.output_tokens * p.output_mtok) / 1e6 AS estimated_usd
        FROM calls c LEFT JOIN model_prices p USING (provider, model)
    )
    SELECT provider, model, calls, errors, tokens,
           round(coalesce(reported_usd + estimated_usd, reported_usd, estimated_usd), 6) AS cost_usd,
           p50_latency_ms, known AS priced
    FROM costed
    ORDER BY calls DESC, provider, model
"""

#: The ``model_stats_daily`` view as it was, over ``api_calls``; its latencies are
#: those of the calls at the 50% and 95% ranks, which the histogram's buckets hold.
MODEL_STATS_FROM_CALLS = """
    SELECT CAST(a.ts AS DATE) AS day, a.provider, a.model,
           count(*) AS calls,
           count(*) FILTER (WHERE a.status = 'error') AS errors,
           sum(a.input_tokens) AS input_tokens,
           sum(a.output_tokens) AS output_tokens,
           sum(a.input_tokens + a.output_tokens) AS tokens,
           sum(coalesce(a.cost_usd, (
               (a.input_tokens - coalesce(a.cache_read_tokens, 0) - coalesce(a.cache_write_tokens, 0))
                   * p.input_mtok
               + coalesce(a.cache_read_tokens, 0) * coalesce(p.cache_read_mtok, p.input_mtok)
               + coalesce(a.cache_write_tokens, 0) * coalesce(p.cache_write_mtok, p.input_mtok)
               + a.output_tokens * p.output_mtok) / 1e6)) AS cost_usd,
           list_sort(list(a.latency_ms))[CAST(ceil(0.5 * count(a.latency_ms)) AS BIGINT)] AS p50_latency_ms,
           list_sort(list(a.latency_ms))[CAST(ceil(0.95 * count(a.latency_ms)) AS BIGINT)] AS p95_latency_ms
    FROM api_calls a LEFT JOIN model_prices p USING (provider, model)
    GROUP BY ALL
"""
STORED_STATS = """
    SELECT day, provider, model, calls, errors, input_tokens, output_tokens, tokens, cost_usd,
           p50_latency_ms, p95_latency_ms
    FROM model_stats_daily
"""


def workload(sessions: int, seed: int) -> list[Event]:
    return list(generate_events(sessions, seed, LATE_EVENING))


def sink_batch(events: Sequence[Event], offset: int = 0) -> SinkBatch:
    """The sink batch the worker folds from *events*, 50 to a record."""
    records = [
        (codec.dumps(list(events[i : i + 50])), Origin("t", 0, offset + i)) for i in range(0, len(events), 50)
    ]
    return process_records(records, lambda _: None, 1 << 20).sink


def written(path: Path, *batches: SinkBatch) -> Path:
    store = Store(path)
    for batch in batches:
        store.write(batch)
    store.release()
    return path


def by_key(path: Path, sql: str, key: int) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    return {row[:key]: row[key:] for row in query(path, sql)[1]}


def assert_sums_of_the_calls(path: Path) -> None:
    stored, expected = by_key(path, STORED_CALLS, 3), by_key(path, CALLS_BY_DAY, 3)
    assert stored.keys() == expected.keys()
    for key, row in expected.items():
        assert stored[key] == pytest.approx(row), key  # costs summed batch by batch: another order
    assert by_key(path, STORED_LATENCY, 4) == by_key(path, LATENCY_BY_DAY, 4)


def aggregates(path: Path) -> tuple[list[Any], ...]:
    return tuple(sorted(query(path, sql)[1]) for sql in (STORED_CALLS, STORED_LATENCY))


def within_a_bucket(estimate: float, latency: float) -> bool:
    """Whether *estimate* is within ±1.3% of *latency*, plus the rounding to a whole ms."""
    return abs(estimate - latency) <= 0.013 * latency + 0.5


def test_the_aggregates_are_the_sums_over_the_calls_written(tmp_path: Path) -> None:
    path = written(
        tmp_path / "a.duckdb",
        sink_batch(workload(15, seed=1)),
        sink_batch(workload(15, seed=2), offset=10_000),  # the same days and models: added to
        sink_batch(workload(15, seed=3), offset=20_000),
    )

    assert_sums_of_the_calls(path)
    _, [(days, calls)] = query(path, "SELECT count(DISTINCT day), sum(calls) FROM model_calls_daily")
    assert days == 2 and calls == query(path, "SELECT count(*) FROM api_calls")[1][0][0]


def test_a_replayed_or_overlapping_batch_changes_nothing(tmp_path: Path) -> None:
    first, second = workload(15, seed=4), workload(15, seed=5)
    path = written(tmp_path / "a.duckdb", sink_batch(first))
    before = aggregates(path)

    written(path, sink_batch(first))  # after a crash the same records come again
    assert aggregates(path) == before

    half = len(first) // 2
    written(path, sink_batch(first[half:] + second, offset=half))  # half of it written already
    assert_sums_of_the_calls(path)
    assert aggregates(path) != before


def test_a_file_made_before_the_aggregates_gets_them_filled(tmp_path: Path) -> None:
    path = written(tmp_path / "a.duckdb", sink_batch(workload(15, seed=6)))
    with duckdb.connect(str(path)) as con:  # as an older version left it: calls, no aggregates
        con.execute("DROP TABLE model_calls_daily")
        con.execute("DROP TABLE model_latency_daily")

    Store(path).ensure_schema()

    assert_sums_of_the_calls(path)
    assert query(path, "SELECT count(*) FROM model_latency_daily")[1][0][0] > 0


def test_model_stats_daily_is_what_it_was_over_the_calls(tmp_path: Path) -> None:
    path = written(tmp_path / "a.duckdb", sink_batch(workload(20, seed=7)))

    view = by_key(path, STORED_STATS, 3)
    expected = by_key(path, MODEL_STATS_FROM_CALLS, 3)
    assert view.keys() == expected.keys()
    for key, (*sums, p50, p95) in expected.items():
        *view_sums, view_p50, view_p95 = view[key]
        assert view_sums == pytest.approx(sums)
        assert within_a_bucket(view_p50, p50) and within_a_bucket(view_p95, p95), (key, view[key], p50, p95)


@pytest.fixture(scope="module")
def bench_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report benchmark's store, small: ~1,700 calls a model, so the exact medians are dense."""
    path = tmp_path_factory.mktemp("bench") / "bench.duckdb"
    build_store(path, api_calls=20_000, sessions=400, days=30)
    return path


def test_the_models_report_is_what_it_was_over_the_calls(bench_db: Path) -> None:
    columns, rows = query(bench_db, report_sql("models"))
    report = [dict(zip(columns, row, strict=True)) for row in rows]
    old_columns, old_rows = query(bench_db, MODELS_FROM_CALLS)
    before = [dict(zip(old_columns, row, strict=True)) for row in old_rows]

    assert columns == [*old_columns, "price"]
    assert [(r["provider"], r["model"]) for r in report] == [(r["provider"], r["model"]) for r in before]
    for new, old in zip(report, before, strict=True):
        for column in ("calls", "errors", "tokens", "priced"):
            assert new[column] == old[column], (new, old)
        assert new["cost_usd"] == pytest.approx(old["cost_usd"], abs=2e-6)  # rounded to 6 places
        # The midpoint of the median call's histogram bucket, not the exact median.
        assert within_a_bucket(new["p50_latency_ms"], old["p50_latency_ms"]), (new, old)
