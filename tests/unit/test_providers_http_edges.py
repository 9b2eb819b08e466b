"""The http provider against a custom backend that answers badly: every bad answer is a
ProviderError (retried or passed to the next fallback), never an internal error."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import httpx
import pytest

from aiops.errors import ProviderError
from aiops.providers import CompletionRequest
from aiops.providers.http import HttpProvider
from tests.fixtures_providers import serve_http

REQUEST = CompletionRequest(messages=({"role": "user", "content": "hi"},), model="m",
                            function="f", version="1.0.0")


class Canned(BaseHTTPRequestHandler):
    """Answers every POST with the class's `answer`: (status, body bytes, headers)."""

    answer: tuple[int, bytes, dict[str, str]] = (200, b"{}", {})
    seen: ClassVar[list[tuple[str, str | None]]] = []  # (request target, Proxy-Authorization)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        Canned.seen.append((self.path, self.headers.get("proxy-authorization")))
        status, body, headers = self.answer
        self.send_response(status)
        for name, value in {"content-type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def backend() -> Iterator[str]:
    with serve_http(Canned) as url:
        yield url + "/aiops"


def complete_once(base_url: str, **options: Any) -> Any:
    """One call through a new provider, closed after."""
    async def go() -> Any:
        provider = HttpProvider(name="internal", base_url=base_url, timeout_s=5, **options)
        try:
            return await provider.complete(REQUEST)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def call(url: str, status: int, body: Any, headers: dict[str, str] | None = None) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    Canned.answer = (status, raw, headers or {})
    return complete_once(url, token="tok-secret-123456")


@pytest.mark.parametrize(("status", "body", "transient"), [
    (500, {"error": "internal"}, True),  # a string error: crashed reading retry_after_s
    (503, {"error": ["busy"]}, True),
    (400, {"error": "bad request"}, False),
    (502, [1, 2], True),
])
def test_error_bodies_of_any_shape(backend: str, status: int, body: Any,
                                   transient: bool) -> None:
    with pytest.raises(ProviderError) as info:
        call(backend, status, body)
    assert info.value.status == status and info.value.transient is transient


@pytest.mark.parametrize(("body", "kind"), [
    ({"output": {"a": 1}, "usage": [3, 4]}, "bad_response"),
    ({"output": {"a": 1}, "text": 5}, "bad_response"),
    # A count that is not one: the answer came, but what it cost cannot be told (not
    # retried; the runner charges the call's estimate).
    ({"output": {"a": 1}, "usage": {"input_tokens": "n/a"}}, "bad_usage"),
])
def test_malformed_success_bodies_are_bad_responses(backend: str, body: Any,
                                                    kind: str) -> None:
    with pytest.raises(ProviderError) as info:
        call(backend, 200, body)
    assert info.value.kind == kind and info.value.transient is (kind == "bad_response")


def test_an_error_body_echoing_the_token_is_scrubbed(backend: str) -> None:
    with pytest.raises(ProviderError) as info:
        call(backend, 401, {"error": {"code": "unauthorized",
                             "message": "token tok-secret-123456 is not valid"}})
    assert "tok-secret-123456" not in info.value.message and not info.value.transient


def test_a_redirect_is_not_followed_and_says_where_it_points(backend: str) -> None:
    Canned.seen.clear()
    with pytest.raises(ProviderError) as info:
        call(backend, 308, b"", {"location": "https://new.example/aiops/v1/complete"})
    assert info.value.status == 308 and not info.value.transient
    assert "https://new.example/aiops/v1/complete" in info.value.message
    assert len(Canned.seen) == 1  # one request: the redirect was not followed


def test_a_body_that_is_not_json_is_a_transient_bad_response(backend: str) -> None:
    with pytest.raises(ProviderError) as info:
        call(backend, 200, b"<html>gateway</html>")
    assert info.value.kind == "bad_response" and info.value.transient


@pytest.mark.parametrize(("headers", "body", "wait"), [
    ({"retry-after": "7"}, {"error": {"code": "rate_limited", "message": "slow down"}}, 7.0),
    ({}, {"error": {"code": "rate_limited", "message": "slow", "retry_after_s": 2.5}}, 2.5),
])
def test_retry_after_from_the_header_or_the_error_body(backend: str, headers: dict[str, str],
                                                       body: Any, wait: float) -> None:
    with pytest.raises(ProviderError) as info:
        call(backend, 429, body, headers)
    assert info.value.kind == "rate_limit" and info.value.retry_after_s == wait


def test_a_refused_connection_says_where(unused_port: int) -> None:
    with pytest.raises(ProviderError) as info:
        complete_once(f"http://127.0.0.1:{unused_port}/a")
    assert info.value.kind == "connection" and info.value.transient
    assert f"127.0.0.1:{unused_port}" in info.value.message


@pytest.mark.parametrize(("no_proxy", "proxied"), [("", True), ("backend.invalid", False)])
def test_the_proxy_of_the_environment_is_used_unless_no_proxy_exempts_the_host(
        backend: str, monkeypatch: pytest.MonkeyPatch, no_proxy: str, proxied: bool) -> None:
    """As httpx and the SDKs do; credentials in the proxy URL go in Proxy-Authorization."""
    proxy = backend.removesuffix("/aiops").replace("http://", "http://user:pw@")
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    Canned.answer = (200, json.dumps({"output": {"a": 1}}).encode(), {})
    Canned.seen.clear()

    if proxied:
        assert complete_once("http://backend.invalid/aiops").parsed == {"a": 1}
        assert Canned.seen == [("http://backend.invalid/aiops/v1/complete", "Basic dXNlcjpwdw==")]
    else:  # straight to a host that does not resolve
        with pytest.raises(ProviderError) as info:
            complete_once("http://backend.invalid/aiops")
        assert info.value.kind == "connection" and Canned.seen == []
        assert "pw" not in info.value.message


def test_a_proxy_that_refuses_says_where_without_its_password(
        unused_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://user:proxy-pw-9876@127.0.0.1:{unused_port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    with pytest.raises(ProviderError) as info:
        complete_once("http://backend.invalid/aiops")
    assert info.value.kind == "connection" and f"127.0.0.1:{unused_port}" in info.value.message
    assert "proxy-pw-9876" not in info.value.message


@pytest.mark.parametrize(("body", "kind"), [
    ({"choices": ["text"]}, "bad_response"),
    ({"choices": [{"message": "text"}]}, "bad_response"),
    ({"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens_details": 3}},
     "bad_response"),
    ({"choices": {"0": {}}}, "bad_response"),
    ({"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "many"}},
     "bad_usage"),  # a count that is not one: not retried, charged the call's estimate
])
def test_malformed_chat_completions_are_bad_responses(body: Any, kind: str) -> None:
    """An OpenAI-compatible server (vLLM, a proxy) that answers 200 with a broken body."""
    from aiops.providers._sdk import parse_chat_completion

    with pytest.raises(ProviderError) as info:
        parse_chat_completion(body, "local", None)
    assert info.value.kind == kind and info.value.transient is (kind == "bad_response")


class ClientConnectorDNSError(Exception):  # named as aiohttp names it; matched by name
    pass


class ClientConnectorError(Exception):
    pass


@pytest.mark.parametrize(("cause", "words"), [
    (ClientConnectorDNSError("Cannot connect to host api.exampel.com:443 [Name or service "
                             "not known]"), "Name or service not known"),
    (ClientConnectorError("Cannot connect to host 127.0.0.1:1 [Connect call failed]"),
     "Connect call failed"),
])
def test_a_connection_that_cannot_be_made_says_why(cause: Exception, words: str) -> None:
    """The aiohttp transports report a refused connection or an unknown host as a timeout; the
    message said "timed out" or "the server closed it", sending people to the wrong fix."""
    import openai

    from aiops.providers._sdk import map_sdk_errors

    def fail() -> None:
        try:
            raise cause
        except Exception as exc:
            raise openai.APITimeoutError(request=httpx.Request("POST", "http://h/v1")) from exc

    with pytest.raises(ProviderError) as info, map_sdk_errors(openai, openai.OpenAIError, "p",
                                                             ()):
        fail()
    assert info.value.kind == "connection" and info.value.transient
    assert words in info.value.message and "closed" not in info.value.message
