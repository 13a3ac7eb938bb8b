"""The real ``hermes-stream`` commands, run as a user would (subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from hermes_stream import codec
from hermes_stream.events import validate_event
from hermes_stream.generator import generate_events
from hermes_stream.settings import Settings
from hermes_stream.topics import Topics
from tests.conftest import wait_for
from tests.integration.conftest import events_in, publish, read_topic, scalar


def hermes(
    *args: str, settings: Settings | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, **(settings.to_env() if settings else {})}
    return subprocess.run(
        [sys.executable, "-m", "hermes_stream", *args], input=stdin, env=env, capture_output=True, timeout=120
    )


def test_emit_reports_bad_lines_and_publishes_the_good_ones(settings_factory) -> None:
    settings = settings_factory()
    good = list(generate_events(3, seed=9))
    lines = [codec.dumps(e) for e in good]
    lines.insert(1, b"{not json")
    lines.insert(4, codec.dumps({**good[0], "input_tokens": -1, "type": "api_call"}))
    lines.insert(6, b"")  # blank lines are skipped, not errors

    result = hermes("emit", "-", settings=settings, stdin=b"\n".join(lines) + b"\n")

    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert "line 2: not valid JSON" in stderr
    assert "line 5: " in stderr and "must not be negative" in stderr
    assert f"published {len(good)} events, 2 invalid lines" in stderr
    received = events_in(read_topic(settings.broker, Topics(settings.topic_prefix).events))
    assert sorted(e["event_id"] for e in received) == sorted(e["event_id"] for e in good)


def test_generate_is_deterministic_and_valid() -> None:
    first = hermes("generate", "--sessions", "5", "--seed", "4")
    second = hermes("generate", "--sessions", "5", "--seed", "4")
    other = hermes("generate", "--sessions", "5", "--seed", "5")
    assert first.returncode == 0 and first.stdout == second.stdout != other.stdout
    events = [codec.loads(line) for line in first.stdout.splitlines()]
    assert len({e["session_id"] for e in events}) == 5
    for event in events:
        validate_event(event)


def test_sql_on_a_missing_database_says_what_to_do(tmp_path: Path) -> None:
    result = hermes("sql", "SELECT 1", "--db", str(tmp_path / "nope.duckdb"))
    assert result.returncode == 1
    assert result.stderr.decode().startswith("error: no database at")
    assert "Traceback" not in result.stderr.decode()


def test_analysts_query_while_the_worker_writes(settings_factory, worker_factory) -> None:
    settings = settings_factory()
    worker_factory(settings)
    batches = [list(generate_events(25, seed=s)) for s in range(6)]
    publisher = threading.Thread(target=lambda: [publish(settings, b) for b in batches])
    publisher.start()

    counts = []
    while publisher.is_alive() or len(counts) < 5:
        result = hermes("sql", "SELECT count(*) AS n FROM api_calls", "--format", "json", settings=settings)
        if result.returncode == 1 and b"no database" in result.stderr:
            continue  # the worker has not created the file yet
        assert result.returncode == 0, result.stderr.decode()
        counts.append(codec.loads(result.stdout)[0]["n"])
    publisher.join()

    assert counts == sorted(counts)
    total = sum(e["type"] == "api_call" for b in batches for e in b)
    wait_for(lambda: scalar(settings, "SELECT count(*) FROM api_calls") == total, timeout=60)
    daily = hermes("report", "daily", "--format", "csv", settings=settings)
    assert daily.returncode == 0, daily.stderr.decode()
    header, *rows = daily.stdout.decode().splitlines()
    assert header.startswith("date,sessions,api_calls")
    assert sum(int(r.split(",")[2]) for r in rows) == total
    table = hermes("report", "daily", settings=settings)
    assert table.returncode == 0 and b"total_tokens" in table.stdout


def test_compose_topics_command_creates_the_topics(settings_factory) -> None:
    import yaml

    compose = yaml.safe_load((Path(__file__).parents[2] / "docker-compose.yml").read_text())
    service = compose["services"]["topics"]
    settings = settings_factory()
    env = {**{k: str(v) for k, v in service["environment"].items()}, **settings.to_env()}
    env["HERMES_STREAM_PARTITIONS"] = str(service["environment"]["HERMES_STREAM_PARTITIONS"])
    result = subprocess.run(
        [sys.executable, "-m", "hermes_stream", *service["command"][1:]],
        env={**os.environ, **env},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().split() == list(Topics(settings.topic_prefix).all())
