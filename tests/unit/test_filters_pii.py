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


@pytest.mark.parametrize(("text", "expected"), [
    # a card next to another number used to be checked (and fail Luhn) as one long number
    ("qty 2 4111 1111 1111 1111", "qty 2 [CARD]"),
    ("items 12 4111-1111-1111-1111 ok", "items 12 [CARD] ok"),
    ("4111 1111 1111 1111 20", "[CARD] 20"),
    ("card 4111  1111  1111  1111", "card [CARD]"),
    # international numbers whose area code has one digit were half redacted
    ("+33 1 23 45 67 89", "[PHONE]"),
    ("+61 2 9876 5432", "[PHONE]"),
    ("+81 3-1234-5678", "[PHONE]"),
    ("+353 1 234 5678", "[PHONE]"),
    ("(+44) 20 7946 0958", "[PHONE]"),
    ("tel:+14155552671", "tel:[PHONE]"),
    ("call 555-1234.", "call [PHONE]."),
])
def test_redacts_numbers_next_to_numbers_and_international_formats(text: str,
                                                                   expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize("text", [
    "due 2024-05-01",
    "on 2024-05-01 12:30:00",
    "2024-05-01T12:00:00Z",
    "born 31.12.1990",
    "at 2024.05.01",
    "host 192.168.100.200",
    "in 1999-2004",
    "order ORD-2024-000123",
    "order #1234-5678-90",
    "ISBN 978-3-16-148410-0",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "zip 94105-1234",
    "macOS 10.15.7",
])
def test_leaves_dates_addresses_and_identifiers_alone(text: str) -> None:
    assert redact_text(text) == text
