"""The lines, filters and webhook payloads of ``hermes-stream alerts tail`` (no broker)."""

from __future__ import annotations

from typing import Any

import pytest

from hermes_stream import codec
from hermes_stream.alerts import AlertConfig, budget_alert
from hermes_stream.alerts_tail import (
    MAX_MESSAGE,
    Selection,
    Webhook,
    alert_line,
    error_line,
    read_record,
    utc,
)
from hermes_stream.error_records import error_record
from hermes_stream.events import make_event
from hermes_stream.exceptions import ConfigError, JSONError
from hermes_stream.topics import Topics

T0 = 1_767_225_605.0  # 2026-01-01T00:00:05Z
TOPICS = Topics("hermes")


def api_error(**fields: Any) -> dict[str, Any]:
    base = {
        "event_id": "e1",
        "session_id": "sess_1",
        "ts": T0,
        "kind": "api",
        "category": "permanent",
        "reason": "auth",
        "http_status": 401,
        "model": "claude-sonnet-4",
        "provider": "anthropic",
        "tool_name": None,
        "message": "invalid x-api-key",
    }
    return base | fields


def alert(**fields: Any) -> dict[str, Any]:
    base = {
        "alert_id": "permanent_failure-1",
        "ts": T0,
        "rule": "permanent_failure",
        "severity": "critical",
        "subject": "anthropic/claude-sonnet-4",
        "message": "anthropic/claude-sonnet-4: auth (invalid x-api-key)",
        "evidence": {"reason": "auth"},
    }
    return base | fields


def test_an_api_error_from_the_worker_reads_as_one_line() -> None:
    event = make_event(
        "api_call",
        "sess_1",
        ts=T0,
        model="claude-sonnet-4",
        provider="anthropic",
        input_tokens=10,
        output_tokens=0,
        status="error",
        http_status=401,
        error_type="authentication_error",
        error_message="invalid x-api-key",
    )
    assert error_line(error_record(event)) == (
        "2026-01-01T00:00:05Z ERROR permanent/auth api anthropic/claude-sonnet-4 http=401 s=sess_1: "
        "invalid x-api-key"
    )


def test_a_tool_error_names_the_tool_and_no_model() -> None:
    event = make_event(
        "tool_result",
        "sess_2",
        ts=T0 + 4,
        tool_name="web_search",
        tool_call_id="c1",
        status="error",
        error_message="read timed out",
    )
    assert error_line(error_record(event)) == (
        "2026-01-01T00:00:09Z ERROR retryable/timeout tool web_search s=sess_2: read timed out"
    )


def test_missing_fields_show_as_a_dash() -> None:
    record = api_error(model=None, http_status=None, message="", ts=None)
    del record["session_id"]
    assert error_line(record) == "- ERROR permanent/auth api anthropic/- s=-: (no message)"
    assert error_line({}) == "- ERROR -/- - -/- s=-: (no message)"


def test_a_message_stays_on_one_line_and_is_cut_when_long() -> None:
    line = error_line(api_error(message='upstream said:\n  {"error":\r\n\t\x1b[31mbad\x1b[0m}'))
    assert line.endswith(': upstream said: {"error": [31mbad [0m}')
    assert "\n" not in line and "\x1b" not in line

    long = error_line(api_error(message="x" * 5000))
    assert long.endswith(": " + "x" * (MAX_MESSAGE - 1) + "…")


def test_fields_with_spaces_do_not_break_the_columns() -> None:
    line = error_line(api_error(model="my model\nv2", session_id="a b"))
    assert line.split(" ")[4:6] == ["anthropic/my_model_v2", "http=401"]
    assert " s=a_b: " in line


def test_an_alert_line_names_severity_rule_and_subject_once() -> None:
    assert alert_line(alert()) == (
        "2026-01-01T00:00:05Z ALERT critical permanent_failure anthropic/claude-sonnet-4: "
        "auth (invalid x-api-key)"
    )


def test_an_alert_from_the_rules_keeps_a_message_that_does_not_repeat_its_subject() -> None:
    budget = budget_alert("sess_9", 12.5, T0, AlertConfig())
    assert budget is not None
    assert alert_line(budget.to_dict()) == (
        "2026-01-01T00:00:05Z ALERT warning session_budget sess_9: "
        "session sess_9 has cost $12.50, over its $10.00 budget"
    )


@pytest.mark.parametrize(
    ("ts", "shown"),
    [(T0, "2026-01-01T00:00:05Z"), (T0 + 0.999, "2026-01-01T00:00:05Z"), (0, "1970-01-01T00:00:00Z")],
)
def test_times_are_utc_to_the_second(ts: float, shown: str) -> None:
    assert utc(ts) == shown


@pytest.mark.parametrize("ts", [None, "2026-01-01", True, 1e20, float("nan")])
def test_an_unusable_time_is_a_dash(ts: object) -> None:
    assert utc(ts) == "-"


def test_no_option_follows_every_error_topic_and_the_alerts() -> None:
    assert Selection.of().topic_names(TOPICS) == [
        "hermes.errors.retryable",
        "hermes.errors.permanent",
        "hermes.errors.unknown",
        "hermes.alerts",
    ]


def test_categories_alone_follow_only_their_error_topics() -> None:
    selection = Selection.of(categories=["unknown", "permanent"])
    assert selection.topic_names(TOPICS) == ["hermes.errors.permanent", "hermes.errors.unknown"]


def test_rules_alone_follow_only_the_alerts() -> None:
    assert Selection.of(rules=["error_rate"]).topic_names(TOPICS) == ["hermes.alerts"]


def test_categories_and_rules_follow_both() -> None:
    selection = Selection.of(categories=["permanent"], rules=["session_budget"])
    assert selection.topic_names(TOPICS) == ["hermes.errors.permanent", "hermes.alerts"]


def test_unknown_categories_and_rules_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown category fatal"):
        Selection.of(categories=["fatal"])
    with pytest.raises(ConfigError, match="unknown rule bogus; known: permanent_failure"):
        Selection.of(rules=["bogus"])


def test_alerts_are_filtered_by_rule_and_errors_by_category() -> None:
    selection = Selection.of(categories=["permanent"], rules=["error_rate"])
    rate = codec.dumps(alert(rule="error_rate", severity="warning"))
    assert read_record(TOPICS.alerts, rate, selection, TOPICS) is not None
    assert read_record(TOPICS.alerts, codec.dumps(alert()), selection, TOPICS) is None
    permanent = codec.dumps(api_error())
    retryable = codec.dumps(api_error(category="retryable", reason="rate_limit"))
    assert read_record(TOPICS.errors("permanent"), permanent, selection, TOPICS) is not None
    assert read_record(TOPICS.errors("retryable"), retryable, selection, TOPICS) is None


def test_a_record_reads_as_its_line_and_a_payload_with_text() -> None:
    shown = read_record(TOPICS.errors("permanent"), codec.dumps(api_error()), Selection.of(), TOPICS)
    assert shown is not None
    assert shown.line == error_line(api_error())
    payload = shown.payload()
    assert payload == {**api_error(), "text": shown.line}
    assert codec.loads(codec.dumps(payload))["text"].startswith("2026-01-01T00:00:05Z ERROR permanent/auth")


@pytest.mark.parametrize("value", [b"{not json", b"", None, b"[1, 2]", b'"text"'])
def test_a_message_that_is_not_a_json_object_is_refused(value: bytes | None) -> None:
    with pytest.raises(JSONError):
        read_record(TOPICS.alerts, value, Selection.of(), TOPICS)


@pytest.mark.parametrize("url", ["hooks.slack.com/services/x", "ftp://host/x", "http:///path", ""])
def test_a_webhook_must_be_an_http_url(url: str) -> None:
    with pytest.raises(ConfigError, match="--webhook must be an http:// or https:// URL"):
        Webhook(url, print)


def test_reports_about_a_webhook_name_its_host_not_its_secret_path() -> None:
    hook = Webhook("https://user:pw@hooks.slack.com:8443/services/T0/B0/s3cret", print)
    assert hook.where == "https://hooks.slack.com:8443"
