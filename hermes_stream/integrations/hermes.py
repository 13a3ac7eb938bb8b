"""Hermes Agent plugin: turns Hermes hook calls into hermes-stream events.

Hermes finds the plugin through the ``hermes_agent.plugins`` entry point and
calls :func:`register`, which hooks:

* ``post_api_request`` → ``api_call`` (status ok), ``api_request_error`` →
  ``api_call`` (status error), usage normalised by :func:`normalize_usage`;
* ``post_tool_call`` → ``tool_result``;
* ``on_session_end`` (Hermes fires it after every turn) records the turn's
  outcome; ``on_session_finalize`` (the real end) emits one ``session_end``.
  A cron run is one turn, so its ``on_session_end`` ends it at once; sessions
  never finalized are ended when the process exits;
* ``on_skill_lifecycle`` → ``skill_invoked`` for the actions in
  :data:`SKILL_USE_ACTIONS` only (Hermes says ``loaded`` when ``skill_view``
  puts a skill into the session: that is its use).

Callbacks take ``**kwargs`` (unknown keys ignored), never raise into Hermes
and never wait for the broker. Event ids are derived (UUIDv5) from
``api_request_id`` / ``tool_call_id`` when present, so a re-delivered hook
is deduplicated downstream; other events get a fresh UUIDv7.
"""

from __future__ import annotations

import atexit
import functools
import logging
import math
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from hermes_stream.events import MAX_ID_LENGTH, Event, EventType, make_event

log = logging.getLogger(__name__)

#: ``on_skill_lifecycle`` actions that mean the skill was used. Others
#: (``created``, ``patched``, ``installed``, ``archived``, ``stale``, …) are ignored.
SKILL_USE_ACTIONS: Final = frozenset(
    {"loaded", "invoke", "invoked", "use", "used", "run", "start", "started"}
)
#: Hermes tool statuses that count as success; any other status is an error.
TOOL_OK_STATUSES: Final = frozenset({"ok", "success", "succeeded", "completed", "done"})
MAX_TRACKED_SESSIONS: Final = 10_000
DEFAULT_SOURCE: Final = "hermes"

_ID_NAMESPACE: Final = uuid.UUID("9b1f3c2e-6f0a-5d47-8a55-3f1e2d4c6b70")
_CRON_SESSION = re.compile(r"cron_(.+)_\d{8}_\d{6}")


class Emitter(Protocol):
    """What the plugin sends events to: both SDK producers qualify."""

    def emit(self, event: Event) -> bool: ...


# -- usage ------------------------------------------------------------------


def normalize_usage(usage: object) -> dict[str, int]:
    """Token counts of any provider's usage (dict, SDK object or None) in the contract's semantics.

    ``input_tokens`` includes cache reads and writes; ``reasoning_tokens`` are
    inside ``output_tokens``. Anthropic reports input without cache tokens, so
    they are added; Chat Completions and Responses already include them.
    """
    if _count(_attr(usage, "prompt_tokens")) is not None:  # Chat Completions
        tokens = {
            "input_tokens": _count(_attr(usage, "prompt_tokens")),
            "output_tokens": _count(_attr(usage, "completion_tokens")),
            "cache_read_tokens": _count(_attr(_attr(usage, "prompt_tokens_details"), "cached_tokens")),
            "reasoning_tokens": _count(_attr(_attr(usage, "completion_tokens_details"), "reasoning_tokens")),
        }
    else:
        raw_input = _count(_attr(usage, "input_tokens")) or 0
        cache_read = _count(_attr(usage, "cache_read_input_tokens"))
        cache_write = _count(_attr(usage, "cache_creation_input_tokens"))
        if cache_read is None and cache_write is None:  # Responses (or a plain pair)
            cache_read = _count(_attr(_attr(usage, "input_tokens_details"), "cached_tokens"))
            reasoning = _count(_attr(_attr(usage, "output_tokens_details"), "reasoning_tokens"))
        else:  # Anthropic
            raw_input += (cache_read or 0) + (cache_write or 0)
            reasoning = None
        tokens = {
            "input_tokens": raw_input,
            "output_tokens": _count(_attr(usage, "output_tokens")),
            "cache_read_tokens": cache_read,
            "cache_write_tokens": cache_write,
            "reasoning_tokens": reasoning,
        }
    tokens["input_tokens"] = tokens["input_tokens"] or 0
    tokens["output_tokens"] = tokens["output_tokens"] or 0
    return {name: value for name, value in tokens.items() if value is not None}


# -- events -----------------------------------------------------------------


def api_call_event(kw: Mapping[str, Any], *, status: str, source: str) -> Event | None:
    """The ``api_call`` of a ``post_api_request`` (ok) or ``api_request_error`` (error) hook."""
    error = kw.get("error")
    http_status = _http_status(kw.get("status_code")) or _http_status(getattr(error, "status_code", None))
    fields = {
        "model": _text(kw.get("model")) or _text(kw.get("response_model")) or "unknown",
        "provider": _text(kw.get("provider")) or "unknown",
        **normalize_usage(kw.get("usage")),
        "status": status,
        "latency_ms": _latency_ms(kw),
        "http_status": http_status,
        "finish_reason": _text(kw.get("finish_reason")),
    }
    if status == "error":
        exc_type = type(error).__name__ if isinstance(error, BaseException) else None
        fields["error_type"] = exc_type or _text(kw.get("reason"))
        fields["error_message"] = _text(str(error) if error is not None else None) or _text(kw.get("reason"))
    request_id = _text(kw.get("api_request_id"))
    key = f"{status}:{request_id}:{kw.get('retry_count')}" if request_id else None
    return _event("api_call", kw, source, key, fields)


def tool_result_event(kw: Mapping[str, Any], *, source: str) -> Event | None:
    """The ``tool_result`` of a ``post_tool_call`` hook; ``args``/``result`` go only if capture is on."""
    status = _text(kw.get("status"))
    if status is not None:
        ok = status.lower() in TOOL_OK_STATUSES
    else:
        ok = not (kw.get("error_type") or kw.get("error_message"))
    result, call_id = kw.get("result"), _text(kw.get("tool_call_id"))
    fields = {
        "tool_name": _text(kw.get("tool_name")) or "unknown",
        "tool_call_id": call_id,
        "status": "ok" if ok else "error",
        "duration_ms": _amount(kw.get("duration_ms")),
        "error_message": None if ok else _text(kw.get("error_message")) or _text(kw.get("error_type")),
        "http_status": _http_status(kw.get("http_status") or kw.get("status_code")),
        "args": kw.get("args") if isinstance(kw.get("args"), dict) else None,
        "result": result if isinstance(result, str) or result is None else str(result),
    }
    return _event("tool_result", kw, source, call_id, fields)


def end_reason(kw: Mapping[str, Any]) -> str:
    """``failed``, ``interrupted``, ``completed`` (first true flag), else Hermes' reason, else ``ended``."""
    for flag in ("failed", "interrupted", "completed"):
        if kw.get(flag) is True:
            return flag
    return _text(kw.get("turn_exit_reason")) or _text(kw.get("reason")) or "ended"


def skill_invoked_event(kw: Mapping[str, Any], *, source: str) -> Event | None:
    """The ``skill_invoked`` of an ``on_skill_lifecycle`` hook, or None if the action is not a use."""
    action, skill = _text(kw.get("action")), _text(kw.get("skill_name"))
    if action is None or action.lower() not in SKILL_USE_ACTIONS or skill is None:
        return None
    session_id = _session_id(kw)
    cron = _CRON_SESSION.fullmatch(session_id) if session_id else None
    fields = {"skill_name": skill, "cron_id": cron.group(1) if cron else None}
    return _event("skill_invoked", kw, source, None, fields)


# -- the plugin -------------------------------------------------------------


@dataclass
class _Session:
    source: str = DEFAULT_SOURCE
    model: str | None = None
    provider: str | None = None
    turn: dict[str, Any] | None = None  # the last on_session_end's keyword arguments
    ended: bool = False


class HermesPlugin:
    """The hook callbacks, and what they remember per session (a bounded LRU)."""

    def __init__(self, producer: Emitter) -> None:
        self._producer = producer
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()

    def hooks(self) -> dict[str, Callable[..., None]]:
        """Hook name → callback, each guarded so it never raises into Hermes."""
        hooks: dict[str, Callable[..., None]] = {
            "post_api_request": functools.partial(self._api_call, status="ok"),
            "api_request_error": functools.partial(self._api_call, status="error"),
            "post_tool_call": self._tool_result,
            "on_session_end": self._turn_end,
            "on_session_finalize": self._finalize,
            "on_skill_lifecycle": self._skill,
        }
        return {name: _guarded(name, callback) for name, callback in hooks.items()}

    def close(self) -> None:
        """End the sessions that had turns but were never finalized."""
        with self._lock:
            pending = [(sid, s) for sid, s in self._sessions.items() if s.turn is not None and not s.ended]
        for session_id, _ in pending:
            self._end(session_id, {})

    def _api_call(self, status: str, **kw: Any) -> None:
        session = self._remember(kw)
        self._emit(api_call_event(kw, status=status, source=session.source if session else DEFAULT_SOURCE))

    def _tool_result(self, **kw: Any) -> None:
        self._emit(tool_result_event(kw, source=self._source(kw)))

    def _skill(self, **kw: Any) -> None:
        event = skill_invoked_event(kw, source=self._source(kw))
        session = self._remember(kw)
        if event is not None and session is not None:
            event.update(_present({"model": session.model, "provider": session.provider}))
        self._emit(event)

    def _turn_end(self, **kw: Any) -> None:
        session = self._remember(kw)
        if session is None:
            return
        session.turn = dict(kw)
        sid = _session_id(kw)
        if sid and (_CRON_SESSION.fullmatch(sid) or session.source == "cron"):
            self._end(sid, kw)  # a cron run is a single turn and may never be finalized

    def _finalize(self, **kw: Any) -> None:
        sid = _session_id(kw)
        if sid is not None:
            self._remember(kw)
            self._end(sid, kw)

    def _end(self, session_id: str, kw: Mapping[str, Any]) -> None:
        with self._lock:
            session = self._session(session_id)
            if session.ended:
                return
            session.ended = True
        outcome_keys = ("failed", "interrupted", "completed", "turn_exit_reason")
        turn = kw if any(k in kw for k in outcome_keys) else {**kw, **(session.turn or {})}
        reason = end_reason(turn)
        fields = {
            "end_reason": reason,
            # Hermes sets completed on an interrupted turn that produced some text.
            "completed": reason == "completed" if isinstance(turn.get("completed"), bool) else None,
            "model": session.model,
            "provider": session.provider,
        }
        self._emit(_event("session_end", {"session_id": session_id}, session.source, None, fields))

    def _remember(self, kw: Mapping[str, Any]) -> _Session | None:
        """The session of *kw*, updated with the platform, model and provider it names."""
        sid = _session_id(kw)
        if sid is None:
            return None
        with self._lock:
            session = self._session(sid)
            session.source = _text(kw.get("platform")) or session.source
            session.model = _text(kw.get("model")) or session.model
            session.provider = _text(kw.get("provider")) or session.provider
        return session

    def _session(self, session_id: str) -> _Session:
        session = self._sessions.pop(session_id, None) or _Session()
        self._sessions[session_id] = session
        while len(self._sessions) > MAX_TRACKED_SESSIONS:
            self._sessions.popitem(last=False)
        return session

    def _source(self, kw: Mapping[str, Any]) -> str:
        if platform := _text(kw.get("platform")):
            return platform
        sid = _session_id(kw)
        with self._lock:
            session = self._sessions.get(sid) if sid else None
            return session.source if session else DEFAULT_SOURCE

    def _emit(self, event: Event | None) -> None:
        if event is None:
            return
        try:
            self._producer.emit(event)
        except Exception:
            log.warning("hermes-stream could not emit a %s event", event.get("type"), exc_info=True)


class _LazyProducer:
    """A :class:`SyncEventProducer` from ``Settings.from_env()``, started on first emit, once."""

    def __init__(self) -> None:
        self._producer: Emitter | None = None
        self._failed = False
        self._lock = threading.Lock()

    def emit(self, event: Event) -> bool:
        producer = self._get()
        return producer.emit(event) if producer is not None else False

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        close = getattr(producer, "close", None)
        if close is not None:
            close()

    def _get(self) -> Emitter | None:
        with self._lock:
            if self._producer is None and not self._failed:
                # aiokafka and the rest load only when telemetry is first used.
                from hermes_stream.settings import Settings
                from hermes_stream.sync_producer import SyncEventProducer

                try:
                    self._producer = SyncEventProducer(Settings.from_env()).start()
                except Exception as exc:
                    self._failed = True
                    log.warning("hermes-stream telemetry is off: %s", exc)
            return self._producer


_default_producer = _LazyProducer()


def register(ctx: Any, producer: Emitter | None = None) -> HermesPlugin | None:
    """Register the hooks on Hermes' plugin context. Never raises; returns the plugin, or None on failure.

    Without *producer*, one is built from the environment on first use and
    closed at interpreter exit.
    """
    try:
        plugin = HermesPlugin(producer if producer is not None else _default_producer)
        for name, callback in plugin.hooks().items():
            ctx.register_hook(name, callback)
        atexit.register(_shutdown, plugin, owns_producer=producer is None)
    except Exception:
        log.warning("hermes-stream could not register its Hermes hooks", exc_info=True)
        return None
    return plugin


def _shutdown(plugin: HermesPlugin, *, owns_producer: bool) -> None:
    try:
        plugin.close()
        if owns_producer:
            _default_producer.close()
    except Exception:
        log.warning("hermes-stream could not close its producer", exc_info=True)


# -- values -----------------------------------------------------------------


def _guarded(name: str, callback: Callable[..., None]) -> Callable[..., None]:
    def hook(*args: Any, **kwargs: Any) -> None:
        try:
            callback(**kwargs)
        except Exception:
            log.warning("hermes-stream %s hook failed", name, exc_info=True)

    hook.__name__ = f"hermes_stream_{name}"
    return hook


def _event(
    type_: EventType, kw: Mapping[str, Any], source: str, key: str | None, fields: Mapping[str, Any]
) -> Event | None:
    session_id = _session_id(kw)
    if session_id is None:
        log.debug("hermes-stream skipped a %s event without a session id", type_)
        return None
    event = make_event(type_, session_id, source=source, **_present(fields))
    if key is not None:
        event["event_id"] = str(uuid.uuid5(_ID_NAMESPACE, f"hermes:{type_}:{session_id}:{key}"))
    return event


def _session_id(kw: Mapping[str, Any]) -> str | None:
    session_id = _text(kw.get("session_id")) or _text(kw.get("task_id"))
    return session_id[:MAX_ID_LENGTH] if session_id else None


def _present(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _attr(obj: object, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _amount(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _count(value: object) -> int | None:
    amount = _amount(value)
    return int(amount) if amount is not None else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _http_status(value: object) -> int | None:
    status = _count(value)
    return status if status is not None and 100 <= status <= 599 else None


def _epoch(value: object) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else _amount(value)


def _latency_ms(kw: Mapping[str, Any]) -> float | None:
    if (seconds := _amount(kw.get("api_duration"))) is not None:
        return seconds * 1000
    started, ended = _epoch(kw.get("started_at")), _epoch(kw.get("ended_at"))
    if started is None or ended is None or ended < started:
        return None
    return (ended - started) * 1000
