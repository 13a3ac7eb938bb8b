"""The alert rules, fed events as the errors agent feeds them."""

from __future__ import annotations

from itertools import count
from typing import Any

import pytest

from hermes_stream.alerts import AlertConfig, AlertRules, budget_alert
from hermes_stream.error_records import error_record, is_error
from hermes_stream.events import make_event

T0 = 1_767_225_600.0  # a window boundary (divisible by 300)
_ids = count()


def call(ts: float = T0, *, model: str = "gpt-4o", source: str = "cli", **fields: Any) -> dict[str, Any]:
    base = {"model": model, "provider": "openai", "input_tokens": 100, "output_tokens": 10, "status": "ok"}
    return make_event("api_call", f"s{next(_ids)}", source=source, ts=ts, **(base | fields))


def failed(ts: float = T0, **fields: Any) -> dict[str, Any]:
    return call(ts, status="error", **fields)


def observe(rules: AlertRules, *events: dict[str, Any]) -> list[Any]:
    alerts = []
    for event in events:
        alerts += rules.observe(event, error_record(event) if is_error(event) else None)
    return alerts


def only(rule: str, **changes: Any) -> AlertRules:
    return AlertRules(AlertConfig(rules=frozenset({rule}), **changes))


# permanent failures


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"http_status": 401, "error_message": "Incorrect API key provided"}, "auth"),
        ({"http_status": 429, "error_type": "insufficient_quota"}, "billing_quota"),
        ({"http_status": 404, "error_type": "model_not_found"}, "model_not_found"),
    ],
)
def test_a_permanent_failure_that_needs_a_person_alerts_at_once(fields: dict[str, Any], reason: str) -> None:
    (alert,) = observe(only("permanent_failure"), failed(**fields))
    assert (alert.rule, alert.severity, alert.subject) == ("permanent_failure", "critical", "openai/gpt-4o")
    assert alert.evidence["reason"] == reason


@pytest.mark.parametrize(
    "fields",
    [
        {"http_status": 429, "error_message": "Rate limit reached"},  # retryable
        {"http_status": 400, "error_message": "prompt is too long"},  # permanent, but the agent's to fix
    ],
)
def test_other_failures_do_not_page(fields: dict[str, Any]) -> None:
    assert observe(only("permanent_failure"), failed(**fields)) == []


def test_a_permanent_failure_is_said_once_per_provider_model_and_reason_within_the_window() -> None:
    rules = only("permanent_failure", dedupe_seconds=600)
    auth = {"http_status": 401, "error_message": "invalid x-api-key"}
    alerts = observe(
        rules,
        failed(T0, **auth),
        *(failed(T0 + i / 2, **auth) for i in range(1, 1000)),  # the same failure a thousand times
        failed(T0 + 5, model="gpt-4o-mini", **auth),  # another model: its own alert
        failed(T0 + 6, http_status=429, error_type="insufficient_quota"),  # another reason: its own
        failed(T0 + 600, **auth),  # the window has passed: said again
    )
    assert [(a.subject, a.evidence["reason"], a.ts) for a in alerts] == [
        ("openai/gpt-4o", "auth", T0),
        ("openai/gpt-4o-mini", "auth", T0 + 5),
        ("openai/gpt-4o", "billing_quota", T0 + 6),
        ("openai/gpt-4o", "auth", T0 + 600),
    ]


def test_the_same_event_gives_the_same_alert_id_on_a_replay() -> None:
    event = failed(http_status=401, error_message="bad key")
    first = observe(only("permanent_failure"), event)
    again = observe(only("permanent_failure"), event)  # a restarted worker
    assert [a.alert_id for a in first] == [a.alert_id for a in again]


# error rate


def test_the_error_rate_alerts_once_per_window_when_over_the_threshold() -> None:
    rules = only("error_rate", error_rate=0.5, min_calls=10)
    window = [failed(T0 + i, http_status=500) for i in range(6)] + [call(T0 + 10 + i) for i in range(14)]
    alerts = observe(rules, *window)
    (alert,) = alerts
    assert alert.subject == "openai/gpt-4o"
    assert alert.evidence | {"error_rate": 0} == {
        "window_start": T0,
        "window_seconds": 300.0,
        "calls": 10,  # raised as soon as the window qualifies: 6 of 10
        "errors": 6,
        "error_rate": 0,
        "threshold": 0.5,
    }
    # The next 5-minute window starts from nothing and may alert again.
    assert len(observe(rules, *(failed(T0 + 300 + i, http_status=500) for i in range(10)))) == 1


def test_the_minimum_volume_keeps_a_few_failures_from_paging() -> None:
    rules = only("error_rate", error_rate=0.5, min_calls=20)
    # One failure in two calls, and nine in eighteen: 50%, but too few calls.
    assert observe(rules, failed(T0, http_status=500), call(T0 + 1)) == []
    more = [failed(T0 + 2 + i, http_status=500) for i in range(8)] + [call(T0 + 20 + i) for i in range(8)]
    assert observe(rules, *more) == []


def test_a_low_error_rate_does_not_alert() -> None:
    rules = only("error_rate", error_rate=0.5, min_calls=10)
    events = [failed(T0 + i, http_status=500) for i in range(4)] + [call(T0 + 10 + i) for i in range(16)]
    assert observe(rules, *events) == []


def test_windows_are_kept_per_provider_and_model() -> None:
    rules = only("error_rate", error_rate=0.5, min_calls=4)
    mixed = [failed(T0 + i, http_status=500, model=("a" if i % 2 else "b")) for i in range(6)]
    assert observe(rules, *mixed) == []  # three of each model
    assert [a.subject for a in observe(rules, failed(T0 + 7, http_status=500, model="a"))] == ["openai/a"]


def test_old_windows_are_forgotten_as_event_time_moves_on() -> None:
    rules = only("error_rate", error_rate=0.5, min_calls=4)
    window = rules.config.window_seconds
    observe(rules, *[call(T0 + i * window) for i in range(1000)])
    assert len(rules._windows) <= 3  # memory bounded by a few windows, not by the stream's length


def test_a_window_still_open_is_kept_when_the_rest_are_forgotten() -> None:
    rules = only("error_rate", error_rate=0.5, min_calls=4)
    window = rules.config.window_seconds
    observe(rules, *[call(T0 + i * window) for i in range(10)])
    last = T0 + 10 * window
    assert observe(rules, *[failed(last + i, http_status=500) for i in range(3)]) == []
    (alert,) = observe(rules, failed(last + 3, http_status=500))
    assert alert.rule == "error_rate"


# context window


def test_a_cron_session_on_a_small_context_window_alerts_once_per_model() -> None:
    rules = only("context_window", context_min_tokens=64_000)
    small = [call(T0 + i, source="cron", context_window=32_768) for i in range(5)]
    (alert,) = observe(rules, *small)
    assert (alert.rule, alert.subject, alert.evidence["context_window"]) == (
        "context_window",
        "openai/gpt-4o",
        32_768,
    )
    assert observe(rules, call(T0, source="cli", context_window=32_768, model="other")) == []  # not cron


def test_a_cron_call_filling_its_context_window_alerts() -> None:
    rules = only("context_window", context_fill=0.9)
    assert observe(rules, call(source="cron", context_window=128_000, input_tokens=115_000)) == []  # 89.8%
    (alert,) = observe(rules, call(source="cron", context_window=128_000, input_tokens=115_300))
    assert alert.evidence["input_tokens"] == 115_300 and alert.subject.startswith("s")


# session budget


def test_budget_alert_only_past_the_budget() -> None:
    config = AlertConfig(session_budget_usd=2.0)
    assert budget_alert("s1", 1.99, T0, config) is None
    alert = budget_alert("s1", 2.5, T0, config)
    assert alert is not None and (alert.rule, alert.subject) == ("session_budget", "s1")
    assert budget_alert("s1", 2.5, T0, AlertConfig(session_budget_usd=0)) is None  # 0 turns it off
    assert budget_alert("s1", 2.5, T0, AlertConfig(rules=frozenset())) is None


def test_rules_that_are_off_stay_silent() -> None:
    rules = AlertRules(AlertConfig(rules=frozenset()))
    assert observe(rules, failed(http_status=401), call(source="cron", context_window=1000)) == []


def test_alert_rows_carry_evidence_as_json_text() -> None:
    (alert,) = observe(only("permanent_failure"), failed(http_status=401, error_message="bad key"))
    row = alert.row()
    assert isinstance(row["evidence"], str) and '"reason":"auth"' in row["evidence"]
