"""What reached a MemorySender, grouped the way the ordering tests compare it."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from hermes_stream.sender import MemorySender

Event = dict[str, Any]


def delivered(sender: MemorySender) -> list[Event]:
    """Every event in every record the sender received, in delivery order."""
    return [event for _, record in sender.records for event in json.loads(record.value)]


def seqs_by_session(events: Iterable[Event]) -> dict[str, list[int]]:
    """Each session's ``seq`` numbers in the order given."""
    out: dict[str, list[int]] = defaultdict(list)
    for event in events:
        out[event["session_id"]].append(event["seq"])
    return dict(out)
