"""How each skill has been doing lately, per model: exponential moving averages over days.

:func:`skill_ema` gives one :class:`SkillEma` per (skill_name, model) with
invocations in the last *window_days* UTC calendar days, today included
(``hermes-stream report skills``). Decisions:

* **Days.** ``today`` is the UTC date of *now* (a naive *now* is UTC; None
  is the current time). Day *d* is in the window when
  ``0 <= (today - d).days < window_days``: a day exactly *window_days* old is
  out, and every invocation of today counts, even one later in the day than
  *now*. Days after today (clock skew, a *now* in the past) are left out: a
  negative age would weigh a future day more than today.
* **Weights.** Day *d* weighs ``(1 - alpha) ** age(d)``. Each metric is
  normalised over the days that have a value for it, so a day without runs,
  or without a duration or cost, is skipped, not counted as zero, and does not
  make older days look recent: with days of age 0 and 2 only, the older one
  still weighs ``(1 - alpha) ** 2``.
* **Per-day values** are those of the ``skill_stats_daily`` view, but summed
  over providers: a (skill, model) served by two providers on one day is one
  day. They are computed from ``skill_invocations`` because the view's
  averages cannot be combined exactly across its provider rows (its averages
  skip NULLs and it does not say how many). Success rate is
  ``success_count / invocation_count``, as the issue says: an invocation of
  unknown outcome (``success`` NULL) counts as not successful in the rate,
  but not in ``failure_count``, which counts explicit failures only. Duration
  and cost per call are the day's averages of the known values; a day where
  none is known is skipped for that metric alone, and a metric no day knows
  is None.
* **Provider** is the one of the latest day's latest invocation (ties go to
  the first provider by name).
* **Order**: newest ``last_invoked_at`` first, then skill and model.
  ``last_invoked_at`` is naive UTC, as stored.
* **Errors**: *alpha* outside (0, 1) or not a real number (NaN, bool, text),
  or *window_days* not a whole number of at least 1, raise
  :class:`~hermes_stream.exceptions.ConfigError`; a failed query raises
  :class:`~hermes_stream.exceptions.StoreError`.

One query, filtered on ``invoked_at`` before grouping, so the cost follows the
window's invocations, not the table's.
"""

from __future__ import annotations

import datetime as dt
import numbers
from dataclasses import dataclass
from typing import Final

import duckdb

from hermes_stream.exceptions import ConfigError, StoreError

#: Defaults of :func:`skill_ema` and ``report skills``.
WINDOW_DAYS: Final = 14
ALPHA: Final = 0.3


@dataclass(frozen=True, slots=True)
class SkillEma:
    """One (skill, model) over the window: totals, and each metric's EMA over the days."""

    skill_name: str
    model: str | None
    provider: str | None
    sample_count: int
    success_count: int
    failure_count: int
    ema_success_rate: float
    ema_duration_s: float | None
    ema_cost_per_call: float | None
    days_with_data: int
    last_invoked_at: dt.datetime


# Each metric's weights are taken relative to its newest day with a value
# (which then weighs 1): the same ratios, but old days cannot all underflow to 0.
_SQL = """
    WITH days AS (
        SELECT skill_name, model, $today - CAST(invoked_at AS DATE) AS age,
               first(provider ORDER BY invoked_at DESC, provider) AS provider,
               count(*) AS invocations,
               count(*) FILTER (WHERE success) AS successes,
               count(*) FILTER (WHERE NOT success) AS failures,
               count(*) FILTER (WHERE success) / count(*) AS success_rate,
               avg(duration_seconds) AS duration_s,
               avg(estimated_cost_usd) AS cost_per_call,
               max(invoked_at) AS last_invoked_at
        FROM skill_invocations
        WHERE invoked_at >= $start AND invoked_at < $end
        GROUP BY ALL
    ), weighted AS (
        SELECT *,
               pow($keep, age - min(age) OVER pair) AS w,
               pow($keep, age - min(age) FILTER (WHERE duration_s IS NOT NULL) OVER pair) AS w_duration,
               pow($keep, age - min(age) FILTER (WHERE cost_per_call IS NOT NULL) OVER pair) AS w_cost
        FROM days
        WINDOW pair AS (PARTITION BY skill_name, model)
    )
    SELECT skill_name, model, arg_max_null(provider, last_invoked_at) AS provider,
           sum(invocations) AS sample_count, sum(successes) AS success_count, sum(failures) AS failure_count,
           sum(w * success_rate) / sum(w) AS ema_success_rate,
           sum(w_duration * duration_s) / sum(w_duration) FILTER (WHERE duration_s IS NOT NULL)
               AS ema_duration_s,
           sum(w_cost * cost_per_call) / sum(w_cost) FILTER (WHERE cost_per_call IS NOT NULL)
               AS ema_cost_per_call,
           count(*) AS days_with_data, max(last_invoked_at) AS last_invoked_at
    FROM weighted
    GROUP BY skill_name, model
    ORDER BY last_invoked_at DESC, skill_name, model NULLS LAST
"""


def skill_ema(
    con: duckdb.DuckDBPyConnection,
    window_days: int = WINDOW_DAYS,
    alpha: float = ALPHA,
    now: dt.datetime | None = None,
) -> list[SkillEma]:
    """Per (skill, model), the EMAs over the days with data in the last *window_days* UTC days.

    *con* may be read-only. See the module docstring for how days are weighed.
    """
    window_days, alpha = check_window_days(window_days), check_alpha(alpha)
    today = _utc_today(now)
    span = min(window_days - 1, (today - dt.date.min).days)
    start = dt.datetime.combine(today - dt.timedelta(days=span), dt.time())
    end = dt.datetime.combine(today, dt.time()) + dt.timedelta(days=1)
    parameters = {"today": today, "start": start, "end": end, "keep": 1.0 - alpha}
    try:
        rows = con.execute(_SQL, parameters).fetchall()
    except duckdb.Error as exc:
        raise StoreError(f"the skill EMA query failed: {exc}") from exc
    return [SkillEma(*row) for row in rows]


def check_window_days(window_days: object) -> int:
    """*window_days* if it is a whole number of at least 1, else :class:`ConfigError`."""
    if isinstance(window_days, bool) or not isinstance(window_days, int) or window_days < 1:
        raise ConfigError(f"window_days must be a whole number of days of at least 1, not {window_days!r}")
    return window_days


def check_alpha(alpha: object) -> float:
    """*alpha* as a float if it is a number strictly between 0 and 1, else :class:`ConfigError`."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < float(alpha) < 1:
        raise ConfigError(f"alpha must be a number strictly between 0 and 1, not {alpha!r}")
    return float(alpha)


def _utc_today(now: dt.datetime | None) -> dt.date:
    if now is None:
        return dt.datetime.now(dt.UTC).date()
    if not isinstance(now, dt.datetime):
        raise ConfigError(f"now must be a datetime (naive means UTC) or None, not {now!r}")
    return (now.astimezone(dt.UTC) if now.tzinfo else now).date()
