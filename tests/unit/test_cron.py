"""Cron runs: session id, skill_invoked and session_end events, never a failed job for telemetry."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from hermes_stream.cron import check_context_window, cron_job, cron_run
from hermes_stream.events import validate_event
from hermes_stream.exceptions import HermesStreamError, ModelContextError
from hermes_stream.producer import EventProducer
from hermes_stream.sender import MemorySender
from hermes_stream.sync_producer import SyncEventProducer
from tests.unit.delivery import delivered

Event = dict[str, Any]
START = datetime(2025, 3, 7, 6, 30, 5, 250_000, tzinfo=UTC)
SESSION = "cron_digest_20250307_063005"


class Recorder:
    """A producer that keeps what it is given; every event must pass the contract."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> bool:
        self.events.append(validate_event(event))
        return True

    def of(self, type_: str) -> list[Event]:
        return [e for e in self.events if e["type"] == type_]


class Broken:
    """A producer that fails the way a misconfigured one does: raising, or refusing."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.calls = 0

    def emit(self, event: Event) -> bool:
        self.calls += 1
        if self.refuse:
            return False
        raise RuntimeError("call start() first")


class JobError(Exception):
    pass


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def test_a_successful_run_emits_its_skills_then_cron_complete(recorder: Recorder) -> None:
    with cron_run(
        "digest",
        ["web_research", "summarise"],
        producer=recorder,
        model="claude-sonnet-4-5",
        provider="anthropic",
        started=START,
        skill_version="1.2.0",
    ) as run:
        assert run.session_id == SESSION
        assert [e["skill_name"] for e in recorder.of("skill_invoked")] == ["web_research", "summarise"]
        assert recorder.of("session_end") == []  # not before the job is done

    assert run.success is True
    assert {e["session_id"] for e in recorder.events} == {SESSION}
    assert {e["source"] for e in recorder.events} == {"cron"}
    for skill in recorder.of("skill_invoked"):
        assert skill["cron_id"] == "digest"
        assert skill["skill_version"] == "1.2.0"
        assert (skill["model"], skill["provider"]) == ("claude-sonnet-4-5", "anthropic")
        assert skill["ts"] == START.timestamp()  # invoked_at is the run's start
    [end] = recorder.of("session_end")
    assert (end["end_reason"], end["completed"]) == ("cron_complete", True)
    assert end["started_at"] == START.timestamp()
    assert (end["model"], end["provider"]) == ("claude-sonnet-4-5", "anthropic")
    assert end["ts"] >= end["started_at"]
    assert recorder.events[-1] is end


def test_the_session_id_uses_the_start_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    run = cron_run("digest", producer=None, started=datetime(2025, 3, 7, 7, 30, 5, tzinfo=paris))
    assert run.session_id == SESSION
    assert cron_run("digest", producer=None, started=START.timestamp()).session_id == SESSION
    with pytest.raises(ValueError, match="timezone-aware"):
        cron_run("digest", producer=None, started=datetime(2025, 3, 7, 6, 30, 5))


def test_the_default_start_is_now() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    run = cron_run("digest", producer=None)
    stamp = datetime.strptime(run.session_id.removeprefix("cron_digest_"), "%Y%m%d_%H%M%S")
    assert before <= stamp.replace(tzinfo=UTC) <= datetime.now(UTC)


def test_an_exception_ends_the_run_as_cron_failed_and_is_reraised_unchanged(recorder: Recorder) -> None:
    error = JobError("upstream gone")

    with pytest.raises(JobError) as raised:
        with cron_run("digest", ["web_research"], producer=recorder, started=START) as run:
            raise error

    assert raised.value is error
    assert (
        raised.traceback[-1].name == "test_an_exception_ends_the_run_as_cron_failed_and_is_reraised_unchanged"
    )
    assert run.success is False
    [end] = recorder.of("session_end")
    assert (end["end_reason"], end["completed"]) == ("cron_failed", False)
    assert len(recorder.of("skill_invoked")) == 1


def test_an_interrupted_run_is_cron_failed_too(recorder: Recorder) -> None:
    with pytest.raises(KeyboardInterrupt):
        with cron_run("digest", producer=recorder, started=START):
            raise KeyboardInterrupt

    assert recorder.of("session_end")[0]["end_reason"] == "cron_failed"


def test_fail_marks_the_run_failed_without_raising(recorder: Recorder) -> None:
    with cron_run("digest", producer=recorder, started=START) as run:
        run.fail()
        assert run.success is False

    [end] = recorder.of("session_end")
    assert (end["end_reason"], end["completed"]) == ("cron_failed", False)


def test_skills_and_events_added_during_the_run_join_its_session(recorder: Recorder) -> None:
    with cron_run("digest", producer=recorder, model="gpt-5", provider="openai", started=START) as run:
        assert run.skill("summarise", "2.0.1", success=True, duration_seconds=1.5) is True
        assert run.emit("tool_result", tool_name="web_search", status="ok") is True

    [skill] = recorder.of("skill_invoked")
    assert skill["skill_name"] == "summarise" and skill["skill_version"] == "2.0.1"
    assert (skill["success"], skill["duration_seconds"]) == (True, 1.5)
    assert (skill["cron_id"], skill["model"]) == ("digest", "gpt-5")
    assert skill["ts"] > START.timestamp()  # invoked when added, not at the start
    assert [e["type"] for e in recorder.events] == ["skill_invoked", "tool_result", "session_end"]
    assert {e["session_id"] for e in recorder.events} == {SESSION}


def test_absent_options_are_left_out_not_sent_as_null(recorder: Recorder) -> None:
    with cron_run("digest", ["summarise"], producer=recorder, started=START):
        pass

    [skill] = recorder.of("skill_invoked")
    assert not {"model", "provider", "skill_version"} & skill.keys()
    assert not {"model", "provider"} & recorder.of("session_end")[0].keys()


def test_the_decorator_runs_a_sync_job_inside_a_run(recorder: Recorder) -> None:
    @cron_job("digest", ["summarise"], producer=recorder, model="gpt-5", provider="openai")
    def digest(day: str, *, pages: int) -> str:
        assert len(recorder.of("skill_invoked")) == 1  # emitted before the job body
        return f"{day}:{pages}"

    assert digest.__name__ == "digest"
    assert digest("monday", pages=3) == "monday:3"
    [end] = recorder.of("session_end")
    assert (end["end_reason"], end["completed"]) == ("cron_complete", True)
    assert end["session_id"].startswith("cron_digest_")


def test_the_decorator_reports_a_failing_sync_job(recorder: Recorder) -> None:
    @cron_job("digest", producer=recorder)
    def digest() -> None:
        raise JobError("no pages")

    with pytest.raises(JobError, match="no pages"):
        digest()
    assert recorder.of("session_end")[0]["end_reason"] == "cron_failed"


async def test_the_decorator_awaits_an_async_job_inside_a_run(recorder: Recorder) -> None:
    @cron_job("digest", ["summarise"], producer=recorder)
    async def digest(pages: int) -> int:
        assert recorder.of("session_end") == []
        return pages * 2

    assert await digest(4) == 8
    assert [e["type"] for e in recorder.events] == ["skill_invoked", "session_end"]
    assert recorder.of("session_end")[0]["completed"] is True


async def test_the_decorator_reports_a_failing_async_job(recorder: Recorder) -> None:
    @cron_job("digest", producer=recorder)
    async def digest() -> None:
        raise JobError("no pages")

    with pytest.raises(JobError):
        await digest()
    [end] = recorder.of("session_end")
    assert (end["end_reason"], end["completed"]) == ("cron_failed", False)


@pytest.mark.parametrize("refuse", [False, True], ids=["emit raises", "emit refuses"])
def test_a_broken_producer_never_breaks_the_job(refuse: bool, caplog: pytest.LogCaptureFixture) -> None:
    producer = Broken(refuse)

    with caplog.at_level(logging.WARNING, logger="hermes_stream.cron"):
        with cron_run("digest", ["summarise"], producer=producer) as run:
            assert run.skill("extra") is False
            result = "done"

        @cron_job("digest", ["summarise"], producer=producer)
        def job() -> str:
            return "done too"

        assert job() == "done too"

    assert result == "done" and run.success is True
    assert producer.calls == 5  # every event was attempted: 2 skills + end, 1 skill + end
    assert len(caplog.records) == 5
    assert all("digest" in r.getMessage() for r in caplog.records)


def test_a_broken_producer_does_not_mask_the_jobs_own_error() -> None:
    with pytest.raises(JobError):
        with cron_run("digest", producer=Broken()):
            raise JobError


def test_an_invalid_event_is_dropped_with_a_warning_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()  # raises InvalidEvent for a bad event, as validate_event does
    with caplog.at_level(logging.WARNING, logger="hermes_stream.cron"):
        with cron_run("digest", producer=recorder) as run:
            assert run.skill("") is False
    assert recorder.of("skill_invoked") == []
    assert "could not emit a skill_invoked event" in caplog.text


def test_without_a_producer_the_job_just_runs() -> None:
    with cron_run("digest", ["summarise"], producer=None) as run:
        assert run.skill("extra") is False
    assert run.success is True


@pytest.fixture
def sync_producer(tmp_path: Path) -> Iterator[tuple[SyncEventProducer, MemorySender]]:
    sender = MemorySender()

    def factory() -> EventProducer:
        return EventProducer(sender, topic="test.events", spool_dir=tmp_path / "spool")

    producer = SyncEventProducer(factory=factory).start()
    yield producer, sender
    producer.close(timeout=1)


def test_a_run_through_the_sync_producer_reaches_the_broker(
    sync_producer: tuple[SyncEventProducer, MemorySender],
) -> None:
    producer, sender = sync_producer

    with pytest.raises(JobError):
        with cron_run("digest", ["web_research", "summarise"], producer=producer, started=START):
            raise JobError

    assert producer.flush(5)
    events = delivered(sender)
    assert [(e["type"], e.get("skill_name")) for e in events] == [
        ("skill_invoked", "web_research"),
        ("skill_invoked", "summarise"),
        ("session_end", None),
    ]
    assert all(validate_event(e) and e["session_id"] == SESSION for e in events)
    assert events[-1]["end_reason"] == "cron_failed"
    assert {record.key for _, record in sender.records} == {SESSION.encode()}
    assert producer.stats.rejected == 0


@pytest.mark.parametrize(
    ("window", "override", "ok"),
    [
        (63_999, None, False),
        (8_192, None, False),
        (64_000, None, True),
        (200_000, None, True),
        (8_192, 8_192, True),  # the operator configured the length: trusted
    ],
)
def test_the_context_window_check(window: int, override: int | None, ok: bool) -> None:
    if ok:
        check_context_window("some-model", window, override=override)
        return
    with pytest.raises(ModelContextError) as raised:
        check_context_window("some-model", window, override=override)
    message = str(raised.value)
    assert "some-model" in message and f"{window:,}" in message and "64,000" in message
    assert "override" in message
    assert isinstance(raised.value, HermesStreamError)
    assert (raised.value.context_window, raised.value.minimum) == (window, 64_000)


def test_the_context_window_minimum_can_be_raised() -> None:
    with pytest.raises(ModelContextError, match="100,000"):
        check_context_window("some-model", 64_000, minimum=100_000)
