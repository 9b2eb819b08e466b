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
and the providers do not. `loads_bounded` bounds the nesting of a document that may hold
lone surrogates for a later check (a provider's body, a model's JSON text); `dumps_checked`
encodes a value that no bounded reader has seen (a Python caller's input, a model's output),
refusing both.
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
    except (ValueError, TypeError):  # invalid, or a lone surrogate (escaped, or in a str),
        return json.loads(data)  # which only the stdlib reads


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
        raise Refused(f"{surrogate_problem(*where)}; send the character itself, or both "
                      "halves of its \\uXXXX surrogate pair")
    return value


def loads_bounded(data: bytes | str, max_depth: int) -> Any:
    """`loads`, refused (`Refused`) when the document nests deeper than `max_depth`, before
    anything recursive reads it. Lone surrogates are read: the caller checks the value."""
    opens = data.count("[") + data.count("{") if isinstance(data, str) else \
        data.count(b"[") + data.count(b"{")
    if opens > max_depth:  # else it cannot nest deeper: no scan
        text = data if isinstance(data, str) else data.decode("utf-8", "replace")
        if _too_deep(text, max_depth) is not None:
            raise Refused(f"values are nested deeper than {max_depth} levels")
    return loads(data)


def dumps_checked(value: Any, max_depth: int = MAX_DEPTH) -> bytes:
    """`dumps_finite` of a value that no bounded reader has checked (a Python caller's input,
    a model's output): `Refused`, saying where, when it holds a lone surrogate or nests
    deeper than `max_depth`; ValueError for NaN or Infinity."""
    try:
        encoded = to_json(value)  # refuses lone surrogates, and values over 255 levels deep
    except PydanticSerializationError:
        where = _lone_surrogate(value)  # iterative: no recursion over a deep value
        if where is not None:
            raise Refused(surrogate_problem(*where)) from None
        if _deeper_than(value, max_depth):
            raise Refused(f"values are nested deeper than {max_depth} levels") from None
        encoded = json.dumps(value, separators=(",", ":")).encode()
    if encoded.count(b"[") + encoded.count(b"{") > max_depth and \
            _too_deep(encoded.decode(), max_depth) is not None:
        raise Refused(f"values are nested deeper than {max_depth} levels")
    if b"NaN" in encoded or b"Infinity" in encoded:  # a number, or only text that says so?
        json.dumps(value, allow_nan=False)
    return encoded


def surrogate_problem(path: str, char: str) -> str:
    return (f"{path} holds a lone surrogate (U+{ord(char):04X}), which is not a Unicode "
            "character")


def _check_depth(text: str, max_depth: int) -> None:
    if text.count("[") + text.count("{") <= max_depth:  # cannot nest deeper: no scan
        return
    at = _too_deep(text, max_depth)
    if at is not None:
        line = text.count("\n", 0, at) + 1
        column = at - (text.rfind("\n", 0, at) + 1) + 1
        raise Refused(f"values are nested deeper than {max_depth} levels (line {line} "
                      f"column {column}); flatten the input")


def _too_deep(text: str, max_depth: int) -> int | None:
    """Where (an offset into `text`) the JSON in it first nests deeper than `max_depth`,
    brackets inside strings aside; None when it does not."""
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    steps = (1 if c in "[{" else -1 for c in brackets)
    if max(accumulate(steps), default=0) <= max_depth:
        return None
    depth = 0
    for m in _BRACKETS.finditer(text):  # only to say where (the value is refused anyway)
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(m.group(), 0)
        if depth > max_depth:
            return m.start()
    return None  # pragma: no cover - the scan above found it deeper


def _deeper_than(value: Any, max_depth: int) -> bool:
    """Whether a value's arrays and objects nest deeper than `max_depth` (no recursion)."""
    stack: list[tuple[int, Any]] = [(1, value)]
    while stack:
        depth, node = stack.pop()
        if isinstance(node, dict | list):
            if depth > max_depth:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack += [(depth + 1, child) for child in children]
    return False


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
