"""Rendering query results as a table, JSON or CSV (the ``--format`` option)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

from tabulate import tabulate

from hermes_stream import codec

Format = Literal["table", "json", "csv"]
FORMATS: tuple[Format, ...] = ("table", "json", "csv")


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: Format) -> str:
    if fmt == "json":
        return codec.dumps([dict(zip(columns, map(_plain, row), strict=False)) for row in rows]).decode()
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_plain(v) for v in row] for row in rows])
        return buffer.getvalue().rstrip("\n")
    if not rows:
        return "(no rows)"
    return tabulate([[_cell(v) for v in row] for row in rows], headers=list(columns), tablefmt="simple")


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 100 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return _plain(value)
