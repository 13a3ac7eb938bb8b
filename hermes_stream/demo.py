"""``hermes-stream demo`` (what ``make run`` calls): the whole pipeline, once.

Starts the embedded broker and a worker, publishes a generated workload
through the producer SDK, waits until DuckDB holds every session, prints a
short report and stops everything.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import click

from hermes_stream.formats import render
from hermes_stream.generator import generate_events
from hermes_stream.publish import publish_events
from hermes_stream.reports import REPORTS
from hermes_stream.settings import Settings
from hermes_stream.store import query
from hermes_stream.worker import count_rows, local_pipeline, wait_until

ENDED = "SELECT count(*) FROM sessions WHERE status = 'ended'"


def run_demo(settings: Settings, sessions: int, seed: int) -> None:
    _remove_db(settings.db)
    events = list(generate_events(sessions, seed, start=time.time() - 4 * 3600))
    with tempfile.TemporaryDirectory(prefix="hermes-demo-") as tmp:
        work = Path(tmp)
        settings = settings.with_(data_dir=work / "state", spool_dir=work / "spool", partitions=4)
        _say("starting the broker and the worker …")
        with local_pipeline(settings, work) as (live, worker):
            asyncio.run(publish_events(live, events, Progress("events emitted", len(events)).update))
            _say(f"published {len(events):,} events of {sessions} sessions")
            _say("waiting for DuckDB (a new worker first joins its consumer group: a few seconds) …")
            progress = Progress("sessions in DuckDB", sessions)
            wait_until(lambda: progress.update(count_rows(live, ENDED)), 180, worker)
            _report(live)
            _say("stopping …")
    _say(f'done. Query it: hermes-stream sql --db {settings.db} "SELECT * FROM sessions LIMIT 5"')


class Progress:
    """A counter on stderr: redrawn in place on a terminal, a line per change otherwise."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.shown = label, total, -1
        self.tty = sys.stderr.isatty()

    def update(self, value: int) -> bool:
        """Show *value* if it changed; True once the total is reached."""
        done = value >= self.total
        if value != self.shown:
            self.shown = value
            line = f"  {self.label}: {value:,}/{self.total:,}"
            click.echo(f"\r{line}" if self.tty else line, err=True, nl=done or not self.tty)
        return done


def _report(settings: Settings) -> None:
    columns, rows = query(settings.db, REPORTS["summary"], settings.lock_timeout)
    _say(render(columns, rows, "table"))
    _say("\ntop models")
    columns, rows = query(settings.db, REPORTS["models"] + " LIMIT 5", settings.lock_timeout)
    _say(render(columns, rows, "table") + "\n")


def _remove_db(path: Path) -> None:
    for candidate in (path, path.with_name(path.name + ".wal")):
        candidate.unlink(missing_ok=True)


def _say(text: str) -> None:
    click.echo(text)
