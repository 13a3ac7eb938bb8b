"""Skill invocations: a ``skill_invoked`` event joined with its session.

A session (usually a cron run) keeps the invocations it has seen. Each one's
``skill_invocations`` row keeps the numbers its event carried; once the
session has ended, the missing ones are filled from the session:

* ``completed_at``, ``end_reason``, ``quality_score`` (the session's score);
* ``success``: the session's ``completed`` flag, else ``true`` for an
  ``end_reason`` of ``cron_complete``/``completed`` and ``false`` for
  ``cron_failed``/``failed``/``error``, else unknown (NULL);
* tokens, cost and duration: the session's, split evenly between the
  invocations of the session; a row whose cost came from the session says
  so with ``cost_shared`` when there was more than one invocation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from hermes_stream.events import Event
from hermes_stream.schema import SKILL_INVOCATIONS
from hermes_stream.session_kind import session_kind

if TYPE_CHECKING:
    from hermes_stream.sessions import SessionStats

#: The fields of a ``skill_invoked`` event an invocation keeps.
KEPT: Final = (
    "skill_name",
    "cron_id",
    "skill_version",
    "model",
    "provider",
    "duration_seconds",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "success",
    "end_reason",
    "quality_score",
)
SUCCESS_REASONS: Final = frozenset({"cron_complete", "completed", "complete", "success"})
FAILURE_REASONS: Final = frozenset({"cron_failed", "failed", "error", "cron_error"})


def skill_key(skill_name: str, model: str | None) -> str:
    """The key of a (skill, model) pair: on ``hermes.skill_invocations`` and in the EMA table."""
    return f"{skill_name}|{model or ''}"


def invocation(event: Event) -> dict[str, Any]:
    """What a session keeps of a ``skill_invoked`` event."""
    kept = {name: event[name] for name in KEPT if event.get(name) is not None}
    return {"invocation_id": event["event_id"], "invoked_at": event["ts"], **kept}


def invocation_rows(stats: SessionStats) -> list[dict[str, Any]]:
    """The ``skill_invocations`` rows of a session's invocations."""
    share = len(stats.skills)
    if not share:
        return []
    session = _session_facts(stats, share) if stats.ended else {}
    rows = []
    for kept in stats.skills:
        row: dict[str, Any] = {
            **dict.fromkeys(SKILL_INVOCATIONS.names),
            "invocation_id": kept["invocation_id"],
            "session_id": stats.session_id,
            "invoked_at": kept["invoked_at"],
            **{name: kept.get(name) for name in KEPT if name != "cost_usd"},
            "estimated_cost_usd": kept.get("cost_usd"),
            "cost_shared": False,
        }
        for name, value in session.items():
            if row.get(name) is None:
                row[name] = value
        row["model"] = row["model"] or stats.model
        row["provider"] = row["provider"] or stats.provider
        if kept.get("cost_usd") is None and session.get("estimated_cost_usd") is not None:
            row["cost_shared"] = share > 1
        rows.append(row)
    return rows


def _session_facts(stats: SessionStats, share: int) -> dict[str, Any]:
    """What an invocation takes from its ended session: its share of the numbers, and the outcome."""
    cost = stats.estimated_cost_usd
    wall = stats.wall_time_seconds
    kind = session_kind(stats.tool_counts, stats.tool_errors, stats.api_calls, stats.message_count)
    return {
        "completed_at": stats.ended_at,
        "end_reason": stats.end_reason,
        "success": _success(stats),
        "quality_score": kind.score,
        "duration_seconds": None if wall is None else wall / share,
        "input_tokens": stats.input_tokens // share,
        "output_tokens": stats.output_tokens // share,
        "cache_read_tokens": stats.cache_read_tokens // share,
        "cache_write_tokens": stats.cache_write_tokens // share,
        "estimated_cost_usd": None if cost is None else cost / share,
    }


def _success(stats: SessionStats) -> bool | None:
    if stats.completed is not None:
        return stats.completed
    reason = (stats.end_reason or "").lower()
    if reason in SUCCESS_REASONS:
        return True
    if reason in FAILURE_REASONS:
        return False
    return None
