"""pii_redact and deny filters."""

from __future__ import annotations

import pytest

from aiops.filters import FilterChain, luhn_ok, redact_text


@pytest.mark.parametrize(("text", "expected"), [
    ("write to jane.doe+news@example.co.uk now", "write to [EMAIL] now"),
    ("card 4111 1111 1111 1111 exp", "card [CARD] exp"),
    ("card 4111-1111-1111-1111", "card [CARD]"),
    ("call +1 (415) 555-2671 today", "call [PHONE] today"),
    ("call 020 7946 0958", "call [PHONE]"),
    ("ring 0612345678", "ring [PHONE]"),
])
def test_redacts(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize("text", [
    "order 4111 1111 1111 1112 shipped",  # fails Luhn: not a card
    "in 2024 we sold 350 units",
    "version 1.2.3 released",
    "no digits at all",
])
def test_leaves_other_text_alone(text: str) -> None:
    assert redact_text(text) == text


def test_luhn() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")


def test_chain_redacts_nested_strings_and_denies() -> None:
    chain = FilterChain.from_rules([{"pii_redact": True}, {"deny": "(?i)api[_-]?key"}])
    value, denied = chain.apply({"a": ["mail a@b.io"], "n": 4, "b": {"c": "ok"}})
    assert value == {"a": ["mail [EMAIL]"], "n": 4, "b": {"c": "ok"}} and denied is None
    _, denied = chain.apply({"text": "here is my API-KEY"})
    assert denied == "(?i)api[_-]?key"
    _, denied = chain.apply("the api_key is x")
    assert denied is not None
    assert FilterChain.from_rules([]).empty
