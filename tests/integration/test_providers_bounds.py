"""Every provider (the real openai and groq SDKs, and the http provider) against servers that
misbehave on purpose: a body trickled a byte at a time, a body far over `max_response_bytes`
(declared, streamed, or compressed), a redirect to another host. Each attempt ends within its
bounds, as the error it is."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import pytest

from aiops.errors import ProviderError
from aiops.providers import CompletionRequest, make_provider
from aiops.spec import ProviderSpec
from tests.fixtures_providers import send_json, serve_http

REQUEST = CompletionRequest(messages=({"role": "user", "content": "hi"},), model="m",
                            function="f", version="1.0.0")
KINDS = ("openai", "groq", "http")
ROOTS = {"openai": "/v1", "groq": "", "http": "/aiops"}
KEY = "sk-bounds-key-0123456789"


def success_body(path: str) -> bytes:
    """A valid answer of the wire format that `path` belongs to."""
    if path.endswith("/v1/complete"):
        return b'{"output": "hi", "usage": {"input_tokens": 1, "output_tokens": 1}}'
    return json.dumps({"id": "c", "model": "m", "choices": [{
        "index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).encode()


def call(kind: str, root: str, **settings: Any) -> Any:
    """One call through a provider built from providers.yaml settings, closed after."""
    data: dict[str, Any] = {"type": kind, "base_url": root + ROOTS[kind], **settings}
    if kind != "http":
        data["api_key_env"] = "KEY"
    provider = make_provider(kind, ProviderSpec.model_validate(data), {"KEY": KEY})

    async def go() -> Any:
        try:
            return await provider.complete(REQUEST)
        except ProviderError as exc:
            return exc
        finally:
            await provider.aclose()

    return asyncio.run(go())


class Hostile(BaseHTTPRequestHandler):
    """Answers as `mode` says; counts what it managed to send."""

    mode: ClassVar[str] = "trickle"
    sent: ClassVar[int] = 0
    done: ClassVar[threading.Event] = threading.Event()
    TOTAL: ClassVar[int] = 64 << 20  # the oversized body: 64 MB

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        body = success_body(self.path)
        try:
            getattr(self, "_" + self.mode)(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            Hostile.done.set()

    def _head(self, **headers: str) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/json")
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()

    def _trickle(self, body: bytes) -> None:
        """A valid body, one byte every 50 ms: about 10 s in all."""
        body = body[:-1] + b" " * (200 - len(body)) + body[-1:]
        self._head(content_length=str(len(body)))
        for i in range(len(body)):
            self.wfile.write(body[i:i + 1])
            self.wfile.flush()
            time.sleep(0.05)

    def _stream(self, body: bytes) -> None:
        """A valid body padded to 64 MB, no length declared: read until the connection ends."""
        self.close_connection = True
        self._head(connection="close")
        self.wfile.write(body[:-1])
        chunk = b" " * (64 << 10)
        while Hostile.sent < self.TOTAL:
            self.wfile.write(chunk)
            Hostile.sent += len(chunk)
        self.wfile.write(body[-1:])

    def _declared(self, body: bytes) -> None:
        """The same, with its length declared up front."""
        self._head(content_length=str(self.TOTAL + len(body)))
        self._stream(body)

    def _gzip(self, body: bytes) -> None:
        """64 MB of JSON in a gzip body of about 64 KB."""
        data = gzip.compress(body[:-1] + b" " * self.TOTAL + body[-1:], compresslevel=9)
        self._head(content_encoding="gzip", content_length=str(len(data)))
        self.wfile.write(data)
        Hostile.sent = len(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hostile() -> Iterator[str]:
    Hostile.sent = 0
    Hostile.done.clear()
    with serve_http(Hostile) as url:
        yield url


@pytest.mark.parametrize("kind", KINDS)
def test_a_trickled_body_times_out_within_timeout_s(hostile: str, kind: str) -> None:
    Hostile.mode = "trickle"
    start = time.perf_counter()
    result = call(kind, hostile, timeout_s=0.5)
    took = time.perf_counter() - start
    assert isinstance(result, ProviderError), result  # the body takes ~10 s to arrive
    assert (result.kind, result.transient) == ("timeout", True)
    assert took < 2.5, took  # timeout_s plus a margin for a loaded machine


@pytest.mark.parametrize("mode", ["stream", "declared", "gzip"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_body_over_max_response_bytes_stops_the_attempt(hostile: str, kind: str,
                                                          mode: str) -> None:
    Hostile.mode = mode
    result = call(kind, hostile, timeout_s=30, max_response_bytes=1 << 20)
    assert isinstance(result, ProviderError), result
    assert (result.kind, result.transient) == ("response_too_large", False)
    assert "over 1048576 bytes (max_response_bytes)" in result.message
    assert Hostile.done.wait(10)
    # Reading stopped at the bound: the server could not send the rest (what fits in the
    # sockets' buffers aside).
    assert Hostile.sent < Hostile.TOTAL // 2, Hostile.sent


class Elsewhere(BaseHTTPRequestHandler):
    """Another host: answers well, and records every request it gets."""

    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        Elsewhere.seen.append((self.path, self.headers.get("authorization")))
        send_json(self, 200, json.loads(success_body(self.path)))

    def log_message(self, *args: Any) -> None:
        pass


class Redirect(Elsewhere):
    """Answers every request with a 307 to the same path on `target`."""

    target: ClassVar[str] = ""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(307)
        self.send_header("location", Redirect.target + self.path)
        self.send_header("content-length", "0")
        self.end_headers()


@pytest.mark.parametrize("kind", KINDS)
def test_a_redirect_is_not_followed_and_names_where_it_points(kind: str) -> None:
    Elsewhere.seen.clear()
    with serve_http(Elsewhere) as elsewhere, serve_http(Redirect) as origin:
        Redirect.target = elsewhere
        result = call(kind, origin, timeout_s=5)
    assert isinstance(result, ProviderError), result
    assert result.status == 307 and not result.transient
    assert elsewhere in result.message and "base_url" in result.message
    assert Elsewhere.seen == []  # nothing, and no key, went to the other host
