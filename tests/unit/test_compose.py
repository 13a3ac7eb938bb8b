"""docker-compose.yml cannot run here (no Docker engine); check it against the real CLI."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import yaml

from hermes_stream.cli import cli
from hermes_stream.settings import PREFIX, Settings

COMPOSE = Path(__file__).parents[2] / "docker-compose.yml"


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_kafka_runs_in_kraft_mode_without_zookeeper() -> None:
    services = compose()["services"]
    assert "zookeeper" not in services
    kafka = services["kafka"]["environment"]
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"] and "broker" in kafka["KAFKA_PROCESS_ROLES"]
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # the topics service creates them


def test_service_commands_are_real_cli_commands() -> None:
    services = compose()["services"]
    for name in ("topics", "worker"):
        command = services[name]["command"]
        assert command[0] == "hermes-stream"
        group = cli
        for word in command[1:]:
            group = group.commands[word]  # KeyError: the compose file names a command that does not exist
    assert services["worker"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_environment_uses_only_documented_settings() -> None:
    known = {PREFIX + f.name.upper() for f in fields(Settings)}
    for name in ("topics", "worker"):
        env = compose()["services"][name]["environment"]
        assert set(env) <= known
        assert env["HERMES_STREAM_BROKER"] == "kafka:9092"
        Settings.from_env({k: str(v) for k, v in env.items()})  # parses without error
