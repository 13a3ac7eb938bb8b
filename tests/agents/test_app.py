"""The worker's Faust app as create_app builds it (never started, no broker needed)."""

from __future__ import annotations

from pathlib import Path

from agents import app as worker_app
from hermes_stream.settings import Settings


async def test_the_worker_consumer_waits_at_most_50ms_for_new_records(tmp_path: Path) -> None:
    # The embedded broker answers a waiting fetch only when the wait is over:
    # Faust's 1500 ms made new records reach the worker up to 1.5 s late.
    app = worker_app.create_app(Settings(broker="127.0.0.1:1", db=tmp_path / "h.duckdb", data_dir=tmp_path))
    thread = app.consumer._thread  # type: ignore[attr-defined]
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == worker_app.FETCH_MAX_WAIT_MS == 50
    finally:
        await consumer.stop()
    thread_loop = thread.thread_loop
    if not thread_loop.is_closed():
        thread_loop.close()


async def test_table_writes_do_not_stall_records_before_thousands_are_queued(tmp_path: Path) -> None:
    app = worker_app.create_app(Settings(broker="127.0.0.1:1", db=tmp_path / "h.duckdb", data_dir=tmp_path))
    assert app.producer.buffer.max_messages == worker_app.CHANGELOG_BUFFER >= 10_000
