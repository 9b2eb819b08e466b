"""The one factory of test specs: function files, specs and projects from values, no disk.

Two bases, for the two kinds of project the tests build:
- `BASE_FUNCTION` (`summarize` on groq, with a golden test; `PROVIDERS` serves it):
  `make_function(**overrides)`, for the loader, the checks and the format;
- `GREET` (on the `mock` provider of `tests.fixtures_db.PROVIDERS_YAML`):
  `spec_data(name, **overrides)` and `make_spec(name, **overrides)`, for the reconciler and
  the runner.
Overrides replace top-level keys; None removes one.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from aiops.loader import Project, load_sources
from aiops.spec import FunctionSpec

BASE_FUNCTION: dict[str, Any] = {
    "apiVersion": "aiops/v1",
    "name": "summarize",
    "version": "1.2.0",
    "description": "Summarize an article.",
    "provider": "groq",
    "model": "llama-3.1-8b-instant",
    "configuration": {"temperature": 0.2, "max_tokens": 400},
    "prompt": [
        {"role": "system", "content": "You are a concise editor."},
        {"role": "user", "content": "Summarize in {{ bullets }} bullets:\n{{ text }}\n"},
    ],
    "input_schema": {
        "type": "object",
        "required": ["text"],
        "properties": {
            "text": {"type": "string", "minLength": 1},
            "bullets": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
        },
        "additionalProperties": False,
    },
    "output_schema": {
        "type": "object",
        "required": ["bullets"],
        "properties": {"bullets": {"type": "array", "items": {"type": "string"}}},
    },
    "tests": [{"name": "short", "input": {"text": "The fox."},
               "expect": [{"schema_valid": True}]}],
}

PROVIDERS: dict[str, Any] = {
    "providers": {
        "groq": {"type": "groq", "api_key_env": "GROQ_API_KEY",
                 "models": {"llama-3.1-8b-instant": {"input_per_mtok": 0.05,
                                                     "output_per_mtok": 0.08}}},
        "openai": {"type": "openai", "api_key_env": "OPENAI_API_KEY",
                   "models": {"gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}}},
    }
}


GREET: dict[str, Any] = {
    "apiVersion": "aiops/v1",
    "name": "greet",
    "version": "1.0.0",
    "description": "The greet function.",
    "provider": "mock",
    "model": "mock-small",
    "configuration": {"temperature": 0.2, "max_tokens": 100},
    "prompt": [{"role": "system", "content": "You are terse."},
               {"role": "user", "content": "Say hello to {{ who }}."}],
    "input_schema": {"type": "object", "required": ["who"],
                     "properties": {"who": {"type": "string"}},
                     "additionalProperties": False},
    "output_schema": {"type": "string"},
}


def _replaced(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(base)
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def make_function(**overrides: Any) -> dict[str, Any]:
    """`BASE_FUNCTION` with top-level keys replaced (None removes a key)."""
    return _replaced(BASE_FUNCTION, overrides)


def spec_data(name: str = "greet", **overrides: Any) -> dict[str, Any]:
    """`GREET` named `name` (its description says so), top-level keys replaced."""
    return _replaced(GREET, {"name": name, "description": f"The {name} function.", **overrides})


def make_spec(name: str = "greet", **overrides: Any) -> FunctionSpec:
    """`spec_data(name, **overrides)` as a FunctionSpec."""
    return FunctionSpec.model_validate(spec_data(name, **overrides))


def dump(data: Any) -> bytes:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()


def make_files(*functions: dict[str, Any], providers: Any = PROVIDERS) -> dict[str, bytes]:
    files = {f"functions/{f['name']}/function.yaml": dump(f) for f in functions}
    if providers is not None:
        files["providers.yaml"] = dump(providers)
    return files


def make_project(*functions: dict[str, Any], providers: Any = PROVIDERS) -> Project:
    return load_sources(make_files(*functions, providers=providers))
