"""The test console's form model (aiops.web.input_form): one field per property, labelled
with its name, of the kind a person fills in."""

from __future__ import annotations

from typing import Any

from aiops.web.input_form import fields_of

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["subject", "tier"],
    "properties": {
        "subject": {"type": "string", "maxLength": 120, "description": "One line"},
        "body": {"type": "string"},
        "tier": {"type": "string", "enum": ["free", "pro"], "default": "free"},
        "urgent": {"type": "boolean"},
        "count": {"type": "integer", "minimum": 0},
        "score": {"type": ["number", "null"]},
        "address": {"type": "object", "required": ["city"], "properties": {
            "city": {"type": "string", "maxLength": 50}}},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 20}},
        "lines": {"type": "array", "items": {"$ref": "#/$defs/line"}},
        "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    },
    "$defs": {"line": {"type": "object", "properties": {"sku": {"type": "string",
                                                                 "maxLength": 9}}}},
}


def by_name(fields: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in fields}


def test_each_property_is_one_field_of_its_kind() -> None:
    fields = fields_of(SCHEMA)
    assert [f["name"] for f in fields] == list(SCHEMA["properties"])
    f = by_name(fields)
    assert f["subject"] == {"name": "subject", "required": True, "kind": "string",
                            "description": "One line"}
    assert f["body"]["multiline"] is True and "multiline" not in f["subject"]
    assert f["tier"] == {"name": "tier", "required": True, "kind": "enum", "type": "string",
                         "options": ["free", "pro"], "default": "free"}
    assert f["urgent"]["kind"] == "boolean" and f["count"]["kind"] == "integer"
    assert f["score"]["kind"] == "number"


def test_objects_and_arrays_nest() -> None:
    f = by_name(fields_of(SCHEMA))
    assert f["address"]["kind"] == "object"
    assert f["address"]["fields"] == [{"name": "city", "required": True, "kind": "string"}]
    assert f["tags"]["item"] == {"name": "", "required": False, "kind": "string"}
    line = f["lines"]["item"]
    assert line["kind"] == "object" and line["fields"][0]["name"] == "sku"


def test_what_a_form_cannot_ask_is_json_text() -> None:
    f = by_name(fields_of(SCHEMA))
    assert f["either"]["kind"] == "json"
    recursive = {"type": "object", "properties": {"node": {"$ref": "#"}}}
    deep = fields_of(recursive)
    for _ in range(11):
        deep = deep[0]["fields"]
    assert deep[0]["kind"] == "json"
    assert fields_of({"type": "string"}) == [] and fields_of(True) == []
