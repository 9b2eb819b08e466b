"""The schema builder's round trip (aiops.web.schema_form, aiops.document.with_key): a schema
into the form and back is the same schema, key for key; what the form cannot show is kept;
an edit changes what it edits, in the YAML a person writes, and leaves every other line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aiops.document import with_key
from aiops.web.schema_form import FormError, builder_state, form_of, schema_of, with_form
from aiops.yamlsrc import YamlProblem, parse

ROOT = Path(__file__).resolve().parents[2]

ODD = [
    {"$ref": "#/$defs/thing", "$defs": {"thing": {"type": "string", "pattern": "^a"}}},
    {"oneOf": [{"type": "string"}, {"type": "integer"}], "description": "either"},
    {"type": ["string", "null"], "default": None, "enum": ["a", None]},
    {"type": "object", "properties": {"a": True, "b": False}, "required": "a"},
    {"type": "object", "required": ["ghost"], "additionalProperties": {"type": "integer"}},
    {"type": "array", "items": [{"type": "string"}], "minItems": 1, "uniqueItems": True},
    {"type": "string", "default": "", "enum": ["\"quoted\"", "plain", "1"]},
    {"type": "number", "minimum": 1.0, "maximum": 2.5, "x-custom": {"deep": [1, 2]}},
    {"properties": "not a mapping", "items": 3, "description": 7},
    {"type": "object", "properties": {}, "required": []},
    {},
]


def via_json(value: Any) -> Any:
    """What the page sends back: the form after a trip through JSON."""
    return json.loads(json.dumps(value))


def same(a: Any, b: Any) -> bool:
    """Equal, keys in the same order, and numbers of the same type."""
    return json.dumps(a) == json.dumps(b)


def shipped_schemas() -> list[Any]:
    out = []
    for path in sorted((ROOT / "functions").glob("*/function.yaml")):
        value = parse(path.read_bytes())[0]
        out += [value["input_schema"], value["output_schema"]]
    return out


@pytest.mark.parametrize("schema", [*shipped_schemas(), *ODD])
def test_a_schema_through_the_form_is_the_same_schema(schema: Any) -> None:
    assert same(schema_of(via_json(form_of(schema))), schema)


def test_what_the_form_shows_and_what_it_keeps() -> None:
    form = form_of({"type": "object", "$defs": {"x": {}},
                    "properties": {"tier": {"type": "string", "enum": ["free", "pro"],
                                            "default": "free", "maxLength": 9,
                                            "$comment": "kept"}},
                    "required": ["tier", "ghost"]})
    assert form["type"] == "object" and form["extra"] == {"$defs": {"x": {}}}
    [row] = form["properties"]
    assert row["name"] == "tier" and row["required"] is True
    assert row["schema"]["enum"] == "free\npro" and row["schema"]["default"] == "free"
    assert row["schema"]["maxLength"] == "9" and row["schema"]["extra"] == {"$comment": "kept"}
    assert form["required_more"] == ["ghost"]
    assert form_of(True) == {"literal": True}


def test_an_edit_keeps_the_keywords_the_form_cannot_show() -> None:
    schema = {"type": "object", "properties": {
        "who": {"$ref": "#/$defs/name", "description": "old"}},
        "$defs": {"name": {"type": "string"}}, "additionalProperties": False}
    form = via_json(form_of(schema))
    form["properties"][0]["schema"]["description"] = "new"
    assert same(schema_of(form), {"type": "object", "properties": {
        "who": {"$ref": "#/$defs/name", "description": "new"}},
        "$defs": {"name": {"type": "string"}}, "additionalProperties": False})


def node(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, **fields}


def test_a_nested_object_an_array_of_objects_and_an_enum_from_the_form() -> None:
    form = node("object", properties=[
        {"name": "address", "required": True, "schema": node("object", properties=[
            {"name": "city", "required": True, "schema": node("string", minLength="1")},
            {"name": "zip", "required": False, "schema": node("string")}])},
        {"name": "tier", "required": False, "schema": node(
            "string", enum="free\npro\nenterprise", default="free", description="Plan")},
        {"name": "count", "required": False, "schema": node(
            "integer", enum="1\n2", default="2", minimum="0", maximum=10)},
        {"name": "items", "required": False, "schema": node(
            "array", minItems="1", items=node("object", properties=[
                {"name": "sku", "required": True, "schema": node("string")}]))},
        {"name": "urgent", "required": False, "schema": node("boolean", default="false")}])
    assert same(schema_of(form), {
        "type": "object",
        "properties": {
            "address": {"type": "object", "properties": {
                "city": {"type": "string", "minLength": 1}, "zip": {"type": "string"}},
                "required": ["city"]},
            "tier": {"type": "string", "description": "Plan",
                     "enum": ["free", "pro", "enterprise"], "default": "free"},
            "count": {"type": "integer", "enum": [1, 2], "default": 2, "minimum": 0,
                      "maximum": 10},
            "items": {"type": "array", "minItems": 1, "items": {
                "type": "object", "properties": {"sku": {"type": "string"}},
                "required": ["sku"]}},
            "urgent": {"type": "boolean", "default": False}},
        "required": ["address"]})


@pytest.mark.parametrize(("form", "at", "words"), [
    (node("object", properties=[{"name": "", "schema": {}}]), "", "no name"),
    (node("object", properties=[{"name": "a", "schema": {}}, {"name": "a", "schema": {}}]),
     "a", "two properties"),
    (node("integer", minimum="ten"), "minimum", "not a number"),
    (node("integer", enum="1\nx"), "enum", "not a JSON value"),
    (node("strange"), "", "not one of"),
    (node("object", properties=[{"name": "a", "schema": node("number", maximum="1e999")}]),
     "a maximum", "not a finite number"),
    (node("object", properties="a"), "", "are lists"),
    ([], "", "JSON object"),
])
def test_a_form_that_makes_no_schema_says_where(form: Any, at: str, words: str) -> None:
    with pytest.raises(FormError) as caught:
        schema_of(form)
    assert caught.value.at.strip() == at and words in caught.value.message


TEXT = """\
# a comment on top
apiVersion: aiops/v1
name: greet   # the name
input_schema:
  type: object
  properties:
    who: {type: string}   # who to greet
  # a comment after the schema
output_schema:
  type: string
  description: |
    Two
    lines
metadata: {owner: me}
"""


def test_the_builder_rewrites_only_its_schema() -> None:
    state = builder_state(TEXT)
    form = via_json(state["input_schema"])
    form["properties"].append({"name": "mood", "required": True, "schema": node(
        "string", enum="happy\nsad")})
    out = with_form(TEXT, "input_schema", form)
    assert out == TEXT.replace("""\
  properties:
    who: {type: string}   # who to greet
""", """\
  properties:
    who: {type: string}
    mood:
      type: string
      enum: [happy, sad]
  required: [mood]
""")
    assert builder_state(out)["input_schema"]["properties"][1]["name"] == "mood"


def test_a_schema_ending_in_a_block_and_a_missing_schema() -> None:
    out = with_key(TEXT, "output_schema", {"type": "integer"})
    assert out == TEXT.replace("""\
  type: string
  description: |
    Two
    lines
""", "  type: integer\n")
    short = "name: greet\ninput_schema: {type: object}"
    assert with_key(short, "output_schema", {"type": "string"}) == (
        short + "\noutput_schema:\n  type: string\n")


def test_a_file_the_rewrite_cannot_follow_is_refused() -> None:
    for text in ("name: a\nbase: &b {type: string}\ninput_schema: *b\n",
                 "input_schema: &b {type: string}\nother: *b\n"):
        with pytest.raises(ValueError, match="cannot be rewritten"):
            with_key(text, "input_schema", {"type": "integer"})
    with pytest.raises(YamlProblem):
        builder_state("input_schema: [")
    with pytest.raises(FormError):
        with_form(TEXT, "metadata", {})
