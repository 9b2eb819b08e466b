"""Cross-checks: schemas, templates, test inputs, providers, prices, version rules."""

from __future__ import annotations

import copy

import pytest

from aiops.checks import breaking_changes, check_project, compare_with_base
from aiops.spec import FunctionSpec, Semver
from tests.factories import PROVIDERS, make_function, make_project


def _check(*functions, providers=PROVIDERS):  # type: ignore[no-untyped-def]
    project = make_project(*functions, providers=providers)
    assert project.ok, [d.render() for d in project.diagnostics]
    return {(d.path, d.code): d for d in check_project(project)}


def test_clean_function_has_no_findings() -> None:
    assert _check(make_function()) == {}


def test_invalid_json_schema_is_located() -> None:
    data = make_function()
    data["input_schema"]["properties"]["bullets"]["type"] = "integr"
    data["output_schema"]["required"] = "bullets"
    found = _check(data)
    diag = found[("input_schema.properties.bullets.type", "schema-invalid")]
    assert "not a valid JSON Schema" in diag.message and diag.line is not None
    assert ("output_schema.required", "schema-invalid") in found


def test_other_draft_is_refused() -> None:
    data = make_function()
    data["input_schema"]["$schema"] = "http://json-schema.org/draft-07/schema#"
    assert ("input_schema.$schema", "schema-draft") in _check(data)


def test_input_schema_must_be_an_object() -> None:
    data = make_function(input_schema={"type": "string"},
                         prompt=[{"role": "user", "content": "hi"}], tests=[])
    assert ("input_schema", "input-not-object") in _check(data)


def test_template_variables_against_inputs() -> None:
    data = make_function(prompt=[{"role": "user", "content": "line one\n{{ txt }} {{ x.y }}"}])
    data["input_schema"]["properties"]["tone"] = {"type": "string"}
    project = make_project(data)
    diags = check_project(project)
    undeclared = {d.message.split("`")[1]: d for d in diags if d.code == "template-undeclared"}
    assert set(undeclared) == {"txt", "x"}
    assert undeclared["txt"].fix == "did you mean `text`?"
    assert undeclared["txt"].line is not None
    found = {(d.path, d.code): d for d in diags}
    required = found[("input_schema.properties.text", "input-unused")]
    assert required.severity == "error"
    optional = found[("input_schema.properties.tone", "input-unused")]
    assert optional.severity == "warning"


def test_loop_variables_and_filters_are_not_inputs() -> None:
    data = make_function(prompt=[{"role": "user", "content":
                                  "{% for b in range(bullets) %}{{ loop.index }}{{ b }}"
                                  "{% endfor %}{{ text | upper }}"}])
    assert _check(data) == {}


def test_template_syntax_error_points_at_its_line() -> None:
    data = make_function(prompt=[{"role": "user", "content": "ok\n{% if text %}\nno end\n"}])
    found = _check(data)
    diag = found[("prompt[0].content", "template-syntax")]
    assert "template syntax error" in diag.message
    assert diag.line is not None


def test_test_inputs_are_validated() -> None:
    data = make_function()
    data["tests"] = [{"name": "a", "input": {"text": "", "bullets": 99, "extra": 1}},
                     {"name": "a", "input": {"text": "ok"}}]
    found = _check(data)
    assert ("tests[0].input.text", "test-input") in found
    assert ("tests[0].input.bullets", "test-input") in found
    assert ("tests[0].input", "test-input") in found  # additionalProperties
    assert ("tests[1].name", "test-duplicate") in found


def test_path_assertion_on_text_output() -> None:
    data = make_function(output_schema={"type": "string"})
    data["tests"][0]["expect"] = [{"not": {"path": "$.a", "equals": 1}}]
    assert ("tests[0].expect[0].not.path", "assertion-path") in _check(data)


def test_json_paths_are_parsed_when_validating() -> None:
    data = make_function()
    data["tests"][0]["expect"] = [{"path": "$..bullets", "length": {"min": 1}},
                                  {"path": "$.bullets[0]", "contains": "fox"}]
    found = _check(data)
    diag = found[("tests[0].expect[0].path", "assertion-path")]
    assert "recursive descent" in diag.message and diag.line is not None
    assert len(found) == 1


def test_providers_fallbacks_and_prices() -> None:
    data = make_function(provider="grok", fallbacks=[
        {"provider": "openai", "model": "gpt-9"}, {"provider": "nope", "model": "m"}])
    found = _check(data)
    assert found[("provider", "provider-unknown")].fix == "did you mean `groq`?"
    assert ("fallbacks[1].provider", "provider-unknown") in found
    price = found[("fallbacks[0].model", "price-missing")]
    assert price.severity == "warning" and "gpt-9" in price.message


def test_missing_providers_file() -> None:
    found = _check(make_function(), providers=None)
    assert ("", "no-providers") in found


# --- version rules -----------------------------------------------------------------------


def _spec(data: dict) -> FunctionSpec:  # type: ignore[type-arg]
    return FunctionSpec.model_validate(data)


def _compare(old: dict, new: dict, earlier=None):  # type: ignore[no-untyped-def,type-arg]
    diags = compare_with_base(make_project(new), make_project(old), earlier)
    return [d for d in diags if d.is_error]


def test_behaviour_change_needs_a_bump() -> None:
    old = make_function()
    new = make_function(model="llama-3.3-70b-versatile")
    (diag,) = _compare(old, new)
    assert diag.code == "version-not-bumped" and "model" in diag.message
    assert diag.path == "version" and diag.line is not None
    assert _compare(old, make_function(model="x", version="1.2.1")) == []


def test_metadata_and_tests_do_not_need_a_bump() -> None:
    old = make_function()
    new = make_function(description="Other words.", metadata={"owner": "x"}, tests=[],
                        limits={"rpm": 5})
    assert _compare(old, new) == []


def test_breaking_change_needs_a_major_bump_and_lists_every_item() -> None:
    old = make_function()
    new = copy.deepcopy(old)
    new["version"] = "1.3.0"
    new["input_schema"]["required"] = ["text", "bullets"]
    new["output_schema"]["properties"]["bullets"] = {"type": "string"}
    (diag,) = _compare(old, new)
    assert diag.code == "breaking-change"
    assert "input.bullets: new required input" in diag.message
    assert "output.bullets: type changed from array to string" in diag.message
    assert "2.0.0" in diag.fix
    new["version"] = "2.0.0"
    assert _compare(old, new) == []


def test_version_going_down_must_match_earlier_content() -> None:
    old = make_function(version="1.3.0", model="other")
    back = make_function(version="1.2.0")
    (diag,) = _compare(old, back)
    assert diag.code == "version-down"
    earlier = {("summarize", "1.2.0"): _spec(make_function())}
    assert _compare(old, back, lambda n, v: earlier.get((n, v))) == []
    changed = make_function(version="1.2.0", model="third")
    assert _compare(old, changed, lambda n, v: earlier.get((n, v)))[0].code == "version-down"


def _io(inp: dict | None = None, out: dict | None = None) -> FunctionSpec:  # type: ignore[type-arg]
    data = make_function()
    if inp is not None:
        data["input_schema"] = inp
    if out is not None:
        data["output_schema"] = out
    return _spec(data)


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
         ["input.a: enum no longer accepts ['y']"]),
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
         ["output.a: enum widened with ['z']"]),
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


def test_semver_ordering_and_major_bumps() -> None:
    assert Semver("1.0.0-rc.1") < Semver("1.0.0") < Semver("1.0.1") < Semver("1.10.0")
    assert Semver("1.0.0-alpha") < Semver("1.0.0-alpha.1") < Semver("1.0.0-beta")
    assert Semver("2.0.0").is_major_bump_over(Semver("1.9.9"))
    assert not Semver("1.9.0").is_major_bump_over(Semver("1.0.0"))
    assert Semver("0.5.0").is_major_bump_over(Semver("0.4.3"))  # 0.x: minor is major
    with pytest.raises(ValueError):
        Semver("1.2")
