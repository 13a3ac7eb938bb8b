"""``hermes-stream alerts tail``: error records and alerts as they arrive, one line each.

The topics are read by a consumer without a group, so tailing commits nothing
and never takes partitions from the worker. Each record becomes one line,
timestamp first (UTC), then ``ERROR`` or ``ALERT``::

    2026-01-01T00:00:05Z ERROR permanent/auth api anthropic/claude-sonnet-4 http=401 s=sess_1: invalid api key
    2026-01-01T00:00:09Z ERROR retryable/timeout tool web_search s=sess_2: read timed out
    2026-01-01T00:00:05Z ALERT critical permanent_failure anthropic/claude-sonnet-4: auth (invalid api key)

A field the record lacks shows as ``-``; the message is cut at
:data:`MAX_MESSAGE` characters (the webhook gets the whole record). With a
webhook, each record shown is POSTed as its JSON plus a Slack-compatible
``text`` holding the line; a webhook that fails is reported and tailing goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, get_args

import aiohttp
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from hermes_stream import codec
from hermes_stream.alerts import RULES
from hermes_stream.classify import Category
from hermes_stream.exceptions import BrokerUnavailable, ConfigError, JSONError
from hermes_stream.settings import Settings
from hermes_stream.topics import Topics

CATEGORIES: Final[tuple[Category, ...]] = get_args(Category)
#: Longest message shown on a line, in characters.
MAX_MESSAGE: Final = 500

#: Receives each line shown, or each problem to report.
Output = Callable[[str], None]
#: Delivers one webhook payload.
Post = Callable[[dict[str, Any]], Awaitable[object]]


@dataclass(frozen=True)
class Selection:
    """What to show: error records of ``categories`` and alerts of ``rules`` (empty: none)."""

    categories: frozenset[str]
    rules: frozenset[str]

    @classmethod
    def of(cls, categories: Iterable[str] = (), rules: Iterable[str] = ()) -> Selection:
        """Categories alone: only those errors; rules alone: only those alerts; neither: everything."""
        chosen, ruled = frozenset(categories), frozenset(rules)
        for kind, names, known in (("category", chosen, CATEGORIES), ("rule", ruled, RULES)):
            unknown = names - set(known)
            if unknown:
                raise ConfigError(f"unknown {kind} {', '.join(sorted(unknown))}; known: {', '.join(known)}")
        if not chosen and not ruled:
            return cls(frozenset(CATEGORIES), frozenset(RULES))
        return cls(chosen, ruled)

    def topic_names(self, topics: Topics) -> list[str]:
        names = [topics.errors(c) for c in CATEGORIES if c in self.categories]
        return [*names, topics.alerts] if self.rules else names

    def shows(self, record: Mapping[str, Any], alert: bool) -> bool:
        if alert:
            return record.get("rule") in self.rules
        return record.get("category") in self.categories


@dataclass(frozen=True)
class Shown:
    """A record to show: its line, and the record itself."""

    line: str
    record: Mapping[str, Any]

    def payload(self) -> dict[str, Any]:
        """The webhook body: the record plus a Slack-compatible ``text`` holding the line."""
        return {**self.record, "text": self.line}


def utc(ts: object) -> str:
    """Epoch seconds as ``YYYY-MM-DDTHH:MM:SSZ``; ``-`` if *ts* is not a usable number."""
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        with contextlib.suppress(OverflowError, OSError, ValueError):
            return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return "-"


def one_line(text: str) -> str:
    """*text* without line breaks, control characters or runs of whitespace."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _word(value: object) -> str:
    """A field as one space-free word, so that columns stay split on spaces."""
    text = "" if value is None else one_line(str(value))
    return text.replace(" ", "_") or "-"


def _message(value: object) -> str:
    text = "" if value is None else one_line(str(value))
    if len(text) > MAX_MESSAGE:
        return text[: MAX_MESSAGE - 1] + "…"
    return text or "(no message)"


def error_line(record: Mapping[str, Any]) -> str:
    """The line of an error record: category/reason, what failed, session, message."""
    kind = record.get("kind")
    if kind == "tool":
        what = _word(record.get("tool_name"))
    else:
        what = f"{_word(record.get('provider'))}/{_word(record.get('model'))}"
    status = record.get("http_status")
    http = f" http={_word(status)}" if status is not None else ""
    return (
        f"{utc(record.get('ts'))} ERROR {_word(record.get('category'))}/{_word(record.get('reason'))} "
        f"{_word(kind)} {what}{http} s={_word(record.get('session_id'))}: {_message(record.get('message'))}"
    )


def alert_line(record: Mapping[str, Any]) -> str:
    """The line of an alert: severity, rule, subject, message (without the subject said twice)."""
    subject = _word(record.get("subject"))
    message = _message(record.get("message")).removeprefix(f"{subject}: ")
    return (
        f"{utc(record.get('ts'))} ALERT {_word(record.get('severity'))} {_word(record.get('rule'))} "
        f"{subject}: {message}"
    )


def read_record(topic: str, value: bytes | None, selection: Selection, topics: Topics) -> Shown | None:
    """The message's record if *selection* shows it; :class:`JSONError` if it is not a JSON object."""
    record = codec.loads(value or b"")
    if not isinstance(record, dict):
        raise JSONError("not a JSON object")
    alert = topic == topics.alerts
    if not selection.shows(record, alert):
        return None
    return Shown(alert_line(record) if alert else error_line(record), record)


class Webhook:
    """POSTs payloads as JSON to one URL, with a few retries; failures are reported, never raised.

    Connection errors, timeouts, 429 and 5xx answers are retried; other
    non-2xx answers are not. Reports name the host only: webhook URLs
    (Slack's among them) carry their secret in the path.
    """

    def __init__(
        self, url: str, warn: Output, *, attempts: int = 3, backoff: float = 0.25, timeout: float = 5.0
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"--webhook must be an http:// or https:// URL, not {url!r}")
        self.url = url
        self.where = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        self.warn = warn
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Webhook:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, payload: Mapping[str, Any]) -> bool:
        """Deliver *payload*; True once the webhook answered 2xx."""
        body = codec.dumps(payload)
        for attempt in range(1, self.attempts + 1):
            problem, retry = await self._attempt(body)
            if problem is None:
                return True
            if not retry or attempt == self.attempts:
                break
            await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
        what = payload.get("alert_id") or payload.get("event_id") or "a record"
        self.warn(f"webhook {self.where}: {problem}; {what} not delivered after {attempt} attempt(s)")
        return False

    async def _attempt(self, body: bytes) -> tuple[str | None, bool]:
        """(None, _) on success, else (what went wrong, whether to try again)."""
        if self._session is None:
            raise RuntimeError("use the webhook as an async context manager")
        headers = {"Content-Type": "application/json"}
        try:
            async with self._session.post(self.url, data=body, headers=headers) as response:
                await response.read()
                status, reason = response.status, response.reason or ""
        except (aiohttp.ClientError, TimeoutError) as exc:
            text = str(exc).replace(self.url, self.where)  # never the secret path
            return f"{type(exc).__name__}: {text}" if text else type(exc).__name__, True
        if 200 <= status < 300:
            return None, False
        return f"HTTP {status} {reason}".rstrip(), status == 429 or status >= 500


async def tail(
    settings: Settings,
    selection: Selection,
    *,
    output: Output,
    warn: Output,
    post: Post | None = None,
    from_beginning: bool = False,
    max_records: int | None = None,
) -> int:
    """Show records until *max_records* were shown (None: until cancelled); return how many were."""
    if not settings.broker:
        raise BrokerUnavailable("HERMES_STREAM_BROKER is not set")
    topics = Topics(settings.topic_prefix)
    names = selection.topic_names(topics)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.broker,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        max_partition_fetch_bytes=max(settings.max_record_bytes, 1_048_576),
    )
    shown = 0
    try:
        await _start(consumer, settings.broker, names)
        async for message in consumer:
            try:
                item = read_record(message.topic, message.value, selection, topics)
            except JSONError as exc:
                warn(f"skipped {message.topic} partition {message.partition} offset {message.offset}: {exc}")
                continue
            if item is None:
                continue
            output(item.line)
            if post is not None:
                await post(item.payload())
            shown += 1
            if max_records is not None and shown >= max_records:
                break
    finally:
        await consumer.stop()
    return shown


async def _start(consumer: AIOKafkaConsumer, bootstrap: str, names: list[str]) -> None:
    """Start *consumer* on *names*, which must exist: subscribing would auto-create them on some brokers."""
    try:
        await consumer.start()
        existing = await consumer.topics()
    except KafkaError as exc:
        raise BrokerUnavailable(f"cannot read from the broker at {bootstrap}: {exc}") from exc
    missing = [name for name in names if name not in existing]
    if missing:
        raise ConfigError(
            f"missing topics {', '.join(missing)} on {bootstrap}: check HERMES_STREAM_TOPIC_PREFIX, "
            "or create them with `hermes-stream topics create` (the worker does too)"
        )
    consumer.subscribe(names)


async def run_tail(
    settings: Settings,
    selection: Selection,
    webhook: Webhook | None,
    *,
    output: Output,
    warn: Output,
    from_beginning: bool = False,
    max_records: int | None = None,
) -> int:
    """:func:`tail`, POSTing each record shown to *webhook* if one is given."""
    async with contextlib.AsyncExitStack() as stack:
        post = (await stack.enter_async_context(webhook)).post if webhook is not None else None
        return await tail(
            settings,
            selection,
            output=output,
            warn=warn,
            post=post,
            from_beginning=from_beginning,
            max_records=max_records,
        )
