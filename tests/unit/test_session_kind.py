"""session_kind: category, task type and quality at their thresholds."""

from __future__ import annotations

import pytest

from hermes_stream.session_kind import SessionKind, session_kind


def kind(
    counts: dict[str, int], errors: int = 0, api_calls: int = 0, messages: int | None = None
) -> SessionKind:
    return session_kind(counts, errors, api_calls, messages)


@pytest.mark.parametrize(
    ("counts", "category"),
    [
        ({}, "general"),
        ({"execute_code": 41, "terminal": 59}, "coding"),  # 41% > 40%
        ({"execute_code": 40, "terminal": 60}, "ops"),  # exactly 40% is not more than 40%
        ({"execute_code": 40, "web_search": 30, "terminal": 30}, "general"),
        ({"read_file": 5, "web_search": 5}, "coding"),  # read_file counts for both: coding comes first
        ({"web_search": 3, "web_extract": 2, "patch": 5}, "coding"),  # 50% coding
        ({"web_search": 5, "fact_store": 1, "terminal": 4}, "research"),
        ({"cronjob": 1, "send_message": 2, "process": 2, "browser_navigate": 5}, "ops"),  # 50%
        ({"browser_navigate": 10}, "general"),  # in no family
    ],
)
def test_category_is_the_first_family_over_40_percent(counts: dict[str, int], category: str) -> None:
    assert kind(counts).category == category


@pytest.mark.parametrize(
    ("counts", "task_type"),
    [
        ({}, "mixed"),
        ({"execute_code": 61, "terminal": 39}, "code"),
        ({"execute_code": 60, "terminal": 40}, "mixed"),  # exactly 60% is not more than 60%
        ({"read_file": 4, "patch": 3, "terminal": 3}, "file"),
        ({"web_search": 5, "web_fetch": 1, "browser_navigate": 1, "terminal": 3}, "research"),
        ({"web_extract": 7, "terminal": 3}, "mixed"),  # web_extract is not in the research group
    ],
)
def test_task_type_needs_more_than_60_percent(counts: dict[str, int], task_type: str) -> None:
    assert kind(counts).task_type == task_type


def test_messages_come_from_session_end_or_are_counted() -> None:
    assert kind({"terminal": 4}, api_calls=5).messages == 5 + 4 + 1
    assert kind({"terminal": 4}, api_calls=5, messages=42).messages == 42


def test_proficient_needs_20_messages_and_5_tool_calls() -> None:
    assert kind({"terminal": 5}, messages=20).is_proficient
    assert not kind({"terminal": 5}, messages=19).is_proficient
    assert not kind({"terminal": 4}, messages=20).is_proficient


def test_successful_needs_an_error_rate_of_at_most_10_percent_and_3_tool_calls() -> None:
    assert kind({"terminal": 10}, errors=1).is_successful  # exactly 0.10
    assert not kind({"terminal": 9}, errors=1).is_successful  # 0.11
    assert kind({"terminal": 3}).is_successful
    assert not kind({"terminal": 2}).is_successful


def test_score_weights_messages_tools_and_errors() -> None:
    counts = {"terminal": 6, "read_file": 2, "patch": 2}  # 10 calls, 3 tools
    result = kind(counts, errors=2, messages=50)
    assert result.error_rate == pytest.approx(0.2)
    assert result.unique_tools == 3
    assert result.score == pytest.approx(0.2 * 0.5 + 0.3 * 3 / 8 + 0.5 * 0.8)
    capped = kind({f"tool{i}": 1 for i in range(12)}, messages=300)
    assert capped.score == pytest.approx(1.0)  # messages and tools are capped at 1


def test_no_tool_calls_is_general_mixed_and_error_free() -> None:
    result = kind({}, api_calls=3)
    assert (result.category, result.task_type, result.error_rate, result.is_successful) == (
        "general",
        "mixed",
        0.0,
        False,
    )
