"""Canonical JSON and the two hashes of a function (DESIGN §4).

The behaviour hash covers what changes what a call returns; the metadata hash covers what
describes or governs the function and changes in place. Tests are in neither. Both are sha256
over canonical JSON of the validated spec (defaults materialised, keys sorted, newlines
normalised), so formatting, comments, key order and flow-vs-block style change neither.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from aiops.spec import FunctionSpec

BEHAVIOUR_FIELDS = ("provider", "model", "configuration", "prompt", "input_schema",
                    "output_schema", "fallbacks", "retry", "filters")
METADATA_FIELDS = ("description", "status", "metadata", "limits", "access", "alerts")


def _normalise(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\r\n", "\n").replace("\r", "\n")
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text, normalised newlines."""
    return json.dumps(_normalise(value), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def behaviour_content(spec: FunctionSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", include=set(BEHAVIOUR_FIELDS))


def metadata_content(spec: FunctionSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", include=set(METADATA_FIELDS))


@dataclass(frozen=True, kw_only=True)
class Fingerprint:
    behaviour: str
    metadata: str


def fingerprint(spec: FunctionSpec) -> Fingerprint:
    return Fingerprint(
        behaviour=content_hash(behaviour_content(spec)),
        metadata=content_hash(metadata_content(spec)),
    )


def content_hash(content: dict[str, Any]) -> str:
    """sha256 over `canonical_json(content)`, for JSON content: every key a string, as in
    `model_dump(mode="json")` or JSON read back (a saved plan, a database row).

    Canonical JSON differs from plain sorted JSON only by the newlines it normalises, so
    the value is walked in Python only when a text holds a carriage return: a plan hashes
    every function's contents, and every version row's."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)
    return sha256_hex(canonical_json(content) if "\\r" in text else text)
