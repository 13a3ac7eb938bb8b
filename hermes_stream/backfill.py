"""``hermes-stream import-hermes``: backfill events from a Hermes ``state.db``.

The database is opened read-only (``mode=ro``) and read table by table:
``sessions``, ``messages`` and, where present, ``session_model_usage``. Each
table's columns come from ``PRAGMA table_info``, so older schemas that lack
columns still import: a missing count reads as 0, a missing text as absent.

What each source row becomes:

- ``api_call``, one per ``session_model_usage`` row of the session, or, when
  the session has none (older databases), one from the ``sessions`` totals if
  they hold any tokens. These are *aggregates*, not single requests: the
  contract has no field for that, so they carry ``finish_reason="aggregated"``
  (a column the store keeps, so reports can tell them apart) plus the extra
  fields ``aggregated: true`` and, when known, ``api_call_count`` (extra fields
  are allowed by the contract). Provider is ``billing_provider`` or
  ``"unknown"``; ``cost_usd`` is ``actual_cost_usd`` when positive, else
  ``estimated_cost_usd`` when positive, else absent.
- ``tool_result``, one per message with role ``tool``. The tool name is the
  message's ``tool_name``, else the name of the call with the same
  ``tool_call_id`` in an earlier assistant message's ``tool_calls``, else
  ``"unknown"``. Its status is ``error`` when :func:`tool_error` finds one.
- ``session_end``, one per session with an ``ended_at`` (``end_reason`` from
  the row, or ``"completed"``).

Token semantics: Hermes' usage is "canonical" with ``input_tokens`` counting
uncached input only (its prompt size is ``input + cache_read + cache_write``).
The contract's ``input_tokens`` includes cache reads and writes, so they are
always added. ``reasoning_tokens`` must be a subset of ``output_tokens``: when a
row has more reasoning than output tokens they were counted apart, and are added.

Timestamps may be epoch seconds (or milliseconds, above 1e11), numeric
strings, or ISO 8601 strings (naive ones are UTC); see :func:`parse_ts`.
``--since`` keeps sessions *started* on or after that UTC day; sessions without
a readable start are then skipped too.

Idempotence: every ``event_id`` is a UUIDv5 of ``("hermes-import", table,
row key)`` (session id; message ``id`` or rowid; the usage table's key
columns), so importing the same database twice yields the same ids and the
pipeline's dedupe by ``event_id`` makes the second import a no-op. (A session
imported while still running keeps the totals it had then; and one imported
from ``sessions`` totals, then again after Hermes added ``session_model_usage``
rows for it, gets new ids.)

Events go out per session, in ``ts`` order with ``session_end`` last. Each is
checked with :func:`validate_event`; invalid ones are counted, reported and not
published, and the command then exits 1 (as ``emit`` does).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import re
import sqlite3
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import click

from hermes_stream.events import SCHEMA_VERSION, Event, validate_event
from hermes_stream.exceptions import HermesStreamError, InvalidEvent
from hermes_stream.settings import Settings

NAMESPACE: Final = uuid.UUID("5b0c6f8e-2d1a-4c77-9a53-6f1f3c9e8a10")
ERROR_MESSAGE_CHARS: Final = 500
PROGRESS_EVERY: Final = 100
USAGE_KEY: Final = ("session_id", "model", "billing_provider", "billing_base_url", "billing_mode", "task")

Row = dict[str, Any]


class BackfillError(HermesStreamError):
    """The file to import is missing, unreadable, or not a Hermes state.db."""


@dataclass
class ImportSummary:
    """What an import read and produced."""

    sessions: int = 0
    api_calls: int = 0
    tool_results: int = 0
    session_ends: int = 0
    invalid: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    def count(self, event: Event) -> None:
        name = {"api_call": "api_calls", "tool_result": "tool_results", "session_end": "session_ends"}
        attr = name[event["type"]]
        setattr(self, attr, getattr(self, attr) + 1)

    def line(self) -> str:
        return (
            f"{self.sessions} sessions: {self.api_calls} api_calls, {self.tool_results} tool_results, "
            f"{self.session_ends} session_ends; {self.invalid} invalid, {self.skipped} skipped (--since)"
        )


def open_state_db(path: Path) -> sqlite3.Connection:
    """Open *path* read-only; raise :class:`BackfillError` unless it has a ``sessions`` table."""
    if not path.is_file():
        raise BackfillError(f"{path}: no such file")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackfillError(f"{path}: cannot open: {exc}") from exc
    conn.row_factory = sqlite3.Row
    try:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='sessions'").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise BackfillError(f"{path}: not a Hermes state.db (not an SQLite database: {exc})") from exc
    if found is None:
        conn.close()
        raise BackfillError(f"{path}: not a Hermes state.db (no sessions table)")
    return conn


def read_hermes(
    path: Path,
    since: dt.date | None = None,
    summary: ImportSummary | None = None,
    on_progress: Callable[[ImportSummary], object] | None = None,
) -> Iterator[Event]:
    """The valid events of the state.db at *path*; *summary* counts what was read.

    The file is checked at once (errors raise here, not on first iteration).
    *on_progress* gets the summary every :data:`PROGRESS_EVERY` sessions.
    """
    conn = open_state_db(path)
    return _events(conn, since, summary or ImportSummary(), on_progress)


def _events(
    conn: sqlite3.Connection,
    since: dt.date | None,
    summary: ImportSummary,
    on_progress: Callable[[ImportSummary], object] | None,
) -> Iterator[Event]:
    start = dt.datetime.combine(since, dt.time(), dt.UTC).timestamp() if since else None
    try:
        usage_cols = _columns(conn, "session_model_usage")
        message_cols = _columns(conn, "messages")
        for session in _select(conn, "sessions", _columns(conn, "sessions"), ""):
            started = parse_ts(session.get("started_at"))
            if start is not None and (started is None or started < start):
                summary.skipped += 1
                continue
            usage = _select(conn, "session_model_usage", usage_cols, "WHERE session_id = ?", session["id"])
            messages = _select(conn, "messages", message_cols, "WHERE session_id = ?", session["id"])
            yield from _checked(session_events(session, usage, messages), summary)
            summary.sessions += 1
            if on_progress and summary.sessions % PROGRESS_EVERY == 0:
                on_progress(summary)
    except sqlite3.Error as exc:
        raise BackfillError(f"cannot read the state.db: {exc}") from exc
    finally:
        conn.close()


def _checked(events: list[Event], summary: ImportSummary) -> Iterator[Event]:
    for event in events:
        try:
            validate_event(event)
        except InvalidEvent as exc:
            summary.invalid += 1
            summary.problems.append(f"{event['type']} of session {event['session_id']}: {exc}")
            continue
        summary.count(event)
        yield event


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row["name"] for row in conn.execute(f"PRAGMA table_info({table})")]


def _select(conn: sqlite3.Connection, table: str, columns: list[str], where: str, *args: Any) -> list[Row]:
    if not columns or (where and "session_id" not in columns):
        return []
    # rowid: a stable key for tables without an ``id`` column (never a WITHOUT ROWID table here).
    names = ", ".join(["rowid AS _rowid", *(f'"{c}"' for c in columns)])
    return [dict(r) for r in conn.execute(f"SELECT {names} FROM {table} {where} ORDER BY rowid", args)]


def session_events(session: Row, usage: list[Row], messages: list[Row]) -> list[Event]:
    """The events of one Hermes session (not yet validated), in ``ts`` order, ``session_end`` last."""
    sid = str(session["id"])
    base = {"schema_version": SCHEMA_VERSION, "session_id": sid, "source": session.get("source") or "hermes"}
    started, ended = parse_ts(session.get("started_at")), parse_ts(session.get("ended_at"))
    fallback_ts = ended if ended is not None else started
    events = [_api_call(base, row, session, fallback_ts) for row in usage]
    if not usage and _tokens(session):
        events.append(_api_call(base, session, session, fallback_ts, table="sessions"))
    events += _tool_results(base, messages, started)
    if ended is not None:
        events.append(
            {
                **base,
                "event_id": event_id("sessions", sid),
                "type": "session_end",
                "ts": ended,
                "end_reason": session.get("end_reason") or "completed",
                "model": session.get("model") or None,
                "provider": session.get("billing_provider") or None,
                "started_at": started,
                "message_count": _count(session.get("message_count")) if "message_count" in session else None,
            }
        )
    events.sort(key=lambda e: (e["type"] == "session_end", e["ts"] if e["ts"] is not None else 0.0))
    return events


def _api_call(base: Event, row: Row, session: Row, ts: float | None, table: str = "usage") -> Event:
    cache_read, cache_write = _count(row.get("cache_read_tokens")), _count(row.get("cache_write_tokens"))
    output, reasoning = _count(row.get("output_tokens")), _count(row.get("reasoning_tokens"))
    if table == "usage":
        key = event_id("session_model_usage", *(str(row.get(c) or "") for c in USAGE_KEY))
        ts = parse_ts(row.get("last_seen")) or parse_ts(row.get("first_seen")) or ts
    else:
        key = event_id("sessions-usage", str(session["id"]))
    event = {
        **base,
        "event_id": key,
        "type": "api_call",
        "ts": ts,
        "model": row.get("model") or session.get("model") or "unknown",
        "provider": row.get("billing_provider") or session.get("billing_provider") or "unknown",
        "input_tokens": _count(row.get("input_tokens")) + cache_read + cache_write,
        "output_tokens": output + reasoning if reasoning > output else output,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
        "reasoning_tokens": reasoning,
        "status": "ok",
        "cost_usd": _amount(row.get("actual_cost_usd")) or _amount(row.get("estimated_cost_usd")),
        "finish_reason": "aggregated",
        "aggregated": True,
    }
    calls = _count(row.get("api_call_count"))
    if calls:
        event["api_call_count"] = calls
    return event


def _tool_results(base: Event, messages: list[Row], started: float | None) -> list[Event]:
    names: dict[str, str] = {}
    events: list[Event] = []
    for message in messages:
        if message.get("role") == "assistant":
            names.update(_call_names(message.get("tool_calls")))
        if message.get("role") != "tool":
            continue
        call_id = message.get("tool_call_id") or None
        content = message.get("content") or ""
        problem = tool_error(content)
        key = message["id"] if message.get("id") is not None else message["_rowid"]
        events.append(
            {
                **base,
                "event_id": event_id("messages", base["session_id"], str(key)),
                "type": "tool_result",
                "ts": parse_ts(message.get("timestamp")) or started,
                "tool_name": message.get("tool_name") or names.get(call_id or "") or "unknown",
                "tool_call_id": call_id,
                "status": "error" if problem else "ok",
                "error_message": problem,
            }
        )
    return events


def _call_names(raw: object) -> dict[str, str]:
    """``{tool_call_id: tool name}`` from an assistant message's ``tool_calls`` JSON."""
    try:
        calls = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    names: dict[str, str] = {}
    for call in calls if isinstance(calls, list) else []:
        if isinstance(call, dict) and call.get("id"):
            function = call.get("function")
            name = function.get("name") if isinstance(function, dict) else call.get("name")
            if isinstance(name, str) and name:
                names[str(call["id"])] = name
    return names


_EXIT_CODE = re.compile(r"exit(?:ed with)?[ _]code[\"']?\s*[:=]?\s*(-?\d+)", re.IGNORECASE)


def tool_error(content: str) -> str | None:
    """The error message (at most 500 characters) if a tool's output reports a failure, else None.

    A heuristic on Hermes' tool outputs: text starting with ``Error`` or
    ``error:``; a Python traceback; a non-zero ``exit code`` / ``exit_code``;
    or a JSON object with a non-empty ``error``, ``"success": false`` or
    ``"status": "error"``.
    """
    text = content.strip()
    data = _json_object(text)
    if data is not None:
        error = data.get("error")
        if error:
            return (error if isinstance(error, str) else text)[:ERROR_MESSAGE_CHARS]
        failed = data.get("success") is False or data.get("status") == "error"
        code = data.get("exit_code", data.get("returncode"))
        if failed or (isinstance(code, int) and not isinstance(code, bool) and code != 0):
            return text[:ERROR_MESSAGE_CHARS]
        return None
    exit_code = _EXIT_CODE.search(text)
    if (
        text.startswith("Error")
        or text[:6].lower() == "error:"
        or "Traceback (most recent call last)" in text
        or (exit_code is not None and int(exit_code.group(1)) != 0)
    ):
        return text[:ERROR_MESSAGE_CHARS]
    return None


def _json_object(text: str) -> dict[str, Any] | None:
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def event_id(table: str, *key: str) -> str:
    """A stable id for the event made from one source row: same row, same id."""
    return str(uuid.uuid5(NAMESPACE, "\x1f".join(("hermes-import", table, *key))))


def parse_ts(value: object) -> float | None:
    """Seconds since the epoch from epoch seconds/milliseconds or an ISO 8601 string; None if unreadable."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            try:
                parsed = dt.datetime.fromisoformat(text)
            except ValueError:
                return None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            return parsed.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return value / 1000 if value > 1e11 else float(value)
    return None


def _count(value: object) -> int:
    amount = _amount(value)
    return int(amount) if amount else 0


def _amount(value: object) -> float | None:
    """A positive finite number from a column, else None."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return float(value)
    return None


def _tokens(row: Row) -> int:
    names = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    return sum(_count(row.get(n)) for n in names)


@click.command("import-hermes")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="DATE",
    default=None,
    help="Only sessions started on or after this day (YYYY-MM-DD, UTC).",
)
@click.option("--dry-run", is_flag=True, help="Read and validate only; publish nothing.")
@click.pass_context
def import_hermes_command(ctx: click.Context, path: Path, since: dt.datetime | None, dry_run: bool) -> None:
    """Backfill events from a Hermes state.db (opened read-only) into hermes.events.

    Event ids derive from the source rows, so importing twice changes nothing.
    Invalid events are reported on stderr and the command exits 1; every
    valid one is still published.
    """
    settings = ctx.obj if isinstance(ctx.obj, Settings) else Settings.from_env()
    summary = ImportSummary()
    events = read_hermes(path, since.date() if since else None, summary, _show_progress)
    if dry_run:
        for _ in events:
            pass
        outcome = "dry run: nothing published"
    else:
        from hermes_stream.broker import broker_for
        from hermes_stream.publish import publish_events

        with broker_for(settings) as live:
            stats = asyncio.run(publish_events(live, events))
        outcome = f"{stats.sent} sent, {stats.emitted - stats.sent} spooled"
    for problem in summary.problems:
        click.echo(f"invalid: {problem}", err=True)
    click.echo(f"imported {summary.line()}; {outcome}", err=True)
    if summary.invalid:
        sys.exit(1)


def _show_progress(summary: ImportSummary) -> None:
    click.echo(f"  sessions read: {summary.sessions:,}", err=True)
