"""Per-session statistics, folded from events exactly once.

Kafka delivers at least once: after a crash the worker sees records again.
:class:`SessionStats` remembers the last record it applied (partition and
offset; a session always lives on one partition) and the ids of its most
recent events, so a replayed record or a re-sent event is not counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from hermes_stream import codec
from hermes_stream.events import Event
from hermes_stream.exceptions import InvalidEvent
from hermes_stream.pricing import PRICING_VERSION, CostStatus, call_cost
from hermes_stream.session_kind import SessionKind, session_kind
from hermes_stream.skills import invocation

#: How many recent event ids a session remembers to drop producer-side
#: duplicates (a record re-sent after a send that failed but was delivered).
#: The state travels to the changelog with every batch, so it is kept small.
RECENT_IDS = 64


@dataclass(slots=True)
class SessionStats:
    """Counts and token sums of one session, and where its fold has got to."""

    session_id: str
    source: str | None = None
    model: str | None = None
    provider: str | None = None
    started_at: float | None = None
    last_event_at: float | None = None
    ended_at: float | None = None
    end_reason: str | None = None
    completed: bool | None = None
    message_count: int | None = None
    events: int = 0
    api_calls: int = 0
    api_errors: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    skill_invocations: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    models: list[str] = field(default_factory=list)
    tool_counts: dict[str, int] = field(default_factory=dict)
    #: The session's skill invocations, as kept by :func:`hermes_stream.skills.invocation`.
    skills: list[dict[str, Any]] = field(default_factory=list)
    #: Sum of each API call's cost: as reported when the producer sent it, else estimated.
    cost_usd: float = 0.0
    reported_calls: int = 0
    estimated_calls: int = 0
    unpriced_calls: int = 0
    #: Wall-clock time the worker last folded an event of this session (for the idle timeout).
    seen_at: float = 0.0
    budget_alerted: bool = False
    applied_partition: int = -1
    applied_offset: int = -1
    recent_ids: list[str] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    @property
    def cost_status(self) -> CostStatus | None:
        """``unknown`` if any call had no price, ``estimated`` if any was computed, else ``reported``."""
        if self.unpriced_calls:
            return "unknown"
        if self.estimated_calls:
            return "estimated"
        return "reported" if self.reported_calls else None

    @property
    def estimated_cost_usd(self) -> float | None:
        """The calls' cost; None when no call could be priced (never a silent $0)."""
        return self.cost_usd if self.reported_calls or self.estimated_calls else None

    @property
    def total_tokens(self) -> int:
        # input_tokens already includes cache reads and writes, and
        # output_tokens includes reasoning: adding those again double-counts.
        return self.input_tokens + self.output_tokens

    @property
    def wall_time_seconds(self) -> float | None:
        end = self.ended_at if self.ended_at is not None else self.last_event_at
        if end is None or self.started_at is None:
            return None
        return max(0.0, end - self.started_at)

    def to_dict(self) -> dict[str, Any]:
        # Shallow on purpose: dataclasses.asdict deep-copies recent_ids, and
        # this runs for every touched session in every batch.
        return {name: getattr(self, name) for name in _FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionStats:
        """Rebuild from :meth:`to_dict`; keys an older version wrote are mapped or dropped."""
        if "reported_cost_usd" in data:
            data = {**data, "cost_usd": data["reported_cost_usd"]}
        return cls(**{k: v for k, v in data.items() if k in _FIELD_SET})

    def has_applied(self, partition: int, offset: int) -> bool:
        """True if the record at (partition, offset) was already folded in."""
        return partition == self.applied_partition and offset <= self.applied_offset

    def apply_record(self, events: list[Event], partition: int, offset: int) -> bool:
        """Fold this session's events from one record; False if that changed no counts.

        Nothing changes when the record was applied before, or when every event in
        it was (a producer's retry).
        """
        if self.has_applied(partition, offset):
            return False
        recent = set(self.recent_ids)
        changed = False
        for event in events:
            event_id = event["event_id"]
            if event_id in recent:
                continue
            recent.add(event_id)
            self.recent_ids.append(event_id)
            self.apply(event)
            changed = True
        del self.recent_ids[:-RECENT_IDS]
        self.applied_partition, self.applied_offset = partition, offset
        return changed

    def apply(self, event: Event) -> None:
        """Fold one event in (no duplicate check: see :meth:`apply_record`)."""
        ts = event["ts"]
        self.events += 1
        if self.source is None:
            self.source = event["source"]
        if self.started_at is None or ts < self.started_at:
            self.started_at = ts
        if self.last_event_at is None or ts > self.last_event_at:
            self.last_event_at = ts
        kind = event["type"]
        if kind == "api_call":
            self._apply_api_call(event)
        elif kind == "tool_result":
            self.tool_calls += 1
            self.tool_errors += event["status"] == "error"
            name = event["tool_name"]
            self.tool_counts[name] = self.tool_counts.get(name, 0) + 1
        elif kind == "session_end":
            self._apply_session_end(event)
        elif kind == "skill_invoked":
            self.skill_invocations += 1
            self.skills.append(invocation(event))

    def _apply_api_call(self, event: Event) -> None:
        self.api_calls += 1
        self.api_errors += event["status"] == "error"
        model, provider = event["model"], event["provider"]
        self.model, self.provider = model, provider
        if model not in self.models:
            self.models.append(model)
        get = event.get  # spelled out rather than looped: this runs for every API call
        given = int(event["input_tokens"])
        output = int(event["output_tokens"])
        cache_read = int(get("cache_read_tokens") or 0)
        cache_write = int(get("cache_write_tokens") or 0)
        self.input_tokens += given
        self.output_tokens += output
        self.cache_read_tokens += cache_read
        self.cache_write_tokens += cache_write
        self.reasoning_tokens += int(get("reasoning_tokens") or 0)
        reported = get("cost_usd")
        if reported is not None:
            self.cost_usd += reported
            self.reported_calls += 1
            return
        try:
            cost = call_cost(provider, model, given, output, cache_read, cache_write, ts=event["ts"])
        except InvalidEvent:  # more cache tokens than input tokens: no honest price
            cost = None
        if cost is None:
            self.unpriced_calls += 1
        else:
            self.cost_usd += cost
            self.estimated_calls += 1

    def _apply_session_end(self, event: Event) -> None:
        self.ended_at = event["ts"]
        self.end_reason = event["end_reason"]
        self.completed = event.get("completed")
        self.message_count = event.get("message_count")
        self.model = event.get("model") or self.model
        self.provider = event.get("provider") or self.provider
        started = event.get("started_at")
        if started is not None and (self.started_at is None or started < self.started_at):
            self.started_at = started

    def expire(self, reason: str = "idle_timeout") -> None:
        """End a session that stopped sending events, at its last event."""
        self.ended_at = self.last_event_at
        self.end_reason = reason

    def row(self) -> dict[str, Any]:
        """The ``sessions`` row; the kind and quality columns once the session has ended."""
        kind = (
            session_kind(self.tool_counts, self.tool_errors, self.api_calls, self.message_count).to_dict()
            if self.ended
            else dict.fromkeys(_KIND_COLUMNS)
        )
        return {
            **kind,
            **{
                "session_id": self.session_id,
                "source": self.source,
                "status": "ended" if self.ended else "active",
                "model": self.model,
                "provider": self.provider,
                "started_at": self.started_at,
                "last_event_at": self.last_event_at,
                "ended_at": self.ended_at,
                "wall_time_seconds": self.wall_time_seconds,
                "end_reason": self.end_reason,
                "completed": self.completed,
                "message_count": self.message_count,
                "events": self.events,
                "api_calls": self.api_calls,
                "api_errors": self.api_errors,
                "tool_calls": self.tool_calls,
                "tool_errors": self.tool_errors,
                "skill_invocations": self.skill_invocations,
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "cache_read_tokens": self.cache_read_tokens,
                "cache_write_tokens": self.cache_write_tokens,
                "reasoning_tokens": self.reasoning_tokens,
                "total_tokens": self.total_tokens,
                "models": list(self.models),
                "tool_counts": codec.dumps(self.tool_counts).decode(),
                "estimated_cost_usd": self.estimated_cost_usd,
                "cost_status": self.cost_status,
                "pricing_version": PRICING_VERSION if self.estimated_calls or self.unpriced_calls else None,
            },
        }


_FIELDS = tuple(f.name for f in fields(SessionStats))
_KIND_COLUMNS = tuple(f.name for f in fields(SessionKind))
_FIELD_SET = frozenset(_FIELDS)
