"""Joining skill_invoked events with their session: kept numbers, filled numbers, shared cost."""

from __future__ import annotations

from typing import Any

import pytest

from hermes_stream.events import make_event
from hermes_stream.sessions import SessionStats
from hermes_stream.skills import invocation_rows, skill_key

T0 = 1_767_225_600.0
SESSION = "cron_job7_20260101_000000"


def event(type_: Any, ts: float, **fields: Any) -> dict[str, Any]:
    return make_event(type_, SESSION, source="cron", ts=ts, **fields)


def skill(ts: float, name: str, **fields: Any) -> dict[str, Any]:
    return event("skill_invoked", ts, skill_name=name, cron_id="job7", **fields)


def call(ts: float, **fields: Any) -> dict[str, Any]:
    base = {
        "model": "gpt-4o",
        "provider": "openai",
        "input_tokens": 1000,
        "output_tokens": 100,
        "status": "ok",
    }
    return event("api_call", ts, **(base | fields))


def end(ts: float, **fields: Any) -> dict[str, Any]:
    return event("session_end", ts, **({"end_reason": "cron_complete"} | fields))


def fold(*events: dict[str, Any]) -> SessionStats:
    stats = SessionStats(SESSION)
    for offset, item in enumerate(events):
        stats.apply_record([item], 0, offset)
    return stats


def test_a_running_session_s_invocation_has_only_what_its_event_carried() -> None:
    (row,) = invocation_rows(fold(skill(T0, "inbox-zero", skill_version="2.1"), call(T0 + 1)))
    assert row["skill_name"] == "inbox-zero" and row["skill_version"] == "2.1"
    assert (row["success"], row["completed_at"], row["estimated_cost_usd"], row["input_tokens"]) == (
        None,
        None,
        None,
        None,
    )
    assert row["model"] == "gpt-4o"  # the session's model while the event named none


def test_an_ended_session_fills_the_missing_numbers() -> None:
    stats = fold(skill(T0, "inbox-zero"), call(T0 + 10, cost_usd=0.5), end(T0 + 60))
    (row,) = invocation_rows(stats)
    assert row["invoked_at"] == T0 and row["completed_at"] == T0 + 60
    assert (row["duration_seconds"], row["input_tokens"], row["output_tokens"]) == (60.0, 1000, 100)
    assert (row["estimated_cost_usd"], row["cost_shared"]) == (0.5, False)
    assert (row["success"], row["end_reason"]) == (True, "cron_complete")
    assert row["quality_score"] == pytest.approx(stats.row()["score"])


def test_numbers_the_event_carried_are_kept() -> None:
    stats = fold(
        skill(T0, "digest", duration_seconds=12.5, input_tokens=7, cost_usd=0.01, success=False),
        call(T0 + 10, cost_usd=0.5),
        end(T0 + 60),
    )
    (row,) = invocation_rows(stats)
    assert (row["duration_seconds"], row["input_tokens"], row["estimated_cost_usd"], row["success"]) == (
        12.5,
        7,
        0.01,
        False,
    )
    assert row["output_tokens"] == 100 and row["cost_shared"] is False


def test_several_skills_share_the_session_evenly_and_say_so() -> None:
    stats = fold(
        skill(T0, "a"),
        skill(T0 + 1, "b"),
        skill(T0 + 2, "c", cost_usd=0.2),
        call(T0 + 5, input_tokens=3000, output_tokens=300, cost_usd=0.9),
        end(T0 + 30, end_reason="cron_failed"),
    )
    rows = {r["skill_name"]: r for r in invocation_rows(stats)}
    assert rows["a"]["estimated_cost_usd"] == pytest.approx(0.3) and rows["a"]["cost_shared"] is True
    assert rows["a"]["input_tokens"] == 1000 and rows["a"]["duration_seconds"] == 10.0
    assert rows["c"]["estimated_cost_usd"] == 0.2 and rows["c"]["cost_shared"] is False  # its own figure
    assert {r["success"] for r in rows.values()} == {False}


def test_session_data_arriving_after_the_end_updates_the_rows() -> None:
    stats = fold(skill(T0, "a"), call(T0 + 5, cost_usd=0.5), end(T0 + 30))
    stats.apply_record([call(T0 + 40, cost_usd=0.25)], 0, 99)  # late
    (row,) = invocation_rows(stats)
    assert row["estimated_cost_usd"] == pytest.approx(0.75) and row["input_tokens"] == 2000


@pytest.mark.parametrize(
    ("end_fields", "success"),
    [
        ({"end_reason": "cron_complete"}, True),
        ({"end_reason": "cron_failed"}, False),
        ({"end_reason": "cron_complete", "completed": False}, False),  # the flag wins
        ({"end_reason": "user_exit"}, None),
    ],
)
def test_success_comes_from_the_session(end_fields: dict[str, Any], success: bool | None) -> None:
    (row,) = invocation_rows(fold(skill(T0, "a"), end(T0 + 1, **end_fields)))
    assert row["success"] is success


def test_the_key_names_skill_and_model() -> None:
    assert skill_key("digest", "gpt-4o") == "digest|gpt-4o"
    assert skill_key("digest", None) == "digest|"
