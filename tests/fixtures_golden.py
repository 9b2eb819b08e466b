"""Shared pytest fixtures: golden tests.

- `EXAMPLE_ANSWERS`: what the mock provider answers for the example functions' test inputs,
  from mock-responses.yaml (the example cassettes were recorded against the mock with these
  answers; see docs/testing.md). `example_mock` starts a mock provider that gives them.
- `mock_env(server)`: an environment pointing every provider of providers.yaml at a mock
  (`AIOPS_<PROVIDER>_BASE_URL`) with canary keys, for recording.
- `golden_project`: a copy of the repository's example project (functions with their
  cassettes, providers.yaml) in a temporary directory, to change and re-record freely.
- `no_sockets`: every socket connection refused, loopback included.
- `provider_executor_factory`: a minimal executor that renders the prompt and calls the
  provider, for testing the golden engine apart from the runner.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiops.providers.mock_server import MockConfig, MockServer, serve_in_thread

REPO = Path(__file__).resolve().parent.parent
CANARY = "sk-canary-0123456789abcdefSECRET"

# prompt text that identifies a test input -> the answer (JSON output, or text)
EXAMPLE_ANSWERS: list[dict[str, Any]] = yaml.safe_load(
    (REPO / "mock-responses.yaml").read_text(encoding="utf-8"))["responses"]


def mock_env(server: MockServer, providers: Mapping[str, str] | None = None) -> dict[str, str]:
    """Base URL overrides for the example providers, and canary keys."""
    kinds = providers or {"openai": "openai", "groq": "groq", "internal": "http"}
    suffix = {"openai": "/v1", "groq": "", "http": "/aiops"}
    env = {"OPENAI_API_KEY": CANARY, "GROQ_API_KEY": CANARY, "INTERNAL_AIOPS_SECRET": CANARY,
           "PATH": "/usr/bin:/bin"}
    for name, kind in kinds.items():
        from aiops.providers import env_var_for_base_url

        env[env_var_for_base_url(name)] = server.url.rstrip("/") + suffix[kind]
    return env


@pytest.fixture
def example_mock() -> Iterator[MockServer]:
    with serve_in_thread(MockConfig(responses=EXAMPLE_ANSWERS, retry_after_s=0.01)) as server:
        yield server


@pytest.fixture
def golden_project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "providers.yaml", root / "providers.yaml")
    shutil.copytree(REPO / "functions", root / "functions")
    return root


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Refuse every connection, loopback included; returns the addresses that were tried."""
    tried: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        tried.append(address)
        raise OSError(f"no network in replay (tried {address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return tried


def provider_executor_factory(providers: Any, env: Mapping[str, str]) -> Any:
    """An executor without the runner: render, call the provider once, parse."""
    import json

    from aiops.golden import Outcome
    from aiops.prompts import compile_prompt
    from aiops.providers import CompletionRequest, make_provider

    async def execute(spec: Any, values: dict[str, Any]) -> Outcome:
        props = spec.input_schema.get("properties", {})
        values = {**{k: v["default"] for k, v in props.items() if "default" in v}, **values}
        prompt = compile_prompt([m.model_dump() for m in spec.prompt], list(props))
        provider = make_provider(spec.provider, providers.providers[spec.provider], env)
        started = time.perf_counter()
        try:
            completion = await provider.complete(CompletionRequest(
                messages=prompt.render(values), model=spec.model,
                settings=spec.configuration.model_dump(exclude_none=True),
                output_schema=None if spec.output_is_text else spec.output_schema,
                function=spec.name, version=spec.version))
        finally:
            await provider.aclose()
        output = completion.text if spec.output_is_text else (
            completion.parsed if completion.parsed is not None else json.loads(completion.text))
        return Outcome(output=output, latency_ms=(time.perf_counter() - started) * 1000,
                       cost_usd=0.0)

    return execute
