"""hermes-stream: event-sourced telemetry for LLM agents.

Producers ``emit()`` typed events through :class:`EventProducer` (asyncio) or
:class:`SyncEventProducer` (threads); the worker turns them into DuckDB tables.
"""

from hermes_stream.classify import ErrorClassification, classify_error
from hermes_stream.events import make_event, validate_event
from hermes_stream.exceptions import HermesStreamError, InvalidEvent
from hermes_stream.producer import EventProducer
from hermes_stream.redact import redact
from hermes_stream.retry import execute_with_retry, execute_with_retry_async
from hermes_stream.settings import Settings
from hermes_stream.skill_averages import skill_ema
from hermes_stream.sync_producer import SyncEventProducer

__all__ = [
    "ErrorClassification",
    "EventProducer",
    "HermesStreamError",
    "InvalidEvent",
    "Settings",
    "SyncEventProducer",
    "classify_error",
    "execute_with_retry",
    "execute_with_retry_async",
    "make_event",
    "redact",
    "skill_ema",
    "validate_event",
]
