"""The one place JSON is encoded and decoded.

The producer SDK, the worker, the sink and the CLI all use these two
functions, so every part agrees on the options: compact UTF-8 bytes out,
NaN and Infinity refused on the way in (orjson writes them as null).
"""

from __future__ import annotations

from typing import Any

import orjson

from hermes_stream.exceptions import JSONError

# Plain orjson: every option costs time on the hot path (OPT_NON_STR_KEYS
# alone added ~40% to encoding an event), and events have string keys.
_OPTIONS = 0


def dumps(value: Any) -> bytes:
    """Encode *value* as compact UTF-8 JSON."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        raise JSONError(f"cannot encode as JSON: {exc}") from exc


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode JSON; NaN and Infinity are not JSON and are refused."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise JSONError(f"not valid JSON: {exc}") from exc
