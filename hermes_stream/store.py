"""The DuckDB store: one writer that holds the file only while it flushes.

DuckDB lets one process open a database file read-write, and while it does no
other process can open it even read-only. So the sink opens the file for each
batch, writes it in one transaction, checkpoints and closes; analysts' reads
(:func:`reader`) open it read-only for the length of one query. Each side
retries while the other holds the lock, up to ``lock_timeout`` seconds.

Rows are bulk-loaded through an appender into a staging table, then merged
with ``INSERT OR IGNORE`` (events never change) or ``INSERT OR REPLACE``
(sessions do), so replaying a batch after a crash changes nothing.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from hermes_stream.exceptions import StoreBusy, StoreError
from hermes_stream.schema import TABLES, Table, view_ddl

T = TypeVar("T")
Row = tuple[Any, ...]


@dataclass
class SinkBatch:
    """Rows bound for each table, written together in one transaction."""

    rows: dict[str, list[Row]] = field(default_factory=lambda: {t.name: [] for t in TABLES})

    def add(self, table: Table, row: Row) -> None:
        self.rows[table.name].append(row)

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


def _is_lock_error(exc: duckdb.Error) -> bool:
    # Another process holds the file ("Could not set lock"), or this process
    # has it open in the other mode ("different configuration").
    text = str(exc).lower()
    return "lock" in text or "different configuration" in text


def with_lock_retry(open_: Callable[[], T], path: Path, timeout: float) -> T:
    """Call *open_* until the file's lock is free, for at most *timeout* seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            return open_()
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if not _is_lock_error(exc):
                raise StoreError(f"cannot open {path}: {exc}") from exc
            if time.monotonic() >= deadline:
                raise StoreBusy(
                    f"{path} stayed locked by another process for {timeout:.0f}s; "
                    "is a query or another sink holding it?"
                ) from exc
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.1)


class Store:
    """Writes :class:`SinkBatch` es to the DuckDB file at *path*."""

    def __init__(self, path: Path, lock_timeout: float = 30.0) -> None:
        self.path = path
        self.lock_timeout = lock_timeout
        self._schema_ready = False

    def _connect(self) -> duckdb.DuckDBPyConnection:
        return with_lock_retry(lambda: duckdb.connect(str(self.path)), self.path, self.lock_timeout)

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
        for statement in view_ddl():
            con.execute(statement)
        self._schema_ready = True

    def write(self, batch: SinkBatch) -> None:
        """Write *batch* durably: when this returns, the rows survive a crash."""
        if not len(batch):
            return
        con = self._connect()
        try:
            if not self._schema_ready:
                self._create_schema(con)
            con.execute("BEGIN")
            for table in TABLES:
                rows = batch.rows[table.name]
                if rows:
                    _merge(con, table, rows)
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
        except duckdb.Error as exc:
            raise StoreError(f"writing to {self.path} failed: {exc}") from exc
        finally:
            con.close()


def _merge(con: duckdb.DuckDBPyConnection, table: Table, rows: Sequence[Row]) -> None:
    staging = f"staged_{table.name}"
    cols = ", ".join(f"{name} {sql}" for name, sql in table.staging_types().items())
    con.execute(f"CREATE OR REPLACE TEMP TABLE {staging} ({cols})")
    with con.appender(staging) as appender:
        appender.append_rows(rows)
    con.execute(table.insert_from(staging))
    con.execute(f"DROP TABLE {staging}")


@contextlib.contextmanager
def reader(path: Path, lock_timeout: float = 30.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, held briefly: close it as soon as the query is done."""
    if not path.exists():
        raise StoreError(
            f"no database at {path} yet: start the worker (hermes-stream worker) or set HERMES_STREAM_DB"
        )
    con = with_lock_retry(lambda: duckdb.connect(str(path), read_only=True), path, lock_timeout)
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
