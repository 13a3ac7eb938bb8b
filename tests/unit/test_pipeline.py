"""process_records: one batch of Kafka records in, rows, states and dead letters out."""

from __future__ import annotations

import io
from itertools import count
from typing import Any

from hermes_stream import codec
from hermes_stream.alerts import AlertConfig
from hermes_stream.events import make_event
from hermes_stream.pipeline import BatchResult, Fold, process_records
from hermes_stream.records import Origin
from hermes_stream.schema import API_CALLS, ERRORS, EVENT_TABLES, SESSIONS, TABLES, TOOL_RESULTS, Table
from hermes_stream.sessions import SessionStats

T0 = 1_767_225_600.0
LIMIT = 1024 * 1024
_ids = count()

Event = dict[str, Any]
Record = tuple[bytes | None, Origin]


def event(type_: Any, session: str, **fields: Any) -> Event:
    n = next(_ids)
    return make_event(type_, session, event_id=f"e{n}", ts=T0 + n, **fields)


def api_call(session: str = "s1", **fields: Any) -> Event:
    base = {"model": "gpt-4o", "provider": "openai", "input_tokens": 100, "output_tokens": 10, "status": "ok"}
    return event("api_call", session, **(base | fields))


def tool_result(session: str = "s1", **fields: Any) -> Event:
    return event("tool_result", session, **({"tool_name": "terminal", "status": "ok"} | fields))


def session_end(session: str = "s1") -> Event:
    return event("session_end", session, end_reason="completed", completed=True)


def records(
    *payloads: list[Event] | Event | bytes, partition: int = 0, first_offset: int = 0
) -> list[Record]:
    """One record per payload, at consecutive offsets; bytes are sent as they are."""
    return [
        (p if isinstance(p, bytes) else codec.dumps(p), Origin("hermes.events", partition, first_offset + i))
        for i, p in enumerate(payloads)
    ]


def process(batch: list[Record], states: dict[str, SessionStats] | None = None) -> BatchResult:
    return process_records(batch, (states or {}).get, LIMIT)


def events_json(result: BatchResult) -> bytes:
    """The batch's events as the sink writes them to its file for DuckDB."""
    file = io.BytesIO()
    result.sink.write_events(file)
    return file.getvalue()


def rows(result: BatchResult, table: Table) -> list[dict[str, Any]]:
    """The rows *result* holds for *table*; event rows as DuckDB reads them from JSON."""
    if table.name in result.sink.rows:
        found = result.sink.rows[table.name]
    else:
        kind = next(k for k, t in EVENT_TABLES.items() if t is table)
        found = [table.row(e) for e in codec.loads(events_json(result)) if e["type"] == kind]
    return [dict(zip(table.names, row, strict=True)) for row in found]


def counts(result: BatchResult) -> dict[str, int]:
    return {table.name: len(rows(result, table)) for table in TABLES}


def persisted(result: BatchResult) -> dict[str, SessionStats]:
    """The session states as the worker writes them back to its table (JSON)."""
    return {
        sid: SessionStats.from_dict(codec.loads(codec.dumps(stats.to_dict())))
        for sid, stats in result.sessions.items()
    }


def published(result: BatchResult) -> dict[str, dict[str, Any]]:
    """The rows *result* publishes to hermes.sessions, by session."""
    return {s.session_id: s.row() for s in result.finalised}


def test_rows_land_in_each_table() -> None:
    result = process(
        records(
            [api_call("s1"), tool_result("s1"), api_call("s2", status="error", http_status=529)],
            tool_result("s2", status="error"),
            b"not json",
        )
    )
    assert counts(result) == {
        "api_calls": 2,
        "tool_results": 2,
        "sessions": 2,
        "dead_letters": 1,
        "errors": 2,
        "alerts": 0,  # alerts reach DuckDB from their topic (the alert sink)
        "model_prices": 1,  # each model once
        "skill_invocations": 0,
        "templates": 0,
        "template_provisions": 0,
    }
    assert {r["session_id"]: r["api_errors"] for r in rows(result, SESSIONS)} == {"s1": 0, "s2": 1}
    assert [r["http_status"] for r in rows(result, API_CALLS)] == [None, 529]
    assert result.events == 4


def test_clean_records_go_to_the_sink_as_they_came() -> None:
    clean = codec.dumps([api_call("s1"), tool_result("s1")])
    result = process([(clean, Origin("hermes.events", 0, 0))])
    assert events_json(result) == clean
    assert result.sink.event_count == 2


def test_the_same_event_twice_in_a_batch_gives_one_row_and_one_count() -> None:
    twice = api_call("s1")
    result = process(records([twice, twice], twice))
    assert [r["event_id"] for r in rows(result, API_CALLS)] == [twice["event_id"]]
    assert result.sessions["s1"].api_calls == 1


def test_bad_events_become_dead_letters_and_the_rest_of_the_record_lands() -> None:
    good_call, good_tool = api_call("s1"), tool_result("s1")
    result = process(records([good_call, api_call("s1", output_tokens=-2), good_tool, {"type": []}]))
    assert [r["event_id"] for r in rows(result, API_CALLS)] == [good_call["event_id"]]
    assert [r["event_id"] for r in rows(result, TOOL_RESULTS)] == [good_tool["event_id"]]
    assert [d.index for d in result.dead_letters] == [1, 3]
    assert "output_tokens" in result.dead_letters[0].reason
    assert counts(result)["dead_letters"] == 2
    assert result.sessions["s1"].events == 2


def test_finalised_holds_sessions_that_ended_in_this_batch() -> None:
    result = process(records([api_call("s1"), session_end("s1")], [api_call("s2")]))
    assert [s.session_id for s in result.finalised] == ["s1"]


def test_finalised_leaves_out_ended_sessions_this_batch_did_not_change() -> None:
    end = session_end("s1")
    first = process(records([api_call("s1"), end], api_call("s2")))
    states = persisted(first)
    untouched = process(records(api_call("s2"), first_offset=2), states)
    assert untouched.finalised == []
    resent = process(records(end, first_offset=3), states)  # a producer retry of the same event
    assert resent.finalised == []


def test_a_late_event_after_session_end_republishes_the_session() -> None:
    first = process(records([api_call("s1"), session_end("s1")]))
    late = process(records(tool_result("s1"), first_offset=1), persisted(first))
    assert [(s.session_id, s.tool_calls, s.ended) for s in late.finalised] == [("s1", 1, True)]


def test_replaying_a_batch_against_its_own_states_changes_nothing() -> None:
    batch = records(
        [api_call("s1", cache_read_tokens=40), tool_result("s1")],
        [api_call("s2"), session_end("s2")],
        [api_call("s1", status="error"), session_end("s1")],
        b"[1]",
    )
    first = process(batch)
    replay = process(batch, persisted(first))
    assert rows(replay, SESSIONS) == rows(first, SESSIONS)
    # The crash may have come before the ended sessions were published: again, unchanged.
    assert published(replay) == published(first)
    assert rows(replay, API_CALLS) == rows(first, API_CALLS)  # the sink ignores them by event_id
    assert [d.dlq_id for d in replay.dead_letters] == [d.dlq_id for d in first.dead_letters]


def test_a_batch_spanning_partitions_keeps_each_partitions_offsets_apart() -> None:
    first = process(records(api_call("a"), partition=0) + records(api_call("b"), partition=1))
    assert (first.sessions["a"].api_calls, first.sessions["b"].api_calls) == (1, 1)
    assert (first.sessions["b"].applied_partition, first.sessions["b"].applied_offset) == (1, 0)


# errors, redaction and budget alerts


def test_each_failed_call_gets_an_errors_row_with_its_classification() -> None:
    result = process(
        records(
            [
                api_call("s1", status="error", http_status=429, error_type="insufficient_quota"),
                api_call("s1", status="error", http_status=529, error_message="Overloaded"),
                tool_result(
                    "s1", status="error", http_status=404, error_message="HTTP 404 fetching https://x.test/a"
                ),
                api_call("s1"),
            ]
        )
    )
    found = [(r["kind"], r["category"], r["reason"], r["should_retry"]) for r in rows(result, ERRORS)]
    assert found == [
        ("api", "permanent", "billing_quota", False),
        ("api", "retryable", "overloaded", True),
        ("tool", "permanent", "not_found", False),
    ]


def test_a_secret_in_a_message_is_redacted_in_the_event_rows_and_the_error_row() -> None:
    key = "sk-proj-" + "a1B2c3D4" * 5
    failed = api_call(
        "s1", status="error", http_status=401, error_message=f"Incorrect API key provided: {key}"
    )
    result = process(records([failed, api_call("s1")]))

    assert key.encode() not in events_json(result)  # re-encoded, not the record as it came
    (error,) = rows(result, ERRORS)
    assert key not in error["message"] and "[REDACTED]" in error["message"]
    assert error["reason"] == "auth"


def test_a_session_over_budget_raises_one_alert_however_often_it_is_touched_again() -> None:
    config = AlertConfig(session_budget_usd=1.0)
    first = process_records(records([api_call("s1", cost_usd=0.6)]), {}.get, LIMIT, config)
    assert first.alerts == []
    states = persisted(first)
    second = process_records(
        records([api_call("s1", cost_usd=0.6)], first_offset=1), states.get, LIMIT, config
    )
    assert [(a.rule, a.subject) for a in second.alerts] == [("session_budget", "s1")]
    third = process_records(
        records([api_call("s1", cost_usd=0.6)], first_offset=2), persisted(second).get, LIMIT, config
    )
    assert third.alerts == []


def test_a_session_without_events_for_the_timeout_is_ended_and_published() -> None:
    table: dict[str, SessionStats] = {}
    fold = Fold(table.get, LIMIT)
    fold.add(*records([api_call("quiet"), api_call("busy")])[0])
    table.update(fold.take().sessions)  # handed over: both are in the worker's table
    fold.active["busy"] += 100  # an event of "busy" was folded later

    assert fold.expire_idle(now=fold.active["quiet"] + 30, timeout=30) == 1
    result = fold.take()
    assert [(s.session_id, s.end_reason) for s in result.finalised] == [("quiet", "idle_timeout")]
    assert rows(result, SESSIONS)[0]["status"] == "ended"
    assert set(fold.active) == {"busy"}


class CountingTable(dict[str, SessionStats]):
    """The worker's table, counting the reads the fold makes."""

    reads = 0

    def lookup(self, session_id: str) -> SessionStats | None:
        self.reads += 1
        return self.get(session_id)


def test_an_open_session_is_kept_for_the_next_take_and_not_read_back() -> None:
    table = CountingTable()
    fold = Fold(table.lookup, LIMIT)
    fold.add(*records([api_call("s1")])[0])
    table.update(persisted(fold.take()))
    fold.add(*records([api_call("s1")], first_offset=1)[0])
    assert table.reads == 1  # only when the session was new
    assert fold.take().sessions["s1"].api_calls == 2


def test_after_a_rebalance_the_session_is_read_from_the_table_again() -> None:
    table = CountingTable()
    fold = Fold(table.lookup, LIMIT)
    fold.add(*records([api_call("s1")])[0])
    table.update(persisted(fold.take()))
    table["s1"].api_calls = 5  # another worker folded more of it meanwhile
    fold.forget()
    fold.add(*records([api_call("s1")], first_offset=1)[0])
    assert table.reads == 2
    assert fold.take().sessions["s1"].api_calls == 6


def test_an_ended_session_is_not_kept_in_memory() -> None:
    table = CountingTable()
    fold = Fold(table.lookup, LIMIT)
    fold.add(*records([api_call("s1"), session_end("s1")])[0])
    table.update(persisted(fold.take()))
    fold.add(*records([api_call("s1")], first_offset=1)[0])  # a late event
    assert table.reads == 2
    assert fold.take().sessions["s1"].api_calls == 2
