"""Remove secrets from text before it is stored or logged: :func:`redact`.

Error messages and tool output can carry credentials (a key echoed back, a
connection URL, a header dump). Each secret is replaced by :data:`REDACTED`,
keeping the label around it so the text still reads:

* OpenAI keys ``sk-…`` and ``sk-proj-…``, Anthropic keys ``sk-ant-…``;
* ``Bearer <token>`` (the word Bearer stays) and the value of ``Authorization``,
  ``Proxy-Authorization``, ``x-api-key`` and ``api-key`` headers (the scheme stays);
* the password in ``scheme://user:password@host`` (up to the last ``@`` before the
  path, so a password holding ``@`` goes entirely);
* values of ``api_key=``, ``apikey=``, ``token=``, ``access_token=``, ``secret=``,
  ``password=``, ``pwd=``… (also with a prefix such as ``openai_api_key=``, and as
  quoted ``"api_key": "…"`` pairs in JSON or a dict repr);
* AWS access key ids ``AKIA…``/``ASIA…``; GitHub tokens ``ghp_…``, ``gho_…``,
  ``ghu_…``, ``ghs_…``, ``ghr_…`` and ``github_pat_…``.

Normal text is left alone: ``task-id``, ``disk-1``, ``max_tokens=4096``,
"Bearer token missing", "invalid x-api-key". Key and token shapes need a digit and
a minimum length, so words like ``sk-learn`` survive. OpenAI's own masked form
``sk-proj-****abcd`` is kept: it is already masked and its last characters are
how a user tells keys apart.

Not covered: a secret with neither a known shape nor a label (a bare password in
prose, ``password: hunter2`` in YAML).

Speed: each rule runs only when its cheap trigger substrings occur in the
lower-cased text, so a message without any is returned as is (the same object).
"""

from __future__ import annotations

import re
from typing import Any, Final, NamedTuple

REDACTED: Final = "[REDACTED]"

_KEY_NAMES: Final = (
    r"(?:[a-z0-9]+[_-])*(?:api[_-]?key|apikey|(?:access|refresh|auth|id|session)[_-]?token|token"
    r"|client[_-]?secret|secret(?:[_-]?access)?[_-]?key|secret|password|passwd|pwd)"
)


class _Rule(NamedTuple):
    triggers: tuple[str, ...]  # lower-case substrings; the rule runs only if one occurs…
    pattern: re.Pattern[str]
    replacement: str
    also: str = ""  # …and this one too


_KEY_TRIGGERS: Final = ("key", "token", "secret", "pass", "pwd")

_RULES: Final = (
    _Rule(
        ("authorization", "api-key"),
        re.compile(
            r"(?i)\b((?:proxy-)?authorization|x-api-key|api-key)(['\"]?\s*[:=]\s*['\"]?)"
            r"((?:bearer|basic|token)\s+)?[^\s'\",;}]+"
        ),
        rf"\1\2\3{REDACTED}",
    ),
    _Rule(
        ("bearer",),
        re.compile(r"(?i)\b(bearer\s+)(?=[\w.~+/-]*\d)[\w.~+/-]{16,}=*"),
        rf"\1{REDACTED}",
    ),
    _Rule(("sk-",), re.compile(r"(?<![\w-])sk-(?=[\w-]*\d)[\w-]{20,}"), REDACTED),
    _Rule(
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{30,})"),
        REDACTED,
    ),
    _Rule(("akia", "asia"), re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), REDACTED),
    _Rule(("://",), re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s/]+@"), rf"\1{REDACTED}@", "@"),
    _Rule(
        _KEY_TRIGGERS,
        re.compile(rf"(?i)(?<![\w-])({_KEY_NAMES}=)[^\s&'\",;]+"),
        rf"\1{REDACTED}",
        "=",
    ),
    _Rule(
        _KEY_TRIGGERS,
        re.compile(rf"(?i)(['\"])({_KEY_NAMES})\1(\s*:\s*)(['\"])(?:(?!\4).)+\4"),
        rf"\1\2\1\3\4{REDACTED}\4",
        ":",
    ),
)


def redact(text: str) -> str:
    """*text* with every secret it holds replaced by :data:`REDACTED`."""
    lowered = text.lower()
    for rule in _RULES:
        if rule.also in lowered and any(trigger in lowered for trigger in rule.triggers):
            text = rule.pattern.sub(rule.replacement, text)
    return text


_SECRET_KEY: Final = re.compile(rf"(?i){_KEY_NAMES}|authorization|x-api-key|api-key")


def redact_value(value: Any) -> Any:
    """*value* (JSON-like: dicts, lists, strings, …) with every string in it redacted.

    A string under a key named like a secret (``token``, ``api_key``,
    ``password``, ``Authorization``, …) is replaced whole.
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            key: REDACTED
            if isinstance(item, str) and isinstance(key, str) and _SECRET_KEY.fullmatch(key)
            else redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact_value(item) for item in value]
    return value
