"""The key scrubber: every form a key comes back in is replaced; other text is left as it is."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from aiops.keyscrub import Scrubber
from aiops.providers import scrub

KEY = "sk-proj/Abc+123_xyz-SECRET"
SCRUB = Scrubber([KEY, "dummy-but-long"])


@pytest.mark.parametrize("text", [
    KEY, KEY.upper(), KEY.lower(), quote(KEY, safe=""), quote(KEY, safe="").lower(),
    quote_plus(KEY), json.dumps(KEY)[1:-1].replace("/", "\\/"),
    base64.b64encode(KEY.encode()).decode(),
    base64.b64encode(f"user:{KEY}".encode()).decode(),
    base64.b64encode(f"me:{KEY}".encode()).decode(),
    base64.urlsafe_b64encode(f"x{KEY}".encode()).decode(),
])
def test_every_form_of_a_key_is_replaced(text: str) -> None:
    out = SCRUB.text(f"echo: {text} done")
    assert "[redacted]" in out and out.startswith("echo: ") and out.endswith(" done")
    assert KEY.lower() not in out.lower() and "Abc+123".lower() not in out.lower()
    assert SCRUB.binary(text.encode()).count(b"[redacted]") == 1


def test_values_are_scrubbed_in_strings_and_keys_and_left_alone_when_clean() -> None:
    clean = {"a": ["x", 1, None, {"b": True}]}
    assert SCRUB.value(clean) is clean
    dirty = {"a": [KEY.upper(), {quote(KEY, safe=""): 2}], "n": 3}
    assert SCRUB.value(dirty) == {"a": ["[redacted]", {"[redacted]": 2}], "n": 3}


def test_short_keys_are_not_scrubbed_and_no_key_is_a_no_op() -> None:
    assert Scrubber(["abc"]).text("abc abc") == "abc abc"
    nothing = Scrubber([])
    assert not nothing and nothing.text(KEY) == KEY and nothing.value([KEY]) == [KEY]


def test_provider_errors_are_scrubbed_of_any_form_and_of_bearer_tokens() -> None:
    text = f"401: {KEY.upper()} / {quote(KEY, safe='')} / Authorization: Bearer abcdefgh1234"
    assert scrub(text, (KEY,)) == "401: [redacted] / [redacted] / Authorization: Bearer [redacted]"
