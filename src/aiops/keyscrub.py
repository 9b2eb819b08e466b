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
