"""``hermes-stream demo`` (what ``make run`` calls): the whole pipeline, once.

Starts the embedded broker and a worker, publishes a generated workload
through the producer SDK, waits until DuckDB holds every session, prints a
short report and stops everything.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import click

from hermes_stream.events import Event
from hermes_stream.formats import render
from hermes_stream.generator import generate_events
from hermes_stream.producer import EventProducer
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
            asyncio.run(_publish(live, events))
            _say(f"published {len(events):,} events of {sessions} sessions; waiting for DuckDB …")
            wait_until(lambda: _progress(live, sessions), 180, worker)
            _say("")
            _report(live)
            _say("stopping …")
    _say(f'done. Query it: hermes-stream sql --db {settings.db} "SELECT * FROM sessions LIMIT 5"')


async def _publish(settings: Settings, events: list[Event]) -> None:
    async with EventProducer.from_settings(settings) as producer:
        for number, event in enumerate(events, 1):
            producer.emit(event)
            await producer.paced()
            if number % 2000 == 0:
                _say(f"\r  emitted {number:,}/{len(events):,} events", end="")
        await producer.flush(timeout=60)
    _say("")


def _progress(settings: Settings, sessions: int) -> bool:
    landed = count_rows(settings, ENDED)
    _say(f"\r  sessions in DuckDB: {landed}/{sessions}", end="")
    return landed >= sessions


def _report(settings: Settings) -> None:
    columns, rows = query(settings.db, REPORTS["summary"], settings.lock_timeout)
    _say(render(columns, rows, "table"))
    _say("\ntop models")
    columns, rows = query(settings.db, REPORTS["models"] + " LIMIT 5", settings.lock_timeout)
    _say(render(columns, rows, "table") + "\n")


def _remove_db(path: Path) -> None:
    for candidate in (path, path.with_name(path.name + ".wal")):
        candidate.unlink(missing_ok=True)


def _say(text: str, end: str = "\n") -> None:
    click.echo(text, nl=False)
    click.echo(end, nl=False)
