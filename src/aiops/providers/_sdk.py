"""What the `openai` and `groq` providers share: both official SDKs are generated from one
template, with the same client shape and the same error classes.

`map_sdk_errors` is the one place where either SDK's errors become aiops errors;
`parse_chat_completion` reads the chat-completions body both APIs return; `SdkChatProvider`
posts through the SDK's own client (auth, error classes) with its retries off, over aiops's
own transport (`sdk_http_client`: `providers._wire`, so `timeout_s` bounds the whole
attempt, `max_response_bytes` the body, and no redirect is followed, as for the `http`
provider). Each provider module keeps what differs: the request it builds, its path, its
request id.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from aiops.errors import ProviderError
from aiops.providers import (
    Completion,
    CompletionRequest,
    json_body,
    not_json_error,
    reported_usage,
    scrub,
    status_error,
    timeout_error,
    whole,
)
from aiops.providers._wire import (
    AIOHTTP_ERRORS,
    AioTransport,
    Wire,
    aiohttp_error,
    map_aiohttp_errors,
    redirect_error,
)


@contextmanager
def map_sdk_errors(sdk: ModuleType, base_error: type[Exception], provider: str,
                   secrets: tuple[str, ...]) -> Iterator[None]:
    try:
        with map_aiohttp_errors(provider, secrets):  # raised through the SDK by AioTransport
            yield
    except sdk.APIConnectionError as exc:  # APITimeoutError too
        # The groq SDK wraps whatever its transport raised: what AioTransport raised is the
        # cause, an aiops error already (a body over the bound) or one of aiohttp's.
        cause = exc.__cause__
        if isinstance(cause, ProviderError):
            raise cause from None
        if isinstance(cause, AIOHTTP_ERRORS):
            raise aiohttp_error(provider, cause, secrets) from None
        if isinstance(exc, sdk.APITimeoutError):
            raise timeout_error(provider, exc, secrets) from None
        raise ProviderError(scrub(f"{provider} connection failed: {exc}", secrets),
                            provider=provider, transient=True, kind="connection") from None
    except sdk.APIStatusError as exc:
        if 300 <= exc.status_code < 400:
            raise redirect_error(provider, exc.status_code, exc.response.headers.get(
                "location"), secrets) from None
        body: Any = exc.body
        if body is None:
            try:
                body = exc.response.json()
            except (ValueError, UnicodeDecodeError):
                body = exc.response.text
        raise status_error(provider, exc.status_code, body, exc.response.headers,
                           secrets) from None
    except sdk.APIResponseValidationError as exc:
        raise ProviderError(scrub(f"{provider} sent a response that does not parse: {exc}",
                                  secrets), provider=provider, transient=True,
                            kind="bad_response") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise not_json_error(provider) from None
    except base_error as exc:
        raise ProviderError(scrub(f"{provider} failed: {exc}", secrets), provider=provider,
                            kind="provider_error") from None


def parse_chat_completion(data: Any, provider: str, request_id: str | None) -> Completion:
    """A chat completion (SDK object or plain dict) -> Completion."""
    if not isinstance(data, dict):
        data = data.model_dump(exclude_unset=False)
    try:  # an OpenAI-compatible server may answer 200 with a body of another shape
        return _chat_completion(data, provider, request_id)
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
        raise ProviderError(f"{provider} answered with a malformed chat completion "
                            f"({type(exc).__name__}: {exc})"[:300], provider=provider,
                            transient=True, kind="bad_response") from None


def _chat_completion(data: dict[str, Any], provider: str, request_id: str | None) -> Completion:
    choices = data.get("choices") or []
    if not choices:
        raise ProviderError(f"{provider} answered without a choice", provider=provider,
                            transient=True, kind="bad_response")
    choice = choices[0]
    message = choice.get("message") or {}
    text = message.get("content")
    if text is not None and not isinstance(text, str):
        raise TypeError("message.content is not a string")
    refusal = message.get("refusal") if text is None else None
    usage = data.get("usage") or {}
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return Completion(
        text=text or "",
        usage=reported_usage(
            provider, input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"),
            cached_input_tokens=prompt_details.get("cached_tokens"),
            reasoning_tokens=completion_details.get("reasoning_tokens")),
        request_id=request_id or data.get("id"),
        model=data.get("model") or "",
        finish_reason=choice.get("finish_reason"),
        refusal=str(refusal) if refusal else None,
        instead=None if (text or "").strip() else _instead(message),
    )


def _instead(message: dict[str, Any]) -> str | None:
    """What a message without text holds, described: tool calls (aiops offers the model
    none), a legacy function call, or only reasoning (Groq's reasoning models)."""
    calls = message.get("tool_calls")
    if calls:
        names = ", ".join(str((c.get("function") or {}).get("name")) for c in calls[:5])
        more = ", ..." if len(calls) > 5 else ""
        return f"{len(calls)} tool call{'s' if len(calls) > 1 else ''} ({names}{more})"
    call = message.get("function_call")
    if call:
        return f"1 function call ({call.get('name')})"
    if message.get("reasoning"):
        return f"only reasoning ({len(str(message['reasoning']))} characters)"
    return None


def sdk_http_client(httpx_module: ModuleType, wire: Wire) -> Any:
    """The SDK's HTTP client (`httpx_module` is the httpx it is built on) over `wire`.

    aiohttp rather than httpx's own pool, which slows down badly with the hundreds of
    concurrent requests a batch makes. Redirects off at both levels; the environment's proxy
    is the wire's (httpx's own lookup, `trust_env`, would route around the transport)."""
    return httpx_module.AsyncClient(
        transport=AioTransport(httpx_module.Response, wire), follow_redirects=False,
        trust_env=False, timeout=wire.timeout_s)


class SdkChatProvider:
    """A chat-completions provider over one of the two SDKs' async clients."""

    def __init__(self, *, name: str, sdk: ModuleType, base_error: type[Exception],
                 client: Any, secrets: tuple[str, ...], chat_path: str,
                 build_kwargs: Callable[[CompletionRequest], dict[str, Any]],
                 parse: Callable[[Any, str, Any], Completion], raw_response: type) -> None:
        self.name = name
        self._sdk = sdk
        self._base_error = base_error
        self._client = client
        self._secrets = secrets
        self._path = chat_path
        self._build = build_kwargs
        self._parse = parse
        self._raw = raw_response

    async def complete(self, request: CompletionRequest) -> Completion:
        kwargs = self._build(request)
        with map_sdk_errors(self._sdk, self._base_error, self.name, self._secrets):
            # The SDK's documented `post` with a raw response: its client, auth, timeouts and
            # error classes, without re-walking the parameters through its type transforms
            # (half its CPU per call, most of it over the output schema).
            response = await self._client.post(self._path, cast_to=self._raw, body=kwargs)
            answer = self._parse(json_body(response.content, self.name), self.name,
                                 response.headers)
        return whole(answer, request, self.name)

    async def aclose(self) -> None:
        await self._client.close()
