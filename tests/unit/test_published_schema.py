"""The published JSON Schemas (schemas/*.schema.json, what editors check files with) match
what aiops accepts: every example in the repository passes them, as an editor runs them
(ECMA-262 regexes); what aiops refuses for its structure they refuse too, where JSON Schema
can say it; and every property has a description, for hover help."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import regress
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiops.commands import FUNCTION_TEMPLATE, PROVIDERS_TEMPLATE, schema_text
from aiops.loader import load_one
from aiops.spec import FunctionSpec, ProvidersFile
from tests import factories, fixtures_db, fixtures_providers

REPO = Path(__file__).resolve().parents[2]
KINDS = {"function": FunctionSpec, "providers": ProvidersFile}


def _ecma_regex(value: object) -> bool:
    if isinstance(value, str):
        regress.Regex(value)  # raises on what an editor's (ECMA-262) engine refuses
    return True


# Formats as an editor checks them: `regex` is ECMA-262, not Python's `re`.
FORMATS = jsonschema.FormatChecker()
FORMATS.checks("regex", raises=regress.RegressError)(_ecma_regex)


def _validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((REPO / "schemas" / f"{kind}.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=FORMATS)


VALIDATORS = {kind: _validator(kind) for kind in KINDS}


def _schema_errors(kind: str, data: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in VALIDATORS[kind].iter_errors(data)]


def _aiops_errors(kind: str, data: Any) -> list[str]:
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()
    _, _, diags = load_one(f"{kind}.yaml", text, KINDS[kind])
    return [d.render() for d in diags if d.is_error]


def _walk(node: Any, path: str = "#") -> list[tuple[str, Any]]:
    out = [(path, node)]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _walk(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _walk(v, f"{path}/{i}")
    return out


# --- the schema itself -------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_the_committed_schema_is_the_generated_one(kind: str) -> None:
    # One source: the models. Regenerate with `aiops schema [--kind providers]`.
    assert (REPO / "schemas" / f"{kind}.schema.json").read_text() == schema_text(kind)


@pytest.mark.parametrize("kind", KINDS)
def test_every_property_has_a_description(kind: str) -> None:
    schema = VALIDATORS[kind].schema
    found, missing = 0, []
    for path, node in _walk(schema):
        if not isinstance(node, dict) or not isinstance(node.get("properties"), dict) or \
                path.rsplit("/", 1)[-1] in ("if", "then", "else"):
            continue  # conditions restate properties; the descriptions are on the originals
        for name, sub in node["properties"].items():
            found += 1
            target = sub
            if isinstance(sub, dict) and "$ref" in sub and not sub.get("description"):
                target = schema["$defs"][sub["$ref"].rsplit("/", 1)[-1]]
            if not (isinstance(target, dict) and target.get("description")):
                missing.append(f"{path}/properties/{name}")
    assert found > 20 and missing == []


@pytest.mark.parametrize("kind", KINDS)
def test_every_pattern_is_one_an_editor_can_run(kind: str) -> None:
    # Editors run `pattern` as ECMA-262; Python's `re` accepts more (`(?i)`, `\Z`).
    patterns = [(p, n) for p, n in _walk(VALIDATORS[kind].schema)
                if p.endswith("/pattern") or "/patternProperties/" in p]
    assert patterns
    for path, node in patterns:
        regress.Regex(node if path.endswith("/pattern") else path.rsplit("/", 1)[-1])


@pytest.mark.parametrize("kind", KINDS)
def test_the_published_schema_passes_aiops_own_value_checks(kind: str) -> None:
    from aiops.schemas import value_problems

    assert value_problems(VALIDATORS[kind].schema) == []


# --- every example passes ----------------------------------------------------------------


def _doc_blocks() -> list[tuple[str, Any]]:
    blocks = []
    for doc in sorted([*(REPO / "docs").glob("*.md"), REPO / "README.md"]):
        text = doc.read_text()
        for m in re.finditer(r"```ya?ml\n(.*?)```", text, re.S):
            data = yaml.safe_load(m.group(1))
            line = text.count("\n", 0, m.start()) + 1
            blocks.append((f"{doc.relative_to(REPO)}:{line}", data))
    return blocks


FUNCTION_KEYS = set(FunctionSpec.model_json_schema(by_alias=True)["properties"])
EXAMPLE = yaml.safe_load((REPO / "functions/summarize/function.yaml").read_text())


def _examples() -> list[tuple[str, str, Any]]:
    out: list[tuple[str, str, Any]] = []
    for path in sorted((REPO / "functions").glob("*/function.yaml")):
        out.append((str(path.relative_to(REPO)), "function", yaml.safe_load(path.read_text())))
    out.append(("providers.yaml", "providers", yaml.safe_load((REPO / "providers.yaml")
                                                               .read_text())))
    fields = {"schema": "x", "name": "hello", "description": '"d"', "provider": "groq",
              "model": "llama-3.1-8b-instant"}
    out.append(("aiops init: function", "function",
                 yaml.safe_load(FUNCTION_TEMPLATE.format(**fields))))
    out.append(("aiops init: providers", "providers",
                yaml.safe_load(PROVIDERS_TEMPLATE.format(schema="x"))))
    for where, data in _doc_blocks():
        if isinstance(data, dict) and set(data) == {"providers"}:
            out.append((where, "providers", data))
        elif isinstance(data, dict) and set(data) <= FUNCTION_KEYS:
            out.append((where, "function", {**EXAMPLE, **data}))  # a fragment, in a function
    out += [("tests/factories.py", "function", factories.BASE_FUNCTION),
            ("tests/factories.py", "providers", factories.PROVIDERS),
            ("tests/fixtures_providers.py", "function", fixtures_providers.CLASSIFY),
            ("tests/fixtures_providers.py", "providers", fixtures_providers.PROVIDERS),
            ("tests/fixtures_db.py", "function", fixtures_db.spec_data()),
            ("tests/fixtures_db.py", "providers", yaml.safe_load(fixtures_db.PROVIDERS_YAML))]
    return out


EXAMPLES = _examples()


def test_the_examples_include_the_docs() -> None:
    docs = [where for where, _, _ in EXAMPLES if where.startswith("docs/")]
    assert len(docs) >= 7, docs  # the providers.yaml blocks and the function fragments


@pytest.mark.parametrize(("where", "kind", "data"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_every_example_passes_aiops_and_the_published_schema(where: str, kind: str,
                                                             data: Any) -> None:
    assert _aiops_errors(kind, data) == []
    assert _schema_errors(kind, data) == []


def test_the_deny_example_is_re2_not_an_ecma_regex() -> None:
    # The repository's own example, `(?i)api[_-]?key`, is valid RE2 and invalid ECMA-262:
    # the schema declared it `format: regex`, and every editor flagged it.
    assert EXAMPLE["filters"]["output"] == [{"deny": "(?i)api[_-]?key"}]
    with pytest.raises(regress.RegressError):
        regress.Regex("(?i)api[_-]?key")
    assert _schema_errors("function", EXAMPLE) == []


# --- what aiops refuses, the schema refuses ------------------------------------------------


def _set(data: Any, path: str, value: Any) -> Any:
    data = copy.deepcopy(data)
    node = data
    parts = [int(p) if p.isdigit() else p for p in path.split(".")]
    for part in parts[:-1]:
        node = node.setdefault(part, {}) if isinstance(node, dict) else node[part]
    if value is _DELETE:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return data


_DELETE = object()
FUNCTION_REFUSALS = [
    ("apiVersion", "aiops/v2"), ("apiVersion", _DELETE), ("name", "Summarize"), ("name", "s"),
    ("version", "1.2"), ("version", 1), ("version", "1." * 60 + "0"), ("status", "archived"),
    ("description", None), ("provider", "p" * 101), ("model", ""), ("model", "m" * 201),
    ("temprature", 1), ("configuration.temprature", 1), ("configuration.temperature", 3),
    ("configuration.temperature", "0.2"), ("configuration.temperature", True),
    ("configuration.max_tokens", 0), ("configuration.max_tokens", "400"),
    ("configuration.max_tokens", 1.5), ("configuration.max_tokens", False),
    ("configuration.seed", 2**63), ("configuration.stop", 3), ("configuration.stop", [1]),
    ("configuration.reasoning_effort", "max"), ("prompt", []), ("prompt", "hello"),
    ("prompt.0.role", "robot"), ("prompt.0.content", ""), ("prompt.0.name", "x"),
    ("input_schema", []), ("input_schema", _DELETE), ("output_schema", "text"),
    ("fallbacks", [{"provider": "openai"}]), ("fallbacks", [{"model": "x", "provider": "a",
                                                            "extra": 1}]),
    ("retry", {"max_attempts": 11}), ("retry", {"backoff_s": "1"}), ("retry", {"retries": 1}),
    ("limits", {"rpm": 0}), ("limits", {"rpm": True}), ("limits", {"on_limit": "block"}),
    ("limits", {"max_input_bytes": 11 << 20}), ("limits", {"max_prompt_bytes": 100}),
    ("limits", {"daily_budget_usd": -1}), ("access", {"invoke": "everyone"}),
    ("access", {"run": ["x"]}), ("filters", {"output": ["shout"]}),
    ("filters", {"output": [{"deny": 1}]}), ("filters", {"output": [{"pii_redact": "yes"}]}),
    ("filters", {"output": [{"pii_redact": True, "deny": "x"}]}),
    ("filters", {"output": [{}]}), ("filters", {"outputs": []}),
    ("alerts", [{"metric": "latency", "over": "1h", "above": 1}]),
    ("alerts", [{"metric": "calls", "over": "15 m", "above": 1}]),
    ("alerts", [{"metric": "calls", "over": "367d", "above": 1}]),
    ("alerts", [{"metric": "calls", "over": "8785h", "above": 1}]),
    ("alerts", [{"metric": "calls", "over": "0m", "above": 1}]),
    ("alerts", [{"metric": "calls", "over": "1h"}]), ("metadata", []),
    ("alerts", [{"metric": "calls", "over": "1h", "above": 1, "below": 2}]),
    ("alerts", [{"metric": "calls", "over": "1h", "ratio_above": 2}]),
    ("alerts", [{"metric": "calls", "over": "1h", "baseline": "7d", "above": 1}]),
    ("alerts", [{"metric": "calls", "over": "1h", "baseline": "7d", "ratio_above": 0}]),
    ("alerts", [{"metric": "quota_usage", "baseline": "1d", "ratio_above": 2}]),
    ("alerts", [{"metric": "error_rate", "above": 0.1}]),
    ("alerts", [{"metric": "calls", "over": "1h", "above": 1, "notify": "ops"}]),
    ("alerts", [{"metric": "calls", "over": "1h", "above": 1, "notify": ["o ps"]}]),
    ("alerts", [{"metric": "calls", "over": "1h", "above": 1, "severity": "page"}]),
    ("alerts", [{"metric": "calls", "over": "1h", "above": 1, "for": "0s"}]),
    ("alerts", [{"metric": "calls", "over": "1h", "above": 1, "min_calls": -1}]),
    ("alerts", [{"metric": "calls", "over": "1h", "above": 1, "name": "Errors"}]),
    ("alerts", [{"metric": "calls", "over": "1h", "above": 1, "repeat": "400d"}]),
    ("test_providers", "groq"), ("tests", [{"name": "Bad Name", "input": {}}]),
    ("tests", [{"name": "a"}]), ("tests", [{"name": "a", "input": {}, "expect": [{}]}]),
    ("tests", [{"name": "a", "input": {}, "expect": [{"equals": 1, "contains": 1}]}]),
    ("tests", [{"name": "a", "input": {}, "expect": [{"path": "$.a", "schema_valid": True}]}]),
    ("tests", [{"name": "a", "input": {}, "expect": [{"path": "a", "equals": 1}]}]),
    ("tests", [{"name": "a", "input": {}, "expect": [{"max_latency_ms": 0}]}]),
    ("tests", [{"name": "a", "input": {}, "expect": [{"not": {}}]}]),
    ("tests", [{"name": "a", "input": {}, "expect": [{"length": {"min": "1"}}]}]),
    ("tests", [{"name": "a", "input": {}, "expect": [{"schema_valid": True, "x": 1}]}]),
]
PROVIDERS = yaml.safe_load((REPO / "providers.yaml").read_text())
PROVIDER_REFUSALS = [
    ("providers", []), ("providers.Groq", {"type": "groq"}), ("providers.g", {"type": "groq"}),
    ("providers.xy", {"type": "anthropic"}), ("providers.xy", {"type": "http"}),
    ("providers.xy", {"type": "http", "base_url": None}),
    ("providers.xy", {"type": "groq", "auth": {"type": "bearer", "token_env": "T"}}),
    ("providers.xy", {"type": "http", "base_url": "ftp://x"}),
    ("providers.xy", {"type": "http", "base_url": "http://x", "auth": {"type": "basic"}}),
    ("providers.xy", {"type": "http", "base_url": "http://x",
                     "auth": {"type": "hmac", "secret_env": "S", "window_s": 0}}),
    ("providers.xy", {"type": "http", "base_url": "http://x", "auth": {"type": "bearer"}}),
    ("providers.xy", {"type": "groq", "api_key_env": "sk-proj-abc"}),
    ("providers.xy", {"type": "groq", "api_key_env": "gsk_" + "Qx7bN2pLk9ZrT4vW" * 3}),
    ("providers.xy", {"type": "http", "base_url": "http://x",
                      "auth": {"type": "bearer", "token_env": "ghp_" + "a1B2c3D4" * 4}}),
    ("providers.xy", {"type": "groq", "api_key_env": "1KEY"}),
    ("providers.xy", {"type": "openai", "base_url": "https://user:pass@example.com/v1"}),
    ("providers.xy", {"type": "http", "base_url": "https://sk-abcdefghijklmnop@x/aiops"}),
    ("providers.xy", {"type": "groq", "timeout_s": 0}),
    ("providers.xy", {"type": "groq", "timeout_s": "30"}),
    ("providers.xy", {"type": "groq", "max_response_bytes": 10}),
    ("providers.xy", {"type": "groq", "limits": {"rpm": 0}}),
    ("providers.xy", {"type": "groq", "limits": {"rph": 1}}),
    ("providers.xy", {"type": "groq", "models": {"m": {"input_per_mtok": 1}}}),
    ("providers.xy", {"type": "groq", "models": {"m": {"input_per_mtok": -1,
                                                       "output_per_mtok": 1}}}),
    ("providers.xy", {"type": "groq", "region": "eu"}),
]
# What JSON Schema cannot say, and aiops refuses all the same (each with its reason).
INEXPRESSIBLE = [
    ("function", "limits", {"max_prompt_bytes": 2048, "max_input_bytes": 4096},
     "a comparison of two values (max_prompt_bytes >= max_input_bytes)"),
    ("function", "tests", [{"name": "a", "input": {}, "expect": [{"length": {"min": 3,
                                                                            "max": 1}}]}],
     "a comparison of two values (min <= max)"),
    ("function", "alerts", [{"metric": "calls", "over": "1h", "above": 1},
                            {"metric": "calls", "over": "1h", "below": 1}],
     "two alert rules with one name (calls_1h): uniqueness of a derived value"),
    ("function", "filters", {"output": [{"deny": "(?=x)"}]},
     "RE2's syntax (the schema has no regex dialect but ECMA-262's)"),
    ("function", "tests", [{"name": "a", "input": {}, "expect": [{"matches": "a(?!b)"}]}],
     "RE2's syntax, in matches"),
    ("providers", "providers.groq.api_key_env", "Hm4cS3crQ9wE8rT7yU6iO5pA4sD3fG2hJ1kL",
     "a key without a known prefix: randomness is judged, not matched"),
    ("providers", "providers.groq.base_url",
     "https://example.com/v1?api-key=3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c",
     "a key in a URL's query: randomness is judged, not matched"),
]
REFUSALS = [("function", p, v) for p, v in FUNCTION_REFUSALS] + [
    ("providers", p, v) for p, v in PROVIDER_REFUSALS]


@pytest.mark.parametrize(("kind", "path", "value"), REFUSALS,
                         ids=[f"{k}:{p}={v!r}"[:70] for k, p, v in REFUSALS])
def test_what_aiops_refuses_for_its_structure_the_schema_refuses(kind: str, path: str,
                                                                 value: Any) -> None:
    data = _set(EXAMPLE if kind == "function" else PROVIDERS, path, value)
    assert _aiops_errors(kind, data), "aiops accepts it"
    assert _schema_errors(kind, data), "the published schema accepts it"


@pytest.mark.parametrize(("kind", "path", "value", "why"), INEXPRESSIBLE,
                         ids=[case[-1] for case in INEXPRESSIBLE])
def test_what_the_schema_cannot_say_aiops_still_refuses(kind: str, path: str, value: Any,
                                                        why: str) -> None:
    data = _set(EXAMPLE if kind == "function" else PROVIDERS, path, value)
    assert _aiops_errors(kind, data)
    assert _schema_errors(kind, data) == []  # if this fails, move the case up: it is said


text = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=6)
leaves = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.5, 2.0]),
                   st.sampled_from(["", "x", "1", "1.0.0", "$.a", "15m", "groq", "pii_redact",
                                    "wait", "user", "aiops/v1", "http://x"]), text)
values = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=2),
    st.dictionaries(st.sampled_from(["role", "content", "min", "max", "name", "input", "type",
                                     "equals", "path", "deny", "x"]), inner, max_size=2)),
    max_leaves=6)
PATHS = {
    "function": ["version", "status", "description", "provider", "model", "configuration",
                 "configuration.temperature", "configuration.stop", "configuration.seed",
                 "prompt", "prompt.0", "prompt.0.role", "fallbacks", "retry",
                 "retry.max_attempts", "limits", "limits.rpm", "limits.on_limit", "access",
                 "access.view", "filters", "filters.output", "alerts", "metadata",
                 "test_providers", "tests", "tests.0", "tests.0.expect", "tests.0.name",
                 "input_schema", "output_schema", "name", "apiVersion"],
    "providers": ["providers", "providers.xy", "providers.groq", "providers.groq.type",
                  "providers.groq.api_key_env", "providers.groq.base_url",
                  "providers.groq.timeout_s", "providers.groq.limits",
                  "providers.groq.limits.tpm", "providers.groq.models",
                  "providers.groq.models.m", "providers.groq.auth"],
}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
@pytest.mark.parametrize("kind", KINDS)
def test_aiops_and_the_schema_agree_on_any_value_in_any_place(kind: str,
                                                              data: st.DataObject) -> None:
    doc = _set(EXAMPLE if kind == "function" else PROVIDERS, data.draw(st.sampled_from(PATHS[kind])), data.draw(values))
    by_aiops, by_schema = _aiops_errors(kind, doc), _schema_errors(kind, doc)
    assert bool(by_aiops) == bool(by_schema), (by_aiops, by_schema)
