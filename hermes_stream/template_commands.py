"""``hermes-stream templates …``: warm-session templates from the command line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from hermes_stream import codec
from hermes_stream.cli_options import DB_OPTION, FORMAT_OPTION
from hermes_stream.cli_options import settings_from_context as _settings
from hermes_stream.formats import Format, render
from hermes_stream.store import Row
from hermes_stream.templates import MAX_MESSAGES as TEMPLATE_MAX_MESSAGES
from hermes_stream.templates import (
    CategoryStats,
    Provision,
    TemplateError,
    capture,
    delete_template,
    export_template,
    get_template,
    import_template,
    list_templates,
    provision,
    template_stats,
)


@click.group()
def templates() -> None:
    """Warm templates: the tool calls of good sessions, handed to new sessions as a seed.

    Capturing needs content capture on in the producer (tool_results.args and
    result).
    """


def _tags(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(tag.strip() for tag in (value or "").split(",") if tag.strip()))


TAGS_OPTION = click.option("--tags", metavar="A,B", callback=_tags, help="Comma-separated tags.")


@templates.command("capture")
@click.argument("session_id")
@click.option("--name", default=None, help="Template name [default: CATEGORY-SESSION_ID[:12]].")
@click.option("--description", default=None, help="What the template is good for.")
@TAGS_OPTION
@click.option(
    "--max-messages",
    type=click.IntRange(min=2),
    default=TEMPLATE_MAX_MESSAGES,
    show_default=True,
    help="Most seed messages: two per tool call, so at most half as many tool calls.",
)
@DB_OPTION
def templates_capture(
    session_id: str,
    name: str | None,
    description: str | None,
    tags: tuple[str, ...],
    max_messages: int,
    db: Path | None,
) -> None:
    """Capture ended, successful SESSION_ID (3 or more tool calls) as a template.

    The seed is the session's successful tool calls in time order, each the
    assistant message with its tool_calls then the tool message with the
    result; a call whose result is an error, missing or shorter than 50
    characters is skipped. Secrets in arguments and results are redacted.
    """
    settings = _settings()
    template = capture(
        db or settings.db,
        session_id,
        name=name,
        description=description,
        tags=tags,
        max_messages=max_messages,
        lock_timeout=settings.lock_timeout,
    )
    calls = _count(len(template.seed_messages) // 2, "tool call")
    click.echo(
        f"captured {template.name}: {calls} ({_count(len(template.seed_messages), 'message')}) from "
        f"session {session_id}, category {template.category}, score {_score(template.score)}"
    )


@templates.command("list")
@click.option("--category", default=None, help="Only this category.")
@TAGS_OPTION
@FORMAT_OPTION
@DB_OPTION
def templates_list(category: str | None, tags: tuple[str, ...], fmt: Format, db: Path | None) -> None:
    """List templates, best score first (with --tags: those having every tag)."""
    settings = _settings()
    found = list_templates(db or settings.db, category, tags, lock_timeout=settings.lock_timeout)
    columns = ["name", "category", "task_type", "score", "tags", "messages", "provisions", "auto"]
    columns += ["created_at", "source_session_id", "description"]
    rows = [
        (t.name, t.category, t.task_type, t.score, _tag_cell(t.tags, fmt), len(t.seed_messages))
        + (t.provisions, t.auto, t.created_at, t.source_session_id, t.description)
        for t in found
    ]
    click.echo(render(columns, rows, fmt))


@templates.command("show")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@DB_OPTION
def templates_show(name: str, fmt: str, db: Path | None) -> None:
    """Print template NAME: its fields, then its seed messages as JSON."""
    settings = _settings()
    template = get_template(db or settings.db, name, lock_timeout=settings.lock_timeout)
    if fmt == "json":
        click.echo(codec.dumps({**template.to_json(), "provisions": template.provisions}).decode())
        return
    fields = [(f.name, getattr(template, f.name)) for f in dataclasses.fields(template)]
    rows = [
        (key, _tag_cell(v, "table") if key == "tags" else v) for key, v in fields if key != "seed_messages"
    ]
    click.echo(render(["field", "value"], rows, "table"))
    click.echo(f"\nseed messages ({len(template.seed_messages)}):")
    for message in template.seed_messages:
        click.echo(codec.dumps(message).decode())


@templates.command("provision")
@click.option("--category", default=None, help="The best template of this category [default: of all].")
@click.option("--task-hint", metavar="TEXT", default=None, help="What the new session is for (recorded).")
@DB_OPTION
def templates_provision(category: str | None, task_hint: str | None, db: Path | None) -> None:
    """Print the best template's seed messages as a JSON array, and record the provision.

    Only the JSON goes to stdout, so it can be piped; which template it was
    goes to stderr.
    """
    settings = _settings()
    template = provision(db or settings.db, category, task_hint, lock_timeout=settings.lock_timeout)
    click.echo(codec.dumps(list(template.seed_messages)).decode())
    click.echo(
        f"template {template.name} (category {template.category}, score {_score(template.score)}), "
        f"provisioned {_count(template.provisions, 'time')}",
        err=True,
    )


@templates.command("delete")
@click.argument("name")
@DB_OPTION
def templates_delete(name: str, db: Path | None) -> None:
    """Delete template NAME (its provisions stay in the stats, as history)."""
    settings = _settings()
    if not delete_template(db or settings.db, name, lock_timeout=settings.lock_timeout):
        raise TemplateError(f"no template named {name!r}")
    click.echo(f"deleted template {name}")


@templates.command("stats")
@FORMAT_OPTION
@DB_OPTION
def templates_stats(fmt: Format, db: Path | None) -> None:
    """Totals, per category, and the latest provisions."""
    settings = _settings()
    stats = template_stats(db or settings.db, lock_timeout=settings.lock_timeout)
    if fmt == "json":
        click.echo(codec.dumps(dataclasses.asdict(stats)).decode())
        return
    totals: list[Row] = [(stats.templates, stats.auto_templates, stats.provisions)]
    sections = [
        ("totals", ["templates", "auto_templates", "provisions"], totals),
        ("per category", _field_names(CategoryStats), [dataclasses.astuple(c) for c in stats.categories]),
        (
            "recent provisions",
            _field_names(Provision),
            [dataclasses.astuple(p) for p in stats.recent_provisions],
        ),
    ]
    for i, (title, columns, rows) in enumerate(sections):
        if i:
            click.echo()
        if fmt == "table":
            click.echo(f"{title}:")
        click.echo(render(columns, rows, fmt))


@templates.command("export")
@click.argument("name")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="JSON file to write.",
)
@DB_OPTION
def templates_export(name: str, output: Path, db: Path | None) -> None:
    """Write template NAME to a JSON file, for `templates import` elsewhere."""
    settings = _settings()
    export_template(db or settings.db, name, output, lock_timeout=settings.lock_timeout)
    click.echo(f"exported template {name} to {output}")


@templates.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="Store it under this name [default: the file's].")
@DB_OPTION
def templates_import(file: Path, name: str | None, db: Path | None) -> None:
    """Store the template in FILE (written by `templates export`); a taken name is refused."""
    settings = _settings()
    template = import_template(db or settings.db, file, name=name, lock_timeout=settings.lock_timeout)
    click.echo(
        f"imported template {template.name} ({_count(len(template.seed_messages), 'message')}) from {file}"
    )


def _tag_cell(tags: tuple[str, ...], fmt: str) -> str | list[str]:
    return list(tags) if fmt == "json" else ",".join(tags)


def _field_names(cls: type[CategoryStats] | type[Provision]) -> list[str]:
    return [field.name for field in dataclasses.fields(cls)]


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"


def _score(score: float | None) -> str:
    return "unknown" if score is None else f"{score:.3f}"
