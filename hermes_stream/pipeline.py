"""What the worker does with Kafka records, as plain Python.

A :class:`Fold` takes records one at a time: it decodes and validates every
event, folds each session's events into its :class:`SessionStats` (exactly
once, see ``sessions.py``) and collects the rows for DuckDB (an ``errors``
row per failed call, see ``error_records.py``) and the dead letters; valid
events go to the sink as JSON, mostly the record's own bytes (re-encoded
when a secret was redacted from a message). :meth:`Fold.take` hands
everything collected so far over as one :class:`BatchResult`: the rows, the
updated session states to write back to the table, the sessions that ended,
changed after ending, or were met again in a replayed record (published to
``hermes.sessions``), and the ``session_budget`` alerts of sessions whose
cost passed the budget. The Faust agent around it stays thin.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hermes_stream import codec
from hermes_stream.alerts import Alert, AlertConfig, AlertRules, budget_alert
from hermes_stream.error_records import error_record, is_error, redact_event
from hermes_stream.events import Event
from hermes_stream.pricing import PRICING_VERSION, price_of
from hermes_stream.records import DeadLetter, Origin, decode_record
from hermes_stream.schema import DEAD_LETTERS, ERRORS, MODEL_PRICES, SESSIONS, SKILL_INVOCATIONS
from hermes_stream.sessions import SessionStats
from hermes_stream.skills import invocation_rows
from hermes_stream.store import SinkBatch

Lookup = Callable[[str], SessionStats | None]


@dataclass
class BatchResult:
    """Everything a run of records produced."""

    sink: SinkBatch = field(default_factory=SinkBatch)
    sessions: dict[str, SessionStats] = field(default_factory=dict)
    finalised: list[SessionStats] = field(default_factory=list)
    #: Each touched session's ``sessions`` row and ``skill_invocations`` rows, as
    #: written to DuckDB (a finalised session's are published as they are).
    session_rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    skill_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    events: int = 0
    records: int = 0


class Fold:
    """Folds records in as they come; :meth:`take` returns what they produced."""

    def __init__(self, lookup: Lookup, max_bytes: int, alerts: AlertConfig | None = None) -> None:
        self.lookup = lookup
        self.max_bytes = max_bytes
        self.alerts = alerts or AlertConfig()
        self.rules = AlertRules(self.alerts)
        #: Sessions not ended, with the wall-clock time an event of theirs was last folded.
        self.active: dict[str, float] = {}
        self._priced: set[tuple[str, str]] = set()
        self._errors_out: list[dict[str, Any]] = []
        self._alerts_out: list[Alert] = []
        #: The sessions of the last take still open, as written back to the table:
        #: a session goes on over many takes, and decoding its state costs more
        #: than folding most records.
        self._recent: dict[str, SessionStats] = {}
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
        redacted = self._inspect(events)
        result.events += len(events)
        result.records += 1
        sessions = result.sessions
        now = time.time()
        for session_id, session_events in _by_session(events).items():
            stats = self._session(session_id) or SessionStats(session_id)
            sessions[session_id] = stats
            # A replayed record (after a crash) finds its session already folded,
            # but maybe never published: an ended session goes out again.
            replayed = stats.has_applied(origin.partition, origin.offset)
            changed = stats.apply_record(session_events, origin.partition, origin.offset)
            stats.seen_at = now
            if stats.ended:
                self.active.pop(session_id, None)
                if changed or replayed:
                    self._changed_after_end[session_id] = stats
            else:
                self.active[session_id] = now
        self._add_events(value, events, clean=not dead and not redacted)
        return len(events)

    def _inspect(self, events: list[Event]) -> bool:
        """Redact messages, classify failed calls, run the alert rules, note new models.

        Returns True if a message was redacted (the record must be re-encoded).
        """
        redacted = False
        sink = self.result.sink
        for event in events:
            if "error_message" in event:
                redacted |= redact_event(event)
            record = None
            if is_error(event):
                record = error_record(event)
                sink.add(ERRORS, ERRORS.row(record))
                self._errors_out.append(record)
            if event["type"] == "api_call":
                self._alerts_out += self.rules.observe(event, record)
                model = (event["provider"], event["model"])
                if model not in self._priced:  # the model_prices row, once per process
                    self._priced.add(model)
                    sink.add(MODEL_PRICES, MODEL_PRICES.row(_price_row(*model)))
        return redacted

    def expire_idle(self, now: float, timeout: float) -> int:
        """End the sessions with no event folded for *timeout* seconds; return how many."""
        idle = [sid for sid, seen in self.active.items() if now - seen >= timeout]
        for session_id in idle:
            del self.active[session_id]
            stats = self._session(session_id)
            if stats is None or stats.ended:
                continue
            stats.expire("idle_timeout")
            self.result.sessions[session_id] = stats
            self._changed_after_end[session_id] = stats
        return len(idle)

    def _session(self, session_id: str) -> SessionStats | None:
        return self.result.sessions.get(session_id) or self._recent.get(session_id) or self.lookup(session_id)

    def forget(self) -> None:
        """Drop the sessions kept from the last take: the table may now hold newer states (a rebalance)."""
        self._recent = {}

    def take_outbox(self) -> tuple[list[dict[str, Any]], list[Alert]]:
        """The error records and alerts of the records added since the last call, to publish now."""
        out = self._errors_out, self._alerts_out
        self._errors_out, self._alerts_out = [], []
        return out

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
        for session_id, stats in result.sessions.items():
            row = result.session_rows[session_id] = stats.row()
            result.sink.add(SESSIONS, SESSIONS.row(row))
            skill_rows = result.skill_rows[session_id] = invocation_rows(stats)
            for skill_row in skill_rows:
                result.sink.add(SKILL_INVOCATIONS, SKILL_INVOCATIONS.row(skill_row))
            if not stats.budget_alerted and stats.last_event_at is not None:
                alert = budget_alert(stats.session_id, stats.cost_usd, stats.last_event_at, self.alerts)
                if alert is not None:
                    stats.budget_alerted = True
                    result.alerts.append(alert)
        result.finalised = list(self._changed_after_end.values())
        self._recent = {sid: stats for sid, stats in result.sessions.items() if not stats.ended}
        self._start()
        return result


def process_records(
    records: Iterable[tuple[bytes | None, Origin]],
    lookup: Lookup,
    max_bytes: int,
    alerts: AlertConfig | None = None,
) -> BatchResult:
    """Turn records into rows, session updates, dead letters and budget alerts."""
    fold = Fold(lookup, max_bytes, alerts)
    for value, origin in records:
        fold.add(value, origin)
    return fold.take()


def _price_row(provider: str, model: str) -> dict[str, Any]:
    """The ``model_prices`` row of a model, priced or not (``report models`` lists the latter)."""
    price = price_of(provider, model)
    row: dict[str, Any] = {
        "price_key": f"{provider}/{model}",
        "provider": provider,
        "model": model,
        "priced": price is not None,
        "pricing_version": PRICING_VERSION,
    }
    if price is not None:
        row |= {
            "input_mtok": price.input_mtok,
            "output_mtok": price.output_mtok,
            "cache_read_mtok": price.cache_read_mtok,
            "cache_write_mtok": price.cache_write_mtok,
        }
    return row


def _by_session(events: list[Event]) -> dict[str, list[Event]]:
    groups: dict[str, list[Event]] = {}
    for event in events:
        groups.setdefault(event["session_id"], []).append(event)
    return groups
