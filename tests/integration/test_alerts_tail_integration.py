"""``alerts tail`` on the real broker, a real webhook server, and ``report errors`` on a real DuckDB file."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from click.testing import CliRunner, Result

from hermes_stream import codec
from hermes_stream.alerts_tail import Selection, Webhook, run_tail, tail
from hermes_stream.broker import free_port
from hermes_stream.cli import cli
from hermes_stream.exceptions import ConfigError
from hermes_stream.reports import errors_report
from hermes_stream.settings import Settings
from hermes_stream.store import Store
from hermes_stream.topics import Topics, ensure_topics_sync
from tests.integration.conftest import default_sigint

pytestmark = pytest.mark.integration

T0 = 1_767_225_605.0  # 2026-01-01T00:00:05Z
HERMES = str(Path(sys.executable).parent / "hermes-stream")


def error(
    event_id: str, category: str, reason: str, session: str = "sess_1", **fields: Any
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "session_id": session,
        "ts": T0,
        "kind": "api",
        "category": category,
        "reason": reason,
        "should_retry": category == "retryable",
        "max_retries": 0,
        "backoff_seconds": 0.0,
        "http_status": None,
        "error_type": None,
        "model": "claude-sonnet-4",
        "provider": "anthropic",
        "tool_name": None,
        "message": f"{reason} happened",
    } | fields


def alert(alert_id: str, rule: str, subject: str = "anthropic/claude-sonnet-4") -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "ts": T0,
        "rule": rule,
        "severity": "critical" if rule == "permanent_failure" else "warning",
        "subject": subject,
        "message": f"{rule} fired",
        "evidence": {},
    }


AUTH = error("e1", "permanent", "auth", http_status=401)
LIMIT = error("e2", "retryable", "rate_limit", session="sess_2", http_status=429)
FAILURE = alert("a1", "permanent_failure")

AUTH_LINE = (
    "2026-01-01T00:00:05Z ERROR permanent/auth api anthropic/claude-sonnet-4 http=401 s=sess_1: auth happened"
)
LIMIT_LINE = (
    "2026-01-01T00:00:05Z ERROR retryable/rate_limit api anthropic/claude-sonnet-4 http=429 s=sess_2: "
    "rate_limit happened"
)
FAILURE_LINE = (
    "2026-01-01T00:00:05Z ALERT critical permanent_failure anthropic/claude-sonnet-4: permanent_failure fired"
)


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    """Settings of a fresh prefix whose topics exist."""
    made = settings_factory()
    assert made.broker is not None
    ensure_topics_sync(made.broker, Topics(made.topic_prefix).all(), made.partitions)
    return made


async def publish(settings: Settings, *messages: tuple[str, bytes, bytes]) -> None:
    """Send (topic suffix, key, value) messages with a plain producer and wait for each."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker)
    await producer.start()
    try:
        for suffix, key, value in messages:
            await producer.send_and_wait(f"{settings.topic_prefix}.{suffix}", value, key=key)
    finally:
        await producer.stop()


def message(suffix: str, record: dict[str, Any]) -> tuple[str, bytes, bytes]:
    key = record.get("session_id") or record["subject"]
    return suffix, key.encode(), codec.dumps(record)


async def collect(settings: Settings, count: int, **options: Any) -> tuple[list[str], list[str]]:
    """Lines and warnings of a tail from the beginning that stops after *count* records."""
    lines: list[str] = []
    warnings: list[str] = []
    options.setdefault("selection", Selection.of())
    shown = await asyncio.wait_for(
        tail(
            settings,
            output=lines.append,
            warn=warnings.append,
            from_beginning=True,
            max_records=count,
            **options,
        ),
        timeout=20,
    )
    assert shown == count == len(lines)
    return lines, warnings


async def test_tail_prints_errors_and_alerts_and_skips_what_is_not_json(settings: Settings) -> None:
    await publish(
        settings,
        message("errors.permanent", AUTH),
        # Same topic and key as LIMIT, so read before it: reported before the tail can stop.
        ("errors.retryable", b"sess_2", b"{not json"),
        message("errors.retryable", LIMIT),
        message("alerts", FAILURE),
    )

    lines, warnings = await collect(settings, 3)

    assert sorted(lines) == sorted([AUTH_LINE, LIMIT_LINE, FAILURE_LINE])
    assert len(warnings) == 1
    assert warnings[0].startswith(f"skipped {settings.topic_prefix}.errors.retryable partition ")
    assert "not valid JSON" in warnings[0]


async def test_tail_follows_only_the_chosen_categories_and_rules(settings: Settings) -> None:
    rate = alert("a2", "error_rate")
    await publish(
        settings,
        message("errors.retryable", LIMIT),
        message("alerts", rate),  # same key as FAILURE, so read before it
        message("alerts", FAILURE),
        message("errors.permanent", AUTH),
    )

    lines, _ = await collect(settings, 1, selection=Selection.of(rules=["permanent_failure"]))
    assert lines == [FAILURE_LINE]

    await publish(settings, message("errors.permanent", error("e3", "permanent", "billing_quota")))
    lines, _ = await collect(settings, 2, selection=Selection.of(categories=["permanent"]))
    assert lines[0] == AUTH_LINE
    assert lines[1].startswith("2026-01-01T00:00:05Z ERROR permanent/billing_quota ")


async def test_tailing_topics_that_do_not_exist_fails_and_creates_none(
    settings_factory: Callable[..., Settings],
) -> None:
    bare = settings_factory()  # no topics made for this prefix
    names = Topics(bare.topic_prefix)

    with pytest.raises(ConfigError, match=f"missing topics {names.alerts} on {bare.broker}: check HERMES_"):
        await tail(bare, Selection.of(rules=["error_rate"]), output=print, warn=print)

    consumer = AIOKafkaConsumer(bootstrap_servers=bare.broker)
    await consumer.start()
    try:
        assert not {t for t in await consumer.topics() if t.startswith(f"{bare.topic_prefix}.")}
    finally:
        await consumer.stop()


@pytest.fixture
async def webhook_server() -> AsyncIterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """A real HTTP server on loopback: /ok answers 200, /flaky 503 then 200, /gone 404."""
    received: list[tuple[str, dict[str, Any]]] = []

    async def hook(request: web.Request) -> web.Response:
        path = request.match_info["name"]
        received.append((path, codec.loads(await request.read())))
        if path == "gone" or (path == "flaky" and sum(p == "flaky" for p, _ in received) == 1):
            return web.Response(status=404 if path == "gone" else 503)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{name}", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}", received
    finally:
        await runner.cleanup()


async def test_each_record_shown_is_posted_with_its_line_as_text(
    settings: Settings, webhook_server: tuple[str, list[tuple[str, dict[str, Any]]]]
) -> None:
    url, received = webhook_server
    await publish(settings, message("errors.permanent", AUTH), message("alerts", FAILURE))
    lines: list[str] = []
    warnings: list[str] = []

    hook = Webhook(f"{url}/ok", warnings.append)
    options: dict[str, Any] = dict(output=lines.append, warn=warnings.append, from_beginning=True)
    shown = await asyncio.wait_for(run_tail(settings, Selection.of(), hook, max_records=2, **options), 20)

    assert shown == 2 and warnings == []
    assert sorted(lines) == sorted([AUTH_LINE, FAILURE_LINE])
    assert sorted(p["text"] for _, p in received) == sorted(lines)
    by_id = {p.get("event_id") or p["alert_id"]: p for _, p in received}
    assert by_id["e1"] == {**AUTH, "text": AUTH_LINE}
    assert by_id["a1"] == {**FAILURE, "text": FAILURE_LINE}


async def test_a_failing_webhook_is_retried_then_reported_and_tailing_goes_on(
    settings: Settings, webhook_server: tuple[str, list[tuple[str, dict[str, Any]]]]
) -> None:
    url, received = webhook_server
    await publish(settings, message("errors.permanent", AUTH), message("errors.retryable", LIMIT))
    warnings: list[str] = []
    selection = Selection.of(categories=["permanent"])

    async with Webhook(f"{url}/flaky", warnings.append, backoff=0.01) as flaky:
        await collect(settings, 1, selection=selection, post=flaky.post)
    assert [p for p, _ in received] == ["flaky", "flaky"] and warnings == []

    async with Webhook(f"{url}/gone", warnings.append, backoff=0.01) as gone:
        await collect(settings, 1, selection=selection, post=gone.post)
    assert [p for p, _ in received].count("gone") == 1  # a 4xx is not retried
    assert warnings == [f"webhook {url}: HTTP 404 Not Found; e1 not delivered after 1 attempt(s)"]


async def test_a_webhook_that_refuses_connections_is_reported_and_tailing_goes_on(settings: Settings) -> None:
    await publish(settings, message("errors.permanent", AUTH), message("errors.retryable", LIMIT))
    warnings: list[str] = []
    port = free_port()  # nothing listens there

    async with Webhook(f"http://127.0.0.1:{port}/secret/path", warnings.append, backoff=0.01) as refused:
        lines, tail_warnings = await collect(settings, 2, post=refused.post)

    assert sorted(lines) == sorted([AUTH_LINE, LIMIT_LINE])
    assert tail_warnings == []
    assert len(warnings) == 2
    for warning in warnings:
        assert warning.startswith(f"webhook http://127.0.0.1:{port}: ClientConnectorError")
        assert warning.endswith("not delivered after 3 attempt(s)")
        assert "secret" not in warning


def hermes_env(settings: Settings) -> dict[str, str]:
    assert settings.broker is not None
    return {
        **os.environ,
        "HERMES_STREAM_BROKER": settings.broker,
        "HERMES_STREAM_TOPIC_PREFIX": settings.topic_prefix,
    }


def test_the_command_prints_records_and_stops_after_max(settings: Settings) -> None:
    asyncio.run(publish(settings, message("errors.permanent", AUTH), message("alerts", FAILURE)))

    result = subprocess.run(
        [HERMES, "alerts", "tail", "--from-beginning", "--max", "2"],
        env=hermes_env(settings),
        capture_output=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr.decode()
    assert sorted(result.stdout.decode().splitlines()) == sorted([AUTH_LINE, FAILURE_LINE])


def test_ctrl_c_stops_the_command_cleanly(settings: Settings) -> None:
    asyncio.run(publish(settings, message("alerts", FAILURE)))
    command = [HERMES, "alerts", "tail", "--rule", "permanent_failure", "--from-beginning"]
    process = subprocess.Popen(
        command,
        env=hermes_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=default_sigint,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "no line within 30s"
        assert process.stdout.readline().decode().rstrip("\n") == FAILURE_LINE
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, stderr.decode()
    assert "Traceback" not in stderr.decode()


def test_a_webhook_that_is_not_a_url_is_refused_before_tailing() -> None:
    result = subprocess.run(
        [HERMES, "alerts", "tail", "--webhook", "hooks.example.com/x"], capture_output=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.decode() == (
        "error: --webhook must be an http:// or https:// URL, not 'hooks.example.com/x'\n"
    )


@pytest.fixture
def errors_db(tmp_path: Path) -> Path:
    """A DuckDB file with errors of the last days and one from 30 days ago."""
    path = tmp_path / "hermes.duckdb"
    Store(path).ensure_schema()
    now = time.time()
    rows = [
        error("r1", "permanent", "auth", ts=now - 3600, http_status=401),
        error("r2", "permanent", "auth", session="sess_2", ts=now - 7200, http_status=401),
        error("r3", "permanent", "auth", ts=now - 2 * 86400, http_status=401),
        error("r4", "retryable", "rate_limit", model="gpt-4o", provider="openai", ts=now - 60),
        error(
            "r5",
            "retryable",
            "timeout",
            ts=now - 120,
            kind="tool",
            model=None,
            provider=None,
            tool_name="web",
        ),
        error("r6", "unknown", "unknown", ts=now - 30 * 86400),
    ]
    columns = list(rows[0])
    values = ", ".join("make_timestamp(CAST(? * 1000000 AS BIGINT))" if c == "ts" else "?" for c in columns)
    with duckdb.connect(str(path)) as con:
        con.executemany(
            f"INSERT INTO errors ({', '.join(columns)}) VALUES ({values})",
            [[row[c] for c in columns] for row in rows],
        )
    return path


def report(db: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["report", *args], env={"HERMES_STREAM_DB": str(db)})


def test_the_errors_report_summarises_the_last_days(errors_db: Path) -> None:
    result = report(errors_db, "errors", "--format", "json")

    assert result.exit_code == 0, result.output
    rows = codec.loads(result.output)
    assert [
        (r["category"], r["reason"], r["provider"], r["model"], r["tool_name"], r["errors"]) for r in rows
    ] == [
        ("permanent", "auth", "anthropic", "claude-sonnet-4", None, 3),
        ("retryable", "rate_limit", "openai", "gpt-4o", None, 1),
        ("retryable", "timeout", None, None, "web", 1),
    ]
    auth, _, timeout = rows
    assert auth["share"] == 0.6 and auth["sessions"] == 2 and auth["kind"] == "api"
    assert timeout["kind"] == "tool"
    assert list(auth) == [
        "category",
        "reason",
        "kind",
        "provider",
        "model",
        "tool_name",
        "errors",
        "share",
        "sessions",
        "last_seen",
    ]
    # The newest auth error is an hour old: last_seen is an ISO time within the last two hours.
    assert auth["last_seen"] > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 7200))


def test_the_errors_report_looks_back_as_far_as_asked(errors_db: Path) -> None:
    one_day = codec.loads(report(errors_db, "errors", "--days", "1", "--format", "json").output)
    assert sum(r["errors"] for r in one_day) == 4
    all_month = codec.loads(report(errors_db, "errors", "--days", "31", "--format", "json").output)
    assert sum(r["errors"] for r in all_month) == 6
    assert ("unknown", 1) in [(r["reason"], r["errors"]) for r in all_month]

    csv = report(errors_db, "errors", "--format", "csv").output.splitlines()
    assert csv[0] == "category,reason,kind,provider,model,tool_name,errors,share,sessions,last_seen"
    assert csv[1].startswith("permanent,auth,api,anthropic,claude-sonnet-4,,3,0.6,2,")


def test_days_must_be_positive_and_only_goes_with_the_errors_report(errors_db: Path) -> None:
    zero = report(errors_db, "errors", "--days", "0")
    assert zero.exit_code == 2 and "0 is not in the range x>=1" in zero.output
    daily = report(errors_db, "daily", "--days", "3")
    assert daily.exit_code == 2 and "--days applies to the errors report only, not daily" in daily.output
    with pytest.raises(ConfigError, match="at least 1, not 0"):
        errors_report(0)  # the SQL is built from the number: nothing else gets in
