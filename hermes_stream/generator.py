"""A deterministic, realistic workload of Hermes agent events.

Load tests, benchmarks, demos and end-to-end tests need traffic that looks like a
real fleet of Hermes agents: overlapping sessions on several providers, contexts
that grow turn after turn with prompt caching, provider errors and retries, tool
failures, cron skills. They also need it reproducible, so that a failing run can
be replayed: :func:`generate_events` yields the same events, byte for byte, for
the same ``(sessions, seed, start)``. All randomness comes from
:class:`random.Random` seeded from ``seed``; nothing reads the clock or the OS
entropy pool.

Every event satisfies the contract of :mod:`hermes_stream.events`, and follows its
token semantics (cache tokens are inside ``input_tokens``, reasoning tokens inside
``output_tokens``). Content capture is off, so tool results carry no ``args`` or
``result``. A failed API call reports no usage (its token counts are 0).

This module is the simulation; the models, tools, error messages and rates it
draws from live in :mod:`hermes_stream.workload_catalog`.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any, Final

from hermes_stream.events import SCHEMA_VERSION, Event
from hermes_stream.workload_catalog import (
    API_ERROR_RATE,
    API_ERRORS,
    CACHE_TTL_SECONDS,
    COMPRESS_AT,
    CONTEXT_ERRORS,
    CRON_SKILLS,
    ERROR_PATHS,
    ERROR_URLS,
    HEAVY_RESULT_RATE,
    INTERRUPT_RATE,
    KINDS,
    KINDS_BY_SOURCE,
    LLM_MODELS,
    MAX_ITERATIONS,
    MAX_ITERATIONS_RATE,
    MAX_RETRIES,
    RETRY_FAILS,
    SOURCES,
    START_SPREAD_SECONDS,
    TOOLS,
    ApiError,
    KindSpec,
    ModelSpec,
)

DEFAULT_START: Final = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def generate_events(sessions: int, seed: int, start: float = DEFAULT_START) -> Iterator[Event]:
    """Yield the events of *sessions* agent sessions, in global ``ts`` order.

    Sessions start within :data:`~hermes_stream.workload_catalog.START_SPREAD_SECONDS`
    after *start* and overlap; each one's events are in strictly increasing ``ts`` and
    end with exactly one ``session_end``. The output depends only on the arguments.
    """
    if sessions < 0:
        raise ValueError(f"sessions must not be negative, got {sessions}")
    return _merge(_plan_sessions(sessions, random.Random(seed), start))


@dataclass(frozen=True, slots=True)
class _CronJob:
    job_id: str
    skill: str
    kind: str
    version: str
    model: ModelSpec


@dataclass(frozen=True, slots=True)
class _Plan:
    start: float
    session_id: str
    source: str
    seed: int
    cron: _CronJob | None


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([name for name, _ in table], [w for _, w in table])[0]


_MODEL_CUM_WEIGHTS: Final = tuple(accumulate(m.weight for m in LLM_MODELS))


def _pick_model(rng: random.Random) -> ModelSpec:
    return rng.choices(LLM_MODELS, cum_weights=_MODEL_CUM_WEIGHTS)[0]


def _plan_sessions(count: int, rng: random.Random, start: float) -> list[_Plan]:
    """Decide who starts when, sequentially from one rng; session bodies come later."""
    jobs = [_new_cron_job(rng) for _ in range(3 + count // 50)]
    used: set[str] = set()
    plans = []
    for _ in range(count):
        seed = rng.getrandbits(64)
        source = _pick(rng, SOURCES)
        at = start + rng.uniform(0.0, START_SPREAD_SECONDS)
        if source == "cron":
            plans.append(_plan_cron(rng, at, seed, jobs, used))
        else:
            plans.append(_Plan(at, f"sess_{rng.getrandbits(64):016x}", source, seed, None))
    plans.sort(key=lambda plan: plan.start)
    return plans


def _new_cron_job(rng: random.Random) -> _CronJob:
    skill, kind, version = rng.choice(CRON_SKILLS)
    if rng.random() < 0.2:  # a job pinned to an older release of its skill
        major, minor, _ = version.split(".")
        version = f"{major}.{max(0, int(minor) - 1)}.{rng.randint(0, 5)}"
    return _CronJob(f"{rng.getrandbits(32):08x}", skill, kind, version, _pick_model(rng))


def _plan_cron(rng: random.Random, at: float, seed: int, jobs: list[_CronJob], used: set[str]) -> _Plan:
    """Cron runs fire on the minute, a moment late, under ``cron_<job>_<start>``."""
    at = at // 60 * 60 + rng.uniform(0.2, 3.0)
    stamp = datetime.fromtimestamp(int(at), UTC).strftime("%Y%m%d_%H%M%S")
    job = rng.choice(jobs)
    while f"cron_{job.job_id}_{stamp}" in used:
        job = _new_cron_job(rng)
        jobs.append(job)
    session_id = f"cron_{job.job_id}_{stamp}"
    used.add(session_id)
    return _Plan(at, session_id, "cron", seed, job)


def _merge(plans: list[_Plan]) -> Iterator[Event]:
    """Heap-merge the sessions, building each only once the stream reaches its start.

    A session's first event comes after its start, so no session still waiting
    can hold an event earlier than the heap's smallest one.
    """
    heap: list[tuple[float, int, int, list[Event]]] = []
    waiting = 0
    while heap or waiting < len(plans):
        while waiting < len(plans) and (not heap or plans[waiting].start <= heap[0][0]):
            events = _build_session(plans[waiting])
            heapq.heappush(heap, (events[0]["ts"], waiting, 0, events))
            waiting += 1
        _, index, position, events = heap[0]
        yield events[position]
        position += 1
        if position < len(events):
            heapq.heapreplace(heap, (events[position]["ts"], index, position, events))
        else:
            heapq.heappop(heap)


def _uuid7(ts: float, rng: random.Random) -> str:
    """A UUIDv7 for the event's own time, its random bits drawn from *rng*."""
    rand = rng.getrandbits(74)
    value = (int(ts * 1000) & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | (rand >> 62) << 64
    value |= 0b10 << 62 | rand & 0x3FFF_FFFF_FFFF_FFFF
    return _dashed(f"{value:032x}")


def _dashed(h: str) -> str:
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class _Session:
    """The running state of one session while its events are generated."""

    __slots__ = (
        "rng",
        "plan",
        "ts",
        "model",
        "system",
        "context",
        "cached",
        "cache_expiry",
        "messages",
        "events",
    )

    def __init__(self, plan: _Plan, rng: random.Random, model: ModelSpec) -> None:
        self.rng = rng
        self.plan = plan
        self.ts = plan.start
        self.model = model
        self.system = self.rng.randint(6_000, 14_000)  # system prompt, tool schemas, memory
        self.context = self.system
        self.cached = 0  # tokens of the prompt prefix the provider holds in cache
        self.cache_expiry = 0.0
        self.messages = 0
        self.events: list[Event] = []

    def advance(self, seconds: float) -> None:
        self.ts += max(seconds, 0.001)  # keeps a session's events strictly ordered

    def emit(self, type_: str, fields: dict[str, Any]) -> Event:
        ts = round(self.ts, 6)
        event = {
            "event_id": _uuid7(ts, self.rng),
            "type": type_,
            "schema_version": SCHEMA_VERSION,
            "ts": ts,
            "session_id": self.plan.session_id,
            "source": self.plan.source,
        }
        event.update(fields)
        self.events.append(event)
        return event

    def compress(self) -> None:
        """Summarise the middle of the conversation, as Hermes does near the limit."""
        kept = (self.context - self.system) * self.rng.uniform(0.15, 0.3)
        self.context = self.system + int(kept)
        self.cached = min(self.cached, self.system)


def _build_session(plan: _Plan) -> list[Event]:
    rng = random.Random(plan.seed)
    model = plan.cron.model if plan.cron else _pick_model(rng)
    s = _Session(plan, rng, model)
    skill = None
    if plan.cron:
        s.advance(s.rng.uniform(0.05, 0.6))
        skill = s.emit(
            "skill_invoked",
            {
                "skill_name": plan.cron.skill,
                "cron_id": plan.cron.job_id,
                "skill_version": plan.cron.version,
                "model": model.name,
                "provider": model.provider,
            },
        )
    kind = plan.cron.kind if plan.cron else _pick(s.rng, KINDS_BY_SOURCE[plan.source])
    end_reason = _run_turns(s, KINDS[kind])
    s.advance(s.rng.uniform(0.01, 0.4))
    s.emit(
        "session_end",
        {
            "end_reason": end_reason,
            "model": s.model.name,
            "provider": s.model.provider,
            "started_at": round(plan.start, 6),
            "completed": end_reason == "completed",
            "message_count": s.messages,
        },
    )
    if skill is not None and s.rng.random() < 0.25:  # the emitter knew the outcome
        skill["duration_seconds"] = round(s.ts - plan.start, 3)
        skill["success"] = end_reason == "completed"
    return s.events


def _run_turns(s: _Session, kind: KindSpec) -> str:
    """Run the user's messages; return the session's end reason."""
    rng = s.rng
    turns = 1 if s.plan.cron else rng.randint(*kind.turns)
    capped_turn = turns - 1 if rng.random() < MAX_ITERATIONS_RATE and kind.loops[1] > 2 else -1
    for turn in range(turns):
        if turn:
            s.advance(rng.lognormvariate(math.log(kind.user_gap_s), 0.9))
            if rng.random() < 0.04:  # the user switched model with /model
                s.model, s.cached = _pick_model(rng), 0
        s.messages += 1
        s.context += int(rng.lognormvariate(math.log(120), 1.0)) + 5
        s.advance(rng.uniform(0.01, 0.1))
        capped = turn == capped_turn
        loops = MAX_ITERATIONS if capped else rng.randint(*kind.loops)
        reason = _run_loop(s, kind, loops, capped)
        if reason != "completed":
            return reason
    return "completed"


def _run_loop(s: _Session, kind: KindSpec, loops: int, capped: bool) -> str:
    """API call, tool results, repeated; then the final answer."""
    rng = s.rng
    for _ in range(loops):
        if not _call_with_retries(s, "tool_calls"):
            return "error"
        for _ in range(rng.randint(*kind.parallel)):
            _tool_result(s, kind)
        if rng.random() < INTERRUPT_RATE:
            return "user_interrupt"
    finish = "length" if rng.random() < 0.015 else "stop"
    if not _call_with_retries(s, finish):
        return "error"
    return "max_iterations" if capped else "completed"


def _call_with_retries(s: _Session, finish: str) -> bool:
    """One logical model call, retried on transient errors; False if it finally failed."""
    rng = s.rng
    window = s.model.context_window
    if s.context > window:
        overflow = CONTEXT_ERRORS.get(s.model.provider)
        if overflow is not None:
            _error_call(s, overflow)
        s.compress()
    elif s.context > COMPRESS_AT * window:
        s.compress()
    s.advance(rng.uniform(0.005, 0.05))
    error = _pick_api_error(s) if rng.random() < API_ERROR_RATE else None
    attempt = 0
    while error is not None:
        _error_call(s, error)
        if error.fatal or attempt == MAX_RETRIES:
            return False
        s.advance(2**attempt * rng.uniform(1.0, 2.0) * (4 if error.http_status == 429 else 1))
        attempt += 1
        error = error if rng.random() < RETRY_FAILS else None
    _ok_call(s, finish)
    return True


def _pick_api_error(s: _Session) -> ApiError:
    errors = API_ERRORS[s.model.provider]
    return s.rng.choices(errors, [e.weight for e in errors])[0]


def _error_call(s: _Session, error: ApiError) -> None:
    latency = s.rng.uniform(*error.latency_ms)
    s.advance(latency / 1000)
    fields: dict[str, Any] = {
        "model": s.model.name,
        "provider": s.model.provider,
        "input_tokens": 0,
        "output_tokens": 0,
        "latency_ms": round(latency, 1),
        "status": "error",
        "error_type": error.error_type,
        "error_message": _error_message(s, error.message),
        "context_window": s.model.context_window,
    }
    if error.http_status is not None:
        fields["http_status"] = error.http_status
    s.emit("api_call", fields)


_BASE62: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _error_message(s: _Session, template: str) -> str:
    if "{" not in template:
        return template
    rng = s.rng
    limit = rng.choice((30_000, 200_000, 450_000, 800_000))
    requested = rng.randint(800, min(40_000, limit // 4))
    return template.format(
        model=s.model.name,
        org="".join(rng.choices(_BASE62, k=24)),
        limit=limit,
        requested=requested,
        used=limit - requested + rng.randint(1, requested),
        retry_s=round(rng.uniform(0.2, 9.0), 1),
        org_uuid=_dashed(f"{rng.getrandbits(128):032x}"),
        key=f"{rng.getrandbits(16):04x}",
        tokens=s.context,
        window=s.model.context_window,
    )


def _cache_usage(s: _Session, prompt: int) -> tuple[int, int]:
    """Tokens read from and written to the prompt cache, both inside *prompt*."""
    mode, rng = s.model.cache, s.rng
    warm = s.ts <= s.cache_expiry
    read = 0
    if mode == "explicit":  # Anthropic: cache_control breakpoints cache the whole prompt
        read = s.cached if warm else 0
    elif mode == "auto" and warm and s.cached >= 1024 and rng.random() < 0.9:
        read = s.cached // 128 * 128  # OpenAI caches in 128-token steps
    elif mode == "implicit" and warm and s.cached >= 2048 and rng.random() < 0.75:
        read = int(s.cached * rng.uniform(0.5, 0.95))
    read = min(read, prompt)
    write = prompt - read if mode == "explicit" else 0
    s.cached, s.cache_expiry = prompt, s.ts + CACHE_TTL_SECONDS
    return read, write


def _ok_call(s: _Session, finish: str) -> None:
    rng, model = s.rng, s.model
    prompt = s.context
    visible = int(rng.lognormvariate(math.log(180 if finish == "tool_calls" else 600), 0.7)) + 1
    if finish == "length":
        visible = 8_192
    reasoning = int(rng.lognormvariate(math.log(500), 1.0)) if model.reasoning else 0
    output = visible + reasoning
    read, write = _cache_usage(s, prompt)
    latency = (
        model.ttft_ms + (prompt - read) / model.prefill_per_s * 1000 + output / model.tokens_per_s * 1000
    ) * rng.lognormvariate(0.0, 0.2)
    s.advance(latency / 1000)
    fields: dict[str, Any] = {
        "model": model.name,
        "provider": model.provider,
        "input_tokens": prompt,
        "output_tokens": output,
        "latency_ms": round(latency, 1),
        "status": "ok",
        "finish_reason": finish,
        "context_window": model.context_window,
    }
    if model.cache:
        fields["cache_read_tokens"] = read
    if model.cache == "explicit":
        fields["cache_write_tokens"] = write
    if model.reasoning:
        fields["reasoning_tokens"] = reasoning
    if model.usd_per_mtok[0]:
        fields["cost_usd"] = round((prompt * model.usd_per_mtok[0] + output * model.usd_per_mtok[1]) / 1e6, 8)
    s.emit("api_call", fields)
    s.context += visible  # reasoning is not sent back
    s.messages += 1


def _tool_result(s: _Session, kind: KindSpec) -> None:
    rng = s.rng
    name = _pick(rng, kind.tools)
    spec = TOOLS[name]
    duration = rng.lognormvariate(math.log(spec.median_ms), spec.sigma)
    fields: dict[str, Any] = {
        "tool_name": name,
        "tool_call_id": f"call_{rng.getrandbits(96):024x}",
        "status": "ok",
    }
    if spec.errors and rng.random() < spec.error_rate:
        error = rng.choice(spec.errors)
        fields["status"] = "error"
        fields["error_message"] = error.message.format(
            path=rng.choice(ERROR_PATHS), url=rng.choice(ERROR_URLS), hex=f"{rng.getrandbits(16):04x}"
        )
        if error.http_status is not None:
            fields["http_status"] = error.http_status
        if error.duration_ms is not None:
            duration = error.duration_ms + rng.uniform(0, 50)
        tokens = rng.randint(30, 300)
    elif spec.heavy and rng.random() < HEAVY_RESULT_RATE:
        tokens = min(int(rng.lognormvariate(math.log(45_000), 0.6)), 250_000)
    else:
        tokens = int(rng.lognormvariate(math.log(spec.result_tokens), 0.8)) + 1
    s.advance(duration / 1000 + rng.uniform(0.002, 0.03))
    fields["duration_ms"] = round(duration, 1)
    s.emit("tool_result", fields)
    s.context += tokens
    s.messages += 1
