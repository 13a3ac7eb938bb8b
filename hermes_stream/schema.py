"""The DuckDB tables and views analysts query, in one place.

Column names are a public contract (the README documents them). Timestamps
are ``TIMESTAMP`` in UTC; the sink stages them as epoch seconds and converts
them in SQL.

The per-day model aggregates and the ``model_stats_daily`` view's building
blocks are in :mod:`hermes_stream.model_aggregates`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from hermes_stream.model_aggregates import MODEL_CALLS_DAILY, UNREPORTED_COST_USD, latency_percentiles


@dataclass(frozen=True)
class Table:
    """A sink table: its name, primary key and ``(column, SQL type)`` pairs."""

    name: str
    key: str
    columns: tuple[tuple[str, str], ...]
    #: On a key conflict: keep the stored row (immutable facts) or replace it.
    replace: bool = False
    #: Columns with an index of their own, for lookups by them.
    indexes: tuple[str, ...] = ()

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def row(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """The row tuple for *values* (an event or a dict of columns), in column order."""
        return tuple(map(values.get, self.names))

    def ddl(self) -> str:
        cols = ",\n  ".join(
            f"{name} {sql}{' PRIMARY KEY' if name == self.key else ''}" for name, sql in self.columns
        )
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n  {cols}\n)"

    def index_ddl(self) -> list[str]:
        return [
            f"CREATE INDEX IF NOT EXISTS {self.name}_by_{column} ON {self.name} ({column})"
            for column in self.indexes
        ]

    def added_columns(self) -> list[str]:
        """Statements that add columns a file made by an older version lacks (new columns come last)."""
        return [
            f"ALTER TABLE {self.name} ADD COLUMN IF NOT EXISTS {name} {sql}"
            for name, sql in self.columns
            if name != self.key
        ]

    def staging_types(self) -> dict[str, str]:
        """Column types of the staging table: timestamps arrive as epoch seconds."""
        return {name: "DOUBLE" if sql == "TIMESTAMP" else sql for name, sql in self.columns}

    def insert_from(self, staging: str, upsert: bool) -> str:
        """SQL inserting the rows of *staging*.

        Where rows never change, a stored row of the same key is kept with
        ``upsert``; without it a plain ``INSERT`` fails on one (a
        ``duckdb.ConstraintException``) but runs ~3x faster than
        ``INSERT OR IGNORE``, for a few rows as for thousands. Where rows are
        replaced, the stored ones must be deleted first (:meth:`merge_from`).
        """
        select = ", ".join(
            f"make_timestamp(CAST({name} * 1000000 AS BIGINT))" if sql == "TIMESTAMP" else name
            for name, sql in self.columns
        )
        verb = "INSERT OR IGNORE INTO" if upsert and not self.replace else "INSERT INTO"
        # Columns by name: a file made by an older version may have others, or another order.
        return f"{verb} {self.name} ({', '.join(self.names)}) SELECT {select} FROM {staging}"

    def merge_from(self, staging: str, upsert: bool) -> list[str]:
        """SQL storing the rows of *staging* (one per key): kept or replaced, as the table's rows are.

        A replacement is a delete and an insert: 2-7x faster in DuckDB than
        ``INSERT OR REPLACE``, even with millions of rows stored.
        """
        insert = self.insert_from(staging, upsert)
        if not self.replace:
            return [insert]
        return [f"DELETE FROM {self.name} WHERE {self.key} IN (SELECT {self.key} FROM {staging})", insert]


#: Columns of the event tables filled from the event's error classification
#: (the ``errors`` row of the same event_id), not from the event itself.
ERROR_COLUMNS = (("error_category", "VARCHAR"), ("error_reason", "VARCHAR"))

API_CALLS = Table(
    "api_calls",
    "event_id",
    (
        ("event_id", "VARCHAR"),
        ("session_id", "VARCHAR"),
        ("ts", "TIMESTAMP"),
        ("source", "VARCHAR"),
        ("model", "VARCHAR"),
        ("provider", "VARCHAR"),
        ("status", "VARCHAR"),
        ("input_tokens", "BIGINT"),
        ("output_tokens", "BIGINT"),
        ("cache_read_tokens", "BIGINT"),
        ("cache_write_tokens", "BIGINT"),
        ("reasoning_tokens", "BIGINT"),
        ("latency_ms", "DOUBLE"),
        ("http_status", "INTEGER"),
        ("error_type", "VARCHAR"),
        ("error_message", "VARCHAR"),
        ("cost_usd", "DOUBLE"),
        ("context_window", "BIGINT"),
        ("finish_reason", "VARCHAR"),
        *ERROR_COLUMNS,
    ),
)

TOOL_RESULTS = Table(
    "tool_results",
    "event_id",
    (
        ("event_id", "VARCHAR"),
        ("session_id", "VARCHAR"),
        ("ts", "TIMESTAMP"),
        ("source", "VARCHAR"),
        ("tool_name", "VARCHAR"),
        ("tool_call_id", "VARCHAR"),
        ("status", "VARCHAR"),
        ("duration_ms", "DOUBLE"),
        ("http_status", "INTEGER"),
        ("error_message", "VARCHAR"),
        *ERROR_COLUMNS,
        # Only with content capture on in the producer (redacted, result truncated).
        ("args", "JSON"),
        ("result", "VARCHAR"),
    ),
)

SESSIONS = Table(
    "sessions",
    "session_id",
    (
        ("session_id", "VARCHAR"),
        ("source", "VARCHAR"),
        ("status", "VARCHAR"),
        ("model", "VARCHAR"),
        ("provider", "VARCHAR"),
        ("started_at", "TIMESTAMP"),
        ("last_event_at", "TIMESTAMP"),
        ("ended_at", "TIMESTAMP"),
        ("wall_time_seconds", "DOUBLE"),
        ("end_reason", "VARCHAR"),
        ("completed", "BOOLEAN"),
        ("message_count", "BIGINT"),
        ("events", "BIGINT"),
        ("api_calls", "BIGINT"),
        ("api_errors", "BIGINT"),
        ("tool_calls", "BIGINT"),
        ("tool_errors", "BIGINT"),
        ("skill_invocations", "BIGINT"),
        ("input_tokens", "BIGINT"),
        ("output_tokens", "BIGINT"),
        ("cache_read_tokens", "BIGINT"),
        ("cache_write_tokens", "BIGINT"),
        ("reasoning_tokens", "BIGINT"),
        ("total_tokens", "BIGINT"),
        ("models", "VARCHAR[]"),
        ("tool_counts", "JSON"),
        ("estimated_cost_usd", "DOUBLE"),
        ("cost_status", "VARCHAR"),
        ("pricing_version", "VARCHAR"),
        ("category", "VARCHAR"),
        ("task_type", "VARCHAR"),
        ("messages", "BIGINT"),
        ("error_rate", "DOUBLE"),
        ("unique_tools", "INTEGER"),
        ("is_proficient", "BOOLEAN"),
        ("is_successful", "BOOLEAN"),
        ("score", "DOUBLE"),
    ),
    replace=True,
)

DEAD_LETTERS = Table(
    "dead_letters",
    "dlq_id",
    (
        ("dlq_id", "VARCHAR"),
        ("ts", "TIMESTAMP"),
        ("reason", "VARCHAR"),
        ("payload", "VARCHAR"),
        ("payload_bytes", "BIGINT"),
        ("source_topic", "VARCHAR"),
        ("source_partition", "INTEGER"),
        ("source_offset", "BIGINT"),
        ("event_index", "INTEGER"),
    ),
)

ERRORS = Table(
    "errors",
    "event_id",
    (
        ("event_id", "VARCHAR"),
        ("session_id", "VARCHAR"),
        ("ts", "TIMESTAMP"),
        ("kind", "VARCHAR"),
        ("category", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("should_retry", "BOOLEAN"),
        ("max_retries", "INTEGER"),
        ("backoff_seconds", "DOUBLE"),
        ("http_status", "INTEGER"),
        ("error_type", "VARCHAR"),
        ("model", "VARCHAR"),
        ("provider", "VARCHAR"),
        ("tool_name", "VARCHAR"),
        ("message", "VARCHAR"),
    ),
)

ALERTS = Table(
    "alerts",
    "alert_id",
    (
        ("alert_id", "VARCHAR"),
        ("ts", "TIMESTAMP"),
        ("rule", "VARCHAR"),
        ("severity", "VARCHAR"),
        ("subject", "VARCHAR"),
        ("message", "VARCHAR"),
        ("evidence", "JSON"),
    ),
)

MODEL_PRICES = Table(
    "model_prices",
    "price_key",
    (
        ("price_key", "VARCHAR"),  # provider/model
        ("provider", "VARCHAR"),
        ("model", "VARCHAR"),
        ("priced", "BOOLEAN"),
        ("input_mtok", "DOUBLE"),
        ("output_mtok", "DOUBLE"),
        ("cache_read_mtok", "DOUBLE"),
        ("cache_write_mtok", "DOUBLE"),
        ("pricing_version", "VARCHAR"),
    ),
    replace=True,
)

SKILL_INVOCATIONS = Table(
    "skill_invocations",
    "invocation_id",
    (
        ("invocation_id", "VARCHAR"),  # the skill_invoked event's event_id
        ("session_id", "VARCHAR"),
        ("cron_id", "VARCHAR"),
        ("skill_name", "VARCHAR"),
        ("skill_version", "VARCHAR"),
        ("invoked_at", "TIMESTAMP"),
        ("completed_at", "TIMESTAMP"),
        ("model", "VARCHAR"),
        ("provider", "VARCHAR"),
        ("duration_seconds", "DOUBLE"),
        ("input_tokens", "BIGINT"),
        ("output_tokens", "BIGINT"),
        ("cache_read_tokens", "BIGINT"),
        ("cache_write_tokens", "BIGINT"),
        ("estimated_cost_usd", "DOUBLE"),
        ("cost_shared", "BOOLEAN"),
        ("success", "BOOLEAN"),
        ("end_reason", "VARCHAR"),
        ("quality_score", "DOUBLE"),
    ),
    replace=True,
    indexes=("skill_name", "cron_id", "session_id"),
)

TEMPLATES = Table(
    "templates",
    "name",
    (
        ("name", "VARCHAR"),
        ("description", "VARCHAR"),
        ("category", "VARCHAR"),
        ("task_type", "VARCHAR"),
        ("tags", "VARCHAR[]"),
        ("source_session_id", "VARCHAR"),
        ("created_at", "TIMESTAMP"),
        ("score", "DOUBLE"),
        ("seed_messages", "JSON"),
        ("auto", "BOOLEAN"),  # captured by the worker's automatic capture
    ),
    replace=True,
    indexes=("category",),
)

TEMPLATE_PROVISIONS = Table(
    "template_provisions",
    "provision_id",
    (
        ("provision_id", "VARCHAR"),
        ("template_name", "VARCHAR"),
        ("provisioned_at", "TIMESTAMP"),
        ("category", "VARCHAR"),
        ("task_hint", "VARCHAR"),
    ),
)

TABLES = (
    API_CALLS,
    TOOL_RESULTS,
    SESSIONS,
    DEAD_LETTERS,
    ERRORS,
    ALERTS,
    MODEL_PRICES,
    SKILL_INVOCATIONS,
    TEMPLATES,
    TEMPLATE_PROVISIONS,
)

#: The tables that hold one row per event, by event type. The sink reads their
#: rows straight from the events' JSON (see ``store.py``).
EVENT_TABLES = {"api_call": API_CALLS, "tool_result": TOOL_RESULTS}


def event_json_columns() -> dict[str, str]:
    """Columns read from event JSON for every event table, with their staging types."""
    columns = {"type": "VARCHAR"}
    derived = dict(ERROR_COLUMNS)
    for table in EVENT_TABLES.values():
        for name, sql in table.staging_types().items():
            if name not in derived:
                assert columns.setdefault(name, sql) == sql, f"{name} has two types"
    return columns


VIEWS = {
    "daily_stats": """
        SELECT CAST(started_at AS DATE) AS date,
               count(*) AS sessions,
               sum(api_calls) AS api_calls,
               sum(api_errors) AS api_errors,
               sum(total_tokens) AS total_tokens,
               sum(estimated_cost_usd) AS total_cost_usd,
               sum(wall_time_seconds) AS total_wall_time_seconds,
               sum(tool_calls) AS total_tool_calls,
               sum(tool_errors) AS total_tool_errors,
               avg(total_tokens) AS avg_tokens_per_session,
               avg(estimated_cost_usd) AS avg_cost_per_session
        FROM sessions
        GROUP BY ALL
    """,
    # Sessions worth capturing as warm templates (session analytics rules).
    "template_candidates": """
        SELECT session_id, category, task_type, score, source, model, provider,
               started_at, ended_at, tool_calls, tool_errors, error_rate, unique_tools, messages
        FROM sessions
        WHERE status = 'ended' AND is_successful AND is_proficient
        ORDER BY score DESC, ended_at DESC
    """,
    "skill_stats_daily": """
        SELECT skill_name, model, provider,
               CAST(invoked_at AS DATE) AS day,
               count(*) AS invocation_count,
               count(*) FILTER (WHERE success) AS success_count,
               count(*) FILTER (WHERE NOT success) AS failure_count,
               avg(duration_seconds) AS avg_duration_s,
               sum(estimated_cost_usd) AS total_cost_usd,
               avg(estimated_cost_usd) AS avg_cost_usd,
               sum(input_tokens) AS total_input_tokens,
               sum(output_tokens) AS total_output_tokens,
               avg(quality_score) AS avg_quality_score,
               max(invoked_at) AS last_invoked_at
        FROM skill_invocations
        GROUP BY ALL
    """,
    # A day's cost: as reported, plus the other calls priced from model_prices.
    "model_stats_daily": f"""
        SELECT day, provider, model, calls, errors, input_tokens, output_tokens, tokens,
               coalesce(reported_cost_usd + estimated_usd, reported_cost_usd, estimated_usd) AS cost_usd,
               p50_latency_ms, p95_latency_ms
        FROM (SELECT c.*, {UNREPORTED_COST_USD} AS estimated_usd
              FROM {MODEL_CALLS_DAILY.name} c LEFT JOIN model_prices p USING (provider, model))
        LEFT JOIN ({latency_percentiles("day, provider, model")}) USING (day, provider, model)
    """,
}


def view_ddl() -> list[str]:
    return [f"CREATE OR REPLACE VIEW {name} AS {sql.strip()}" for name, sql in VIEWS.items()]
