"""A function document as the YAML file a person writes (aiops.document): the format's key
order, inline short leaves, literal blocks, the modeline; it loads back to the same spec; and
diagnostics' key paths as JSON pointers."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from aiops.commands import FUNCTION_TEMPLATE
from aiops.document import function_yaml, pointer
from aiops.loader import load_one
from aiops.spec import FunctionSpec
from aiops.yamlsrc import parse
from tests.factories import BASE_FUNCTION

SCHEMA = "../../schemas/function.schema.json"

# What a person writes for BASE_FUNCTION: keys in the format's order, whatever order the
# JSON came in.
HAND_WRITTEN = """\
# yaml-language-server: $schema=../../schemas/function.schema.json
apiVersion: aiops/v1
name: summarize
version: 1.2.0
description: Summarize an article.
provider: groq
model: llama-3.1-8b-instant
configuration:
  temperature: 0.2
  max_tokens: 400
prompt:
  - role: system
    content: You are a concise editor.
  - role: user
    content: |
      Summarize in {{ bullets }} bullets:
      {{ text }}
input_schema:
  type: object
  required: [text]
  properties:
    text: {type: string, minLength: 1}
    bullets: {type: integer, minimum: 1, maximum: 10, default: 3}
  additionalProperties: false
output_schema:
  type: object
  required: [bullets]
  properties:
    bullets:
      type: array
      items: {type: string}
tests:
  - name: short
    input: {text: The fox.}
    expect:
      - schema_valid: true
"""


def shuffled(value: Any) -> Any:
    """The same document with every format mapping's keys reversed (a JSON client's order)."""
    if isinstance(value, dict):
        return {k: shuffled(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [shuffled(v) for v in value]
    return value


def test_the_file_is_what_a_person_writes_and_loads_to_the_same_spec() -> None:
    document = json.loads(json.dumps(BASE_FUNCTION))
    # The format's keys go in the format's order; a schema's own keys as the document has
    # them (here: the order of BASE_FUNCTION, which is the hand-written one).
    reordered = {k: document[k] for k in reversed(list(document))}
    reordered["prompt"] = [{"content": m["content"], "role": m["role"]}
                           for m in document["prompt"]]
    text = function_yaml(reordered, schema=SCHEMA)
    assert text == HAND_WRITTEN
    spec, _, diags = load_one("functions/summarize/function.yaml", text.encode(), FunctionSpec)
    assert diags == []
    assert spec == FunctionSpec.model_validate(document)


def test_the_scaffold_is_reproduced_byte_for_byte() -> None:
    scaffold = FUNCTION_TEMPLATE.format(schema=SCHEMA, name="hello", description="Say hi.",
                                        provider="groq", model="llama-3.1-8b-instant")
    assert function_yaml(yaml.safe_load(scaffold), schema=SCHEMA) == scaffold


def test_free_mappings_keep_the_documents_order_and_format_mappings_take_the_formats() -> None:
    document = {"name": "x", "apiVersion": "aiops/v1",
                "configuration": {"max_tokens": 5, "temperature": 0.1},
                "metadata": {"zeta": 1, "alpha": 2},
                "input_schema": {"properties": {"b": {"type": "string"}}, "type": "object"},
                "surprise": True}
    lines = function_yaml(document, schema="s").splitlines()
    assert lines[1:3] == ["apiVersion: aiops/v1", "name: x"]
    assert lines.index("  temperature: 0.1") < lines.index("  max_tokens: 5")
    assert lines.index("  zeta: 1") < lines.index("  alpha: 2")
    assert lines.index("  properties:") < lines.index("  type: object")
    assert lines[-1] == "surprise: true"  # an unknown key: after the known ones, for the checks


def test_text_that_yaml_would_misread_is_quoted_and_blocks_keep_their_ends() -> None:
    document = {"version": "1.0", "description": "yes", "model": "2024-01-01",
                "a": "{{ who }}", "b": "x: y", "c": "null", "d": "ends\n\n", "e": "no end\nx",
                "f": " leading\nspace", "g": "trailing  \nspaces", "h": "été", "i": 1e-07,
                "j": [], "k": {}, "l": None}
    text = function_yaml(document, schema="s")
    assert parse(text.encode())[0] == document
    assert "d: |+\n" in text and "e: |-\n" in text
    assert "h: été" in text


def test_long_leaves_go_on_their_own_lines() -> None:
    long = {"type": "string", "description": "x" * 80}
    text = function_yaml({"input_schema": {"properties": {"a": long}}}, schema="s")
    assert "    a:\n      type: string\n" in text
    assert f"description: {'x' * 80}\n" in text  # never folded over two lines


# What a spec file may hold (the loader refuses NUL and lone surrogates where they are written).
CHARS = st.characters(exclude_categories=["Cs", "Cc"])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15)
    | st.text(CHARS | st.sampled_from("\n\t \r")),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(CHARS, min_size=1, max_size=8), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["name", "metadata", "input_schema", "tests", "x"]),
                       JSON, max_size=5))
def test_any_json_document_loads_back_to_itself(document: dict[str, Any]) -> None:
    assert parse(function_yaml(document, schema="s").encode())[0] == document


@pytest.mark.parametrize(("path", "expected"), [
    ("prompt[1].content", "/prompt/1/content"),
    ("input_schema.properties.a.b.type", "/input_schema/properties/a.b/type"),
    ("input_schema.properties.a/b~c", "/input_schema/properties/a~1b~0c"),
    ("input_schema.properties.x[0]", "/input_schema/properties/x[0]"),
    ("tests[0].expect[2]", "/tests/0/expect/2"),
    ("limits.missing_key", "/limits/missing_key"),
    ("", ""),
])
def test_pointers_follow_the_document(path: str, expected: str) -> None:
    document = {"prompt": [{}, {"content": "x"}],
                "input_schema": {"properties": {"a.b": {"type": 1}, "a": {"b": 2},
                                                "a/b~c": {}, "x[0]": {}}},
                "tests": [{"expect": [1, 2, 3]}], "limits": {}}
    assert pointer(document, path) == expected


def test_a_pointer_without_a_document_splits_the_path() -> None:
    assert pointer(None, "prompt[0].role") == "/prompt/0/role"
