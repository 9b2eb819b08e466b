"""Schema compatibility: which input and output schema changes break callers (DESIGN §4).

Pure: two pairs of schemas in, readable items out; no spec, no file, no database.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest

from aiops.compat import breaking_changes, compare

SUMMARY_INPUT = {"type": "object", "required": ["text"],
                 "properties": {"text": {"type": "string"},
                                "bullets": {"type": "integer", "default": 3}}}
SUMMARY_OUTPUT = {"type": "object", "required": ["bullets"],
                  "properties": {"bullets": {"type": "array", "items": {"type": "string"}}}}


@dataclass(frozen=True)
class _Schemas:
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]


def _io(inp: dict[str, Any] | None = None, out: dict[str, Any] | None = None) -> _Schemas:
    return _Schemas(input_schema=SUMMARY_INPUT if inp is None else inp,
                    output_schema=SUMMARY_OUTPUT if out is None else out)


OBJ = {"type": "object", "properties": {"a": {"type": "string", "enum": ["x", "y"]},
                                        "n": {"type": ["integer", "null"]}},
       "required": ["a"], "additionalProperties": False}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s["required"].append("n"), ["input.n: new required input"]),
        (lambda s: s["properties"].pop("n"),
         ["input.n: input removed while extra properties are refused"]),
        (lambda s: s["properties"]["n"].update(type="integer"),
         ["input.n: type narrowed from integer|null to integer"]),
        (lambda s: s["properties"]["a"].update(enum=["x"]),
         ['input.a: enum no longer accepts ["y"]']),
        (lambda s: s["properties"]["a"].update(enum=["x", "y", "z"]), []),
        (lambda s: s["properties"]["n"].update(type=["number", "null"]), []),
        (lambda s: s.update(additionalProperties=True), []),
    ],
)
def test_input_breaking_rules(change, expected) -> None:  # type: ignore[no-untyped-def]
    new = copy.deepcopy(OBJ)
    change(new)
    assert breaking_changes(_io(inp=OBJ), _io(inp=new)) == expected


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s["properties"].pop("n"), ["output.n: output property removed"]),
        (lambda s: s.update(required=[]), ["output.a: no longer required"]),
        (lambda s: s["properties"]["a"].update(enum=["x", "y", "z"]),
         ['output.a: enum widened with ["z"]']),
        (lambda s: s["properties"]["a"].pop("enum"),
         ["output.a: enum removed; any value may now come"]),
        (lambda s: s["properties"]["n"].update(type="integer"), []),  # narrower output is fine
        (lambda s: s["properties"]["a"].update(type="number"),
         ["output.a: type changed from string to number"]),
        (lambda s: s["properties"].update(extra={"type": "string"}), []),
    ],
)
def test_output_breaking_rules(change, expected) -> None:  # type: ignore[no-untyped-def]
    new = copy.deepcopy(OBJ)
    change(new)
    assert breaking_changes(_io(out=OBJ), _io(out=new)) == expected


def test_nested_arrays_of_objects_are_compared() -> None:
    old = {"type": "object", "properties": {"items": {"type": "array", "items": {
        "type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}}}}
    new = copy.deepcopy(old)
    new["properties"]["items"]["items"]["required"] = []
    assert breaking_changes(_io(out=old), _io(out=new)) == ["output.items[].id: no longer required"]


REFS = {"type": "object", "required": ["items"],
        "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/item"}},
                       "main": {"$ref": "#/$defs/item"}},
        "$defs": {"item": {"type": "object", "required": ["id", "name"],
                           "properties": {"id": {"type": "string"},
                                          "name": {"type": "string"}}}}}


def test_a_removed_required_output_property_behind_a_ref_is_breaking() -> None:
    new = copy.deepcopy(REFS)
    item = new["$defs"]["item"]
    item["required"] = ["id"]
    del item["properties"]["name"]
    assert breaking_changes(_io(out=REFS), _io(out=new)) == [
        "output.items[].name: output property removed",
        "output.main.name: output property removed"]


def test_a_new_required_input_behind_a_ref_is_breaking() -> None:
    old = {"type": "object", "properties": {"text": {"type": "string"},
                                            "opts": {"$ref": "#/$defs/opts"}},
           "$defs": {"opts": {"type": "object", "properties": {"lang": {"type": "string"}}}}}
    new = copy.deepcopy(old)
    new["$defs"]["opts"]["required"] = ["lang"]
    assert breaking_changes(_io(inp=old), _io(inp=new)) == ["input.opts.lang: new required input"]


def test_recursive_refs_are_compared_without_looping() -> None:
    tree = {"type": "object", "required": ["label"],
            "properties": {"label": {"type": "string"},
                           "children": {"type": "array", "items": {"$ref": "#"}}}}
    assert breaking_changes(_io(out=tree), _io(out=copy.deepcopy(tree))) == []
    new = copy.deepcopy(tree)
    new["required"] = []
    assert "output.label: no longer required" in breaking_changes(_io(out=tree), _io(out=new))


def test_refusing_extra_input_properties_is_breaking() -> None:
    old = copy.deepcopy(OBJ)
    del old["additionalProperties"]
    assert breaking_changes(_io(inp=old), _io(inp=OBJ)) == ["input: extra properties now refused"]


def test_a_new_required_input_with_a_default_is_not_breaking() -> None:
    new = copy.deepcopy(OBJ)
    new["required"].append("n")
    new["properties"]["n"]["default"] = None
    assert breaking_changes(_io(inp=OBJ), _io(inp=new)) == []


def test_a_default_the_runner_does_not_fill_does_not_excuse_a_new_required_input() -> None:
    # Defaults are filled through nested `properties` only: not in array items, not via $ref.
    old = {"type": "object", "properties": {
        "rows": {"type": "array", "items": {"type": "object",
                                            "properties": {"k": {"type": "string"}}}},
        "opts": {"$ref": "#/$defs/opts"}},
        "$defs": {"opts": {"type": "object", "properties": {"lang": {"type": "string"}}}}}
    new = copy.deepcopy(old)
    new["properties"]["rows"]["items"]["required"] = ["k"]
    new["properties"]["rows"]["items"]["properties"]["k"]["default"] = "x"
    new["$defs"]["opts"]["required"] = ["lang"]
    new["$defs"]["opts"]["properties"]["lang"]["default"] = "en"
    assert breaking_changes(_io(inp=old), _io(inp=new)) == [
        "input.opts.lang: new required input", "input.rows[].k: new required input"]


def test_unchanged_schemas_are_compatible() -> None:
    assert compare(_io(), _io(copy.deepcopy(SUMMARY_INPUT), copy.deepcopy(SUMMARY_OUTPUT))) == \
        compare(_io(), _io())
    assert compare(_io(), _io()).breaks == () and compare(_io(), _io()).unchecked == ()


def test_input_and_output_breaks_are_listed_together_inputs_first() -> None:
    inp = copy.deepcopy(SUMMARY_INPUT)
    inp["properties"]["text"]["type"] = "integer"
    out = copy.deepcopy(SUMMARY_OUTPUT)
    out["required"] = []
    assert compare(_io(), _io(inp, out)).breaks == (
        "input.text: type narrowed from string to integer", "output.bullets: no longer required")


@pytest.mark.parametrize(("change", "words"), [
    ({"anyOf": [{"type": "string"}, {"type": "integer"}]}, "input.text: anyOf changed"),
    ({"$ref": "https://example.invalid/t.json"}, "input.text: $ref changed"),
    ({"type": "string", "not": {"const": ""}}, "input.text: not changed"),
])
def test_what_cannot_be_judged_is_listed_as_unchecked_not_passed(change: dict[str, Any],
                                                                 words: str) -> None:
    inp = copy.deepcopy(SUMMARY_INPUT)
    inp["properties"]["text"] = change
    found = compare(_io(), _io(inp))
    assert words in found.unchecked


def test_schemas_too_large_to_walk_say_so_once() -> None:
    wide = {"type": "object",
            "properties": {f"p{i}": {"type": "object", "properties": {
                f"q{j}": {"type": "string"} for j in range(20)}} for i in range(600)}}
    found = compare(_io(wide), _io(copy.deepcopy(wide)))
    assert found.breaks == ()
    assert [u for u in found.unchecked if "too large" in u] == [
        next(u for u in found.unchecked if "too large" in u)]


def test_a_tightened_value_constraint_is_neither_a_break_nor_unchecked() -> None:
    # As docs/format.md says: value constraints are not compared, and not reported.
    inp = copy.deepcopy(SUMMARY_INPUT)
    inp["properties"]["text"]["maxLength"] = 10
    assert compare(_io(), _io(inp)) == compare(_io(), _io())
