"""Fingerprints: formatting never changes them; behaviour and metadata are told apart."""

from __future__ import annotations

import hashlib

import pytest
import yaml

from aiops.fingerprint import canonical_json, content_hash, fingerprint
from aiops.loader import load_sources
from tests.factories import PROVIDERS, dump, make_function

FLOW = b"""
# comment
apiVersion: aiops/v1
name: summarize
version: 1.2.0
description: Summarize an article.
provider: groq
model: llama-3.1-8b-instant
configuration: {max_tokens: 400, temperature: 0.2}
prompt: [{role: system, content: You are a concise editor.},
         {content: "Summarize in {{ bullets }} bullets:\\r\\n{{ text }}\\n", role: user}]
input_schema: {additionalProperties: false, type: object, required: [text], properties: {
  bullets: {default: 3, maximum: 10, minimum: 1, type: integer},
  text: {minLength: 1, type: string}}}
output_schema:
  properties:
    bullets:
      items: {type: string}
      type: array
  required: [bullets]
  type: object
retry: {max_attempts: 3}   # an explicit default
"""


def _spec(text: bytes):  # type: ignore[no-untyped-def]
    project = load_sources({"functions/summarize/function.yaml": text,
                            "providers.yaml": dump(PROVIDERS)})
    assert project.ok, [d.render() for d in project.diagnostics]
    return project.functions["summarize"].spec


def test_formatting_order_comments_and_defaults_change_no_hash() -> None:
    block = _spec(dump(make_function(tests=None)))
    flow = _spec(FLOW)
    assert fingerprint(block) == fingerprint(flow)


def test_tests_are_in_neither_hash() -> None:
    assert fingerprint(_spec(dump(make_function()))) == fingerprint(
        _spec(dump(make_function(tests=None))))


def test_behaviour_and_metadata_are_separate() -> None:
    base = fingerprint(_spec(dump(make_function())))
    meta = fingerprint(_spec(dump(make_function(description="new", limits={"rpm": 3}))))
    assert meta.behaviour == base.behaviour and meta.metadata != base.metadata
    data = make_function()
    data["prompt"][0]["content"] += "!"
    behaviour = fingerprint(_spec(dump(data)))
    assert behaviour.behaviour != base.behaviour and behaviour.metadata == base.metadata
    data = make_function()
    data["prompt"].reverse()
    assert fingerprint(_spec(dump(data))).behaviour != base.behaviour  # message order matters


def test_canonical_json_is_stable() -> None:
    assert canonical_json({"b": [1, {"z": "a\r\nb", "a": None}], "a": "é"}) == \
        '{"a":"é","b":[1,{"a":null,"z":"a\\nb"}]}'
    assert yaml.safe_load(canonical_json({"x": 1})) == {"x": 1}


@pytest.mark.parametrize("content", [
    {"b": [1, {"z": "a\nb", "a": None}], "a": "é", "n": 1.5, "t": True},
    {"b": [1, {"z": "a\r\nb", "a": None}], "a": "é"},  # newlines normalised
    {"z": "back\\slash r\\r, tab\t"},  # a backslash and an r are no carriage return
    {"k\r": "v", "k\n": "w"},  # a key with a carriage return
    {"deep": [[{"x": ["\r"]}]]},
])
def test_content_hash_is_sha256_of_canonical_json(content: dict[str, object]) -> None:
    expected = hashlib.sha256(canonical_json(content).encode()).hexdigest()
    assert content_hash(content) == expected


def test_anchors_aliases_and_merge_keys_change_no_hash() -> None:
    meta = b"metadata: {base: &conf {max_tokens: 400, temperature: 0.5}}\n"
    expanded = FLOW.replace(b"retry:", meta.replace(b"&conf ", b"") + b"retry:")
    anchored = FLOW.replace(
        b"configuration: {max_tokens: 400, temperature: 0.2}",
        meta + b"configuration: {<<: *conf, temperature: 0.2}")  # the explicit key wins
    assert fingerprint(_spec(anchored)) == fingerprint(_spec(expanded))
