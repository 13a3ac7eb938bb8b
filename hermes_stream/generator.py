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

DEFAULT_START: Final = 1_767_225_600.0  # 2026-01-01T00:00:00Z
START_SPREAD_SECONDS: Final = 4 * 3600.0  # sessions start within these hours after ``start``

# (source, weight): most traffic comes from the CLI.
SOURCES: Final = (("cli", 58.0), ("gateway", 20.0), ("subagent", 12.0), ("cron", 10.0))
KINDS_BY_SOURCE: Final[dict[str, tuple[tuple[str, float], ...]]] = {
    "cli": (("coding", 45.0), ("research", 20.0), ("ops", 15.0), ("chat", 20.0)),
    "gateway": (("chat", 55.0), ("research", 25.0), ("ops", 20.0)),
    "subagent": (("coding", 55.0), ("research", 45.0)),
}

API_ERROR_RATE: Final = 0.03  # share of API calls that fail on the first attempt
RETRY_FAILS: Final = 0.35  # chance that a retry fails the same way again
MAX_RETRIES: Final = 3
INTERRUPT_RATE: Final = 0.005  # per tool round, the user presses Ctrl-C
MAX_ITERATIONS_RATE: Final = 0.025  # sessions that run into the iteration cap
MAX_ITERATIONS: Final = 24
COMPRESS_AT: Final = 0.85  # share of the context window that triggers compression
CACHE_TTL_SECONDS: Final = 300.0
HEAVY_RESULT_RATE: Final = 0.015  # huge tool outputs (a log dump, a long page): ~45k tokens


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """An LLM as the workload uses it: limits, caching behaviour, speed, price."""

    name: str
    provider: str
    context_window: int
    weight: float
    cache: str  # "explicit" (reads and writes), "auto" (reads), "implicit" (partial reads), ""
    reasoning: bool
    tokens_per_s: float
    ttft_ms: float
    prefill_per_s: float = 25_000.0
    usd_per_mtok: tuple[float, float] = (0.0, 0.0)  # only for providers that report cost


LLM_MODELS: Final = (
    ModelSpec("claude-sonnet-4-5", "anthropic", 200_000, 30, "explicit", False, 70, 900),
    ModelSpec("claude-haiku-4-5", "anthropic", 200_000, 8, "explicit", False, 150, 450),
    ModelSpec("claude-opus-4-1", "anthropic", 200_000, 5, "explicit", False, 40, 1600),
    ModelSpec("gpt-4o", "openai", 128_000, 10, "auto", False, 90, 500),
    ModelSpec("gpt-4o-mini", "openai", 128_000, 6, "auto", False, 120, 350),
    ModelSpec("o3-mini", "openai", 200_000, 4, "auto", True, 150, 2000),
    ModelSpec("gpt-5", "openai", 400_000, 10, "auto", True, 60, 3000),
    ModelSpec("gemini-2.5-pro", "google", 1_048_576, 8, "implicit", True, 90, 2500),
    ModelSpec("gemini-2.5-flash", "google", 1_048_576, 7, "implicit", True, 200, 700),
    ModelSpec(
        "meta-llama/llama-3.3-70b-instruct",
        "openrouter",
        131_072,
        5,
        "",
        False,
        80,
        600,
        usd_per_mtok=(0.13, 0.39),
    ),
    ModelSpec(
        "deepseek/deepseek-chat-v3.1",
        "openrouter",
        163_840,
        3,
        "",
        False,
        45,
        1100,
        usd_per_mtok=(0.27, 1.0),
    ),
    ModelSpec("qwen2.5-coder:32b", "ollama", 32_768, 4, "", False, 22, 400, prefill_per_s=900),
)


@dataclass(frozen=True, slots=True)
class ApiError:
    """A provider failure: how it looks on the wire and whether a retry can help."""

    weight: float
    http_status: int | None
    error_type: str
    message: str  # str.format template, see _error_message
    fatal: bool = False  # auth, quota, unknown model: retrying cannot help
    latency_ms: tuple[float, float] = (80.0, 900.0)


_TIMEOUT = ApiError(3, None, "APITimeoutError", "Request timed out.", latency_ms=(60e3, 180e3))
_CONNECTION = ApiError(2, None, "APIConnectionError", "Connection error.", latency_ms=(5, 3e3))
_SLOW = (1e3, 30e3)

API_ERRORS: Final[dict[str, tuple[ApiError, ...]]] = {
    "openai": (
        ApiError(
            10,
            429,
            "rate_limit_exceeded",
            "Rate limit reached for {model} in organization "
            "org-{org} on tokens per min (TPM): Limit {limit}, Used {used}, Requested "
            "{requested}. Please try again in {retry_s}s. Visit "
            "https://platform.openai.com/account/rate-limits to learn more.",
        ),
        ApiError(
            1,
            429,
            "insufficient_quota",
            "You exceeded your current quota, please check "
            "your plan and billing details. For more information on this error, read the "
            "docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            True,
        ),
        ApiError(
            3,
            500,
            "server_error",
            "The server had an error while processing your request. Sorry about that!",
            latency_ms=_SLOW,
        ),
        ApiError(2, 502, "server_error", "Bad gateway.", latency_ms=_SLOW),
        ApiError(2, 503, "server_error", "The server is overloaded or not ready yet."),
        _TIMEOUT,
        _CONNECTION,
        ApiError(
            0.5,
            401,
            "invalid_api_key",
            "Incorrect API key provided: sk-proj-****{key}. "
            "You can find your API key at https://platform.openai.com/account/api-keys.",
            True,
        ),
        ApiError(
            0.5,
            404,
            "model_not_found",
            "The model `{model}` does not exist or you do not have access to it.",
            True,
        ),
    ),
    "anthropic": (
        ApiError(8, 529, "overloaded_error", "Overloaded"),
        ApiError(
            5,
            429,
            "rate_limit_error",
            "This request would exceed the rate limit for your "
            "organization ({org_uuid}) of {limit} input tokens per minute. For details, "
            "refer to: https://docs.claude.com/en/api/rate-limits. You can see the response "
            "headers for current usage. Please reduce the prompt length or the maximum "
            "tokens requested, or try again later.",
        ),
        ApiError(2, 500, "api_error", "Internal server error", latency_ms=_SLOW),
        _TIMEOUT,
        _CONNECTION,
        ApiError(0.5, 401, "authentication_error", "invalid x-api-key", True),
        ApiError(0.3, 404, "not_found_error", "model: {model}", True),
    ),
    "google": (
        ApiError(
            6,
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check "
            "your plan and billing details. For more information on this error, head to: "
            "https://ai.google.dev/gemini-api/docs/rate-limits.",
        ),
        ApiError(6, 503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        ApiError(
            2,
            500,
            "INTERNAL",
            "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting",
            latency_ms=_SLOW,
        ),
        _TIMEOUT,
        ApiError(0.5, 400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", True),
    ),
    "openrouter": (
        ApiError(
            5,
            429,
            "rate_limit_exceeded",
            "{model} is temporarily rate-limited upstream. "
            "Please retry shortly, or add your own key to accumulate your rate limits: "
            "https://openrouter.ai/settings/integrations",
        ),
        ApiError(4, 502, "provider_error", "Provider returned error", latency_ms=_SLOW),
        ApiError(
            1,
            402,
            "insufficient_credits",
            "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
            True,
        ),
        ApiError(0.5, 404, "model_not_found", "No endpoints found for {model}.", True),
        _TIMEOUT,
        _CONNECTION,
    ),
    "ollama": (
        ApiError(4, None, "APIConnectionError", "Connection error.", latency_ms=(1, 20)),
        ApiError(
            1,
            500,
            "server_error",
            "model requires more system memory (21.4 GiB) than is available (15.2 GiB)",
            True,
        ),
        ApiError(1, 404, "model_not_found", 'model "{model}" not found, try pulling it first', True),
        _TIMEOUT,
    ),
}

# What a provider answers when the prompt no longer fits; Ollama truncates silently.
CONTEXT_ERRORS: Final[dict[str, ApiError]] = {
    "anthropic": ApiError(
        1, 400, "invalid_request_error", "prompt is too long: {tokens} tokens > {window} maximum"
    ),
    "openai": ApiError(
        1,
        400,
        "context_length_exceeded",
        "This model's maximum context length "
        "is {window} tokens. However, your messages resulted in {tokens} tokens. "
        "Please reduce the length of the messages.",
    ),
    "google": ApiError(
        1,
        400,
        "INVALID_ARGUMENT",
        "The input token count ({tokens}) exceeds the maximum number of tokens allowed ({window}).",
    ),
    "openrouter": ApiError(
        1,
        400,
        "context_length_exceeded",
        "This endpoint's maximum context "
        "length is {window} tokens. However, you requested about {tokens} "
        "tokens. Please reduce the length of the messages.",
    ),
}


@dataclass(frozen=True, slots=True)
class ToolError:
    """A tool failure as Hermes reports it; ``{path}``, ``{url}``, ``{hex}`` get filled in."""

    message: str
    http_status: int | None = None
    duration_ms: float | None = None  # failures that take a fixed time (timeouts)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """How long a tool takes, how much text it returns, how it fails."""

    median_ms: float
    sigma: float
    result_tokens: int  # median tokens the result adds to the context
    error_rate: float
    errors: tuple[ToolError, ...]
    heavy: bool = False  # can return a huge output now and then


_DB_LOCKED = ToolError("sqlite3.OperationalError: database is locked")

TOOLS: Final[dict[str, ToolSpec]] = {
    "terminal": ToolSpec(
        1200,
        1.3,
        600,
        0.08,
        (
            ToolError("Command timed out after 180s", None, 180_000),
            ToolError('Command failed with exit code 1: npm ERR! Missing script: "lint"'),
            ToolError("Command failed with exit code 127: bash: line 1: rg: command not found"),
            ToolError("Command failed with exit code 2: make: *** [Makefile:23: test] Error 1"),
        ),
        heavy=True,
    ),
    "execute_code": ToolSpec(
        2500,
        1.0,
        400,
        0.10,
        (
            ToolError("ModuleNotFoundError: No module named 'polars'"),
            ToolError("Execution timed out after 300s", None, 300_000),
            ToolError("KeyError: 'created_at'"),
        ),
        heavy=True,
    ),
    "write_file": ToolSpec(
        12,
        0.6,
        40,
        0.02,
        (
            ToolError("PermissionError: [Errno 13] Permission denied: '/usr/local/etc/app.yaml'"),
            ToolError("OSError: [Errno 28] No space left on device"),
        ),
    ),
    "read_file": ToolSpec(
        8,
        0.7,
        1800,
        0.06,
        (
            ToolError("FileNotFoundError: [Errno 2] No such file or directory: '{path}'"),
            ToolError("IsADirectoryError: [Errno 21] Is a directory: 'src'"),
            ToolError(
                "UnicodeDecodeError: 'utf-8' codec can't decode byte 0x89 in position 0: invalid start byte"
            ),
        ),
        heavy=True,
    ),
    "patch": ToolSpec(
        25,
        0.6,
        120,
        0.09,
        (
            ToolError("patch failed: hunk #1 did not apply"),
            ToolError("old_string not found in {path}"),
        ),
    ),
    "search_files": ToolSpec(
        250,
        0.9,
        700,
        0.03,
        (
            ToolError("rg: regex parse error: unclosed group"),
            ToolError("Search timed out after 60s", None, 60_000),
        ),
    ),
    "todo": ToolSpec(3, 0.4, 80, 0.0, ()),
    "web_search": ToolSpec(
        1300,
        0.5,
        1200,
        0.04,
        (
            ToolError("HTTP 429 from search API: rate limit exceeded", 429),
            ToolError("HTTP 502 from search API: Bad Gateway", 502),
        ),
    ),
    "web_extract": ToolSpec(
        3500,
        0.7,
        4000,
        0.12,
        (
            ToolError("HTTP 403 fetching {url}", 403),
            ToolError("HTTP 404 fetching {url}", 404),
            ToolError("Timed out fetching {url} after 30s", None, 30_000),
        ),
        heavy=True,
    ),
    "browser_navigate": ToolSpec(
        4200,
        0.6,
        2500,
        0.08,
        (
            ToolError("net::ERR_NAME_NOT_RESOLVED at {url}"),
            ToolError("Navigation timeout of 30000 ms exceeded", None, 30_000),
            ToolError("HTTP 403 fetching {url} (bot challenge)", 403),
        ),
        heavy=True,
    ),
    "session_search": ToolSpec(120, 0.6, 900, 0.02, (_DB_LOCKED,)),
    "fact_store": ToolSpec(35, 0.5, 150, 0.02, (_DB_LOCKED,)),
    "memory": ToolSpec(
        20, 0.5, 100, 0.01, (ToolError("Memory is full (2200/2200 chars): replace or remove an entry first"),)
    ),
    "vision_analyze": ToolSpec(
        5000, 0.5, 500, 0.03, (ToolError("HTTP 415 fetching {url}: unsupported image type", 415),)
    ),
    "cronjob": ToolSpec(
        60,
        0.5,
        150,
        0.05,
        (
            ToolError("Invalid cron expression '0 25 * * *': hour must be in 0-23"),
            ToolError("No cron job with id '{hex}'"),
        ),
    ),
    "process": ToolSpec(180, 0.8, 300, 0.05, (ToolError("No process with id 'proc_{hex}'"),)),
    "send_message": ToolSpec(
        650,
        0.5,
        60,
        0.05,
        (
            ToolError("Telegram API error 400: Bad Request: chat not found", 400),
            ToolError("Discord API error 429: You are being rate limited.", 429),
        ),
    ),
}

ERROR_PATHS: Final = ("src/app.py", "hermes/cli.py", "tests/test_api.py", "config/settings.yaml")
ERROR_URLS: Final = (
    "https://www.reuters.com/technology/artificial-intelligence/",
    "https://arxiv.org/abs/2501.04682",
    "https://medium.com/@devnotes/agents-in-production-2f9c1a",
    "https://www.nytimes.com/2025/12/30/technology/ai-agents.html",
)


@dataclass(frozen=True, slots=True)
class KindSpec:
    """A kind of session: which tools it uses and how long it runs."""

    tools: tuple[tuple[str, float], ...]
    turns: tuple[int, int]  # user messages
    loops: tuple[int, int]  # tool rounds per user message
    parallel: tuple[int, int]  # tool calls per round
    user_gap_s: float  # median think time between user messages


KINDS: Final[dict[str, KindSpec]] = {
    "coding": KindSpec(
        (
            ("execute_code", 12),
            ("write_file", 10),
            ("read_file", 25),
            ("patch", 18),
            ("search_files", 15),
            ("terminal", 20),
            ("todo", 4),
        ),
        (1, 3),
        (2, 10),
        (1, 2),
        90,
    ),
    "research": KindSpec(
        (
            ("web_search", 25),
            ("web_extract", 25),
            ("browser_navigate", 10),
            ("session_search", 8),
            ("fact_store", 8),
            ("read_file", 8),
        ),
        (1, 2),
        (2, 8),
        (1, 3),
        120,
    ),
    "ops": KindSpec(
        (("terminal", 40), ("cronjob", 12), ("process", 15), ("send_message", 15)), (1, 2), (1, 6), (1, 2), 60
    ),
    "chat": KindSpec(
        (("web_search", 4), ("memory", 4), ("vision_analyze", 1), ("session_search", 1)),
        (1, 6),
        (0, 1),
        (1, 1),
        150,
    ),
}

# (skill, session kind, current version)
CRON_SKILLS: Final = (
    ("daily-digest", "research", "1.3.0"),
    ("repo-triage", "coding", "0.9.2"),
    ("inbox-zero", "ops", "2.1.0"),
    ("arxiv-watch", "research", "1.0.4"),
    ("uptime-report", "ops", "1.1.0"),
    ("dependency-audit", "coding", "0.4.1"),
)


def generate_events(sessions: int, seed: int, start: float = DEFAULT_START) -> Iterator[Event]:
    """Yield the events of *sessions* agent sessions, in global ``ts`` order.

    Sessions start within :data:`START_SPREAD_SECONDS` after *start* and overlap;
    each one's events are in strictly increasing ``ts`` and end with exactly one
    ``session_end``. The output depends only on the arguments.
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
