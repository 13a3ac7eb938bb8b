"""``import-hermes`` end to end against the real embedded broker."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from hermes_stream.backfill import import_hermes_command
from hermes_stream.events import Event
from hermes_stream.settings import Settings
from hermes_stream.topics import Topics, ensure_topics_sync
from tests.integration.conftest import events_in, read_topic
from tests.unit.test_backfill import current_db

pytestmark = pytest.mark.integration


def _env(settings: Settings) -> dict[str, str]:
    return {
        "HERMES_STREAM_BROKER": settings.broker or "",
        "HERMES_STREAM_TOPIC_PREFIX": settings.topic_prefix,
        "HERMES_STREAM_SPOOL_DIR": str(settings.spool_dir),
    }


def _prepared(settings_factory: Callable[..., Settings]) -> Settings:
    settings = settings_factory()
    assert settings.broker
    ensure_topics_sync(settings.broker, Topics(settings.topic_prefix).all(), settings.partitions)
    return settings


def _events(settings: Settings, count: int) -> list[Event]:
    """The events of the topic once it holds *count* (records are arrays of several)."""
    deadline = time.monotonic() + 10
    while True:
        events = events_in(read_topic(settings.broker or "", Topics(settings.topic_prefix).events, timeout=2))
        if len(events) >= count or time.monotonic() > deadline:
            return events


def test_importing_twice_publishes_the_same_event_ids(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = _prepared(settings_factory)
    path = current_db(tmp_path)
    runner = CliRunner()

    first = runner.invoke(import_hermes_command, [str(path)], env=_env(settings))
    assert first.exit_code == 0, first.output
    assert "imported 2 sessions: 3 api_calls, 2 tool_results, 1 session_ends" in first.output
    assert "6 sent, 0 spooled" in first.output
    run1 = _events(settings, 6)

    second = runner.invoke(import_hermes_command, [str(path)], env=_env(settings))
    assert second.exit_code == 0, second.output
    both = _events(settings, 12)

    ids1 = sorted(e["event_id"] for e in run1)
    assert len(set(ids1)) == 6
    # Run 2 sent the very same ids again: the pipeline's dedupe makes it a no-op.
    assert sorted(e["event_id"] for e in both) == sorted(ids1 * 2)


def test_dry_run_publishes_nothing(settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    settings = _prepared(settings_factory)
    result = CliRunner().invoke(
        import_hermes_command, [str(current_db(tmp_path)), "--dry-run"], env=_env(settings)
    )
    assert result.exit_code == 0, result.output
    assert "dry run: nothing published" in result.output
    assert (
        read_topic(settings.broker or "", Topics(settings.topic_prefix).events, expected=0, timeout=2) == []
    )


def test_not_a_hermes_file_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_text("not sqlite")
    result = CliRunner().invoke(import_hermes_command, [str(path), "--dry-run"])
    assert "not a Hermes state.db" in str(result.exception)
