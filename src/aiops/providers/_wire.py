"""The HTTP under every provider: one aiohttp session per provider, with aiops's bounds.

- `timeout_s` bounds each attempt as a whole: connecting, the first byte and the whole body
  (aiohttp's `total` timeout). Per-read timeouts alone, which the SDKs set, let a server that
  trickles a byte at a time hold a call for ever.
- `max_response_bytes` bounds the body: it is read in chunks and the attempt fails as soon as
  it (or its declared `Content-Length`) passes the bound, with the connection closed, not
  drained. The bound counts decoded bytes, so a compressed body cannot expand past it.
- Redirects are not followed: a request signed or authorised for one URL is not replayed
  elsewhere, and a moved backend is a configuration to fix (the error names the Location).
- The proxy of the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`), looked
  up once per host.

`Wire` does this for the `http` provider; `AioTransport` puts the same `Wire` under the
SDKs' clients (an httpx or httpx2 transport), so that the `openai` and `groq` providers keep
their SDK's request building, authentication and error classes over the same bounded HTTP.
`map_aiohttp_errors` is the one place where aiohttp's errors become aiops errors.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import aiohttp
from yarl import URL

from aiops.errors import ProviderError
from aiops.providers import disconnect_message, scrub, timeout_error

# Headers that describe the body as it came over the wire: aiohttp hands the body over
# decoded and whole, so they no longer apply to it.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def too_large_error(provider: str, limit: int) -> ProviderError:
    """The attempt whose response body passed `max_response_bytes` (not retried)."""
    return ProviderError(
        f"{provider} sent a response body over {limit} bytes (max_response_bytes); reading "
        "stopped there. Raise the provider's max_response_bytes in providers.yaml if answers "
        "this large are expected", provider=provider, kind="response_too_large")


def redirect_error(provider: str, status: int, location: str | None,
                   secrets: tuple[str, ...]) -> ProviderError:
    """A 3xx answer: not followed; the message says where to point base_url."""
    return ProviderError(scrub(
        f"{provider} answered {status}, a redirect to {location}: set the provider's base_url "
        "to where it points (redirects are not followed)", secrets)[:500],
        provider=provider, status=status, kind="provider_error")


# What aiohttp raises: its errors, and its timeouts (TimeoutError).
AIOHTTP_ERRORS = (TimeoutError, aiohttp.ClientError)


def aiohttp_error(provider: str, exc: TimeoutError | aiohttp.ClientError,
                  secrets: tuple[str, ...]) -> ProviderError:
    """aiohttp's error (or its timeout) as a ProviderError, transient or not."""
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts are TimeoutError too
        return timeout_error(provider, exc, secrets)
    if isinstance(exc, aiohttp.ClientConnectionError):  # refused, unresolvable, dropped
        return ProviderError(disconnect_message(provider, exc, secrets), provider=provider,
                             transient=True, kind="connection")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        # A body cut short, or an answer that is not HTTP: the backend's fault, maybe passing.
        return ProviderError(scrub(f"{provider} sent a broken answer: {type(exc).__name__}: "
                                   f"{exc}", secrets)[:500], provider=provider, transient=True,
                             kind="bad_response")
    # An invalid URL, and the like: retrying will not help.
    return ProviderError(scrub(f"{provider} failed: {type(exc).__name__}: {exc}", secrets),
                         provider=provider, kind="provider_error")


@contextmanager
def map_aiohttp_errors(provider: str, secrets: tuple[str, ...]) -> Iterator[None]:
    """The one translation of aiohttp's errors (`aiohttp_error`) around a request."""
    try:
        yield
    except AIOHTTP_ERRORS as exc:
        raise aiohttp_error(provider, exc, secrets) from None


def env_proxy(url: URL) -> URL | None:
    """The proxy that `HTTPS_PROXY`/`HTTP_PROXY` (else `ALL_PROXY`) name for `url`, unless
    `NO_PROXY` exempts its host, as httpx and the SDKs honour them (credentials in its URL are
    sent to the proxy). aiohttp's own `trust_env` looks it up per request, in a thread."""
    if url.host is None or urllib.request.proxy_bypass(url.host):
        return None
    proxies = urllib.request.getproxies()
    found = proxies.get(url.scheme) or proxies.get("all")
    if not found:
        return None
    return URL(found if "://" in found else f"http://{found}")


async def read_bounded(response: aiohttp.ClientResponse, limit: int, provider: str) -> bytes:
    """The whole (decoded) body, or `too_large_error` once it passes `limit` bytes."""
    declared = response.content_length
    if declared is not None and declared > limit and not response.headers.get(
            "content-encoding"):
        raise too_large_error(provider, limit)
    chunks: list[bytes] = []
    size = 0
    while chunk := await response.content.readany():
        size += len(chunk)
        if size > limit:
            raise too_large_error(provider, limit)
        chunks.append(chunk)
    return b"".join(chunks)


class Wire:
    """One provider's aiohttp session with its bounds. The session is made on first use, in
    the running loop, which it then belongs to (one provider per loop, like the Runner). No
    cap on connections: the runner's concurrency limits are the cap."""

    def __init__(self, *, provider: str, timeout_s: float, max_response_bytes: int) -> None:
        self.provider = provider
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str | None, int | None], URL | None] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), timeout=self._timeout)
        return self._session

    def _proxy(self, url: URL) -> URL | None:
        key = (url.scheme, url.host, url.port)
        if key not in self._proxies:
            self._proxies[key] = env_proxy(url)
        return self._proxies[key]

    async def send(self, method: str, url: URL, *, headers: Any, data: bytes | None
                   ) -> tuple[int, Mapping[str, str], list[tuple[bytes, bytes]], bytes]:
        """(status, headers, raw headers, body) of one request, within the bounds. aiohttp's
        errors are raised as they are: `map_aiohttp_errors` translates them."""
        async with self._client().request(method, url, data=data, headers=headers,
                                          proxy=self._proxy(url),
                                          allow_redirects=False) as response:
            body = await read_bounded(response, self.max_response_bytes, self.provider)
            return response.status, response.headers, list(response.raw_headers), body

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class AioTransport:
    """An httpx (or httpx2) transport over a `Wire`: what the SDK clients send through.

    `response_cls` is the Response class of the httpx the SDK is built on (`httpx2.Response`
    for openai 3, `httpx.Response` for groq). The body arrives whole and decoded, so the
    headers that describe its encoding on the wire are dropped; the encodings offered are
    aiohttp's (it decodes them), not httpx's."""

    def __init__(self, response_cls: type, wire: Wire) -> None:
        self._response = response_cls
        self._wire = wire

    async def handle_async_request(self, request: Any) -> Any:
        headers = [(k, v) for k, v in request.headers.multi_items()
                   if k.lower() != "accept-encoding"]
        content = await request.aread()
        status, _, raw, body = await self._wire.send(
            request.method, URL(str(request.url), encoded=True), headers=headers,
            data=content or None)
        kept = [(k, v) for k, v in raw if k.decode("latin-1").lower() not in _WIRE_HEADERS]
        return self._response(status, headers=kept, content=body, request=request,
                              extensions={"http_version": b"HTTP/1.1"})

    async def aclose(self) -> None:
        await self._wire.aclose()
