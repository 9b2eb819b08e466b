"""Compact JSON for the runner's hot path, through pydantic-core's serializer and parser.

Every execution encodes a request body and a prompt hash, decodes a response and writes a log
row; at a batch's thousands of calls a second the client's CPU is the limit, and pydantic-core
(already here with pydantic) does this work 4–15× faster than the stdlib `json`.

`dumps` writes what `json.dumps(value, separators=(",", ":"), ensure_ascii=False)` writes for
strings, byte for byte (tests/unit/test_fastjson.py), so hashes made from it do not change; a
value it refuses (a lone surrogate from a JSON `\\ud800` escape) goes through the stdlib,
escaped. `loads` reads what `json.loads` reads, including NaN and Infinity, which callers
that need strict JSON check for themselves; what pydantic-core refuses is read (or refused)
by the stdlib.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import PydanticSerializationError, from_json, to_json


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON."""
    try:
        return to_json(value)
    except PydanticSerializationError:
        return json.dumps(value, separators=(",", ":")).encode()


def dumps_finite(value: Any) -> bytes:
    """`dumps`, refusing NaN and Infinity (JSON has neither; PostgreSQL's JSON columns refuse
    them) with ValueError, as `json.dumps(allow_nan=False)` does."""
    encoded = dumps(value)
    if b"NaN" in encoded or b"Infinity" in encoded:  # a number, or only text that says so?
        json.dumps(value, allow_nan=False)
    return encoded


def loads(data: bytes | str) -> Any:
    """A JSON document; ValueError if it is not one."""
    try:
        return from_json(data)
    except ValueError:  # invalid, or a lone surrogate escape, which only the stdlib reads
        return json.loads(data)
