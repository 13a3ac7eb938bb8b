"""Alert rules: failures that will not fix themselves, said once, with evidence.

Rules (each can be switched off with ``HERMES_STREAM_ALERT_RULES``):

``permanent_failure`` (critical)
    an API call failed for a reason no retry fixes (``auth``,
    ``billing_quota``, ``model_not_found``): at once, then not again for the
    same (provider, model, reason) within ``dedupe_seconds``.
``error_rate`` (warning)
    the share of failed API calls of one (provider, model) in a tumbling
    window of ``window_seconds`` (5 minutes) reached ``error_rate``, over at
    least ``min_calls`` calls: once per window.
``context_window`` (warning)
    in a cron session (``source: cron``): a model whose ``context_window`` is
    below ``context_min_tokens`` (the cron scheduler's minimum), once per
    (provider, model) within ``dedupe_seconds``; and a call whose
    ``input_tokens`` exceed ``context_fill`` of its ``context_window``, once
    per session within ``dedupe_seconds``.
``session_budget`` (warning)
    a session's cost passed ``session_budget_usd``: once per session.
``skill_regression`` (warning)
    a skill's live success rate on a model fell (see ``skill_trend.py``).

Windows and deduplication go by event time, so a replay after a crash raises
the same alerts with the same ``alert_id`` (the sink keeps one row each).
State lives in the worker's memory: a restarted worker may repeat an alert
once, and with several workers each one judges the error rate of the
sessions on its own partitions.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from hermes_stream import codec
from hermes_stream.events import Event

Rule = Literal["permanent_failure", "error_rate", "context_window", "session_budget", "skill_regression"]
RULES: Final[tuple[Rule, ...]] = (
    "permanent_failure",
    "error_rate",
    "context_window",
    "session_budget",
    "skill_regression",
)
Severity = Literal["critical", "warning"]

#: Reasons of a permanent API failure that page at once.
PAGING_REASONS: Final = frozenset({"auth", "billing_quota", "model_not_found"})


@dataclass(frozen=True)
class AlertConfig:
    """Thresholds of the rules; :meth:`Settings.alert_config` reads them from the environment."""

    rules: frozenset[str] = frozenset(RULES)
    dedupe_seconds: float = 900.0
    window_seconds: float = 300.0
    error_rate: float = 0.5
    min_calls: int = 20
    context_min_tokens: int = 64_000
    context_fill: float = 0.9
    session_budget_usd: float = 10.0


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert, as published on ``hermes.alerts`` and stored in the ``alerts`` table."""

    alert_id: str
    ts: float
    rule: Rule
    severity: Severity
    subject: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "ts": self.ts,
            "rule": self.rule,
            "severity": self.severity,
            "subject": self.subject,
            "message": self.message,
            "evidence": self.evidence,
        }

    def row(self) -> dict[str, Any]:
        return table_row(self.to_dict())


def table_row(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The ``alerts`` row of an alert as published: evidence as JSON text."""
    return {**alert, "evidence": codec.dumps(alert.get("evidence") or {}).decode()}


def alert_id(rule: Rule, *anchor: object) -> str:
    """A stable id: the same rule on the same evidence gives the same id."""
    digest = hashlib.sha1("|".join(map(str, (rule, *anchor))).encode()).hexdigest()[:20]
    return f"{rule}-{digest}"


@dataclass
class _Window:
    calls: int = 0
    errors: int = 0
    fired: bool = False


class AlertRules:
    """The streaming rules' state: feed every event to :meth:`observe`."""

    def __init__(self, config: AlertConfig) -> None:
        self.config = config
        self._last: dict[tuple[str, ...], float] = {}  # dedupe key -> ts of its last alert
        self._windows: dict[tuple[str, str, float], _Window] = {}
        self._pruned_at = 0.0  # event time of the last _forget that pruned

    def observe(self, event: Event, error: Mapping[str, Any] | None = None) -> list[Alert]:
        """Alerts raised by an ``api_call``; *error* is its error record when it failed."""
        alerts: list[Alert] = []
        rules = self.config.rules
        if error is not None and "permanent_failure" in rules:
            alerts += self._permanent(event, error)
        if "error_rate" in rules:
            alerts += self._error_rate(event)
        if "context_window" in rules and event["source"] == "cron":
            alerts += self._context(event)
        self._forget(event["ts"])
        return alerts

    def _once(self, key: tuple[str, ...], ts: float) -> bool:
        """True (and remember *ts*) unless *key* alerted within the dedupe window."""
        last = self._last.get(key)
        if last is not None and abs(ts - last) < self.config.dedupe_seconds:
            return False
        self._last[key] = ts
        return True

    def _permanent(self, event: Event, error: Mapping[str, Any]) -> list[Alert]:
        reason = error["reason"]
        if error["category"] != "permanent" or reason not in PAGING_REASONS:
            return []
        provider, model, ts = event["provider"], event["model"], event["ts"]
        if not self._once(("permanent_failure", provider, model, reason), ts):
            return []
        return [
            Alert(
                alert_id("permanent_failure", event["event_id"]),
                ts,
                "permanent_failure",
                "critical",
                f"{provider}/{model}",
                f"{provider}/{model}: {reason} ({error['message'] or 'no message'})",
                {
                    "reason": reason,
                    "event_id": event["event_id"],
                    "session_id": event["session_id"],
                    "http_status": error["http_status"],
                    "error_type": error["error_type"],
                    "message": error["message"],
                },
            )
        ]

    def _error_rate(self, event: Event) -> list[Alert]:
        config = self.config
        provider, model = event["provider"], event["model"]
        start = math.floor(event["ts"] / config.window_seconds) * config.window_seconds
        window = self._windows.setdefault((provider, model, start), _Window())
        window.calls += 1
        window.errors += event["status"] == "error"
        rate = window.errors / window.calls
        if window.fired or window.calls < config.min_calls or rate < config.error_rate:
            return []
        window.fired = True
        return [
            Alert(
                alert_id("error_rate", provider, model, start),
                event["ts"],
                "error_rate",
                "warning",
                f"{provider}/{model}",
                f"{provider}/{model}: {rate:.0%} of {window.calls} API calls failed "
                f"in the {config.window_seconds / 60:g}-minute window from {start:.0f}",
                {
                    "window_start": start,
                    "window_seconds": config.window_seconds,
                    "calls": window.calls,
                    "errors": window.errors,
                    "error_rate": round(rate, 4),
                    "threshold": config.error_rate,
                },
            )
        ]

    def _context(self, event: Event) -> list[Alert]:
        context = event.get("context_window")
        if not context:
            return []
        config = self.config
        provider, model, ts = event["provider"], event["model"], event["ts"]
        alerts = []
        if context < config.context_min_tokens and self._once(("context_small", provider, model), ts):
            alerts.append(
                Alert(
                    alert_id("context_window", "small", event["event_id"]),
                    ts,
                    "context_window",
                    "warning",
                    f"{provider}/{model}",
                    f"{provider}/{model} runs cron sessions with a {context:,}-token context window; "
                    f"the cron scheduler needs at least {config.context_min_tokens:,}",
                    {"context_window": context, "minimum": config.context_min_tokens, **_where(event)},
                )
            )
        used = event["input_tokens"]
        session = event["session_id"]
        if used > config.context_fill * context and self._once(("context_full", session), ts):
            alerts.append(
                Alert(
                    alert_id("context_window", "full", event["event_id"]),
                    ts,
                    "context_window",
                    "warning",
                    session,
                    f"cron session {session} sent {used:,} input tokens to {provider}/{model}, "
                    f"{used / context:.0%} of its {context:,}-token context window",
                    {
                        "input_tokens": used,
                        "context_window": context,
                        "limit": config.context_fill,
                        **_where(event),
                    },
                )
            )
        return alerts

    def _forget(self, ts: float) -> None:
        """Drop windows and dedupe entries too old to matter again, once per window of event time.

        Memory stays bounded by what a few windows hold, and the cost is one
        pass over them every ``window_seconds`` of event time, not per call.
        """
        config = self.config
        if ts < self._pruned_at + config.window_seconds:
            return
        self._pruned_at = ts
        self._windows = {k: w for k, w in self._windows.items() if k[2] >= ts - 2 * config.window_seconds}
        self._last = {k: t for k, t in self._last.items() if t >= ts - config.dedupe_seconds}


def _where(event: Event) -> dict[str, Any]:
    return {"event_id": event["event_id"], "session_id": event["session_id"], "model": event["model"]}


def budget_alert(session_id: str, cost_usd: float, ts: float, config: AlertConfig) -> Alert | None:
    """The ``session_budget`` alert for a session whose cost reached the budget."""
    budget = config.session_budget_usd
    if "session_budget" not in config.rules or budget <= 0 or cost_usd < budget:
        return None
    return Alert(
        alert_id("session_budget", session_id),
        ts,
        "session_budget",
        "warning",
        session_id,
        f"session {session_id} has cost ${cost_usd:,.2f}, over its ${budget:,.2f} budget",
        {"session_id": session_id, "cost_usd": round(cost_usd, 6), "budget_usd": budget},
    )
