"""Warm templates: the tool calls of a good session, kept to start new sessions warm.

A template's *seed* is a list of OpenAI-format chat messages taken from a
successful session's captured tool results (``tool_results.args`` and
``result``, recorded only with content capture on in the producer): for each
tool call, the assistant message with its ``tool_calls``, then the ``tool``
message with the result. :func:`inject` puts a seed into a new conversation::

    capture(db, "sess_1", tags=["python"])          # templates capture sess_1
    best = provision(db, category="coding", task_hint="fix a failing test")
    messages = inject(best, [system_message, user_message])

Decisions:

* **Capture** refuses an unknown session, one that has not ended, one with
  fewer than 3 tool calls, and one that is not successful, saying which and
  with the numbers. The seed keeps the session's tool calls in time order,
  skipping a call that failed (``status`` not ``ok``), whose result was not
  captured (NULL: content capture was off), is shorter than
  :data:`MIN_RESULT_CHARS`, or reads as an error: a tool that reports its
  failure as output, recognised by a result that starts with ``Error:``,
  ``SomeError:``, ``SomeException:``, ``fatal:`` or a Python traceback. The
  earliest ``max_messages // 2`` usable calls are kept, so a seed never has
  more than *max_messages* messages. A session without a usable call is
  refused too: an empty seed is no template.
* **Redaction**: every result and every string inside the arguments goes
  through :func:`~hermes_stream.redact.redact`, and an argument named like a
  secret (``api_key``, ``password``, ``Authorization``…) loses its whole value.
  The producer redacts too: this is defence in depth.
* **Names**: by default ``{category}-{session_id[:12]}``, with ``-2``, ``-3``…
  when taken; a name given explicitly that is taken is refused.
* **Provisioning** hands out the best-scored template of a category (or of
  all), the newest on a tie, and records a ``template_provisions`` row with
  its time, the template's category and the task hint. ``provisions`` counts a
  template's rows since it was created; deleting a template keeps its rows,
  as history.
* **Import** keeps the file's fields, but an imported template is never
  ``auto``: :func:`auto_capture` evicts automatic templates only, so
  templates captured or imported by hand are never deleted automatically.

Errors: :class:`TemplateError` for a refusal, an unknown name or a bad file;
:class:`~hermes_stream.exceptions.StoreError` when the file is missing, stays
locked (``StoreBusy``) or a query fails; ``ConfigError`` for a bad argument.

Reads open the file read-only (:func:`~hermes_stream.store.reader`), writes
read-write for one transaction; both wait while the worker holds the file.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import os
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

import duckdb
import msgspec

from hermes_stream import codec
from hermes_stream.exceptions import ConfigError, HermesStreamError, StoreError
from hermes_stream.redact import REDACTED, redact
from hermes_stream.schema import TEMPLATES
from hermes_stream.store import reader, with_lock_retry

Message = dict[str, Any]
StrPath = str | os.PathLike[str]

MAX_MESSAGES: Final = 30
MIN_TOOL_CALLS: Final = 3
MIN_RESULT_CHARS: Final = 50
AUTO_PER_CATEGORY: Final = 5
RECENT_PROVISIONS: Final = 10
#: The ``format`` of an exported template file.
FORMAT: Final = "hermes-stream-template/1"
#: Candidates tried per category by :func:`auto_capture` before it gives up until its next run.
_AUTO_TRIES: Final = 10

_ERROR_OUTPUT = re.compile(r"(?i)^\s*(?:(?:\w*(?:error|exception)|fatal)\s*:|traceback \(most recent)")


class TemplateError(HermesStreamError):
    """A template cannot be captured, found or imported; the message says why."""


@dataclass(frozen=True, slots=True)
class Template:
    """A warm template: seed messages from a good session, and what they are good for."""

    name: str
    description: str | None
    category: str | None
    task_type: str | None
    tags: tuple[str, ...]
    source_session_id: str | None
    created_at: dt.datetime  # naive UTC, as stored
    score: float | None
    seed_messages: tuple[Message, ...]
    auto: bool = False
    #: Times provisioned since it was created (not exported).
    provisions: int = 0

    def to_json(self) -> dict[str, Any]:
        """The template as ``templates export`` writes it."""
        data = asdict(self)
        del data["provisions"]
        return {"format": FORMAT, **data, "created_at": self.created_at.isoformat()}

    @classmethod
    def from_json(cls, data: Any) -> Template:
        """The template *data* (from :meth:`to_json`) describes; :class:`TemplateError` if it is not one."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TemplateError(f'not a template: expected a JSON object with "format": "{FORMAT}"')
        seed = data.get("seed_messages")
        if not seed or not isinstance(seed, list) or not all(_is_message(m) for m in seed):
            raise TemplateError("seed_messages must be a non-empty list of messages, each with a role")
        tags = data.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise TemplateError("tags must be a list of strings")
        score = data.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
            raise TemplateError(f"score must be a number, not {score!r}")
        try:
            created_at = _naive_utc(dt.datetime.fromisoformat(data["created_at"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise TemplateError(f"created_at must be an ISO 8601 time: {exc}") from exc
        description, category, task_type, source = (
            _optional_text(data, key) for key in ("description", "category", "task_type", "source_session_id")
        )
        name = _check_name(data.get("name"))
        return cls(
            name, description, category, task_type, tuple(tags), source, created_at, score, tuple(seed)
        )


@dataclass(frozen=True, slots=True)
class CategoryStats:
    """Templates and provisions of one category."""

    category: str | None
    templates: int
    auto_templates: int
    best_score: float | None
    avg_score: float | None
    provisions: int
    last_provisioned_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Provision:
    """One template handed out."""

    provisioned_at: dt.datetime
    template_name: str
    category: str | None
    task_hint: str | None


@dataclass(frozen=True, slots=True)
class TemplateStats:
    """Totals, per category (best first), and the latest provisions (newest first)."""

    templates: int
    auto_templates: int
    provisions: int
    categories: tuple[CategoryStats, ...]
    recent_provisions: tuple[Provision, ...]


# --- the API: each call opens the file for itself ---------------------------------------


def capture(
    db: StrPath,
    session_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Sequence[str] = (),
    max_messages: int = MAX_MESSAGES,
    lock_timeout: float = 30.0,
) -> Template:
    """Capture ended, successful session *session_id* as a template (see the module docstring)."""
    if max_messages < 2:
        raise ConfigError(f"max_messages must be at least 2 (one tool call), not {max_messages}")
    name = None if name is None else _check_name(name)
    with _writer(Path(db), lock_timeout) as con:
        template = _capture(con, session_id, name, max_messages, auto=False, now=_utcnow())
        template = replace(template, description=description, tags=tuple(dict.fromkeys(tags)))
        _insert(con, template)
    return template


def list_templates(
    db: StrPath, category: str | None = None, tags: Sequence[str] = (), *, lock_timeout: float = 30.0
) -> list[Template]:
    """The templates of *category* having every one of *tags*, best score first."""
    where: list[str] = ["true"]
    params: list[Any] = []
    if category is not None:
        where.append("category = ?")
        params.append(category)
    if tags:
        where.append("list_has_all(tags, ?::VARCHAR[])")
        params.append(list(tags))
    with _reading(Path(db), lock_timeout) as con:
        return _select(con, " AND ".join(where), params)


def get_template(db: StrPath, name: str, *, lock_timeout: float = 30.0) -> Template:
    """The template called *name*; :class:`TemplateError` if there is none."""
    with _reading(Path(db), lock_timeout) as con:
        return _named(con, name)


def provision(
    db: StrPath,
    category: str | None = None,
    task_hint: str | None = None,
    *,
    lock_timeout: float = 30.0,
    now: dt.datetime | None = None,
) -> Template:
    """The best template of *category* (of any without), its provision recorded and counted."""
    with _writer(Path(db), lock_timeout) as con:
        best = _select(con, "$category IS NULL OR category = $category", {"category": category}, 1)
        if not best:
            raise TemplateError(_no_template(con, category))
        at = _naive_utc(now) if now else _utcnow()
        con.execute(
            "INSERT INTO template_provisions (provision_id, template_name, provisioned_at, category,"
            " task_hint) VALUES (?, ?, ?, ?, ?)",
            [uuid.uuid4().hex, best[0].name, at, best[0].category, task_hint],
        )
        return _named(con, best[0].name)


def delete_template(db: StrPath, name: str, *, lock_timeout: float = 30.0) -> bool:
    """Delete template *name*; False if there was none. Its provisions stay, as history."""
    with _writer(Path(db), lock_timeout) as con:
        return bool(con.execute("DELETE FROM templates WHERE name = ? RETURNING name", [name]).fetchall())


def template_stats(db: StrPath, *, lock_timeout: float = 30.0) -> TemplateStats:
    """Totals, per category and the :data:`RECENT_PROVISIONS` latest provisions."""
    with _reading(Path(db), lock_timeout) as con:
        templates, auto, provisions = con.execute(_TOTALS).fetchone() or (0, 0, 0)
        categories = tuple(CategoryStats(*row) for row in con.execute(_PER_CATEGORY).fetchall())
        recent = tuple(Provision(*row) for row in con.execute(_RECENT, [RECENT_PROVISIONS]).fetchall())
    return TemplateStats(templates, auto, provisions, categories, recent)


def export_template(db: StrPath, name: str, path: StrPath, *, lock_timeout: float = 30.0) -> Path:
    """Write template *name* to *path* as JSON (:meth:`Template.to_json`); return the path."""
    target = Path(path)
    text = msgspec.json.format(codec.dumps(get_template(db, name, lock_timeout=lock_timeout).to_json()))
    target.write_bytes(text + b"\n")
    return target


def import_template(
    db: StrPath, path: StrPath, *, name: str | None = None, lock_timeout: float = 30.0
) -> Template:
    """Store the template exported to *path*, as *name* if given; a taken name is refused."""
    try:
        template = Template.from_json(codec.loads(Path(path).read_bytes()))
    except (OSError, HermesStreamError) as exc:
        raise TemplateError(f"cannot import {path}: {exc}") from exc
    template = replace(template, name=_check_name(name or template.name))
    with _writer(Path(db), lock_timeout) as con:
        _insert(con, template)
    return template


def inject(template: Template | Sequence[Message], messages: Sequence[Message]) -> list[Message]:
    """A new list: *messages*' leading system messages, a copy of the seed, then the rest."""
    seed = template.seed_messages if isinstance(template, Template) else template
    lead = 0
    while lead < len(messages) and messages[lead].get("role") == "system":
        lead += 1
    return [*messages[:lead], *copy.deepcopy(list(seed)), *messages[lead:]]


def auto_capture(
    con: duckdb.DuckDBPyConnection,
    per_category: int = AUTO_PER_CATEGORY,
    now: dt.datetime | None = None,
) -> list[str]:
    """Capture each category's best uncaptured ``template_candidates`` session; return the names.

    *con* is open read-write with no transaction: this runs in one of its own.
    A session is uncaptured while no template names it as its source. Each
    category keeps at most *per_category* automatic templates (``auto``),
    evicting the lowest scores; when it is full, a candidate must score above
    its worst to be captured. Hand-made templates neither count nor go.
    """
    if per_category < 1:
        raise ConfigError(f"per_category must be at least 1, not {per_category}")
    created_at = _naive_utc(now) if now else _utcnow()
    captured: list[str] = []
    with _store_errors("automatic template capture"), _transaction(con):
        for sessions in _candidates(con, per_category).values():
            template = _first_capturable(con, sessions, created_at)
            if template is not None:
                _insert(con, template)
                captured.append(template.name)
        evicted = {name for (name,) in con.execute(_EVICT, [per_category]).fetchall()}
    return [name for name in captured if name not in evicted]


# --- capture -------------------------------------------------------------------------------


def _capture(
    con: duckdb.DuckDBPyConnection,
    session_id: str,
    name: str | None,
    max_messages: int,
    *,
    auto: bool,
    now: dt.datetime,
) -> Template:
    category, task_type, score = _capturable_session(con, session_id)
    calls = con.execute(
        "SELECT event_id, tool_name, tool_call_id, status, args, result FROM tool_results"
        " WHERE session_id = ? ORDER BY ts, event_id",
        [session_id],
    ).fetchall()
    seed = _seed(calls, max_messages)
    if not seed:
        raise TemplateError(
            f"session {session_id!r} has no tool call to seed a template: none succeeded with a "
            f"captured result of at least {MIN_RESULT_CHARS} characters that is not an error "
            "(is content capture on in the producer?)"
        )
    name = name or _free_name(con, f"{category or 'general'}-{session_id[:12]}")
    return Template(name, None, category, task_type, (), session_id, now, score, tuple(seed), auto)


def _capturable_session(
    con: duckdb.DuckDBPyConnection, session_id: str
) -> tuple[str | None, str | None, float | None]:
    """The session's category, task type and score, if it may become a template."""
    row = con.execute(
        "SELECT status, is_successful, tool_calls, tool_errors, error_rate, category, task_type, score"
        " FROM sessions WHERE session_id = ?",
        [session_id],
    ).fetchone()
    if row is None:
        raise TemplateError(f"no session {session_id!r} in the store")
    status, successful, calls, errors, error_rate, category, task_type, score = row
    refused = f"cannot capture session {session_id!r}"
    if status != "ended":
        raise TemplateError(f"{refused}: it has not ended (status {status!r})")
    if (calls or 0) < MIN_TOOL_CALLS:
        raise TemplateError(f"{refused}: it has {calls or 0} tool calls, fewer than {MIN_TOOL_CALLS}")
    if not successful:
        rate = "unknown" if error_rate is None else f"{error_rate:.0%}"
        raise TemplateError(
            f"{refused}: it is not successful ({errors or 0} tool errors of {calls} tool calls, "
            f"error rate {rate}; successful means at most 10%)"
        )
    return category, task_type, score


def _seed(calls: Iterable[tuple[Any, ...]], max_messages: int) -> list[Message]:
    seed: list[Message] = []
    ids: set[str] = set()
    for event_id, tool_name, call_id, status, args, result in calls:
        if len(seed) + 2 > max_messages:
            break
        if status != "ok" or result is None or len(result) < MIN_RESULT_CHARS or _ERROR_OUTPUT.match(result):
            continue
        if not call_id or call_id in ids:  # an id repeated in one conversation breaks it
            call_id = f"call_{event_id}"
        ids.add(call_id)
        arguments = codec.dumps(_redacted(codec.loads(args)) if args is not None else {}).decode()
        function = {"name": tool_name, "arguments": arguments}
        seed.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": call_id, "type": "function", "function": function}],
            }
        )
        seed.append({"role": "tool", "tool_call_id": call_id, "content": redact(result)})
    return seed


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(item, str) and _names_a_secret(key) else _redacted(item)
            for key, item in value.items()
        }
    return value


def _names_a_secret(key: str) -> bool:
    # redact() knows which labels hold secrets (api_key=, password=, Authorization: …): ask it.
    probe = f"{key}=x0"
    return redact(probe) != probe


def _free_name(con: duckdb.DuckDBPyConnection, base: str) -> str:
    rows = con.execute("SELECT name FROM templates WHERE starts_with(name, ?)", [base]).fetchall()
    taken = {name for (name,) in rows}
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def _first_capturable(
    con: duckdb.DuckDBPyConnection, sessions: Iterable[str], created_at: dt.datetime
) -> Template | None:
    for session_id in sessions:
        with contextlib.suppress(TemplateError):  # e.g. every usable-looking result reads as an error
            return _capture(con, session_id, None, MAX_MESSAGES, auto=True, now=created_at)
    return None


def _candidates(con: duckdb.DuckDBPyConnection, per_category: int) -> dict[str, list[str]]:
    """Per category, the sessions :func:`auto_capture` may capture, best first."""
    by_category: dict[str, list[str]] = {}
    params = {"per_category": per_category, "min_chars": MIN_RESULT_CHARS, "tries": _AUTO_TRIES}
    for category, session_id in con.execute(_CANDIDATES, params).fetchall():
        by_category.setdefault(category, []).append(session_id)
    return by_category


# --- storage -------------------------------------------------------------------------------

_COLUMNS: Final = ", ".join(TEMPLATES.names)
_SELECT: Final = f"""
    SELECT {_COLUMNS},
           (SELECT count(*) FROM template_provisions p
            WHERE p.template_name = t.name AND p.provisioned_at >= t.created_at) AS provisions
    FROM templates t
"""
_ORDER: Final = "ORDER BY score DESC NULLS LAST, created_at DESC, name"
_TOTALS: Final = """
    SELECT (SELECT count(*) FROM templates), (SELECT count(*) FROM templates WHERE auto),
           (SELECT count(*) FROM template_provisions)
"""
_PER_CATEGORY: Final = """
    WITH t AS (
        SELECT category, count(*) AS templates, count(*) FILTER (WHERE auto) AS auto_templates,
               max(score) AS best_score, avg(score) AS avg_score
        FROM templates GROUP BY category
    ), p AS (
        SELECT category, count(*) AS provisions, max(provisioned_at) AS last_provisioned_at
        FROM template_provisions GROUP BY category
    )
    SELECT coalesce(t.category, p.category) AS category, coalesce(templates, 0),
           coalesce(auto_templates, 0), best_score, avg_score, coalesce(provisions, 0), last_provisioned_at
    FROM t FULL JOIN p ON t.category IS NOT DISTINCT FROM p.category
    ORDER BY best_score DESC NULLS LAST, provisions DESC, category
"""
_RECENT: Final = """
    SELECT provisioned_at, template_name, category, task_hint FROM template_provisions
    ORDER BY provisioned_at DESC, provision_id LIMIT ?
"""
# Uncaptured candidates with a usable result; in a category full of automatic
# templates, only those scoring above its worst.
_CANDIDATES: Final = """
    WITH autos AS (SELECT category, count(*) AS n, min(score) AS low FROM templates WHERE auto GROUP BY ALL)
    SELECT c.category, c.session_id FROM template_candidates c LEFT JOIN autos a USING (category)
    WHERE c.category IS NOT NULL AND (coalesce(a.n, 0) < $per_category OR c.score > a.low)
      AND NOT EXISTS (SELECT 1 FROM templates t WHERE t.source_session_id = c.session_id)
      AND EXISTS (SELECT 1 FROM tool_results r
                  WHERE r.session_id = c.session_id AND r.status = 'ok' AND length(r.result) >= $min_chars)
    QUALIFY row_number() OVER (PARTITION BY c.category ORDER BY c.score DESC, c.ended_at DESC, c.session_id)
            <= $tries
    ORDER BY c.category, c.score DESC, c.ended_at DESC, c.session_id
"""
_EVICT: Final = f"""
    DELETE FROM templates WHERE name IN (
        SELECT name FROM templates WHERE auto
        QUALIFY row_number() OVER (PARTITION BY category {_ORDER}) > ?
    ) RETURNING name
"""


def _select(
    con: duckdb.DuckDBPyConnection, where: str, params: list[Any] | dict[str, Any], limit: int | None = None
) -> list[Template]:
    sql = f"{_SELECT} WHERE {where} {_ORDER}" + ("" if limit is None else f" LIMIT {limit:d}")
    return [_from_row(row) for row in con.execute(sql, params).fetchall()]


def _named(con: duckdb.DuckDBPyConnection, name: str) -> Template:
    found = _select(con, "name = ?", [name])
    if not found:
        raise TemplateError(f"no template named {name!r}")
    return found[0]


def _from_row(row: tuple[Any, ...]) -> Template:
    name, description, category, task_type, tags, source, created_at, score, seed, auto, provisions = row
    return Template(
        name,
        description,
        category,
        task_type,
        tuple(tags or ()),
        source,
        created_at,
        score,
        tuple(codec.loads(seed)),
        bool(auto),
        provisions,
    )


def _insert(con: duckdb.DuckDBPyConnection, t: Template) -> None:
    if con.execute("SELECT 1 FROM templates WHERE name = ?", [t.name]).fetchone():
        raise TemplateError(f"a template named {t.name!r} exists already: choose another name or delete it")
    seed = codec.dumps(list(t.seed_messages)).decode()
    values: list[Any] = [t.name, t.description, t.category, t.task_type, list(t.tags), t.source_session_id]
    values += [t.created_at, t.score, seed, t.auto]
    con.execute(f"INSERT INTO templates ({_COLUMNS}) VALUES ({', '.join('?' * len(values))})", values)


def _no_template(con: duckdb.DuckDBPyConnection, category: str | None) -> str:
    rows = con.execute("SELECT DISTINCT category FROM templates ORDER BY ALL").fetchall()
    if not rows:
        return "no templates yet: capture one with `hermes-stream templates capture SESSION_ID`"
    return f"no template in category {category!r}; there are some for: {', '.join(str(c) for (c,) in rows)}"


@contextlib.contextmanager
def _reading(db: Path, lock_timeout: float) -> Iterator[duckdb.DuckDBPyConnection]:
    with reader(db, lock_timeout) as con, _store_errors(f"reading templates from {db}"):
        yield con


@contextlib.contextmanager
def _writer(db: Path, lock_timeout: float) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection for one transaction, checkpointed and closed after it."""
    if not db.exists():
        raise StoreError(
            f"no database at {db} yet: start the worker (hermes-stream worker) or set HERMES_STREAM_DB"
        )
    con = with_lock_retry(lambda: duckdb.connect(str(db)), db, lock_timeout, exclusive=True)
    try:
        with _store_errors(f"writing templates to {db}"):
            with _transaction(con):
                yield con
        with contextlib.suppress(duckdb.Error):  # committed: the WAL has it, the next open replays it
            con.execute("CHECKPOINT")
    finally:
        con.close()


@contextlib.contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("BEGIN")
    try:
        yield
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


@contextlib.contextmanager
def _store_errors(doing: str) -> Iterator[None]:
    try:
        yield
    except duckdb.Error as exc:
        raise StoreError(f"{doing} failed: {exc}") from exc


# --- small values --------------------------------------------------------------------------


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise TemplateError(f"a template name must be a non-empty string, not {name!r}")
    return name.strip()


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise TemplateError(f"{key} must be a string, not {value!r}")
    return value


def _is_message(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("role"), str)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _naive_utc(value: dt.datetime) -> dt.datetime:
    """*value* as the naive UTC time DuckDB's TIMESTAMP holds (a naive value is UTC already)."""
    return value if value.tzinfo is None else value.astimezone(dt.UTC).replace(tzinfo=None)
