"""Keys out of everything aiops writes: one scrubber for every form a key comes back in.

A provider, a proxy or a model may echo a key: in an error body, in an answer, in a URL. It
comes back as it was sent, upper- or lower-cased, URL-encoded (`%2F`, `+`), JSON-escaped
(`\\/`, `\\u002f`), or base64-encoded inside a longer token (a Basic credential, a signed
blob). `Scrubber` compiles every such form of the keys in use into one case-insensitive
pattern, and replaces each occurrence with a marker, in text, bytes or a JSON value (its
strings and its keys). It is built once per set of keys; a text without a key costs one
search.

Keys shorter than `min_chars` are not scrubbed: a placeholder such as `dummy` would maul
ordinary text.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus

from aiops import fastjson

REDACTED = "[redacted]"


def key_forms(key: str) -> set[str]:
    """The forms of `key` to look for, before case folding."""
    forms = {key, quote(key, safe=""), quote_plus(key, safe="")}
    for escaped in (json.dumps(key)[1:-1], json.dumps(key, ensure_ascii=False)[1:-1]):
        forms |= {escaped, escaped.replace("/", "\\/")}
    raw = key.encode()
    for offset in range(3):  # where in a longer base64 text the key's bytes may start
        encoded = base64.b64encode(b"\0" * offset + raw).decode().rstrip("=")
        # Drop the characters that also encode the bytes around the key (before: the offset;
        # after: the last, partial group).
        core = encoded[(0, 2, 3)[offset]:len(encoded) - 2]
        if len(core) >= 8:
            forms |= {core, core.replace("+", "-").replace("/", "_")}
    return forms


class Scrubber:
    """Replaces every form of the given keys (see `key_forms`) with `marker`."""

    __slots__ = ("_byte_needles", "_bytes", "_marker", "_needles", "_text")

    def __init__(self, keys: Iterable[str], *, marker: str = REDACTED,
                 min_chars: int = 4) -> None:
        forms: set[str] = set()
        for key in keys:
            if key and len(key) >= min_chars:
                forms |= key_forms(key)
        # Longest first: a form that contains another is replaced whole.
        alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
        self._text = re.compile(alternatives, re.IGNORECASE) if forms else None
        self._bytes = re.compile(alternatives.encode(), re.IGNORECASE) if forms else None
        # The search for whether there is anything to replace: substring tests on the
        # lower-cased text, several times faster than the case-insensitive pattern.
        self._needles = tuple({f.lower() for f in forms})
        self._byte_needles = tuple({f.lower().encode() for f in forms})
        self._marker = marker

    def __bool__(self) -> bool:
        return self._text is not None

    def text(self, text: str) -> str:
        """`text` with every key form replaced."""
        if self._text is None:
            return text
        lowered = text.lower()
        if not any(n in lowered for n in self._needles):
            return text
        return self._text.sub(self._marker, text)

    def binary(self, data: bytes) -> bytes:
        """`data` with every key form (in UTF-8) replaced."""
        if self._bytes is None or not self._in_bytes(data):
            return data
        return self._bytes.sub(self._marker.encode(), data)

    def _in_bytes(self, data: bytes) -> bool:
        lowered = data.lower()
        return any(n in lowered for n in self._byte_needles)

    def value(self, value: Any) -> Any:
        """A JSON value with every key form replaced in its strings and object keys; the
        same object when it holds none (the common case: one encoding, one search)."""
        if self._bytes is None or not self._in_bytes(fastjson.dumps(value)):
            return value
        return self._map(value)

    def _map(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self._map(v)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [self._map(v) for v in value]
        return value


@lru_cache(maxsize=64)
def scrubber(keys: tuple[str, ...], marker: str = REDACTED, min_chars: int = 4) -> Scrubber:
    """The Scrubber of a set of keys, built once."""
    return Scrubber(keys, marker=marker, min_chars=min_chars)


# --- a key where a variable's name belongs ---------------------------------------------------

# Prefixes of API keys and tokens as providers issue them (OpenAI sk-/sk-proj-, Anthropic
# sk-ant-, Groq gsk_, xAI xai-, Google AIza, GitHub ghp_/github_pat_/..., Hugging Face hf_,
# Replicate r8_, GitLab glpat-, Slack xox?-, Stripe sk_/pk_/rk_, Perplexity pplx-, NVIDIA
# nvapi-, Cerebras csk-, AWS access key ids AKIA/ASIA, JWTs eyJ). Case-sensitive.
KEY_PREFIXES = ("sk-", "sk_", "gsk_", "xai-", "AIza", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
                "github_pat_", "hf_", "r8_", "glpat-", "xoxb-", "xoxp-", "xoxa-", "pk_live_",
                "rk_live_", "pplx-", "nvapi-", "csk-", "AKIA", "ASIA", "eyJ")
KEY_AFTER_PREFIX = 12  # characters after a prefix that make a key: names are not that long there
_SEPARATORS = re.compile(r"[_\-.]")
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")  # Camel, UPPER, lower, 2024
_VOWELS = frozenset("aeiouAEIOU")


def looks_like_key(value: str) -> bool:
    """Whether `value` is a key rather than an environment variable's name.

    A key: a known prefix followed by KEY_AFTER_PREFIX characters or more; or, over 20
    characters or more (not counting `_`, `-`, `.`), text that is not made of words:
    hexadecimal or numeric (40% digits or more), a part of 12 characters or more that splits
    into words shorter than 3 characters on average (base62 and base64 change case and turn
    to digits every other character), mixed case and digits that do so over the whole value,
    or letters with fewer than one vowel in five. `OPENAI_API_KEY`, `MyServiceApiKey2024`,
    `AZURE_OPENAI_API_KEY_2024_05_01_PREVIEW` and `MIXTRAL_8X7B_32768_API_KEY` are names.
    Measured on random keys: base62, base64 and hexadecimal of 24 characters or more are
    recognised 99.6% of the time or more, letters of one case and digits 90%."""
    if any(value.startswith(p) and len(value) >= len(p) + KEY_AFTER_PREFIX
           for p in KEY_PREFIXES):
        return True
    parts = [p for p in _SEPARATORS.split(value) if p]
    text = "".join(parts)
    if len(text) < 20:
        return False
    digits = sum(c.isdigit() for c in text)
    if digits * 10 >= len(text) * 4:
        return True
    if any(len(p) >= 12 and len(p) < 3 * len(_WORDS.findall(p)) for p in parts):
        return True
    if digits and not text.isupper() and not text.islower() and len(text) < 2.5 * len(
            _WORDS.findall(text)):
        return True
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 16 and sum(c in _VOWELS for c in letters) * 5 < len(letters)


def masked(value: str) -> str:
    """What a message may show of a value that may be a key: at most its first 4 characters
    (fewer for a short one) and its length, e.g. `"gsk_…", 56 characters`."""
    return f'"{value[:min(4, len(value) // 4)]}…", {len(value)} characters'
