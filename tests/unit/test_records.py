"""Decoding Kafka records into events, and bad input into dead letters."""

from __future__ import annotations

from typing import Any

import pytest

from hermes_stream import codec
from hermes_stream.events import make_event
from hermes_stream.records import MAX_DEAD_PAYLOAD, Origin, decode_record

ORIGIN = Origin("hermes.events", 3, 41)
LIMIT = 1024 * 1024


def api_call(**changes: Any) -> dict[str, Any]:
    usage: dict[str, Any] = {"input_tokens": 100, "output_tokens": 20}
    return make_event("api_call", "sess_1", model="gpt-4o", provider="openai", status="ok", **usage) | changes


def decode(value: bytes | None, max_bytes: int = LIMIT) -> tuple[list[Any], list[Any]]:
    return decode_record(value, ORIGIN, max_bytes)


def test_a_single_object_is_one_event() -> None:
    event = api_call()
    assert decode(codec.dumps(event)) == ([event], [])


def test_an_array_gives_its_events_in_order() -> None:
    batch = [api_call(), api_call(), api_call()]
    events, dead = decode(codec.dumps(batch))
    assert [e["event_id"] for e in events] == [e["event_id"] for e in batch]
    assert dead == []


def test_bad_array_elements_become_dead_letters_and_the_rest_is_kept() -> None:
    good1, good2 = api_call(), api_call()
    bad = api_call(input_tokens=-1)
    events, dead = decode(codec.dumps([good1, bad, "hello", good2]))
    assert [e["event_id"] for e in events] == [good1["event_id"], good2["event_id"]]
    assert [d.index for d in dead] == [1, 2]
    assert "input_tokens" in dead[0].reason and "negative" in dead[0].reason
    assert "JSON object" in dead[1].reason
    assert codec.loads(dead[0].payload) == bad  # the element, not the whole record
    assert all(d.origin == ORIGIN for d in dead)


def test_an_invalid_single_event_is_a_dead_letter_naming_the_field() -> None:
    value = codec.dumps(api_call(status="maybe"))
    events, [letter] = decode(value)
    assert events == []
    assert letter.index is None
    assert "status" in letter.reason
    assert letter.payload == value


def test_bytes_that_are_not_json_are_a_dead_letter_with_the_payload() -> None:
    events, [letter] = decode(b'{"type": "api_call",')
    assert events == []
    assert "not valid JSON" in letter.reason
    assert letter.payload == b'{"type": "api_call",'


@pytest.mark.parametrize("value", [b"42", b'"api_call"', b"null", b"true"])
def test_a_json_scalar_is_a_dead_letter(value: bytes) -> None:
    events, [letter] = decode(value)
    assert events == []
    assert "object or an array of objects" in letter.reason


@pytest.mark.parametrize("value", [b"", None])
def test_an_empty_record_is_a_dead_letter(value: bytes | None) -> None:
    events, [letter] = decode(value)
    assert events == []
    assert letter.reason == "empty record"
    assert letter.payload_bytes == 0


def test_an_oversized_record_keeps_a_prefix_and_records_the_full_size() -> None:
    value = codec.dumps([api_call(error_message="x" * MAX_DEAD_PAYLOAD)])
    events, [letter] = decode(value, max_bytes=MAX_DEAD_PAYLOAD)
    assert events == []
    assert "oversized" in letter.reason and str(len(value)) in letter.reason
    assert letter.payload == value[:MAX_DEAD_PAYLOAD]
    assert letter.payload_bytes == len(value) > MAX_DEAD_PAYLOAD
    assert letter.to_dict()["payload_bytes"] == len(value)


def test_a_record_at_the_size_limit_is_accepted() -> None:
    value = codec.dumps(api_call())
    assert len(decode(value, max_bytes=len(value))[0]) == 1
    assert len(decode(value, max_bytes=len(value) - 1)[1]) == 1


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_literals_are_not_json(literal: bytes) -> None:
    event = codec.dumps(api_call()).replace(b'"input_tokens":100', b'"input_tokens":' + literal)
    events, [letter] = decode(event)
    assert events == []
    assert "not valid JSON" in letter.reason


def test_dlq_id_is_stable_for_the_same_origin_and_index() -> None:
    value = codec.dumps([api_call(), api_call(status="maybe")])
    _, [first] = decode(value)
    _, [again] = decode(value)
    assert first.dlq_id == again.dlq_id == "hermes.events:3:41:1"
    _, [other] = decode_record(value, Origin("hermes.events", 3, 42), LIMIT)
    assert other.dlq_id != first.dlq_id


def test_dead_letter_row_names_where_it_came_from() -> None:
    _, [letter] = decode(b"oops")
    row = letter.to_dict()
    assert row["dlq_id"] == "hermes.events:3:41:"
    assert (row["source_topic"], row["source_partition"], row["source_offset"]) == ("hermes.events", 3, 41)
    assert row["event_index"] is None
    assert row["payload"] == "oops"
    assert codec.loads(codec.dumps(row)) == row
