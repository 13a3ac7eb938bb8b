"""Live success rate, cost and duration per skill × model, and the regression rule.

Each finalised invocation updates its (skill, model) :class:`SkillTrend`:
exponential averages that decay with event time, with a half-life of
``HERMES_STREAM_SKILL_HALF_LIFE_DAYS`` (5 days): an invocation a half-life
older than the newest counts half as much. A second success average with a
7-day half-life is the skill's own *7-day level*. Unlike the daily
``ema_success_rate`` of :func:`hermes_stream.skill_ema` (where a run of unknown
outcome counts as not successful), the live rates leave unknown outcomes out.

``skill_regression`` (warning) fires when, with at least ``min_samples``
invocations with a known outcome, the live success rate falls below
``floor``, or more than ``drop_points`` percentage points below the 7-day
level; then not again for the same (skill, model) within the alert dedupe
window. Invocations are counted once (recent ids are remembered), so a
replayed record does not move the averages.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from hermes_stream.alerts import Alert, alert_id

DAY = 86_400.0
LEVEL_HALF_LIFE_DAYS = 7.0
RECENT = 64


@dataclass(frozen=True)
class TrendConfig:
    half_life_days: float = 5.0
    floor: float = 0.5
    drop_points: float = 20.0
    min_samples: int = 10
    dedupe_seconds: float = 900.0
    enabled: bool = True


@dataclass
class SkillTrend:
    """The decaying averages of one (skill, model)."""

    skill_name: str
    model: str | None
    provider: str | None = None
    samples: int = 0
    outcomes: int = 0
    newest: float = 0.0
    success: dict[str, float] = field(default_factory=lambda: {"total": 0.0, "weight": 0.0})
    level: dict[str, float] = field(default_factory=lambda: {"total": 0.0, "weight": 0.0})
    duration: dict[str, float] = field(default_factory=lambda: {"total": 0.0, "weight": 0.0})
    cost: dict[str, float] = field(default_factory=lambda: {"total": 0.0, "weight": 0.0})
    alerted_at: float | None = None
    recent_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        # Shallow: dataclasses.asdict deep-copies recent_ids (~70 µs a call), and
        # the skills agent encodes the result at once for every invocation.
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SkillTrend:
        return cls(**data)

    def rates(self) -> dict[str, float | None]:
        return {
            "live_success_rate": _value(self.success),
            "level_success_rate": _value(self.level),
            "live_duration_s": _value(self.duration),
            "live_cost_per_call": _value(self.cost),
        }

    def add(self, row: dict[str, Any], config: TrendConfig) -> Alert | None:
        """Fold a finalised invocation row in; return the regression alert it raises, if any."""
        if row["invocation_id"] in self.recent_ids:
            return None
        self.recent_ids = [*self.recent_ids[-(RECENT - 1) :], row["invocation_id"]]
        ts = row["completed_at"] or row["invoked_at"]
        half_life = config.half_life_days * DAY
        self.provider = row.get("provider") or self.provider
        self.samples += 1
        success = row.get("success")
        if success is not None:
            self.outcomes += 1
            _update(self.success, float(success), ts, self.newest, half_life)
            _update(self.level, float(success), ts, self.newest, LEVEL_HALF_LIFE_DAYS * DAY)
        for average, value in (
            (self.duration, row.get("duration_seconds")),
            (self.cost, row.get("estimated_cost_usd")),
        ):
            if value is not None:
                _update(average, float(value), ts, self.newest, half_life)
        self.newest = max(self.newest, ts)
        return self._regression(ts, config)

    def _regression(self, ts: float, config: TrendConfig) -> Alert | None:
        rate, level = _value(self.success), _value(self.level)
        if not config.enabled or rate is None or level is None or self.outcomes < config.min_samples:
            return None
        drop = (level - rate) * 100
        if rate >= config.floor and drop <= config.drop_points:
            return None
        if self.alerted_at is not None and abs(ts - self.alerted_at) < config.dedupe_seconds:
            return None
        self.alerted_at = ts
        subject = f"{self.skill_name} on {self.model or 'unknown model'}"
        why = (
            f"below the floor of {config.floor:.0%}"
            if rate < config.floor
            else f"{drop:.0f} points below its 7-day level of {level:.0%}"
        )
        return Alert(
            alert_id("skill_regression", self.skill_name, self.model, ts),
            ts,
            "skill_regression",
            "warning",
            subject,
            f"skill {subject}: success rate {rate:.0%}, {why}",
            {"skill_name": self.skill_name, "model": self.model, "provider": self.provider,
             "success_rate": round(rate, 4), "level_7d": round(level, 4), "samples": self.outcomes,
             "floor": config.floor, "drop_points": config.drop_points},
        )  # fmt: skip


def _value(average: dict[str, float]) -> float | None:
    return average["total"] / average["weight"] if average["weight"] else None


def _update(average: dict[str, float], value: float, ts: float, newest: float, half_life: float) -> None:
    """Add *value* at event time *ts*: older weight decays to *ts*, or a late value is discounted."""
    if ts >= newest:
        decay = 0.5 ** ((ts - newest) / half_life) if newest else 1.0
        average["total"] = average["total"] * decay + value
        average["weight"] = average["weight"] * decay + 1.0
    else:
        late = 0.5 ** ((newest - ts) / half_life)
        average["total"] += value * late
        average["weight"] += late
