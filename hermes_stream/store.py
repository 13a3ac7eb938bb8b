"""The DuckDB store: one writer that holds the file only while it writes.

DuckDB lets one process open a database file read-write, and while it does no
other process can open it even read-only. So the sink opens the file for a
write (or keeps it across writes that follow closely, see :class:`Store`),
writes in one transaction, and checkpoints and closes it once writes pause;
analysts' reads (:func:`reader`) open it read-only for the length of one
query. Each side retries while the other holds the lock, up to
``lock_timeout`` seconds.

Event rows (``api_calls``, ``tool_results``) are read by DuckDB straight from
the events' JSON, so no Python object is built per event; session and dead
letter, error and alert rows are bulk-loaded through an appender. Both go
through a staging table. Rows that never change (events, errors, alerts) are
added with a plain ``INSERT``; if one is stored already (a batch replayed
after a crash), the write is rolled back and done again with
``INSERT OR IGNORE``, which DuckDB runs ~3x slower. Rows that change
(sessions) replace the stored ones by key, a delete and an insert. So
replaying a batch changes nothing. An event row takes its
``error_category`` and ``error_reason`` from the error row of the same
``event_id``, written in the same batch. The ``api_calls`` rows an insert
really adds (``RETURNING``: a replayed call is not among them) are added to the
per-day model aggregates (:mod:`~hermes_stream.model_aggregates`) in the same transaction.

:class:`WriterProcess` runs the writes in a child process. In a thread they
were ~3x slower while the worker folded records: DuckDB takes the GIL back
many times during a write, and each time waits for the folding thread's
switch interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import multiprocessing
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import duckdb

from hermes_stream.exceptions import HermesStreamError, StoreBusy, StoreError
from hermes_stream.file_lock import held_by_other
from hermes_stream.model_aggregates import AGGREGATES, CALL_COLUMNS
from hermes_stream.schema import (
    API_CALLS,
    ERRORS,
    EVENT_TABLES,
    TABLES,
    TOOL_RESULTS,
    Table,
    event_json_columns,
    view_ddl,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
Row = tuple[Any, ...]


ROW_TABLES = tuple(t for t in TABLES if t not in EVENT_TABLES.values())


@dataclass
class SinkBatch:
    """What one write puts in DuckDB, in one transaction.

    ``events`` holds valid events as JSON, each item the inside of a JSON
    array (objects and commas), usually a Kafka record as it arrived; the
    event tables' rows are read from it. ``rows`` holds the other tables' rows.
    """

    events: list[bytes | memoryview] = field(default_factory=list)
    event_count: int = 0
    rows: dict[str, list[Row]] = field(default_factory=lambda: {t.name: [] for t in ROW_TABLES})
    #: Set instead of ``events`` when they wait in a file (one JSON array).
    events_file: str | None = None

    def add_events(self, array: bytes, count: int) -> None:
        """Add a JSON array of *count* (at least one) valid events (a view of it, not a copy)."""
        self.events.append(memoryview(array.strip())[1:-1])
        self.event_count += count

    def add(self, table: Table, row: Row) -> None:
        self.rows[table.name].append(row)

    def write_events(self, file: IO[bytes]) -> None:
        """Write every event of the batch to *file* as one JSON array, record by record."""
        file.write(b"[")
        for i, events in enumerate(self.events):
            if i:
                file.write(b",")
            file.write(events)
        file.write(b"]")

    def __len__(self) -> int:
        return self.event_count + sum(len(rows) for rows in self.rows.values())


def _is_lock_error(exc: duckdb.Error) -> bool:
    # Another process holds the file ("Could not set lock"), or this process
    # has it open in the other mode ("different configuration").
    text = str(exc).lower()
    return "lock" in text or "different configuration" in text


def with_lock_retry(open_: Callable[[], T], path: Path, timeout: float, exclusive: bool) -> T:
    """Call *open_* until the file's lock is free, for at most *timeout* seconds.

    While another process visibly holds the file (:func:`held_by_other`),
    *open_* is not even tried: a failed open costs milliseconds of CPU.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        error: duckdb.Error | None = None
        if not held_by_other(path, exclusive):
            try:
                return open_()
            except (duckdb.IOException, duckdb.ConnectionException) as exc:
                if not _is_lock_error(exc):
                    raise StoreError(f"cannot open {path}: {exc}") from exc
                error = exc
        if time.monotonic() >= deadline:
            raise StoreBusy(
                f"{path} stayed locked by another process for {timeout:.0f}s; "
                "is a query or another sink holding it?"
            ) from error
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.025)  # readers wait for a gap between writes: look often


#: A writer that holds the file between writes gives it up for this long
#: before taking it again, so waiting readers (who retry every few ms) get in.
READERS_GAP = 0.03
#: How often the automatic template capture runs, in seconds.
AUTO_TEMPLATES_EVERY = 86_400.0
#: A held file is given up once no write has come for this long. Under load
#: the worker's writes are 0.1-0.2 s apart; giving the file up between them
#: (a checkpoint, a reopen and its index reloaded each time) made the writes
#: ~30% slower in all.
IDLE_RELEASE = 0.5
#: WAL size past which DuckDB checkpoints inside a COMMIT (its default, 16 MB,
#: is ~70,000 events). Such a checkpoint holds up the write's reply. A held
#: file is checkpointed when it is given up instead (after at most *hold*
#: seconds of writes), once the write has returned; a file not held is
#: checkpointed at each close anyway.
CHECKPOINT_THRESHOLD = "1GB"
#: DuckDB threads of the writer. A write of a few thousand rows takes as long
#: with one thread as with two, and the second would take the core the worker
#: folds records on.
WRITER_THREADS = 1


class Store:
    """Writes :class:`SinkBatch` es to the DuckDB file at *path*.

    With ``hold=0`` the file is opened and closed (after a ``CHECKPOINT``) for
    every write. With ``hold > 0``, writes that follow each other closely share
    one connection for up to *hold* seconds, which saves the open and the
    checkpoint of each; the file is given up as soon as writes pause for
    :data:`IDLE_RELEASE` seconds, or after *hold* seconds for :data:`READERS_GAP`.
    A held file is checkpointed only then, in a thread of its own once the
    write has returned (see :data:`CHECKPOINT_THRESHOLD`).
    """

    def __init__(
        self, path: Path, lock_timeout: float = 30.0, hold: float = 0.0, auto_templates: int = 0
    ) -> None:
        self.path = path
        self.lock_timeout = lock_timeout
        self.hold = hold
        #: Automatic template capture: at most this many per category, once a day (0: off).
        self.auto_templates = auto_templates
        self._next_templates = 0.0
        self._schema_ready = False
        self._con: duckdb.DuckDBPyConnection | None = None
        self._opened = self._released = 0.0
        self._mutex = threading.Lock()
        self._idle: threading.Timer | None = None

    def _connect(self) -> duckdb.DuckDBPyConnection:
        def open_() -> duckdb.DuckDBPyConnection:
            return duckdb.connect(
                str(self.path),
                config={"threads": WRITER_THREADS, "checkpoint_threshold": CHECKPOINT_THRESHOLD},
            )

        return with_lock_retry(open_, self.path, self.lock_timeout, exclusive=True)

    def ensure_schema(self) -> None:
        """Create the tables and views if they are missing."""
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._connect()
        try:
            self._create_schema(con)
        finally:
            con.close()

    def _create_schema(self, con: duckdb.DuckDBPyConnection) -> None:
        for table in TABLES:
            con.execute(table.ddl())
            for statement in table.added_columns() + table.index_ddl():
                con.execute(statement)
        _create_aggregates(con)
        for statement in view_ddl():
            con.execute(statement)
        self._schema_ready = True

    def write(self, batch: SinkBatch) -> None:
        """Write *batch* durably: when this returns, the rows survive a crash."""
        if not len(batch):
            return
        with self._mutex:
            if self._idle is not None:
                self._idle.cancel()
            if self._con is not None and time.monotonic() - self._opened >= self.hold:
                self._close()  # held long enough, and its release had not run yet: readers first
            con = self._con or self._open()
            try:
                try:
                    _write(con, batch, upsert=False)
                except duckdb.ConstraintException:  # a row already stored: a replay
                    _write(con, batch, upsert=True)
            except duckdb.Error as exc:
                self._close()
                raise StoreError(f"writing to {self.path} failed: {exc}") from exc
            if self.auto_templates and time.time() >= self._next_templates:
                self._capture_templates(con)
            if not self.hold:
                self._close()
                return
            # Held: given up once writes pause, or at once after *hold* seconds
            # (the checkpoint then runs after this write has returned).
            held_for = time.monotonic() - self._opened
            self._idle = threading.Timer(0 if held_for >= self.hold else IDLE_RELEASE, self.release)
            self._idle.daemon = True
            self._idle.start()

    def _capture_templates(self, con: duckdb.DuckDBPyConnection) -> None:
        """The daily automatic capture of warm templates (see ``templates.auto_capture``)."""
        from hermes_stream.templates import auto_capture  # templates reads through this module

        self._next_templates = time.time() + AUTO_TEMPLATES_EVERY
        try:
            names = auto_capture(con, self.auto_templates)
        except HermesStreamError as exc:  # the rows are written; the capture is tried again tomorrow
            log.error("automatic template capture failed: %s", exc)
            return
        if names:
            log.info("captured templates automatically: %s", ", ".join(names))

    def release(self) -> None:
        """Checkpoint and close a held file."""
        with self._mutex:
            self._close()

    def _open(self) -> duckdb.DuckDBPyConnection:
        pause = self._released + READERS_GAP - time.monotonic()
        if self.hold and pause > 0:
            time.sleep(pause)
        con = self._connect()
        if not self._schema_ready:
            self._create_schema(con)
        self._con, self._opened = con, time.monotonic()
        return con

    def _close(self) -> None:
        con, self._con = self._con, None
        if con is None:
            return
        try:
            with contextlib.suppress(duckdb.Error):  # the WAL has the rows: the next open replays it
                con.execute("CHECKPOINT")
        finally:
            con.close()
            self._released = time.monotonic()


def _write(con: duckdb.DuckDBPyConnection, batch: SinkBatch, upsert: bool) -> None:
    """Write *batch* in one transaction; with ``upsert=False`` fail on a row already stored."""
    con.execute("BEGIN")
    try:
        # Every row table is staged first: the event tables join staged errors.
        staged = [t for t in ROW_TABLES if t is ERRORS or batch.rows[t.name]]
        for table in staged:
            _stage(con, table, batch.rows[table.name])
        if batch.events_file:
            _merge_events(con, batch.events_file, upsert)
        elif batch.events:
            with _events_file(batch) as path:
                _merge_events(con, path, upsert)
        for table in staged:
            for statement in table.merge_from(f"staged_{table.name}", upsert):
                con.execute(statement)
            con.execute(f"DROP TABLE staged_{table.name}")
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


def _stage(con: duckdb.DuckDBPyConnection, table: Table, rows: Sequence[Row]) -> None:
    staging = f"staged_{table.name}"
    cols = ", ".join(f"{name} {sql}" for name, sql in table.staging_types().items())
    con.execute(f"CREATE OR REPLACE TEMP TABLE {staging} ({cols})")
    if rows:
        with con.appender(staging) as appender:
            appender.append_rows(rows)


def _events_to_file(batch: SinkBatch) -> str:
    """Write the batch's events to a new temporary JSON file, for DuckDB's JSON reader; return its path."""
    with tempfile.NamedTemporaryFile(prefix="hermes-sink-", suffix=".json", delete=False) as file:
        batch.write_events(file)
    return file.name


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


@contextlib.contextmanager
def _events_file(batch: SinkBatch) -> Iterator[str]:
    """The batch's events in a temporary JSON file while the block runs."""
    path = _events_to_file(batch)
    try:
        yield path
    finally:
        _remove(path)


def _merge_events(con: duckdb.DuckDBPyConnection, path: str, upsert: bool) -> None:
    columns = ", ".join(f"'{name}': '{sql}'" for name, sql in event_json_columns().items())
    source = path.replace("'", "''")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE staged_events AS SELECT * FROM "
        f"read_json('{source}', format = 'array', columns = {{{columns}}})"
    )
    # The error columns come from the batch's classified errors (staged_errors).
    joined = (
        "staged_events LEFT JOIN (SELECT event_id, category AS error_category, "
        f"reason AS error_reason FROM staged_{ERRORS.name}) USING (event_id)"
    )
    con.execute(f"{TOOL_RESULTS.insert_from(joined, upsert)} WHERE type = 'tool_result'")
    # sql() runs a statement that writes at once and holds the rows it returns, for the aggregates.
    returning = ", ".join(CALL_COLUMNS)
    calls = API_CALLS.insert_from(joined, upsert)
    inserted = con.sql(f"{calls} WHERE type = 'api_call' RETURNING {returning}")
    con.register("inserted_calls", inserted)
    try:
        for aggregate in AGGREGATES:
            con.execute(aggregate.add_from("inserted_calls"))
    finally:
        con.unregister("inserted_calls")
    con.execute("DROP TABLE staged_events")


def _create_aggregates(con: duckdb.DuckDBPyConnection) -> None:
    """Create the model aggregates; in a file that had none, fill them from its calls.

    One transaction: a crash never leaves them created but empty.
    """
    tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()")
    existing = {name for (name,) in tables.fetchall()}
    con.execute("BEGIN")
    try:
        for aggregate in AGGREGATES:
            con.execute(aggregate.ddl())
        if any(aggregate.name not in existing for aggregate in AGGREGATES):
            rebuild_model_aggregates(con)
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


def rebuild_model_aggregates(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute the model aggregates from every ``api_calls`` row.

    For calls that did not come through the sink: a file made before the
    aggregates existed, or a bulk load (the report benchmark).
    """
    for aggregate in AGGREGATES:
        con.execute(f"DELETE FROM {aggregate.name}")
        con.execute(aggregate.add_from(API_CALLS.name))


_CHILD_STORES: dict[tuple[Path, float, float, int], Store] = {}


def _write_in_child(key: tuple[Path, float, float, int], batch: SinkBatch) -> None:
    store = _CHILD_STORES.get(key)
    if store is None:
        store = _CHILD_STORES[key] = Store(*key)
    store.write(batch)


def _exit_with_parent(parent: int) -> None:
    """In the child: exit when the worker dies (a SIGKILL leaves no one to stop it)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(0)  # an open transaction is simply not committed

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _release_in_child() -> None:
    for store in _CHILD_STORES.values():
        store.release()


class WriterProcess:
    """Runs :meth:`Store.write` in a child process, one batch at a time.

    The child starts on the first write and is replaced if it dies. It keeps
    the file between writes that follow each other closely, for at most
    *hold* seconds (see :class:`Store`).
    """

    def __init__(self, path: Path, lock_timeout: float, hold: float = 1.0, auto_templates: int = 0) -> None:
        self._key = (path, lock_timeout, hold, auto_templates)
        self._pool: ProcessPoolExecutor | None = None

    def write(self, batch: SinkBatch) -> asyncio.Future[None]:
        """Start writing *batch* in the child now; the future is done once the rows are durable.

        The child starts at once, not when the caller next awaits: a worker
        goes on with other work (its table updates) while the rows are written.
        A failure, even to start, is the future's exception.
        """
        loop = asyncio.get_running_loop()
        path: str | None = None
        try:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_exit_with_parent,
                    initargs=(os.getpid(),),
                )
            path = _events_to_file(batch)  # cheaper than pickling the events through a pipe
            shipped = dataclasses.replace(batch, events=[], events_file=path)
            written = loop.run_in_executor(self._pool, _write_in_child, self._key, shipped)
        except Exception as exc:  # a broken pool, a full disk: the caller retries
            written = loop.create_future()
            written.set_exception(exc)
        written.add_done_callback(functools.partial(self._done, path, self._pool))
        return written

    def _done(
        self, path: str | None, pool: ProcessPoolExecutor | None, written: asyncio.Future[None]
    ) -> None:
        if path is not None:
            _remove(path)
        broken = not written.cancelled() and isinstance(written.exception(), BrokenProcessPool)
        if broken and pool is self._pool:  # not a child started since, for a retry
            self.close()  # the next write starts a new child

    def close(self) -> None:
        """Wait for a write in progress, give up the file, stop the child."""
        if self._pool is not None:
            with contextlib.suppress(BrokenProcessPool, RuntimeError):
                self._pool.submit(_release_in_child).result()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


@contextlib.contextmanager
def reader(path: Path, lock_timeout: float = 30.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, held briefly: close it as soon as the query is done."""
    if not path.exists():
        raise StoreError(
            f"no database at {path} yet: start the worker (hermes-stream worker) or set HERMES_STREAM_DB"
        )
    con = with_lock_retry(
        lambda: duckdb.connect(str(path), read_only=True), path, lock_timeout, exclusive=False
    )
    try:
        yield con
    finally:
        con.close()


def query(path: Path, sql: str, lock_timeout: float = 30.0) -> tuple[list[str], list[Row]]:
    """Run one query read-only; return (column names, rows)."""
    with reader(path, lock_timeout) as con:
        try:
            result = con.execute(sql)
            rows = result.fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"query failed: {exc}") from exc
        names = [d[0] for d in result.description or ()]
    return names, rows
