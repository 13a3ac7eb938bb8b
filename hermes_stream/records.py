"""Turning one Kafka record into events, and bad input into dead letters.

A record holds one event (a JSON object) or many (a JSON array of objects).
Each element is validated on its own: one bad event becomes a
:class:`DeadLetter` while the rest of the record goes on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from hermes_stream import codec
from hermes_stream.events import Event, decode_valid, validate_event
from hermes_stream.exceptions import InvalidEvent, JSONError

#: Bytes of a bad payload kept in the dead letter (the size is always recorded).
MAX_DEAD_PAYLOAD = 64 * 1024


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a record came from; with the index in its array it names an event uniquely."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Input that could not be processed, with the reason and (a prefix of) the payload."""

    origin: Origin
    index: int | None
    reason: str
    payload: bytes
    payload_bytes: int
    ts: float

    @property
    def dlq_id(self) -> str:
        """Stable across replays of the same record, so the sink can upsert by it."""
        o = self.origin
        return f"{o.topic}:{o.partition}:{o.offset}:{'' if self.index is None else self.index}"

    def to_dict(self) -> dict[str, Any]:
        o = self.origin
        return {
            "dlq_id": self.dlq_id,
            "ts": self.ts,
            "reason": self.reason,
            "payload": self.payload.decode("utf-8", "replace"),
            "payload_bytes": self.payload_bytes,
            "source_topic": o.topic,
            "source_partition": o.partition,
            "source_offset": o.offset,
            "event_index": self.index,
        }


def dead_letter(origin: Origin, index: int | None, reason: str, payload: bytes) -> DeadLetter:
    return DeadLetter(origin, index, reason, payload[:MAX_DEAD_PAYLOAD], len(payload), time.time())


def decode_record(
    value: bytes | None, origin: Origin, max_bytes: int
) -> tuple[list[Event], list[DeadLetter]]:
    """Return the valid events of a record and a dead letter for each bad part."""
    if not value:
        return [], [dead_letter(origin, None, "empty record", b"")]
    if len(value) > max_bytes:
        reason = f"oversized payload: {len(value)} bytes; the limit is {max_bytes}"
        return [], [dead_letter(origin, None, reason, value)]
    events = decode_valid(value)
    if events is not None:  # the usual case: no event needs a closer look
        return events, []
    try:
        decoded = codec.loads(value)
    except JSONError as exc:
        return [], [dead_letter(origin, None, str(exc), value)]
    if isinstance(decoded, dict):
        try:
            return [validate_event(decoded)], []
        except InvalidEvent as exc:
            return [], [dead_letter(origin, None, f"invalid event: {exc}", value)]
    if not isinstance(decoded, list):
        reason = "a record must hold a JSON object or an array of objects"
        return [], [dead_letter(origin, None, reason, value)]
    return _decode_array(decoded, origin)


def _decode_array(items: list[Any], origin: Origin) -> tuple[list[Event], list[DeadLetter]]:
    events: list[Event] = []
    dead: list[DeadLetter] = []
    for index, item in enumerate(items):
        try:
            events.append(validate_event(item))
        except InvalidEvent as exc:
            dead.append(dead_letter(origin, index, f"invalid event: {exc}", codec.dumps(item)))
    return events, dead
