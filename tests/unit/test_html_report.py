"""The HTML report: one self-contained page drawn from a real DuckDB file."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import plotly.offline
import pytest

from hermes_stream.exceptions import ConfigError, StoreError
from hermes_stream.html_report import SECTIONS, write_html_report
from hermes_stream.store import Store, rebuild_model_aggregates

#: The banner at the top of the inlined plotly.js bundle.
PLOTLY_BANNER = f"plotly.js v{plotly.offline.get_plotlyjs_version()}"

SESSIONS = """
    INSERT INTO sessions (session_id, status, model, provider, started_at, wall_time_seconds,
                          total_tokens, estimated_cost_usd, cost_status, category) VALUES
    ('s-cheap', 'ended', 'gpt-4o', 'openai', '2026-01-01 10:00', 30.0, 1000, 0.01, 'reported', 'coding'),
    ('s-mid', 'ended', 'gpt-4o', 'openai', '2026-01-01 11:00', 900.0, 5000, 0.50, 'estimated', 'research'),
    ('s-top', 'ended', 'gpt-4o', 'openai', '2026-01-02 09:00', 60.0, 9000, 2.00, 'estimated', 'coding'),
    ('<script>x</script>', 'active', 'mystery', 'acme', '2026-01-02 12:00', 4000.0, 200, NULL, 'unknown',
     NULL)
"""
API_CALLS = """
    INSERT INTO api_calls (event_id, session_id, ts, model, provider, status, input_tokens, output_tokens,
                           cost_usd) VALUES
    ('e1', 's-top', '2026-01-02 09:01', 'gpt-4o', 'openai', 'ok', 8000, 1000, 2.00),
    ('e2', '<script>x</script>', '2026-01-02 12:01', 'mystery', 'acme', 'error', 100, 100, NULL)
"""
MODEL_PRICES = """
    INSERT INTO model_prices (price_key, provider, model, priced, input_mtok, output_mtok) VALUES
    ('openai/gpt-4o', 'openai', 'gpt-4o', true, 2.5, 10.0),
    ('acme/mystery', 'acme', 'mystery', false, NULL, NULL)
"""
ERRORS = """
    INSERT INTO errors (event_id, session_id, ts, kind, category) VALUES
    ('e2', '<script>x</script>', '2026-01-02 12:01', 'api', 'permanent'),
    ('t1', 's-mid', '2026-01-01 11:05', 'tool', 'retryable')
"""


def make_db(path: Path, *statements: str) -> Path:
    """A DuckDB file at *path* with the real schema and *statements* run on it."""
    Store(path).ensure_schema()
    with duckdb.connect(str(path)) as con:
        for statement in statements:
            con.execute(statement)
        rebuild_model_aggregates(con)  # the calls came around the sink, which keeps them
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The page of a small database, written once for the module (it holds 4 MB of plotly.js)."""
    tmp = tmp_path_factory.mktemp("report")
    db = make_db(tmp / "hermes.duckdb", SESSIONS, API_CALLS, MODEL_PRICES, ERRORS)
    summary = write_html_report(db, tmp / "report.html", lock_timeout=1.0)
    assert summary.out.stat().st_size == summary.size_bytes
    assert (summary.sessions, summary.charts) == (4, 4)
    return summary.out.read_text()


def test_every_section_is_there_with_plotly_inlined_once(report: str) -> None:
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in report
    assert report.count(PLOTLY_BANNER) == 1
    assert report.count("Plotly.newPlot(") == 4
    errors = report.split("<h2>Errors by category per day</h2>", 1)[1].split("</section>", 1)[0]
    assert errors.index('"name":"retryable"') < errors.index('"name":"permanent"')
    assert '"traceorder":"normal"' in errors
    assert "No data" not in report


def test_the_page_needs_no_network(report: str) -> None:
    assert not re.search(r"<script[^>]*\bsrc=", report, re.IGNORECASE)
    assert not re.search(r"<link[^>]*\bhref=[\"']?(https?:)?//", report, re.IGNORECASE)
    assert not re.search(r"<(img|iframe)[^>]*\bsrc=[\"']?(https?:)?//", report, re.IGNORECASE)


def test_the_header_sums_the_sessions(report: str) -> None:
    assert "<b>4</b><span>Sessions</span>" in report
    assert "<b>2</b><span>API calls</span>" in report
    assert "<b>15,200</b><span>Tokens</span>" in report
    assert "<b>$2.51</b><span>Cost</span>" in report
    assert "Session cost: 1 reported by the producer, 2 estimated from model prices, 1 unknown" in report


def _table_after(report: str, title: str) -> str:
    section = report.split(f"<h2>{title}</h2>", 1)[1]
    return section.split("</table>", 1)[0]


def _session_ids(table: str) -> list[str]:
    return re.findall(r"<tr><td><code>(.*?)</code>", table)


def test_session_tables_rank_sessions(report: str) -> None:
    assert _session_ids(_table_after(report, "Most expensive sessions")) == ["s-top", "s-mid", "s-cheap"]
    slowest = _table_after(report, "Slowest sessions")
    assert _session_ids(slowest) == ["&lt;script&gt;x&lt;/script&gt;", "s-mid", "s-top", "s-cheap"]
    assert "1 h 06 min" in slowest and "15 min 00 s" in slowest


def test_text_from_the_data_is_escaped(report: str) -> None:
    assert "<script>x</script>" not in report
    assert "&lt;script&gt;x&lt;/script&gt;" in report


def test_a_model_without_price_is_listed_as_not_priced(report: str) -> None:
    not_priced = re.search(r'<p class="not-priced">(.*?)</p>', report)
    assert not_priced is not None
    assert "acme/mystery" in not_priced.group(1)
    assert "openai/gpt-4o" not in not_priced.group(1)


def test_an_empty_database_shows_no_data_notes(tmp_path: Path) -> None:
    summary = write_html_report(make_db(tmp_path / "empty.duckdb"), tmp_path / "empty.html")
    page = summary.out.read_text()
    assert summary.charts == 0
    assert page.count('<p class="no-data">') == len(SECTIONS)
    assert PLOTLY_BANNER not in page  # no chart, no 4 MB of JavaScript
    assert "<b>$0" not in page and "<b>–</b><span>Cost</span>" in page


def test_a_missing_database_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no database"):
        write_html_report(tmp_path / "absent.duckdb", tmp_path / "report.html")


def test_an_unwritable_output_is_a_config_error(tmp_path: Path) -> None:
    db = make_db(tmp_path / "hermes.duckdb")
    with pytest.raises(ConfigError, match="cannot write the report"):
        write_html_report(db, tmp_path / "no-such-dir" / "report.html")


def test_report_html_writes_the_file_from_the_command_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hermes_stream.cli import cli

    db = tmp_path / "cli.duckdb"
    Store(db).ensure_schema()
    out = tmp_path / "out.html"
    result = CliRunner().invoke(cli, ["report", "html", "-o", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!DOCTYPE html>") and "wrote" in result.output
    refused = CliRunner().invoke(cli, ["report", "daily", "-o", str(out), "--db", str(db)])
    assert refused.exit_code == 2 and "applies to the html report only" in refused.output
