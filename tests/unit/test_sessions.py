"""Folding a session's events into SessionStats, exactly once."""

from __future__ import annotations

from itertools import count
from typing import Any

import pytest

from hermes_stream import codec
from hermes_stream.events import make_event
from hermes_stream.sessions import RECENT_IDS, SessionStats

T0 = 1_767_225_600.0
_ids = count()


def event(type_: Any, ts: float = T0, **fields: Any) -> dict[str, Any]:
    return make_event(type_, "sess_1", event_id=f"e{next(_ids)}", ts=ts, **fields)


def api_call(ts: float = T0, **fields: Any) -> dict[str, Any]:
    base = {"model": "gpt-4o", "provider": "openai", "input_tokens": 100, "output_tokens": 10, "status": "ok"}
    return event("api_call", ts, **(base | fields))


def tool_result(ts: float = T0, status: str = "ok") -> dict[str, Any]:
    return event("tool_result", ts, tool_name="terminal", status=status)


def session_end(ts: float = T0, **fields: Any) -> dict[str, Any]:
    return event("session_end", ts, **({"end_reason": "completed", "completed": True} | fields))


def folded(*records: list[dict[str, Any]]) -> SessionStats:
    """Stats after applying each record at offsets 0, 1, 2, … of partition 0."""
    stats = SessionStats("sess_1")
    for offset, events in enumerate(records):
        stats.apply_record(events, 0, offset)
    return stats


def test_counts_and_token_sums_are_folded() -> None:
    stats = folded(
        [
            api_call(T0, input_tokens=1000, output_tokens=50, cache_read_tokens=800, cost_usd=0.25),
            api_call(T0 + 1, status="error", input_tokens=0, output_tokens=0, http_status=429),
            tool_result(T0 + 2),
        ],
        [
            tool_result(T0 + 3, status="error"),
            event("skill_invoked", T0 + 4, skill_name="daily-report"),
            api_call(
                T0 + 5,
                model="claude-haiku-4-5",
                provider="anthropic",
                input_tokens=2000,
                output_tokens=70,
                cache_write_tokens=1500,
                reasoning_tokens=30,
                cost_usd=0.5,
            ),
        ],
    )
    assert (stats.events, stats.api_calls, stats.api_errors) == (6, 3, 1)
    assert (stats.tool_calls, stats.tool_errors, stats.skill_invocations) == (2, 1, 1)
    assert (stats.input_tokens, stats.output_tokens) == (3000, 120)
    assert (stats.cache_read_tokens, stats.cache_write_tokens, stats.reasoning_tokens) == (800, 1500, 30)
    assert stats.cost_usd == pytest.approx(0.75)
    assert (stats.model, stats.provider) == ("claude-haiku-4-5", "anthropic")
    assert (stats.source, stats.started_at, stats.last_event_at) == ("cli", T0, T0 + 5)


def test_total_tokens_does_not_add_cache_or_reasoning_again() -> None:
    stats = folded(
        [
            api_call(
                input_tokens=1000,
                cache_read_tokens=600,
                cache_write_tokens=300,
                output_tokens=200,
                reasoning_tokens=150,
            )
        ]
    )
    assert stats.total_tokens == 1200
    assert stats.row()["total_tokens"] == 1200


def test_integral_float_tokens_are_summed_as_integers() -> None:
    stats = folded([api_call(input_tokens=3.0, output_tokens=2.0)])
    assert (stats.input_tokens, stats.output_tokens) == (3, 2)
    assert type(stats.input_tokens) is int


def test_a_record_replayed_at_the_same_or_lower_offset_is_not_counted_twice() -> None:
    stats = SessionStats("sess_1")
    first, second = [api_call(), tool_result()], [api_call()]
    assert stats.apply_record(first, 2, 10)
    assert stats.apply_record(second, 2, 11)
    assert not stats.apply_record(second, 2, 11)
    assert not stats.apply_record(first, 2, 10)
    assert (stats.events, stats.api_calls, stats.input_tokens) == (3, 2, 200)


def test_the_same_event_in_a_later_record_is_not_counted_twice() -> None:
    resent = api_call(input_tokens=500)
    stats = folded([resent], [resent, tool_result()])
    assert (stats.events, stats.api_calls, stats.tool_calls, stats.input_tokens) == (2, 1, 1, 500)


def test_a_record_of_only_resent_events_reports_no_change_but_is_marked_applied() -> None:
    resent = api_call()
    stats = folded([resent])
    assert not stats.apply_record([resent], 0, 1)
    assert (stats.applied_offset, stats.api_calls) == (1, 1)


def test_the_same_event_twice_in_one_record_is_counted_once() -> None:
    twice = api_call()
    assert folded([twice, twice]).api_calls == 1


def test_recent_ids_stay_bounded() -> None:
    stats = folded([api_call() for _ in range(RECENT_IDS + 10)])
    assert len(stats.recent_ids) == RECENT_IDS
    assert stats.api_calls == RECENT_IDS + 10


def test_session_end_marks_the_session_ended_with_its_facts() -> None:
    stats = folded(
        [
            api_call(T0 + 10),
            session_end(T0 + 20, started_at=T0, message_count=7, model="gpt-5", end_reason="max_iterations"),
        ]
    )
    assert stats.ended
    assert (stats.ended_at, stats.end_reason, stats.message_count) == (T0 + 20, "max_iterations", 7)
    assert (stats.started_at, stats.model, stats.completed) == (T0, "gpt-5", True)
    assert stats.row()["status"] == "ended"


def test_events_after_session_end_update_the_stats_and_keep_it_ended() -> None:
    stats = folded([session_end(T0 + 5)], [tool_result(T0 + 6), api_call(T0 + 7, input_tokens=40)])
    assert stats.ended and stats.ended_at == T0 + 5
    assert (stats.tool_calls, stats.api_calls, stats.input_tokens) == (1, 1, 40)
    assert stats.last_event_at == T0 + 7
    assert stats.row()["status"] == "ended"


def test_wall_time_runs_from_start_to_end() -> None:
    assert SessionStats("sess_1").wall_time_seconds is None
    active = folded([api_call(T0 + 3), tool_result(T0 + 1), api_call(T0 + 9)])
    assert active.wall_time_seconds == 8
    assert active.row()["status"] == "active"
    ended = folded([api_call(T0 + 3)], [session_end(T0 + 30, started_at=T0)])
    assert ended.wall_time_seconds == 30
    assert ended.row()["wall_time_seconds"] == 30


def test_state_round_trips_through_json_and_still_dedupes() -> None:
    seen = api_call(cache_read_tokens=50, cost_usd=0.125)
    stats = folded([seen], [session_end(T0 + 4)])
    restored = SessionStats.from_dict(codec.loads(codec.dumps(stats.to_dict())))
    assert restored == stats
    assert restored.row() == stats.row()
    assert not restored.apply_record([seen], 0, 1)
    assert restored.apply_record([seen, tool_result()], 0, 2)
    assert (restored.api_calls, restored.tool_calls) == (1, 1)


# cost, kind, idle


def test_cost_status_is_reported_estimated_or_unknown() -> None:
    assert folded([api_call(cost_usd=0.25)]).cost_status == "reported"
    estimated = folded([api_call(cost_usd=0.25), api_call()])
    assert estimated.cost_status == "estimated" and estimated.estimated_cost_usd > 0.25  # type: ignore[operator]
    unknown = folded([api_call(provider="ollama", model="no-such-model:7b")])
    assert (unknown.cost_status, unknown.estimated_cost_usd) == ("unknown", None)  # never a silent $0
    assert folded([tool_result()]).cost_status is None


def test_a_call_with_cache_reads_is_estimated_cheaper() -> None:
    plain = folded([api_call(input_tokens=100_000, output_tokens=0)]).estimated_cost_usd
    cached = folded(
        [api_call(input_tokens=100_000, output_tokens=0, cache_read_tokens=80_000)]
    ).estimated_cost_usd
    assert plain is not None and cached is not None and 0 < cached < plain


def test_models_and_per_tool_counts_are_kept() -> None:
    stats = folded(
        [api_call(), api_call(model="gpt-4o-mini"), api_call()],
        [event("tool_result", tool_name="patch", status="ok"), tool_result(), tool_result(status="error")],
    )
    assert stats.models == ["gpt-4o", "gpt-4o-mini"]
    assert stats.tool_counts == {"patch": 1, "terminal": 2}


def test_the_kind_columns_are_filled_once_the_session_ends() -> None:
    stats = folded([tool_result(), tool_result(), tool_result()])
    assert stats.row()["category"] is None
    stats.apply_record([session_end(message_count=30)], 0, 99)
    row = stats.row()
    assert (row["category"], row["task_type"], row["messages"], row["is_successful"]) == (
        "ops",
        "mixed",
        30,
        True,
    )


def test_expire_ends_the_session_at_its_last_event() -> None:
    stats = folded([api_call(T0), tool_result(T0 + 40)])
    stats.expire()
    assert (stats.ended, stats.ended_at, stats.end_reason) == (True, T0 + 40, "idle_timeout")


def test_a_call_claiming_more_cache_than_input_tokens_is_unpriced_not_a_crash() -> None:
    stats = folded([api_call(input_tokens=10, cache_read_tokens=50)])
    assert (stats.cost_status, stats.api_calls) == ("unknown", 1)


def test_state_written_by_an_older_version_still_loads() -> None:
    old = {"session_id": "s", "api_calls": 2, "reported_cost_usd": 0.5, "gone_field": 1}
    stats = SessionStats.from_dict(old)
    assert (stats.api_calls, stats.cost_usd) == (2, 0.5)
