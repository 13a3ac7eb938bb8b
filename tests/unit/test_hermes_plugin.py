"""The Hermes Agent plugin, driven through its hooks with Hermes' keyword arguments."""

from __future__ import annotations

import atexit
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from hermes_stream.events import Event, validate_event
from hermes_stream.integrations import hermes
from hermes_stream.integrations.hermes import HermesPlugin, normalize_usage, register


class RecordingProducer:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> bool:
        self.events.append(validate_event(event))
        return True


class FailingProducer:
    def emit(self, event: Event) -> bool:
        raise RuntimeError("broker on fire")


class FakeContext:
    def __init__(self) -> None:
        self.hooks: dict[str, Callable[..., None]] = {}

    def register_hook(self, name: str, callback: Callable[..., None]) -> None:
        self.hooks[name] = callback


Hooks = dict[str, Callable[..., None]]


@pytest.fixture
def producer() -> RecordingProducer:
    return RecordingProducer()


@pytest.fixture
def hooks(producer: RecordingProducer, monkeypatch: pytest.MonkeyPatch) -> Hooks:
    monkeypatch.setattr(atexit, "register", lambda *a, **k: None)
    ctx = FakeContext()
    assert register(ctx, producer=producer) is not None
    return ctx.hooks


def api_request(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "task_id": "task_1",
        "turn_id": "turn_1",
        "api_request_id": "req_1",
        "session_id": "sess_1",
        "platform": "cli",
        "model": "claude-sonnet-4-5",
        "provider": "anthropic",
        "base_url": "https://api.anthropic.com",
        "api_mode": "anthropic_messages",
        "api_call_count": 1,
        "api_duration": 1.25,
        "started_at": 1_700_000_000.0,
        "ended_at": 1_700_000_001.25,
        "finish_reason": "end_turn",
        "response_model": "claude-sonnet-4-5-20250929",
        "usage": {"input_tokens": 100, "output_tokens": 20},
        "assistant_tool_call_count": 0,
    }
    return kwargs | overrides


def test_register_hooks_every_documented_hook(hooks: Hooks) -> None:
    assert set(hooks) == {
        "post_api_request",
        "api_request_error",
        "post_tool_call",
        "on_session_end",
        "on_session_finalize",
        "on_skill_lifecycle",
    }


def test_post_api_request_emits_an_ok_api_call(hooks: Hooks, producer: RecordingProducer) -> None:
    hooks["post_api_request"](**api_request())
    [event] = producer.events
    assert event["type"] == "api_call" and event["status"] == "ok"
    assert event["session_id"] == "sess_1" and event["source"] == "cli"
    assert (event["model"], event["provider"]) == ("claude-sonnet-4-5", "anthropic")
    assert (event["input_tokens"], event["output_tokens"]) == (100, 20)
    assert event["latency_ms"] == 1250
    assert event["finish_reason"] == "end_turn"


def test_latency_falls_back_to_the_timestamps(hooks: Hooks, producer: RecordingProducer) -> None:
    hooks["post_api_request"](**api_request(api_duration=None, started_at=10.0, ended_at=10.5))
    assert producer.events[0]["latency_ms"] == 500


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        pytest.param(
            {
                "input_tokens": 100,
                "output_tokens": 20,
                "cache_read_input_tokens": 1000,
                "cache_creation_input_tokens": 50,
            },
            {"input_tokens": 1150, "output_tokens": 20, "cache_read_tokens": 1000, "cache_write_tokens": 50},
            id="anthropic",
        ),
        pytest.param(
            {
                "prompt_tokens": 1200,
                "completion_tokens": 300,
                "total_tokens": 1500,
                "prompt_tokens_details": {"cached_tokens": 1000},
                "completion_tokens_details": {"reasoning_tokens": 250},
            },
            {"input_tokens": 1200, "output_tokens": 300, "cache_read_tokens": 1000, "reasoning_tokens": 250},
            id="chat-completions",
        ),
        pytest.param(
            {
                "input_tokens": 1200,
                "output_tokens": 300,
                "input_tokens_details": {"cached_tokens": 1000},
                "output_tokens_details": {"reasoning_tokens": 250},
            },
            {"input_tokens": 1200, "output_tokens": 300, "cache_read_tokens": 1000, "reasoning_tokens": 250},
            id="responses",
        ),
        pytest.param(
            SimpleNamespace(
                input_tokens=10, output_tokens=5, cache_read_input_tokens=90, cache_creation_input_tokens=None
            ),
            {"input_tokens": 100, "output_tokens": 5, "cache_read_tokens": 90},
            id="anthropic-sdk-object",
        ),
        pytest.param(
            SimpleNamespace(
                prompt_tokens=40,
                completion_tokens=8,
                prompt_tokens_details=SimpleNamespace(cached_tokens=30),
                completion_tokens_details=None,
            ),
            {"input_tokens": 40, "output_tokens": 8, "cache_read_tokens": 30},
            id="openai-sdk-object",
        ),
        pytest.param(None, {"input_tokens": 0, "output_tokens": 0}, id="none"),
        pytest.param("garbage", {"input_tokens": 0, "output_tokens": 0}, id="garbage"),
    ],
)
def test_usage_is_normalised_to_the_contract(usage: object, expected: dict[str, int]) -> None:
    assert normalize_usage(usage) == expected


def test_anthropic_cache_tokens_are_counted_once_in_the_event(
    hooks: Hooks, producer: RecordingProducer
) -> None:
    usage = {"input_tokens": 3, "output_tokens": 7, "cache_read_input_tokens": 4000}
    hooks["post_api_request"](**api_request(usage=usage))
    [event] = producer.events
    assert event["input_tokens"] == 4003 and event["cache_read_tokens"] == 4000


def test_api_request_error_emits_an_error_api_call(hooks: Hooks, producer: RecordingProducer) -> None:
    kwargs = api_request(usage=None, finish_reason=None)
    hooks["api_request_error"](
        **kwargs,
        status_code=429,
        retry_count=1,
        max_retries=3,
        retryable=True,
        reason="rate_limit",
        error=TimeoutError("Rate limit reached for requests"),
    )
    [event] = producer.events
    assert event["status"] == "error" and event["http_status"] == 429
    assert event["error_type"] == "TimeoutError"
    assert event["error_message"] == "Rate limit reached for requests"
    assert (event["input_tokens"], event["output_tokens"]) == (0, 0)


def test_api_request_error_without_an_exception_uses_the_reason(
    hooks: Hooks, producer: RecordingProducer
) -> None:
    hooks["api_request_error"](session_id="sess_1", model="m", provider="p", reason="overloaded", error=None)
    [event] = producer.events
    assert event["error_type"] == "overloaded" and event["error_message"] == "overloaded"
    assert event["source"] == "hermes"


def test_a_redelivered_api_request_keeps_its_event_id(hooks: Hooks, producer: RecordingProducer) -> None:
    hooks["post_api_request"](**api_request())
    hooks["post_api_request"](**api_request())
    hooks["post_api_request"](**api_request(api_request_id="req_2"))
    first, again, other = (e["event_id"] for e in producer.events)
    assert first == again != other


def test_retries_of_one_request_are_distinct_events(hooks: Hooks, producer: RecordingProducer) -> None:
    for retry in (0, 1):
        hooks["api_request_error"](**api_request(usage=None), retry_count=retry, reason="timeout")
    hooks["post_api_request"](**api_request())
    assert len({e["event_id"] for e in producer.events}) == 3


def test_without_a_request_id_every_event_is_new(hooks: Hooks, producer: RecordingProducer) -> None:
    hooks["post_api_request"](**api_request(api_request_id=None))
    hooks["post_api_request"](**api_request(api_request_id=None))
    assert producer.events[0]["event_id"] != producer.events[1]["event_id"]


def tool_call(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "tool_name": "terminal",
        "args": {"command": "ls"},
        "result": '{"output": "a b"}',
        "task_id": "task_1",
        "session_id": "sess_1",
        "tool_call_id": "call_1",
        "turn_id": "turn_1",
        "api_request_id": "req_1",
        "duration_ms": 412,
        "status": "ok",
        "error_type": None,
        "error_message": None,
    }
    return kwargs | overrides


def test_post_tool_call_emits_a_tool_result(hooks: Hooks, producer: RecordingProducer) -> None:
    hooks["post_api_request"](**api_request())  # tells the plugin the session's platform
    hooks["post_tool_call"](**tool_call())
    event = producer.events[-1]
    assert event["type"] == "tool_result" and event["source"] == "cli"
    assert (event["tool_name"], event["tool_call_id"], event["status"]) == ("terminal", "call_1", "ok")
    assert event["duration_ms"] == 412
    assert event["args"] == {"command": "ls"} and event["result"] == '{"output": "a b"}'


@pytest.mark.parametrize(
    ("status", "expected"),
    [("success", "ok"), ("error", "error"), ("timeout", "error"), ("blocked", "error"), (None, "error")],
)
def test_tool_statuses_map_to_ok_or_error(
    hooks: Hooks, producer: RecordingProducer, status: str | None, expected: str
) -> None:
    hooks["post_tool_call"](
        **tool_call(status=status, error_type="FileNotFoundError", error_message="File not found")
    )
    [event] = producer.events
    assert event["status"] == expected
    if expected == "error":
        assert event["error_message"] == "File not found"


def test_a_redelivered_tool_call_keeps_its_event_id(hooks: Hooks, producer: RecordingProducer) -> None:
    hooks["post_tool_call"](**tool_call())
    hooks["post_tool_call"](**tool_call())
    assert producer.events[0]["event_id"] == producer.events[1]["event_id"]


def turn_end(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "session_id": "sess_1",
        "completed": True,
        "failed": False,
        "interrupted": False,
        "turn_exit_reason": "text_response(stop)",
        "model": "claude-sonnet-4-5",
        "platform": "cli",
    }
    return kwargs | overrides


def session_ends(producer: RecordingProducer) -> list[Event]:
    return [e for e in producer.events if e["type"] == "session_end"]


def test_session_ends_once_though_both_hooks_fire(hooks: Hooks, producer: RecordingProducer) -> None:
    hooks["on_session_end"](**turn_end(turn_id="turn_1"))
    hooks["on_session_end"](**turn_end(turn_id="turn_2"))
    assert session_ends(producer) == []  # Hermes fires on_session_end after every turn
    hooks["on_session_finalize"](session_id="sess_1", platform="cli", reason="shutdown")
    hooks["on_session_finalize"](session_id="sess_1", platform="cli", reason="shutdown")
    [event] = session_ends(producer)
    assert event["end_reason"] == "completed" and event["completed"] is True
    assert event["model"] == "claude-sonnet-4-5" and event["source"] == "cli"


@pytest.mark.parametrize(
    ("flags", "reason", "completed"),
    [
        ({"failed": True, "completed": False}, "failed", False),
        ({"interrupted": True, "completed": True}, "interrupted", False),
        ({"completed": False, "turn_exit_reason": "max_iterations"}, "max_iterations", False),
    ],
)
def test_session_end_reason_comes_from_the_last_turn(
    hooks: Hooks, producer: RecordingProducer, flags: dict[str, Any], reason: str, completed: bool
) -> None:
    hooks["on_session_end"](**turn_end(turn_id="turn_1"))
    hooks["on_session_end"](**turn_end(**flags, turn_id="turn_2"))
    hooks["on_session_finalize"](session_id="sess_1", platform="cli")
    [event] = session_ends(producer)
    assert (event["end_reason"], event["completed"]) == (reason, completed)


def test_a_finalized_session_without_turns_just_ends(hooks: Hooks, producer: RecordingProducer) -> None:
    hooks["on_session_finalize"](session_id="sess_9", platform="telegram", reason="reset")
    hooks["on_session_finalize"](session_id=None, platform="telegram")
    [event] = session_ends(producer)
    assert (event["end_reason"], event["source"]) == ("reset", "telegram")
    assert "completed" not in event


def test_a_cron_run_ends_at_its_only_turn(hooks: Hooks, producer: RecordingProducer) -> None:
    sid = "cron_digest_20260102_030405"
    hooks["on_session_end"](**turn_end(session_id=sid, platform="cron"))
    hooks["on_session_finalize"](session_id=sid, platform="cron")
    [event] = session_ends(producer)
    assert event["session_id"] == sid and event["end_reason"] == "completed"


def test_sessions_never_finalized_end_at_exit(producer: RecordingProducer) -> None:
    plugin = HermesPlugin(producer)
    plugin.hooks()["on_session_end"](**turn_end(interrupted=True))
    plugin.close()
    plugin.close()
    [event] = session_ends(producer)
    assert event["end_reason"] == "interrupted"


@pytest.mark.parametrize("action", ["loaded", "used", "invoked", "run"])
def test_skill_use_emits_skill_invoked(hooks: Hooks, producer: RecordingProducer, action: str) -> None:
    hooks["post_api_request"](**api_request())
    hooks["on_skill_lifecycle"](
        action=action, skill_name="web_research", session_id="sess_1", task_id="task_1", use_count=3
    )
    event = producer.events[-1]
    assert event["type"] == "skill_invoked" and event["skill_name"] == "web_research"
    assert (event["model"], event["provider"], event["source"]) == ("claude-sonnet-4-5", "anthropic", "cli")


@pytest.mark.parametrize("action", ["load", "created", "patched", "installed", "archived", "stale", None])
def test_other_skill_lifecycle_actions_are_ignored(
    hooks: Hooks, producer: RecordingProducer, action: str | None
) -> None:
    hooks["on_skill_lifecycle"](action=action, skill_name="web_research", session_id="sess_1")
    assert producer.events == []


def test_a_cron_skill_carries_its_job_id(hooks: Hooks, producer: RecordingProducer) -> None:
    sid = "cron_daily-digest_20260102_030405"
    hooks["on_skill_lifecycle"](action="loaded", skill_name="web_research", session_id=sid)
    assert producer.events[0]["cron_id"] == "daily-digest"


def test_unknown_keywords_and_positional_arguments_are_ignored(
    hooks: Hooks, producer: RecordingProducer
) -> None:
    hooks["post_api_request"]("stray", **api_request(brand_new_key={"x": 1}, message_count=9))
    hooks["post_tool_call"](**tool_call(parent_session_id="sess_0", surface="smart"))
    assert [e["type"] for e in producer.events] == ["api_call", "tool_result"]
    assert "brand_new_key" not in producer.events[0]


def test_events_without_a_session_fall_back_to_the_task_or_are_skipped(
    hooks: Hooks, producer: RecordingProducer
) -> None:
    hooks["post_tool_call"](**tool_call(session_id=None))
    hooks["post_tool_call"](**tool_call(session_id=None, task_id=None))
    [event] = producer.events
    assert event["session_id"] == "task_1"


def test_a_failing_producer_never_reaches_hermes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(atexit, "register", lambda *a, **k: None)
    ctx = FakeContext()
    register(ctx, producer=FailingProducer())
    ctx.hooks["post_api_request"](**api_request())
    ctx.hooks["post_tool_call"](**tool_call())
    ctx.hooks["on_session_finalize"](session_id="sess_1")


def test_bad_hook_arguments_never_reach_hermes(hooks: Hooks, producer: RecordingProducer) -> None:
    hooks["post_api_request"](**api_request(usage=object(), api_duration=float("nan"), status_code="x"))
    hooks["post_tool_call"](**tool_call(duration_ms=-1, args=["not", "a", "dict"], result={"a": 1}))
    api_call, tool_result = producer.events
    assert "latency_ms" in api_call and "http_status" not in api_call  # from the timestamps
    assert "duration_ms" not in tool_result and "args" not in tool_result
    assert tool_result["result"] == "{'a': 1}"


def test_register_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    assert register(object()) is None
    assert "could not register" in caplog.text


def test_the_default_producer_turns_itself_off_without_a_broker(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    monkeypatch.delenv("HERMES_STREAM_BROKER", raising=False)
    monkeypatch.setenv("HERMES_STREAM_SPOOL_DIR", str(tmp_path))
    lazy = hermes._LazyProducer()
    assert lazy.emit({"type": "api_call"}) is False
    assert lazy.emit({"type": "api_call"}) is False
    assert caplog.text.count("telemetry is off") == 1
    lazy.close()
