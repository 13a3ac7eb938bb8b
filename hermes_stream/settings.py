"""Settings: one frozen object, read from the environment only when asked.

Every variable starts with ``HERMES_STREAM_``; each field's docstring names
its variable. The README's configuration table lists the same.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from hermes_stream.exceptions import ConfigError

PREFIX = "HERMES_STREAM_"


@dataclass(frozen=True)
class Settings:
    """Everything a hermes-stream process can be told from outside."""

    broker: str | None = None
    """``HERMES_STREAM_BROKER``: Kafka bootstrap servers (``host:port,…``); unset = embedded broker."""

    db: Path = Path("hermes.duckdb")
    """``HERMES_STREAM_DB``: the DuckDB file the sink writes and analysts read."""

    topic_prefix: str = "hermes"
    """``HERMES_STREAM_TOPIC_PREFIX``: prefix of every topic name."""

    partitions: int = 8
    """``HERMES_STREAM_PARTITIONS``: partitions of the topics hermes-stream creates."""

    app_id: str = "hermes-stream"
    """``HERMES_STREAM_APP_ID``: the worker's consumer group and table namespace."""

    data_dir: Path = Path(".hermes-stream")
    """``HERMES_STREAM_DATA_DIR``: the worker's local state directory."""

    spool_dir: Path = Path(".hermes-stream/spool")
    """``HERMES_STREAM_SPOOL_DIR``: where producers keep events while the broker is away."""

    linger_ms: float = 20.0
    """``HERMES_STREAM_LINGER_MS``: how long a producer waits to fill a batch record."""

    queue_size: int = 20_000
    """``HERMES_STREAM_QUEUE_SIZE``: events a producer holds in memory before spooling."""

    max_record_bytes: int = 1_048_576
    """``HERMES_STREAM_MAX_RECORD_BYTES``: largest Kafka record accepted (and built)."""

    sink_batch: int = 10_000
    """``HERMES_STREAM_SINK_BATCH``: most Kafka records the worker writes in one DuckDB flush."""

    sink_interval: float = 0.2
    """``HERMES_STREAM_SINK_INTERVAL``: longest wait, in seconds, before a partial batch is flushed."""

    lock_timeout: float = 30.0
    """``HERMES_STREAM_LOCK_TIMEOUT``: seconds to retry while another process holds the DuckDB file."""

    log_level: str = "WARNING"
    """``HERMES_STREAM_LOG_LEVEL``: DEBUG, INFO, WARNING or ERROR."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from *environ* (``os.environ`` when omitted)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _parse(f.name, f.type, raw.strip())
        return cls(**values).checked()

    def checked(self) -> Settings:
        """Return self, or raise :class:`ConfigError` naming the bad setting."""
        positive = ("partitions", "queue_size", "max_record_bytes", "sink_batch")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{PREFIX}{name.upper()} must be at least 1")
        for name in ("linger_ms", "sink_interval", "lock_timeout"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{PREFIX}{name.upper()} must not be negative")
        if not self.topic_prefix:
            raise ConfigError(f"{PREFIX}TOPIC_PREFIX must not be empty")
        return self

    def to_env(self) -> dict[str, str]:
        """The environment variables that rebuild these settings in a child process."""
        return {
            PREFIX + f.name.upper(): str(getattr(self, f.name))
            for f in fields(self)
            if getattr(self, f.name) is not None
        }

    def with_(self, **changes: Any) -> Settings:
        """A copy with *changes* applied and checked."""
        return replace(self, **changes).checked()


def _parse(name: str, type_: object, raw: str) -> Any:
    var = PREFIX + name.upper()
    kind = str(type_)
    try:
        if "int" in kind:
            return int(raw)
        if "float" in kind:
            return float(raw)
    except ValueError:
        raise ConfigError(f"{var}={raw!r} is not a number") from None
    if "Path" in kind:
        return Path(raw).expanduser()
    return raw
