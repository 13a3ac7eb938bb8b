"""Options and helpers the CLI's command modules share."""

from __future__ import annotations

from pathlib import Path

import click

from hermes_stream.formats import FORMATS
from hermes_stream.settings import Settings

FORMAT_OPTION = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True, help="Output format."
)
DB_OPTION = click.option(
    "--db",
    type=click.Path(path_type=Path),
    default=None,
    help="DuckDB file [default: $HERMES_STREAM_DB or ./hermes.duckdb].",
)


def settings_from_context() -> Settings:
    """The settings the ``hermes-stream`` group read from the environment."""
    settings: Settings = click.get_current_context().find_root().obj
    return settings
