"""The validator's verdicts and messages, and the events ``make_event`` builds."""

from __future__ import annotations

import math
import time
import types
import uuid
from typing import Any

import pytest

from hermes_stream.events import MAX_ID_LENGTH, make_event, new_event_id, validate_event
from hermes_stream.exceptions import InvalidEvent


def api_call(**changes: Any) -> dict[str, Any]:
    usage: dict[str, Any] = {"input_tokens": 100, "output_tokens": 20}
    return make_event("api_call", "sess_1", model="gpt-4o", provider="openai", status="ok", **usage) | changes


def tool_result(**changes: Any) -> dict[str, Any]:
    return make_event("tool_result", "sess_1", tool_name="terminal", status="ok") | changes


def rejection(event: Any) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as info:
        validate_event(event)
    return info.value


# --- messages name the field and the reason ----------------------------------------------------


@pytest.mark.parametrize(
    ("event", "field", "words"),
    [
        (api_call(input_tokens=-5), "input_tokens", "negative"),
        (api_call(cost_usd=-0.5), "cost_usd", "negative"),
        (api_call(output_tokens="20"), "output_tokens", "integer"),
        (api_call(latency_ms="fast"), "latency_ms", "number"),
        (api_call(status="timeout"), "status", "one of ok, error"),
        (api_call(http_status=700), "http_status", "between 100 and 599"),
        (api_call(model=None), "model", "required"),
        (api_call(source=""), "source", "empty"),
        (api_call(session_id="x" * (MAX_ID_LENGTH + 1)), "session_id", f"at most {MAX_ID_LENGTH}"),
        (api_call(schema_version=2), "schema_version", "unsupported version 2"),
        (api_call(type="api_request"), "type", "unknown event type 'api_request'"),
        (tool_result(args=["ls"]), "args", "must be an object, got array"),
        (make_event("session_end", "s", end_reason="done", completed="yes"), "completed", "true or false"),
        ("not an event", "event", "JSON object, got string"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None,
)
def test_rejection_names_the_field_and_the_reason(event: Any, field: str, words: str) -> None:
    error = rejection(event)
    assert error.field == field
    assert words in error.reason
    assert str(error).startswith(f"{field}: ")


def test_missing_type_is_reported_as_required() -> None:
    event = api_call()
    del event["type"]
    assert (rejection(event).field, rejection(event).reason) == ("type", "is required")


def test_unhashable_type_is_rejected_not_crashed() -> None:
    assert rejection(api_call(type={"name": "api_call"})).field == "type"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("field", ["ts", "latency_ms", "cost_usd", "input_tokens"])
def test_non_finite_numbers_are_rejected(field: str, value: float) -> None:
    assert rejection(api_call(**{field: value})).field == field


@pytest.mark.parametrize("field", ["input_tokens", "http_status", "schema_version"])
def test_bool_is_not_an_integer(field: str) -> None:
    assert rejection(api_call(**{field: True})).field == field


def test_bool_is_not_an_amount() -> None:
    assert rejection(api_call(cost_usd=False)).field == "cost_usd"


def test_integral_floats_count_as_integers_like_json_schema() -> None:
    event = api_call(input_tokens=3.0, http_status=429.0, schema_version=1.0)
    assert validate_event(event) is event
    assert rejection(api_call(input_tokens=3.5)).field == "input_tokens"
    assert "negative" in rejection(api_call(input_tokens=-3.0)).reason


def test_http_status_range_applies_to_integral_floats() -> None:
    assert rejection(api_call(http_status=99.0)).field == "http_status"


def test_optional_fields_may_be_null_or_absent() -> None:
    event = api_call(cache_read_tokens=None, http_status=None, error_message=None, cost_usd=None)
    assert validate_event(event) is event
    assert validate_event(api_call()) is not None


def test_extra_fields_are_allowed_and_kept() -> None:
    event = api_call(gen_ai_operation_name="chat", nested={"a": [1]})
    assert validate_event(event)["nested"] == {"a": [1]}


def test_valid_event_is_returned_unchanged() -> None:
    event = api_call(cache_read_tokens=60)
    before = dict(event)
    assert validate_event(event) is event
    assert event == before


# --- make_event and ids ------------------------------------------------------------------------


def test_make_event_builds_a_valid_event_with_envelope() -> None:
    event = api_call()
    assert validate_event(event) is event
    assert event["type"] == "api_call"
    assert event["session_id"] == "sess_1"
    assert event["source"] == "cli"
    assert event["schema_version"] == 1
    assert isinstance(event["ts"], float)


def test_make_event_id_is_a_uuid7_of_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    event = api_call()
    after = time.time_ns() // 1_000_000
    parsed = uuid.UUID(event["event_id"])
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert str(parsed) == event["event_id"]
    assert before <= parsed.int >> 80 <= after


def test_event_ids_are_unique() -> None:
    ids = [new_event_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)


def test_event_ids_sort_by_creation_time(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([1_767_225_600_000_000_000 + ms * 1_000_000 for ms in (5, 1, 3, 2, 4)])
    monkeypatch.setattr("hermes_stream.events.time", types.SimpleNamespace(time_ns=lambda: next(clock)))
    ids = {ms: new_event_id() for ms in (5, 1, 3, 2, 4)}
    assert sorted(ids.values()) == [ids[ms] for ms in sorted(ids)]
