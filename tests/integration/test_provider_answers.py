"""A provider's answer is a success only when it is whole: cut off at max_tokens, stopped by
a content filter, refused, or without content (tool calls, an empty message), it is an error
of its own kind, billed (its tokens are logged and charged), never repaired. Real recorded
bodies (../shared/realdata, read in place) where they exist, served to the real SDKs by a
server of the test's own; the rest as canned answers of the mock provider."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aiops.errors import ProviderError
from aiops.limits import cost_usd
from aiops.providers.mock_server import MockConfig
from aiops.spec import Price
from tests.fixtures_providers import answering
from tests.integration.test_provider_edge import (
    CANDIDATES,
    IDS,
    PRICED,
    TICKET,
    execute,
    function,
)
from tests.unit.test_providers_adapters import _interactions

TEXT = {"type": "string"}


def priced(provider: str, model: str, usage: dict[str, Any]) -> float:
    price = Price.model_validate(PRICED["providers"][provider]["models"][model])
    details = usage.get("prompt_tokens_details") or {}
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return cost_usd(price, usage["prompt_tokens"], usage["completion_tokens"],
                    details.get("cached_tokens") or 0, reasoning)


def recorded(realdata: Path, provider: str, keep: Any) -> list[tuple[str, dict[str, Any]]]:
    """(file name, body) of the recorded 200 chat completions of `provider` that `keep`s."""
    found = []
    for path in sorted((realdata / provider).rglob("*.yaml")):
        for status, _, body in _interactions(path):
            if status == 200 and isinstance(body, dict) and body.get("choices") and \
                    keep(body["choices"][0]["message"]):
                found.append((path.name, body))
    return found


def assert_billed(ex: Any, attempt: Any, provider: str, model: str,
                  usage: dict[str, Any], store: Any) -> None:
    """The attempt logs the tokens the provider reported and their price, and the
    execution, its log row and the day's budget count them."""
    assert (attempt.input_tokens, attempt.output_tokens) == (
        usage["prompt_tokens"], usage["completion_tokens"])
    assert attempt.cost_usd == pytest.approx(priced(provider, model, usage))
    assert attempt.cost_usd > 0
    assert ex.input_tokens >= attempt.input_tokens and ex.cost_usd >= attempt.cost_usd
    (row,) = store.logs
    assert row.input_tokens == ex.input_tokens and row.cost_usd == pytest.approx(ex.cost_usd)
    (spent,) = store.usage.values()
    assert spent["usd_spent"] == pytest.approx(ex.cost_usd)


# --- no content: tool calls, a function call, an empty message ---------------------------


def _no_text(message: dict[str, Any]) -> bool:
    return message.get("content") is None and not message.get("refusal")


@pytest.mark.parametrize(("provider", "model"), [("openai", "gpt-4o-mini"),
                                                 ("groq", "llama-3.1-8b-instant")])
def test_recorded_tool_calls_are_no_content_naming_what_came_back(
        realdata: Path, provider: str, model: str) -> None:
    """Recorded answers with `tool_calls` (or a legacy `function_call`) and null content
    exited 0 with "". Each is a `no_content` error that names what came back, not retried,
    with its tokens billed."""
    bodies = recorded(realdata, provider, _no_text)
    assert len(bodies) >= (6 if provider == "openai" else 1)
    for name, body in bodies:
        message = body["choices"][0]["message"]
        calls = message.get("tool_calls") or [message["function_call"]]
        names = [(c.get("function") or c)["name"] for c in calls]
        fn = function(provider, model, fallbacks=[], output_schema=TEXT,
                      limits={"daily_budget_usd": 1.0})
        with answering(json.dumps(body).encode()) as url:
            ex, store = execute(url, fn, TICKET)
        assert isinstance(ex.error, ProviderError) and ex.error.exit_code == 4, name
        (attempt,) = ex.attempts  # not retried
        assert attempt.kind == "no_content", name
        what = "function call" if "function_call" in message else "tool call"
        assert f"{len(calls)} {what}" in ex.error.message, name
        assert all(n in ex.error.message for n in names), name
        assert f"finish_reason {body['choices'][0]['finish_reason']}" in ex.error.message
        assert attempt.request_id
        assert_billed(ex, attempt, provider, model, body["usage"], store)


@pytest.mark.parametrize("content", ["", " \n "])
@pytest.mark.parametrize(("provider", "model", "wire"), CANDIDATES, ids=IDS)
def test_empty_content_is_no_content(mock_provider_factory: Any, provider: str, model: str,
                                     wire: str, content: str) -> None:
    server = mock_provider_factory(MockConfig(responses=[
        {"match": {"provider": wire}, "content": content, "usage": {"output_tokens": 2}}]))
    fn = function(provider, model, output_schema=TEXT)
    ex, _ = execute(server.url, fn, TICKET)
    assert ex.ok, ex.error  # the fallback answered
    empty, ok = ex.attempts
    assert (empty.provider, empty.kind, empty.output_tokens) == (provider, "no_content", 2)
    assert "an empty message" in (empty.message or "") and ok.status == "ok"


def test_null_content_with_tool_calls_from_the_mock(mock_provider_factory: Any) -> None:
    """The mock's `message` fields replace those of its answer: a tool call on Groq's wire."""
    call = {"id": "call_1", "type": "function",
            "function": {"name": "lookup_order", "arguments": "{}"}}
    server = mock_provider_factory(MockConfig(responses=[
        {"match": {"provider": "groq"}, "message": {"content": None, "tool_calls": [call]},
         "finish_reason": "tool_calls"}]))
    ex, _ = execute(server.url, function("groq", "llama-3.1-8b-instant", fallbacks=[]),
                    TICKET)
    assert isinstance(ex.error, ProviderError)
    assert "1 tool call (lookup_order)" in ex.error.message
    assert [a.kind for a in ex.attempts] == ["no_content"]


# --- refusal and content filter -----------------------------------------------------------


def test_a_recorded_refusal_keeps_its_kind_and_is_billed(realdata: Path) -> None:
    """A refusal logged 0 tokens and $0 and charged nothing, although OpenAI bills it."""
    bodies = recorded(realdata, "openai", lambda m: bool(m.get("refusal")))
    assert bodies
    for name, body in bodies:
        fn = function("openai", "gpt-4o-mini", fallbacks=[], limits={"daily_budget_usd": 1.0})
        with answering(json.dumps(body).encode()) as url:
            ex, store = execute(url, fn, TICKET)
        assert isinstance(ex.error, ProviderError), name
        (attempt,) = ex.attempts
        assert attempt.kind == "refusal" and "the model refused: I'm very sorry" in \
            ex.error.message
        assert_billed(ex, attempt, "openai", "gpt-4o-mini", body["usage"], store)


@pytest.mark.parametrize(("provider", "model", "wire"), CANDIDATES, ids=IDS)
def test_content_filter_is_its_own_kind(mock_provider_factory: Any, provider: str,
                                        model: str, wire: str) -> None:
    server = mock_provider_factory(MockConfig(responses=[
        {"match": {"provider": wire}, "content": "I can", "finish_reason": "content_filter",
         "usage": {"input_tokens": 40, "output_tokens": 3}}]))
    fn = function(provider, model, output_schema=TEXT, limits={"daily_budget_usd": 1.0})
    ex, store = execute(server.url, fn, TICKET)
    assert ex.ok, ex.error  # the fallback answered
    stopped, ok = ex.attempts
    assert stopped.kind == "content_filter" and "content filter" in (stopped.message or "")
    assert_billed(ex, stopped, provider, model,
                  {"prompt_tokens": 40, "completion_tokens": 3}, store)
    assert ok.status == "ok"


# --- truncation ---------------------------------------------------------------------------


LONG = "word " * 400  # about 500 tokens to the mock


@pytest.mark.parametrize("output_schema", [TEXT, None], ids=["text", "json"])
@pytest.mark.parametrize(("provider", "model", "wire"), CANDIDATES, ids=IDS)
def test_an_answer_cut_at_max_tokens_is_truncated_not_repaired(
        mock_provider_factory: Any, provider: str, model: str, wire: str,
        output_schema: Any) -> None:
    """A plain-text function exited 0 with the cut-off text, and a JSON function spent a
    repair call on it. It is `truncated`, naming max_tokens and its value; billed; not
    retried and not repaired (the same call would be cut again); the next fallback runs,
    here with a configuration of its own that leaves room."""
    answer = LONG if output_schema else json.dumps({"queue": "billing", "reason": LONG})
    server = mock_provider_factory(MockConfig(responses=[{"content": answer}]))
    fn = function(provider, model, output_schema=output_schema or function(
        provider, model)["output_schema"], configuration={"temperature": 0, "max_tokens": 30},
        limits={"daily_budget_usd": 1.0})
    fn["fallbacks"][0]["configuration"] = {"max_tokens": 2000}
    ex, store = execute(server.url, fn, TICKET)
    cut, after, *_ = ex.attempts  # a JSON answer that does not validate is then repaired
    assert (cut.provider, cut.status, cut.kind, cut.output_tokens) == (
        provider, "error", "truncated", 30)
    assert "max_tokens (30)" in (cut.message or "") and "finish_reason length" in (
        cut.message or "")
    assert cut.cost_usd > 0 and not after.repair
    assert after.provider == fn["fallbacks"][0]["provider"]
    if output_schema:  # the fallback's room is enough for the whole text
        assert ex.ok and ex.output == answer
    (spent,) = store.usage.values()
    assert spent["usd_spent"] == pytest.approx(ex.cost_usd) and ex.cost_usd >= cut.cost_usd


def test_truncated_without_a_fallback_exits_4_and_says_what_to_raise(
        mock_provider_factory: Any) -> None:
    server = mock_provider_factory(MockConfig(responses=[{"content": LONG}]))
    fn = function("groq", "llama-3.1-8b-instant", fallbacks=[], output_schema=TEXT,
                  configuration={"max_tokens": 25})
    ex, _ = execute(server.url, fn, TICKET)
    assert isinstance(ex.error, ProviderError) and ex.error.exit_code == 4
    assert "groq cut the answer off at max_tokens (25)" in ex.error.message
    assert "raise max_tokens" in ex.error.message
    assert [a.kind for a in ex.attempts] == ["truncated"]


def test_recorded_answers_that_stopped_are_whole(realdata: Path) -> None:
    """Every recorded answer with text that stopped on its own still succeeds."""
    for provider, model in (("openai", "gpt-4o-mini"), ("groq", "llama-3.1-8b-instant")):
        bodies = recorded(realdata, provider, lambda m: bool(m.get("content")))
        assert len(bodies) >= 5
        for name, body in bodies:
            assert body["choices"][0]["finish_reason"] == "stop", name
            fn = function(provider, model, fallbacks=[], output_schema=TEXT)
            with answering(json.dumps(body).encode()) as url:
                ex, _ = execute(url, fn, TICKET)
            assert ex.ok and ex.output == body["choices"][0]["message"]["content"], name

