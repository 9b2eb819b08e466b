"""Cross-checks: schemas, templates, test inputs, providers, prices, version rules."""

from __future__ import annotations

import copy

import pytest

from aiops.checks import check_project, compare_with_base, versioned
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


def test_loops_that_an_input_may_skip_are_not_problems() -> None:
    big = "{% for j in range(2000) %}x{% endfor %}"
    data = make_function(prompt=[{"role": "user", "content":
        f"{{% if text == 'big' %}}{{% for i in range(1000) %}}{big}{{% endfor %}}{{% endif %}}"
        f"{{% for i in range(1000) if text == 'big' %}}{big}{{% endfor %}}"
        f"{{% for i in range(bullets) %}}{big}{{% endfor %}}{{{{ text }}}}"}])
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


@pytest.mark.parametrize("on_limit", ["fallback", "wait", "fail"])
def test_on_limit_takes_fallback_wait_or_fail(on_limit: str) -> None:
    """Issue 10: `fallback` (the default) passes a call over to a fallback whose limits have
    room; said on a function without fallbacks, it is a warning (the call waits)."""
    with_fallbacks = make_function(limits={"on_limit": on_limit},
                                   fallbacks=[{"provider": "openai", "model": "gpt-4o-mini"}])
    assert _check(with_fallbacks) == {}
    alone = _check(make_function(limits={"on_limit": on_limit}, fallbacks=None))
    if on_limit == "fallback":
        diag = alone.pop(("limits.on_limit", "on-limit-no-fallback"))
        assert diag.severity == "warning" and diag.line is not None and "waits" in diag.message
    assert alone == {}
    assert make_project(make_function(fallbacks=None)).functions["summarize"].spec.limits \
        .on_limit == "fallback"  # the default, not worth a warning when left unsaid
    assert _check(make_function(fallbacks=None)) == {}


def test_an_unknown_on_limit_is_an_error_listing_the_choices() -> None:
    project = make_project(make_function(limits={"on_limit": "later"}))
    (diag,) = [d for d in project.diagnostics if d.is_error]
    assert diag.path == "limits.on_limit" and diag.line is not None
    assert all(word in diag.render() for word in ("fallback", "wait", "fail")), diag.render()


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
    del new["input_schema"]["properties"]["bullets"]["default"]  # else callers still get 3
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
    earlier = {("summarize", "1.2.0"): versioned(_spec(make_function()))}
    assert _compare(old, back, lambda n, v: earlier.get((n, v))) == []
    changed = make_function(version="1.2.0", model="third")
    assert _compare(old, changed, lambda n, v: earlier.get((n, v)))[0].code == "version-down"


def test_semver_ordering_and_major_bumps() -> None:
    assert Semver("1.0.0-rc.1") < Semver("1.0.0") < Semver("1.0.1") < Semver("1.10.0")
    assert Semver("1.0.0-alpha") < Semver("1.0.0-alpha.1") < Semver("1.0.0-beta")
    assert Semver("2.0.0").is_major_bump_over(Semver("1.9.9"))
    assert not Semver("1.9.0").is_major_bump_over(Semver("1.0.0"))
    assert Semver("0.5.0").is_major_bump_over(Semver("0.4.3"))  # 0.x: minor is major
    with pytest.raises(ValueError):
        Semver("1.2")


def test_a_changed_anyof_is_flagged_for_review_not_silently_passed() -> None:
    old = make_function()
    old["output_schema"]["properties"]["kind"] = {"anyOf": [
        {"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}},
        {"type": "string"}]}
    new = copy.deepcopy(old)
    new["version"] = "1.3.0"
    new["output_schema"]["properties"]["kind"]["anyOf"][0]["required"] = []
    diags = compare_with_base(make_project(new), make_project(old))
    (diag,) = [d for d in diags if d.code == "breaking-unchecked"]
    assert diag.severity == "warning"
    assert "output.kind" in diag.message and "anyOf" in diag.message
    # unchanged combinators say nothing
    same = copy.deepcopy(old)
    same["version"] = "1.3.0"
    same["model"] = "other"
    assert [d for d in compare_with_base(make_project(same), make_project(old))
            if d.code == "breaking-unchecked"] == []


def test_a_test_may_omit_a_required_input_that_has_a_default() -> None:
    # The runner fills defaults before validating, so the test runs: no false error.
    data = make_function()
    data["input_schema"]["required"] = ["text", "bullets"]
    data["tests"] = [{"name": "a", "input": {"text": "ok"}}]
    assert _check(data) == {}
    data["input_schema"]["properties"]["bullets"].pop("default")
    assert ("tests[0].input", "test-input") in _check(data)


@pytest.mark.parametrize("content", [
    "content: >\n      Summarize in {{ bullets }} bullets.\n      Be brief.\n\n      {{ txt }}\n",
    'content: "Summarize in {{ bullets }} bullets.\\n\\nText:\\n{{ txt }}"\n',
    "content: Summarize in {{ bullets }}\n      bullets.\n\n      {{ txt }}\n",
    "content: |\n      Summarize in {{ bullets }} bullets.\n\n      {{ txt }}\n",
])
def test_an_undeclared_variable_is_located_on_its_file_line(content: str) -> None:
    from aiops.loader import load_sources
    from tests.factories import dump

    data = make_function()
    data["input_schema"]["properties"]["txt_"] = {"type": "string"}
    data["input_schema"]["required"] = []
    text = dump(data).decode()
    old = "  content: 'Summarize in {{ bullets }} bullets:\n\n    {{ text }}\n\n    '\n"
    assert old in text
    text = text.replace(old, "  " + content)
    project = load_sources({"functions/summarize/function.yaml": text.encode(),
                            "providers.yaml": dump(PROVIDERS)})
    assert project.ok, [d.render() for d in project.diagnostics]
    (diag,) = [d for d in check_project(project) if d.code == "template-undeclared"]
    assert "`txt`" in diag.message
    assert "{{ txt }}" in text.splitlines()[diag.line - 1]


@pytest.mark.parametrize(("schema", "path", "words"), [
    ({"$schema": 5, "type": "object", "properties": {"text": {}, "bullets": {}}},
     "input_schema.$schema", "draft 2020-12"),
    ({"type": "object", "properties": {"text": {"$ref": "#/$defs/nope"}, "bullets": {}}},
     "input_schema.properties.text.$ref", "points to nothing"),
    ({"type": "object", "properties": {"text": {"$ref": "https://example.invalid/t.json"},
                                       "bullets": {}}},
     "input_schema.properties.text.$ref", "remote"),
])
def test_a_schema_that_cannot_be_used_is_an_error_not_a_crash(schema, path, words) -> None:  # type: ignore[no-untyped-def]
    found = _check(make_function(input_schema=schema))
    diag = next(d for (p, _), d in found.items() if p == path)
    assert diag.is_error and words in diag.message and diag.line is not None


def test_local_refs_and_anchors_that_resolve_are_fine() -> None:
    schema = {"type": "object", "properties": {"text": {"$ref": "#/$defs/t"},
                                               "bullets": {"$ref": "#count"}},
              "required": ["text"],
              "$defs": {"t": {"type": "string"},
                        "c": {"$anchor": "count", "type": "integer"}}}
    assert _check(make_function(input_schema=schema)) == {}


def test_inputs_declared_through_a_root_ref_or_allof_are_declared() -> None:
    schema = {"type": "object", "allOf": [{"$ref": "#/$defs/base"}],
              "properties": {"bullets": {"type": "integer"}},
              "$defs": {"base": {"required": ["text"],
                                 "properties": {"text": {"type": "string"}}}}}
    assert _check(make_function(input_schema=schema)) == {}
    schema["$defs"]["base"]["properties"] = {}  # text now undeclared
    assert ("prompt[1].content", "template-undeclared") in _check(
        make_function(input_schema=schema))


def test_an_input_named_like_a_jinja_global_is_used_when_the_template_reads_it() -> None:
    # `namespace`, `range`, `dict`...: a declared input shadows the global when rendering.
    data = make_function(prompt=[{"role": "user", "content":
                                  "{{ text }} in {{ namespace }}, {{ bullets }}"}])
    data["input_schema"]["properties"]["namespace"] = {"type": "string"}
    data["input_schema"]["required"] = ["text", "namespace"]
    data["tests"][0]["input"]["namespace"] = "prod"
    assert _check(data) == {}


@pytest.mark.parametrize("tag", ["{% include 'header.txt' %}", "{% import 'm.j2' as m %}",
                                 "{%- from 'm.j2' import x %}", "{% extends 'base.j2' %}"])
def test_a_template_that_loads_another_is_refused(tag: str) -> None:
    # Prompts are self-contained: the sandbox has no loader, so every call would fail.
    data = make_function(prompt=[{"role": "user", "content":
                                  f"{{{{ text }}}} {{{{ bullets }}}}\n{tag}\n"}])
    diag = _check(data)[("prompt[0].content", "template-load")]
    assert diag.is_error and "self-contained" in diag.message and diag.line is not None


def test_an_optional_input_declared_only_in_a_branch_is_not_declared() -> None:
    # The runner passes top-level properties only: absent, it would not render.
    schema = {"type": "object", "required": ["text"],
              "properties": {"text": {"type": "string"}},
              "anyOf": [{"properties": {"bullets": {"type": "integer"}}}]}
    found = _check(make_function(input_schema=schema))
    assert ("prompt[1].content", "template-undeclared") in found


@pytest.mark.parametrize("key", ["input_schema", "output_schema"])
def test_a_pattern_the_validator_cannot_compile_is_an_error_not_a_crash(key: str) -> None:
    data = make_function()
    data[key]["properties"]["bullets"]["pattern"] = "(?<=a"
    diag = _check(data)[(f"{key}.properties.bullets.pattern", "schema-pattern")]
    assert "`(?<=a` is not a valid regular expression" in diag.message and diag.line


# A template that can never render, whatever the input: each line is a validate error at its
# file line (here the fifth line of a block scalar), never a run that blames the input.
NEVER_RENDERS = [
    ("{% if text is foo %}x{% endif %}", "template-test", "unknown test `foo`"),
    ("{{ text | nosuchfilter }}", "template-filter", "unknown filter `nosuchfilter`"),
    ("{% if text %}{{ text | upperr }}{% endif %}", "template-filter", "unknown filter `upperr`"),
    ("{% filter shout %}{{ text }}{% endfilter %}", "template-filter", "unknown filter `shout`"),
    ("{{ text | map('nosuch') | join }}", "template-filter", "unknown filter `nosuch`"),
    ("{{ text | select('nosuchtest') | list }}", "template-test", "unknown test `nosuchtest`"),
    ("{{ text | rejectattr('a', 'nosuchtest') | list }}", "template-test",
     "unknown test `nosuchtest`"),
    ("{{ text() }}", "template-call", "calls the input `text`, a JSON value"),
    ("{{ shout(text) }}", "template-call", "`shout()` calls `shout`, which is neither"),
    ("{{ text.__class__ }}", "template-sandbox", "`.__class__` is refused by the sandbox"),
    ("{% for loop in text %}{% endfor %}", "template-compile", "special loop variable"),
    ("{% block a %}{% endblock %}{% block a %}{% endblock %}", "template-compile",
     "block 'a' defined twice"),
    ("{% for i in range(1001) %}{% for j in range(0, 2000, 2) %}x{% endfor %}{% endfor %}",
     "template-loop", "these loops iterate 1,001,000 times on every render"),
]


@pytest.mark.parametrize(("line", "code", "message"), NEVER_RENDERS)
def test_a_template_that_can_never_render_is_a_validate_error_at_its_line(
        line: str, code: str, message: str) -> None:
    from aiops.errors import InputError
    from aiops.loader import load_sources
    from aiops.prompts import compile_prompt
    from tests.factories import make_files

    files = make_files(make_function())
    text = files["functions/summarize/function.yaml"].decode()
    quoted = "  content: 'Summarize in {{ bullets }} bullets:\n\n    {{ text }}\n\n    '\n"
    assert quoted in text  # written as a literal block instead, with the line added
    text = text.replace(quoted, "  content: |\n    Summarize in {{ bullets }} bullets:\n"
                                f"    {{{{ text }}}}\n    {line}\n")
    files["functions/summarize/function.yaml"] = text.encode()
    file_line = text.splitlines().index(f"    {line}") + 1
    project = load_sources(files)
    assert project.ok, [d.render() for d in project.diagnostics]
    found = [d for d in check_project(project) if d.code == code]
    assert [(d.line, d.path, d.severity) for d in found] == [
        (file_line, "prompt[1].content", "error")], [d.render() for d in found]
    assert message in found[0].message and found[0].fix
    assert not [d for d in check_project(project) if d.code == "template-undeclared"]
    # The class, proved: with a valid input, the template indeed fails to render.
    content = project.functions["summarize"].spec.prompt[1].content
    with pytest.raises(Exception) as failed:
        compile_prompt([{"role": "user", "content": content}], ["text", "bullets"]).render(
            {"text": ["a", "b"], "bullets": 3})
    assert isinstance(failed.value, InputError) or "jinja2" in type(failed.value).__module__


def test_known_filters_tests_and_callables_are_not_problems() -> None:
    data = make_function(prompt=[{"role": "user", "content":
        "{% macro item(x) %}- {{ x | trim }}{% endmacro %}"
        "{% for b in range(bullets) %}{{ item(text) }}{{ loop.cycle('a', 'b') }}{% endfor %}"
        "{% if text is string and bullets is odd %}{{ text | map('upper') | join }}{% endif %}"
        "{{ [text] | select('defined') | list }}{{ [text] | map(attribute='x') | list }}"
        "{% set ns = namespace(n=0) %}{% set ns.n = 1 %}{{ text.upper() }}{{ ns.n }}"}])
    assert _check(data) == {}
