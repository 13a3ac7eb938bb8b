"""The evidence :func:`~hermes_stream.classify.classify_error` weighs, as plain tables.

Provider codes (decisive and generic), HTTP statuses, exception classes and message
phrases, each mapped to a :data:`Reason`, and :data:`REFINES`, which says which
message meanings may replace a base reason. Nothing here decides anything: the
order of evidence and the retry policies live in :mod:`hermes_stream.classify`.
The tables are kept apart so that teaching the classifier a new provider code,
exception or phrase is a data change, reviewed without the logic around it.

:data:`Reason` is defined here, not in ``classify``, so that ``classify`` imports
from this module and never the reverse; ``classify`` re-exports it. Order matters
in two tables: :data:`EXCEPTION_REASONS` (a subclass before its base, for the MRO
walk) and :data:`PHRASES` (checked in order, the first match wins).
"""

from __future__ import annotations

import re
from typing import Final, Literal, NamedTuple

Reason = Literal[
    "rate_limit",
    "overloaded",
    "server_error",
    "timeout",
    "connection",
    "conflict",
    "context_overflow",
    "payload_too_large",
    "auth",
    "billing_quota",
    "model_not_found",
    "content_policy",
    "insufficient_memory",
    "bad_request",
    "not_found",
    "permission",
    "unknown",
]


# Provider codes and types (lower-cased) that name the cause whatever the status says.
DECISIVE_CODES: Final[dict[str, Reason]] = {
    "insufficient_quota": "billing_quota",  # OpenAI
    "billing_hard_limit_reached": "billing_quota",
    "invalid_api_key": "auth",
    "model_not_found": "model_not_found",
    "context_length_exceeded": "context_overflow",
    "rate_limit_exceeded": "rate_limit",
    "content_policy_violation": "content_policy",
    "content_filter": "content_policy",
    "unsupported_country_region_territory": "permission",
    "authentication_error": "auth",  # Anthropic
    "billing_error": "billing_quota",
    "rate_limit_error": "rate_limit",
    "overloaded_error": "overloaded",
    "request_too_large": "payload_too_large",
    "timeout_error": "timeout",
    "resource_exhausted": "rate_limit",  # Google
    "unavailable": "overloaded",
    "deadline_exceeded": "timeout",
    "unauthenticated": "auth",
    "insufficient_credits": "billing_quota",  # OpenRouter
}

# Codes too broad to decide alone: a base reason, like a status, that the message may refine.
GENERIC_CODES: Final[dict[str, Reason]] = {
    "invalid_request_error": "bad_request",
    "invalid_argument": "bad_request",
    "failed_precondition": "bad_request",
    "not_found_error": "not_found",
    "not_found": "not_found",
    "permission_error": "permission",
    "permission_denied": "permission",
    "api_error": "server_error",
    "server_error": "server_error",
    "internal": "server_error",
    "provider_error": "server_error",
}

STATUS_REASONS: Final[dict[int, Reason]] = {
    400: "bad_request",
    401: "auth",
    402: "billing_quota",
    403: "permission",
    404: "not_found",
    408: "timeout",
    409: "conflict",
    410: "not_found",
    413: "payload_too_large",
    422: "bad_request",
    425: "conflict",
    429: "rate_limit",
    503: "overloaded",
    529: "overloaded",
}

# Which message meanings may replace a base reason; any other base stands as it is.
REFINES: Final[dict[Reason, frozenset[Reason]]] = {
    "bad_request": frozenset(
        {
            "context_overflow",
            "content_policy",
            "billing_quota",
            "auth",
            "model_not_found",
            "payload_too_large",
        }
    ),
    "rate_limit": frozenset({"billing_quota"}),
    "permission": frozenset({"billing_quota"}),
    "not_found": frozenset({"model_not_found"}),
    "server_error": frozenset({"overloaded", "insufficient_memory"}),
}

_TRANSPORT: Final[dict[str, Reason]] = {
    "TimeoutException": "timeout",
    "NetworkError": "connection",  # ConnectError, ReadError, WriteError, CloseError
    "RemoteProtocolError": "connection",
    "ProxyError": "connection",
}
_SDK: Final[dict[str, Reason]] = {"APITimeoutError": "timeout", "APIConnectionError": "connection"}

# (top-level package, class name) -> reason; the first hit along the MRO decides.
EXCEPTION_REASONS: Final[dict[tuple[str, str], Reason]] = {
    ("builtins", "TimeoutError"): "timeout",  # also asyncio.TimeoutError, socket.timeout
    ("builtins", "ConnectionError"): "connection",  # reset, refused, aborted, broken pipe
    ("asyncio", "TimeoutError"): "timeout",
    ("socket", "gaierror"): "connection",
    ("http", "IncompleteRead"): "connection",
    **{(package, name): r for package in ("openai", "anthropic") for name, r in _SDK.items()},
    **{(p, name): r for p in ("httpx", "httpx2", "httpcore", "httpcore2") for name, r in _TRANSPORT.items()},
    ("aiohttp", "ServerTimeoutError"): "timeout",
    ("aiohttp", "ClientConnectionError"): "connection",
    ("aiohttp", "ClientPayloadError"): "connection",
    ("requests", "ConnectTimeout"): "timeout",  # before its ConnectionError base
    ("requests", "Timeout"): "timeout",
    ("requests", "ConnectionError"): "connection",
    ("requests", "ChunkedEncodingError"): "connection",
    ("urllib3", "NewConnectionError"): "connection",  # before its ConnectTimeoutError base
    ("urllib3", "TimeoutError"): "timeout",
    ("urllib3", "ProtocolError"): "connection",
}
# For ``error_type=`` strings recorded on events, where only the class name survives.
EXCEPTION_NAMES: Final[dict[str, Reason]] = {name: r for (_, name), r in EXCEPTION_REASONS.items()}


class _Phrases(NamedTuple):
    """Phrases that carry a meaning; the regex runs only if one of the cheap ``gates`` occurs."""

    gates: tuple[str, ...]
    pattern: str


# Checked in this order on the lower-cased message; the first match is its meaning.
PHRASES: Final[dict[Reason, _Phrases]] = {
    "billing_quota": _Phrases(
        ("insufficient", "quota", "credit", "billing", "payment", "usage limit"),
        r"insufficient[_ ](?:quota|credits?|balance|funds)|exceeded your current quota"
        r"|credit balance is too low|billing[_ ](?:hard[_ ])?limit|billing details|plans? (?:&|and) billing"
        r"|payment required|purchase (?:more )?credits|api usage limits",
    ),
    "context_overflow": _Phrases(
        ("context", "too long", "token count", "reduce the length"),
        r"context[_ ]length[_ ]exceeded|maximum context length|prompt is too long|input is too long"
        r"|(?:input|prompt) token count.{0,40}exceeds the maximum|reduce the length of the messages"
        r"|exceeds? (?:the |your )?(?:model's )?(?:maximum )?context (?:window|length)",
    ),
    "content_policy": _Phrases(
        ("content", "safety system", "usage polic"),
        r"content[_ ](?:management |filtering )?polic(?:y|ies)|content[_ ]filter|safety system"
        r"|usage polic(?:y|ies)",
    ),
    "model_not_found": _Phrases(
        ("model", "no endpoints"),
        r"model_not_found|model\b.{0,80}?(?:does not exist|\bnot found)|(?:unknown|invalid) model\b"
        r"|no endpoints found|\Amodel: [\w.:/-]+\Z",
    ),
    "auth": _Phrases(
        ("api key", "api-key", "api_key", "apikey", "auth", "bearer token", "access token", "credential"),
        r"(?:invalid|incorrect|missing|expired|revoked) (?:x-)?api[ _-]?key|invalid_api_key"
        r"|api key (?:is )?(?:not valid|invalid|expired|revoked)|did(?:n't| not) provide an api key"
        r"|invalid (?:authentication|auth token|bearer token|access token|credentials)"
        r"|authentication (?:failed|required)|unauthori[sz]ed|unauthenticated",
    ),
    "payload_too_large": _Phrases(
        ("too large", "too_large", "size", "bytes"),
        r"request[_ ](?:entity[_ ])?too[_ ]large|payload too large|maximum (?:request|body|upload) size"
        r"|exceeds the maximum allowed number of bytes",
    ),
    "rate_limit": _Phrases(
        ("rate limit", "rate-limit", "rate_limit", "ratelimit", "too many requests", "throttl"),
        r"\brate[ _-]?limit(?:s|ed|ing)?\b|rate_limit_exceeded|too many requests|throttl(?:ed|ing)\b",
    ),
    "overloaded": _Phrases(
        ("overloaded", "over capacity", "unavailable", "not ready"),
        r"overloaded\b|over capacity|temporarily unavailable|service unavailable|not ready yet",
    ),
    "insufficient_memory": _Phrases(
        ("memory",), r"requires more (?:system |gpu )?memory|insufficient (?:system |gpu )?memory"
    ),
    "server_error": _Phrases(
        ("internal", "server", "gateway", "provider returned"),
        r"internal server error|internal error\b|server had an error|bad gateway|gateway time-?out"
        r"|server[_ ]error\b|provider returned error",
    ),
    "timeout": _Phrases(
        ("timed out", "timeout", "deadline", "timedout", "timed_out"),
        r"timed out\b|timeout (?:of [\d.]+ ?m?s )?exceeded|deadline[_ ]exceeded"
        r"|(?:read|connect|connection|request)[_ ]timeout\b|etimedout|err_timed_out",
    ),
    "connection": _Phrases(
        (
            "connect",
            "econn",
            "broken pipe",
            "name or service",
            "name resolution",
            "nodename",
            "resolve host",
            "getaddrinfo",
            "err_",
            "unreachable",
            "no route",
        ),
        r"connection (?:error|reset|refused|aborted|closed|lost|dropped|failed)"
        r"|econn(?:reset|refused|aborted)|broken pipe|failed to establish a new connection"
        r"|name or service not known|temporary failure in name resolution|nodename nor servname"
        r"|getaddrinfo failed|could not resolve host|err_name_not_resolved|err_connection_"
        r"|err_internet_disconnected|server disconnected|remote end closed connection"
        r"|network is unreachable|no route to host",
    ),
    "permission": _Phrases(
        ("permission", "forbidden", "not have", "not allowed", "not authorized", "not permitted"),
        r"permission denied|forbidden\b|(?:do|does) not have (?:access|permission)"
        r"|not (?:allowed|authorized|permitted) to|insufficient permissions?",
    ),
    "not_found": _Phrases(
        ("no such file", "not found", "does not exist"),
        r"no such file or directory|not found\b|does not exist",
    ),
    "bad_request": _Phrases(
        (
            "invalid",
            "bad request",
            "malformed",
            "validation",
            "missing",
            "unknown",
            "unrecognized",
            "unsupported",
        ),
        r"invalid value for\b|bad request\b|malformed\b|validation error"
        r"|(?:missing required|unknown|unrecognized|unsupported|invalid) "
        r"(?:parameter|argument|field|request)",
    ),
}
MEANINGS: Final = tuple(
    (reason, phrases.gates, re.compile(phrases.pattern)) for reason, phrases in PHRASES.items()
)
