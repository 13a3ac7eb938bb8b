"""classify_error: provider errors, SDK exceptions and plain messages get the right verdict."""

from __future__ import annotations

import email.message
import email.utils
import re
import socket
import time
import urllib.error
from typing import Any, get_args

import aiohttp
import anthropic
import httpx2
import openai
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from hermes_stream import classify
from hermes_stream.classify import POLICIES, ErrorClassification, Reason, classify_error
from hermes_stream.workload_catalog import API_ERRORS, CONTEXT_ERRORS, TOOLS

OPENAI_URL = "https://api.openai.com/v1/chat/completions"
ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"


def openai_error(
    cls: type[openai.APIStatusError],
    status: int,
    message: str,
    *,
    type_: str | None = "invalid_request_error",
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> openai.APIStatusError:
    """An OpenAI status error as the SDK builds it: the inner error object is the body."""
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    request = httpx2.Request("POST", OPENAI_URL)
    response = httpx2.Response(status, request=request, headers=headers, json=body)
    return cls(f"Error code: {status} - {message}", response=response, body=body["error"])


def anthropic_error(
    cls: type[anthropic.APIStatusError],
    status: int,
    type_: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
) -> anthropic.APIStatusError:
    """An Anthropic status error as the SDK builds it: the whole response JSON is the body."""
    body = {
        "type": "error",
        "error": {"type": type_, "message": message},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }
    request = httpx2.Request("POST", ANTHROPIC_URL)
    response = httpx2.Response(status, request=request, headers=headers, json=body)
    return cls(f"Error code: {status} - {body}", response=response, body=body)


def verdict(result: ErrorClassification) -> tuple[str, str, bool]:
    return result.category, result.reason, result.should_retry


RETRY = ("retryable", True)
NO_RETRY = ("permanent", False)


# -- plain messages, with and without a status -------------------------------------------


@pytest.mark.parametrize(
    ("message", "status", "expected"),
    [
        ("Rate limit reached for gpt-4o on tokens per min (TPM)", 429, ("retryable", "rate_limit", True)),
        ("Too Many Requests", None, ("retryable", "rate_limit", True)),
        ("whatever the body says", 429, ("retryable", "rate_limit", True)),
        ("You exceeded your current quota, please check your plan and billing details.", 429, NO_RETRY),
        ("Your credit balance is too low to access the Anthropic API.", 400, NO_RETRY),
        ("Overloaded", 529, ("retryable", "overloaded", True)),
        ("Service Unavailable", 503, ("retryable", "overloaded", True)),
        ("Internal server error", 500, ("retryable", "server_error", True)),
        ("Bad gateway.", 502, ("retryable", "server_error", True)),
        ("upstream timed out", 504, ("retryable", "server_error", True)),
        ("no idea", 507, ("retryable", "server_error", True)),
        ("Request Timeout", 408, ("retryable", "timeout", True)),
        ("Conflict", 409, ("retryable", "conflict", True)),
        ("Too Early", 425, ("retryable", "conflict", True)),
        ("prompt is too long: 210000 tokens > 200000 maximum", 400, ("permanent", "context_overflow", False)),
        (
            "This model's maximum context length is 128000 tokens.",
            None,
            ("permanent", "context_overflow", False),
        ),
        (
            "Request exceeds the maximum allowed number of bytes.",
            413,
            ("permanent", "payload_too_large", False),
        ),
        ("invalid x-api-key", 401, ("permanent", "auth", False)),
        ("API key not valid. Please pass a valid API key.", 400, ("permanent", "auth", False)),
        (
            "Your request was rejected as a result of our safety system.",
            400,
            ("permanent", "content_policy", False),
        ),
        ("Forbidden", 403, ("permanent", "permission", False)),
        ("Your organization has reached its billing hard limit", 403, ("permanent", "billing_quota", False)),
        ("model: claude-opus-9", 404, ("permanent", "model_not_found", False)),
        ("The model `gpt-9` does not exist or you do not have access to it.", 404, NO_RETRY),
        ("Not Found", 404, ("permanent", "not_found", False)),
        ("Unprocessable Entity", 422, ("permanent", "bad_request", False)),
        ("I'm a teapot", 418, ("permanent", "bad_request", False)),
        ("Request timed out.", None, ("retryable", "timeout", True)),
        ("Connection error.", None, ("retryable", "connection", True)),
        ("[Errno 111] Connection refused", None, ("retryable", "connection", True)),
        ("Temporary failure in name resolution", None, ("retryable", "connection", True)),
        ("something odd happened", None, ("unknown", "unknown", False)),
        ("", None, ("unknown", "unknown", False)),
    ],
)
def test_message_table(message: str, status: int | None, expected: tuple[Any, ...]) -> None:
    result = classify_error(message, status)
    if len(expected) == 2:  # category and should_retry only, the reason is checked elsewhere
        assert (result.category, result.should_retry) == expected
    else:
        assert verdict(result) == expected
    assert result.status_code == status


@pytest.mark.parametrize(
    ("message", "status", "reason"),
    [
        # 400 is never retried, whatever words the message holds.
        ("Invalid value for 'retry_policy': expected an object", 400, "bad_request"),
        ("Invalid value for 'retry_policy': expected an object", None, "bad_request"),
        ("Invalid value for 'rate_limit_policy': expected an object", None, "bad_request"),
        ("Invalid 'timeout': must be a positive number", 400, "bad_request"),
        ("You hit the rate limit of the playground", 400, "bad_request"),
        # "DNS" or "temporary" in a message is not a network failure.
        ("DNS record name must be lowercase", 422, "bad_request"),
        ("DNS record name must be lowercase", None, "unknown"),
        ("temporary files are kept for 24h", None, "unknown"),
        ("The timeout field is deprecated", None, "unknown"),
        # Retry advice alone is no evidence: unknown, not retryable.
        ("please retry later", None, "unknown"),
        ("Please try again later.", None, "unknown"),
        # Anthropic's rate-limit text asks to reduce the prompt length: still a rate limit.
        (
            "Please reduce the prompt length or the maximum tokens requested, or try again later.",
            429,
            "rate_limit",
        ),
        ("Set separate limits for input and output tokens", None, "unknown"),
        # Words inside identifiers do not count.
        ("unknown field 'max_context_length_override'", None, "bad_request"),
    ],
)
def test_loose_words_do_not_decide(message: str, status: int | None, reason: Reason) -> None:
    result = classify_error(message, status)
    assert result.reason == reason
    assert result.should_retry is False or reason == "rate_limit"


_PHRASE_EXAMPLES: dict[Reason, tuple[str, ...]] = {
    "billing_quota": (
        "Error: insufficient_quota",
        "Insufficient balance on your account",
        "You exceeded your current quota.",
        "Your credit balance is too low",
        "Billing hard limit has been reached",
        "Please check your plan and billing details",
        "Go to Plans & Billing to upgrade",
        "402 Payment Required",
        "Purchase more credits to continue",
        "You have reached your specified API usage limits.",
    ),
    "context_overflow": (
        "context_length_exceeded",
        "This endpoint's maximum context length is 131072 tokens.",
        "prompt is too long: 210000 tokens > 200000 maximum",
        "Input is too long for requested model.",
        "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
        "Please reduce the length of the messages.",
        "Your request exceeds the model's context window",
    ),
    "content_policy": (
        "The prompt triggered Azure OpenAI's content management policy.",
        "Output blocked by content filtering policy",
        "content_filter triggered",
        "rejected as a result of our safety system",
        "This request may violate our usage policies.",
    ),
    "model_not_found": (
        "model_not_found",
        "The model `gpt-4.1-nano` does not exist or you do not have access to it.",
        'model "qwen2.5-coder:32b" not found, try pulling it first',
        "Unknown model: gpt-99",
        "No endpoints found for meta-llama/llama-3.3-70b-instruct.",
        "model: claude-opus-4-1",
    ),
    "auth": (
        "Incorrect API key provided: sk-****ab12",
        "invalid_api_key",
        "API key not valid. Please pass a valid API key.",
        "API key is expired",
        "You didn't provide an API key.",
        "Invalid bearer token",
        "Authentication failed for this request",
        "401 Unauthorized",
        "Request is unauthenticated",
    ),
    "payload_too_large": (
        "413 Request Entity Too Large",
        "Payload Too Large",
        "File exceeds maximum upload size of 512 MB",
        "Request exceeds the maximum allowed number of bytes.",
    ),
    "rate_limit": (
        "Rate limit reached for gpt-4o",
        "rate_limit_exceeded",
        "You are being rate limited.",
        "429 Too Many Requests",
        "Requests are being throttled",
    ),
    "overloaded": (
        "Overloaded",
        "The engine is currently over capacity",
        "Service temporarily unavailable",
        "503 Service Unavailable",
        "The server is overloaded or not ready yet.",
    ),
    "insufficient_memory": ("model requires more system memory (21.4 GiB) than is available (15.2 GiB)",),
    "server_error": (
        "Internal Server Error",
        "An internal error has occurred.",
        "The server had an error while processing your request.",
        "502 Bad Gateway",
        "504 Gateway Time-out",
        "server_error",
        "Provider returned error",
    ),
    "timeout": (
        "Request timed out.",
        "Navigation timeout of 30000 ms exceeded",
        "DEADLINE_EXCEEDED",
        "read timeout=600",
        "connect ETIMEDOUT 10.0.0.1:443",
        "net::ERR_TIMED_OUT",
    ),
    "connection": (
        "Connection error.",
        "read ECONNRESET",
        "[Errno 32] Broken pipe",
        "Failed to establish a new connection",
        "[Errno -2] Name or service not known",
        "Temporary failure in name resolution",
        "nodename nor servname provided, or not known",
        "getaddrinfo failed",
        "Could not resolve host: api.openai.com",
        "net::ERR_NAME_NOT_RESOLVED",
        "net::ERR_CONNECTION_REFUSED",
        "net::ERR_INTERNET_DISCONNECTED",
        "Server disconnected without sending a response.",
        "Remote end closed connection without response",
        "[Errno 101] Network is unreachable",
        "No route to host",
    ),
    "permission": (
        "Permission denied",
        "403 Forbidden",
        "Your API key does not have permission to use the specified resource.",
        "You are not allowed to sample from this model",
        "Insufficient permissions for this operation",
    ),
    "not_found": ("No such file or directory", "Not Found", "The requested file does not exist"),
    "bad_request": (
        "Invalid value for 'temperature'",
        "400 Bad Request",
        "Malformed JSON in request body",
        "1 validation error for ChatRequest",
        "Missing required parameter: 'messages'.",
        "Unrecognized request argument supplied: foo",
        "Unsupported parameter: 'max_tokens'",
    ),
}


@pytest.mark.parametrize(
    ("reason", "message"),
    [(reason, message) for reason, messages in _PHRASE_EXAMPLES.items() for message in messages],
)
def test_each_phrase_is_recognised_in_a_bare_message(reason: Reason, message: str) -> None:
    assert classify_error(message).reason == reason


def test_only_the_start_of_a_huge_message_is_read() -> None:
    assert classify_error("Request timed out. " + "x" * 100_000).reason == "timeout"
    assert classify_error("x" * 100_000 + " Request timed out.").reason == "unknown"


# -- the workload's own messages ----------------------------------------------------------


class _Sample(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return {"model": "gpt-4o", "url": "https://example.com/a", "path": "src/app.py"}.get(key, "7")


def _filled(template: str) -> str:
    return template.format_map(_Sample())


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(e, id=f"{provider}-{e.error_type}-{e.http_status}")
        for provider, es in API_ERRORS.items()
        for e in es
    ],
)
def test_every_catalog_api_error_retries_exactly_when_a_retry_can_help(error: Any) -> None:
    message = _filled(error.message)
    result = classify_error(message, error.http_status, error_type=error.error_type)
    assert result.should_retry is not error.fatal
    assert result.category == ("permanent" if error.fatal else "retryable")
    # Without the provider code, only Google's per-minute quota reads as billing.
    bare = classify_error(message, error.http_status)
    if error.error_type == "RESOURCE_EXHAUSTED":
        assert bare.reason == "billing_quota"
    else:
        assert bare.reason == result.reason


@pytest.mark.parametrize("provider", sorted(CONTEXT_ERRORS))
def test_every_catalog_context_error_is_a_permanent_overflow(provider: str) -> None:
    error = CONTEXT_ERRORS[provider]
    message = _filled(error.message)
    for result in (
        classify_error(message, error.http_status, error_type=error.error_type),
        classify_error(message, error.http_status),
        classify_error(message),
    ):
        assert verdict(result) == ("permanent", "context_overflow", False)


_TOOL_REASONS: dict[str, Reason] = {
    "Command timed out after 180s": "timeout",
    "Execution timed out after 300s": "timeout",
    "Search timed out after 60s": "timeout",
    "Timed out fetching {url} after 30s": "timeout",
    "Navigation timeout of 30000 ms exceeded": "timeout",
    "net::ERR_NAME_NOT_RESOLVED at {url}": "connection",
    "HTTP 429 from search API: rate limit exceeded": "rate_limit",
    "Discord API error 429: You are being rate limited.": "rate_limit",
    "HTTP 502 from search API: Bad Gateway": "server_error",
    "HTTP 403 fetching {url}": "permission",
    "HTTP 403 fetching {url} (bot challenge)": "permission",
    "PermissionError: [Errno 13] Permission denied: '/usr/local/etc/app.yaml'": "permission",
    "HTTP 404 fetching {url}": "not_found",
    "FileNotFoundError: [Errno 2] No such file or directory: '{path}'": "not_found",
    "Command failed with exit code 127: bash: line 1: rg: command not found": "not_found",
    "old_string not found in {path}": "not_found",
    "HTTP 415 fetching {url}: unsupported image type": "bad_request",
    "Telegram API error 400: Bad Request: chat not found": "bad_request",
}


@pytest.mark.parametrize(
    "error", [pytest.param(e, id=e.message[:40]) for spec in TOOLS.values() for e in spec.errors]
)
def test_every_catalog_tool_error_is_classified_sensibly(error: Any) -> None:
    result = classify_error(_filled(error.message), error.http_status)
    assert result.reason == _TOOL_REASONS.get(error.message, "unknown")


# -- real OpenAI exceptions -----------------------------------------------------------------


def test_openai_rate_limit_honours_retry_after() -> None:
    exc = openai_error(
        openai.RateLimitError,
        429,
        "Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM).",
        type_="tokens",
        code="rate_limit_exceeded",
        headers={"retry-after": "7"},
    )
    result = classify_error(exc)
    assert verdict(result) == ("retryable", "rate_limit", True)
    assert result.backoff_seconds == 7.0 and result.from_retry_after
    assert result.status_code == 429 and result.error_type == "rate_limit_exceeded"


def test_openai_insufficient_quota_is_permanent_even_with_retry_after() -> None:
    exc = openai_error(
        openai.RateLimitError,
        429,
        "You exceeded your current quota, please check your plan and billing details.",
        type_="insufficient_quota",
        code="insufficient_quota",
        headers={"retry-after": "20"},
    )
    result = classify_error(exc)
    assert verdict(result) == ("permanent", "billing_quota", False)
    assert result.backoff_seconds == 0.0 and not result.from_retry_after
    assert result.error_type == "insufficient_quota"


def test_openai_retry_after_ms_is_preferred() -> None:
    exc = openai_error(
        openai.RateLimitError,
        429,
        "Rate limit reached",
        code="rate_limit_exceeded",
        headers={"retry-after-ms": "250"},
    )
    assert classify_error(exc).backoff_seconds == 0.25


@pytest.mark.parametrize(
    ("cls", "status", "code", "message", "reason"),
    [
        (
            openai.AuthenticationError,
            401,
            "invalid_api_key",
            "Incorrect API key provided: sk-proj-****ab12.",
            "auth",
        ),
        (
            openai.NotFoundError,
            404,
            "model_not_found",
            "The model `gpt-9` does not exist or you do not have access to it.",
            "model_not_found",
        ),
        (
            openai.BadRequestError,
            400,
            "context_length_exceeded",
            "This model's maximum context length is 128000 tokens. "
            "However, your messages resulted in 130000 tokens.",
            "context_overflow",
        ),
        (
            openai.BadRequestError,
            400,
            "content_policy_violation",
            "Your request was rejected as a result of our safety system.",
            "content_policy",
        ),
        (
            openai.BadRequestError,
            400,
            None,
            "Invalid value for 'retry_policy': expected an object.",
            "bad_request",
        ),
        (
            openai.PermissionDeniedError,
            403,
            "unsupported_country_region_territory",
            "Country not supported",
            "permission",
        ),
    ],
)
def test_openai_permanent_errors(
    cls: type[openai.APIStatusError], status: int, code: str | None, message: str, reason: Reason
) -> None:
    result = classify_error(openai_error(cls, status, message, code=code))
    assert verdict(result) == ("permanent", reason, False)
    assert result.status_code == status
    assert result.error_type == (code or "invalid_request_error")


@pytest.mark.parametrize(
    ("status", "message", "reason"),
    [
        (500, "The server had an error while processing your request.", "server_error"),
        (502, "Bad gateway.", "server_error"),
        (503, "The server is overloaded or not ready yet.", "overloaded"),
        (500, "The engine is currently overloaded, please try again later", "overloaded"),
    ],
)
def test_openai_server_errors_are_retryable(status: int, message: str, reason: Reason) -> None:
    exc = openai_error(openai.InternalServerError, status, message, type_="server_error", code=None)
    assert verdict(classify_error(exc)) == ("retryable", reason, True)


def test_openai_timeout_and_connection_errors() -> None:
    request = httpx2.Request("POST", OPENAI_URL)
    timeout = classify_error(openai.APITimeoutError(request=request))
    assert verdict(timeout) == ("retryable", "timeout", True)
    assert timeout.error_type == "APITimeoutError" and timeout.status_code is None
    connection = classify_error(openai.APIConnectionError(request=request))
    assert verdict(connection) == ("retryable", "connection", True)


def test_openai_errors_raised_by_the_real_client() -> None:
    body = {
        "error": {
            "message": "You exceeded your current quota",
            "type": "insufficient_quota",
            "code": "insufficient_quota",
        }
    }

    def quota(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(429, headers={"retry-after": "1"}, json=body)

    def stall(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("timed out", request=request)

    results = []
    for handler in (quota, stall):
        client = openai.OpenAI(
            api_key="sk-test",
            max_retries=0,
            http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        )
        with pytest.raises(openai.OpenAIError) as excinfo:
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        results.append(classify_error(excinfo.value))
        client.close()
    assert verdict(results[0]) == ("permanent", "billing_quota", False)
    assert verdict(results[1]) == ("retryable", "timeout", True)


# -- real Anthropic exceptions --------------------------------------------------------------


@pytest.mark.parametrize(
    "cls", [anthropic.APIStatusError, anthropic.InternalServerError, anthropic.OverloadedError]
)
def test_anthropic_529_overloaded_is_retryable(cls: type[anthropic.APIStatusError]) -> None:
    result = classify_error(anthropic_error(cls, 529, "overloaded_error", "Overloaded"))
    assert verdict(result) == ("retryable", "overloaded", True)
    assert result.status_code == 529 and result.error_type == "overloaded_error"
    assert result.backoff_seconds == POLICIES["overloaded"].backoff_seconds and not result.from_retry_after


def test_anthropic_rate_limit_honours_retry_after() -> None:
    message = (
        "This request would exceed the rate limit for your organization of 30,000 input tokens per minute."
    )
    exc = anthropic_error(
        anthropic.RateLimitError, 429, "rate_limit_error", message, headers={"retry-after": "12"}
    )
    result = classify_error(exc)
    assert verdict(result) == ("retryable", "rate_limit", True)
    assert result.backoff_seconds == 12.0 and result.from_retry_after


@pytest.mark.parametrize(
    ("cls", "status", "type_", "message", "expected"),
    [
        (
            anthropic.BadRequestError,
            400,
            "invalid_request_error",
            "prompt is too long: 210000 tokens > 200000 maximum",
            ("permanent", "context_overflow", False),
        ),
        (
            anthropic.BadRequestError,
            400,
            "invalid_request_error",
            "messages: text content blocks must be non-empty",
            ("permanent", "bad_request", False),
        ),
        (
            anthropic.BadRequestError,
            400,
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API.",
            ("permanent", "billing_quota", False),
        ),
        (
            anthropic.AuthenticationError,
            401,
            "authentication_error",
            "invalid x-api-key",
            ("permanent", "auth", False),
        ),
        (
            anthropic.PermissionDeniedError,
            403,
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
            ("permanent", "permission", False),
        ),
        (
            anthropic.NotFoundError,
            404,
            "not_found_error",
            "model: claude-opus-9",
            ("permanent", "model_not_found", False),
        ),
        (
            anthropic.NotFoundError,
            404,
            "not_found_error",
            "File not found: file_011",
            ("permanent", "not_found", False),
        ),
        (
            anthropic.ContentTooLargeError,
            413,
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
            ("permanent", "payload_too_large", False),
        ),
        (
            anthropic.InternalServerError,
            500,
            "api_error",
            "Internal server error",
            ("retryable", "server_error", True),
        ),
    ],
)
def test_anthropic_documented_errors(
    cls: type[anthropic.APIStatusError],
    status: int,
    type_: str,
    message: str,
    expected: tuple[str, str, bool],
) -> None:
    result = classify_error(anthropic_error(cls, status, type_, message))
    assert verdict(result) == expected
    assert result.status_code == status and result.error_type == type_


def test_anthropic_overloaded_raised_by_the_real_client() -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(529, headers={"retry-after": "3"}, json=body)

    client = anthropic.Anthropic(
        api_key="sk-ant-test",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    with pytest.raises(anthropic.APIStatusError) as excinfo:
        client.messages.create(
            model="claude-test", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    client.close()
    result = classify_error(excinfo.value)
    assert verdict(result) == ("retryable", "overloaded", True)
    assert result.backoff_seconds == 3.0 and result.from_retry_after


def test_anthropic_stream_error_without_a_status_uses_the_error_type() -> None:
    # A mid-stream error event arrives after a 200: only the body says what went wrong.
    request = httpx2.Request("POST", ANTHROPIC_URL)
    exc = anthropic.APIError(
        "Overloaded", request, body={"type": "overloaded_error", "message": "Overloaded"}
    )
    assert verdict(classify_error(exc)) == ("retryable", "overloaded", True)


# -- httpx, aiohttp, requests-shaped and standard-library exceptions ----------------------


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (httpx2.ConnectTimeout("timed out"), "timeout"),
        (httpx2.ReadTimeout("The read operation timed out"), "timeout"),
        (httpx2.PoolTimeout(""), "timeout"),
        (httpx2.ConnectError("[Errno -2] Name or service not known"), "connection"),
        (httpx2.RemoteProtocolError("Server disconnected without sending a response."), "connection"),
        (TimeoutError(), "timeout"),
        (ConnectionResetError(104, "Connection reset by peer"), "connection"),
        (ConnectionRefusedError(111, "Connection refused"), "connection"),
        (BrokenPipeError(), "connection"),
        (socket.gaierror(-2, "Name or service not known"), "connection"),
        (aiohttp.ServerDisconnectedError(), "connection"),
        (aiohttp.ServerTimeoutError("Timeout on reading data from socket"), "timeout"),
        (aiohttp.ConnectionTimeoutError(), "timeout"),
        (aiohttp.ClientPayloadError("Response payload is not completed"), "connection"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value,
)
def test_transport_exceptions_by_class(exc: BaseException, reason: Reason) -> None:
    result = classify_error(exc)
    assert result.reason == reason and result.should_retry
    assert result.error_type == type(exc).__name__


def test_same_class_name_from_another_package_is_not_a_transport_error() -> None:
    import tarfile

    assert classify_error(tarfile.ReadError("file could not be opened successfully")).reason == "unknown"


def test_httpx_status_error_reads_response_status_and_http_date_retry_after() -> None:
    request = httpx2.Request("GET", "https://example.com/v1")
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    response = httpx2.Response(503, request=request, headers={"Retry-After": later})
    exc = httpx2.HTTPStatusError("Server error '503 Service Unavailable'", request=request, response=response)
    result = classify_error(exc)
    assert verdict(result) == ("retryable", "overloaded", True)
    assert result.from_retry_after and 25.0 <= result.backoff_seconds <= 30.0


def _aiohttp_response_error(
    status: int, message: str, headers: dict[str, str]
) -> aiohttp.ClientResponseError:
    url = URL("https://api.example.com/v1/chat")
    info = aiohttp.RequestInfo(url, "POST", CIMultiDictProxy(CIMultiDict()), url)
    return aiohttp.ClientResponseError(
        info, (), status=status, message=message, headers=CIMultiDictProxy(CIMultiDict(headers))
    )


def test_aiohttp_response_error_reads_status_and_headers_without_deprecated_code() -> None:
    # pytest turns warnings into errors: reading aiohttp's deprecated ``code`` would fail this test.
    result = classify_error(_aiohttp_response_error(429, "Too Many Requests", {"Retry-After": "2"}))
    assert verdict(result) == ("retryable", "rate_limit", True)
    assert result.backoff_seconds == 2.0 and result.status_code == 429
    assert classify_error(_aiohttp_response_error(401, "Unauthorized", {})).reason == "auth"


class _RequestsResponse:
    """The shape of ``requests.Response`` that matters here (requests is not installed)."""

    def __init__(self, status_code: int, headers: dict[str, str]) -> None:
        self.status_code = status_code
        self.headers = headers


class _RequestsHTTPError(OSError):
    def __init__(self, message: str, response: _RequestsResponse) -> None:
        super().__init__(message)
        self.response = response


class _RequestsConnectionError(OSError):
    pass


class _RequestsConnectTimeout(_RequestsConnectionError):
    pass


for _cls, _name in (
    (_RequestsHTTPError, "HTTPError"),
    (_RequestsConnectionError, "ConnectionError"),
    (_RequestsConnectTimeout, "ConnectTimeout"),
):
    _cls.__module__, _cls.__name__ = "requests.exceptions", _name


def test_requests_shaped_errors() -> None:
    http_error = _RequestsHTTPError("429 Client Error", _RequestsResponse(429, {"Retry-After": "5"}))
    result = classify_error(http_error)
    assert (result.reason, result.backoff_seconds, result.status_code) == ("rate_limit", 5.0, 429)
    assert classify_error(_RequestsConnectTimeout("Max retries exceeded")).reason == "timeout"
    refused = _RequestsConnectionError("Failed to establish a new connection: [Errno 111] Connection refused")
    assert classify_error(refused).reason == "connection"


def test_urllib_http_error_reads_int_code_and_headers() -> None:
    headers = email.message.Message()
    headers["Retry-After"] = "4"
    exc = urllib.error.HTTPError("https://example.com", 429, "Too Many Requests", headers, None)
    result = classify_error(exc)
    assert (result.reason, result.status_code, result.backoff_seconds) == ("rate_limit", 429, 4.0)
    exc.close()


def test_a_wrapper_raised_from_an_sdk_error_is_classified_by_its_cause() -> None:
    try:
        try:
            raise httpx2.ReadTimeout("timed out")
        except httpx2.ReadTimeout as inner:
            raise RuntimeError("model call failed") from inner
    except RuntimeError as outer:
        result = classify_error(outer)
    assert (result.reason, result.error_type) == ("timeout", "ReadTimeout")


# -- evidence order and odd inputs -----------------------------------------------------------


def test_response_code_argument_wins_over_the_errors_own_status() -> None:
    exc = openai_error(openai.InternalServerError, 500, "boom", type_=None)
    assert classify_error(exc, 429).reason == "rate_limit"
    assert classify_error(RuntimeError("boom"), 503).reason == "overloaded"


def test_provider_code_beats_status_and_message() -> None:
    # An overloaded_error inside a 500 is still overloaded; rate_limit_exceeded beats a billing-ish text.
    assert classify_error("Internal server error", 500, error_type="overloaded_error").reason == "overloaded"
    assert (
        classify_error("check your billing details", 429, error_type="rate_limit_exceeded").reason
        == "rate_limit"
    )


def test_event_error_type_names_an_exception_class() -> None:
    result = classify_error("", None, error_type="APITimeoutError")
    assert verdict(result) == ("retryable", "timeout", True) and result.error_type == "APITimeoutError"


@pytest.mark.parametrize("value", ["soon", "-3", "nan", "inf", "Wed, 21 Oct 2015 07:28:00"])
def test_unusable_retry_after_falls_back_to_the_default_backoff(value: str) -> None:
    exc = anthropic_error(
        anthropic.RateLimitError, 429, "rate_limit_error", "slow down", headers={"retry-after": value}
    )
    result = classify_error(exc)
    assert result.backoff_seconds == POLICIES["rate_limit"].backoff_seconds and not result.from_retry_after


def test_retry_after_in_the_past_means_now() -> None:
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    exc = anthropic_error(
        anthropic.RateLimitError, 429, "rate_limit_error", "slow down", headers={"retry-after": past}
    )
    result = classify_error(exc)
    assert result.backoff_seconds == 0.0 and result.from_retry_after


def test_malformed_attributes_do_not_break_classification() -> None:
    exc = RuntimeError("Connection reset by peer")
    for name, value in (
        ("status_code", "five hundred"),
        ("body", "not a dict"),
        ("headers", object()),
        ("code", True),
    ):
        setattr(exc, name, value)
    result = classify_error(exc)
    assert (result.reason, result.status_code) == ("connection", None)


class _Hostile(Exception):
    """An exception whose attributes and text all blow up."""

    @property
    def response(self) -> object:
        raise RuntimeError("no response")

    @property
    def status_code(self) -> int:
        raise RuntimeError("no status")

    @property
    def headers(self) -> object:
        raise RuntimeError("no headers")

    def __str__(self) -> str:
        raise RuntimeError("no text")


class _ExplodingHeaders:
    def get(self, key: str) -> str:
        raise RuntimeError("bad header store")


def test_classification_never_raises() -> None:
    assert verdict(classify_error(_Hostile())) == ("unknown", "unknown", False)
    exc = ConnectionResetError("reset")
    exc.headers = _ExplodingHeaders()  # type: ignore[attr-defined]
    result = classify_error(exc)
    assert result.reason == "connection" and not result.from_retry_after


# -- the taxonomy table ------------------------------------------------------------------------


def test_every_reason_has_exactly_one_policy() -> None:
    assert set(POLICIES) == set(get_args(Reason))


def test_module_docstring_table_matches_policies() -> None:
    doc = classify.__doc__ or ""
    rows = re.findall(r"^\s{4}(\w+)\s+(retryable|permanent|unknown)\s+(\d+)\s+([\d.]+)$", doc, re.M)
    documented = {reason: (category, int(n), float(backoff)) for reason, category, n, backoff in rows}
    assert documented == {reason: tuple(policy) for reason, policy in POLICIES.items()}


def test_only_retryable_reasons_retry() -> None:
    for reason, policy in POLICIES.items():
        assert (policy.category == "retryable") == (policy.max_retries > 0), reason
        assert (policy.category == "retryable") == (policy.backoff_seconds > 0), reason
