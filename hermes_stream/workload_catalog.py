"""What the workload generator draws from: a fleet's providers, models, tools and failures.

:mod:`hermes_stream.generator` holds the logic that turns these tables into events;
this module holds the data, so that tuning the workload (a new model, another tool,
a provider's current error text) never means reading the simulation, and reading
the simulation never means scrolling past hundreds of lines of numbers.

It holds:

* the session mix: how sessions start over time, which sources they come from and
  which kinds of work (coding, research, ops, chat) each source runs, and the cron
  skills that run on a schedule;
* the models per provider, with the token profiles the generator simulates (context
  window, prompt caching behaviour, reasoning, speed); a price only for the providers
  that report cost;
* the tools, with their durations, result sizes and failure rates, and the tool mix
  of each kind of session;
* realistic error messages, as providers and tools word them, with how often they
  occur and whether a retry can help;
* the rates of retries, interruptions, iteration caps, compression and cache expiry.

Everything here is immutable data; nothing draws random numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

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
    message: str  # str.format template, filled in by generator._error_message
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
