"""The workload generator: reproducible, valid, and as varied as real traffic."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import pytest

from hermes_stream.events import validate_event
from hermes_stream.generator import DEFAULT_START, generate_events
from hermes_stream.workload_catalog import START_SPREAD_SECONDS

Event = dict[str, Any]

SESSIONS = 600
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
CRON_ID = re.compile(r"^cron_([0-9a-f]{8})_(\d{8}_\d{6})$")


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return list(generate_events(SESSIONS, seed=7))


@pytest.fixture(scope="module")
def by_session(events: list[Event]) -> dict[str, list[Event]]:
    sessions: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        sessions[event["session_id"]].append(event)
    return sessions


def _dump(events: list[Event]) -> str:
    return json.dumps(events, sort_keys=False)


def test_same_arguments_give_byte_identical_events() -> None:
    assert _dump(list(generate_events(50, seed=3))) == _dump(list(generate_events(50, seed=3)))


def test_different_seed_or_start_gives_different_events() -> None:
    base = _dump(list(generate_events(50, seed=3)))
    assert _dump(list(generate_events(50, seed=4))) != base
    assert _dump(list(generate_events(50, seed=3, start=DEFAULT_START + 86_400))) != base


def test_default_start_is_new_year_2026_utc() -> None:
    assert DEFAULT_START == datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def test_sessions_start_after_start_within_the_spread(by_session: dict[str, list[Event]]) -> None:
    starts = [evs[-1]["started_at"] for evs in by_session.values()]
    assert min(starts) >= DEFAULT_START
    assert max(starts) <= DEFAULT_START + START_SPREAD_SECONDS
    assert all(evs[0]["ts"] > evs[-1]["started_at"] for evs in by_session.values())


def test_zero_sessions_yield_nothing_and_negative_is_refused() -> None:
    assert list(generate_events(0, seed=1)) == []
    with pytest.raises(ValueError, match="sessions"):
        generate_events(-1, seed=1)


def test_every_event_passes_the_contract(events: list[Event]) -> None:
    for event in events:
        assert validate_event(event) is event


def test_no_content_is_captured(events: list[Event]) -> None:
    assert not [e for e in events if "args" in e or "result" in e]


def test_events_come_in_global_ts_order(events: list[Event]) -> None:
    stamps = [e["ts"] for e in events]
    assert stamps == sorted(stamps)


def test_sessions_overlap_in_time(by_session: dict[str, list[Event]]) -> None:
    spans = sorted((evs[0]["ts"], evs[-1]["ts"]) for evs in by_session.values())
    overlapping = sum(1 for a, b in zip(spans, spans[1:], strict=False) if b[0] < a[1])
    assert overlapping > len(spans) // 4


def test_each_session_is_strictly_ordered_and_ends_once(
    by_session: dict[str, list[Event]],
) -> None:
    assert len(by_session) == SESSIONS
    for session_id, evs in by_session.items():
        stamps = [e["ts"] for e in evs]
        assert all(a < b for a, b in zip(stamps, stamps[1:], strict=False)), session_id
        assert [e["type"] for e in evs].count("session_end") == 1, session_id
        assert evs[-1]["type"] == "session_end", session_id


def test_sessions_mostly_end_with_a_final_answer(by_session: dict[str, list[Event]]) -> None:
    ends = [evs[-1] for evs in by_session.values()]
    reasons = Counter(e["end_reason"] for e in ends)
    assert reasons["completed"] > 0.8 * SESSIONS
    assert {"max_iterations", "user_interrupt", "error"} <= set(reasons)
    assert all(e["completed"] == (e["end_reason"] == "completed") for e in ends)
    for evs in by_session.values():
        if evs[-1]["end_reason"] == "completed":
            assert evs[-2]["type"] == "api_call" and evs[-2]["status"] == "ok"
            assert evs[-2]["finish_reason"] in ("stop", "length")


def test_sizes_are_realistic(by_session: dict[str, list[Event]]) -> None:
    average = sum(len(evs) for evs in by_session.values()) / len(by_session)
    assert 10 <= average <= 60
    assert all(evs[-1]["message_count"] >= 1 for evs in by_session.values())


def test_cron_sessions_are_named_after_job_and_start(by_session: dict[str, list[Event]]) -> None:
    cron = {sid: evs for sid, evs in by_session.items() if evs[0]["source"] == "cron"}
    assert len(cron) > SESSIONS // 20
    for session_id, evs in cron.items():
        match = CRON_ID.match(session_id)
        assert match, session_id
        started = datetime.fromtimestamp(int(evs[-1]["started_at"]), UTC)
        assert match[2] == started.strftime("%Y%m%d_%H%M%S")
        skill = evs[0]
        assert skill["type"] == "skill_invoked" and skill["cron_id"] == match[1]
        assert skill["skill_name"] and skill["skill_version"] and skill["model"]
        assert [e["type"] for e in evs].count("skill_invoked") == 1
    others = [sid for sid, evs in by_session.items() if evs[0]["source"] != "cron"]
    assert all(re.fullmatch(r"sess_[0-9a-f]{16}", sid) for sid in others)


def test_cron_outcome_when_known_matches_the_session(
    by_session: dict[str, list[Event]],
) -> None:
    known = [evs for evs in by_session.values() if evs[0]["type"] == "skill_invoked" and "success" in evs[0]]
    assert known
    for evs in known:
        assert evs[0]["success"] == (evs[-1]["end_reason"] == "completed")
        elapsed = evs[-1]["ts"] - evs[-1]["started_at"]
        assert evs[0]["duration_seconds"] == pytest.approx(elapsed, abs=1e-3)


def test_sources_are_mostly_cli(by_session: dict[str, list[Event]]) -> None:
    sources = Counter(evs[0]["source"] for evs in by_session.values())
    assert set(sources) == {"cli", "gateway", "subagent", "cron"}
    assert sources.most_common(1)[0][0] == "cli"


def test_cache_and_reasoning_tokens_are_subsets(events: list[Event]) -> None:
    for e in events:
        if e["type"] == "api_call":
            cached = e.get("cache_read_tokens", 0) + e.get("cache_write_tokens", 0)
            assert cached <= e["input_tokens"], e
            assert e.get("reasoning_tokens", 0) <= e["output_tokens"], e


def test_caching_providers_hit_the_cache_after_the_first_call(events: list[Event]) -> None:
    ok = [e for e in events if e["type"] == "api_call" and e["status"] == "ok"]
    for provider in ("anthropic", "openai", "google"):
        calls = [e for e in ok if e["provider"] == provider]
        read = sum(e["cache_read_tokens"] for e in calls)
        assert read > 0.4 * sum(e["input_tokens"] for e in calls), provider
    assert not [e for e in ok if e["provider"] == "ollama" and e.get("cache_read_tokens")]


def test_context_grows_over_a_conversation(by_session: dict[str, list[Event]]) -> None:
    grown = total = 0
    for evs in by_session.values():
        inputs = [e["input_tokens"] for e in evs if e["type"] == "api_call" and e["status"] == "ok"]
        if len(inputs) >= 3:
            total += 1
            grown += inputs[-1] > inputs[0]
    assert grown > 0.9 * total


def test_only_reasoning_models_report_reasoning(events: list[Event]) -> None:
    models = {e["model"] for e in events if e.get("reasoning_tokens")}
    assert models and models <= {"o3-mini", "gpt-5", "gemini-2.5-pro", "gemini-2.5-flash"}


def test_cost_is_reported_only_by_openrouter(events: list[Event]) -> None:
    priced = [e for e in events if "cost_usd" in e]
    assert priced and {e["provider"] for e in priced} == {"openrouter"}


def test_several_providers_and_models(events: list[Event]) -> None:
    calls = [e for e in events if e["type"] == "api_call"]
    assert {"anthropic", "openai", "google", "openrouter", "ollama"} <= {e["provider"] for e in calls}
    assert len({e["model"] for e in calls}) >= 8


def test_failed_calls_are_a_few_percent_of_several_kinds(events: list[Event]) -> None:
    calls = [e for e in events if e["type"] == "api_call"]
    failed = [e for e in calls if e["status"] == "error"]
    assert 0.01 < len(failed) / len(calls) < 0.1
    assert all(e["output_tokens"] == 0 and e["error_message"] for e in failed)
    kinds = {e["error_type"] for e in failed}
    assert {"rate_limit_exceeded", "overloaded_error", "APITimeoutError"} <= kinds
    assert len(kinds) >= 6
    assert {429, 529} <= {e.get("http_status") for e in failed}
    assert not [e for e in failed if e["error_type"] == "APITimeoutError" and "http_status" in e]


def test_openai_rate_limit_message_reads_like_openai(events: list[Event]) -> None:
    messages = [
        e["error_message"]
        for e in events
        if e.get("error_type") == "rate_limit_exceeded" and e["provider"] == "openai"
    ]
    assert messages
    assert all(
        re.match(
            r"Rate limit reached for \S+ in organization org-\w+ on tokens per min "
            r"\(TPM\): Limit \d+, Used \d+, Requested \d+\. Please try again in "
            r"[\d.]+s\.",
            m,
        )
        for m in messages
    )


def test_tools_of_every_kind_appear(events: list[Event]) -> None:
    tools = {e["tool_name"] for e in events if e["type"] == "tool_result"}
    assert {"execute_code", "write_file", "read_file", "patch", "search_files", "terminal"} <= tools
    assert {"web_search", "web_extract", "browser_navigate", "session_search", "fact_store"} <= tools
    assert {"cronjob", "process", "send_message"} <= tools


def test_tool_results_carry_ids_and_realistic_failures(events: list[Event]) -> None:
    results = [e for e in events if e["type"] == "tool_result"]
    assert all(re.fullmatch(r"call_[0-9a-f]{24}", e["tool_call_id"]) for e in results)
    assert all(e["duration_ms"] > 0 for e in results)
    failed = [e for e in results if e["status"] == "error"]
    assert 0.01 < len(failed) / len(results) < 0.15
    assert all(e["error_message"] for e in failed)
    web = [e for e in failed if e["tool_name"] == "web_extract" and "http_status" in e]
    assert web and all(e["error_message"].startswith(f"HTTP {e['http_status']} ") for e in web)


def test_event_ids_are_unique_uuid7s_from_the_event_time(events: list[Event]) -> None:
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == len(ids)
    for e in islice(events, 0, None, 97):
        assert UUID7.match(e["event_id"]), e["event_id"]
        assert int(e["event_id"].replace("-", "")[:12], 16) == int(e["ts"] * 1000)
