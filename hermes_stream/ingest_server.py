"""HTTP ingest: ``hermes-stream serve`` puts events posted over HTTP on hermes.events.

    POST /v1/events           one event or an array; 202 with per-item reasons
    POST /v1/hermes/webhook   Hermes' outbound webhook, HMAC-SHA256 signed
    GET  /healthz             liveness, broker reachability, spool depth
    GET  /metrics             Prometheus text format

Events go through the same :class:`~hermes_stream.producer.EventProducer` as
any agent's, so they are validated, redacted, batched and spooled alike: the
server answers as soon as an event is queued, never waiting for Kafka.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import os
import re
import signal
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypeGuard

import click
from aiohttp import web

from hermes_stream import codec
from hermes_stream.broker import broker_for
from hermes_stream.events import SCHEMA_VERSION, Event, new_event_id
from hermes_stream.exceptions import ConfigError, InvalidEvent, JSONError
from hermes_stream.producer import EventProducer
from hermes_stream.settings import PREFIX, Settings

SIGNATURE_HEADER: Final = "X-Hermes-Signature-256"
WEBHOOK_SOURCE: Final = "hermes-webhook"
WEBHOOK_RESULTS: Final = ("accepted", "ignored", "duplicate", "rejected", "unauthorized")
#: Redeliveries usually come within minutes; this many ids cover that at any sane rate.
RECENT_DELIVERIES: Final = 10_000
# uuid5 namespace of webhook event ids: the same delivery always yields the same event_id.
_DELIVERY_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "hermes-stream:hermes-webhook")
_TOOL_HOOKS: Final = frozenset({"posttoolcall", "posttooluse"})
_END_HOOKS: Final = frozenset({"onsessionend", "sessionend", "stop"})


@dataclass(frozen=True)
class IngestConfig:
    """The ingest server's settings; ``--host`` and ``--port`` win over the environment."""

    host: str = "127.0.0.1"
    """``HERMES_STREAM_INGEST_HOST``: the address to listen on."""

    port: int = 8080
    """``HERMES_STREAM_INGEST_PORT``: the port to listen on."""

    token: str | None = field(default=None, repr=False)
    """``HERMES_STREAM_INGEST_TOKEN``: bearer token POST /v1/events requires; unset = no auth."""

    webhook_secret: str | None = field(default=None, repr=False)
    """``HERMES_STREAM_WEBHOOK_SECRET``: HMAC key of the Hermes webhook; unset = endpoint off (503)."""

    max_bytes: int = 1_048_576
    """``HERMES_STREAM_INGEST_MAX_BYTES``: largest request body accepted (larger: 413)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IngestConfig:
        """Build the config from *environ* (``os.environ`` when omitted)."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            raw = env.get(PREFIX + name, "").strip()
            return raw or None

        def number(name: str, default: int, low: int) -> int:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise ConfigError(f"{PREFIX}{name}={raw!r} is not a whole number") from None
            if value < low:
                raise ConfigError(f"{PREFIX}{name} must be at least {low}")
            return value

        return cls(
            host=get("INGEST_HOST") or cls.host,
            port=number("INGEST_PORT", cls.port, 0),
            token=get("INGEST_TOKEN"),
            webhook_secret=get("WEBHOOK_SECRET"),
            max_bytes=number("INGEST_MAX_BYTES", cls.max_bytes, 1),
        )


def webhook_event(payload: Mapping[str, Any], now: float | None = None) -> Event | None:
    """Map one Hermes webhook payload to our event, or None for a hook we do not record.

    The result is not validated yet: a payload without ``session_id`` or
    ``tool_name`` maps to an event the producer then rejects with the reason.
    """
    hook = re.sub(r"[^a-z]", "", str(payload.get("hook_event_name", "")).lower())
    extra = payload.get("extra")
    extra = extra if isinstance(extra, dict) else {}
    if hook in _TOOL_HOOKS:
        fields = _tool_fields(payload, extra)
    elif hook in _END_HOOKS:
        reason = extra.get("end_reason") or extra.get("reason")
        fields = {"type": "session_end", "end_reason": reason if isinstance(reason, str) else "completed"}
    else:
        return None
    delivery = payload.get("delivery_id")
    event_id = str(uuid.uuid5(_DELIVERY_NAMESPACE, delivery)) if _text(delivery) else new_event_id()
    event: Event = {
        "event_id": event_id,
        "schema_version": SCHEMA_VERSION,
        "ts": _timestamp(payload.get("timestamp"), time.time() if now is None else now),
        "session_id": payload.get("session_id"),
        "source": WEBHOOK_SOURCE,
        **fields,
    }
    if _text(payload.get("profile")):
        event["profile"] = payload["profile"]
    return event


def _tool_fields(payload: Mapping[str, Any], extra: dict[str, Any]) -> Event:
    error = extra.get("error") or extra.get("error_message")
    failed = bool(error) or extra.get("status") == "error" or extra.get("is_error") is True
    fields: Event = {"type": "tool_result", "tool_name": payload.get("tool_name"), "status": "ok"}
    if failed:
        fields["status"] = "error"
        if _text(error):
            fields["error_message"] = error
    if isinstance(payload.get("tool_input"), dict):
        fields["args"] = payload["tool_input"]  # dropped by the producer unless content capture is on
    for name in ("tool_call_id", "duration_ms"):
        if extra.get(name) is not None:
            fields[name] = extra[name]
    return fields


def _text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value != ""


def _timestamp(value: object, now: float) -> float:
    """Seconds since the epoch from ISO 8601 (naive = UTC) or epoch seconds/milliseconds."""
    if value is None or value == "":
        return now
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value / 1000 if value > 100_000_000_000 else float(value)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()
    raise InvalidEvent("timestamp", f"must be ISO 8601 or seconds since the epoch, got {value!r}")


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    """True if *header* is ``sha256=<hex>`` (or the bare hex) HMAC-SHA256 of *body* under *secret*."""
    if not header:
        return False
    given = header.strip().removeprefix("sha256=").lower()
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


class IngestHandlers:
    """The request handlers and the counters /metrics reports."""

    def __init__(self, producer: EventProducer, config: IngestConfig) -> None:
        self.producer = producer
        self.config = config
        self.accepted = 0
        self.rejected = 0
        self.webhooks: Counter[str] = Counter()
        self._deliveries: OrderedDict[str, None] = OrderedDict()

    async def events(self, request: web.Request) -> web.Response:
        if self.config.token and not _bearer_matches(request, self.config.token):
            return _error(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        body = await _read_body(request, self.config.max_bytes)
        if body is None:
            return _too_large(self.config.max_bytes)
        try:
            decoded = codec.loads(body)
        except JSONError as exc:
            return _error(400, str(exc))
        if not isinstance(decoded, (dict, list)):
            return _error(400, "the body must be a JSON object or an array of them")
        items = decoded if isinstance(decoded, list) else [decoded]
        errors = []
        for index, item in enumerate(items):
            try:
                session_id, data = self.producer.encode(item)
            except (InvalidEvent, ValueError) as exc:
                errors.append({"index": index, "reason": str(exc)})
                continue
            self.producer.enqueue(session_id, data)
            self.accepted += 1
        self.rejected += len(errors)
        return _json(202, {"accepted": len(items) - len(errors), "rejected": len(errors), "errors": errors})

    async def webhook(self, request: web.Request) -> web.Response:
        secret = self.config.webhook_secret
        if not secret:
            return _error(503, f"webhook not configured: set {PREFIX}WEBHOOK_SECRET")
        body = await _read_body(request, self.config.max_bytes)
        if body is None:
            return _too_large(self.config.max_bytes)
        if not signature_matches(secret, body, request.headers.get(SIGNATURE_HEADER)):
            self.webhooks["unauthorized"] += 1
            return _error(401, f"missing or bad {SIGNATURE_HEADER}")
        try:
            payload = codec.loads(body)
            if not isinstance(payload, dict):
                raise JSONError("the body must be a JSON object")
            delivery = payload.get("delivery_id")
            if _text(delivery) and delivery in self._deliveries:
                self.webhooks["duplicate"] += 1
                return _json(200, {"duplicate": True, "delivery_id": delivery})
            event = webhook_event(payload)
            encoded = None if event is None else self.producer.encode(event)
        except (InvalidEvent, ValueError) as exc:
            self.webhooks["rejected"] += 1
            return _error(422 if isinstance(exc, InvalidEvent) else 400, str(exc))
        if _text(delivery):
            self._remember(delivery)
        if event is None or encoded is None:
            self.webhooks["ignored"] += 1
            return _json(202, {"ignored": True, "hook_event_name": payload.get("hook_event_name")})
        self.producer.enqueue(*encoded)
        self.webhooks["accepted"] += 1
        return _json(202, {"accepted": True, "event_id": event["event_id"], "type": event["type"]})

    def _remember(self, delivery: str) -> None:
        self._deliveries[delivery] = None
        if len(self._deliveries) > RECENT_DELIVERIES:
            self._deliveries.popitem(last=False)

    async def healthz(self, request: web.Request) -> web.Response:
        return _json(200, {"status": "ok", "broker_reachable": not self.producer.spooling})

    async def metrics(self, request: web.Request) -> web.Response:
        lines = [
            *_metric("ingest_events_accepted_total", "counter", "Events accepted on POST /v1/events."),
            f"hermes_stream_ingest_events_accepted_total {self.accepted}",
            *_metric("ingest_events_rejected_total", "counter", "Events rejected on POST /v1/events."),
            f"hermes_stream_ingest_events_rejected_total {self.rejected}",
            *_metric("ingest_webhooks_total", "counter", "Hermes webhook deliveries, by outcome."),
            *(
                f'hermes_stream_ingest_webhooks_total{{result="{r}"}} {self.webhooks[r]}'
                for r in WEBHOOK_RESULTS
            ),
            *_metric("spool_depth_bytes", "gauge", "Bytes of events spooled on disk, awaiting the broker."),
            f"hermes_stream_spool_depth_bytes {self.producer.spool_depth_bytes}",
            *_metric(
                "broker_reachable", "gauge", "1 while the producer delivers to Kafka, 0 while it spools."
            ),
            f"hermes_stream_broker_reachable {0 if self.producer.spooling else 1}",
        ]
        text = "\n".join(lines) + "\n"
        return web.Response(body=text.encode(), headers={"Content-Type": "text/plain; version=0.0.4"})


def make_app(producer: EventProducer, config: IngestConfig) -> web.Application:
    """The ingest application over *producer*, which must be started (and is not closed here)."""
    handlers = IngestHandlers(producer, config)
    app = web.Application(client_max_size=config.max_bytes + 1)
    app.router.add_post("/v1/events", handlers.events)
    app.router.add_post("/v1/hermes/webhook", handlers.webhook)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/metrics", handlers.metrics)
    return app


async def _read_body(request: web.Request, limit: int) -> bytes | None:
    """The body, or None once it is over *limit* bytes (never reading more than limit + 1)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    while len(body) <= limit:
        chunk = await request.content.read(limit + 1 - len(body))
        if not chunk:
            return bytes(body)
        body += chunk
    return None


def _bearer_matches(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _metric(name: str, kind: str, help_text: str) -> tuple[str, str]:
    return f"# HELP hermes_stream_{name} {help_text}", f"# TYPE hermes_stream_{name} {kind}"


def _json(status: int, body: Mapping[str, Any]) -> web.Response:
    return web.Response(status=status, body=codec.dumps(body), content_type="application/json")


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    response = _json(status, {"error": message})
    response.headers.update(headers or {})
    return response


def _too_large(limit: int) -> web.Response:
    return _error(413, f"the body is over {limit} bytes ({PREFIX}INGEST_MAX_BYTES)")


async def serve(settings: Settings, config: IngestConfig, announce: Callable[[str], object]) -> None:
    """Run the ingest server until cancelled (Ctrl-C) or SIGTERM, then deliver what is queued."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    producer = EventProducer.from_settings(settings)
    await producer.start()
    runner = web.AppRunner(make_app(producer, config), access_log=None)
    try:
        await runner.setup()
        try:
            await web.TCPSite(runner, config.host, config.port).start()
        except OSError as exc:
            raise ConfigError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from exc
        host, port = runner.addresses[0][:2]
        announce(f"listening on http://{host}:{port}")
        await stop.wait()
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        await runner.cleanup()
        await producer.close()


@click.command("serve")
@click.option(
    "--host", default=None, help="Address to listen on [default: $HERMES_STREAM_INGEST_HOST or 127.0.0.1]."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port to listen on [default: $HERMES_STREAM_INGEST_PORT or 8080].",
)
def serve_command(host: str | None, port: int | None) -> None:
    """Accept events over HTTP (POST /v1/events, the Hermes webhook) and publish them, until Ctrl-C."""
    config = IngestConfig.from_env()
    config = replace(config, host=host or config.host, port=config.port if port is None else port)
    settings = Settings.from_env()
    with broker_for(settings) as live:
        if not settings.broker:
            click.echo(f"no HERMES_STREAM_BROKER: embedded broker at {live.broker}", err=True)
        try:
            asyncio.run(serve(live, config, lambda line: click.echo(line, err=True)))
        except KeyboardInterrupt:
            pass  # Ctrl-C is how serving ends; serve() has delivered or spooled the queue
