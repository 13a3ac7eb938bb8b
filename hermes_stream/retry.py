"""Call a function again when its error is worth retrying, and only then.

:func:`execute_with_retry` and its asyncio twin :func:`execute_with_retry_async`
classify each failure with :func:`~hermes_stream.classify.classify_error` and:

* re-raise at once (the original exception, traceback untouched) when the
  classification says not to retry, or its retry budget is spent: the budget is
  ``classification.max_retries``, further capped at ``max_attempts - 1``;
* otherwise wait and call again. When the server sent ``Retry-After``
  (``classification.from_retry_after``) the wait is exactly that value; one longer
  than ``max_delay`` is not waited at all, the error is re-raised, as the OpenAI and
  Anthropic SDKs do. Else the wait is exponential, ``base * 2**retry`` capped at
  ``max_delay``, where ``base`` is ``base_delay`` if given, else the reason's
  ``backoff_seconds``, then jittered:

  - ``"equal"`` (default): uniform in ``[cap/2, cap)``: spreads clients out yet never
    retries a rate limit almost at once;
  - ``"full"``: uniform in ``[0, cap)`` (AWS "full jitter"): least contention;
  - ``"none"``: exactly ``cap``.

Retries are counted across reasons: a timeout then a 500 is two retries. Only
:class:`Exception` is caught; cancellation and ``KeyboardInterrupt`` pass through.
The retry options are keyword-only and consumed here, so *fn* cannot receive
keyword arguments of the same names (wrap it in a lambda or ``functools.partial``).
``sleep`` and ``rng`` are injectable so tests never sleep and are deterministic.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar, get_args

from hermes_stream.classify import ErrorClassification, classify_error

T = TypeVar("T")
Jitter = Literal["full", "equal", "none"]
Classifier = Callable[[Exception], ErrorClassification]


@dataclass(frozen=True, slots=True)
class RetryAttempt:
    """A retry about to happen: the failure, its classification, which retry, the wait before it."""

    error: Exception
    classification: ErrorClassification
    retry: int  # 1 for the first retry
    delay: float


def execute_with_retry(
    fn: Callable[..., T],
    *args: object,
    max_attempts: int | None = None,
    base_delay: float | None = None,
    max_delay: float = 60.0,
    jitter: Jitter = "equal",
    classify: Classifier = classify_error,
    sleep: Callable[[float], object] = time.sleep,
    rng: Callable[[], float] = random.random,
    on_retry: Callable[[RetryAttempt], object] | None = None,
    **kwargs: object,
) -> T:
    """Return ``fn(*args, **kwargs)``, retrying the failures that the classification allows."""
    plan = _Plan.checked(max_attempts, base_delay, max_delay, jitter, classify, rng)
    retries = 0
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            attempt = plan.next_retry(exc, retries)
            if attempt is None:
                raise
        if on_retry is not None:
            on_retry(attempt)
        sleep(attempt.delay)
        retries += 1


async def execute_with_retry_async(
    fn: Callable[..., Awaitable[T]],
    *args: object,
    max_attempts: int | None = None,
    base_delay: float | None = None,
    max_delay: float = 60.0,
    jitter: Jitter = "equal",
    classify: Classifier = classify_error,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rng: Callable[[], float] = random.random,
    on_retry: Callable[[RetryAttempt], object] | None = None,
    **kwargs: object,
) -> T:
    """Await ``fn(*args, **kwargs)``, retrying as :func:`execute_with_retry` does."""
    plan = _Plan.checked(max_attempts, base_delay, max_delay, jitter, classify, rng)
    retries = 0
    while True:
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            attempt = plan.next_retry(exc, retries)
            if attempt is None:
                raise
        if on_retry is not None:
            on_retry(attempt)
        await sleep(attempt.delay)
        retries += 1


@dataclass(frozen=True, slots=True)
class _Plan:
    """The retry options of one call, validated once; decides each retry and its wait."""

    max_attempts: int | None
    base_delay: float | None
    max_delay: float
    jitter: Jitter
    classify: Classifier
    rng: Callable[[], float]

    @classmethod
    def checked(
        cls,
        max_attempts: int | None,
        base_delay: float | None,
        max_delay: float,
        jitter: Jitter,
        classify: Classifier,
        rng: Callable[[], float],
    ) -> _Plan:
        if max_attempts is not None and max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        if (base_delay is not None and base_delay < 0) or max_delay < 0:
            raise ValueError("base_delay and max_delay must not be negative")
        if jitter not in get_args(Jitter):
            raise ValueError(f"jitter must be one of {get_args(Jitter)}, not {jitter!r}")
        return cls(max_attempts, base_delay, max_delay, jitter, classify, rng)

    def next_retry(self, error: Exception, retries: int) -> RetryAttempt | None:
        """The retry after *retries* earlier ones, or None to re-raise *error*."""
        verdict = self.classify(error)
        budget = verdict.max_retries
        if self.max_attempts is not None:
            budget = min(budget, self.max_attempts - 1)
        if not verdict.should_retry or retries >= budget:
            return None
        delay = self._delay(verdict, retries)
        return None if delay is None else RetryAttempt(error, verdict, retries + 1, delay)

    def _delay(self, verdict: ErrorClassification, retries: int) -> float | None:
        if verdict.from_retry_after:
            return verdict.backoff_seconds if verdict.backoff_seconds <= self.max_delay else None
        base = verdict.backoff_seconds if self.base_delay is None else self.base_delay
        cap = min(self.max_delay, base * 2.0 ** min(retries, 64))
        if self.jitter == "full":
            return cap * self.rng()
        if self.jitter == "equal":
            return cap / 2 + cap / 2 * self.rng()
        return cap
