"""How fast the canned reports are on a large store: ``python -m hermes_stream.report_bench``.

Builds a DuckDB file (the real schema, :meth:`Store.ensure_schema`) holding
10,000,000 API calls of 200,000 sessions over 90 days, entirely in DuckDB SQL
from ``range()``: a dozen provider/model pairs with a skewed mix, one of them
without a price, ~5% failed calls, skewed token counts and latencies, sessions
of uneven length with categories, costs (reported, estimated or unknown) and
wall times, the newest 1% still active; then the model aggregates the sink
would have kept (:func:`hermes_stream.store.rebuild_model_aggregates`). Then
times ``report daily``, ``report sessions`` and ``report models`` with the SQL
the CLI runs, each in a fresh read-only connection
(:func:`hermes_stream.store.query`): the first run (``…_cold_ms``, what a new
``hermes-stream report`` process pays, except that the OS page cache is warm
from the build) and the best of three. Progress goes to stderr; the figures
are one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from hermes_stream import codec
from hermes_stream.reports import ReportName, report_sql
from hermes_stream.schema import API_CALLS, MODEL_PRICES, SESSIONS
from hermes_stream.store import Store, query, rebuild_model_aggregates

API_CALL_ROWS = 10_000_000
SESSION_ROWS = 200_000
DAYS = 90
RUNS = 3
BENCHED: tuple[ReportName, ...] = ("daily", "sessions", "models")

# provider, model, share of sessions (%), $/Mtok in, out, cache read, cache write, whether the
# provider reports each call's cost, whether the model reasons. Ollama's model has no price.
_MODELS = """(VALUES
    ('anthropic', 'claude-sonnet-4-5', 30, 3.0, 15.0, 0.3, 3.75, false, false),
    ('anthropic', 'claude-haiku-4-5', 8, 1.0, 5.0, 0.1, 1.25, false, false),
    ('anthropic', 'claude-opus-4-1', 5, 15.0, 75.0, 1.5, 18.75, false, false),
    ('openai', 'gpt-4o', 10, 2.5, 10.0, 1.25, NULL, false, false),
    ('openai', 'gpt-4o-mini', 6, 0.15, 0.6, 0.075, NULL, false, false),
    ('openai', 'o3-mini', 4, 1.1, 4.4, 0.55, NULL, false, true),
    ('openai', 'gpt-5', 10, 1.25, 10.0, 0.125, NULL, false, true),
    ('google', 'gemini-2.5-pro', 8, 1.25, 10.0, 0.31, NULL, false, true),
    ('google', 'gemini-2.5-flash', 7, 0.3, 2.5, 0.075, NULL, false, true),
    ('openrouter', 'meta-llama/llama-3.3-70b-instruct', 5, 0.13, 0.39, NULL, NULL, true, false),
    ('openrouter', 'deepseek/deepseek-chat-v3.1', 3, 0.27, 1.0, NULL, NULL, true, false),
    ('ollama', 'qwen2.5-coder:32b', 4, NULL, NULL, NULL, NULL, false, false)
) AS m(provider, model, share, input_mtok, output_mtok, cache_read_mtok, cache_write_mtok,
       reports_cost, reasoning)"""

_SETUP = """
CREATE TEMP MACRO u(i, salt) AS (hash(i, salt) % 1000003) / 1000003.0;
CREATE TEMP TABLE bench_models AS
    SELECT *, sum(share) OVER (ORDER BY share DESC, model) - share AS lo,
           sum(share) OVER (ORDER BY share DESC, model) AS hi
    FROM {models};
INSERT INTO model_prices ({columns})
    SELECT provider || '/' || model, provider, model, input_mtok IS NOT NULL, input_mtok, output_mtok,
           cache_read_mtok, cache_write_mtok, 'bench-1'
    FROM bench_models;
"""

# Sessions: evenly spread start times, exponential wall times (mean 15 min, at most 4 h).
_BUILD_SESSIONS = """
CREATE TEMP TABLE bench_sessions AS
    SELECT i AS n, 'sess_' || i AS session_id, m.*,
           TIMESTAMP '2026-01-01' + to_microseconds(CAST(i * ({days} * 86400e6 / {sessions}) AS BIGINT))
               AS started_at,
           least(-ln(1 - u(i, 'wall')) * 900, 14400) + 5 AS wall,
           i >= {sessions} * 0.99 AS active,
           CASE WHEN u(i, 'src') < 0.58 THEN 'cli' WHEN u(i, 'src') < 0.78 THEN 'gateway'
                WHEN u(i, 'src') < 0.90 THEN 'subagent' ELSE 'cron' END AS source,
           ['coding', 'research', 'ops', 'general'][1 + CAST(hash(i, 'cat') % 4 AS INTEGER)] AS category,
           ['code', 'file', 'research', 'mixed'][1 + CAST(hash(i, 'task') % 4 AS INTEGER)] AS task_type
    FROM range({sessions}) t(i) JOIN bench_models m ON hash(i, 'model') % 100 >= m.lo
                                                    AND hash(i, 'model') % 100 < m.hi
"""

# Call i belongs to session floor(S * w(i/N)), w(x) = x - 0.8 sin(kx)/k: w's wobble
# makes sessions of ~30 to ~100 calls instead of N/S each, and keeps them in order.
_BUILD_API_CALLS = """
INSERT INTO api_calls ({columns})
WITH c AS (
    SELECT i, u(i, 'status') < 0.05 AS failed,
           least({sessions} - 1, CAST(floor({sessions} * (i / {calls} - 0.8 * sin({k} * i / {calls}) / {k}))
                                      AS BIGINT)) AS n
    FROM range({calls}) t(i)
), t AS (
    SELECT c.*, s.*,
           CASE WHEN failed THEN 0 ELSE CAST(300 + 30000 * u(i, 'in') ** 2 AS BIGINT) END AS input_tokens,
           CASE WHEN failed THEN 0 ELSE CAST(20 + 3000 * u(i, 'out') ** 3 AS BIGINT) END AS output_tokens,
           u(i, 'err') AS e
    FROM c JOIN bench_sessions s USING (n)
)
SELECT 'evt_' || i, session_id, started_at + to_microseconds(CAST(u(i, 'ts') * wall * 1e6 AS BIGINT)),
       source, model, provider, CASE WHEN failed THEN 'error' ELSE 'ok' END,
       input_tokens, output_tokens,
       CASE WHEN cache_read_mtok IS NOT NULL THEN CAST(input_tokens * 0.8 * u(i, 'cr') AS BIGINT) END,
       CASE WHEN cache_write_mtok IS NOT NULL AND u(i, 'cw') < 0.1 THEN input_tokens // 5 END,
       CASE WHEN reasoning THEN output_tokens // 3 END,
       CASE WHEN failed THEN 80 + 800 * u(i, 'lat')
            ELSE 250 + 1500 * u(i, 'lat') + output_tokens * (8 + 20 * u(i, 'tps')) END,
       CASE WHEN NOT failed THEN 200 WHEN e < 0.4 THEN 429 WHEN e < 0.6 THEN 500
            WHEN e < 0.8 THEN 529 ELSE 400 END,
       CASE WHEN NOT failed THEN NULL WHEN e < 0.4 THEN 'RateLimitError' WHEN e < 0.8 THEN 'APIStatusError'
            ELSE 'BadRequestError' END,
       CASE WHEN NOT failed THEN NULL WHEN e < 0.4 THEN 'Rate limit reached, please retry'
            WHEN e < 0.8 THEN 'Overloaded' ELSE 'prompt is too long' END,
       CASE WHEN reports_cost AND NOT failed
            THEN (input_tokens * input_mtok + output_tokens * output_mtok) / 1e6 END,
       200000, CASE WHEN failed THEN NULL WHEN u(i, 'fin') < 0.7 THEN 'tool_calls' ELSE 'stop' END,
       CASE WHEN NOT failed THEN NULL WHEN e < 0.8 THEN 'retryable' ELSE 'permanent' END,
       CASE WHEN NOT failed THEN NULL WHEN e < 0.4 THEN 'rate_limit' WHEN e < 0.6 THEN 'server_error'
            WHEN e < 0.8 THEN 'overloaded' ELSE 'context_overflow' END
FROM t
"""

_BUILD_SESSION_ROWS = """
INSERT INTO sessions ({columns})
WITH a AS (
    SELECT session_id, count(*) AS calls, count(*) FILTER (WHERE status = 'error') AS errors,
           max(ts) AS last_ts, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
           sum(cache_read_tokens) AS cache_read_tokens, sum(cache_write_tokens) AS cache_write_tokens,
           sum(reasoning_tokens) AS reasoning_tokens, sum(cost_usd) AS reported_usd
    FROM api_calls GROUP BY session_id
), s AS (
    SELECT s.*, a.* EXCLUDE (session_id), CAST(calls * (0.5 + 1.5 * u(n, 'tools')) AS BIGINT) AS tools,
           CAST(calls * (0.5 + 1.5 * u(n, 'tools')) * 0.04 * u(n, 'tool_err') ** 2 AS BIGINT) AS tool_errors
    FROM bench_sessions s JOIN a USING (session_id)
)
SELECT session_id, source, CASE WHEN active THEN 'active' ELSE 'ended' END, model, provider, started_at,
       last_ts, CASE WHEN NOT active THEN started_at + to_microseconds(CAST(wall * 1e6 AS BIGINT)) END,
       CASE WHEN NOT active THEN wall END, CASE WHEN NOT active THEN 'completed' END, NOT active,
       calls * 2, calls + tools, calls, errors, tools, tool_errors, calls // 20,
       input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
       input_tokens + output_tokens, [model],
       json_object('terminal', tools // 2, 'read_file', tools - tools // 2),
       CASE WHEN reports_cost THEN reported_usd WHEN input_mtok IS NOT NULL THEN
           ((input_tokens - coalesce(cache_read_tokens, 0)) * input_mtok
            + coalesce(cache_read_tokens, 0) * cache_read_mtok + output_tokens * output_mtok) / 1e6 END,
       CASE WHEN reports_cost THEN 'reported' WHEN input_mtok IS NOT NULL THEN 'estimated' ELSE 'unknown' END,
       CASE WHEN NOT reports_cost THEN 'bench-1' END,
       CASE WHEN NOT active THEN category END, CASE WHEN NOT active THEN task_type END,
       calls * 2, CASE WHEN NOT active THEN (errors + tool_errors) / (calls + tools) END,
       CASE WHEN NOT active THEN 2 END, CASE WHEN NOT active THEN u(n, 'skill') < 0.6 END,
       CASE WHEN NOT active THEN u(n, 'ok') < 0.85 END, CASE WHEN NOT active THEN round(u(n, 'score'), 3) END
FROM s
"""


def build_store(
    path: Path, api_calls: int = API_CALL_ROWS, sessions: int = SESSION_ROWS, days: int = DAYS
) -> None:
    """Create *path* afresh with the real schema and *api_calls* calls of *sessions* sessions."""
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)
    Store(path).ensure_schema()
    # k: a wobble period of 8 sessions
    sizes = {"calls": api_calls, "sessions": sessions, "days": days, "k": 2 * math.pi * sessions / 8}
    con = duckdb.connect(str(path))
    try:
        con.execute("SET enable_progress_bar = false")  # progress is ours, one line a step
        con.execute(_SETUP.format(models=_MODELS, columns=", ".join(MODEL_PRICES.names)))
        with _step(f"{sessions:,} sessions drawn"):
            con.execute(_BUILD_SESSIONS.format(**sizes))
        with _step(f"api_calls: {api_calls:,} rows"):
            con.execute(_BUILD_API_CALLS.format(**sizes, columns=", ".join(API_CALLS.names)))
        with _step("model aggregates"):  # the calls came around the sink, which keeps them
            rebuild_model_aggregates(con)
        with _step(f"sessions: {sessions:,} rows"):
            con.execute(_BUILD_SESSION_ROWS.format(columns=", ".join(SESSIONS.names)))
        with _step("checkpoint"):
            con.execute("CHECKPOINT")
    finally:
        con.close()


def time_report(path: Path, sql: str, runs: int = RUNS) -> tuple[float, float]:
    """Milliseconds of the first run of *sql* and the best of *runs*, each in a fresh read-only connection."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        query(path, sql)
        times.append((time.perf_counter() - started) * 1000)
    return round(times[0], 1), round(min(times), 1)


def report_timings(
    workdir: Path, api_calls: int = API_CALL_ROWS, sessions: int = SESSION_ROWS
) -> dict[str, float]:
    """Build the store in *workdir* and time the reports on it (see the module docstring)."""
    path = workdir / "report-bench.duckdb"
    build_store(path, api_calls, sessions)
    figures: dict[str, float] = {}
    for name in BENCHED:
        cold, best = time_report(path, report_sql(name))
        _say(f"report {name}: {best:.1f} ms (first run {cold:.1f} ms)")
        figures[f"report_{name}_ms"] = best
        figures[f"report_{name}_cold_ms"] = cold
    figures["report_rows_api_calls"] = api_calls
    figures["report_rows_sessions"] = sessions
    return figures


@contextmanager
def _step(what: str) -> Iterator[None]:
    started = time.perf_counter()
    _say(f"{what} …")
    yield
    _say(f"  done in {time.perf_counter() - started:.1f}s")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hermes_stream.report_bench", description=__doc__)
    parser.add_argument(
        "--workdir", type=Path, help="keep the DuckDB file in this directory [default: a temporary one]"
    )
    args = parser.parse_args(argv)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        figures = report_timings(args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="hermes-report-bench-") as tmp:
            figures = report_timings(Path(tmp))
    print(codec.dumps(figures).decode())


if __name__ == "__main__":
    main()
