"""The ``hermes-stream`` command line.

Every command reads its configuration from ``HERMES_STREAM_*`` variables
(see the README); options given on the command line win. The project's own
errors end the command with one clear line on stderr and exit code 1;
tracebacks are for bugs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import sys
import time
from pathlib import Path
from typing import IO, Any, get_args

import click
from click.core import ParameterSource

from hermes_stream import codec
from hermes_stream.alerts import RULES
from hermes_stream.backfill import import_hermes_command
from hermes_stream.broker import EmbeddedBroker, broker_for
from hermes_stream.classify import Category
from hermes_stream.cli_options import DB_OPTION, FORMAT_OPTION
from hermes_stream.cli_options import settings_from_context as _settings
from hermes_stream.exceptions import ConfigError, HermesStreamError
from hermes_stream.formats import Format, render
from hermes_stream.ingest_server import serve_command
from hermes_stream.reports import (
    ERRORS_DAYS,
    OPTION_REPORTS,
    REPORT_NAMES,
    SESSION_ORDERS,
    SESSIONS_TOP,
    ReportName,
    ReportOptions,
    SessionOrder,
    parse_day,
    report_notes,
    report_sql,
)
from hermes_stream.settings import Settings
from hermes_stream.skill_averages import ALPHA, WINDOW_DAYS, SkillEma, check_alpha, skill_ema
from hermes_stream.store import Row, query, reader
from hermes_stream.template_commands import templates


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hermes-stream")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Event-sourced telemetry for LLM agents: Kafka in, Faust in the middle, DuckDB out.

    Without HERMES_STREAM_BROKER, commands that need Kafka start an embedded
    broker for as long as they run.
    """
    ctx.obj = Settings.from_env()


@cli.command()
@click.option("--port", type=int, default=9092, show_default=True, help="Port to listen on (loopback).")
def broker(port: int) -> None:
    """Run the embedded Kafka-compatible broker in the foreground (memory storage)."""
    from hermes_stream.topics import Topics, ensure_topics_sync

    settings = _settings()
    with EmbeddedBroker(port) as embedded:
        ensure_topics_sync(embedded.bootstrap, Topics(settings.topic_prefix).all(), settings.partitions)
        click.echo(f"broker listening on {embedded.bootstrap} (memory storage); Ctrl-C to stop", err=True)
        click.echo(f"  export HERMES_STREAM_BROKER={embedded.bootstrap}", err=True)
        try:
            embedded.wait()
        except KeyboardInterrupt:
            pass


@cli.group()
def topics() -> None:
    """Inspect or create hermes-stream's topics."""


@topics.command("create")
def topics_create() -> None:
    """Create the topics that are missing (idempotent), with HERMES_STREAM_PARTITIONS partitions."""
    from hermes_stream.topics import Topics, ensure_topics_sync

    with broker_for(_settings()) as settings:
        names = Topics(settings.topic_prefix).all()
        ensure_topics_sync(settings.broker or "", names, settings.partitions)
    for name in names:
        click.echo(name)


@cli.command()
def worker() -> None:
    """Run the stream worker: hermes.events → tables, DLQ and DuckDB, until Ctrl-C/SIGTERM."""
    from hermes_stream.worker import run_worker

    with broker_for(_settings()) as settings:
        if not _settings().broker:
            click.echo(f"no HERMES_STREAM_BROKER: embedded broker at {settings.broker}", err=True)
        click.echo(f"worker writing to {settings.db}", err=True)
        run_worker(settings)


@cli.command()
@click.argument("file", type=click.File("rb"), default="-")
def emit(file: IO[bytes]) -> None:
    """Publish JSONL events from FILE (or - for stdin) to hermes.events.

    Invalid lines are reported on stderr with their line number and reason,
    and the command exits 1; every valid line is still published.
    """
    from hermes_stream.publish import publish_lines

    with broker_for(_settings()) as settings:
        report = asyncio.run(publish_lines(settings, file, on_invalid=_report_invalid))
    click.echo(
        f"published {report.sent} events, {report.invalid} invalid lines, {report.spooled} spooled", err=True
    )
    if report.invalid:
        sys.exit(1)


def _report_invalid(line: int, reason: str) -> None:
    click.echo(f"line {line}: {reason}", err=True)


@cli.command()
@click.option(
    "--sessions", type=click.IntRange(min=0), default=100, show_default=True, help="Sessions to generate."
)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same events.")
@click.option(
    "--start", type=click.DateTime(), default=None, help="UTC start time [default: 2026-01-01T00:00:00]."
)
def generate(sessions: int, seed: int, start: Any) -> None:
    """Write a realistic, deterministic workload as JSONL to stdout."""
    from hermes_stream.generator import DEFAULT_START, generate_events

    begin = start.replace(tzinfo=dt.UTC).timestamp() if start else DEFAULT_START
    out = sys.stdout.buffer
    for event in generate_events(sessions, seed, begin):
        out.write(codec.dumps(event) + b"\n")
    out.flush()


@cli.command()
@click.argument("statement")
@FORMAT_OPTION
@DB_OPTION
def sql(statement: str, fmt: Format, db: Path | None) -> None:
    """Run one SQL STATEMENT against the DuckDB file, read-only (safe while the worker runs)."""
    settings = _settings()
    columns, rows = query(db or settings.db, statement, settings.lock_timeout)
    click.echo(render(columns, rows, fmt))


def _report_day(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    try:
        return None if value is None else parse_day(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), ctx, param) from exc


def _report_alpha(ctx: click.Context, param: click.Parameter, value: float) -> float:
    try:
        return check_alpha(value)  # click's FloatRange lets NaN through
    except ConfigError as exc:
        raise click.BadParameter(str(exc), ctx, param) from exc


@cli.command()
@click.argument("name", type=click.Choice(REPORT_NAMES))
@click.option(
    "--date",
    metavar="YYYY-MM-DD",
    callback=_report_day,
    default=None,
    help="daily only: just this UTC day [default: every day].",
)
@click.option(
    "--top",
    metavar="N",
    type=click.IntRange(min=1),
    default=SESSIONS_TOP,
    show_default=True,
    help="sessions only: how many sessions to list.",
)
@click.option(
    "--by",
    type=click.Choice(SESSION_ORDERS),
    default="cost",
    show_default=True,
    help="sessions only: rank by estimated cost, total tokens, API + tool errors or wall time.",
)
@click.option(
    "--days",
    metavar="N",
    type=click.IntRange(min=1),
    default=ERRORS_DAYS,
    show_default=True,
    help="errors only: the last N days, by the error's time (UTC).",
)
@click.option(
    "--window-days",
    metavar="N",
    type=click.IntRange(min=1),
    default=WINDOW_DAYS,
    show_default=True,
    help="skills only: the last N UTC calendar days, today included.",
)
@click.option(
    "--alpha",
    metavar="A",
    type=float,
    callback=_report_alpha,
    default=ALPHA,
    show_default=True,
    help="skills only: smoothing, 0 < A < 1; a day N days old weighs (1 - A)^N.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="html only: the HTML file to write [default: hermes-report.html].",
)
@FORMAT_OPTION
@DB_OPTION
@click.pass_context
def report(
    ctx: click.Context,
    name: ReportName,
    date: dt.date | None,
    top: int,
    by: SessionOrder,
    days: int,
    window_days: int,
    alpha: float,
    output: Path | None,
    fmt: Format,
    db: Path | None,
) -> None:
    """Print a canned report: daily, sessions, models, summary, errors or skills; or write html.

    \b
    daily     one row per UTC day sessions started on (--date: only that day)
    sessions  the --top sessions by --by, highest first, unknown values last
    models    per provider/model: calls, errors, tokens, cost, p50 latency and
              price; models without a price are listed (priced false, price
              unknown) and their cost counts only the calls that reported one
    summary   totals over the whole store
    errors    failed calls of the last --days days by category, reason, kind
              (api or tool), provider and model (tool name for tool calls), with
              their count, share of those errors, distinct sessions and last time
              seen; older data (such as the 2026-01-01 workload of `generate`)
              needs a larger --days
    skills    per skill and model over the days with runs in the last
              --window-days UTC days, today included: runs, successes,
              failures, and moving averages of the daily success rate
              (unknown outcomes count as not successful), duration and cost
              per call, a day N days old weighing (1 - alpha)^N and a day
              without a value skipped; most recently run first
    html      one self-contained HTML file (-o, opens without a network):
              cost and tokens per day, cost by model, error categories over
              time, session categories, the slowest and most expensive sessions
    """
    _refuse_other_reports_options(ctx, name)
    settings = _settings()
    if name == "html":
        from hermes_stream.html_report import write_html_report

        out = output or Path("hermes-report.html")
        summary = write_html_report(db or settings.db, out, settings.lock_timeout)
        click.echo(
            f"wrote {out}: {summary.sessions:,} sessions, {summary.charts} charts, "
            f"{summary.size_bytes / 1e6:.1f} MB; open it in a browser (no network needed)",
            err=True,
        )
        return
    if name == "skills":
        columns, rows = _skill_ema_report(db or settings.db, settings.lock_timeout, window_days, alpha)
    else:
        statement = report_sql(name, ReportOptions(days=days, date=date, top=top, by=by))
        columns, rows = query(db or settings.db, statement, settings.lock_timeout)
    click.echo(render(columns, rows, fmt))
    notes = report_notes(name, columns, rows) if fmt == "table" else []
    if notes:
        click.echo("\n" + "\n".join(notes))


def _skill_ema_report(
    path: Path, lock_timeout: float, window_days: int, alpha: float
) -> tuple[list[str], list[Row]]:
    with reader(path, lock_timeout) as con:
        emas = skill_ema(con, window_days, alpha)
    rows = [tuple(round(v, 6) if isinstance(v, float) else v for v in dataclasses.astuple(e)) for e in emas]
    return [field.name for field in dataclasses.fields(SkillEma)], rows


def _refuse_other_reports_options(ctx: click.Context, name: ReportName) -> None:
    """A report option given for a report that does not take it is a usage error, not silently ignored."""
    for option, reports in OPTION_REPORTS.items():
        source = ctx.get_parameter_source(option)
        if name not in reports and source not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP):
            flag = "--" + option.replace("_", "-")
            raise click.BadOptionUsage(
                option, f"{flag} applies to the {' and '.join(reports)} report only, not {name}"
            )


@cli.group()
def alerts() -> None:
    """Follow the error records and alerts the worker publishes."""


@alerts.command("tail")
@click.option(
    "--category",
    "categories",
    multiple=True,
    type=click.Choice(get_args(Category)),
    help="Follow the error topic of this category (repeatable).",
)
@click.option(
    "--rule", "rules", multiple=True, type=click.Choice(RULES), help="Show alerts of this rule (repeatable)."
)
@click.option(
    "--webhook",
    metavar="URL",
    default=None,
    help="Also POST each record shown, as JSON with a Slack-compatible `text` (its line).",
)
@click.option("--from-beginning", is_flag=True, help="Start at the oldest records kept, not at new ones.")
@click.option(
    "--max",
    "max_records",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Stop after N records shown.",
)
def alerts_tail(
    categories: tuple[str, ...],
    rules: tuple[str, ...],
    webhook: str | None,
    from_beginning: bool,
    max_records: int | None,
) -> None:
    """Print error records and alerts as they arrive, one line each, until Ctrl-C.

    \b
    What is followed:
      no --category, no --rule   every error topic and the alert topic
      --category only            those error topics, no alerts
      --rule only                alerts of those rules, no error records
      both                       those error topics and alerts of those rules

    \b
    Lines (UTC times; - for a field the record lacks):
      2026-01-01T00:00:05Z ERROR permanent/auth api anthropic/claude-sonnet-4 http=401 s=sess_1: …
      2026-01-01T00:00:09Z ERROR retryable/timeout tool web_search s=sess_2: …
      2026-01-01T00:00:05Z ALERT critical permanent_failure anthropic/claude-sonnet-4: …

    A message that is not a JSON object is reported on stderr and skipped. A
    webhook is tried up to 3 times (connection errors, timeouts, 429, 5xx);
    if it still fails, that is reported on stderr and tailing goes on.
    Nothing is committed: tailing never disturbs the worker.
    """
    from hermes_stream.alerts_tail import Selection, Webhook, run_tail

    selection = Selection.of(categories, rules)
    hook = Webhook(webhook, _warn) if webhook is not None else None
    with broker_for(_settings()) as settings:
        if not _settings().broker:
            click.echo(f"no HERMES_STREAM_BROKER: embedded broker at {settings.broker}", err=True)
        tailing = run_tail(
            settings,
            selection,
            hook,
            output=click.echo,
            warn=_warn,
            from_beginning=from_beginning,
            max_records=max_records,
        )
        try:
            asyncio.run(tailing)
        except KeyboardInterrupt:
            pass  # Ctrl-C is how tailing ends


def _warn(text: str) -> None:
    click.echo(text, err=True)


@cli.command()
@click.option(
    "--sessions", type=click.IntRange(min=1), default=300, show_default=True, help="Sessions to simulate."
)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--db",
    type=click.Path(path_type=Path),
    default=Path("hermes-demo.duckdb"),
    show_default=True,
    help="DuckDB file the demo creates afresh.",
)
def demo(sessions: int, seed: int, db: Path) -> None:
    """Run everything once: broker, worker, a generated workload, then a report."""
    from hermes_stream.demo import run_demo

    run_demo(_settings().with_(db=db), sessions, seed)


@cli.command()
@click.option(
    "--sessions", type=click.IntRange(min=1), default=10_000, show_default=True, help="Sessions to push."
)
@click.option("--seed", type=int, default=11, show_default=True)
@click.option(
    "--load",
    type=click.IntRange(min=0),
    default=5000,
    show_default=True,
    help="Background events/s while error latency is timed.",
)
@click.option(
    "--runs",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="End-to-end runs, each on a fresh pipeline (~25 s each); the median run is reported.",
)
@click.option(
    "--reports/--no-reports",
    default=True,
    show_default=True,
    help="Also time the reports on a 10M-call store it builds (~30 s).",
)
def bench(sessions: int, seed: int, load: int, runs: int, reports: bool) -> None:
    """Measure validation cost, throughput and its CPU per process, error latency, the CPU of a
    quiet stream, and report speed.

    Progress goes to stderr; the last line is the figures as JSON (see the README).
    """
    from hermes_stream.bench import run_bench

    figures = run_bench(_settings(), sessions, seed, load, reports, runs)
    click.echo(codec.dumps(figures).decode())


# Commands defined beside the code they drive.
cli.add_command(serve_command)
cli.add_command(import_hermes_command)
cli.add_command(templates)


def main() -> None:
    started = time.monotonic()
    try:
        cli.main(prog_name="hermes-stream")
    except HermesStreamError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo(f"interrupted after {time.monotonic() - started:.1f}s", err=True)
        sys.exit(130)
