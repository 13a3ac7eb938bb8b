"""The JSON Schema files in ``schemas/`` and the Python models say the same thing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from hermes_stream import codec
from hermes_stream.events import (
    ENVELOPE,
    MAX_COUNT,
    MAX_ID_LENGTH,
    MAX_TIMESTAMP,
    MODELS,
    SCHEMA_VERSION,
    Field,
    decode_valid,
    record_is_valid,
    validate_event,
)
from hermes_stream.exceptions import InvalidEvent
from hermes_stream.generator import generate_events

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
ENVELOPE_NAMES = {f.name for f in ENVELOPE}
CONSTRAINTS = ("type", "minimum", "maximum", "minLength", "maxLength", "enum", "const")

Schema = dict[str, Any]


def _load(name: str) -> Schema:
    schema: Schema = json.loads((SCHEMAS / f"{name}.json").read_text())
    return schema


ENVELOPE_SCHEMA = _load("envelope")
TYPE_SCHEMAS = {name: _load(name) for name in MODELS}
REGISTRY: Registry[Any] = Registry().with_resources(
    (schema["$id"], Resource.from_contents(schema)) for schema in [ENVELOPE_SCHEMA, *TYPE_SCHEMAS.values()]
)
VALIDATORS = {name: Draft202012Validator(schema, registry=REGISTRY) for name, schema in TYPE_SCHEMAS.items()}


def expected_property(f: Field) -> Schema:
    """What the schema must say about *f*, from its kind."""
    by_kind: dict[str, Schema] = {
        "id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
        "string": {"type": "string", **({"minLength": 1} if f.required else {})},
        "count": {"type": "integer", "minimum": 0, "maximum": MAX_COUNT},
        "amount": {"type": "number", "minimum": 0},
        "timestamp": {"type": "number", "minimum": 0, "maximum": MAX_TIMESTAMP},
        "boolean": {"type": "boolean"},
        "object": {"type": "object"},
        "http_status": {"type": "integer", "minimum": 100, "maximum": 599},
    }
    prop = by_kind[f.kind]
    if f.choices:
        prop["enum"] = {*f.choices, *([] if f.required else [None])}
    if f.name == "schema_version":
        prop["const"] = SCHEMA_VERSION
    if not f.required:
        prop["type"] = [prop["type"], "null"]
    return prop


def constraints(prop: Schema) -> Schema:
    found = {key: prop[key] for key in CONSTRAINTS if key in prop}
    if "enum" in found:
        found["enum"] = set(found["enum"])
    return found


def own_fields(type_: str) -> list[Field]:
    return [f for f in MODELS[type_].fields if f.name not in ENVELOPE_NAMES]


# --- structure -------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", [ENVELOPE_SCHEMA, *TYPE_SCHEMAS.values()], ids=lambda s: s["title"])
def test_every_file_is_a_valid_2020_12_schema_with_id_and_title(schema: Schema) -> None:
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("https://hermes-stream.dev/schemas/v1/")
    assert schema["title"]
    assert schema["type"] == "object"
    assert schema.get("additionalProperties", True) is not False


def test_every_event_type_has_a_schema_file_and_no_file_is_stray() -> None:
    assert {p.stem for p in SCHEMAS.glob("*.json")} == {"envelope", *MODELS}


@pytest.mark.parametrize("type_", MODELS)
def test_type_schema_extends_the_envelope_and_fixes_its_type(type_: str) -> None:
    schema = TYPE_SCHEMAS[type_]
    assert schema["$id"].endswith(f"/{type_}.json")
    assert {"$ref": "envelope.json"} in schema["allOf"]
    assert schema["properties"]["type"]["const"] == type_


@pytest.mark.parametrize("type_", MODELS)
def test_property_names_match_the_model(type_: str) -> None:
    names = set(ENVELOPE_SCHEMA["properties"]) | set(TYPE_SCHEMAS[type_]["properties"])
    assert names == {f.name for f in MODELS[type_].fields}


@pytest.mark.parametrize("type_", MODELS)
def test_required_fields_match_the_model(type_: str) -> None:
    required = ENVELOPE_SCHEMA["required"] + TYPE_SCHEMAS[type_]["required"]
    assert len(required) == len(set(required))
    assert set(required) == set(MODELS[type_].required)


@pytest.mark.parametrize("f", ENVELOPE, ids=lambda f: f.name)
def test_envelope_property_matches_its_kind(f: Field) -> None:
    assert constraints(ENVELOPE_SCHEMA["properties"][f.name]) == expected_property(f)


@pytest.mark.parametrize(
    ("type_", "f"),
    [(type_, f) for type_ in MODELS for f in own_fields(type_)],
    ids=lambda v: v if isinstance(v, str) else v.name,
)
def test_type_property_matches_its_kind(type_: str, f: Field) -> None:
    assert constraints(TYPE_SCHEMAS[type_]["properties"][f.name]) == expected_property(f)


@pytest.mark.parametrize("schema", [ENVELOPE_SCHEMA, *TYPE_SCHEMAS.values()], ids=lambda s: s["title"])
def test_every_property_is_described(schema: Schema) -> None:
    undocumented = [name for name, prop in schema["properties"].items() if not prop.get("description")]
    assert undocumented == []


def test_token_descriptions_state_what_is_inside_what() -> None:
    api = TYPE_SCHEMAS["api_call"]["properties"]
    assert "INCLUDING cache" in api["input_tokens"]["description"]
    assert "subset of output_tokens" in api["reasoning_tokens"]["description"]
    assert "gen_ai.usage.cache_read.input_tokens" in api["cache_read_tokens"]["description"]


# --- behaviour ---------------------------------------------------------------------------------


def schema_errors(event: Any, type_: str) -> list[str]:
    return [e.message for e in VALIDATORS[type_].iter_errors(event)]


def test_generated_events_pass_both_validators() -> None:
    events = list(generate_events(200, seed=11))
    assert {e["type"] for e in events} == set(MODELS)
    for event in events:
        assert schema_errors(event, event["type"]) == [], event
        assert validate_event(event) is event


_MISSING = object()


def _api_call(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "0194a5d2-7c00-7000-8000-000000000001",
        "type": "api_call",
        "schema_version": 1,
        "ts": 1_767_225_600.5,
        "session_id": "sess_1",
        "source": "cli",
        "model": "gpt-4o",
        "provider": "openai",
        "input_tokens": 1200,
        "output_tokens": 80,
        "status": "ok",
    }
    event.update(changes)
    return {k: v for k, v in event.items() if v is not _MISSING}


GOOD = {
    "minimal": _api_call(),
    "integral float count": _api_call(input_tokens=3.0),
    "null optional": _api_call(cache_read_tokens=None, http_status=None, error_type=None),
    "extra field": _api_call(gen_ai_operation="chat"),
    "http_status bounds": _api_call(http_status=599),
    "empty optional string": _api_call(finish_reason=""),
    "id at the length limit": _api_call(session_id="s" * MAX_ID_LENGTH),
    "largest count": _api_call(input_tokens=MAX_COUNT),
    "last second of year 9999": _api_call(ts=MAX_TIMESTAMP),
}

BAD = {
    "missing required field": _api_call(model=_MISSING),
    "required field null": _api_call(provider=None),
    "negative count": _api_call(input_tokens=-1),
    "negative amount": _api_call(cost_usd=-0.01),
    "fractional count": _api_call(output_tokens=1.5),
    "count as string": _api_call(input_tokens="12"),
    "bool as count": _api_call(output_tokens=True),
    "bad enum": _api_call(status="timeout"),
    "unknown type": _api_call(type="api_request"),
    "type not a string": _api_call(type=["api_call"]),
    "schema_version 2": _api_call(schema_version=2),
    "empty session_id": _api_call(session_id=""),
    "id too long": _api_call(event_id="e" * (MAX_ID_LENGTH + 1)),
    "empty required string": _api_call(source=""),
    "http_status 99": _api_call(http_status=99),
    "http_status 600": _api_call(http_status=600),
    "http_status 99.0": _api_call(http_status=99.0),
    "non-object": ["api_call"],
    "count past the maximum": _api_call(input_tokens=MAX_COUNT + 1),
    "count past 2**63": _api_call(output_tokens=2**63 + 5),
    "ts past year 9999": _api_call(ts=MAX_TIMESTAMP + 1),
}


@pytest.mark.parametrize("event", GOOD.values(), ids=GOOD.keys())
def test_edge_cases_accepted_by_both(event: Any) -> None:
    assert schema_errors(event, "api_call") == []
    assert validate_event(event) is event


@pytest.mark.parametrize("event", BAD.values(), ids=BAD.keys())
def test_bad_events_rejected_by_both(event: Any) -> None:
    assert schema_errors(event, "api_call")
    with pytest.raises(InvalidEvent):
        validate_event(event)


def _decodes(data: bytes) -> bool:
    return decode_valid(data) is not None


#: The two fast checks: the producer's (no dicts built) and the worker's (decodes too).
FAST_CHECKS = pytest.mark.parametrize("check", [record_is_valid, _decodes], ids=["producer", "worker"])


@FAST_CHECKS
def test_the_fast_checks_pass_generated_records(check: Any) -> None:
    events = list(generate_events(200, seed=12))
    assert check(codec.dumps(events))
    assert all(check(codec.dumps(e)) for e in events)


@FAST_CHECKS
@pytest.mark.parametrize("event", BAD.values(), ids=BAD.keys())
def test_the_fast_checks_reject_every_bad_event(check: Any, event: Any) -> None:
    assert not check(codec.dumps(event))
    assert not check(codec.dumps([_api_call(), event]))


@FAST_CHECKS
@pytest.mark.parametrize("event", GOOD.values(), ids=GOOD.keys())
def test_the_fast_checks_pass_nothing_the_validator_rejects(check: Any, event: Any) -> None:
    # They may send a good event the slow way (3.0 as a count); never the reverse.
    if check(codec.dumps(event)):
        assert validate_event(event) is event


@FAST_CHECKS
def test_the_fast_checks_reject_numbers_beyond_a_double(check: Any) -> None:
    data = codec.dumps(_api_call()).replace(b'"ts":1767225600.5', b'"ts":1e400')
    assert b"1e400" in data
    assert not check(data)


def test_the_workers_decoder_gives_the_events_json_gives() -> None:
    events = list(generate_events(200, seed=12))
    data = codec.dumps(events)
    assert decode_valid(data) == codec.loads(data)
    assert decode_valid(codec.dumps(events[0])) == [codec.loads(codec.dumps(events[0]))]


@pytest.mark.parametrize(
    ("event", "missing"),
    [
        (_api_call(), "model"),
        ({**_api_call(), "type": "tool_result", "status": "ok", "tool_name": "terminal"}, "tool_name"),
    ],
)
def test_the_workers_decoder_checks_the_fields_only_one_type_requires(event: Any, missing: str) -> None:
    del event[missing]
    with pytest.raises(InvalidEvent, match=missing):
        validate_event(event)
    assert decode_valid(codec.dumps([event])) is None


def test_the_workers_decoder_leaves_out_fields_the_contract_does_not_know() -> None:
    event = {**_api_call(), "x_trace": {"span": 1}}
    assert validate_event(event) is event
    decoded = decode_valid(codec.dumps(event))
    assert decoded is not None
    assert decoded[0] == _api_call()
