"""The HTTP ingest server on a real socket, publishing through a real producer to the embedded broker."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from hermes_stream import codec
from hermes_stream.broker import EmbeddedBroker, free_port
from hermes_stream.events import Event, make_event
from hermes_stream.exceptions import ConfigError
from hermes_stream.ingest_server import IngestConfig, make_app
from hermes_stream.producer import EventProducer
from hermes_stream.settings import Settings
from hermes_stream.topics import Topics, ensure_topics, ensure_topics_sync
from tests.integration.conftest import default_sigint, events_in, read_topic

pytestmark = pytest.mark.integration

SECRET = "s3cret"


@dataclass
class Ingest:
    """One running server: its base URL, a client, and the topic its events go to."""

    url: str
    client: aiohttp.ClientSession
    producer: EventProducer
    settings: Settings

    async def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = body if isinstance(body, bytes) else codec.dumps(body)
        async with self.client.post(self.url + path, data=data, headers=headers) as response:
            return response.status, await response.json()

    async def published(self, expected: int) -> list[Event]:
        """Every event on the topic, once the producer has delivered what it queued."""
        assert await self.producer.flush(timeout=10)
        topic = Topics(self.settings.topic_prefix).events
        return events_in(await asyncio.to_thread(read_topic, self.settings.broker or "", topic, expected))


IngestFactory = Callable[..., Awaitable[Ingest]]


@pytest.fixture
async def ingest_factory(settings_factory: Callable[..., Settings]) -> AsyncIterator[IngestFactory]:
    """Start a server on a free loopback port with IngestConfig(**changes)."""
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def start(**changes: Any) -> Ingest:
        settings = settings_factory(linger_ms=5)
        await ensure_topics(settings.broker or "", (Topics(settings.topic_prefix).events,), 4)
        producer = EventProducer.from_settings(settings)
        await producer.start()
        cleanups.append(producer.close)
        runner = web.AppRunner(make_app(producer, IngestConfig(**changes)))
        await runner.setup()
        cleanups.append(runner.cleanup)
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        client = aiohttp.ClientSession()
        cleanups.append(client.close)
        return Ingest(f"http://127.0.0.1:{port}", client, producer, settings)

    yield start
    for cleanup in reversed(cleanups):
        await cleanup()


def tool_result(session_id: str = "sess_1", **fields: Any) -> Event:
    return make_event("tool_result", session_id, **{"tool_name": "terminal", "status": "ok", **fields})


def signed(body: bytes, prefix: str = "sha256=") -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hermes-Signature-256": prefix + digest}


def hook(delivery_id: str, name: str = "post_tool_call", **fields: Any) -> bytes:
    payload = {
        "hook_event_name": name,
        "profile": "work",
        "tool_name": "web_search",
        "tool_input": {"query": "kafka"},
        "session_id": "sess_hook",
        "cwd": "/home/me",
        "extra": {},
        "delivery_id": delivery_id,
        "timestamp": "2026-01-01T00:00:05Z",
        **fields,
    }
    return codec.dumps(payload)


async def test_one_event_and_an_array_reach_the_topic(ingest_factory: IngestFactory) -> None:
    ingest = await ingest_factory()
    single, batch = tool_result(), [tool_result("sess_2"), tool_result("sess_3")]

    assert await ingest.post("/v1/events", single) == (202, {"accepted": 1, "rejected": 0, "errors": []})
    assert await ingest.post("/v1/events", batch) == (202, {"accepted": 2, "rejected": 0, "errors": []})

    received = await ingest.published(expected=1)
    assert sorted(e["event_id"] for e in received) == sorted(e["event_id"] for e in [single, *batch])


async def test_invalid_items_are_rejected_with_reasons_and_valid_ones_published(
    ingest_factory: IngestFactory,
) -> None:
    ingest = await ingest_factory()
    good = tool_result()
    body = [{"type": "tool_result"}, good, tool_result(status="maybe"), 7]

    status, answer = await ingest.post("/v1/events", body)

    assert status == 202
    assert (answer["accepted"], answer["rejected"]) == (1, 3)
    reasons = {error["index"]: error["reason"] for error in answer["errors"]}
    assert reasons[0] == "session_id: is required"
    assert reasons[2] == "status: must be one of ok, error, got 'maybe'"
    assert reasons[3] == "event: must be a JSON object, got number"
    assert [e["event_id"] for e in await ingest.published(expected=1)] == [good["event_id"]]


async def test_a_body_that_is_not_json_or_not_events_is_a_400(ingest_factory: IngestFactory) -> None:
    ingest = await ingest_factory()

    status, answer = await ingest.post("/v1/events", b'{"type": ')
    assert status == 400 and answer["error"].startswith("not valid JSON")
    status, answer = await ingest.post("/v1/events", b'"event"')
    assert status == 400 and "JSON object or an array" in answer["error"]


async def test_a_body_over_the_limit_is_a_413_with_or_without_content_length(
    ingest_factory: IngestFactory,
) -> None:
    ingest = await ingest_factory(max_bytes=2000)
    big = [tool_result(seq=i) for i in range(40)]

    status, answer = await ingest.post("/v1/events", big)
    assert status == 413 and "over 2000 bytes" in answer["error"]

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the limit holds on what is read
        yield codec.dumps(big)

    async with ingest.client.post(ingest.url + "/v1/events", data=chunked()) as response:
        assert response.status == 413
    assert await ingest.post("/v1/events", big[:3]) == (202, {"accepted": 3, "rejected": 0, "errors": []})


async def test_a_configured_token_is_required(ingest_factory: IngestFactory) -> None:
    ingest = await ingest_factory(token="tok-123")
    event = tool_result()

    status, answer = await ingest.post("/v1/events", event)
    assert (status, answer["error"]) == (401, "missing or wrong bearer token")
    assert (await ingest.post("/v1/events", event, {"Authorization": "Bearer tok-12"}))[0] == 401
    assert (await ingest.post("/v1/events", event, {"Authorization": "Bearer tok-123"}))[0] == 202


async def test_signed_webhooks_are_published_once_per_delivery(ingest_factory: IngestFactory) -> None:
    ingest = await ingest_factory(webhook_secret=SECRET)
    tool, end = hook("d-1"), hook("d-2", name="Stop", extra={"reason": "user_exit"})

    status, answer = await ingest.post("/v1/hermes/webhook", tool, signed(tool))
    assert (status, answer["type"]) == (202, "tool_result")
    status, answer = await ingest.post("/v1/hermes/webhook", end, signed(end, prefix=""))
    assert (status, answer["type"]) == (202, "session_end")
    redelivered = await ingest.post("/v1/hermes/webhook", tool, signed(tool))
    assert redelivered == (200, {"duplicate": True, "delivery_id": "d-1"})

    received = {e["type"]: e for e in await ingest.published(expected=1)}
    assert len(received) == 2, "the redelivery was published again"
    assert received["tool_result"]["event_id"] == str(
        uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "hermes-stream:hermes-webhook"), "d-1")
    )
    assert received["tool_result"]["tool_name"] == "web_search"
    assert received["tool_result"]["status"] == "ok"
    assert received["tool_result"]["source"] == "hermes-webhook"
    assert received["tool_result"]["ts"] == 1767225605.0
    assert received["session_end"]["end_reason"] == "user_exit"


async def test_webhooks_without_a_good_signature_are_refused(ingest_factory: IngestFactory) -> None:
    ingest = await ingest_factory(webhook_secret=SECRET)
    body = hook("d-1")

    for headers in ({}, signed(body + b" "), {"X-Hermes-Signature-256": "sha256=zz"}):
        status, answer = await ingest.post("/v1/hermes/webhook", body, headers)
        assert (status, answer["error"]) == (401, "missing or bad X-Hermes-Signature-256")
    # a refused delivery is not remembered: the genuine one is still accepted
    assert (await ingest.post("/v1/hermes/webhook", body, signed(body)))[0] == 202


async def test_webhook_edge_cases(ingest_factory: IngestFactory) -> None:
    unconfigured = await ingest_factory()
    status, answer = await unconfigured.post("/v1/hermes/webhook", hook("d-1"), signed(hook("d-1")))
    assert status == 503 and answer["error"].startswith("webhook not configured")

    ingest = await ingest_factory(webhook_secret=SECRET)
    other = hook("d-2", name="pre_llm_call")
    assert await ingest.post("/v1/hermes/webhook", other, signed(other)) == (
        202,
        {"ignored": True, "hook_event_name": "pre_llm_call"},
    )
    failed = hook("d-3", extra={"error": "timeout"}, tool_name=None)
    status, answer = await ingest.post("/v1/hermes/webhook", failed, signed(failed))
    assert (status, answer["error"]) == (422, "tool_name: is required")


async def test_healthz_and_metrics_count_what_happened(ingest_factory: IngestFactory) -> None:
    ingest = await ingest_factory(webhook_secret=SECRET)
    await ingest.post("/v1/events", [tool_result(), {"type": "api_call"}, tool_result()])
    body = hook("d-1")
    await ingest.post("/v1/hermes/webhook", body, signed(body))
    await ingest.post("/v1/hermes/webhook", body, signed(body))
    await ingest.post("/v1/hermes/webhook", body, {})

    async with ingest.client.get(ingest.url + "/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok", "broker_reachable": True}
    async with ingest.client.get(ingest.url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        samples = dict(line.rsplit(" ", 1) for line in (await response.text()).splitlines() if line[0] != "#")
    assert samples["hermes_stream_ingest_events_accepted_total"] == "2"
    assert samples["hermes_stream_ingest_events_rejected_total"] == "1"
    assert samples['hermes_stream_ingest_webhooks_total{result="accepted"}'] == "1"
    assert samples['hermes_stream_ingest_webhooks_total{result="duplicate"}'] == "1"
    assert samples['hermes_stream_ingest_webhooks_total{result="unauthorized"}'] == "1"
    assert samples["hermes_stream_spool_depth_bytes"] == "0"
    assert samples["hermes_stream_broker_reachable"] == "1"


def test_config_comes_from_the_environment() -> None:
    config = IngestConfig.from_env(
        {
            "HERMES_STREAM_INGEST_TOKEN": "t",
            "HERMES_STREAM_WEBHOOK_SECRET": "w",
            "HERMES_STREAM_INGEST_MAX_BYTES": "10",
            "HERMES_STREAM_INGEST_PORT": "9000",
            "HERMES_STREAM_INGEST_HOST": "0.0.0.0",
        }
    )
    assert config == IngestConfig("0.0.0.0", 9000, "t", "w", 10)
    assert "token" not in repr(config) and "webhook_secret" not in repr(config)  # never logged
    assert IngestConfig.from_env({}) == IngestConfig()
    with pytest.raises(ConfigError, match="HERMES_STREAM_INGEST_MAX_BYTES must be at least 1"):
        IngestConfig.from_env({"HERMES_STREAM_INGEST_MAX_BYTES": "0"})


def test_serve_command_listens_and_stops_on_ctrl_c(broker: EmbeddedBroker, tmp_path: Path) -> None:
    port, prefix = free_port(), f"t{uuid.uuid4().hex[:10]}"
    ensure_topics_sync(broker.bootstrap, (Topics(prefix).events,), 4)
    env = {
        **os.environ,
        "HERMES_STREAM_BROKER": broker.bootstrap,
        "HERMES_STREAM_SPOOL_DIR": str(tmp_path / "spool"),
        "HERMES_STREAM_TOPIC_PREFIX": prefix,
    }
    event = tool_result()
    command = [sys.executable, "-c", "from hermes_stream.ingest_server import serve_command as c; c()"]
    process = subprocess.Popen(
        [*command, "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint
    )
    try:
        assert process.stderr is not None
        assert process.stderr.readline().strip() == f"listening on http://127.0.0.1:{port}"
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/events", codec.dumps(event))
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 202
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=15)
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # the queued event was delivered on the way out
    received = events_in(read_topic(broker.bootstrap, Topics(prefix).events))
    assert [e["event_id"] for e in received] == [event["event_id"]]
