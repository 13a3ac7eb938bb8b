"""A thread-backed facade over :class:`EventProducer` for synchronous agents.

The event loop runs in a daemon thread. ``emit`` validates and encodes in the
caller's thread (so a bad event is reported at once) and hands the bytes to
the loop without waiting for it.

    with SyncEventProducer(Settings.from_env()) as producer:
        producer.emit({"type": "tool_result", "session_id": "sess_1", …})
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

from hermes_stream.events import Event
from hermes_stream.exceptions import InvalidEvent
from hermes_stream.producer import EventProducer, ProducerStats
from hermes_stream.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


class SyncEventProducer:
    """Same guarantees as :class:`EventProducer`, callable from any thread."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        factory: Callable[[], EventProducer] | None = None,
    ) -> None:
        if factory is None:
            if settings is None:
                settings = Settings.from_env()
            factory = functools.partial(EventProducer.from_settings, settings)
        self._factory: Callable[[], EventProducer] = factory
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="hermes-stream-producer", daemon=True
        )
        self._producer: EventProducer | None = None
        self._rejected = 0

    def start(self) -> SyncEventProducer:
        self._thread.start()
        try:
            self._producer = self._call(self._start())
        except BaseException:
            self.close()  # a failed start must not leave the thread and loop behind
            raise
        return self

    async def _start(self) -> EventProducer:
        producer = self._factory()
        await producer.start()
        return producer

    def emit(self, event: Event) -> bool:
        """Queue *event*; False (and a logged reason) if invalid. Never blocks on the broker."""
        producer = self._started()
        try:
            session_id, data = producer.encode(event)  # the factory's limit and capture
        except (InvalidEvent, ValueError) as exc:
            self._rejected += 1
            log.warning("rejected event: %s", exc)
            return False
        self._loop.call_soon_threadsafe(producer.enqueue, session_id, data)
        return True

    @property
    def stats(self) -> ProducerStats:
        stats = self._started().stats
        return ProducerStats(stats.emitted, stats.sent, stats.spooled, stats.rejected + self._rejected)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything emitted so far is delivered; False on timeout."""
        return self._call(self._started().flush(timeout))

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued within *timeout*, spool the rest, stop the thread. Idempotent."""
        if self._loop.is_closed():
            return
        if self._producer is not None:
            self._call(self._producer.close(timeout))
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _started(self) -> EventProducer:
        if self._producer is None:
            raise RuntimeError("call start() first, or use the producer as a context manager")
        return self._producer

    def __enter__(self) -> SyncEventProducer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
