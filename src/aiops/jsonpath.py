"""A small JSON path evaluator for golden-test assertions: `$`, `.key`, `['key']`, `[n]`, `[*]`.

Why not jsonpath-ng: the assertions need only this subset, and they need to say *where* a
path stopped matching (`$.entities[3]: index 3 is out of range; the array has 2 items`), which
a general engine reports as an empty result. The subset is small enough to own (under 200
lines, no parser generator; jsonpath-ng brings ply). Filters (`[?(...)]`), slices and
recursive descent (`..`) are refused with a message rather than half-supported.

`parse(text)` -> segments (or `JsonPathError`); `resolve(segments, document)` -> every value
the path selects with its concrete path (`$.entities[0].kind`), or where and why it did not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class JsonPathError(ValueError):
    """A path outside the supported subset; `position` is the 0-based offset of the problem."""

    def __init__(self, message: str, *, path: str, position: int) -> None:
        super().__init__(f"{message} at position {position} of `{path}`")
        self.path = path
        self.position = position


class _Wildcard:
    def __repr__(self) -> str:
        return "*"


WILDCARD = _Wildcard()
Segment = str | int | _Wildcard

_NAME = re.compile(r"[^\W\d][\w\-]*")  # unicode letters too: keys are not only English
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")
_STAR = re.compile(r"\[\s*\*\s*\]|\.\*")
_QUOTED = re.compile(r"""\[\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*\]""")


def parse(text: str) -> tuple[Segment, ...]:
    """Segments of a path like `$.items[0]['a key'].name` (raises `JsonPathError`)."""
    if not text.startswith("$"):
        raise JsonPathError("a path starts with `$`", path=text, position=0)
    segments: list[Segment] = []
    pos = 1
    while pos < len(text):
        if text.startswith("..", pos):
            raise JsonPathError("recursive descent `..` is not supported", path=text,
                                position=pos)
        if m := _STAR.match(text, pos):
            segments.append(WILDCARD)
        elif text[pos] == ".":
            m = _NAME.match(text, pos + 1)
            if not m:
                raise JsonPathError("expected a key name after `.` (use ['...'] for other keys)",
                                    path=text, position=pos + 1)
            segments.append(m.group(0))
        elif m := _INDEX.match(text, pos):
            segments.append(int(m.group(1)))
        elif m := _QUOTED.match(text, pos):
            raw = m.group(1) if m.group(1) is not None else m.group(2)
            segments.append(re.sub(r"\\(.)", r"\1", raw))
        elif text[pos] == "[":
            raise JsonPathError("unsupported selector (supported: [n], [*], ['key'])",
                                path=text, position=pos)
        else:
            raise JsonPathError(f"unexpected `{text[pos]}`", path=text, position=pos)
        pos = m.end()
    return tuple(segments)


def format_path(segments: tuple[Segment, ...] | list[Segment]) -> str:
    """The concrete text of a path: `$.entities[0]['a key']`."""
    out = "$"
    for seg in segments:
        if isinstance(seg, _Wildcard):
            out += "[*]"
        elif isinstance(seg, int):
            out += f"[{seg}]"
        elif _NAME.fullmatch(seg):
            out += f".{seg}"
        else:
            out += "['" + seg.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return out


@dataclass(frozen=True, kw_only=True)
class Match:
    path: str  # concrete: $.entities[0].kind
    value: Any


@dataclass(frozen=True, kw_only=True)
class Missing:
    """Where a path stopped matching and why."""

    path: str  # the concrete path that does not exist
    reason: str


@dataclass(frozen=True, kw_only=True)
class Resolution:
    matches: tuple[Match, ...]
    missing: tuple[Missing, ...]

    @property
    def found(self) -> bool:
        return bool(self.matches) and not self.missing


def kind_of(value: Any) -> str:
    """`a string`, `an array`, ...: a JSON value's type in words, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def resolve(segments: tuple[Segment, ...], document: Any) -> Resolution:
    """Every value `segments` selects in `document`, and every place it found nothing."""
    matches: list[Match] = []
    missing: list[Missing] = []

    def walk(node: Any, i: int, here: list[Segment]) -> None:
        if i == len(segments):
            matches.append(Match(path=format_path(here), value=node))
            return
        seg = segments[i]
        if isinstance(seg, _Wildcard):
            if isinstance(node, list):
                items: list[tuple[Segment, Any]] = list(enumerate(node))
            elif isinstance(node, dict):
                items = list(node.items())
            else:
                missing.append(Missing(path=format_path(here),
                                       reason=f"is {kind_of(node)}, not an array or object"))
                return
            if not items:
                missing.append(Missing(path=format_path(here),
                                       reason=f"is an empty {'array' if isinstance(node, list) else 'object'}"))
            for key, child in items:
                walk(child, i + 1, [*here, key])
        elif isinstance(seg, int):
            if not isinstance(node, list):
                missing.append(Missing(path=format_path(here),
                                       reason=f"is {kind_of(node)}, not an array"))
                return
            index = seg + len(node) if seg < 0 else seg
            if not 0 <= index < len(node):
                missing.append(Missing(
                    path=format_path([*here, seg]),
                    reason=f"index {seg} is out of range; the array has {len(node)} item(s)"))
                return
            walk(node[index], i + 1, [*here, index])
        else:
            if not isinstance(node, dict):
                missing.append(Missing(path=format_path(here),
                                       reason=f"is {kind_of(node)}, not an object"))
                return
            if seg not in node:
                keys = ", ".join(sorted(map(str, node))) or "none"
                missing.append(Missing(path=format_path([*here, seg]),
                                       reason=f"no such key; the object's keys: {keys}"))
                return
            walk(node[seg], i + 1, [*here, seg])

    walk(document, 0, [])
    return Resolution(matches=tuple(matches), missing=tuple(missing))


def find(path: str, document: Any) -> Resolution:
    """Parse `path` and resolve it in `document`."""
    return resolve(parse(path), document)
