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

`loads_input` reads a document from outside aiops (a run's input): it bounds the nesting
before anything recursive (the stdlib parser, jsonschema, the renderer) touches the value, and
refuses lone surrogates, which JSON's `\\uXXXX` escapes allow but Unicode, UTF-8, PostgreSQL
and the providers do not.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
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


MAX_DEPTH = 100  # nesting bound of an input: arrays and objects, the outermost one included
_STRINGS = re.compile(r'"(?:[^"\\]++|\\.)*+"')  # possessive: linear on any text
_NOT_BRACKETS = re.compile(r"[^\[\]{}]++")
_BRACKETS = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[{]|[\]}]')


class Refused(ValueError):
    """JSON the parser could read, refused because of a bound or a character."""


def loads_input(text: str, max_depth: int = MAX_DEPTH) -> Any:
    """A JSON document from outside aiops. ValueError when it is not JSON (the stdlib's
    message, with line and column); `Refused`, saying where, when it nests deeper than
    `max_depth` or holds a lone surrogate."""
    _check_depth(text, max_depth)
    try:
        return from_json(text)  # refuses lone surrogates (escaped, or in the text itself)
    except (ValueError, TypeError):
        value = json.loads(text)  # not JSON: the stdlib's message; else find what was refused
    where = _lone_surrogate(value)
    if where is not None:
        path, char = where
        raise Refused(f"{path} holds a lone surrogate (U+{ord(char):04X}), which is not a "
                      "Unicode character; send the character itself, or both halves of its "
                      "\\uXXXX surrogate pair")
    return value


def _check_depth(text: str, max_depth: int) -> None:
    if text.count("[") + text.count("{") <= max_depth:  # cannot nest deeper: no scan
        return
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    steps = (1 if c in "[{" else -1 for c in brackets)
    if max(accumulate(steps), default=0) <= max_depth:
        return
    depth = 0
    for m in _BRACKETS.finditer(text):  # only to say where (the value is refused anyway)
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(m.group(), 0)
        if depth > max_depth:
            line = text.count("\n", 0, m.start()) + 1
            column = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
            raise Refused(f"values are nested deeper than {max_depth} levels (line {line} "
                          f"column {column}); flatten the input")


def _lone_surrogate(value: Any) -> tuple[str, str] | None:
    """(JSON path, the surrogate) of the first string, key or value, that holds one."""
    stack: list[tuple[str, Any]] = [("$", value)]  # no recursion: the caller bounded depth
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            for k, v in reversed(node.items()):
                if (char := _surrogate_in(k)) is not None:
                    return f"{path} (a key)", char
                stack.append((f"{path}.{k}", v))
        elif isinstance(node, list):
            stack += [(f"{path}[{i}]", v) for i, v in reversed(list(enumerate(node)))]
        elif isinstance(node, str) and (char := _surrogate_in(node)) is not None:
            return path, char
    return None


def _surrogate_in(text: str) -> str | None:
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return text[exc.start]
    return None
