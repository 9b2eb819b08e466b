"""The format refuses what can never run: a `default` its own subschema refuses, an `enum` or
`const` value the rest of its subschema refuses, in every subschema of the input and output
schemas, each an error at its own line."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiops.checks import check_project
from aiops.loader import load_sources
from tests.factories import PROVIDERS, dump, make_function

TYPES = ["null", "boolean", "integer", "number", "string", "array", "object"]


def _findings(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    text = dump(data).decode()
    project = load_sources({"functions/summarize/function.yaml": text.encode(),
                            "providers.yaml": dump(PROVIDERS)})
    assert project.ok, [d.render() for d in project.diagnostics]
    return text, {d.path: d for d in check_project(project)}


def _with_input(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    data = make_function()
    data["input_schema"]["properties"][name] = schema
    data["prompt"][1]["content"] += "{{ " + name + " }}"
    return data


def test_a_default_outside_its_enum_is_an_error_at_the_default_line() -> None:
    text, found = _findings(_with_input(
        "tone", {"type": "string", "enum": ["formal", "casual"], "default": "friendly"}))
    (path,) = found
    diag = found[path]
    assert path == "input_schema.properties.tone.default" and diag.code == "schema-default"
    assert diag.message == ('default "friendly" does not pass its own schema: "friendly" is not '
                            'one of "formal" or "casual"')
    assert text.splitlines()[diag.line - 1].strip() == "default: friendly"
    assert "the runner fills it in" in diag.fix
    assert diag.render().startswith(f"functions/summarize/function.yaml:{diag.line}:")


@pytest.mark.parametrize(("where", "schema", "message"), [
    ("properties.n.default", {"type": "integer", "minimum": 1, "default": 0},
     "default 0 does not pass its own schema: 0 is less than the minimum of 1"),
    ("properties.n.default", {"type": "integer", "default": "3"},
     'default "3" does not pass its own schema: "3" is not of type "integer"'),
    ("properties.n.default", {"type": "string", "default": None},
     'default null does not pass its own schema: null is not of type "string"'),
    ("properties.n.items.default", {"type": "array", "items": {"type": "string",
                                                                "default": 1}},
     'default 1 does not pass its own schema: 1 is not of type "string"'),
    ("properties.n.properties.deep.default",
     {"type": "object", "properties": {"deep": {"type": "boolean", "default": "yes"}}},
     'default "yes" does not pass its own schema: "yes" is not of type "boolean"'),
    ("properties.n.anyOf.1.default",
     {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 2, "default": "abc"}]},
     'default "abc" does not pass its own schema: "abc" is longer than 2 characters'),
    ("properties.n.default", {"$ref": "#/$defs/level", "default": 9},
     "default 9 does not pass its own schema: 9 is greater than the maximum of 5"),
    ("properties.n.default", {"type": "object", "properties": {"k": {"type": "string"}},
                              "default": {"k": 1}},
     'default {"k": 1} does not pass its own schema: $.k: 1 is not of type "string"'),
])
def test_defaults_are_checked_in_every_subschema(where: str, schema: dict[str, Any],
                                                 message: str) -> None:
    data = _with_input("n", schema)
    data["input_schema"]["$defs"] = {"level": {"type": "integer", "maximum": 5}}
    _, found = _findings(data)
    path = "input_schema." + where.replace(".anyOf.1.", ".anyOf[1].")
    assert set(found) == {path}, [d.render() for d in found.values()]
    assert found[path].message == message


def test_a_default_inside_defs_and_in_the_output_schema_is_checked() -> None:
    data = make_function()
    data["input_schema"]["$defs"] = {"unused": {"type": "string", "default": 5}}
    data["output_schema"]["properties"]["bullets"]["default"] = "one"
    _, found = _findings(data)
    assert set(found) == {"input_schema.$defs.unused.default",
                          "output_schema.properties.bullets.default"}
    assert found["output_schema.properties.bullets.default"].message == (
        'default "one" does not pass its own schema: "one" is not of type "array"')


def test_an_enum_no_value_of_which_fits_its_type_is_an_error() -> None:
    _, found = _findings(_with_input("tags", {"type": "array", "enum": ["a", "b"]}))
    diag = found["input_schema.properties.tags.enum"]
    assert diag.code == "schema-enum"
    assert diag.message == ('none of the 2 enum values passes the rest of its schema (first: '
                            '"a" is not of type "array"): no value can pass here')


def test_each_enum_value_the_rest_refuses_is_named_at_its_line() -> None:
    text, found = _findings(_with_input(
        "size", {"type": "string", "maxLength": 5, "enum": ["small", "medium", "large"]}))
    diag = found["input_schema.properties.size.enum[1]"]
    assert set(found) == {"input_schema.properties.size.enum[1]"}
    assert diag.message == ('enum value "medium" can never pass the rest of its schema '
                            '("medium" is longer than 5 characters)')
    assert text.splitlines()[diag.line - 1].strip() == "- medium"


def test_a_const_the_rest_refuses_is_an_error() -> None:
    data = make_function()
    data["output_schema"]["properties"]["kind"] = {"type": "integer", "const": "1"}
    _, found = _findings(data)
    diag = found["output_schema.properties.kind.const"]
    assert diag.message == ('const "1" can never pass the rest of its schema ("1" is not of '
                            'type "integer"): no value can pass here')


def test_values_that_pass_are_no_problem() -> None:
    data = _with_input("tone", {"type": "string", "enum": ["formal", "casual"],
                                "default": "formal"})
    data["input_schema"]["properties"]["n"] = {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/a"}],
                                               "default": None}
    data["input_schema"]["$defs"] = {"a": {"type": "array", "enum": [["x"], []],
                                           "items": {"type": "string"}}}
    data["prompt"][1]["content"] += "{{ n }}"
    data["output_schema"]["properties"]["k"] = {"type": "integer", "const": 3}
    data["output_schema"]["properties"]["bullets"]["default"] = []
    assert _findings(data)[1] == {}


scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from([1.0, 0.5]),
                    st.sampled_from(["", "a", "1"]))
simple_nodes = st.fixed_dictionaries({}, optional={
    "type": st.one_of(st.sampled_from(TYPES), st.lists(st.sampled_from(TYPES), max_size=3, unique=True)),
    "enum": st.lists(scalars, max_size=3), "const": scalars, "title": st.just("t")})


@settings(max_examples=400, deadline=None)
@given(node=simple_nodes, value=scalars)
def test_the_quick_yes_agrees_with_the_validator(node: dict[str, Any], value: Any) -> None:
    import jsonschema_rs

    from aiops.schemas import _plainly_accepts

    if _plainly_accepts(node, value):
        assert jsonschema_rs.Draft202012Validator(node).is_valid(value), (node, value)
