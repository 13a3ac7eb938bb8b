"""Canned analyst reports over the DuckDB tables (``hermes-stream report …``).

Each report is one SQL query (:func:`report_sql`), built from a
:class:`ReportOptions`, except ``skills``, which the CLI computes with
:func:`hermes_stream.skill_averages.skill_ema`. :data:`OPTION_REPORTS` says which
report takes which option, so the CLI can refuse the others.
:func:`report_notes` gives the lines a terminal table shows under a report
(JSON and CSV are rows only).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

from hermes_stream.exceptions import ConfigError
from hermes_stream.model_aggregates import MODEL_CALLS_DAILY, UNREPORTED_COST_USD, latency_percentiles

ReportName = Literal["daily", "sessions", "models", "summary", "errors", "skills", "html"]
REPORT_NAMES: Final[tuple[ReportName, ...]] = get_args(ReportName)

#: What ``report sessions --by`` ranks on, highest first.
SessionOrder = Literal["cost", "tokens", "errors", "duration"]
SESSION_ORDERS: Final[tuple[SessionOrder, ...]] = get_args(SessionOrder)

#: Days the ``errors`` report looks back by default.
ERRORS_DAYS = 7
#: Sessions the ``sessions`` report lists by default.
SESSIONS_TOP = 20

#: The reports each option applies to; the CLI refuses an option for the others.
OPTION_REPORTS: Final[dict[str, tuple[ReportName, ...]]] = {
    "days": ("errors",),
    "date": ("daily",),
    "top": ("sessions",),
    "by": ("sessions",),
    "window_days": ("skills",),
    "alpha": ("skills",),
    "output": ("html",),
}


@dataclass(frozen=True)
class ReportOptions:
    """The reports' options; each report reads only its own (see :data:`OPTION_REPORTS`)."""

    days: int = ERRORS_DAYS
    #: Only this UTC day (``daily``); None for every day.
    date: dt.date | None = None
    top: int = SESSIONS_TOP
    by: SessionOrder = "cost"


_DAILY = """
    SELECT date, sessions, api_calls, api_errors, total_tokens, round(total_cost_usd, 6) AS total_cost_usd,
           total_tool_calls, total_tool_errors,
           CAST(round(avg_tokens_per_session) AS BIGINT) AS avg_tokens_per_session
    FROM daily_stats {where}ORDER BY date
"""

_SESSION_ORDER_KEYS: Final[dict[SessionOrder, str]] = {
    "cost": "s.estimated_cost_usd",
    "tokens": "s.total_tokens",
    "errors": "errors",
    "duration": "s.wall_time_seconds",
}

_SESSIONS = """
    SELECT session_id, source, category, task_type,
           coalesce(nullif(array_to_string(models, ', '), ''), model) AS models,
           started_at, CAST(round(wall_time_seconds) AS BIGINT) AS wall_time_seconds, api_calls, tool_calls,
           coalesce(api_errors + tool_errors, api_errors, tool_errors) AS errors,
           total_tokens AS tokens, round(estimated_cost_usd, 6) AS estimated_cost_usd, cost_status, score
    FROM sessions s
    ORDER BY {key} DESC NULLS LAST, session_id
    LIMIT {top}
"""


def _usd(column: str) -> str:
    """SQL for a $/Mtok price as text: two decimals, more only when the price has them."""
    two_places, as_needed = f"format('{{:.2f}}', {column})", f"format('{{:g}}', {column})"
    return f"CASE WHEN round({column}, 2) = {column} THEN {two_places} ELSE {as_needed} END"


#: From the per-day aggregates (``model_calls_daily``, ``model_latency_daily``),
#: not the calls. The cost is ``model_stats_daily``'s (as reported, else from
#: ``model_prices``) but priced per model from token sums over every day, and the
#: p50 is of every day's calls: daily p50s do not add up to one. Models without
#: a price are listed: priced false, price 'unknown', cost only as reported.
_MODELS = f"""
    WITH calls AS (
        SELECT provider, model, CAST(sum(calls) AS BIGINT) AS calls, CAST(sum(errors) AS BIGINT) AS errors,
               sum(tokens) AS tokens, sum(reported_cost_usd) AS reported_usd,
               sum(unreported_input_tokens) AS unreported_input_tokens,
               sum(unreported_cache_read_tokens) AS unreported_cache_read_tokens,
               sum(unreported_cache_write_tokens) AS unreported_cache_write_tokens,
               sum(unreported_output_tokens) AS unreported_output_tokens
        FROM {MODEL_CALLS_DAILY.name} GROUP BY ALL
    ), costed AS (
        SELECT c.*, p.input_mtok, p.output_mtok, l.p50_latency_ms,
               coalesce(p.priced AND p.input_mtok IS NOT NULL AND p.output_mtok IS NOT NULL, false) AS known,
               {UNREPORTED_COST_USD} AS estimated_usd
        FROM calls c LEFT JOIN model_prices p USING (provider, model)
        LEFT JOIN ({latency_percentiles("provider, model")}) l USING (provider, model)
    )
    SELECT provider, model, calls, errors, tokens,
           round(coalesce(reported_usd + estimated_usd, reported_usd, estimated_usd), 6) AS cost_usd,
           CAST(round(p50_latency_ms) AS BIGINT) AS p50_latency_ms, known AS priced,
           CASE WHEN known THEN '$' || {_usd("input_mtok")} || ' in / $' || {_usd("output_mtok")}
                                || ' out per Mtok'
                ELSE 'unknown' END AS price
    FROM costed
    ORDER BY calls DESC, provider, model
"""

_SUMMARY = """
    SELECT (SELECT count(*) FROM sessions) AS sessions,
           (SELECT count(*) FROM sessions WHERE status = 'ended') AS ended_sessions,
           (SELECT count(*) FROM api_calls) + (SELECT count(*) FROM tool_results) AS events,
           (SELECT sum(total_tokens) FROM sessions) AS total_tokens,
           (SELECT sum(estimated_cost_usd) FROM sessions) AS estimated_cost_usd,
           (SELECT count(*) FROM api_calls WHERE status = 'error') AS api_errors,
           (SELECT count(*) FROM tool_results WHERE status = 'error') AS tool_errors,
           (SELECT count(*) FROM dead_letters) AS dead_letters
"""

#: Failed calls by category, reason, provider and model (tool name for tool calls);
#: ``{days}`` is filled by :func:`errors_report`.
_ERRORS = """
    SELECT category, reason, kind, provider, model, tool_name,
           count(*) AS errors,
           round(count(*) / sum(count(*)) OVER (), 4) AS share,
           count(DISTINCT session_id) AS sessions,
           max(ts) AS last_seen
    FROM errors
    WHERE ts >= (now() AT TIME ZONE 'UTC') - INTERVAL ({days}) DAY
    GROUP BY ALL ORDER BY errors DESC, last_seen DESC, category, reason, provider, model, tool_name
"""


def daily_report(date: dt.date | None = None) -> str:
    """The ``daily`` report: one row per UTC day sessions started on, or only *date*."""
    if date is None:
        return _DAILY.format(where="")
    if isinstance(date, dt.datetime) or not isinstance(date, dt.date):
        raise ConfigError(f"the daily report needs a day, not {date!r}")
    return _DAILY.format(where=f"WHERE date = DATE '{date.isoformat()}' ")


def sessions_report(top: int = SESSIONS_TOP, by: SessionOrder = "cost") -> str:
    """The ``sessions`` report: the *top* sessions by *by*, highest first, unknown values last."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ConfigError(f"the sessions report needs a whole number of sessions of at least 1, not {top!r}")
    if by not in _SESSION_ORDER_KEYS:
        raise ConfigError(f"the sessions report ranks by one of {', '.join(SESSION_ORDERS)}, not {by!r}")
    return _SESSIONS.format(key=_SESSION_ORDER_KEYS[by], top=top)


def errors_report(days: int = ERRORS_DAYS) -> str:
    """The ``errors`` report over the last *days* days (by ``ts``, UTC); *share* is of those errors."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ConfigError(f"the errors report needs a whole number of days of at least 1, not {days!r}")
    return _ERRORS.format(days=days)


_BUILDERS: Final[dict[ReportName, Callable[[ReportOptions], str]]] = {
    "daily": lambda options: daily_report(options.date),
    "sessions": lambda options: sessions_report(options.top, options.by),
    "models": lambda options: _MODELS,
    "summary": lambda options: _SUMMARY,
    "errors": lambda options: errors_report(options.days),
    "skills": lambda options: _not_sql("skills"),
    "html": lambda options: _not_sql("html"),
}

#: The reports that take no option, by name (``demo`` shows two of them).
REPORTS: Final[dict[str, str]] = {"daily": daily_report(), "models": _MODELS, "summary": _SUMMARY}


def _not_sql(name: ReportName) -> str:
    call = (
        "hermes_stream.skill_ema(con, …)"
        if name == "skills"
        else "hermes_stream.html_report.write_html_report"
    )
    raise ConfigError(f"the {name} report is not one SQL query: call {call}")


def report_sql(name: ReportName, options: ReportOptions | None = None) -> str:
    """The SQL of report *name* with *options* (the defaults if None)."""
    builder = _BUILDERS.get(name)
    if builder is None:
        raise ConfigError(f"no report {name!r}; the reports are {', '.join(REPORT_NAMES)}")
    return builder(options or ReportOptions())


def parse_day(text: str) -> dt.date:
    """A ``--date`` value: a UTC day as YYYY-MM-DD."""
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError as exc:
        raise ConfigError(f"{text!r} is not a day as YYYY-MM-DD, like 2026-01-31") from exc


def report_notes(name: ReportName, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Lines to show under report *name*'s table: for ``models``, the models without a price."""
    if name != "models" or not rows:
        return []
    at = {column: i for i, column in enumerate(columns)}
    unpriced = [f"{row[at['provider']]}/{row[at['model']]}" for row in rows if not row[at["priced"]]]
    if not unpriced:
        return []
    return [
        f"no price for {len(unpriced)} model{'s' * (len(unpriced) > 1)}: {', '.join(unpriced)} "
        "(cost_usd counts only the calls whose provider reported a cost)"
    ]
