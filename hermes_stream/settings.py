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

from hermes_stream.alerts import RULES, AlertConfig
from hermes_stream.exceptions import ConfigError
from hermes_stream.skill_trend import TrendConfig

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

    sink_interval: float = 1.0
    """``HERMES_STREAM_SINK_INTERVAL``: longest time, in seconds, folded records wait for the writer
    while more keep coming (a pause of 50 ms in the input hands them over sooner, at most every 0.5 s)."""

    web_host: str = "127.0.0.1"
    """``HERMES_STREAM_WEB_HOST``: the worker's web server address; other workers reach it there."""

    web_port: int = 6066
    """``HERMES_STREAM_WEB_PORT``: the worker's web server port (``GET /sessions/{id}``)."""

    session_idle_timeout: float = 1800.0
    """``HERMES_STREAM_SESSION_IDLE_TIMEOUT``: seconds without events before a session ends (idle_timeout)."""

    lock_timeout: float = 30.0
    """``HERMES_STREAM_LOCK_TIMEOUT``: seconds to retry while another process holds the DuckDB file."""

    alert_rules: str = "permanent_failure,error_rate,context_window,session_budget,skill_regression"
    """``HERMES_STREAM_ALERT_RULES``: the alert rules that are on, comma-separated (``none``: no alerts)."""

    alert_dedupe_seconds: float = 900.0
    """``HERMES_STREAM_ALERT_DEDUPE_SECONDS``: an alert on the same subject is not repeated within this."""

    alert_window_seconds: float = 300.0
    """``HERMES_STREAM_ALERT_WINDOW_SECONDS``: the tumbling window of the error-rate rule."""

    alert_error_rate: float = 0.5
    """``HERMES_STREAM_ALERT_ERROR_RATE``: share of failed API calls in a window that alerts."""

    alert_min_calls: int = 20
    """``HERMES_STREAM_ALERT_MIN_CALLS``: API calls a window needs before its error rate counts."""

    alert_context_min_tokens: int = 64_000
    """``HERMES_STREAM_ALERT_CONTEXT_MIN_TOKENS``: smallest context window fit for cron sessions."""

    alert_context_fill: float = 0.9
    """``HERMES_STREAM_ALERT_CONTEXT_FILL``: share of the context window a cron call may fill."""

    session_budget_usd: float = 10.0
    """``HERMES_STREAM_SESSION_BUDGET_USD``: a session costing more raises an alert (0: never)."""

    skill_half_life_days: float = 5.0
    """``HERMES_STREAM_SKILL_HALF_LIFE_DAYS``: half-life of the live skill averages, in event time."""

    skill_success_floor: float = 0.5
    """``HERMES_STREAM_SKILL_SUCCESS_FLOOR``: a live success rate below this raises skill_regression."""

    skill_drop_points: float = 20.0
    """``HERMES_STREAM_SKILL_DROP_POINTS``: so does one this many points below the 7-day level."""

    skill_min_samples: int = 10
    """``HERMES_STREAM_SKILL_MIN_SAMPLES``: invocations with an outcome needed before it does."""

    capture_content: bool = False
    """``HERMES_STREAM_CAPTURE_CONTENT``: producers keep tool calls' ``args`` and ``result`` (redacted)."""

    capture_max_chars: int = 2000
    """``HERMES_STREAM_CAPTURE_MAX_CHARS``: a captured ``result`` is cut to this many characters."""

    auto_templates: bool = False
    """``HERMES_STREAM_AUTO_TEMPLATES``: the worker captures each category's best session daily."""

    templates_per_category: int = 5
    """``HERMES_STREAM_TEMPLATES_PER_CATEGORY``: automatic templates kept per category, lowest scores go."""

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
        positive = (
            "partitions",
            "queue_size",
            "max_record_bytes",
            "web_port",
            "capture_max_chars",
            "templates_per_category",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{PREFIX}{name.upper()} must be at least 1")
        for name in ("linger_ms", "sink_interval", "lock_timeout"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{PREFIX}{name.upper()} must not be negative")
        if not self.topic_prefix:
            raise ConfigError(f"{PREFIX}TOPIC_PREFIX must not be empty")
        unknown = set(self.enabled_alert_rules) - set(RULES)
        if unknown:
            raise ConfigError(
                f"{PREFIX}ALERT_RULES names unknown rules {', '.join(sorted(unknown))}; "
                f"known: {', '.join(RULES)}"
            )
        for name in ("alert_error_rate", "alert_context_fill", "skill_success_floor"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"{PREFIX}{name.upper()} must be above 0 and at most 1")
        for name in (
            "alert_dedupe_seconds",
            "alert_window_seconds",
            "alert_min_calls",
            "session_idle_timeout",
            "skill_half_life_days",
            "skill_min_samples",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{PREFIX}{name.upper()} must be positive")
        for name in ("alert_context_min_tokens", "session_budget_usd"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{PREFIX}{name.upper()} must not be negative")
        return self

    @property
    def enabled_alert_rules(self) -> frozenset[str]:
        return frozenset(r.strip() for r in self.alert_rules.split(",") if r.strip() not in ("", "none"))

    def trend_config(self) -> TrendConfig:
        """The live skill averages and the skill_regression rule."""
        return TrendConfig(
            half_life_days=self.skill_half_life_days,
            floor=self.skill_success_floor,
            drop_points=self.skill_drop_points,
            min_samples=self.skill_min_samples,
            dedupe_seconds=self.alert_dedupe_seconds,
            enabled="skill_regression" in self.enabled_alert_rules,
        )

    def alert_config(self) -> AlertConfig:
        """The alert rules' thresholds."""
        return AlertConfig(
            rules=self.enabled_alert_rules,
            dedupe_seconds=self.alert_dedupe_seconds,
            window_seconds=self.alert_window_seconds,
            error_rate=self.alert_error_rate,
            min_calls=self.alert_min_calls,
            context_min_tokens=self.alert_context_min_tokens,
            context_fill=self.alert_context_fill,
            session_budget_usd=self.session_budget_usd,
        )

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
    if "bool" in kind:
        flag = raw.lower()
        if flag not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ConfigError(f"{var}={raw!r} is not true or false (1/0, true/false, yes/no, on/off)")
        return flag in ("1", "true", "yes", "on")
    return raw
