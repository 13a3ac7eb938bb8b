"""Telemetry around one cron job run, and the cron context-window check.

    with SyncEventProducer(Settings.from_env()) as producer:
        with cron_run("daily-digest", ["web_research"], producer=producer,
                      model="claude-sonnet-4-5", provider="anthropic") as run:
            report = build_digest(session_id=run.session_id)
            run.emit("api_call", model="claude-sonnet-4-5", provider="anthropic", …)
            if not report:
                run.fail()

or, around a whole function (sync or async), ``@cron_job("daily-digest",
["web_research"], producer=producer)``.

What a run emits, all under the session id ``cron_<job_id>_<YYYYmmdd_HHMMSS>``
(the run's start in UTC; two runs of one job in the same second share it):

* one ``skill_invoked`` per skill, when it is invoked: the job's *skills* on
  entry, stamped with the run's start (the row's ``invoked_at``), and any added
  with :meth:`CronRun.skill` at that moment. Each carries ``skill_name``,
  ``cron_id`` (the job id), ``skill_version``, ``model`` and ``provider``. The
  outcome (duration, success, end reason, tokens) is left for the stream to
  fill from the session at ``session_end``, as the event contract allows: a
  second ``skill_invoked`` would count as a second invocation, and a run that
  dies mid-way still shows which skills it started.
* one ``session_end`` when the run ends, however it ends: ``end_reason``
  ``cron_complete`` with ``completed`` true, or ``cron_failed`` with
  ``completed`` false when the body raised (any exception, cancellation and
  ``KeyboardInterrupt`` included; it is re-raised unchanged) or called
  :meth:`CronRun.fail`. It carries ``started_at``, ``model`` and ``provider``.

Telemetry never fails the job: every emit is guarded, and a producer that
raises or refuses an event (``emit`` returns False) only logs a warning. With
``producer=None`` nothing is emitted. The producer is anything with
``emit(event) -> bool``; both SDK producers qualify (an :class:`EventProducer`
only from its own event loop's thread).

:func:`check_context_window` is the scheduler's check before a run: a model
whose context window is under 64,000 tokens cannot hold a cron job's prompt
and tools, unless the operator configured the context length themselves
(``override``), which skips the check as Hermes' cron does. It is a
parameter rather than a setting: the scheduler owns that configuration.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, ParamSpec, Protocol, TypeVar, cast

from hermes_stream.events import Event, EventType, make_event
from hermes_stream.exceptions import ModelContextError

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

MIN_CONTEXT_WINDOW: Final = 64_000


class EventSink(Protocol):
    """Where a run's events go: :class:`SyncEventProducer`, :class:`EventProducer`, or a test double."""

    def emit(self, event: Event) -> bool: ...


class CronRun:
    """One run of a cron job; a context manager made by :func:`cron_run`."""

    def __init__(
        self,
        job_id: str,
        skills: Iterable[str],
        *,
        producer: EventSink | None,
        model: str | None,
        provider: str | None,
        started: datetime | float | None,
        source: str,
        skill_version: str | None,
    ) -> None:
        start = _utc(started)
        self.job_id = job_id
        self.session_id = f"cron_{job_id}_{start:%Y%m%d_%H%M%S}"
        self.started_at = start.timestamp()
        self.success = True
        self._skills = tuple(skills)
        self._producer = producer
        self._source = source
        self._skill_version = skill_version
        self._model = {k: v for k, v in (("model", model), ("provider", provider)) if v is not None}

    def emit(self, type: EventType, **fields: Any) -> bool:
        """Emit an event of this run's session; True if the producer accepted it. Never raises."""
        try:
            event = make_event(type, self.session_id, source=self._source, **fields)
            accepted = self._producer is not None and bool(self._producer.emit(event))
        except Exception:
            log.warning(
                "cron %s: could not emit a %s event; the job goes on", self.job_id, type, exc_info=True
            )
            return False
        if not accepted and self._producer is not None:
            log.warning("cron %s: the producer refused a %s event", self.job_id, type)
        return accepted

    def skill(self, name: str, version: str | None = None, **fields: Any) -> bool:
        """Emit ``skill_invoked`` for *name* now; *fields* add what is known (``success``, …)."""
        version = version or self._skill_version
        known = {"skill_name": name, "cron_id": self.job_id, **self._model}
        if version is not None:
            known["skill_version"] = version
        return self.emit("skill_invoked", **{**known, **fields})

    def fail(self) -> None:
        """Mark the run failed without raising: it ends as ``cron_failed``."""
        self.success = False

    def __enter__(self) -> CronRun:
        for name in self._skills:
            self.skill(name, ts=self.started_at)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None:
            self.success = False
        self.emit(
            "session_end",
            end_reason="cron_complete" if self.success else "cron_failed",
            completed=self.success,
            started_at=self.started_at,
            ts=max(time.time(), self.started_at),
            **self._model,
        )


def cron_run(
    job_id: str,
    skills: Iterable[str] = (),
    *,
    producer: EventSink | None,
    model: str | None = None,
    provider: str | None = None,
    started: datetime | float | None = None,
    source: str = "cron",
    skill_version: str | None = None,
) -> CronRun:
    """The telemetry of one run of *job_id*, as a context manager (see the module docstring).

    *started* is the run's start (an aware datetime or epoch seconds; now by
    default); *skill_version* applies to the job's skills.
    """
    return CronRun(
        job_id,
        skills,
        producer=producer,
        model=model,
        provider=provider,
        started=started,
        source=source,
        skill_version=skill_version,
    )


def cron_job(
    job_id: str,
    skills: Iterable[str] = (),
    *,
    producer: EventSink | None,
    model: str | None = None,
    provider: str | None = None,
    source: str = "cron",
    skill_version: str | None = None,
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a job function (sync or async) so each call runs inside :func:`cron_run`.

    The function reports failure by raising; use :func:`cron_run` directly to
    reach the run (``fail``, ``skill``).
    """
    skills = tuple(skills)

    def new_run() -> CronRun:
        return cron_run(
            job_id,
            skills,
            producer=producer,
            model=model,
            provider=provider,
            source=source,
            skill_version=skill_version,
        )

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        if inspect.iscoroutinefunction(fn):
            job = cast(Callable[P, Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                with new_run():
                    return await job(*args, **kwargs)

            return cast(Callable[P, T], run_async)

        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> T:
            with new_run():
                return fn(*args, **kwargs)

        return run

    return decorate


def check_context_window(
    model: str, context_window: int, *, minimum: int = MIN_CONTEXT_WINDOW, override: int | None = None
) -> None:
    """Raise :class:`ModelContextError` if *model*'s window is under *minimum* tokens.

    *override* is a context length the operator configured for the model; when
    set, the check is skipped (they know their deployment better than a catalog).
    """
    if override is None and context_window < minimum:
        raise ModelContextError(model, context_window, minimum)


def _utc(started: datetime | float | None) -> datetime:
    if started is None:
        return datetime.now(UTC)
    if isinstance(started, datetime):
        if started.tzinfo is None:
            raise ValueError("started must be timezone-aware (a naive datetime's zone is a guess)")
        return started.astimezone(UTC)
    return datetime.fromtimestamp(started, UTC)
