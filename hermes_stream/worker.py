"""Running the worker: in this process (``hermes-stream worker``) or as a child process.

:class:`WorkerProcess` is how the demo, the benchmark and the integration
tests run a real worker beside them: a separate process, configured only
through ``HERMES_STREAM_*`` variables, stopped with SIGTERM like in production.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hermes_stream import codec
from hermes_stream.broker import broker_for, free_port
from hermes_stream.exceptions import HermesStreamError
from hermes_stream.settings import Settings
from hermes_stream.store import Store, query
from hermes_stream.topics import Topics, ensure_topics_sync


def prepare(settings: Settings) -> None:
    """Create the topics and the DuckDB tables if they are missing."""
    assert settings.broker, "prepare() needs a broker"
    ensure_topics_sync(settings.broker, Topics(settings.topic_prefix).all(), settings.partitions)
    Store(settings.db, settings.lock_timeout).ensure_schema()


#: The worker allocates several objects per event, and with Python's default
#: threshold (700) the cyclic garbage collector ran thousands of times a
#: second: ~0.65 s of CPU in one ``hermes-stream bench`` run, ~0.07 s with this.
GC_THRESHOLD = (50_000, 10, 10)


def run_worker(settings: Settings) -> None:
    """Run the Faust worker in the foreground until SIGTERM or Ctrl-C."""
    from faust.worker import Worker

    from hermes_stream.agents_loader import create_app

    prepare(settings)
    app = create_app(settings)
    worker = Worker(app, loglevel=settings.log_level, quiet=True)
    # Faust's startup spinner lowers the root logger to DEBUG so that it can
    # spin on every record: aiokafka would then build a log record for every
    # message it sends, a large share of the worker's time.
    worker.spinner = None
    gc.freeze()  # what startup made (modules, the app) lives as long as the process
    gc.set_threshold(*GC_THRESHOLD)
    worker.execute_from_commandline()


class WorkerProcess:
    """A ``hermes-stream worker`` child process."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        env = {**os.environ, **self.settings.to_env()}
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "hermes_stream", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self._process is not None, "start() first"
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no shutdown, no offset commit (what a crash looks like)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait for a clean shutdown; SIGKILL after *timeout*."""
        process = self._process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return process.returncode


@contextlib.contextmanager
def local_pipeline(settings: Settings, workdir: Path) -> Iterator[tuple[Settings, WorkerProcess]]:
    """A broker (the configured one, or embedded) and one worker process, stopped on exit."""
    with broker_for(settings) as live:
        live = live.with_(web_port=free_port())  # beside a worker that may already use the default
        prepare(live)
        worker = WorkerProcess(live, workdir / "worker.log").start()
        try:
            yield live, worker
        finally:
            worker.stop()


def count_rows(settings: Settings, sql: str) -> int:
    """One number from the DuckDB file (0 while the file does not exist yet)."""
    if not settings.db.exists():
        return 0
    _, rows = query(settings.db, sql, settings.lock_timeout)
    return int(rows[0][0] or 0)


def sink_counters(settings: Settings) -> dict[str, Any]:
    """The worker's sink counters, from its web server (``GET /stats``)."""
    url = f"http://{settings.web_host}:{settings.web_port}/stats"
    with urllib.request.urlopen(url, timeout=5) as response:
        counters: dict[str, Any] = codec.loads(response.read())
    return counters


def wait_until(
    done: Callable[[], bool], timeout: float, worker: WorkerProcess, interval: float = 0.25
) -> None:
    """Poll *done* until it is true; fail clearly if the worker died or time ran out."""
    deadline = time.monotonic() + timeout
    while not done():
        if not worker.running:
            raise HermesStreamError(
                f"the worker exited; last lines of {worker.log_path}:\n{worker.log_tail()}"
            )
        if time.monotonic() > deadline:
            raise HermesStreamError(f"timed out after {timeout:.0f}s; worker log: {worker.log_path}")
        time.sleep(interval)
