"""What kind of session it was, and whether it was a good one.

Computed from a session's tool calls when it is finalised:

``category``
    ``coding``, ``research`` or ``ops``: the first family, in that order,
    whose tools make up more than 40% of the tool calls (``read_file``
    counts for both coding and research); ``general`` otherwise or without
    tool calls.
``task_type``
    ``code``, ``file`` or ``research``: more than 60% of the tool calls in
    that group, checked in that order; ``mixed`` otherwise.
quality
    ``error_rate`` = tool errors / tool results; ``unique_tools``;
    ``is_proficient``: at least 20 messages and 5 tool calls;
    ``is_successful``: error rate at most 0.10 and at least 3 tool calls;
    ``score`` = 0.2·min(1, messages/100) + 0.3·min(1, unique_tools/8)
    + 0.5·(1 − error_rate). Messages are ``session_end.message_count`` when
    the producer gave it, else API calls + tool results + 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final, Literal, TypeVar

Category = Literal["coding", "research", "ops", "general"]
TaskType = Literal["code", "file", "research", "mixed"]

FAMILIES: Final[tuple[tuple[Category, frozenset[str]], ...]] = (
    ("coding", frozenset({"execute_code", "write_file", "read_file", "patch", "search_files"})),
    ("research", frozenset({"web_search", "web_extract", "session_search", "fact_store", "read_file"})),
    ("ops", frozenset({"terminal", "cronjob", "process", "send_message"})),
)
TASK_GROUPS: Final[tuple[tuple[TaskType, frozenset[str]], ...]] = (
    ("code", frozenset({"execute_code"})),
    ("file", frozenset({"read_file", "write_file", "patch", "search_files"})),
    ("research", frozenset({"web_search", "web_fetch", "browser_navigate"})),
)
T = TypeVar("T", bound=str)

CATEGORY_SHARE: Final = 0.40
TASK_SHARE: Final = 0.60


@dataclass(frozen=True, slots=True)
class SessionKind:
    """The finalised session's category, task type and quality figures."""

    category: Category
    task_type: TaskType
    messages: int
    error_rate: float
    unique_tools: int
    is_proficient: bool
    is_successful: bool
    score: float

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies, and this runs for every ended session's row.
        return {name: getattr(self, name) for name in _KIND_FIELDS}


_KIND_FIELDS = tuple(f.name for f in fields(SessionKind))


def session_kind(
    tool_counts: Mapping[str, int], tool_errors: int, api_calls: int, message_count: int | None
) -> SessionKind:
    """Judge a session from its per-tool call counts (every ``tool_result`` is a call)."""
    calls = sum(tool_counts.values())
    messages = message_count if message_count is not None else api_calls + calls + 1
    error_rate = tool_errors / calls if calls else 0.0
    unique = sum(1 for count in tool_counts.values() if count)
    return SessionKind(
        category=_first_over(FAMILIES, tool_counts, calls, CATEGORY_SHARE, "general"),
        task_type=_first_over(TASK_GROUPS, tool_counts, calls, TASK_SHARE, "mixed"),
        messages=messages,
        error_rate=error_rate,
        unique_tools=unique,
        is_proficient=messages >= 20 and calls >= 5,
        is_successful=error_rate <= 0.10 and calls >= 3,
        score=0.2 * min(1.0, messages / 100) + 0.3 * min(1.0, unique / 8) + 0.5 * (1 - error_rate),
    )


def _first_over(
    groups: tuple[tuple[T, frozenset[str]], ...],
    counts: Mapping[str, int],
    calls: int,
    share: float,
    other: T,
) -> T:
    if not calls:
        return other
    for name, tools in groups:
        if sum(counts.get(tool, 0) for tool in tools) > share * calls:
            return name
    return other
