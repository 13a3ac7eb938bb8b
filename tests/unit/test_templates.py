"""Warm templates on a real DuckDB file: capture, provisioning, injection, export/import, auto capture."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import pytest

from hermes_stream import codec
from hermes_stream.events import make_event
from hermes_stream.exceptions import ConfigError, StoreError
from hermes_stream.pipeline import process_records
from hermes_stream.records import Origin
from hermes_stream.redact import REDACTED
from hermes_stream.store import Store
from hermes_stream.templates import (
    FORMAT,
    Template,
    TemplateError,
    auto_capture,
    capture,
    delete_template,
    export_template,
    get_template,
    import_template,
    inject,
    list_templates,
    provision,
    template_stats,
)

START = dt.datetime(2026, 3, 1, 9, 0)
NOW = dt.datetime(2026, 3, 15, 12, 0)
LONG = "x" * 60  # a result long enough to keep
SECRET = "sk-proj-Abc123def456ghi789jkl012mno"


def output(label: str) -> str:
    """A result of at least 50 characters, told apart by *label*."""
    return f"{label}: " + "ok " * 20


@dataclass
class Db:
    """A real DuckDB file with the project's schema; each helper opens and closes the file."""

    path: Path
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def run(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.path)) as con:
            return con.execute(sql, params or []).fetchall()

    def session(
        self,
        session_id: str,
        *,
        status: str = "ended",
        tool_calls: int = 5,
        tool_errors: int = 0,
        category: str = "coding",
        score: float = 0.8,
        proficient: bool = True,
    ) -> str:
        error_rate = tool_errors / tool_calls if tool_calls else 0.0
        successful = status == "ended" and error_rate <= 0.10 and tool_calls >= 3
        self.run(
            "INSERT INTO sessions (session_id, status, ended_at, category, task_type, score, tool_calls,"
            " tool_errors, error_rate, is_successful, is_proficient, messages)"
            " VALUES (?, ?, ?, ?, 'code', ?, ?, ?, ?, ?, ?, 40)",
            [session_id, status, START, category, score, tool_calls, tool_errors, error_rate]
            + [successful, proficient and successful],
        )
        return session_id

    def tool(
        self,
        session_id: str,
        result: str | None = LONG,
        *,
        status: str = "ok",
        tool: str = "read_file",
        args: Any = None,
        call_id: str | None = None,
    ) -> str:
        n = next(self._ids)
        event_id = f"ev-{n}"
        self.run(
            "INSERT INTO tool_results (event_id, session_id, ts, tool_name, tool_call_id, status, args,"
            " result) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [event_id, session_id, START + dt.timedelta(seconds=n), tool, call_id, status]
            + [None if args is None else codec.dumps(args).decode(), result],
        )
        return event_id

    def good_session(self, session_id: str, calls: int = 3, **kwargs: Any) -> str:
        self.session(session_id, tool_calls=max(calls, 3), **kwargs)
        for i in range(calls):
            self.tool(session_id, output(f"{session_id} #{i}"), args={"path": f"f{i}.py"}, call_id=f"c-{i}")
        return session_id


@pytest.fixture
def db(tmp_path: Path) -> Db:
    path = tmp_path / "templates.duckdb"
    Store(path).ensure_schema()
    return Db(path)


def tool_contents(template: Template) -> list[str]:
    return [m["content"] for m in template.seed_messages if m["role"] == "tool"]


# --- capture -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda db: "nobody", "no session 'nobody'"),
        (lambda db: db.session("s", status="active"), "has not ended (status 'active')"),
        (lambda db: db.session("s", tool_calls=2), "has 2 tool calls, fewer than 3"),
        (
            lambda db: db.session("s", tool_calls=8, tool_errors=2),
            "not successful (2 tool errors of 8 tool calls, error rate 25%",
        ),
    ],
    ids=["unknown", "active", "two-tool-calls", "error-rate"],
)
def test_capture_refuses_with_the_reason(db: Db, make: Callable[[Db], str], reason: str) -> None:
    session_id = make(db)
    db.tool(session_id, LONG)

    with pytest.raises(TemplateError) as refused:
        capture(db.path, session_id)

    assert reason in str(refused.value)
    assert list_templates(db.path) == []


def test_capture_keeps_successful_calls_with_real_results_in_order(db: Db) -> None:
    db.session("s1", tool_calls=7, tool_errors=0)
    db.tool("s1", output("first"), tool="read_file", args={"path": "a.py"}, call_id="call_a")
    db.tool("s1", output("failed"), status="error")
    db.tool("s1", "too short")
    db.tool("s1", None)  # content capture was off
    db.tool("s1", "Traceback (most recent call last):\n  File 'x.py'\nValueError: " + LONG)
    db.tool("s1", "PermissionError: [Errno 13] denied " + LONG)
    second = db.tool("s1", output("second"), tool="execute_code", args={"code": "print(1)"})

    template = capture(db.path, "s1", description="reads then runs", tags=["py", "fs", "py"])

    assert template.seed_messages == (
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path":"a.py"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": output("first")},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_{second}",
                    "type": "function",
                    "function": {"name": "execute_code", "arguments": '{"code":"print(1)"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": f"call_{second}", "content": output("second")},
    )
    assert get_template(db.path, template.name) == template
    kind = (template.name, template.category, template.task_type, template.score, template.source_session_id)
    assert kind == ("coding-s1", "coding", "code", 0.8, "s1")
    assert (template.description, template.tags, template.auto) == ("reads then runs", ("py", "fs"), False)


def test_capture_takes_at_most_half_the_budget_in_tool_calls(db: Db) -> None:
    db.good_session("s1", calls=5)

    four = capture(db.path, "s1", name="four", max_messages=4)
    five = capture(db.path, "s1", name="five", max_messages=5)

    assert tool_contents(four) == [output("s1 #0"), output("s1 #1")]
    assert len(five.seed_messages) == 4
    with pytest.raises(ConfigError, match="at least 2"):
        capture(db.path, "s1", name="one", max_messages=1)


def test_capture_refuses_a_session_without_a_usable_result(db: Db) -> None:
    db.session("s1", tool_calls=3)
    for result in ("short", None, "Error: file not found " + LONG):
        db.tool("s1", result)

    with pytest.raises(TemplateError, match="no tool call to seed a template"):
        capture(db.path, "s1")


def test_a_repeated_tool_call_id_is_replaced_by_one_from_the_event(db: Db) -> None:
    db.session("s1")
    db.tool("s1", output("a"), call_id="call_1")
    again = db.tool("s1", output("b"), call_id="call_1")

    template = capture(db.path, "s1")

    ids = [m["tool_call_id"] for m in template.seed_messages if m["role"] == "tool"]
    assert ids == ["call_1", f"call_{again}"]


def test_capture_redacts_secrets_in_results_and_arguments(db: Db) -> None:
    db.session("s1")
    args = {
        "url": "https://api.example.com",
        "headers": {"Authorization": "hunter2"},
        "api_key": "plain",
        "env": [f"OPENAI_API_KEY={SECRET}"],
    }
    db.tool("s1", f"configured client with key {SECRET} and it answered fine, all good", args=args)

    template = capture(db.path, "s1")

    stored = codec.dumps(list(get_template(db.path, template.name).seed_messages)).decode()
    assert SECRET not in stored and "hunter2" not in stored and "plain" not in stored
    call, result = template.seed_messages
    assert codec.loads(call["tool_calls"][0]["function"]["arguments"]) == {
        "url": "https://api.example.com",
        "headers": {"Authorization": REDACTED},
        "api_key": REDACTED,
        "env": [f"OPENAI_API_KEY={REDACTED}"],
    }
    assert result["content"] == f"configured client with key {REDACTED} and it answered fine, all good"


def test_names_default_to_category_and_session_and_a_taken_name_is_refused(db: Db) -> None:
    db.good_session("session-0123456789abcdef")

    first = capture(db.path, "session-0123456789abcdef")
    second = capture(db.path, "session-0123456789abcdef")

    assert (first.name, second.name) == ("coding-session-0123", "coding-session-0123-2")
    with pytest.raises(TemplateError, match="'coding-session-0123' exists already"):
        capture(db.path, "session-0123456789abcdef", name="coding-session-0123")


def test_a_missing_database_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no database"):
        capture(tmp_path / "none.duckdb", "s1")
    assert not (tmp_path / "none.duckdb").exists()


# --- listing, provisioning, stats --------------------------------------------------------


def three_templates(db: Db) -> None:
    for session_id, category, score, tags in [
        ("c-low", "coding", 0.5, ["py"]),
        ("c-high", "coding", 0.9, ["py", "web"]),
        ("r-mid", "research", 0.7, ["web"]),
    ]:
        db.good_session(session_id, category=category, score=score)
        capture(db.path, session_id, name=session_id, tags=tags)


def test_list_is_best_first_and_filters_by_category_and_every_tag(db: Db) -> None:
    three_templates(db)

    assert [t.name for t in list_templates(db.path)] == ["c-high", "r-mid", "c-low"]
    assert [t.name for t in list_templates(db.path, category="coding")] == ["c-high", "c-low"]
    assert [t.name for t in list_templates(db.path, tags=["web"])] == ["c-high", "r-mid"]
    assert [t.name for t in list_templates(db.path, tags=["web", "py"])] == ["c-high"]
    assert list_templates(db.path, category="ops") == []


def test_provision_picks_the_best_of_the_category_and_counts(db: Db) -> None:
    three_templates(db)

    first = provision(db.path, "coding", "fix the failing test")
    second = provision(db.path, "coding")
    research = provision(db.path, "research")
    overall = provision(db.path)

    assert (first.name, first.provisions, second.provisions) == ("c-high", 1, 2)
    assert (research.name, overall.name, overall.provisions) == ("r-mid", "c-high", 3)
    assert get_template(db.path, "c-low").provisions == 0
    assert [t.provisions for t in list_templates(db.path)] == [3, 1, 0]
    hinted = db.run(
        "SELECT template_name, category, task_hint FROM template_provisions WHERE task_hint NOTNULL"
    )
    assert hinted == [("c-high", "coding", "fix the failing test")]


def test_a_provision_is_recorded_at_its_time(db: Db) -> None:
    three_templates(db)

    in_paris = NOW.replace(tzinfo=dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=1)))
    provision(db.path, "research", now=in_paris)

    assert db.run("SELECT provisioned_at FROM template_provisions") == [(NOW,)]


def test_provision_of_an_empty_category_says_which_exist(db: Db) -> None:
    with pytest.raises(TemplateError, match="no templates yet"):
        provision(db.path)
    three_templates(db)

    with pytest.raises(TemplateError, match="no template in category 'ops'; there are some for: coding, res"):
        provision(db.path, "ops")
    assert db.run("SELECT count(*) FROM template_provisions") == [(0,)]


def test_delete_removes_the_template_but_keeps_its_provisions(db: Db) -> None:
    three_templates(db)
    provision(db.path, "coding")

    assert delete_template(db.path, "c-high") is True
    assert delete_template(db.path, "c-high") is False
    with pytest.raises(TemplateError, match="no template named 'c-high'"):
        get_template(db.path, "c-high")
    assert provision(db.path, "coding").name == "c-low"
    assert template_stats(db.path).provisions == 2


def test_a_template_made_again_under_a_deleted_name_starts_counting_afresh(db: Db) -> None:
    three_templates(db)
    provision(db.path, "coding")
    delete_template(db.path, "c-high")

    capture(db.path, "c-high", name="c-high")

    assert get_template(db.path, "c-high").provisions == 0
    assert provision(db.path, "coding").provisions == 1


def test_stats_count_per_category_and_list_recent_provisions(db: Db) -> None:
    three_templates(db)
    provision(db.path, "coding", "one", now=NOW)
    provision(db.path, "research", "two", now=NOW + dt.timedelta(hours=1))

    stats = template_stats(db.path)

    assert (stats.templates, stats.auto_templates, stats.provisions) == (3, 0, 2)
    assert [(c.category, c.templates, c.best_score, c.provisions) for c in stats.categories] == [
        ("coding", 2, 0.9, 1),
        ("research", 1, 0.7, 1),
    ]
    assert stats.categories[0].avg_score == pytest.approx(0.7)
    recent = [(p.template_name, p.task_hint) for p in stats.recent_provisions]
    assert recent == [("r-mid", "two"), ("c-high", "one")]


# --- injection, export and import --------------------------------------------------------

SEED = ({"role": "assistant", "content": None, "tool_calls": []}, {"role": "tool", "content": "r"})
SYSTEM = {"role": "system", "content": "be brief"}
USER = {"role": "user", "content": "go"}
MORE = {"role": "system", "content": "and exact"}


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([USER], [*SEED, USER]),
        ([SYSTEM, USER], [SYSTEM, *SEED, USER]),
        ([SYSTEM, MORE, USER, SYSTEM], [SYSTEM, MORE, *SEED, USER, SYSTEM]),
        ([], list(SEED)),
    ],
    ids=["no-system", "one-system", "two-system", "empty"],
)
def test_inject_puts_the_seed_after_the_leading_system_messages(
    messages: list[dict[str, Any]], expected: list[dict[str, Any]]
) -> None:
    template = Template("t", None, None, None, (), None, NOW, None, SEED)
    before = list(messages)

    injected = inject(template, messages)

    assert injected == expected
    assert inject(list(SEED), messages) == expected
    assert messages == before
    next(m for m in injected if m["role"] == "tool")["content"] = "changed"  # a copy: the template stays
    assert template.seed_messages == SEED


def test_export_then_import_gives_the_same_template(db: Db, tmp_path: Path) -> None:
    three_templates(db)
    provision(db.path, "coding")
    original = get_template(db.path, "c-high")
    file = export_template(db.path, "c-high", tmp_path / "c-high.json")
    other = Db(tmp_path / "other.duckdb")
    Store(other.path).ensure_schema()

    assert codec.loads(file.read_bytes())["format"] == FORMAT
    assert import_template(other.path, file) == replace(original, provisions=0)
    assert get_template(other.path, "c-high") == replace(original, provisions=0)
    with pytest.raises(TemplateError, match="'c-high' exists already"):
        import_template(db.path, file)
    assert import_template(db.path, file, name="copy").name == "copy"


def test_an_imported_template_is_never_auto(db: Db, tmp_path: Path) -> None:
    file = tmp_path / "t.json"
    data = Template("t", None, "ops", None, (), None, NOW, 0.1, SEED, auto=True).to_json()
    file.write_bytes(codec.dumps(data))

    assert import_template(db.path, file).auto is False


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"format": None}, "not a template"),
        ({"seed_messages": []}, "seed_messages must be a non-empty list"),
        ({"seed_messages": [{"content": "no role"}]}, "each with a role"),
        ({"name": " "}, "non-empty string"),
        ({"tags": "a,b"}, "tags must be a list"),
        ({"score": "high"}, "score must be a number"),
        ({"created_at": "yesterday"}, "created_at must be an ISO 8601 time"),
        ({"category": 3}, "category must be a string"),
    ],
)
def test_import_refuses_a_malformed_file(db: Db, tmp_path: Path, change: dict[str, Any], reason: str) -> None:
    file = tmp_path / "bad.json"
    valid = Template("t", None, None, None, (), None, NOW, None, SEED).to_json()
    file.write_bytes(codec.dumps({**valid, **change}))

    with pytest.raises(TemplateError, match=reason):
        import_template(db.path, file)
    assert list_templates(db.path) == []


def test_import_of_a_file_that_is_not_json_is_a_template_error(db: Db, tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{nope")

    with pytest.raises(TemplateError, match="cannot import .*bad.json: not valid JSON"):
        import_template(db.path, tmp_path / "bad.json")


# --- automatic capture -------------------------------------------------------------------


def run_auto_capture(db: Db, per_category: int = 2) -> list[str]:
    with duckdb.connect(str(db.path)) as con:
        return auto_capture(con, per_category, now=NOW)


def names_by_score(db: Db, category: str) -> list[tuple[str, bool]]:
    return [(t.name, t.auto) for t in list_templates(db.path, category=category)]


def test_auto_capture_takes_each_categorys_best_uncaptured_candidate(db: Db) -> None:
    db.good_session("c-1", score=0.6)
    db.good_session("c-2", score=0.9)
    db.good_session("r-1", category="research", score=0.7)
    db.good_session("c-unproficient", score=0.99, proficient=False)  # not a candidate
    db.session("c-no-content", score=0.95, tool_calls=5)
    db.tool("c-no-content", None)

    assert run_auto_capture(db) == ["coding-c-2", "research-r-1"]
    assert run_auto_capture(db) == ["coding-c-1"]
    assert run_auto_capture(db) == []
    template = get_template(db.path, "coding-c-2")
    assert (template.auto, template.created_at, template.source_session_id) == (True, NOW, "c-2")


def test_auto_capture_keeps_at_most_n_automatic_templates_evicting_the_lowest(db: Db) -> None:
    db.good_session("hand", score=0.1)
    capture(db.path, "hand", name="hand-made")
    db.good_session("a", score=0.5)
    db.good_session("b", score=0.6)
    assert run_auto_capture(db) + run_auto_capture(db) == ["coding-b", "coding-a"]
    db.good_session("c", score=0.8)

    assert run_auto_capture(db) == ["coding-c"]  # c beats the worst (a), which goes

    assert names_by_score(db, "coding") == [("coding-c", True), ("coding-b", True), ("hand-made", False)]
    assert run_auto_capture(db) == []  # a is uncaptured again, but no better than the worst kept
    assert names_by_score(db, "coding") == [("coding-c", True), ("coding-b", True), ("hand-made", False)]


def test_auto_capture_evicts_down_to_a_lowered_limit_and_checks_it(db: Db) -> None:
    for session_id, score in [("a", 0.5), ("b", 0.6)]:
        db.good_session(session_id, score=score)
    run_auto_capture(db)
    run_auto_capture(db)

    assert run_auto_capture(db, per_category=1) == []
    assert names_by_score(db, "coding") == [("coding-b", True)]
    with pytest.raises(ConfigError, match="per_category"):
        run_auto_capture(db, per_category=0)


def test_the_sink_captures_templates_automatically_once_a_day(tmp_path: Path) -> None:
    session = "sess-auto-1"
    events = [
        make_event(
            "tool_result", session, ts=1_767_225_600.0 + i, tool_name="read_file", status="ok",
            tool_call_id=f"c{i}", args={"path": f"src/m{i}.py"}, result="def f(x):\n" + "    pass\n" * 10,
        )
        for i in range(6)
    ]  # fmt: skip
    events.append(
        make_event("session_end", session, ts=1_767_225_700.0, end_reason="completed", message_count=40)
    )
    batch = process_records([(codec.dumps(events), Origin("t", 0, 0))], {}.get, 1 << 20).sink
    store = Store(tmp_path / "auto.duckdb", auto_templates=2)
    store.write(batch)
    assert [(t.source_session_id, t.auto) for t in list_templates(tmp_path / "auto.duckdb")] == [
        (session, True)
    ]
    store.write(batch)  # the next write, the same day: no second run
    assert len(list_templates(tmp_path / "auto.duckdb")) == 1
