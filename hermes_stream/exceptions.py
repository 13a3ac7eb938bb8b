"""The exceptions hermes-stream raises.

    HermesStreamError
    ├── ConfigError          bad setting in the environment or on the command line
    ├── InvalidEvent         an event that breaks the contract (field + reason)
    ├── JSONError            bytes that are not JSON, or a value JSON cannot hold
    ├── BrokerUnavailable    the Kafka broker cannot be reached or refused a send
    ├── EmbeddedBrokerError  the embedded broker could not start
    ├── ModelContextError    a model's context window is too small for cron jobs
    └── StoreError           the DuckDB store failed
        └── StoreBusy        the DuckDB file stayed locked by another process

Errors from aiokafka, duckdb, orjson and msgspec are translated at the boundary with
``raise … from exc`` so callers only ever catch these.
"""

from __future__ import annotations


class HermesStreamError(Exception):
    """Base class of every error hermes-stream raises on purpose."""


class ConfigError(HermesStreamError):
    """A setting is missing or malformed."""


class InvalidEvent(HermesStreamError, ValueError):
    """An event breaks the contract; ``field`` names where, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class JSONError(HermesStreamError, ValueError):
    """Bytes that are not JSON, or a value that cannot be encoded as JSON."""


class BrokerUnavailable(HermesStreamError):
    """The Kafka broker cannot be reached, or it refused a send."""


class EmbeddedBrokerError(HermesStreamError):
    """The embedded broker could not be started."""


class ModelContextError(HermesStreamError):
    """A model's context window is below the minimum a cron job needs."""

    def __init__(self, model: str, context_window: int, minimum: int) -> None:
        super().__init__(
            f"model {model!r} has a context window of {context_window:,} tokens; cron jobs need at "
            f"least {minimum:,}. Choose a model with a larger window, or configure the model's "
            "context length (passed as override=) to skip this check."
        )
        self.model = model
        self.context_window = context_window
        self.minimum = minimum


class StoreError(HermesStreamError):
    """The DuckDB store failed."""


class StoreBusy(StoreError):
    """The DuckDB file stayed locked by another process past the retry deadline."""
