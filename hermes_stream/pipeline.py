"""What the worker does with Kafka records, as plain Python.

A :class:`Fold` takes records one at a time: it decodes and validates every
event, folds each session's events into its :class:`SessionStats` (exactly
once, see ``sessions.py``) and collects the rows for DuckDB and the dead
letters; valid events go to the sink as JSON, mostly the record's own
bytes. :meth:`Fold.take` hands everything collected so far over as one
:class:`BatchResult`: the rows, the updated session states to write back to
the table, and the sessions that ended, changed after ending, or were met
again in a replayed record (published to ``hermes.sessions``). The Faust
agent around it stays thin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hermes_stream import codec
from hermes_stream.events import Event
from hermes_stream.records import DeadLetter, Origin, decode_record
from hermes_stream.schema import DEAD_LETTERS, SESSIONS
from hermes_stream.sessions import SessionStats
from hermes_stream.store import SinkBatch

Lookup = Callable[[str], SessionStats | None]


@dataclass
class BatchResult:
    """Everything a run of records produced."""

    sink: SinkBatch = field(default_factory=SinkBatch)
    sessions: dict[str, SessionStats] = field(default_factory=dict)
    finalised: list[SessionStats] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    events: int = 0
    records: int = 0


class Fold:
    """Folds records in as they come; :meth:`take` returns what they produced."""

    def __init__(self, lookup: Lookup, max_bytes: int) -> None:
        self.lookup = lookup
        self.max_bytes = max_bytes
        self._start()

    def _start(self) -> None:
        self.result = BatchResult()
        self._changed_after_end: dict[str, SessionStats] = {}
        self._seen: set[str] = set()

    def add(self, value: bytes | None, origin: Origin) -> int:
        """Fold one record in; return how many valid events it held."""
        result = self.result
        events, dead = decode_record(value, origin, self.max_bytes)
        result.dead_letters.extend(dead)
        result.events += len(events)
        result.records += 1
        sessions = result.sessions
        for session_id, session_events in _by_session(events).items():
            stats = sessions.get(session_id) or self.lookup(session_id) or SessionStats(session_id)
            sessions[session_id] = stats
            # A replayed record (after a crash) finds its session already folded,
            # but maybe never published: an ended session goes out again.
            replayed = stats.has_applied(origin.partition, origin.offset)
            changed = stats.apply_record(session_events, origin.partition, origin.offset)
            if stats.ended and (changed or replayed):
                self._changed_after_end[session_id] = stats
        self._add_events(value, events, clean=not dead)
        return len(events)

    def _add_events(self, value: bytes | None, events: list[Event], clean: bool) -> None:
        """Queue the record's events for the sink, each event id once per take."""
        if not events or value is None:
            return
        seen = self._seen
        fresh = []
        for event in events:
            event_id = event["event_id"]
            if event_id not in seen:  # the same event twice in one write: one row
                seen.add(event_id)
                fresh.append(event)
        if clean and len(fresh) == len(events) and value.lstrip().startswith(b"["):
            self.result.sink.add_events(value, len(events))  # the record as it came
        elif fresh:
            self.result.sink.add_events(codec.dumps(fresh), len(fresh))

    def take(self) -> BatchResult:
        """Everything folded in since the last take, with one row per touched session."""
        result = self.result
        for letter in result.dead_letters:
            result.sink.add(DEAD_LETTERS, DEAD_LETTERS.row(letter.to_dict()))
        for stats in result.sessions.values():
            result.sink.add(SESSIONS, SESSIONS.row(stats.row()))
        result.finalised = list(self._changed_after_end.values())
        self._start()
        return result


def process_records(
    records: Iterable[tuple[bytes | None, Origin]], lookup: Lookup, max_bytes: int
) -> BatchResult:
    """Turn records into rows, session updates and dead letters."""
    fold = Fold(lookup, max_bytes)
    for value, origin in records:
        fold.add(value, origin)
    return fold.take()


def _by_session(events: list[Event]) -> dict[str, list[Event]]:
    groups: dict[str, list[Event]] = {}
    for event in events:
        groups.setdefault(event["session_id"], []).append(event)
    return groups
