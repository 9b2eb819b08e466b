"""Schema validation: the fast path and the precise path agree, and neither crashes."""

from __future__ import annotations

from aiops.schemas import CompiledSchema, metaschema_errors

OBJ = {"type": "object", "required": ["a"], "additionalProperties": False,
       "properties": {"a": {"type": "integer", "minimum": 1},
                      "b": {"type": "array", "items": {"type": "string"}}}}


def test_valid_values_have_no_errors() -> None:
    schema = CompiledSchema(OBJ)
    assert schema.is_valid({"a": 2, "b": ["x"]})
    assert schema.errors({"a": 2}) == [] and schema.first_error({"a": 2}) is None


def test_every_error_with_its_path_sorted() -> None:
    errors = CompiledSchema(OBJ).errors({"a": 0, "b": ["x", 3], "c": 1})
    assert [e.path for e in errors] == [(), ("a",), ("b", 1)]
    assert "0 is less than the minimum of 1" in errors[1].message
    assert errors[2].render() == '$.b[1]: 3 is not of type "string"'


def test_first_error_is_the_most_relevant() -> None:
    first = CompiledSchema(OBJ).first_error({"b": []})
    assert first is not None and first.render() == '$: "a" is a required property'


def test_ecma_patterns_python_cannot_compile_do_not_crash() -> None:
    schema = CompiledSchema({"type": "string", "pattern": r"^\p{L}+$"})
    assert schema.is_valid("héllo")
    (error,) = schema.errors("abc1")
    assert error.path == () and "abc1" in error.message
    assert schema.first_error("abc1") is not None


def test_metaschema_errors_are_located() -> None:
    errors = metaschema_errors({"type": "object", "properties": {"a": {"type": "integr"}}})
    assert errors and errors[0].path == ("properties", "a", "type")
    assert metaschema_errors(OBJ) == []
