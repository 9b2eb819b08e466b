"""The real openai and groq SDKs, and the http provider, against the mock provider server;
the http provider's signing against an independent test server."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import json
import re
import socket
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import jsonschema
import pytest

from aiops.errors import ProviderError
from aiops.providers import CompletionRequest, make_provider
from aiops.providers.groq import GroqProvider
from aiops.providers.http import HttpProvider
from aiops.providers.mock_server import MockConfig, MockServer
from aiops.providers.openai import OpenAIProvider
from aiops.spec import ProviderSpec
from tests.fixtures_providers import send_json, serve_http

SCHEMA = {"type": "object", "required": ["queue", "priority"], "additionalProperties": False,
          "properties": {"queue": {"type": "string", "enum": ["billing", "other"]},
                         "priority": {"type": "integer", "minimum": 1, "maximum": 4}}}
REQUEST = CompletionRequest(messages=({"role": "system", "content": "Route tickets."},
                                      {"role": "user", "content": "Charged twice"}),
                            model="gpt-4o-mini", settings={"temperature": 0, "max_tokens": 50},
                            output_schema=SCHEMA, function="classify", version="1.0.0")


def providers(url: str, headers: dict[str, str] | None = None,
              timeout_s: float = 5) -> list[Any]:
    return [OpenAIProvider(name="openai", api_key="sk-test", base_url=url + "/v1",
                           timeout_s=timeout_s, default_headers=headers),
            GroqProvider(name="groq", api_key="gsk-test", base_url=url, timeout_s=timeout_s,
                         default_headers=headers),
            HttpProvider(name="internal", base_url=url + "/aiops", timeout_s=timeout_s,
                         default_headers=headers)]


async def _each(items: list[Any], request: CompletionRequest) -> list[Any]:
    out: list[Any] = []
    for p in items:
        try:
            out.append(await p.complete(request))
        except ProviderError as exc:
            out.append(exc)
        finally:
            await p.aclose()
    return out


def test_structured_output_through_each_wire_format(mock_provider: MockServer) -> None:
    results = asyncio.run(_each(providers(mock_provider.url), REQUEST))
    for completion in results:
        value = json.loads(completion.text)
        assert value["queue"] in ("billing", "other") and 1 <= value["priority"] <= 4
        assert completion.usage.input_tokens > 0 and completion.usage.output_tokens > 0
        assert completion.request_id
    # Same prompt, same answer: the mock is deterministic per wire format.
    again = asyncio.run(_each(providers(mock_provider.url), REQUEST))
    assert [c.text for c in again] == [c.text for c in results]


def test_text_output(mock_provider: MockServer) -> None:
    request = CompletionRequest(messages=({"role": "user", "content": "Say hi"},),
                                model="llama-3.1-8b-instant")
    for completion in asyncio.run(_each(providers(mock_provider.url), request)):
        assert "Say hi" in completion.text


@pytest.mark.parametrize(("fault", "status", "kind", "transient"), [
    ("rate_limit", 429, "rate_limit", True),
    ("server_error", 500, "server_error", True),
    ("unavailable", 503, "server_error", True),
    ("drop", None, "connection", True),
    ("bad_body", None, "bad_response", True),
    ("auth", 401, "auth", False),
    ("not_found", 404, "not_found", False),
    ("bad_request", 400, "bad_request", False),
])
def test_faults_map_to_provider_errors(mock_provider: MockServer, fault: str,
                                       status: int | None, kind: str, transient: bool) -> None:
    results = asyncio.run(_each(providers(mock_provider.url, {"X-Mock-Fault": fault}), REQUEST))
    for err in results:
        assert isinstance(err, ProviderError), err
        assert (err.status, err.kind, err.transient) == (status, kind, transient), err
        assert "sk-test" not in str(err) and "gsk-test" not in str(err)
        if fault == "rate_limit":
            assert err.retry_after_s == pytest.approx(0.01)


def test_timeout_fault(mock_provider: MockServer) -> None:
    start = time.perf_counter()
    results = asyncio.run(_each(providers(mock_provider.url, {"X-Mock-Fault": "timeout"},
                                          timeout_s=0.2), REQUEST))
    assert all(isinstance(e, ProviderError) and e.kind == "timeout" and e.transient
               for e in results)
    assert time.perf_counter() - start < 3


@pytest.mark.parametrize("fault", ["malformed", "schema"])
def test_output_faults_arrive_as_completions(mock_provider: MockServer, fault: str) -> None:
    for completion in asyncio.run(_each(providers(mock_provider.url, {"X-Mock-Fault": fault}),
                                        REQUEST)):
        text = completion.text
        if fault == "malformed":
            with pytest.raises(ValueError):
                json.loads(text)
        else:
            assert "queue" not in json.loads(text)


def test_fault_rate_mixes_faults(mock_provider_factory: Any) -> None:
    server = mock_provider_factory(MockConfig(fault_rate=0.5, seed=3, retry_after_s=0.01,
                                              timeout_fault_s=0.3))
    items = [HttpProvider(name="internal", base_url=server.url + "/aiops", timeout_s=0.2)]

    async def go() -> None:
        for _ in range(120):
            with contextlib.suppress(ProviderError):
                await items[0].complete(REQUEST)
        await items[0].aclose()

    asyncio.run(go())
    faults = {k for k in server.app.stats if k.startswith("fault:")}
    assert len(faults) >= 6
    assert 30 <= sum(server.app.stats[k] for k in faults) <= 90


def test_responses_entries_match_in_order(mock_provider_factory: Any) -> None:
    server = mock_provider_factory(MockConfig(responses=[
        {"match": {"provider": "groq", "model": "gone"},
         "status": 404, "error": {"message": "The model `gone` does not exist",
                                  "type": "invalid_request_error", "code": "model_not_found"}},
        {"match": {"contains": "Charged twice"}, "output": {"queue": "billing", "priority": 2}},
    ]))
    results = asyncio.run(_each(providers(server.url), REQUEST))
    assert all(json.loads(c.text) == {"queue": "billing", "priority": 2} for c in results)
    gone = CompletionRequest(messages=REQUEST.messages, model="gone")
    err = asyncio.run(_each(providers(server.url)[1:2], gone))[0]
    assert isinstance(err, ProviderError) and err.status == 404 and "gone" in err.message


def test_answers_are_cut_at_max_tokens_unless_an_entry_reports_its_own_usage(
        mock_provider_factory: Any) -> None:
    """As providers do (budget tests rely on it): the answer cut off is a `truncated` error
    that carries what was billed. An entry's `usage` plays a backend that ignores
    max_tokens."""
    server = mock_provider_factory(MockConfig(responses=[
        {"match": {"contains": "long"}, "content": "word " * 400},
        {"match": {"contains": "ignores"}, "content": "short", "usage": {"output_tokens": 999}},
    ]))
    text = CompletionRequest(messages=({"role": "user", "content": "a long answer"},),
                             model="gpt-4o-mini", settings={"max_tokens": 30})
    for err in asyncio.run(_each(providers(server.url), text)):
        assert isinstance(err, ProviderError) and err.kind == "truncated"
        assert err.answer is not None and err.answer.finish_reason == "length"
        assert err.answer.usage.output_tokens == 30 and len(err.answer.text) <= 4 * 30
        assert "max_tokens (30)" in err.message
    ignores = CompletionRequest(messages=({"role": "user", "content": "it ignores it"},),
                                model="gpt-4o-mini", settings={"max_tokens": 30})
    for completion in asyncio.run(_each(providers(server.url), ignores)):
        assert completion.usage.output_tokens == 999 and completion.text == "short"


def test_base_url_override_points_a_provider_at_the_mock(mock_provider: MockServer) -> None:
    spec = ProviderSpec(type="groq", api_key_env="GROQ_API_KEY",
                        base_url="https://api.groq.com")
    env = {"GROQ_API_KEY": "gsk-x", "AIOPS_GROQ_BASE_URL": mock_provider.url}
    completion = asyncio.run(_each([make_provider("groq", spec, env)], REQUEST))[0]
    assert json.loads(completion.text)["queue"] in ("billing", "other")


# --- the custom protocol against an independent server that checks the signature --------------

SECRET = "hmac-test-secret"


class _Checking(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        ts = self.headers.get("x-aiops-timestamp", "")
        given = self.headers.get("x-aiops-signature", "")
        want = "v1=" + hmac.new(SECRET.encode(), f"{ts}.".encode() + body,
                                hashlib.sha256).hexdigest()
        fresh = ts.isdigit() and abs(time.time() - int(ts)) <= 300
        if self.path != "/aiops/v1/complete" or not fresh or not hmac.compare_digest(want, given):
            self._send(401, {"error": {"code": "bad_signature", "message": "refused"}})
            return
        request = json.loads(body)
        _Checking.seen.append(request)
        self._send(200, {"output": {"queue": "billing", "priority": 1}, "model": request["model"],
                         "usage": {"input_tokens": 12, "output_tokens": 5},
                         "request_id": "srv-1"})

    def _send(self, status: int, payload: Any) -> None:
        send_json(self, status, payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def signing_server() -> Iterator[str]:
    with serve_http(_Checking) as url:
        yield url + "/aiops"


def test_http_provider_signs_requests(signing_server: str) -> None:
    spec = ProviderSpec.model_validate({"type": "http", "base_url": signing_server,
                                        "auth": {"type": "hmac", "secret_env": "SEC"}})
    good = make_provider("internal", spec, {"SEC": SECRET})
    bad = make_provider("internal", spec, {"SEC": "wrong-secret"})
    ok, refused = asyncio.run(_each([good, bad], REQUEST))
    assert ok.parsed == {"queue": "billing", "priority": 1} and ok.usage.total_tokens == 17
    sent = _Checking.seen[-1]
    assert sent["function"] == "classify" and sent["output_schema"] == SCHEMA
    assert sent["messages"][1]["content"] == "Charged twice" and sent["settings"]["max_tokens"] == 50
    assert isinstance(refused, ProviderError) and refused.status == 401 and not refused.transient
    assert "wrong-secret" not in str(refused)


def test_mock_checks_bearer_tokens(mock_provider_factory: Any) -> None:
    server = mock_provider_factory(MockConfig(bearer_token="tok-123"))
    spec = ProviderSpec.model_validate({"type": "http", "base_url": server.url + "/aiops",
                                        "auth": {"type": "bearer", "token_env": "TOK"}})
    ok, refused = asyncio.run(_each([make_provider("i", spec, {"TOK": "tok-123"}),
                                     make_provider("i", spec, {"TOK": "tok-999"})], REQUEST))
    assert ok.parsed is not None
    assert isinstance(refused, ProviderError) and refused.status == 401


class _Proxy(BaseHTTPRequestHandler):
    """A forward proxy that answers itself: records the request target and the credentials,
    and replies with a body both wire formats read."""

    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        _Proxy.seen.append((self.path, self.headers.get("proxy-authorization")))
        _Checking._send(self, 200, {  # type: ignore[arg-type]
            "output": "hi", "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
                                                       "message": {"role": "assistant",
                                                                   "content": "hi"}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "input_tokens": 1,
                      "output_tokens": 1}})

    def log_message(self, *args: Any) -> None:
        pass


# The SDKs' aiohttp transport passes proxy credentials through aiohttp's deprecated API.
@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning",
                            "ignore:The 'proxy_auth' parameter is deprecated:DeprecationWarning")
def test_every_provider_goes_through_the_proxy_of_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    _Proxy.seen.clear()
    with serve_http(_Proxy) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.replace("http://", "http://u:p@"))
        results = asyncio.run(_each(providers("http://backend.invalid"), REQUEST))
    assert [c.text for c in results] == ["hi"] * 3
    assert _Proxy.seen == [(f"http://backend.invalid{path}", "Basic dTpw") for path in (
        "/v1/chat/completions", "/openai/v1/chat/completions", "/aiops/v1/complete")]


# --- every schema, /v1/models, malformed requests (issue 10) ---------------------------------

REFS = {"type": "object", "required": ["entities"], "additionalProperties": False,
        "$defs": {"Entity": {"type": "object", "required": ["name", "kind"],
                             "additionalProperties": False,
                             "properties": {"name": {"type": "string"},
                                            "kind": {"enum": ["person", "org"]}}}},
        "properties": {"entities": {"type": "array", "items": {"$ref": "#/$defs/Entity"},
                                    "minItems": 2}}}


def test_an_array_of_refs_comes_back_as_objects_on_each_wire_format(
        mock_provider: MockServer) -> None:
    """Before: `{"entities": ["entities0 ...", ...]}`, strings the schema refuses."""
    request = dataclasses.replace(REQUEST, output_schema=REFS)
    for completion in asyncio.run(_each(providers(mock_provider.url), request)):
        assert not isinstance(completion, Exception), completion
        value = json.loads(completion.text)
        jsonschema.validate(value, REFS)
        assert len(value["entities"]) == 2


def test_a_schema_beyond_the_generator_is_a_400_that_says_where_and_what_to_do(
        mock_provider: MockServer) -> None:
    schema = {"type": "object", "required": ["code"], "properties": {
        "code": {"type": "string", "pattern": "^(?=.*[0-9])[a-z0-9]{8}$"}}}
    request = dataclasses.replace(REQUEST, output_schema=schema)
    for err in asyncio.run(_each(providers(mock_provider.url), request)):
        assert isinstance(err, ProviderError) and err.status in (400, 422), err
        assert not err.transient
        assert "cannot generate output for this schema at $.code: pattern" in err.message
        assert "lookahead" in err.message and "--responses" in err.message


def test_the_models_endpoint_lists_the_configured_and_the_matched_models(
        mock_provider_factory: Any) -> None:
    import groq
    import openai

    server = mock_provider_factory(MockConfig(models=("gpt-4o-mini",), responses=[
        {"match": {"model": "llama-3.1-8b-instant"}, "output": "hi"},
        {"match": {"contains": "x"}, "output": "x"}]))

    async def go() -> tuple[list[str], list[str], Exception]:
        oa = openai.AsyncOpenAI(api_key="sk-x", base_url=server.url + "/v1", max_retries=0)
        gq = groq.AsyncGroq(api_key="gsk-x", base_url=server.url, max_retries=0)
        try:
            listed = [m.id async for m in oa.models.list()]
            on_groq = [m.id for m in (await gq.models.list()).data]
            assert (await oa.models.retrieve("gpt-4o-mini")).id == "gpt-4o-mini"
            try:
                await oa.models.retrieve("nope")
            except openai.NotFoundError as exc:
                missing: Exception = exc
            return listed, on_groq, missing
        finally:
            await oa.close()
            await gq.close()

    listed, on_groq, missing = asyncio.run(go())
    assert listed == on_groq == ["gpt-4o-mini", "llama-3.1-8b-instant"]
    assert getattr(missing, "code", None) == "model_not_found"


def _raw(url: str, data: bytes) -> tuple[int, dict[str, Any]]:
    """Send bytes, read one response: (status, JSON body)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(data)
        received = b""

        def complete() -> bool:
            head, sep, body = received.partition(b"\r\n\r\n")
            length = re.search(rb"content-length: (\d+)", head)
            return bool(sep) and length is not None and len(body) >= int(length.group(1))

        while not complete():
            chunk = sock.recv(65536)
            assert chunk, f"the server closed the connection without answering: {received!r}"
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def _post(body: bytes, path: str = "/v1/chat/completions") -> bytes:
    return (f"POST {path} HTTP/1.1\r\ncontent-length: {len(body)}\r\n\r\n".encode() + body)


_HEAD = b"POST /v1/chat/completions HTTP/1.1\r\n"


@pytest.mark.parametrize(("data", "status", "says"), [
    pytest.param(b"GARBAGE\r\n\r\n", 400,
                 "malformed HTTP request: the request line 'GARBAGE'", id="request-line"),
    pytest.param(_HEAD + b"no colon here\r\n\r\n", 400, "header line", id="header-line"),
    pytest.param(_HEAD + b"content-length: 1e3\r\n\r\n", 400,
                 "content-length '1e3' is not a number", id="content-length"),
    pytest.param(_HEAD + b"content-length: 999999999999\r\n\r\n", 413, "over the mock's",
                 id="body-too-large"),
    pytest.param(_HEAD + b"transfer-encoding: chunked\r\n\r\nzz\r\n", 400,
                 "the chunk size 'zz' is not hexadecimal", id="chunk-size"),
    pytest.param(_post(b"[1, 2]"), 400, "must be a JSON object, not an array",
                 id="not-an-object"),
    pytest.param(_post(b'{"model": "m"}'), 400, "Missing required parameter: 'messages'",
                 id="no-messages"),
    pytest.param(_post(b'{"model": "m", "messages": "hi"}'), 400,
                 "Invalid type for 'messages': expected an array, but got a string instead.",
                 id="messages-type"),
    pytest.param(_post(b'{"model": "m", "messages": ["hi"]}'), 400, "'messages[0]'",
                 id="message-type"),
    pytest.param(_post(b'{"model": "m", "messages": [], "response_format": "json"}'), 400,
                 "Invalid type for 'response_format'", id="response-format-type"),
    pytest.param(_post(b'{"model": "m", "messages": [], "response_format": '
                       b'{"type": "json_schema", "json_schema": "x"}}'), 400,
                 "'response_format.json_schema'", id="json-schema-type"),
    pytest.param(_post(b'{"model": "m", "messages": [], "max_tokens": "10"}'), 400,
                 "'max_tokens'", id="max-tokens-type"),
    pytest.param(_post(b'{"model": "m", "messages": [], "settings": []}', "/aiops/v1/complete"),
                 400, "Invalid type for 'settings'", id="aiops-settings-type"),
])
def test_a_malformed_request_is_a_400_with_an_openai_style_body(
        mock_provider: MockServer, data: bytes, status: int, says: str) -> None:
    """Before: the connection handler crashed (a traceback in the server's log) and the
    client saw the connection close with no answer."""
    got, body = _raw(mock_provider.url, data)
    assert got == status, body
    error = body["error"]
    assert says in error["message"]
    if "/aiops/" not in data.split(b"\r\n")[0].decode():
        assert error["type"] == "invalid_request_error" and "param" in error
    # the server is still up for everyone else
    assert _raw(mock_provider.url, b"GET /health HTTP/1.1\r\n\r\n")[0] == 200
