"""OpenTelemetry traces of executions (aiops.tracing), read back with the SDK's in-memory
exporter: one `run {function}` span per execution, one `chat {model}` CLIENT span per provider
call under it, GenAI semantic-convention attributes, content only when switched on and with
keys scrubbed, spans ended even when an execution is cancelled mid-call."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from aiops import tracing
from aiops.errors import ConfigError, ProviderError
from aiops.keyscrub import scrubber
from aiops.providers import Completion, CompletionRequest, Usage
from aiops.runner import Execution, Runner
from aiops.spec import ProvidersFile
from tests.fixtures_db import make_spec
from tests.fixtures_providers import FakeStore

KEY = "sk-test-0123456789abcdef"
PROVIDERS = ProvidersFile.model_validate({"providers": {
    "p1": {"type": "openai", "api_key_env": "P1_KEY",
           "models": {"m1": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}},
    "p2": {"type": "groq", "api_key_env": "P2_KEY"},
}})
OUT = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}}


def answer(text: str = '{"answer": "hi"}', model: str = "m1-2025-01") -> Completion:
    return Completion(text=text, usage=Usage(input_tokens=100, output_tokens=10),
                      request_id="req-1", model=model, finish_reason="stop")


def failure(kind: str = "server_error", transient: bool = True) -> ProviderError:
    return ProviderError("p answered 503", provider="p", status=503, transient=transient,
                         kind=kind)  # type: ignore[arg-type]


class Scripted:
    def __init__(self, steps: list[Any]) -> None:
        self.steps = steps

    async def complete(self, request: CompletionRequest) -> Completion:
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        if step == "hang":
            await asyncio.sleep(3600)
        assert isinstance(step, Completion)
        return step

    async def aclose(self) -> None:
        pass


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def runner(exporter: InMemorySpanExporter, scripts: dict[str, list[Any]], *,
           content: bool = False, fallbacks: bool = True) -> Runner:
    store = FakeStore()
    store.add(make_spec("greet", provider="p1", model="m1", output_schema=OUT,
                        retry={"max_attempts": 2, "backoff_s": 0.01, "max_backoff_s": 0.01,
                               "repair_attempts": 0},
                        fallbacks=[{"provider": "p2", "model": "m2"}] if fallbacks else [],
                        prompt=[{"role": "user", "content": "Greet {{ who }}"}],
                        input_schema={"type": "object", "required": ["who"],
                                      "properties": {"who": {"type": "string"}}}))
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    env = {"P1_KEY": KEY, "P2_KEY": "gsk-test-key-0123456789",
           "AIOPS_OTEL": "on", "AIOPS_OTEL_CONTENT": "on" if content else "off"}
    providers = {name: Scripted(steps) for name, steps in scripts.items()}
    scrub = scrubber((KEY, env["P2_KEY"])).text
    return Runner(store=store, providers=PROVIDERS, env={"P1_KEY": KEY, "P2_KEY": env["P2_KEY"]},
                  make=lambda name, spec, env: providers[name], rng=random.Random(1),
                  sleep=lambda s: asyncio.sleep(0),
                  observers=tracing.from_env(env, PROVIDERS, scrub, tracer_provider=provider))


def run(r: Runner, value: Any) -> Execution:
    async def go() -> Execution:
        try:
            return await r.run("greet", value)
        finally:
            await r.aclose()

    return asyncio.run(go())


def spans(exporter: InMemorySpanExporter) -> tuple[ReadableSpan, list[ReadableSpan]]:
    finished = exporter.get_finished_spans()
    [execution] = [s for s in finished if s.name == "run greet"]
    return execution, [s for s in finished if s is not execution]


def test_one_span_per_execution_and_one_client_span_per_call(
        exporter: InMemorySpanExporter) -> None:
    ex = run(runner(exporter, {"p1": [failure(), answer()]}), {"who": "Ada"})
    assert ex.ok
    top, calls = spans(exporter)
    assert top.kind is SpanKind.INTERNAL and top.attributes is not None
    assert dict(top.attributes) == {
        "gen_ai.prompt.name": "greet", "gen_ai.prompt.version": ex.version,
        "aiops.log_id": ex.log_id, "gen_ai.provider.name": "openai", "aiops.provider": "p1",
        "gen_ai.request.model": "m1", "gen_ai.response.model": "m1-2025-01",
        "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10,
        "aiops.cost_usd": ex.cost_usd, "aiops.attempts": 2}
    assert top.status.status_code is StatusCode.UNSET
    assert [s.name for s in calls] == ["chat m1", "chat m1"]
    for s in calls:
        assert s.kind is SpanKind.CLIENT and s.parent is not None
        assert s.parent.span_id == top.context.span_id
        assert s.context.trace_id == top.context.trace_id
        assert s.attributes is not None
        assert s.attributes["gen_ai.operation.name"] == "chat"
        assert s.attributes["gen_ai.provider.name"] == "openai"
        assert s.attributes["gen_ai.request.model"] == "m1"
        assert s.attributes["gen_ai.prompt.name"] == "greet"
        assert s.attributes["aiops.log_id"] == ex.log_id
    failed, ok = calls
    assert failed.attributes is not None and ok.attributes is not None
    assert failed.attributes["error.type"] == "server_error"
    assert failed.status.status_code is StatusCode.ERROR
    assert "gen_ai.response.model" not in failed.attributes
    assert ok.attributes["gen_ai.response.model"] == "m1-2025-01"
    assert ok.attributes["gen_ai.response.id"] == "req-1"
    assert tuple(ok.attributes["gen_ai.response.finish_reasons"]) == ("stop",)
    assert (ok.attributes["gen_ai.usage.input_tokens"],
            ok.attributes["gen_ai.usage.output_tokens"]) == (100, 10)
    assert "error.type" not in ok.attributes
    # Within the execution's span, in order.
    assert top.start_time <= failed.start_time <= failed.end_time <= ok.start_time
    assert ok.end_time <= top.end_time
    assert not any(k.startswith("gen_ai.input") or k.startswith("gen_ai.output")
                   for s in (top, *calls) for k in (s.attributes or {}))


def test_a_fallback_call_names_its_provider_and_a_failed_execution_its_error(
        exporter: InMemorySpanExporter) -> None:
    ex = run(runner(exporter, {"p1": [failure("auth", transient=False)],
                               "p2": [failure("timeout", transient=False)]}), {"who": "Ada"})
    assert not ex.ok
    top, calls = spans(exporter)
    assert [(s.name, (s.attributes or {})["gen_ai.provider.name"],
             (s.attributes or {})["error.type"]) for s in calls] == [
        ("chat m1", "openai", "auth"), ("chat m2", "groq", "timeout")]
    assert top.attributes is not None
    assert top.attributes["error.type"] == "ProviderError"
    assert top.status.status_code is StatusCode.ERROR
    assert top.attributes["gen_ai.provider.name"] == "groq"  # the last one tried


def test_an_execution_refused_before_any_call_has_no_call_span(
        exporter: InMemorySpanExporter) -> None:
    ex = run(runner(exporter, {"p1": []}), {"nobody": 1})
    assert not ex.ok
    top, calls = spans(exporter)
    assert calls == [] and top.attributes is not None
    assert top.attributes["error.type"] == "InputError"
    assert "gen_ai.provider.name" not in top.attributes


def test_content_is_recorded_only_when_switched_on_and_without_keys(
        exporter: InMemorySpanExporter) -> None:
    ex = run(runner(exporter, {"p1": [answer()]}, content=True), {"who": f"Ada {KEY}"})
    assert ex.ok
    top, [call] = spans(exporter)
    assert call.attributes is not None and top.attributes is not None
    messages = json.loads(str(call.attributes["gen_ai.input.messages"]))
    assert messages[0]["role"] == "user"
    text = messages[0]["parts"][0]["content"]
    assert text.startswith("Greet Ada ") and KEY not in text and "[redacted]" in text
    output = json.loads(str(top.attributes["gen_ai.output.messages"]))
    assert json.loads(output[0]["parts"][0]["content"]) == {"answer": "hi"}
    assert "gen_ai.output.messages" not in call.attributes  # the raw answer: never


def test_a_cancelled_execution_ends_its_spans(exporter: InMemorySpanExporter) -> None:
    r = runner(exporter, {"p1": ["hang"]})

    async def go() -> None:
        task = asyncio.ensure_future(r.run("greet", {"who": "Ada"}))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await r.aclose()

    asyncio.run(go())
    top, [call] = spans(exporter)
    assert (call.attributes or {})["error.type"] == "Cancelled"
    assert (top.attributes or {})["error.type"] == "Cancelled"


@pytest.fixture
def no_opentelemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # import fails as if absent
    yield


def test_switched_off_it_is_nothing_and_on_without_the_package_a_clear_error(
        no_opentelemetry: None) -> None:
    assert tracing.from_env({}, PROVIDERS, str) == ()
    assert tracing.from_env({"AIOPS_OTEL": "off"}, PROVIDERS, str) == ()
    with pytest.raises(ConfigError, match=r"aiops-kit\[otel\]"):
        tracing.from_env({"AIOPS_OTEL": "on"}, PROVIDERS, str)
    with pytest.raises(ConfigError, match="AIOPS_OTEL='maybe'"):
        tracing.from_env({"AIOPS_OTEL": "maybe"}, PROVIDERS, str)
    # A runner whose environment does not switch it on runs as before.
    r = Runner(store=FakeStore(), providers=PROVIDERS, env={})
    assert r._observers == ()
