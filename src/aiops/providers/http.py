"""The `http` provider: aiops's custom backend protocol over aiohttp.

The protocol is documented in docs/custom-backend.md and docs/custom-backend.openapi.yaml:

    POST {base_url}/v1/complete   {function, version, model, messages, settings, output_schema}
    200 -> {output, text, usage: {input_tokens, output_tokens, ...}, model, request_id}
    4xx/5xx -> {"error": {"code": ..., "message": ..., "retry_after_s": ...}}

Requests are authenticated with a bearer token or signed with HMAC-SHA256 over
`"{timestamp}.{body}"` (headers `X-Aiops-Timestamp`, `X-Aiops-Signature: v1=<hex>`); a server
rejects a timestamp outside its window. `sign` and `verify` are here so that servers written
in Python (the mock, tests) check exactly what the client signs. `_map_errors` is the one
place where aiohttp errors become aiops errors.

aiohttp rather than httpx: at a batch's thousands of calls a second the client's CPU is the
limit, and aiohttp spends about a third of httpx's per request (0.15 ms against 0.42 ms over
the same aiohttp connection pool, 0.63 ms on httpx's own; `benchmarks/runner.py`). It is the
async backend the OpenAI and Groq SDKs recommend too, so it is no new dependency.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
from yarl import URL

from aiops import fastjson
from aiops.errors import ProviderError
from aiops.providers import (
    Completion,
    CompletionRequest,
    Usage,
    disconnect_message,
    json_body,
    scrub,
    status_error,
    timeout_error,
)

PATH = "/v1/complete"
TIMESTAMP_HEADER = "X-Aiops-Timestamp"
SIGNATURE_HEADER = "X-Aiops-Signature"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, *,
           window_s: float = 300, now: float | None = None) -> str | None:
    """None when the signature is good and fresh, else the error code a server answers."""
    if not timestamp or not signature:
        return "missing_signature"
    try:
        ts = int(timestamp)
    except ValueError:
        return "bad_timestamp"
    if abs((time.time() if now is None else now) - ts) > window_s:
        return "timestamp_outside_window"
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        return "bad_signature"
    return None


def build_body(request: CompletionRequest) -> dict[str, Any]:
    return {"function": request.function, "version": request.version, "model": request.model,
            "messages": list(request.messages),
            "settings": {k: v for k, v in request.settings.items() if v is not None},
            "output_schema": request.output_schema}


def parse_response(data: Any, provider: str) -> Completion:
    if not isinstance(data, dict) or "output" not in data:
        raise ProviderError(f"{provider} answered without `output`", provider=provider,
                            transient=True, kind="bad_response")
    output = data["output"]
    usage = data.get("usage") or {}
    text = data.get("text")
    if text is None:
        text = output if isinstance(output, str) else json.dumps(output)
    try:  # a backend is outside our control: a malformed body is its error, not ours
        if not isinstance(text, str):
            raise TypeError("`text` is not a string")
        counts = {k: int(usage.get(k) or 0) for k in (
            "input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens")}
    except (AttributeError, TypeError, ValueError) as exc:
        raise ProviderError(f"{provider} answered with a malformed body ({exc})",
                            provider=provider, transient=True, kind="bad_response") from None
    return Completion(
        text=text, parsed=None if isinstance(output, str) else output,
        usage=Usage(**counts),
        request_id=data.get("request_id"), model=data.get("model") or "",
        finish_reason=data.get("finish_reason"))


@contextmanager
def _map_errors(provider: str, secrets: tuple[str, ...]) -> Iterator[None]:
    try:
        yield
    except TimeoutError as exc:  # aiohttp's timeouts are TimeoutError too
        raise timeout_error(provider, exc, secrets) from None
    except aiohttp.ClientConnectionError as exc:  # refused, unresolvable, dropped
        raise ProviderError(disconnect_message(provider, exc, secrets), provider=provider,
                            transient=True, kind="connection") from None
    except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as exc:
        # A body cut short, or an answer that is not HTTP: the backend's fault, maybe passing.
        raise ProviderError(scrub(f"{provider} sent a broken answer: {type(exc).__name__}: "
                                  f"{exc}", secrets)[:500], provider=provider, transient=True,
                            kind="bad_response") from None
    except aiohttp.ClientError as exc:  # an invalid URL, and the like: retrying will not help
        raise ProviderError(scrub(f"{provider} failed: {type(exc).__name__}: {exc}", secrets),
                            provider=provider, kind="provider_error") from None


def env_proxy(url: URL) -> URL | None:
    """The proxy that `HTTPS_PROXY`/`HTTP_PROXY` (else `ALL_PROXY`) name for `url`, unless
    `NO_PROXY` exempts its host, as httpx and the SDKs honour them (credentials in its URL are
    sent to the proxy). Looked up once: aiohttp's own `trust_env` does it per request, in a
    thread."""
    if url.host is None or urllib.request.proxy_bypass(url.host):
        return None
    proxies = urllib.request.getproxies()
    found = proxies.get(url.scheme) or proxies.get("all")
    if not found:
        return None
    return URL(found if "://" in found else f"http://{found}")


class HttpProvider:
    def __init__(self, *, name: str, base_url: str, timeout_s: float, token: str | None = None,
                 secret: str | None = None, window_s: int = 300,
                 default_headers: dict[str, str] | None = None) -> None:
        self.name = name
        self._url = URL(base_url.rstrip("/") + PATH)
        self._token = token
        self._secret = secret
        self._secrets = tuple(s for s in (token, secret) if s)
        self._headers = {"content-type": "application/json", **(default_headers or {})}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._proxy = env_proxy(self._url)

    def _client(self) -> aiohttp.ClientSession:
        """The session, made on first use: in the running loop, which it then belongs to (one
        provider per loop, like the Runner). No cap on connections: the runner's concurrency
        limits are the cap."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), timeout=self._timeout)
        return self._session

    def _auth_headers(self, body: bytes) -> dict[str, str]:
        headers = dict(self._headers)
        if self._token:
            headers["authorization"] = f"Bearer {self._token}"
        if self._secret:
            timestamp = str(int(time.time()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        return headers

    async def complete(self, request: CompletionRequest) -> Completion:
        body = fastjson.dumps(build_body(request))
        with _map_errors(self.name, self._secrets):
            # Redirects are not followed (as httpx and the SDKs do not): the signed request is
            # for this URL, and a moved backend is a configuration to fix.
            async with self._client().post(self._url, data=body, headers=self._auth_headers(body),
                                           proxy=self._proxy, allow_redirects=False) as response:
                status, headers, raw = response.status, response.headers, await response.read()
            if 300 <= status < 400:
                raise ProviderError(scrub(
                    f"{self.name} answered {status}, a redirect to {headers.get('location')}: "
                    "set the provider's base_url to where it points", self._secrets)[:500],
                    provider=self.name, status=status, kind="provider_error")
            if status >= 400:
                try:
                    detail: Any = fastjson.loads(raw)
                except ValueError:
                    detail = raw.decode(errors="replace")
                error = status_error(self.name, status, detail, headers, self._secrets)
                err = detail.get("error") if isinstance(detail, dict) else None
                if error.retry_after_s is None and isinstance(err, dict):  # may be a string
                    after = err.get("retry_after_s")
                    if isinstance(after, int | float) and not isinstance(after, bool):
                        error.retry_after_s = float(after)
                raise error
            return parse_response(json_body(raw, self.name), self.name)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
