"""Numbers and strings for the mock provider's generated output: within bounds and
`multipleOf` (`number`), in a `format` (`FORMATS`), matching a `pattern` (`string_for`). Pure.

`string_for(pattern, least, most, seed)` walks Python's parse of the regex (`re._parser`):
literals, classes, categories, groups, alternatives (one drawn from the seed), repeats (at
their least, longer only to reach `least` characters), anchors and backreferences. The
regex is read as ECMAScript and Rust write it too: `(?<name>...)`, inline flags anywhere,
`\\p{L}`-style classes (as their ASCII part). Lookarounds and conditional groups are beyond
it: Unfit says so, as it does when no string of the length fits. Every string is checked
with `re.search` before it is returned.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

_SRE: Any = importlib.import_module("re._constants")  # no stubs: typed as Any here
_PARSER: Any = importlib.import_module("re._parser")
_NAMED_GROUP = re.compile(r"\(\?<(?![=!])")
_INLINE_FLAGS = re.compile(r"(?<!\\)\(\?([aimsux]+)\)")
_FLAGS = {"a": re.ASCII, "i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL,
          "u": re.UNICODE, "x": re.VERBOSE}
# Unicode classes (`\p{..}`) as the ASCII letters and digits they hold.
_CLASSES = {"L": "a-zA-Z", "Letter": "a-zA-Z", "Alphabetic": "a-zA-Z", "Lu": "A-Z",
            "Uppercase_Letter": "A-Z", "Ll": "a-z", "Lowercase_Letter": "a-z", "N": "0-9",
            "Nd": "0-9", "Number": "0-9", "Decimal_Number": "0-9"}
_TOKENS = re.compile(r"\\p\{(\w+)\}|\\.|\[|\]|.", re.S)
_PREFERRED = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_. "
_REPEATS = frozenset(getattr(_SRE, n) for n in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")
                     if hasattr(_SRE, n))


class Unfit(ValueError):
    """No value was found for the keywords; the message says why."""


# --- numbers --------------------------------------------------------------------------------


def _bounds(s: dict[str, Any]) -> tuple[float | None, bool, float | None, bool]:
    """(low, low is exclusive, high, high is exclusive), draft 4's boolean form too."""
    low, high = s.get("minimum"), s.get("maximum")
    low_ex = high_ex = False
    ex_low, ex_high = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
    if isinstance(ex_low, bool):
        low_ex = ex_low and low is not None
    elif ex_low is not None and (low is None or ex_low >= low):
        low, low_ex = ex_low, True
    if isinstance(ex_high, bool):
        high_ex = ex_high and high is not None
    elif ex_high is not None and (high is None or ex_high <= high):
        high, high_ex = ex_high, True
    return low, low_ex, high, high_ex


def number(s: dict[str, Any], integer: bool, variant: int) -> int | float:
    """A number within the bounds and `multipleOf` of `s`; `variant` picks another."""
    low, low_ex, high, high_ex = _bounds(s)
    step = s.get("multipleOf")
    if integer:
        lo = None if low is None else (math.floor(low) + 1 if low_ex else math.ceil(low))
        hi = None if high is None else (math.ceil(high) - 1 if high_ex else math.floor(high))
        unit = 1 if step is None else _integer_step(step)
        lo = None if lo is None else -(-lo // unit) * unit
        hi = None if hi is None else hi // unit * unit
        if lo is not None and hi is not None and lo > hi:
            raise Unfit(f"no integer{f' multiple of {step}' if step else ''} lies between "
                        f"{low} and {high}")
        start = max(unit, lo) if lo is not None else unit
        start = min(start, hi) if hi is not None else start
        value = start + variant * unit
        if hi is not None and value > hi:
            base = lo if lo is not None else start
            value = base + (value - base) % (hi - base + unit)
        return int(value)
    if step is not None:
        return _float_multiple(float(step), low, low_ex, high, high_ex, variant)
    guess = 0.5 + variant
    if low is not None and (guess < low or (low_ex and guess <= low)):
        guess = low + 0.5 + variant if high is None else low + (high - low) / (2 + variant)
    if high is not None and (guess > high or (high_ex and guess >= high)):
        guess = high - 0.5 - variant if low is None else low + (high - low) / (2 + variant)
    if (low is not None and (guess < low or (low_ex and guess <= low))) or (
            high is not None and (guess > high or (high_ex and guess >= high))):
        raise Unfit(f"no number lies between {low} and {high}")
    return guess


def _integer_step(step: Any) -> int:
    """The smallest positive integer that is a multiple of `step`, as validators compute it
    (`n / step` a whole number in floating point)."""
    if isinstance(step, int) or float(step).is_integer():
        return int(step)
    numerator = Decimal(str(step)).as_integer_ratio()[0]
    for k in range(1, 64):
        if (numerator * k / step).is_integer():
            return numerator * k
    raise Unfit(f"no integer found that is a multiple of {step}")


def _float_multiple(step: float, low: float | None, low_ex: bool, high: float | None,
                    high_ex: bool, variant: int) -> float:
    """A multiple of `step` in the bounds whose quotient is whole in floating point, as
    validators check it (0.3 / 0.1 is not)."""
    exact = Decimal(str(step))
    first = 1 if low is None else math.floor(low / step)
    found: list[float] = []
    for k in range(first, first + 64 + variant):
        value = float(exact * k)
        if high is not None and (value > high or (high_ex and value >= high)):
            break
        if (low is None or value > low or (not low_ex and value == low)) and (
                value / step).is_integer():
            found.append(value)
    if not found:
        raise Unfit(f"no multiple of {step} lies between {low} and {high}")
    return found[variant % len(found)]


def _uuid(variant: int) -> str:
    digest = hashlib.md5(f"mock-uuid-{variant}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"


FORMATS: dict[str, Callable[[int], str]] = {
    "date-time": lambda v: f"2024-01-{1 + v % 28:02d}T00:00:00Z",
    "date": lambda v: f"2024-01-{1 + v % 28:02d}",
    "time": lambda v: f"12:{v % 60:02d}:00Z",
    "duration": lambda v: f"P{1 + v}D",
    "email": lambda v: f"mock{v or ''}@example.com",
    "idn-email": lambda v: f"mock{v or ''}@example.com",
    "hostname": lambda v: f"mock{v or ''}.example.com",
    "idn-hostname": lambda v: f"mock{v or ''}.example.com",
    "ipv4": lambda v: f"192.0.2.{1 + v % 254}",
    "ipv6": lambda v: f"2001:db8::{1 + v % 65535:x}",
    "uri": lambda v: f"https://example.com/mock{v or ''}",
    "uri-reference": lambda v: f"https://example.com/mock{v or ''}",
    "iri": lambda v: f"https://example.com/mock{v or ''}",
    "iri-reference": lambda v: f"https://example.com/mock{v or ''}",
    "url": lambda v: f"https://example.com/mock{v or ''}",
    "uri-template": lambda v: f"https://example.com/mock{v or ''}/{{id}}",
    "uuid": _uuid,
    "json-pointer": lambda v: f"/mock{v or ''}",
    "relative-json-pointer": lambda v: f"{v}",
    "regex": lambda v: f"^mock{v or ''}$",
}


# --- patterns -------------------------------------------------------------------------------


def python_regex(pattern: str) -> tuple[str, int]:
    """An ECMAScript (or Rust) regex as Python's `re` reads it, and its flags."""
    flags = 0
    for found in _INLINE_FLAGS.findall(pattern):
        for letter in found:
            flags |= _FLAGS[letter]
    out: list[str] = []
    in_class = False
    for token in _TOKENS.finditer(_INLINE_FLAGS.sub("", pattern)):
        text, name = token.group(0), token.group(1)
        if name is not None and name in _CLASSES:
            text = _CLASSES[name] if in_class else f"[{_CLASSES[name]}]"
        elif text == "[" and not in_class:
            in_class = True
        elif text == "]" and in_class:
            in_class = False
        out.append(text)
    return _NAMED_GROUP.sub("(?P<", "".join(out)), flags


def matches(pattern: str, text: str) -> bool:
    python, flags = python_regex(pattern)
    try:
        return re.search(python, text, flags) is not None
    except re.error:
        return False


def string_for(pattern: Any, least: int, most: int | None, seed: int) -> str:
    """A string that `pattern` matches (a search, as in JSON Schema), of `least` to `most`
    characters."""
    if not isinstance(pattern, str):
        raise Unfit(f"pattern {pattern!r} is not a string")
    python, flags = python_regex(pattern)
    try:
        parsed = _PARSER.parse(python, flags)
    except (re.error, OverflowError, RecursionError) as exc:
        raise Unfit(f"pattern {pattern!r} is not a regular expression the mock can "
                             f"read ({exc})") from None
    items = list(parsed)
    at_start = bool(items) and items[0] in ((_SRE.AT, _SRE.AT_BEGINNING),
                                            (_SRE.AT, _SRE.AT_BEGINNING_STRING))
    at_end = bool(items) and items[-1] in ((_SRE.AT, _SRE.AT_END), (_SRE.AT, _SRE.AT_END_STRING))
    writer = _Writer(pattern, seed, budget=max(0, least - parsed.getwidth()[0]))
    text = writer.write(items)
    if len(text) < least and not (at_start and at_end):  # room outside the match
        pad = "x" * (least - len(text))
        text = pad + text if at_end else text + pad
    if not re.search(python, text, flags) or len(text) < least or (
            most is not None and len(text) > most):
        raise Unfit(f"no string of {least} to {most} characters matching pattern "
                             f"{pattern!r} was found")
    return text


class _Writer:
    def __init__(self, pattern: str, seed: int, budget: int) -> None:
        self.pattern = pattern
        self.seed = seed
        self.budget = budget  # characters still wanted beyond the shortest match
        self.turn = 0
        self.groups: dict[int, str] = {}

    def unsupported(self, what: str) -> Unfit:
        return Unfit(f"pattern {self.pattern!r} uses {what}, which the mock's string "
                              "generator does not write")

    def choice(self, n: int) -> int:
        self.turn += 1
        return (self.seed + self.turn * 7919) % n if n > 1 else 0

    def write(self, items: Any) -> str:
        return "".join(self.one(op, av) for op, av in items)

    def one(self, op: Any, av: Any) -> str:
        c = _SRE
        if op is c.LITERAL:
            return chr(av)
        if op is c.NOT_LITERAL:
            return next(ch for ch in _PREFERRED if ord(ch) != av)
        if op is c.ANY:
            return "a"
        if op is c.IN:
            return self.char_in(av)
        if op is c.AT:
            return ""
        if op is c.BRANCH:
            return self.write(av[1][self.choice(len(av[1]))])
        if op is c.SUBPATTERN:
            group, _, _, inner = av
            text = self.write(inner)
            if group is not None:
                self.groups[group] = text
            return text
        if op in _REPEATS:
            low, high, inner = av
            high = 1 << 16 if high is c.MAXREPEAT else high
            width = max(1, inner.getwidth()[0])
            extra = min(high - low, self.budget // width)
            self.budget -= extra * width
            return "".join(self.write(inner) for _ in range(low + extra))
        if op is c.GROUPREF:
            return self.groups.get(av, "")
        if op is getattr(c, "ATOMIC_GROUP", None):
            return self.write(av)
        what = {c.ASSERT: "a lookahead or lookbehind", c.ASSERT_NOT: "a lookahead or lookbehind",
                c.GROUPREF_EXISTS: "a conditional group"}.get(op, f"`{op}`")
        raise self.unsupported(what)

    def char_in(self, items: list[tuple[Any, Any]]) -> str:
        c = _SRE
        if items and items[0][0] is c.NEGATE:
            return next((ch for ch in _PREFERRED if not _in_class(items[1:], ch)), "~")
        op, av = items[self.choice(len(items))]
        if op is c.LITERAL:
            return chr(av)
        if op is c.RANGE:
            return chr(av[0] + self.choice(av[1] - av[0] + 1))
        if op is c.CATEGORY and av is c.CATEGORY_DIGIT:
            return "0123456789"[self.choice(10)]
        if op is c.CATEGORY and av is c.CATEGORY_WORD:
            return "abcdefghij"[self.choice(10)]
        return next((ch for ch in _PREFERRED if _in_class([(op, av)], ch)), "a")


def _in_class(items: list[tuple[Any, Any]], ch: str) -> bool:
    c = _SRE
    code = ord(ch)
    word = ch.isalnum() or ch == "_"
    for op, av in items:
        if (op is c.LITERAL and av == code) or (op is c.RANGE and av[0] <= code <= av[1]):
            return True
        if op is c.CATEGORY and {
                c.CATEGORY_DIGIT: ch.isdigit(), c.CATEGORY_NOT_DIGIT: not ch.isdigit(),
                c.CATEGORY_WORD: word, c.CATEGORY_NOT_WORD: not word,
                c.CATEGORY_SPACE: ch.isspace(), c.CATEGORY_NOT_SPACE: not ch.isspace(),
        }.get(av, False):
            return True
    return False
