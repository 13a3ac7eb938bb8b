"""What the worker does with one batch of Kafka records, as a pure function.

:func:`process_records` decodes and validates every event, folds each session's
events into its :class:`SessionStats` (exactly once, see ``sessions.py``) and
returns the rows for DuckDB, the dead letters, the updated session states to
write back to the table, and the sessions that ended or changed after ending
(published to ``hermes.sessions``). The Faust agent around it stays thin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hermes_stream.events import Event
from hermes_stream.records import DeadLetter, Origin, decode_record
from hermes_stream.schema import API_CALLS, DEAD_LETTERS, SESSIONS, TOOL_RESULTS
from hermes_stream.sessions import SessionStats
from hermes_stream.store import SinkBatch

Lookup = Callable[[str], SessionStats | None]


@dataclass
class BatchResult:
    """Everything one batch of records produced."""

    sink: SinkBatch = field(default_factory=SinkBatch)
    sessions: dict[str, SessionStats] = field(default_factory=dict)
    finalised: list[SessionStats] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    events: int = 0


def process_records(
    records: Iterable[tuple[bytes | None, Origin]], lookup: Lookup, max_bytes: int
) -> BatchResult:
    """Turn records into rows, session updates and dead letters."""
    result = BatchResult()
    changed_after_end: dict[str, SessionStats] = {}
    seen: set[str] = set()
    for value, origin in records:
        events, dead = decode_record(value, origin, max_bytes)
        result.dead_letters.extend(dead)
        result.events += len(events)
        for session_id, session_events in _by_session(events).items():
            stats = result.sessions.get(session_id) or lookup(session_id) or SessionStats(session_id)
            result.sessions[session_id] = stats
            if stats.apply_record(session_events, origin.partition, origin.offset) and stats.ended:
                changed_after_end[session_id] = stats
        _add_event_rows(result.sink, events, seen)
    for letter in result.dead_letters:
        result.sink.add(DEAD_LETTERS, DEAD_LETTERS.row(letter.to_dict()))
    for stats in result.sessions.values():
        result.sink.add(SESSIONS, SESSIONS.row(stats.row()))
    result.finalised = list(changed_after_end.values())
    return result


def _by_session(events: list[Event]) -> dict[str, list[Event]]:
    groups: dict[str, list[Event]] = {}
    for event in events:
        groups.setdefault(event["session_id"], []).append(event)
    return groups


def _add_event_rows(sink: SinkBatch, events: list[Event], seen: set[str]) -> None:
    for event in events:
        event_id = event["event_id"]
        if event_id in seen:
            continue  # the same event twice in one batch: one row
        seen.add(event_id)
        kind = event["type"]
        if kind == "api_call":
            sink.add(API_CALLS, API_CALLS.row(event))
        elif kind == "tool_result":
            sink.add(TOOL_RESULTS, TOOL_RESULTS.row(event))
