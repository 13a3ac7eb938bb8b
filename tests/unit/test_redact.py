"""redact: secrets in error messages and tool output are replaced, normal text is not touched."""

from __future__ import annotations

import pytest

from hermes_stream.redact import REDACTED, redact
from hermes_stream.workload_catalog import API_ERRORS, CONTEXT_ERRORS, TOOLS

OPENAI_KEY = "sk-proj-" + "Ab3dEf6hIj9kLmN0pQrStUvWxYz_12-34AbCdEfGhIjKlMnOp"
LEGACY_KEY = "sk-" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0u1V2w3X4"
ANTHROPIC_KEY = "sk-ant-api03-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe-dcBA_zyxwvu98765"
GITHUB_TOKEN = "ghp_" + "16C7e42F292c6912E7710c838347Ae178B4a"
GITHUB_PAT = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Incorrect API key provided: {OPENAI_KEY}.", f"Incorrect API key provided: {REDACTED}."),
        (f"using {LEGACY_KEY} now", f"using {REDACTED} now"),
        (f"x-key={ANTHROPIC_KEY}", f"x-key={REDACTED}"),
        (f"ANTHROPIC_KEY {ANTHROPIC_KEY}", f"ANTHROPIC_KEY {REDACTED}"),
        (f"Authorization: Bearer {JWT}", f"Authorization: Bearer {REDACTED}"),
        ("authorization: Basic dXNlcjpwYXNzd29yZA==", f"authorization: Basic {REDACTED}"),
        ("Proxy-Authorization=opaque-value-1", f"Proxy-Authorization={REDACTED}"),
        (
            f"headers={{'Authorization': 'Bearer {LEGACY_KEY}', 'x-api-key': '{ANTHROPIC_KEY}'}}",
            f"headers={{'Authorization': 'Bearer {REDACTED}', 'x-api-key': '{REDACTED}'}}",
        ),
        (f"curl -H 'bearer {JWT}' https://api", f"curl -H 'bearer {REDACTED}' https://api"),
        (
            "postgres://admin:s3cr3t!@db.internal:5432/app",
            f"postgres://admin:{REDACTED}@db.internal:5432/app",
        ),
        ("redis://:hunter2@cache:6379/0", f"redis://:{REDACTED}@cache:6379/0"),
        ("amqp://bot:p@ss:w0rd@mq/vhost", f"amqp://bot:{REDACTED}@mq/vhost"),
        (
            "GET https://x.io/v1?api_key=abc123&model=gpt-4o&token=zz9",
            f"GET https://x.io/v1?api_key={REDACTED}&model=gpt-4o&token={REDACTED}",
        ),
        ("apikey=Q1w2E3r4 access_token=ya29.a0AfH6", f"apikey={REDACTED} access_token={REDACTED}"),
        ("OPENAI_API_KEY=not-an-sk-key password=hunter2", f"OPENAI_API_KEY={REDACTED} password={REDACTED}"),
        (
            '{"api_key": "abc123", "password": "p@ss w0rd", "max_tokens": 100}',
            f'{{"api_key": "{REDACTED}", "password": "{REDACTED}", "max_tokens": 100}}',
        ),
        (
            "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            f"aws_secret_access_key={REDACTED}",
        ),
        ("AKIAIOSFODNN7EXAMPLE and ASIAY34FZKBOKMUTVV7A", f"{REDACTED} and {REDACTED}"),
        (f"push with {GITHUB_TOKEN} or {GITHUB_PAT}", f"push with {REDACTED} or {REDACTED}"),
    ],
)
def test_secrets_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "task-id disk-1 risk-free-plan-2024-version-1 ask-me sk-learn",
        "max_tokens=4096, tokens per min (TPM): Limit 30000",
        "Bearer token missing; Bearer authentication required",
        "invalid x-api-key",
        "Authorization header missing",
        "the password is wrong; reset your API key in the console",
        "Invalid value for 'token': expected a string",
        "https://example.com:8080/path@x and user@example.com https://medium.com/@devnotes/agents",
        "Asia/Tokyo and akia",
        # OpenAI's own masked key is kept: it is how a user tells keys apart.
        "Incorrect API key provided: sk-proj-****ab12.",
        "",
    ],
)
def test_normal_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_redacting_twice_changes_nothing() -> None:
    text = f"Authorization: Bearer {JWT} url=postgres://u:pw@h/db api_key={OPENAI_KEY}"
    once = redact(text)
    assert OPENAI_KEY not in once and JWT not in once and ":pw@" not in once
    assert redact(once) == once


def test_text_without_triggers_is_returned_as_is() -> None:
    text = "The server had an error while processing your request. Sorry about that!"
    assert redact(text) is text


def test_catalog_messages_survive_unchanged() -> None:
    templates = [e.message for errors in API_ERRORS.values() for e in errors]
    templates += [e.message for e in CONTEXT_ERRORS.values()]
    templates += [e.message for spec in TOOLS.values() for e in spec.errors]
    for template in templates:
        assert redact(template) == template
