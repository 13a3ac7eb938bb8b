"""One self-contained HTML page of charts over the DuckDB store (``hermes-stream report html``).

The page opens with no network: plotly.js is inlined once, with the first
chart, and every other chart reuses it. The data comes from one short
read-only connection (:func:`hermes_stream.store.reader`), closed before any
HTML is built, so a running worker waits for the report as briefly as for
any other query. Days are UTC: the tables store UTC timestamps.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from html import escape
from pathlib import Path
from typing import Any

import duckdb
import plotly.graph_objects as go

from hermes_stream.exceptions import ConfigError, StoreError
from hermes_stream.store import reader

Row = tuple[Any, ...]

#: The page's section titles, in order.
SECTIONS = (
    "Cost and tokens per day",
    "Cost by model",
    "Errors by category per day",
    "Session categories",
    "Slowest sessions",
    "Most expensive sessions",
)

#: Rows in each of the session tables.
TOP_SESSIONS = 10

_SESSION_COLUMNS = """session_id, model, coalesce(category, 'active'), started_at,
    wall_time_seconds, total_tokens, estimated_cost_usd, cost_status"""

#: One query per field of :class:`ReportData`, run in this order on one connection.
QUERIES = {
    "totals": """
        SELECT count(*), (SELECT count(*) FROM api_calls), coalesce(sum(total_tokens), 0),
               sum(estimated_cost_usd),
               count(*) FILTER (WHERE cost_status = 'reported'),
               count(*) FILTER (WHERE cost_status = 'estimated'),
               count(*) FILTER (WHERE cost_status = 'unknown')
        FROM sessions
    """,
    "daily": """
        SELECT date, total_cost_usd, total_tokens FROM daily_stats WHERE date IS NOT NULL ORDER BY date
    """,
    "models": """
        SELECT provider, model, sum(cost_usd) AS cost_usd, sum(calls) AS calls
        FROM model_stats_daily GROUP BY ALL HAVING sum(cost_usd) IS NOT NULL
        ORDER BY cost_usd DESC, provider, model
    """,
    # A model is not priced when the price table says so, or when none of its
    # calls has a cost at all (no price row and nothing reported).
    "unpriced": """
        SELECT provider, model FROM model_prices WHERE NOT priced
        UNION
        SELECT provider, model FROM model_stats_daily GROUP BY ALL HAVING sum(cost_usd) IS NULL
        ORDER BY ALL
    """,
    "errors": """
        SELECT CAST(ts AS DATE) AS day, coalesce(category, 'unknown') AS category, count(*)
        FROM errors WHERE ts IS NOT NULL GROUP BY ALL ORDER BY ALL
    """,
    "categories": """
        SELECT coalesce(category, 'active') AS category, count(*) AS n
        FROM sessions GROUP BY ALL ORDER BY n DESC, category
    """,
    "slowest": f"""
        SELECT {_SESSION_COLUMNS} FROM sessions WHERE wall_time_seconds IS NOT NULL
        ORDER BY wall_time_seconds DESC, session_id LIMIT {TOP_SESSIONS}
    """,
    "expensive": f"""
        SELECT {_SESSION_COLUMNS} FROM sessions WHERE estimated_cost_usd IS NOT NULL
        ORDER BY estimated_cost_usd DESC, session_id LIMIT {TOP_SESSIONS}
    """,
}


@dataclass(frozen=True)
class ReportData:
    """The rows each section is drawn from (see :data:`QUERIES`)."""

    totals: list[Row]
    daily: list[Row]
    models: list[Row]
    unpriced: list[Row]
    errors: list[Row]
    categories: list[Row]
    slowest: list[Row]
    expensive: list[Row]


@dataclass(frozen=True)
class ReportSummary:
    """What :func:`write_html_report` wrote."""

    out: Path
    size_bytes: int
    sessions: int
    #: Sections drawn as a chart (the others had no data).
    charts: int


def write_html_report(db: Path, out: Path, lock_timeout: float = 30.0) -> ReportSummary:
    """Write the HTML report of the DuckDB file *db* to *out*, replacing it whole."""
    data = read_report_data(db, lock_timeout)
    page, charts = render_html(data, db, dt.datetime.now(dt.UTC))
    encoded = page.encode()
    _write_atomically(out, encoded)
    return ReportSummary(out=out, size_bytes=len(encoded), sessions=data.totals[0][0], charts=charts)


def read_report_data(db: Path, lock_timeout: float = 30.0) -> ReportData:
    """Run :data:`QUERIES` on one read-only connection to *db*."""
    with reader(db, lock_timeout) as con:
        try:
            rows = {f.name: con.execute(QUERIES[f.name]).fetchall() for f in fields(ReportData)}
        except duckdb.Error as exc:
            raise StoreError(f"reading the report data from {db} failed: {exc}") from exc
    return ReportData(**rows)


def _write_atomically(out: Path, data: bytes) -> None:
    # A browser reloading the page never sees half a file.
    partial = out.with_name(f".{out.name}.partial")
    try:
        partial.write_bytes(data)
        os.replace(partial, out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ConfigError(f"cannot write the report to {out}: {exc.strerror or exc}") from exc


class _Charts:
    """Renders figures as HTML fragments; plotly.js goes inline with the first only."""

    CONFIG = {"displaylogo": False, "responsive": True}

    def __init__(self) -> None:
        self.count = 0

    def html(self, figure: go.Figure) -> str:
        self.count += 1
        figure.update_layout(template="plotly_white", height=380, margin={"t": 30, "b": 40, "l": 60, "r": 60})
        figure.update_layout(legend={"orientation": "h", "y": 1.12, "x": 0})
        fragment: str = figure.to_html(full_html=False, include_plotlyjs=self.count == 1, config=self.CONFIG)
        return fragment


def render_html(data: ReportData, db: Path, generated_at: dt.datetime) -> tuple[str, int]:
    """The page for *data* and how many charts it draws."""
    charts = _Charts()
    builders: Sequence[Callable[[], str]] = (
        lambda: _daily_section(data.daily, charts),
        lambda: _models_section(data.models, data.unpriced, charts),
        lambda: _errors_section(data.errors, charts),
        lambda: _categories_section(data.categories, charts),
        lambda: _sessions_table(data.slowest),
        lambda: _sessions_table(data.expensive),
    )
    sections = "\n".join(
        f"<section><h2>{escape(title)}</h2>\n{build()}</section>"
        for title, build in zip(SECTIONS, builders, strict=True)
    )
    return _PAGE.format(header=_header(data.totals[0], db, generated_at), sections=sections), charts.count


def _header(totals: Row, db: Path, generated_at: dt.datetime) -> str:
    sessions, api_calls, tokens, cost, reported, estimated, unknown = totals
    figures = (
        ("Sessions", f"{sessions:,}"),
        ("API calls", f"{api_calls:,}"),
        ("Tokens", f"{tokens:,}"),
        ("Cost", _money(cost)),
    )
    cards = "".join(f'<div class="card"><b>{value}</b><span>{name}</span></div>' for name, value in figures)
    note = (
        f"Session cost: {reported:,} reported by the producer, {estimated:,} estimated from model "
        f"prices, {unknown:,} unknown (a call to an unpriced model: their cost is missing or a lower bound)."
    )
    when = generated_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f'<h1>hermes-stream report</h1>\n<p class="meta">Generated {escape(when)} from '
        f"<code>{escape(str(db))}</code>; days are UTC.</p>\n"
        f'<div class="cards">{cards}</div>\n<p class="note">{escape(note)}</p>'
    )


def _no_data(what: str) -> str:
    return f'<p class="no-data">No data: {escape(what)}.</p>\n'


def _daily_section(rows: list[Row], charts: _Charts) -> str:
    if not rows:
        return _no_data("no sessions yet")
    days = [day.isoformat() for day, _, _ in rows]
    figure = go.Figure()
    costs, tokens = [cost for _, cost, _ in rows], [total for _, _, total in rows]
    figure.add_trace(go.Bar(x=days, y=costs, name="cost (USD)", hovertemplate="$%{y:,.2f}"))
    figure.add_trace(
        go.Scatter(x=days, y=tokens, name="tokens", mode="lines+markers", yaxis="y2", hovertemplate="%{y:,}")
    )
    figure.update_layout(
        xaxis={"type": "category", "title": "day (UTC)"},
        yaxis={"title": "cost (USD)", "tickprefix": "$", "rangemode": "tozero"},
        yaxis2={
            "title": "tokens",
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
        },
    )
    return charts.html(figure)


def _models_section(rows: list[Row], unpriced: list[Row], charts: _Charts) -> str:
    body = _no_data("no API call has a cost") if not rows else charts.html(_models_figure(rows))
    if unpriced:
        names = ", ".join(f"<code>{escape(f'{provider}/{model}')}</code>" for provider, model in unpriced)
        body += f'<p class="not-priced">Not priced (their cost is left out): {names}</p>\n'
    return body


def _models_figure(rows: list[Row]) -> go.Figure:
    ranked = rows[::-1]  # a horizontal bar chart draws its first bar at the bottom
    figure = go.Figure(
        go.Bar(
            x=[cost for _, _, cost, _ in ranked],
            y=[f"{provider}/{model}" for provider, model, _, _ in ranked],
            customdata=[calls for *_, calls in ranked],
            hovertemplate="%{y}: $%{x:,.4f} over %{customdata:,} calls<extra></extra>",
            orientation="h",
        )
    )
    figure.update_layout(xaxis={"title": "cost (USD)", "tickprefix": "$"}, yaxis={"automargin": True})
    figure.update_layout(height=max(240, 40 + 28 * len(rows)))
    return figure


_ERROR_COLOURS = {"retryable": "#f0a030", "permanent": "#d62728", "unknown": "#8c8c8c"}


def _errors_section(rows: list[Row], charts: _Charts) -> str:
    if not rows:
        return _no_data("no errors recorded")
    days = sorted({day for day, _, _ in rows})
    counts = {(day, category): n for day, category, n in rows}
    found = {category for _, category, _ in rows}
    categories = [c for c in _ERROR_COLOURS if c in found] + sorted(found - _ERROR_COLOURS.keys())
    figure = go.Figure()
    for category in categories:
        figure.add_trace(
            go.Bar(
                x=[day.isoformat() for day in days],
                y=[counts.get((day, category), 0) for day in days],
                name=category,
                marker_color=_ERROR_COLOURS.get(category),
            )
        )
    # Stacked bars list their legend bottom-up by default; keep it in category order.
    figure.update_layout(barmode="stack", legend_traceorder="normal", yaxis_title="errors")
    figure.update_layout(xaxis={"type": "category", "title": "day (UTC)"})
    return charts.html(figure)


def _categories_section(rows: list[Row], charts: _Charts) -> str:
    if not rows:
        return _no_data("no sessions yet")
    figure = go.Figure(
        go.Bar(x=[category for category, _ in rows], y=[n for _, n in rows], text=[n for _, n in rows])
    )
    figure.update_layout(yaxis_title="sessions", xaxis_title="category (active: not ended yet)")
    return charts.html(figure)


#: The session tables' columns; True for numbers (right-aligned).
_TABLE_HEAD = (
    ("session", False),
    ("model", False),
    ("category", False),
    ("started (UTC)", False),
    ("wall time", True),
    ("tokens", True),
    ("cost", True),
    ("cost status", False),
)


def _sessions_table(rows: list[Row]) -> str:
    if not rows:
        return _no_data("no sessions yet")
    head = "".join(_cell("th", escape(name), numeric) for name, numeric in _TABLE_HEAD)
    body = "".join(_session_row(row) for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n"


def _session_row(row: Row) -> str:
    session_id, model, category, started_at, wall_time, tokens, cost, cost_status = row
    values = (
        f"<code>{escape(str(session_id))}</code>",
        _text(model),
        _text(category),
        _text(started_at.strftime("%Y-%m-%d %H:%M:%S") if started_at else None),
        _duration(wall_time),
        _text(f"{tokens:,}" if tokens is not None else None),
        _money(cost),
        _text(cost_status),
    )
    cells = (_cell("td", value, numeric) for value, (_, numeric) in zip(values, _TABLE_HEAD, strict=True))
    return f"<tr>{''.join(cells)}</tr>\n"


def _cell(tag: str, html: str, numeric: bool) -> str:
    return f'<{tag} class="num">{html}</{tag}>' if numeric else f"<{tag}>{html}</{tag}>"


def _text(value: object) -> str:
    return "–" if value is None else escape(str(value))


def _money(value: float | None) -> str:
    if value is None:
        return "–"
    return f"${value:,.2f}" if value >= 1 else f"${value:,.4f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hermes-stream report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem;
       color: #1f2933; }}
h1 {{ margin-bottom: 0.2rem; }}
h2 {{ border-bottom: 1px solid #d9dee3; padding-bottom: 0.3rem; margin-top: 2.5rem; }}
.meta, .note, .not-priced {{ color: #52606d; }}
.cards {{ display: flex; gap: 1rem; flex-wrap: wrap; margin: 1rem 0; }}
.card {{ border: 1px solid #d9dee3; border-radius: 6px; padding: 0.8rem 1.2rem; min-width: 10rem; }}
.card b {{ display: block; font-size: 1.6rem; }}
.card span {{ color: #52606d; }}
.no-data {{ color: #7b8794; font-style: italic; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.9rem; }}
th, td {{ text-align: left; padding: 0.35rem 0.6rem; border-bottom: 1px solid #e4e7eb; }}
th {{ background: #f5f7fa; }}
.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
</style>
</head>
<body>
{header}
{sections}
</body>
</html>
"""
