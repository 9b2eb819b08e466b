"""Real function-calling and structured-output schemas, used as aiops input and output schemas.

The schemas were sent to OpenAI and Groq by real projects (tools' `parameters`, legacy
`functions`, `response_format.json_schema.schema`) or written in promptfoo configs; they are
read in place from the shared realdata directory. Each becomes both schemas of a function built here, which must load and
check cleanly, and whose breaking changes `breaking_changes` must see.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiops.checks import check_project
from aiops.compat import breaking_changes
from aiops.loader import load_sources
from tests.conftest import REALDATA
from tests.factories import make_files, make_function

SCHEMAS_DIR = "prompt-files/function-schemas"


def _collect(root: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(file, schema name, schema) for every schema in the directory."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    folder = root / SCHEMAS_DIR
    if not folder.is_dir():
        return out
    for path in sorted(folder.iterdir()):
        if path.suffix == ".yaml":
            doc: Any = {"functions": yaml.safe_load(path.read_text(encoding="utf-8"))}
        else:
            doc = json.loads(path.read_text(encoding="utf-8"))
        for tool in doc.get("tools", []):
            out.append((path.name, tool["function"]["name"], tool["function"]["parameters"]))
        for fn in doc.get("functions", []):
            out.append((path.name, fn["name"], fn["parameters"]))
        if doc.get("type") == "json_schema":
            out.append((path.name, doc["json_schema"]["name"], doc["json_schema"]["schema"]))
    return out


def _walk(node: Any, path: tuple[Any, ...] = ()) -> Any:
    """Every object schema (`type: object` with properties) inside a promptfoo config."""
    if isinstance(node, dict):
        if node.get("type") == "object" and isinstance(node.get("properties"), dict):
            yield path, node
            return
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, (*path, i))


def _collect_promptfoo(root: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """Tool parameters, response formats and `is-json` schemas written in promptfoo configs."""
    folder = root / PROMPTFOO_DIR
    out = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else ():
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        out += [(path.name, ".".join(map(str, where)), schema) for where, schema in _walk(doc)]
    return out


PROMPTFOO_DIR = "prompt-files/promptfoo"
CASES = _collect(REALDATA) + _collect_promptfoo(REALDATA)
IDS = [f"{file}:{name}" for file, name, _ in CASES]


def _function(name: str, input_schema: dict[str, Any],
              output_schema: dict[str, Any]) -> dict[str, Any]:
    props = input_schema.get("properties", {})
    lines = [f"{key}: {{{{ {key} }}}}" for key in props] or ["Go."]
    return make_function(
        name=name, version="1.0.0", provider="openai", model="gpt-4o-mini", description=None,
        configuration=None, tests=None, input_schema=input_schema, output_schema=output_schema,
        prompt=[{"role": "system", "content": "Answer with JSON only."},
                {"role": "user", "content": "\n".join(lines)}])


def _files(fn: dict[str, Any]) -> dict[str, bytes]:
    return make_files(fn)


def _spec(schema: dict[str, Any], output: dict[str, Any] | None = None) -> Any:
    project = load_sources(_files(_function("realdata", schema, output or schema)))
    assert project.ok, [d.render() for d in project.diagnostics]
    return project.functions["realdata"].spec


def test_the_shared_schemas_are_all_found(realdata: Path) -> None:
    found = _collect(realdata)
    files = {file for file, _, _ in found}
    assert len(files) == len(list((realdata / SCHEMAS_DIR).iterdir())) == 15
    assert len(found) == 43  # 21 tools come from one pydantic-ai request
    assert ("pydanticai__groq_final_result_enum.tools.json", "final_result") in {
        (f, n) for f, n, _ in found}
    promptfoo = _collect_promptfoo(realdata)
    assert [(f, n.split(".")[-1]) for f, n, _ in promptfoo] == [
        ("groq__promptfooconfig.yaml", "parameters"), ("json-output__promptfooconfig.yaml", "value"),
        ("openai-function-call__promptfooconfig.yaml", "parameters"),
        ("openai-structured-output__promptfooconfig.chat.yaml", "schema"),
        ("openai-structured-output__promptfooconfig.chat.yaml", "schema"),
        ("openai-tools-call__promptfooconfig.yaml", "parameters")]


@pytest.mark.parametrize(("file", "name", "schema"), CASES, ids=IDS)
def test_real_schema_loads_and_checks_as_both_schemas(realdata: Path, file: str, name: str,
                                                      schema: dict[str, Any]) -> None:
    project = load_sources(_files(_function("realdata", schema, schema)))
    assert project.ok, [d.render() for d in project.diagnostics]
    errors = [d for d in check_project(project) if d.is_error]
    assert errors == []
    spec = project.functions["realdata"].spec
    assert spec.input_schema == schema and spec.output_schema == schema


def test_an_invalid_schema_beside_them_is_refused(realdata: Path) -> None:
    """The check is not vacuous: the same shapes with a broken keyword fail."""
    schema = copy.deepcopy(next(s for f, n, s in CASES if n == "math_response"))
    schema["properties"]["answer"]["type"] = "decimal"
    project = load_sources(_files(_function("realdata", schema, schema)))
    errors = [d for d in check_project(project) if d.code == "schema-invalid"]
    assert {d.path for d in errors} == {"input_schema.properties.answer.type",
                                        "output_schema.properties.answer.type"}


REQUIRED_OUTPUTS = [(f, n, s) for f, n, s in CASES if s.get("required")]


@pytest.mark.parametrize(("file", "name", "schema"), REQUIRED_OUTPUTS,
                         ids=[f"{f}:{n}" for f, n, _ in REQUIRED_OUTPUTS])
def test_removing_a_required_output_property_is_breaking(realdata: Path, file: str, name: str,
                                                         schema: dict[str, Any]) -> None:
    gone = schema["required"][0]
    narrower = copy.deepcopy(schema)
    narrower["required"].remove(gone)
    del narrower["properties"][gone]
    old, new = _spec(schema), _spec(schema, output=narrower)
    assert f"output.{gone}: output property removed" in breaking_changes(old, new)
    # Only the output changed: the input side reports nothing.
    assert not [i for i in breaking_changes(old, new) if i.startswith("input")]


def test_a_required_output_no_longer_required_is_breaking(realdata: Path) -> None:
    schema = next(s for f, n, s in CASES if n == "customer_support_analysis")
    looser = copy.deepcopy(schema)
    looser["required"].remove("urgency")
    assert breaking_changes(_spec(schema), _spec(schema, output=looser)) == [
        "output.urgency: no longer required"]


ENUM_CASES = [("pydanticai__groq_final_result_enum.tools.json", "final_result", "response"),
              ("promptfoo__customer_support_analysis.response_format.json",
               "customer_support_analysis", "category"),
              ("promptfoo__get_current_weather.functions.yaml", "get_current_weather", "unit")]


@pytest.mark.parametrize(("file", "name", "prop"), ENUM_CASES)
def test_enum_narrowing_is_breaking_on_input_and_widening_on_output(
        realdata: Path, file: str, name: str, prop: str) -> None:
    schema = next(s for f, n, s in CASES if f == file and n == name)
    values = schema["properties"][prop]["enum"]
    assert len(values) >= 2
    narrowed = copy.deepcopy(schema)
    narrowed["properties"][prop]["enum"] = values[:-1]
    old = _spec(schema)
    # input narrowed: callers that send the dropped value now fail
    items = breaking_changes(old, _spec(narrowed, output=schema))
    assert items == [f"input.{prop}: enum no longer accepts {json.dumps([values[-1]], ensure_ascii=False)}"]
    # output narrowed: every value callers can receive was already possible
    assert breaking_changes(old, _spec(schema, output=narrowed)) == []
    # output widened: callers may receive a value they do not handle
    widened = copy.deepcopy(schema)
    widened["properties"][prop]["enum"] = [*values, "unknown"]
    assert breaking_changes(old, _spec(schema, output=widened)) == [
        f'output.{prop}: enum widened with ["unknown"]']
