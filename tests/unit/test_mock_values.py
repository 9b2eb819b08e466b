"""The mock provider's generated output fits every schema the format accepts.

Properties over generated schemas (hypothesis, satisfiable by construction: every keyword the
issue names, nested through `$ref`s, combinators, arrays of objects), and over every JSON
Schema in the repository and in ../shared/realdata (read in place): each generated value
validates under two independent validators, formats included, and the same seed gives the
same value. What the generator cannot write is a CannotGenerate that says where and why.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiops.importers.picoschema import SchemaProblem, picoschema
from aiops.providers import mock_values
from aiops.providers.mock_values import CannotGenerate, generate
from tests.conftest import REALDATA, REPO
from tests.factories import BASE_FUNCTION
from tests.fixtures_providers import CLASSIFY


def assert_valid(schema: Any, value: Any) -> None:
    """Valid under jsonschema (its format checker) and jsonschema-rs (formats validated)."""
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    errors = [e.message for e in cls(schema, format_checker=cls.FORMAT_CHECKER)
              .iter_errors(value)]
    assert errors == [], (json.dumps(value)[:500], errors[:3])
    assert jsonschema_rs.validator_for(schema, validate_formats=True).is_valid(value), value


def again(schema: Any, seed: str) -> Any:
    """The value generated anew, not the one remembered."""
    mock_values._GENERATED.clear()
    return generate(schema, seed)


def check(schema: Any, seeds: tuple[str, ...] = ("a", "b", "c")) -> None:
    for seed in seeds:
        value = generate(schema, seed)
        assert_valid(schema, value)
        assert again(schema, seed) == value  # deterministic


# --- the defects of issue 10, one by one ------------------------------------------------------

ENTITY = {"type": "object", "required": ["name", "kind"], "additionalProperties": False,
          "properties": {"name": {"type": "string", "minLength": 1},
                         "kind": {"enum": ["person", "place"]}}}


def test_an_array_of_refs_comes_back_as_objects() -> None:
    """Before: `{"entities": ["entities0 delta bravo"]}` (strings), refused by the schema."""
    schema = {"type": "object", "required": ["entities"], "$defs": {"Entity": ENTITY},
              "properties": {"entities": {"type": "array", "items": {"$ref": "#/$defs/Entity"},
                                          "minItems": 2, "maxItems": 3}}}
    value = generate(schema, "seed")
    assert_valid(schema, value)
    assert all(isinstance(e, dict) and e["kind"] in ("person", "place")
               for e in value["entities"])


@pytest.mark.parametrize("schema", [
    {"allOf": [{"type": "object", "properties": {"a": {"type": "integer", "minimum": 5}},
                "required": ["a"]},
               {"properties": {"a": {"maximum": 6}, "b": {"const": "x"}}, "required": ["b"]}]},
    {"anyOf": [{"type": "integer", "minimum": 10, "maximum": 5}, {"type": "string"}]},
    {"oneOf": [{"type": "string", "maxLength": 3}, {"type": "string", "minLength": 10}]},
    {"type": "object", "definitions": {"E": ENTITY},
     "properties": {"e": {"$ref": "#/definitions/E"}}, "required": ["e"]},
    {"type": "array", "items": {"type": "array", "items": ENTITY, "minItems": 2},
     "minItems": 2, "maxItems": 2},
    {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 3},
     "minItems": 3, "uniqueItems": True},
    {"type": "string", "format": "date-time"}, {"type": "string", "format": "uuid"},
    {"type": "string", "format": "email", "maxLength": 40},
    {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2,4}$"},
    {"type": "string", "pattern": "(?i)^v[0-9]+$"},
    {"type": "string", "minLength": 30, "maxLength": 31},
    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    {"type": "number", "multipleOf": 0.1, "minimum": 0.25},
    {"type": "integer", "multipleOf": 7, "minimum": 20, "maximum": 30},
    {"type": "object", "additionalProperties": False, "minProperties": 1,
     "properties": {"a": {"type": "null"}, "b": {"type": "boolean"}}},
    {"type": "object", "properties": {"kind": {"enum": ["a", "b"]}},
     "if": {"properties": {"kind": {"const": "a"}}}, "then": {"required": ["x"],
                                                            "properties": {"x": {"const": 1}}}},
    {"type": "object", "required": ["root"], "properties": {"root": {"$ref": "#/$defs/node"}},
     "$defs": {"node": {"type": "object", "required": ["value", "children"], "properties": {
         "value": {"type": "integer"},
         "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}}},
    {"type": "string", "not": {"enum": ["value alpha alpha", "value bravo bravo"]}},
], ids=lambda s: json.dumps(s)[:60])
def test_keywords_the_format_accepts(schema: dict[str, Any]) -> None:
    check(schema)


@pytest.mark.parametrize("pattern", ["^(?<word>ab)c$", "^\\p{Lu}\\p{L}*$", "^[\\p{L} ]{3,}$",
                                     "^x(?i)Y+$"])
def test_patterns_python_does_not_read(pattern: str) -> None:
    """ECMAScript's named groups, Unicode classes, Rust's inline flags: the format's
    validator (jsonschema-rs) reads them, and so does the generator."""
    schema = {"type": "string", "pattern": pattern}
    validator = jsonschema_rs.validator_for(schema)
    assert all(validator.is_valid(generate(schema, seed)) for seed in "abc")


@pytest.mark.parametrize(("schema", "where", "says"), [
    ({"type": "string", "pattern": "^(?=.*[0-9])[a-z0-9]{8}$"}, "$",
     "uses a lookahead or lookbehind, which the mock's string generator does not write"),
    ({"type": "object", "properties": {"p": {"$ref": "https://example.com/x.json"}},
      "required": ["p"]}, "$", "does not compile: Resource 'https://example.com/x.json' is "
                               "not present in a registry and retrieving it failed"),
    ({"type": "object", "required": ["x"], "additionalProperties": False}, "$.x",
     "additionalProperties: false leaves it out"),
    ({"allOf": [{"type": "string"}, {"type": "integer"}]}, "$", "no type is left"),
    ({"type": "array", "items": {"type": "boolean"}, "minItems": 3, "uniqueItems": True},
     "$", "uniqueItems"),
])
def test_what_cannot_be_generated_says_where_and_why(schema: dict[str, Any], where: str,
                                                     says: str) -> None:
    with pytest.raises(CannotGenerate) as caught:
        generate(schema, "seed")
    assert caught.value.where == where and says in caught.value.reason


# --- generated schemas ----------------------------------------------------------------------

NAMES = st.sampled_from(["id", "name", "kind", "items", "score", "when", "tags", "x-y"])
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-50, 50),
                         st.text("abc", max_size=4))
FORMATS = ["date-time", "date", "time", "email", "uri", "uuid", "hostname", "ipv4", "ipv6",
           "duration", "json-pointer", "uri-reference", "regex"]
PATTERNS = ["^[a-z]+$", "^[A-Z]{2}-\\d{3}$", "\\d", "^(foo|bar)[0-9]*$", "^[^ ]{2,5}$",
            "^(ab)c\\1$", "^v\\d+\\.\\d+\\.\\d+$", "^[a-z][a-z0-9-]{0,62}$"]


@st.composite
def strings(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["plain", "format", "pattern"]))
    if kind == "format":
        return {"type": "string", "format": draw(st.sampled_from(FORMATS))}
    if kind == "pattern":
        out = {"type": "string", "pattern": draw(st.sampled_from(PATTERNS))}
        if draw(st.booleans()) and not out["pattern"].endswith("$"):
            out["minLength"] = draw(st.integers(0, 12))
        return out
    low = draw(st.integers(0, 8))
    out = {"type": "string", "minLength": low}
    if draw(st.booleans()):
        out["maxLength"] = low + draw(st.integers(0, 8))
    return out


@st.composite
def numbers(draw: Any) -> dict[str, Any]:
    integer = draw(st.booleans())
    out: dict[str, Any] = {"type": "integer" if integer else "number"}
    low = draw(st.one_of(st.none(), st.integers(-100, 100)))
    span = draw(st.integers(2, 50))
    if low is not None:
        out["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = low
    if draw(st.booleans()):
        top = (low if low is not None else 0) + span
        out["exclusiveMaximum" if draw(st.booleans()) else "maximum"] = top
    if draw(st.booleans()):
        out["multipleOf"] = draw(st.sampled_from([1, 2, 5] if integer else [0.5, 0.25, 0.1, 2]))
        if not integer and "exclusiveMaximum" not in out and "maximum" in out:
            out["maximum"] += 10
    return out


LEAVES = st.one_of(
    strings(), numbers(), st.just({"type": "boolean"}), st.just({"type": "null"}),
    JSON_SCALARS.map(lambda v: {"const": v}),
    st.lists(JSON_SCALARS, min_size=1, max_size=4, unique_by=json.dumps).map(
        lambda vs: {"enum": vs}),
    st.just({}), st.just(True))


@st.composite
def objects(draw: Any, children: Any) -> dict[str, Any]:
    props = draw(st.dictionaries(NAMES, children, max_size=4))
    out: dict[str, Any] = {"type": "object", "properties": props}
    if props:
        out["required"] = draw(st.lists(st.sampled_from(sorted(props)), unique=True))
    if draw(st.booleans()):
        out["additionalProperties"] = False
    return out


@st.composite
def arrays(draw: Any, children: Any) -> dict[str, Any]:
    low = draw(st.integers(0, 3))
    out: dict[str, Any] = {"type": "array", "items": draw(children), "minItems": low}
    if draw(st.booleans()):
        out["maxItems"] = low + draw(st.integers(0, 3))
    return out


@st.composite
def one_ofs(draw: Any, children: Any) -> dict[str, Any]:
    """Branches told apart by a discriminator, as tagged unions are."""
    branches = draw(st.lists(objects(children), min_size=1, max_size=3))
    for i, branch in enumerate(branches):
        branch["properties"]["type"] = {"const": f"kind{i}"}
        branch["required"] = [*branch.get("required", []), "type"]
    return {"oneOf": branches}


@st.composite
def all_ofs(draw: Any, children: Any) -> dict[str, Any]:
    """Parts that agree: objects with different properties, or bounds that overlap."""
    if draw(st.booleans()):
        a = draw(objects(children))
        b = draw(objects(children))
        for name in set(a["properties"]) & set(b["properties"]):
            del b["properties"][name]
        b["required"] = [n for n in b.get("required", []) if n in b["properties"]]
        a.pop("additionalProperties", None)
        b.pop("additionalProperties", None)
        return {"allOf": [a, b]}
    low = draw(st.integers(-20, 20))
    return {"allOf": [{"type": "integer", "minimum": low},
                      {"maximum": low + draw(st.integers(0, 5))}, {"description": "bounded"}]}


def refs(children: Any) -> Any:
    return children.map(lambda c: {"__def__": c})


def extend(children: Any) -> Any:
    return st.one_of(objects(children), arrays(children), one_ofs(children), all_ofs(children),
                     st.lists(children, min_size=1, max_size=3).map(lambda b: {"anyOf": b}),
                     refs(children),
                     children.map(lambda c: {"anyOf": [c, {"type": "null"}]}))


def hoist(schema: Any, defs: dict[str, Any]) -> Any:
    """`{"__def__": s}` markers -> `$ref`s to the root's `$defs`."""
    if isinstance(schema, dict):
        if "__def__" in schema:
            name = f"d{len(defs)}"
            defs[name] = None
            defs[name] = hoist(schema["__def__"], defs)
            return {"$ref": f"#/$defs/{name}"}
        return {k: hoist(v, defs) for k, v in schema.items()}
    if isinstance(schema, list):
        return [hoist(v, defs) for v in schema]
    return schema


def rooted(schema: Any) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    body = hoist(schema, defs)
    return {"type": "object", "properties": {"out": body}, "required": ["out"], "$defs": defs}


SCHEMAS = st.recursive(LEAVES, extend, max_leaves=12).map(rooted)


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(SCHEMAS, st.sampled_from(["s1", "s2", "s3"]))
def test_generated_schemas(schema: dict[str, Any], seed: str) -> None:
    value = generate(schema, seed)
    assert_valid(schema, value)
    assert again(schema, seed) == value


# --- every schema in the repository and in ../shared/realdata ---------------------------------


class _AnyTag(yaml.SafeLoader):
    """Reads recordings whose YAML carries Python tags (multidict keys): as plain values."""


_AnyTag.add_multi_constructor("", lambda loader, suffix, node: None)


def _documents(path: Path) -> Iterator[Any]:
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".json":
        yield json.loads(text)
    elif path.suffix in (".prompt", ".prompty"):
        parts = re.split(r"^---\s*$", text, maxsplit=2, flags=re.M)
        if len(parts) == 3:
            yield yaml.load(parts[1], Loader=_AnyTag)
    elif path.suffix in (".yaml", ".yml"):
        yield from yaml.load_all(text, Loader=_AnyTag)


def _looks_like_schema(node: Any) -> bool:
    return isinstance(node, dict) and (
        (isinstance(node.get("properties"), dict) and node.get("type", "object") == "object")
        or any(k in node for k in ("$ref", "$defs", "anyOf", "oneOf", "allOf")))


def _schemas(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    """The schemas inside a document: tools' parameters, response formats, input and output
    schemas, Dotprompt's (through Picoschema), and any object schema; JSON bodies of
    recorded requests are read too."""
    if isinstance(node, str) and node.lstrip().startswith("{") and '"' in node:
        try:
            node = json.loads(node)
        except ValueError:
            return
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "schema" and isinstance(value, dict) and where.endswith(
                    (".input", ".output")):
                try:
                    converted = picoschema(value)
                except SchemaProblem:
                    continue
                yield f"{where}.schema", converted
                continue
            if key != "$defs" and _looks_like_schema(value):
                yield f"{where}.{key}", value
                continue
            yield from _schemas(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _schemas(value, f"{where}[{i}]")


def _readable(path: Path) -> list[Any]:
    try:
        return list(_documents(path))
    except (ValueError, yaml.YAMLError):  # the negative examples (a broken .prompt file)
        return []


def _collect(root: Path, paths: list[Path]) -> list[tuple[str, Any]]:
    found = []
    for path in paths:
        for doc in _readable(path):
            name = str(path.relative_to(root))
            if isinstance(doc, dict) and ("$schema" in doc or "$defs" in doc) and \
                    path.suffix == ".json":
                found.append((name, doc))
                continue
            if isinstance(doc, dict) and "components" in doc:  # OpenAPI: refs need the root
                for key in (doc["components"].get("schemas") or {}):
                    found.append((f"{name}#{key}",
                                  {**doc, "$ref": f"#/components/schemas/{key}"}))
                continue
            found += [(f"{name}:{where}", s) for where, s in _schemas(doc, "")]
    return found


REPO_FILES = sorted([*REPO.glob("functions/*/function.yaml"), *REPO.glob("schemas/*.json"),
                     REPO / "docs" / "custom-backend.openapi.yaml", REPO / "mock-responses.yaml",
                     *REPO.glob("tests/**/*.yaml"), *REPO.glob("tests/**/*.json")])
FIXTURES = {"tests/factories.py:BASE_FUNCTION": BASE_FUNCTION,
            "tests/fixtures_providers.py:CLASSIFY": CLASSIFY}
REPO_SCHEMAS = _collect(REPO, REPO_FILES) + [
    (f"{name}.{key}", function[key]) for name, function in FIXTURES.items()
    for key in ("input_schema", "output_schema")]
REAL_SCHEMAS = _collect(REALDATA, sorted(p for p in REALDATA.rglob("*") if p.is_file()
                                         and p.suffix in (".json", ".yaml", ".yml", ".prompt",
                                                          ".prompty"))) \
    if REALDATA.is_dir() else []


def test_the_schemas_are_found(realdata: Path) -> None:
    """The collection is not vacuous: the shapes the issue names are among them."""
    assert len(REPO_SCHEMAS) >= 12
    assert {"schemas/function.schema.json", "schemas/providers.schema.json"} <= {
        n for n, _ in REPO_SCHEMAS}
    assert len(REAL_SCHEMAS) >= 60
    text = json.dumps([s for _, s in REAL_SCHEMAS])
    for word in ('"$ref"', '"$defs"', '"enum"', '"items"', '"required"', '"default"'):
        assert word in text, word
    assert any("response_format" in n for n, _ in REAL_SCHEMAS)
    assert any(n.startswith("prompt-files/dotprompt") for n, _ in REAL_SCHEMAS)


@pytest.mark.parametrize(("where", "schema"), REPO_SCHEMAS, ids=[n for n, _ in REPO_SCHEMAS])
def test_every_schema_of_the_repository(where: str, schema: Any) -> None:
    check(schema)


@pytest.mark.parametrize(("where", "schema"), REAL_SCHEMAS, ids=[n for n, _ in REAL_SCHEMAS])
def test_every_schema_of_the_shared_realdata(realdata: Path, where: str, schema: Any) -> None:
    check(schema)


@pytest.mark.parametrize(("schema", "says"), [
    ({"type": "object", "properties": {"a": {"type": 5}}},
     "does not compile at /properties/a/type"),
    ({"type": "object", "required": "a"}, "does not compile at /required"),
])
def test_a_schema_that_is_not_json_schema_is_named_as_such(schema: Any, says: str) -> None:
    with pytest.raises(CannotGenerate, match=says):
        generate(schema, "seed")
