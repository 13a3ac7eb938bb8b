"""Per-day model aggregates over ``api_calls``, kept by the sink as it writes.

The :class:`Aggregate` tables hold per-day sums over ``api_calls`` that the sink
adds each write's new calls to (``store.py``), so the ``models`` report and the
``model_stats_daily`` view read thousands of rows, not millions of calls.
Latency percentiles come from a log histogram of calls by latency bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The latency histograms' resolution: buckets per factor e of latency, each ~2.5%
#: wide. A bucket's midpoint, ``exp((bucket + 0.5) / LATENCY_BUCKETS_PER_E)``, is
#: within ±1.3% of every latency in it.
LATENCY_BUCKETS_PER_E = 40


@dataclass(frozen=True)
class Aggregate:
    """A table of per-day sums over ``api_calls``, kept by the sink, not staged from rows.

    ``select`` aggregates a relation of ``api_calls`` rows, ``{calls}``, to rows
    of the table, one per key.
    """

    name: str
    key: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]
    select: str

    def ddl(self) -> str:
        cols = "".join(f"{name} {sql},\n  " for name, sql in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n  {cols}PRIMARY KEY ({', '.join(self.key)})\n)"

    def add_from(self, calls: str) -> str:
        """SQL adding the sums over the ``api_calls`` rows in *calls* to the stored ones."""
        # coalesce: a sum of NULLs stays NULL, as sum() gives it (no reported cost is not $0).
        updates = ", ".join(
            f"{name} = coalesce({name} + excluded.{name}, {name}, excluded.{name})"
            for name, _ in self.columns
            if name not in self.key
        )
        return (
            f"INSERT INTO {self.name} BY NAME ({self.select.format(calls=calls)}) "
            f"ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {updates}"
        )


_DAY_MODEL = (("day", "DATE"), ("provider", "VARCHAR"), ("model", "VARCHAR"))

#: Calls, errors, tokens and reported cost per UTC day and model. The token sums of
#: the calls without a reported cost (``unreported_…``) are what readers price
#: from ``model_prices``.
MODEL_CALLS_DAILY = Aggregate(
    "model_calls_daily",
    ("day", "provider", "model"),
    (
        *_DAY_MODEL,
        ("calls", "BIGINT"),
        ("errors", "BIGINT"),
        ("input_tokens", "BIGINT"),
        ("output_tokens", "BIGINT"),
        ("tokens", "BIGINT"),
        ("reported_cost_usd", "DOUBLE"),
        ("unreported_input_tokens", "BIGINT"),
        ("unreported_cache_read_tokens", "BIGINT"),
        ("unreported_cache_write_tokens", "BIGINT"),
        ("unreported_output_tokens", "BIGINT"),
    ),
    """
        SELECT CAST(ts AS DATE) AS day, provider, model,
               count(*) AS calls, count_if(status = 'error') AS errors,
               sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
               sum(input_tokens + output_tokens) AS tokens, sum(cost_usd) AS reported_cost_usd,
               sum(CASE WHEN cost_usd IS NULL THEN input_tokens END) AS unreported_input_tokens,
               sum(CASE WHEN cost_usd IS NULL THEN coalesce(cache_read_tokens, 0) END)
                   AS unreported_cache_read_tokens,
               sum(CASE WHEN cost_usd IS NULL THEN coalesce(cache_write_tokens, 0) END)
                   AS unreported_cache_write_tokens,
               sum(CASE WHEN cost_usd IS NULL THEN output_tokens END) AS unreported_output_tokens
        FROM {calls} GROUP BY ALL
    """,
)

#: Calls per UTC day, model and latency bucket: ``floor(ln(latency_ms) * LATENCY_BUCKETS_PER_E)``,
#: latencies under 1 ms in bucket 0. Calls without a latency are not counted.
MODEL_LATENCY_DAILY = Aggregate(
    "model_latency_daily",
    ("day", "provider", "model", "bucket"),
    (*_DAY_MODEL, ("bucket", "INTEGER"), ("calls", "BIGINT")),
    f"""
        SELECT CAST(ts AS DATE) AS day, provider, model,
               CAST(floor(ln(greatest(latency_ms, 1)) * {LATENCY_BUCKETS_PER_E}) AS INTEGER) AS bucket,
               count(*) AS calls
        FROM {{calls}} WHERE latency_ms IS NOT NULL GROUP BY ALL
    """,
)

AGGREGATES = (MODEL_CALLS_DAILY, MODEL_LATENCY_DAILY)
#: The ``api_calls`` columns the aggregates read.
CALL_COLUMNS = (
    "ts", "provider", "model", "status", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_write_tokens", "cost_usd", "latency_ms",
)  # fmt: skip

#: SQL: the cost of the ``unreported_…`` token sums of ``model_calls_daily`` rows
#: ``c``, priced from their ``model_prices`` row ``p`` at its base tier (the
#: sessions table prices tiered calls exactly); NULL without a price.
UNREPORTED_COST_USD = """(
    (c.unreported_input_tokens - c.unreported_cache_read_tokens - c.unreported_cache_write_tokens)
        * p.input_mtok
    + c.unreported_cache_read_tokens * coalesce(p.cache_read_mtok, p.input_mtok)
    + c.unreported_cache_write_tokens * coalesce(p.cache_write_mtok, p.input_mtok)
    + c.unreported_output_tokens * p.output_mtok) / 1e6"""


def latency_percentiles(keys: str) -> str:
    """SQL: ``p50_latency_ms`` and ``p95_latency_ms`` per *keys* (columns of ``model_latency_daily``).

    A percentile is the midpoint of the bucket in which the running count of
    calls reaches its share: within ±1.3% of the latency of the call at that rank.
    """

    def at(share: float) -> str:
        bucket = f"min(bucket) FILTER (WHERE running >= {share} * total)"
        return f"exp(({bucket} + 0.5) / {LATENCY_BUCKETS_PER_E})"

    return f"""
        SELECT {keys}, {at(0.5)} AS p50_latency_ms, {at(0.95)} AS p95_latency_ms
        FROM (SELECT {keys}, bucket,
                     sum(sum(calls)) OVER (PARTITION BY {keys} ORDER BY bucket) AS running,
                     sum(sum(calls)) OVER (PARTITION BY {keys}) AS total
              FROM {MODEL_LATENCY_DAILY.name} GROUP BY {keys}, bucket)
        GROUP BY ALL
    """
