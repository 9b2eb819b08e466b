"""Content filters: `pii_redact` (e-mail addresses, phone and card numbers) and `deny`.

Filters apply to every string inside a JSON value. `pii_redact` replaces what it finds with a
placeholder ([EMAIL], [PHONE], [CARD]); card numbers must pass the Luhn check, so order numbers
and timestamps are left alone. `deny` refuses a value whose text matches the pattern: on input
it is an input error, on output an output error, and the matched text is never echoed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}(?!\w)")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[CARD]" if 13 <= len(digits) <= 19 and luhn_ok(digits) else match.group()


def _phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    text = match.group()
    # A phone number has 7 to 15 digits and some phone punctuation or a leading +.
    if 7 <= len(digits) <= 15 and (text.startswith("+") or re.search(r"[ .()-]", text)
                                   or len(digits) >= 10):
        return "[PHONE]"
    return text


def redact_text(text: str) -> str:
    """The text with e-mail addresses, card numbers and phone numbers replaced."""
    if "@" in text:
        text = EMAIL.sub("[EMAIL]", text)
    if any(c.isdigit() for c in text):
        text = CARD.sub(_card, text)
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
    deny: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def from_rules(cls, rules: Iterable[Mapping[str, Any]]) -> FilterChain:
        redact = False
        deny = []
        for rule in rules:
            if rule.get("pii_redact"):
                redact = True
            if rule.get("deny"):
                deny.append(re.compile(rule["deny"]))
        return cls(redact=redact, deny=tuple(deny))

    @property
    def empty(self) -> bool:
        return not self.redact and not self.deny

    def apply(self, value: Any) -> tuple[Any, str | None]:
        """(filtered value, the denying pattern or None). Redaction runs first."""
        if self.redact:
            value = map_strings(value, redact_text)
        for pattern in self.deny:
            texts = [value] if isinstance(value, str) else [*_strings(value), json.dumps(value)]
            if any(pattern.search(t) for t in texts):
                return value, pattern.pattern
        return value, None
