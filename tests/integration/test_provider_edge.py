"""What a provider sends is checked where it comes in, the same way on every provider (the
real openai and groq SDKs and the http provider, against the mock provider server or a
server of the test's own): usage that cannot be right, lone surrogates and nesting past the
bounds are provider errors or invalid output, never an internal error, and a caller's
Python value is held to what the CLI holds an input to."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from aiops.errors import InputError, OutputError, ProviderError
from aiops.limits import estimate_cost, estimate_prompt_tokens
from aiops.providers.mock_server import MockConfig, MockServer
from aiops.runner import Execution, Runner
from aiops.spec import FunctionSpec, Price, ProvidersFile
from tests.fixtures_providers import (
    CLASSIFY,
    PROVIDERS,
    FakeStore,
    answering,
    env_for,
)

# The three providers of tests.fixtures_providers, each priced (the estimate is charged).
PRICED = copy.deepcopy(PROVIDERS)
PRICED["providers"]["internal"]["models"]["house-model"] = {"input_per_mtok": 0.4,
                                                            "output_per_mtok": 1.6}
# (provider, model, the mock's wire format for `match.provider`)
CANDIDATES = [("openai", "gpt-4o-mini", "openai"), ("groq", "llama-3.1-8b-instant", "groq"),
              ("internal", "house-model", "aiops")]
IDS = [c[0] for c in CANDIDATES]
OK = {"queue": "billing", "priority": 2}
TICKET = {"subject": "s", "body": "b"}


def function(provider: str, model: str, **overrides: Any) -> dict[str, Any]:
    """CLASSIFY on `provider`, falling back to the next of the three providers."""
    names = [c[0] for c in CANDIDATES]
    fallback = CANDIDATES[(names.index(provider) + 1) % 3]
    values = dict(CLASSIFY, provider=provider, model=model,
                  fallbacks=[{"provider": fallback[0], "model": fallback[1]}])
    values.update(overrides)
    return values


def execute(server_url: str, fn: dict[str, Any], value: Any) -> tuple[Execution, FakeStore]:
    store = FakeStore([FunctionSpec.model_validate(fn)])

    async def no_sleep(seconds: float) -> None:
        return None

    runner = Runner(store=store, providers=ProvidersFile.model_validate(PRICED),
                    env=env_for(server_url), sleep=no_sleep)

    async def go() -> Execution:
        try:
            return await runner.run(fn["name"], value)
        finally:
            await runner.aclose()

    return asyncio.run(go()), store


def estimate(fn: dict[str, Any], provider: str, model: str) -> float:
    """The runner's estimate of a first call of `fn` on `provider` (what a budget admits)."""
    from aiops.prompts import compile_prompt

    messages = compile_prompt(fn["prompt"], ["subject", "body"]).render(TICKET)
    price = Price.model_validate(PRICED["providers"][provider]["models"][model])
    extra = len(json.dumps(fn["output_schema"]))
    return estimate_cost(price, estimate_prompt_tokens(messages, extra),
                         fn["configuration"]["max_tokens"])


# --- F8: usage that cannot be right -----------------------------------------------------------


@pytest.mark.parametrize(("count", "why"), [
    (10**400, "~10^400 is over 1,000,000,000"),  # an int literal: priced, an OverflowError
    (float("inf"), "inf is not a whole number"),  # written 1e400: a float's infinity
    (10**9 + 1, "1000000001 is over 1,000,000,000"),
    (-10, "-10 is negative"),
    ("12", '"12" is not a whole number'),
], ids=["10^400", "1e400", "10^9+1", "negative", "string"])
@pytest.mark.parametrize(("provider", "model", "wire"), CANDIDATES, ids=IDS)
def test_usage_that_cannot_be_right_is_bad_usage_charged_its_estimate(
        mock_provider_factory: Any, provider: str, model: str, wire: str, count: Any,
        why: str) -> None:
    """10^400 tokens (or 1e400) ended in "internal error: OverflowError" with nothing charged
    and no fallback tried. It is a provider error (`bad_usage`), not retried, the fallback
    runs, and the budget is charged the call's estimate: prompt and max_tokens."""
    server = mock_provider_factory(MockConfig(responses=[
        {"match": {"provider": wire}, "output": OK, "usage": {"input_tokens": count}}]))
    fn = function(provider, model, limits={"daily_budget_usd": 1.0})
    ex, store = execute(server.url, fn, TICKET)

    assert ex.ok, ex.error
    bad, good = ex.attempts
    assert (bad.provider, bad.status, bad.kind, bad.error) == (
        provider, "error", "bad_usage", "ProviderError")
    assert f"input_tokens {why}" in (bad.message or "")
    assert bad.cost_usd == pytest.approx(estimate(fn, provider, model)) and bad.cost_usd > 0
    assert (good.status, good.provider) == ("ok", fn["fallbacks"][0]["provider"])
    assert ex.cost_usd == pytest.approx(bad.cost_usd + good.cost_usd)
    (spent,) = store.usage.values()
    assert spent["usd_spent"] == pytest.approx(ex.cost_usd)
    assert spent["calls_used"] == 1 and spent["usd_reserved"] == 0
    (row,) = store.logs
    assert row.cost_usd == pytest.approx(ex.cost_usd)


def test_bad_usage_without_a_fallback_fails_the_call_with_exit_4(
        mock_provider_factory: Any) -> None:
    server = mock_provider_factory(MockConfig(responses=[
        {"output": OK, "usage": {"output_tokens": 10**400}}]))
    ex, _ = execute(server.url, function("openai", "gpt-4o-mini", fallbacks=[]), TICKET)
    assert isinstance(ex.error, ProviderError) and ex.error.exit_code == 4
    assert [a.kind for a in ex.attempts] == ["bad_usage"]  # not retried: it would count again
    assert "output_tokens ~10^400" in ex.error.message


@pytest.mark.parametrize(("provider", "model", "wire"), CANDIDATES, ids=IDS)
def test_a_200_whose_body_cannot_be_read_is_charged_its_estimate(
        mock_provider_factory: Any, provider: str, model: str, wire: str) -> None:
    """A 200 with a body cut short was logged and charged $0: the provider ran the call (and
    bills it), so a body that cannot be read must not make it free. Each such attempt is
    retried and charged the call's estimate, in the budget and in the log row."""
    server = mock_provider_factory(MockConfig(responses=[{"output": OK}]))
    server.app.force_fault("bad_body")
    fn = function(provider, model, fallbacks=[], retry={"max_attempts": 2},
                  limits={"daily_budget_usd": 1.0})
    ex, store = execute(server.url, fn, TICKET)

    assert isinstance(ex.error, ProviderError) and ex.error.kind == "bad_response"
    assert [a.kind for a in ex.attempts] == ["bad_response", "bad_response"]
    each = estimate(fn, provider, model)
    assert each > 0
    assert [a.cost_usd for a in ex.attempts] == [pytest.approx(each)] * 2
    assert ex.cost_usd == pytest.approx(2 * each)
    (spent,) = store.usage.values()
    assert spent["usd_spent"] == pytest.approx(2 * each) and spent["usd_reserved"] == 0
    (row,) = store.logs
    assert row.cost_usd == pytest.approx(2 * each)


# --- F9: lone surrogates --------------------------------------------------------------------


REPAIRED = {"match": {"contains": "Your previous answer was invalid"}, "output": OK}


@pytest.mark.parametrize(("provider", "model", "wire"), CANDIDATES, ids=IDS)
def test_a_lone_surrogate_in_the_output_is_invalid_output_and_repaired(
        mock_provider_factory: Any, provider: str, model: str, wire: str) -> None:
    """A provider's JSON "\\ud800" ended in "internal error: UnicodeEncodeError" (the schema
    validator cannot read it). It is invalid output: repaired like any other, and the repair
    request (which quotes the answer back) is sent."""
    server = mock_provider_factory(MockConfig(responses=[
        REPAIRED, {"output": {"queue": "billing\ud800", "priority": 1}}]))
    ex, _ = execute(server.url, function(provider, model, fallbacks=[]), TICKET)
    assert ex.ok and ex.output == OK, ex.error
    invalid, repaired = ex.attempts
    assert (invalid.status, invalid.kind) == ("invalid", "invalid_output")
    assert "$.queue holds a lone surrogate (U+D800)" in (invalid.message or "")
    assert repaired.repair and repaired.status == "ok"


@pytest.mark.parametrize(("provider", "model", "wire"), CANDIDATES, ids=IDS)
def test_a_lone_surrogate_in_text_output_is_invalid_output(
        mock_provider_factory: Any, provider: str, model: str, wire: str) -> None:
    server = mock_provider_factory(MockConfig(responses=[{"content": "Bonjour \ud83d"}]))
    fn = function(provider, model, fallbacks=[], output_schema={"type": "string"})
    ex, store = execute(server.url, fn, TICKET)
    assert isinstance(ex.error, OutputError) and ex.error.exit_code == 5
    assert "$ holds a lone surrogate (U+D83D)" in ex.error.message
    assert [a.kind for a in ex.attempts] == ["invalid_output"] * 3  # the call, two repairs
    (row,) = store.logs
    assert row.output is None


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(("value", "message"), [
    ({"subject": "s\udc00", "body": "b"},
     "the input is refused: $.subject holds a lone surrogate (U+DC00), which is not a "
     "Unicode character; send the character itself"),
    ({"subject": "s", "body": "b", "extra": nested(3000)},
     "the input is refused: values are nested deeper than 100 levels; flatten it"),
    ({"subject": "s", "body": "b", "extra": nested(150)},  # within pydantic-core's 255
     "the input is refused: values are nested deeper than 100 levels; flatten it"),
])
def test_a_python_callers_input_is_held_to_what_the_cli_holds_it(
        mock_provider: MockServer, value: Any, message: str) -> None:
    """The CLI reads inputs with fastjson.loads_input; a caller of the runner's API hands a
    Python value over. A lone surrogate in it ended in "internal error: UnicodeEncodeError";
    it is an input error (exit 3), the provider is not called, and the row is written."""
    fn = function("openai", "gpt-4o-mini")
    fn["input_schema"] = dict(fn["input_schema"], additionalProperties=True)
    ex, store = execute(mock_provider.url, fn, value)
    assert isinstance(ex.error, InputError) and ex.error.exit_code == 3
    assert message in ex.error.message
    assert ex.attempts == () and mock_provider.app.stats["requests"] == 0
    (row,) = store.logs
    assert set(row.input) == {"_omitted"}


# --- F10: nesting -------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "model", "wire"), CANDIDATES, ids=IDS)
def test_output_nested_3000_deep_is_invalid_output_and_repaired(
        mock_provider_factory: Any, provider: str, model: str, wire: str) -> None:
    """A model's JSON text nested 3,000 deep ended in "internal error: RecursionError" in
    parse_json_text. It is invalid output, past the bound of 100 levels (MAX_OUTPUT_DEPTH)."""
    server = mock_provider_factory(MockConfig(responses=[
        REPAIRED, {"content": "[" * 3000 + "]" * 3000}]))
    fn = function(provider, model, fallbacks=[],
                  configuration={"temperature": 0, "max_tokens": 5000})
    ex, _ = execute(server.url, fn, TICKET)
    assert ex.ok and ex.output == OK, ex.error
    assert ex.attempts[0].kind == "invalid_output"
    assert "nested deeper than 100 levels" in (ex.attempts[0].message or "")


@pytest.fixture(params=[200, 500], ids=["ok", "error"])
def deep_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """A server whose every answer is a body nested 3,001 levels deep."""
    with answering(b'{"output": ' + b"[" * 3000 + b"]" * 3000 + b"}", request.param) as url:
        yield url


@pytest.mark.parametrize(("provider", "model", "wire"), CANDIDATES, ids=IDS)
def test_a_body_nested_3000_deep_is_a_bad_response(deep_server: str, provider: str,
                                                   model: str, wire: str) -> None:
    """Read whole, such a body ended in "internal error: RecursionError" (json_body, and the
    http provider's reading of error bodies). It is refused before it is parsed: a 200 is a
    `bad_response` (retried, as a body that is not JSON is), a 500 a server error."""
    ex, _ = execute(deep_server, function(provider, model, fallbacks=[]), TICKET)
    assert isinstance(ex.error, ProviderError), ex.error
    kinds = {a.kind for a in ex.attempts}
    assert len(ex.attempts) == CLASSIFY["retry"]["max_attempts"]
    assert kinds <= {"bad_response", "server_error"} and len(kinds) == 1
    if kinds == {"bad_response"}:
        assert "nested deeper than 101 levels" in ex.error.message

