"""Provider adapters over real recorded payloads (../shared/realdata) and pure helpers."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiops.errors import ConfigError, ProviderError
from aiops.providers import (
    CompletionRequest,
    env_var_for_base_url,
    json_body,
    make_provider,
    resolve_base_url,
    retry_after_seconds,
    scrub,
    status_error,
    strict_compatible,
    whole,
)
from aiops.providers import groq as groq_adapter
from aiops.providers import http as http_adapter
from aiops.providers import openai as openai_adapter
from aiops.spec import ProviderSpec


def _interactions(path: Path) -> list[tuple[int, dict[str, Any], Any]]:
    """(status, headers, JSON body) of each recorded response that is plain JSON."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:  # python-tagged cassettes need an unsafe loader: not read here
        return []
    out = []
    for item in data.get("interactions", []):
        resp = item["response"]
        if "parsed_body" in resp:  # pydantic-ai's cassette format: the body already parsed
            status = (resp.get("status") or {}).get("code")
            out.append((status, {k.lower(): (v[0] if isinstance(v, list) else v)
                                 for k, v in (resp.get("headers") or {}).items()},
                        resp["parsed_body"]))
            continue
        body = resp["body"]["string"] if isinstance(resp.get("body"), dict) else resp.get("content")
        status = (resp.get("status") or {}).get("code", resp.get("status_code"))
        headers = {k.lower(): (v[0] if isinstance(v, list) else v)
                   for k, v in (resp.get("headers") or {}).items()}
        if isinstance(body, bytes):
            body = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
            body = body.decode()
        try:
            parsed = json.loads(body)
        except (TypeError, ValueError):
            continue  # a stream
        out.append((status, headers, parsed))
    return out


REQUEST = CompletionRequest(messages=({"role": "user", "content": "hi"},), model="m",
                            settings={"max_tokens": 100})


def _cassettes(realdata: Path, provider: str) -> list[Path]:
    return sorted((realdata / provider).glob("*.yaml"))


@pytest.mark.parametrize(("provider", "adapter"), [("openai", openai_adapter),
                                                   ("groq", groq_adapter)])
def test_recorded_completions_parse_with_usage(realdata: Path, provider: str,
                                               adapter: Any) -> None:
    seen = 0
    for path in _cassettes(realdata, provider):
        for status, _, body in _interactions(path):
            if status != 200 or "choices" not in body:
                continue
            message = body["choices"][0]["message"]
            completion = adapter.parse_response(body, provider)
            if message.get("content") is None:  # refused, or tool calls: no result
                with pytest.raises(ProviderError) as info:
                    whole(completion, REQUEST, provider)
                assert info.value.kind in ("refusal", "no_content")
                assert info.value.answer is completion  # billed: its usage is charged
            else:
                assert whole(completion, REQUEST, provider) is completion
            usage = body["usage"]
            assert completion.usage.input_tokens == usage["prompt_tokens"], path.name
            assert completion.usage.output_tokens == usage["completion_tokens"], path.name
            details = usage.get("prompt_tokens_details") or {}
            assert completion.usage.cached_input_tokens == (details.get("cached_tokens") or 0)
            assert completion.text == (message.get("content") or "")
            assert completion.refusal == message.get("refusal")
            assert completion.request_id
            seen += 1
    assert seen >= 3, f"too few {provider} completions found in realdata"


def test_openai_cached_and_reasoning_tokens_are_read(realdata: Path) -> None:
    found_cached = found_reasoning = False
    for path in _cassettes(realdata, "openai"):
        for status, _, body in _interactions(path):
            if status == 200 and "choices" in body and body["choices"][0]["message"].get("content"):
                c = openai_adapter.parse_response(body, "openai")
                found_cached |= c.usage.cached_input_tokens > 0
                found_reasoning |= c.usage.reasoning_tokens > 0
    assert found_cached and found_reasoning


def test_recorded_structured_output_is_json(realdata: Path) -> None:
    path = realdata / "openai" / "openllmetry__structured_parse_json_schema.yaml"
    bodies = [b for s, _, b in _interactions(path) if s == 200]
    assert bodies
    for body in bodies:
        text = openai_adapter.parse_response(body, "openai").text
        assert isinstance(json.loads(text), dict)


@pytest.mark.parametrize("provider", ["openai", "groq"])
def test_recorded_error_answers_map_to_provider_errors(realdata: Path, provider: str) -> None:
    seen = 0
    for path in _cassettes(realdata, provider) + sorted(
            (realdata / provider / "pydantic-ai-format").glob("*.yaml")):
        for status, headers, body in _interactions(path):
            if status is None or status < 400:
                continue
            err = status_error(provider, status, body, headers, ("sk-fake-key",))
            assert err.status == status
            assert err.transient == (status in (429, 500, 502, 503, 504))
            assert "sk-fake-key" not in str(err)
            assert str(err).startswith(f"{provider} answered {status}")
            seen += 1
    assert seen >= 2


@pytest.mark.parametrize("provider", ["openai", "groq"])
def test_error_bodies_from_issues(realdata: Path, provider: str) -> None:
    entries = json.loads((realdata / provider / "error-bodies" /
                          f"{provider}_error_bodies_from_public_issues.json").read_text())
    for entry in entries:
        body = entry.get("body") or entry.get("message_only")
        err = status_error(provider, entry["http_status"], body, entry.get("headers"), ())
        code = (body.get("error") or {}).get("code") if isinstance(body, dict) else None
        if code == "insufficient_quota":
            assert not err.transient and err.kind == "quota"
        elif entry["http_status"] in (429, 500, 503):
            assert err.transient
        else:
            assert not err.transient
        message = body["error"]["message"] if isinstance(body, dict) else body
        assert message[:40] in err.message
        if entry["http_status"] == 401:
            assert "environment variable" in err.message


def test_rate_limit_headers_of_a_recorded_answer(realdata: Path) -> None:
    path = realdata / "groq" / "openllmetry__groq_chat_gzip_ratelimit_headers.yaml"
    status, headers, _ = _interactions(path)[0]
    assert status == 200 and headers["x-ratelimit-limit-requests"] == "14400"
    assert retry_after_seconds(headers) is None  # no Retry-After on a success


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after": "3"}, 3.0),
    ({"retry-after": "0.5"}, 0.5),
    ({"retry-after-ms": "250", "retry-after": "1"}, 0.25),
    ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
    ({"retry-after": "soon"}, None),
    ({}, None),
])
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


def test_openai_request_shapes() -> None:
    closed = {"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}},
              "additionalProperties": False}
    opened = {"type": "object", "required": ["a"], "properties": {"a": {"type": "string"},
                                                                 "b": {"type": "integer"}}}
    req = CompletionRequest(messages=({"role": "user", "content": "hi"},), model="gpt-4o-mini",
                            settings={"temperature": 0, "max_tokens": 5, "seed": None},
                            output_schema=closed)
    kw = openai_adapter.build_kwargs(req)
    assert kw["response_format"]["json_schema"]["strict"] is True
    assert kw["max_tokens"] == 5 and "seed" not in kw
    kw = openai_adapter.build_kwargs(CompletionRequest(messages=req.messages, model="gpt-4o",
                                                       output_schema=opened))
    assert kw["response_format"]["json_schema"]["strict"] is False
    kw = openai_adapter.build_kwargs(CompletionRequest(messages=req.messages,
                                                       model="gpt-3.5-turbo",
                                                       output_schema=closed))
    assert kw["response_format"] == {"type": "json_object"}
    assert "JSON Schema" in kw["messages"][0]["content"]
    kw = openai_adapter.build_kwargs(CompletionRequest(messages=req.messages, model="o3-mini",
                                                       settings={"max_tokens": 9}))
    assert kw == {"model": "o3-mini", "messages": [{"role": "user", "content": "hi"}],
                  "max_completion_tokens": 9}


def test_groq_request_shapes() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    msgs = ({"role": "user", "content": "hi"},)
    kw = groq_adapter.build_kwargs(CompletionRequest(messages=msgs, model="openai/gpt-oss-20b",
                                                     output_schema=schema))
    assert kw["response_format"]["type"] == "json_schema"
    kw = groq_adapter.build_kwargs(CompletionRequest(messages=msgs, model="llama-3.1-8b-instant",
                                                     output_schema=schema))
    assert kw["response_format"] == {"type": "json_object"}
    assert "JSON" in kw["messages"][0]["content"] and kw["messages"][1] == msgs[0]
    kw = groq_adapter.build_kwargs(CompletionRequest(messages=msgs, model="llama-3.1-8b-instant"))
    assert "response_format" not in kw


def test_strict_compatible() -> None:
    assert strict_compatible({"type": "object", "properties": {}, "additionalProperties": False})
    assert not strict_compatible({"type": "object", "properties": {"a": {"type": "string"}},
                                  "additionalProperties": False})
    assert not strict_compatible({"type": "object", "required": ["a"], "additionalProperties":
                                  False, "properties": {"a": {"type": "string", "minLength": 1}}})


def test_missing_key_names_the_variable() -> None:
    spec = ProviderSpec(type="groq", api_key_env="MY_GROQ_KEY")
    with pytest.raises(ConfigError, match="`MY_GROQ_KEY`"):
        make_provider("groq", spec, {})
    hmac_spec = ProviderSpec.model_validate({"type": "http", "base_url": "http://x/aiops",
                                             "auth": {"type": "hmac", "secret_env": "SEC"}})
    with pytest.raises(ConfigError, match="`SEC`"):
        make_provider("internal", hmac_spec, {})


def test_base_url_override_by_environment() -> None:
    spec = ProviderSpec(type="openai", api_key_env="K", base_url="https://api.example.com/v1")
    assert env_var_for_base_url("my-openai") == "AIOPS_MY_OPENAI_BASE_URL"
    assert resolve_base_url("my-openai", spec, {}) == "https://api.example.com/v1"
    env = {"AIOPS_MY_OPENAI_BASE_URL": "http://127.0.0.1:9/v1/"}
    assert resolve_base_url("my-openai", spec, env) == "http://127.0.0.1:9/v1"


def test_hmac_sign_and_verify() -> None:
    body = b'{"a":1}'
    sig = http_adapter.sign("s3cret", "1700000000", body)
    assert http_adapter.verify("s3cret", "1700000000", sig, body, now=1700000100) is None
    assert http_adapter.verify("s3cret", "1700000000", sig, body + b" ",
                               now=1700000100) == "bad_signature"
    assert http_adapter.verify("other", "1700000000", sig, body, now=1700000100) == "bad_signature"
    assert http_adapter.verify("s3cret", "1700000000", sig, body,
                               now=1700000301) == "timestamp_outside_window"
    assert http_adapter.verify("s3cret", None, sig, body) == "missing_signature"


def test_http_response_parsing() -> None:
    c = http_adapter.parse_response({"output": {"a": 1}, "usage": {"input_tokens": 3,
                                                                   "output_tokens": 4}}, "x")
    assert c.parsed == {"a": 1} and c.usage.total_tokens == 7 and json.loads(c.text) == {"a": 1}
    c = http_adapter.parse_response({"output": "bonjour"}, "x")
    assert c.text == "bonjour" and c.parsed is None
    with pytest.raises(ProviderError) as info:
        http_adapter.parse_response({"result": 1}, "x")
    assert info.value.transient


USAGE_FIELDS = ["input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens"]


def _bodies(field: str, literal: str) -> list[tuple[Any, bytes, str]]:
    """(the adapter's parse, a body whose `field` is the JSON text `literal`, provider)."""
    chat_names = {"input_tokens": ("prompt_tokens",), "output_tokens": ("completion_tokens",),
                  "cached_input_tokens": ("prompt_tokens_details", "cached_tokens"),
                  "reasoning_tokens": ("completion_tokens_details", "reasoning_tokens")}
    usage: dict[str, Any] = {"prompt_tokens": 5, "completion_tokens": 5}
    *outer, inner = chat_names[field]
    (usage.setdefault(outer[0], {}) if outer else usage)[inner] = "@"
    chat = json.dumps({"choices": [{"message": {"content": "hi"}}], "usage": usage})
    custom = json.dumps({"output": "hi", "usage": {"input_tokens": 5, "output_tokens": 5,
                                                   field: "@"}})
    return [(openai_adapter.parse_response, chat.replace('"@"', literal).encode(), "openai"),
            (groq_adapter.parse_response, chat.replace('"@"', literal).encode(), "groq"),
            (http_adapter.parse_response, custom.replace('"@"', literal).encode(), "internal")]


@pytest.mark.parametrize("field", USAGE_FIELDS)
@pytest.mark.parametrize(("literal", "why"), [
    ("-3", "-3 is negative"),
    ("1" + "0" * 400, "~10^400 is over 1,000,000,000"),
    ("1e400", "inf is not a whole number"),
    ("1000000001", "1000000001 is over 1,000,000,000"),
    ("12.5", "12.5 is not a whole number"),
    ('"5"', '"5" is not a whole number'),
    ("true", "True is not a whole number"),
], ids=["negative", "10^400", "1e400", "10^9+1", "fraction", "string", "boolean"])
def test_usage_that_cannot_be_right_is_bad_usage_at_every_provider_edge(
        field: str, literal: str, why: str) -> None:
    """One check of usage (`reported_usage`) for every provider: priced, a negative count is
    a credit and 10^400 (or 1e400) an OverflowError. The answer is refused as `bad_usage`,
    billed (the runner charges its estimate), not retried: the next fallback runs."""
    for parse, body, provider in _bodies(field, literal):
        with pytest.raises(ProviderError) as info:
            parse(json_body(body, provider), provider)
        assert f"({field} {why})" in info.value.message
        assert info.value.kind == "bad_usage" and info.value.billed
        assert not info.value.transient


@pytest.mark.parametrize("literal", ["0", "12.0", "null", "1000000000"])
def test_whole_counts_up_to_the_bound_are_read(literal: str) -> None:
    expected = int(json.loads(literal) or 0)
    for parse, body, provider in _bodies("output_tokens", literal):
        assert parse(json_body(body, provider), provider).usage.output_tokens == expected


def test_scrub_removes_secrets_and_bearer_values() -> None:
    text = scrub("key sk-live-abcdef123 and Authorization: Bearer abcdefghijkl", ("sk-live-abcdef123",))
    assert "sk-live-abcdef123" not in text and "abcdefghijkl" not in text
