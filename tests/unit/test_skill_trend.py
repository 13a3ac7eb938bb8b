"""SkillTrend: event-time decaying averages and the skill_regression rule."""

from __future__ import annotations

from itertools import count
from typing import Any

import pytest

from hermes_stream.skill_trend import DAY, SkillTrend, TrendConfig

T0 = 1_767_225_600.0
_ids = count()


def row(ts: float, success: bool | None, **fields: Any) -> dict[str, Any]:
    base = {"invocation_id": f"i{next(_ids)}", "invoked_at": ts - 60, "completed_at": ts, "success": success}
    return base | {"provider": "openai", "duration_seconds": None, "estimated_cost_usd": None} | fields


def feed(trend: SkillTrend, rows: list[dict[str, Any]], config: TrendConfig) -> list[Any]:
    return [alert for r in rows if (alert := trend.add(r, config)) is not None]


def test_an_older_sample_counts_for_half_after_one_half_life() -> None:
    trend = SkillTrend("digest", "gpt-4o")
    config = TrendConfig(half_life_days=5, min_samples=100)
    feed(
        trend, [row(T0, True, duration_seconds=10.0), row(T0 + 5 * DAY, False, duration_seconds=40.0)], config
    )
    rates = trend.rates()
    assert rates["live_success_rate"] == pytest.approx(0.5 / 1.5)  # weights 0.5 and 1
    assert rates["live_duration_s"] == pytest.approx((10 * 0.5 + 40) / 1.5)


def test_a_late_sample_is_discounted_by_its_age() -> None:
    trend = SkillTrend("digest", "gpt-4o")
    config = TrendConfig(half_life_days=5, min_samples=100)
    feed(trend, [row(T0 + 5 * DAY, False), row(T0, True)], config)  # the older one arrives second
    assert trend.rates()["live_success_rate"] == pytest.approx(0.5 / 1.5)


def test_unknown_outcomes_move_duration_but_not_the_success_rate() -> None:
    trend = SkillTrend("digest", "gpt-4o")
    feed(trend, [row(T0, True), row(T0 + 1, None, duration_seconds=3.0)], TrendConfig(min_samples=100))
    assert trend.rates()["live_success_rate"] == 1.0 and trend.outcomes == 1 and trend.samples == 2


def test_a_replayed_invocation_is_not_counted_again() -> None:
    trend = SkillTrend("digest", "gpt-4o")
    once = row(T0, False)
    feed(trend, [row(T0, True), once, once], TrendConfig(min_samples=100))
    assert trend.outcomes == 2


def test_falling_below_the_floor_alerts_once_enough_samples_are_in() -> None:
    trend = SkillTrend("digest", "qwen")
    config = TrendConfig(floor=0.5, drop_points=100, min_samples=5, dedupe_seconds=3600)
    alerts = feed(trend, [row(T0 + i, False) for i in range(8)], config)
    (alert,) = alerts  # at the fifth failure, then deduplicated
    assert (alert.rule, alert.subject, alert.evidence["samples"]) == ("skill_regression", "digest on qwen", 5)
    assert feed(trend, [row(T0 + 3600 + 10, False)], config) != []  # the dedupe window has passed


def test_a_drop_below_the_7_day_level_alerts_even_above_the_floor() -> None:
    trend = SkillTrend("digest", "gpt-4o")
    config = TrendConfig(half_life_days=0.5, floor=0.1, drop_points=20, min_samples=10)
    history = [row(T0 + i * 3600, True) for i in range(100)]  # four days of successes
    assert feed(trend, history, config) == []
    now = T0 + 100 * 3600
    alerts = feed(trend, [row(now + i * 3600, i % 2 == 0) for i in range(24)], config)  # half fail, one day
    assert alerts and "below its 7-day level" in alerts[0].message


def test_a_steady_skill_stays_quiet_and_state_round_trips() -> None:
    trend = SkillTrend("digest", "gpt-4o")
    config = TrendConfig(min_samples=3)
    assert feed(trend, [row(T0 + i, i % 10 != 0) for i in range(50)], config) == []
    assert SkillTrend.from_dict(trend.to_dict()) == trend


def test_the_rule_can_be_switched_off() -> None:
    trend = SkillTrend("digest", "qwen")
    assert (
        feed(trend, [row(T0 + i, False) for i in range(20)], TrendConfig(min_samples=1, enabled=False)) == []
    )
