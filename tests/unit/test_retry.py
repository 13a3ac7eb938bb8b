"""execute_with_retry and its async twin: retry what may be retried, exactly as long as allowed."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from typing import NoReturn

import anthropic
import httpx2
import pytest

from hermes_stream.classify import POLICIES, ErrorClassification
from hermes_stream.retry import Jitter, RetryAttempt, execute_with_retry, execute_with_retry_async


class Flaky:
    """Raises the given errors in turn, then returns ``"ok"``; counts its calls."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self, *args: object, **kwargs: object) -> str:
        self.calls += 1
        self.last_args = (args, kwargs)
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def sequence(*values: float) -> Callable[[], float]:
    """A deterministic stand-in for ``random.random``."""
    it: Iterator[float] = iter(values)
    return lambda: next(it)


def never(*args: object) -> NoReturn:
    """A sleep or callback that must not be called."""
    pytest.fail(f"called with {args}")


def rate_limited(retry_after: str | None = None) -> anthropic.RateLimitError:
    body = {"type": "error", "error": {"type": "rate_limit_error", "message": "Number of requests exceeded"}}
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    request = httpx2.Request("POST", "https://api.anthropic.com/v1/messages")
    response = httpx2.Response(429, request=request, headers=headers, json=body)
    return anthropic.RateLimitError(f"Error code: 429 - {body}", response=response, body=body)


def test_retries_until_success_with_exponential_backoff() -> None:
    fn = Flaky(TimeoutError(), ConnectionResetError(), ConnectionResetError())
    sleeps: list[float] = []
    result = execute_with_retry(fn, 1, key="v", jitter="none", sleep=sleeps.append)
    assert result == "ok" and fn.calls == 4
    assert fn.last_args == ((1,), {"key": "v"})
    timeout, connection = POLICIES["timeout"].backoff_seconds, POLICIES["connection"].backoff_seconds
    assert sleeps == [timeout, connection * 2, connection * 4]


def test_stops_at_the_reasons_retry_budget_and_reraises_the_last_error() -> None:
    errors = [TimeoutError(f"attempt {i}") for i in range(10)]
    fn = Flaky(*errors)
    sleeps: list[float] = []
    with pytest.raises(TimeoutError) as excinfo:
        execute_with_retry(fn, sleep=sleeps.append)
    budget = POLICIES["timeout"].max_retries
    assert fn.calls == budget + 1 and len(sleeps) == budget
    assert excinfo.value is errors[budget]


def test_max_attempts_caps_the_budget() -> None:
    fn = Flaky(*[ConnectionResetError() for _ in range(10)])
    sleeps: list[float] = []
    with pytest.raises(ConnectionResetError):
        execute_with_retry(fn, max_attempts=2, sleep=sleeps.append)
    assert fn.calls == 2 and len(sleeps) == 1


def test_max_attempts_cannot_raise_the_reasons_budget() -> None:
    fn = Flaky(*[TimeoutError() for _ in range(10)])
    with pytest.raises(TimeoutError):
        execute_with_retry(fn, max_attempts=10, sleep=lambda _: None)
    assert fn.calls == POLICIES["timeout"].max_retries + 1


def test_max_attempts_one_never_retries() -> None:
    fn = Flaky(TimeoutError())
    with pytest.raises(TimeoutError):
        execute_with_retry(fn, max_attempts=1, sleep=never)
    assert fn.calls == 1


def _fails_permanently() -> str:
    raise ValueError("Invalid value for 'retry_policy': expected an object")


@pytest.mark.parametrize(
    "error", [ValueError("Invalid value for 'model'"), PermissionError("Permission denied"), KeyError("x")]
)
def test_permanent_and_unknown_errors_are_raised_at_once_without_sleeping(error: Exception) -> None:
    fn = Flaky(error)
    with pytest.raises(type(error)) as excinfo:
        execute_with_retry(fn, sleep=never, on_retry=never)
    assert excinfo.value is error and fn.calls == 1


def test_the_original_traceback_is_kept() -> None:
    with pytest.raises(ValueError) as excinfo:
        execute_with_retry(_fails_permanently, sleep=never)
    assert traceback.extract_tb(excinfo.value.__traceback__)[-1].name == "_fails_permanently"


def test_retry_after_is_used_exactly_not_scaled_or_jittered() -> None:
    fn = Flaky(rate_limited("7"), rate_limited("7"), rate_limited("0.5"))
    sleeps: list[float] = []
    assert execute_with_retry(fn, jitter="full", rng=lambda: 0.01, sleep=sleeps.append) == "ok"
    assert sleeps == [7.0, 7.0, 0.5]


def test_retry_after_longer_than_max_delay_is_not_waited() -> None:
    fn = Flaky(rate_limited("600"))
    with pytest.raises(anthropic.RateLimitError):
        execute_with_retry(fn, max_delay=60.0, sleep=never)
    assert fn.calls == 1


def test_without_retry_after_the_reasons_backoff_is_the_base() -> None:
    fn = Flaky(rate_limited(), rate_limited())
    sleeps: list[float] = []
    execute_with_retry(fn, jitter="none", sleep=sleeps.append)
    base = POLICIES["rate_limit"].backoff_seconds
    assert sleeps == [base, base * 2]


def test_base_delay_overrides_the_reasons_backoff_and_max_delay_caps_it() -> None:
    fn = Flaky(*[rate_limited() for _ in range(4)])
    sleeps: list[float] = []
    execute_with_retry(fn, base_delay=1.0, max_delay=5.0, jitter="none", sleep=sleeps.append)
    assert sleeps == [1.0, 2.0, 4.0, 5.0]


@pytest.mark.parametrize(("jitter", "low", "high"), [("full", 0.0, 1.0), ("equal", 0.5, 1.0)])
def test_jitter_stays_within_its_bounds(jitter: Jitter, low: float, high: float) -> None:
    draws = [0.0, 0.999999, 0.5, 0.25, 0.75]
    fn = Flaky(*[rate_limited() for _ in draws])
    sleeps: list[float] = []
    execute_with_retry(
        fn, base_delay=2.0, max_delay=1000.0, jitter=jitter, rng=sequence(*draws), sleep=sleeps.append
    )
    caps = [2.0 * 2**n for n in range(len(draws))]
    assert all(low * cap <= delay < high * cap for delay, cap in zip(sleeps, caps, strict=True))
    assert sleeps[0] == low * caps[0]  # the lowest draw reaches the lower bound


def test_on_retry_sees_each_retry_before_its_sleep() -> None:
    events: list[tuple[str, object]] = []
    fn = Flaky(TimeoutError(), rate_limited("3"))

    def on_retry(attempt: RetryAttempt) -> None:
        events.append(("retry", (attempt.retry, attempt.classification.reason, attempt.delay)))

    execute_with_retry(fn, jitter="none", sleep=lambda s: events.append(("sleep", s)), on_retry=on_retry)
    timeout = POLICIES["timeout"].backoff_seconds
    assert events == [
        ("retry", (1, "timeout", timeout)),
        ("sleep", timeout),
        ("retry", (2, "rate_limit", 3.0)),
        ("sleep", 3.0),
    ]


def test_a_custom_classifier_decides() -> None:
    def everything_retries(error: BaseException) -> ErrorClassification:
        return ErrorClassification("retryable", "server_error", True, 1, 0.0)

    fn = Flaky(ValueError("would be permanent"))
    assert execute_with_retry(fn, classify=everything_retries, sleep=lambda _: None) == "ok"


def test_base_exceptions_are_not_caught() -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute_with_retry(interrupted, sleep=never)


@pytest.mark.parametrize(
    "options",
    [{"max_attempts": 0}, {"base_delay": -1.0}, {"max_delay": -1.0}, {"jitter": "sometimes"}],
)
def test_bad_options_are_rejected(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        execute_with_retry(Flaky(), **options)  # type: ignore[arg-type]


# -- async twin --------------------------------------------------------------------------------


class AsyncFlaky(Flaky):
    async def run(self, *args: object, **kwargs: object) -> str:
        return self(*args, **kwargs)


async def test_async_retries_then_succeeds_with_injected_sleep() -> None:
    fn = AsyncFlaky(rate_limited("2"), TimeoutError())
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    result = await execute_with_retry_async(fn.run, "a", jitter="none", sleep=sleep, flag=True)
    assert result == "ok" and fn.calls == 3 and fn.last_args == (("a",), {"flag": True})
    assert sleeps == [2.0, POLICIES["timeout"].backoff_seconds * 2]


async def test_async_permanent_error_is_raised_at_once() -> None:
    error = PermissionError("Permission denied")
    fn = AsyncFlaky(error)

    async def sleep(seconds: float) -> None:
        pytest.fail("must not sleep")

    with pytest.raises(PermissionError) as excinfo:
        await execute_with_retry_async(fn.run, sleep=sleep)
    assert excinfo.value is error and fn.calls == 1


async def test_async_stops_at_max_attempts() -> None:
    fn = AsyncFlaky(*[ConnectionResetError() for _ in range(5)])
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    with pytest.raises(ConnectionResetError):
        await execute_with_retry_async(fn.run, max_attempts=3, rng=lambda: 0.0, sleep=sleep)
    base = POLICIES["connection"].backoff_seconds
    assert fn.calls == 3 and sleeps == [base / 2, base]  # equal jitter, lowest draw: half the cap
