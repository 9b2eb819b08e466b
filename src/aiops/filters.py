"""Content filters: `pii_redact` (e-mail addresses, phone and card numbers) and `deny`.

Filters apply to every string inside a JSON value. `pii_redact` replaces what it finds with a
placeholder ([EMAIL], [PHONE], [CARD]); card numbers must pass the Luhn check, so order numbers
and timestamps are left alone. `deny` refuses a value whose text matches the pattern: on input
it is an input error, on output an output error, and the matched text is never echoed. Deny
patterns run on RE2 (`aiops.patterns`): a caller's text cannot make them backtrack.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiops.patterns import compile_linear

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# A run of digit groups; a card is the whole run or, when the run is longer (a quantity
# before it, a year after it), a window of its groups (see `_cards`).
DIGIT_RUN = re.compile(r"(?<!\d)\d+(?:(?:[ -]|  )\d+)*(?!\d)")
# Not inside an identifier (ORD-2024-..., #1234-..., the tail of a UUID, a version number),
# and not stopping short of one.
PHONE = re.compile(
    r"(?<![\w+#])(?<!\w[-/])(?<!\d\.)"
    r"(?:(?:\+|\(\+)\d{1,3}\)?[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}"
    r"|(?:\(\d{1,4}\)[ .-]?)?\d{2,4})"
    r"(?:[ .-]?\d{2,4}){1,4}(?!\w)(?![-./:]\d)")
# Punctuated numbers that look like phone numbers and are not: dates, IPv4 addresses, year
# ranges, US ZIP+4 codes.
NOT_PHONE = re.compile(
    r"\d{4}([-./])\d{1,2}\1\d{1,2}|\d{1,2}([-./])\d{1,2}\2\d{2,4}"
    r"|\d{1,3}(?:\.\d{1,3}){3}|(?:1[89]|20)\d\d ?- ?(?:1[89]|20)\d\d|\d{5}-\d{4}")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _cards(match: re.Match[str]) -> str:
    """The run with its card numbers replaced: the whole run, else the longest leftmost
    window of whole groups of 3+ digits each (a card's groups are 4 to 6 digits)."""
    text = match.group()
    groups = [(m.start(), m.end()) for m in re.finditer(r"\d+", text)]
    if _is_card(re.sub(r"\D", "", text)):
        return "[CARD]"
    out, pos, i = [], 0, 0
    while i < len(groups):
        digits, best = "", None
        for j in range(i, len(groups)):  # at most 19 digits: linear in the run's length
            start, end = groups[j]
            digits += text[start:end]
            if end - start < 3 or len(digits) > 19:
                break
            if _is_card(digits):
                best = j
        if best is None:
            i += 1
            continue
        out += [text[pos:groups[i][0]], "[CARD]"]
        pos, i = groups[best][1], best + 1
    return "".join(out) + text[pos:]


def _phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    text = match.group()
    if NOT_PHONE.fullmatch(text):
        return text
    # A phone number has 7 to 15 digits and some phone punctuation or a leading +.
    if 7 <= len(digits) <= 15 and (text.startswith(("+", "(")) or re.search(r"[ .()-]", text)
                                   or len(digits) >= 10):
        return "[PHONE]"
    return text


def redact_text(text: str) -> str:
    """The text with e-mail addresses, card numbers and phone numbers replaced."""
    if "@" in text:
        text = EMAIL.sub("[EMAIL]", text)
    if any(c.isdigit() for c in text):
        text = DIGIT_RUN.sub(_cards, text)
        text = PHONE.sub(_phone, text)
    return text


def map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [map_strings(v, fn) for v in value]
    return value


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


@dataclass(frozen=True, kw_only=True)
class FilterChain:
    """Compiled filters of one side (input or output) of a version."""

    redact: bool = False
    deny: tuple[Any, ...] = ()  # RE2 patterns

    @classmethod
    def from_rules(cls, rules: Iterable[Mapping[str, Any]]) -> FilterChain:
        """The chain of `rules`; ValueError for a deny pattern RE2 cannot run."""
        redact = False
        deny = []
        for rule in rules:
            if rule.get("pii_redact"):
                redact = True
            if rule.get("deny"):
                deny.append(compile_linear(rule["deny"]))
        return cls(redact=redact, deny=tuple(deny))

    @property
    def empty(self) -> bool:
        return not self.redact and not self.deny

    def redact_message(self, text: str) -> str:
        """A message that may quote the filtered value (a validation error), redacted the same
        way, so that what the filter removes does not come back through an error or a log."""
        return redact_text(text) if self.redact else text

    def apply(self, value: Any) -> tuple[Any, str | None]:
        """(filtered value, the denying pattern or None). Redaction runs first."""
        if self.redact:
            value = map_strings(value, redact_text)
        for pattern in self.deny:
            texts = [value] if isinstance(value, str) else [*_strings(value), json.dumps(value)]
            if any(pattern.search(t) for t in texts):
                return value, pattern.pattern
        return value, None
