"""Canned analyst reports over the DuckDB tables (``hermes-stream report …``)."""

from __future__ import annotations

from hermes_stream.exceptions import ConfigError

REPORTS: dict[str, str] = {
    "daily": """
        SELECT date, sessions, api_calls, api_errors, total_tokens, total_cost_usd,
               total_tool_calls, total_tool_errors, avg_tokens_per_session
        FROM daily_stats ORDER BY date
    """,
    "models": """
        SELECT provider, model, count(*) AS calls,
               count(*) FILTER (WHERE status = 'error') AS errors,
               sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
               sum(cache_read_tokens) AS cache_read_tokens,
               round(quantile_cont(latency_ms, 0.5)) AS p50_latency_ms
        FROM api_calls GROUP BY ALL ORDER BY calls DESC
    """,
    "summary": """
        SELECT (SELECT count(*) FROM sessions) AS sessions,
               (SELECT count(*) FROM sessions WHERE status = 'ended') AS ended_sessions,
               (SELECT count(*) FROM api_calls) + (SELECT count(*) FROM tool_results) AS events,
               (SELECT sum(total_tokens) FROM sessions) AS total_tokens,
               (SELECT sum(cost_usd) FROM sessions) AS reported_cost_usd,
               (SELECT count(*) FROM api_calls WHERE status = 'error') AS api_errors,
               (SELECT count(*) FROM tool_results WHERE status = 'error') AS tool_errors,
               (SELECT count(*) FROM dead_letters) AS dead_letters
    """,
}

#: Days the ``errors`` report looks back by default.
ERRORS_DAYS = 7

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


def errors_report(days: int = ERRORS_DAYS) -> str:
    """The ``errors`` report over the last *days* days (by ``ts``, UTC); *share* is of those errors."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ConfigError(f"the errors report needs a whole number of days of at least 1, not {days!r}")
    return _ERRORS.format(days=days)
