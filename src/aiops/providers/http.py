"""The `http` provider: aiops's custom backend protocol over aiohttp.

The protocol is documented in docs/custom-backend.md and docs/custom-backend.openapi.yaml:

    POST {base_url}/v1/complete   {function, version, model, messages, settings, output_schema}
    200 -> {output, text, usage: {input_tokens, output_tokens, ...}, model, request_id}
    4xx/5xx -> {"error": {"code": ..., "message": ..., "retry_after_s": ...}}

Requests are authenticated with a bearer token or signed with HMAC-SHA256 over
`"{timestamp}.{body}"` (headers `X-Aiops-Timestamp`, `X-Aiops-Signature: v1=<hex>`); a server
rejects a timestamp outside its window. `sign` and `verify` are here so that servers written
in Python (the mock, tests) check exactly what the client signs. The HTTP itself, with its
bounds (`timeout_s` over the whole attempt, `max_response_bytes`, no redirects, the proxy of
the environment) and its error mapping, is `providers._wire`, shared with the SDK providers.

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
from typing import Any

from yarl import URL

from aiops import fastjson
from aiops.errors import ProviderError
from aiops.providers import (
    HTTP_PATH,
    MAX_BODY_DEPTH,
    Completion,
    CompletionRequest,
    json_body,
    reported_usage,
    status_error,
    whole,
)
from aiops.providers._wire import Wire, map_aiohttp_errors, redirect_error
from aiops.spec import DEFAULT_MAX_RESPONSE_BYTES

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
    # A backend is outside our control: a malformed body is its error, not ours.
    if not isinstance(text, str) or not isinstance(usage, dict):
        what = "`text` is not a string" if not isinstance(text, str) else \
            "`usage` is not an object"
        raise ProviderError(f"{provider} answered with a malformed body ({what})",
                            provider=provider, transient=True, kind="bad_response")
    return Completion(
        text=text, parsed=None if isinstance(output, str) else output,
        usage=reported_usage(provider, **{k: usage.get(k) for k in (
            "input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens")}),
        request_id=data.get("request_id"), model=data.get("model") or "",
        finish_reason=data.get("finish_reason"))


class HttpProvider:
    def __init__(self, *, name: str, base_url: str, timeout_s: float, token: str | None = None,
                 secret: str | None = None, window_s: int = 300,
                 default_headers: dict[str, str] | None = None,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        self.name = name
        self._url = URL(base_url.rstrip("/") + HTTP_PATH)
        self._token = token
        self._secret = secret
        self._secrets = tuple(s for s in (token, secret) if s)
        self._headers = {"content-type": "application/json", **(default_headers or {})}
        self._wire = Wire(provider=name, timeout_s=timeout_s,
                          max_response_bytes=max_response_bytes)

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
        with map_aiohttp_errors(self.name, self._secrets):
            # Redirects are not followed (`Wire`): the signed request is for this URL.
            status, headers, _, raw = await self._wire.send(
                "POST", self._url, data=body, headers=self._auth_headers(body))
        if 300 <= status < 400:
            raise redirect_error(self.name, status, headers.get("location"), self._secrets)
        if status >= 400:
            try:
                detail: Any = fastjson.loads_bounded(raw, MAX_BODY_DEPTH)
            except ValueError:
                detail = raw.decode(errors="replace")
            error = status_error(self.name, status, detail, headers, self._secrets)
            err = detail.get("error") if isinstance(detail, dict) else None
            if error.retry_after_s is None and isinstance(err, dict):  # may be a string
                after = err.get("retry_after_s")
                if isinstance(after, int | float) and not isinstance(after, bool):
                    error.retry_after_s = float(after)
            raise error
        return whole(parse_response(json_body(raw, self.name), self.name), request, self.name)

    async def aclose(self) -> None:
        await self._wire.aclose()
