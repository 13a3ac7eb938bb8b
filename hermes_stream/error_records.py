"""From a failed ``api_call`` or ``tool_result`` to its error record.

The worker publishes one record per failed call to
``hermes.errors.<category>`` and writes the same fields to the DuckDB
``errors`` table. Messages are redacted (:func:`~hermes_stream.redact.redact`)
before they reach any topic or table.
"""

from __future__ import annotations

import functools
from typing import Any

from hermes_stream.classify import ErrorClassification, classify_error
from hermes_stream.events import Event
from hermes_stream.redact import redact

#: The kind of call that failed, by event type.
KINDS = {"api_call": "api", "tool_result": "tool"}


def is_error(event: Event) -> bool:
    """True for an ``api_call`` or ``tool_result`` with ``status: error``."""
    return event["type"] in KINDS and event["status"] == "error"


def redact_event(event: Event) -> bool:
    """Redact the event's ``error_message`` in place; True if it changed."""
    message = event.get("error_message")
    if not isinstance(message, str):
        return False
    cleaned = redact(message)
    if cleaned == message:
        return False
    event["error_message"] = cleaned
    return True


@functools.lru_cache(maxsize=4096)
def classify_event_error(
    message: str, http_status: int | None, error_type: str | None
) -> ErrorClassification:
    """:func:`classify_error` on an event's fields; cached, as the same failures repeat."""
    return classify_error(message, http_status, error_type=error_type)


def error_record(event: Event) -> dict[str, Any]:
    """The record for a failed call (see :func:`is_error`); :func:`redact_event` it first."""
    message = event.get("error_message") or ""
    status = event.get("http_status")
    verdict = classify_event_error(message, None if status is None else int(status), event.get("error_type"))
    return {
        "event_id": event["event_id"],
        "session_id": event["session_id"],
        "ts": event["ts"],
        "kind": KINDS[event["type"]],
        "category": verdict.category,
        "reason": verdict.reason,
        "should_retry": verdict.should_retry,
        "max_retries": verdict.max_retries,
        "backoff_seconds": verdict.backoff_seconds,
        "http_status": status,
        "error_type": event.get("error_type") or verdict.error_type,
        "model": event.get("model"),
        "provider": event.get("provider"),
        "tool_name": event.get("tool_name"),
        "message": message,
    }
