"""The DuckDB writer process on a real file: batches land, readers get in, a dead child is replaced."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from agents.ingest import write_durably
from hermes_stream import codec
from hermes_stream.events import MAX_COUNT, MAX_TIMESTAMP, Event, make_event
from hermes_stream.generator import generate_events
from hermes_stream.model_aggregates import AGGREGATES
from hermes_stream.pipeline import process_records
from hermes_stream.records import Origin
from hermes_stream.schema import TABLES
from hermes_stream.store import SinkBatch, Store, WriterProcess, query

ROWS = "SELECT (SELECT count(*) FROM api_calls) + (SELECT count(*) FROM tool_results)"


def records_of(events: list[Event], offset: int = 0) -> list[tuple[bytes | None, Origin]]:
    """*events* as the worker reads them: records of 50, from *offset* on."""
    return [(codec.dumps(events[i : i + 50]), Origin("t", 0, offset + i)) for i in range(0, len(events), 50)]


def fold(records: list[tuple[bytes | None, Origin]]) -> SinkBatch:
    return process_records(records, lambda _: None, 1 << 20).sink


def batch(sessions: int, seed: int, offset: int = 0) -> tuple[SinkBatch, int]:
    """A sink batch folded from generated events, and how many event rows it holds."""
    events = list(generate_events(sessions, seed))
    rows = sum(e["type"] in ("api_call", "tool_result") for e in events)
    return fold(records_of(events, offset)), rows


def scalar(path: Path, sql: str) -> int:
    return int(query(path, sql, lock_timeout=10)[1][0][0])


async def test_a_held_file_is_given_up_for_readers(tmp_path: Path) -> None:
    db = tmp_path / "h.duckdb"
    Store(db).ensure_schema()
    writer = WriterProcess(db, lock_timeout=10, hold=60.0)  # held across writes, given up when idle
    try:
        first, first_rows = batch(5, seed=1)
        second, second_rows = batch(5, seed=2, offset=10_000)
        await writer.write(first)
        await writer.write(second)
        assert scalar(db, ROWS) == first_rows + second_rows  # the reader waits for the idle release
        await writer.write(second)  # a replay changes nothing
        assert scalar(db, ROWS) == first_rows + second_rows
    finally:
        writer.close()


def test_a_held_file_is_checkpointed_when_given_up_not_in_its_writes(tmp_path: Path) -> None:
    db, wal = tmp_path / "h.duckdb", tmp_path / "h.duckdb.wal"
    store = Store(db, hold=60.0)
    store.ensure_schema()
    batches = [batch(1000, seed=seed, offset=seed * 10_000) for seed in range(4)]  # ~20 MB of WAL
    for written, _ in batches:  # back to back: an idle release would checkpoint
        store.write(written)
    # Past DuckDB's own threshold (16 MB) a COMMIT would have checkpointed, emptying the WAL.
    assert wal.stat().st_size > 16 << 20
    store.release()
    assert not wal.exists()
    assert scalar(db, ROWS) == sum(rows for _, rows in batches)


async def test_a_killed_writer_child_is_replaced_and_nothing_is_lost(tmp_path: Path) -> None:
    db = tmp_path / "h.duckdb"
    Store(db).ensure_schema()
    writer = WriterProcess(db, lock_timeout=10, hold=0.0)
    try:
        first, first_rows = batch(5, seed=3)
        await writer.write(first)
        pool = writer._pool
        assert pool is not None
        for pid in list(pool._processes):  # type: ignore[attr-defined]
            os.kill(pid, signal.SIGKILL)
        second, second_rows = batch(5, seed=4, offset=10_000)
        await write_durably(writer, second)  # the first try meets the dead child, the retry a new one
        assert writer._pool is not pool
        assert scalar(db, ROWS) == first_rows + second_rows
    finally:
        writer.close()


def test_the_largest_valid_values_fit_the_tables(tmp_path: Path) -> None:
    # A value the validator passes but DuckDB cannot hold would fail every
    # write of its batch, forever: the bounds of the contract must fit.
    event = make_event(
        "api_call", "s", model="m", provider="p", input_tokens=MAX_COUNT, output_tokens=MAX_COUNT, status="ok"
    )
    event["ts"] = MAX_TIMESTAMP
    end = make_event("session_end", "s", end_reason="completed", message_count=MAX_COUNT)
    end["ts"] = MAX_TIMESTAMP
    result = process_records([(codec.dumps([event, end]), Origin("t", 0, 0))], lambda _: None, 1 << 20)
    assert result.dead_letters == []
    store = Store(tmp_path / "h.duckdb")
    store.write(result.sink)
    assert scalar(store.path, "SELECT total_tokens FROM sessions") == 2 * MAX_COUNT
    assert scalar(store.path, "SELECT year(max(ts)) FROM api_calls") == 9999


def test_a_replayed_or_overlapping_batch_leaves_the_tables_as_one_write_would(tmp_path: Path) -> None:
    # A plain INSERT adds the rows; a write that meets a stored row is done
    # again with INSERT OR IGNORE. Session rows are replaced by key.
    events = list(generate_events(8, seed=5))
    half = len(events) // 2

    def folded(part: list[Event]) -> SinkBatch:
        dead_letter = (b"not json", Origin("t", 0, 99_999))  # the same each time
        return fold([*records_of(part), dead_letter])

    once = Store(tmp_path / "once.duckdb")
    once.write(folded(events))
    again = Store(tmp_path / "again.duckdb")
    again.write(folded(events[:half]))
    again.write(folded(events[:half]))  # after a crash the same records come again
    again.write(folded(events))  # half of it stored already; its sessions have moved on

    tables = [t.name for t in TABLES] + [a.name for a in AGGREGATES]
    for name in tables:
        columns = "* EXCLUDE (ts)" if name == "dead_letters" else "*"  # when it was folded
        sql = f"SELECT {columns} FROM {name} ORDER BY ALL"
        assert query(again.path, sql)[1] == query(once.path, sql)[1], name
    assert scalar(again.path, "SELECT count(*) FROM sessions") == 8
    assert scalar(again.path, "SELECT count(*) FROM dead_letters") == 1
