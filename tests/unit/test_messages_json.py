"""Messages speak JSON, not Python: a value an author wrote is quoted as JSON (`null`, `true`,
`"text"`), never as Python (`None`, `True`, `'text'`), and the message quotes it."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from aiops.checks import check_project
from aiops.loader import load_sources
from aiops.schemas import metaschema_errors
from tests.factories import PROVIDERS, dump, make_files, make_function

PYTHON_WORDS = re.compile(r"\b(None|True|False)\b|'[^'\s]+'")


def _diagnostics(data: dict[str, Any], providers: dict[str, Any] = PROVIDERS) -> list[Any]:
    files = make_files(data)
    files["providers.yaml"] = dump(providers)
    project = load_sources(files)
    return [*project.diagnostics, *check_project(project)]


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    node: Any = data
    parts = [int(p) if p.isdigit() else p for p in path.split(".")]
    for part in parts[:-1]:
        node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
    node[parts[-1]] = value
    return data


@pytest.mark.parametrize(("path", "value", "message", "fix"), [
    ("version", "1.2", '"1.2" is not a semantic version', "e.g. 1.2.0"),
    ("version", "v2.0.1", '"v2.0.1" is not a semantic version', "e.g. 2.0.1"),
    ("version", 1.2, "1.2 is not a semantic version", "e.g. 1.2.0"),
    ("status", "archived", '"archived" is not one of "draft", "active" or "deprecated"',
     "use one of the listed values"),
    ("status", None, 'null is not one of "draft", "active" or "deprecated"',
     "use one of the listed values"),
    ("description", None, "null is not text", ""),
    ("configuration.temperature", "hot", '"hot" is not a number', ""),
    ("configuration.top_p", 1.5, "1.5 is greater than the maximum of 1", ""),
    ("retry.max_attempts", 0, "0 is less than the minimum of 1", ""),
    ("prompt.0.role", "robot", '"robot" is not one of "system", "user" or "assistant"',
     "use one of the listed values"),
    ("prompt.0.content", "", '"" is empty', "write some text"),
    ("access", "all", '"all" is not a mapping (key: value pairs)', "write it as a YAML mapping"),
    ("filters", {"output": ["shout"]}, 'unknown filter "shout"; a filter is `pii_redact` or '
     "`{deny: REGEX}`", ""),
    ("alerts", [{"metric": "calls", "over": "400d", "above": 1}],
     'window "400d" is longer than a year (366d)', ""),
    ("tests.0.expect", [{"path": "x", "equals": 1}],
     '"x" is not a JSON path starting with `$`', "e.g. `$.items[0].name`"),
])
def test_a_refused_value_is_quoted_as_json(path: str, value: Any, message: str,
                                            fix: str) -> None:
    diags = _diagnostics(_set(make_function(), path, value))
    assert [(d.message, d.fix) for d in diags] == [(message, fix)], [d.render() for d in diags]


def test_the_issue_example_renders_as_promised() -> None:
    (diag,) = _diagnostics(make_function(version="1.2"))
    assert diag.render().endswith(
        'version: "1.2" is not a semantic version (fix: e.g. 1.2.0)')


def test_provider_names_and_auth_types_are_quoted() -> None:
    providers = copy.deepcopy(PROVIDERS)
    providers["providers"]["Groq2"] = {"type": "groq"}
    providers["providers"]["bb"] = {"type": "http", "base_url": "http://x",
                                    "auth": {"type": "basic"}}
    messages = {d.path: d.message for d in _diagnostics(make_function(), providers)}
    assert messages["providers.Groq2"].startswith('key "Groq2" is not a name')
    assert messages["providers.bb.auth"] == '`type` "basic" is not one of "bearer", "hmac"'


def test_schema_errors_speak_json() -> None:
    (typo,) = metaschema_errors({"type": "object", "properties": {"a": {"type": "strin"}}})
    assert typo.path == ("properties", "a", "type")
    assert typo.message.startswith('"strin" is not a type (did you mean "string"?)')
    (required,) = metaschema_errors({"required": [None]})
    assert required.message == 'null is not of type "string"'
    (schema,) = metaschema_errors({"items": [True]})
    assert schema.message == "[true] is not a schema: a schema is a mapping, true or false"
    data = make_function()
    data["input_schema"]["$schema"] = "http://json-schema.org/draft-07/schema#"
    (diag,) = _diagnostics(data)
    assert diag.message.startswith('`$schema` is "http://json-schema.org/draft-07/schema#";')
    data = make_function()
    data["input_schema"]["properties"]["text"] = {"$ref": "#/$defs/none"}
    assert any('`$ref` "#/$defs/none" points to nothing' in d.message
               for d in _diagnostics(data))


def test_shown_is_json_and_bounded() -> None:
    from aiops.errors import shown

    assert shown(None) == "null" and shown(True) == "true" and shown("a'b") == '"a\'b"'
    assert shown({"b": None, "a": (1, 2.5)}) == '{"a": [1, 2.5], "b": null}'
    assert shown("line\nbreak") == '"line\\nbreak"'
    assert shown("\ud800") == '"\\ud800"'  # printable, encodable
    assert shown("x" * 500, 20) == '"' + "x" * 18 + "…"


values = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.just(1.5),
                   st.sampled_from(["zq", "1.2", "Groq"]),
                   st.lists(st.one_of(st.none(), st.booleans(), st.just("zq")), max_size=2),
                   st.dictionaries(st.sampled_from(["zq", "type", "deny"]),
                                   st.one_of(st.none(), st.booleans(), st.just("zq")),
                                   max_size=2))
KEYS = ["version", "status", "description", "provider", "model", "configuration",
        "configuration.temperature", "configuration.stop", "configuration.reasoning_effort",
        "prompt", "prompt.0", "prompt.0.role", "prompt.0.content", "input_schema",
        "input_schema.type", "input_schema.properties.text", "input_schema.required",
        "output_schema", "fallbacks", "retry", "retry.backoff_s", "limits", "limits.on_limit",
        "access", "access.invoke", "filters", "filters.input", "alerts", "metadata",
        "test_providers", "tests", "tests.0", "tests.0.input", "tests.0.expect",
        "tests.0.name", "apiVersion", "name"]


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(KEYS), value=values)
def test_no_message_speaks_python(key: str, value: Any) -> None:
    for diag in _diagnostics(_set(make_function(), key, value)):
        text = f"{diag.message} {diag.fix}"
        assert not PYTHON_WORDS.search(text), (key, value, diag.render())


def test_a_yaml_key_read_as_a_number_is_quoted_as_written() -> None:
    project = load_sources({"providers.yaml": yaml.safe_dump(PROVIDERS).encode() + b"1: x\n"})
    (diag,) = project.diagnostics
    assert diag.message == 'key "1" is read as a number, not text'


@pytest.mark.parametrize(("schema", "value", "message"), [
    ({"type": "object", "properties": {"a": {}}, "additionalProperties": False},
     {"a": 1, "b'": 2}, "Additional properties are not allowed (\"b'\" was unexpected)"),
    ({"type": "object", "additionalProperties": False}, {"b": None},
     "Additional properties are not allowed (one with the value null was unexpected)"),
    ({"anyOf": [{"type": "string"}, {"type": "integer"}]}, None,
     "null is not valid under any of the schemas listed in `anyOf`"),
    ({"contains": {"type": "string"}}, [True], "no item of [true] is valid under the "
     "`contains` schema"),
    ({"not": {}}, False, "{} is not allowed for false"),
])
def test_validation_messages_of_callers_values_speak_json(schema: dict[str, Any], value: Any,
                                                          message: str) -> None:
    from aiops.schemas import CompiledSchema

    compiled = CompiledSchema(schema)
    assert [e.message for e in compiled.errors(value)] == [message]
    first = compiled.first_error(value)
    assert first is not None and first.message == message


def test_saved_plan_and_importer_messages_speak_json_too() -> None:
    from aiops.importers.picoschema import SchemaProblem, picoschema
    from aiops.plan import Plan

    with pytest.raises(ValueError, match=r"^plan format_version null is not 1$"):
        Plan.from_dict({"format_version": None})
    with pytest.raises(ValueError, match=r'^unknown action "explode"$'):
        Plan.from_dict({"format_version": 1, "changes": [{"action": "explode"}]})
    with pytest.raises(SchemaProblem, match=r"not true$"):
        picoschema({"n": True})
