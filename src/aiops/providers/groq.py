"""The `groq` provider: Groq's OpenAI-shaped chat-completions API through the official SDK.

Groq's SDK takes the host root as `base_url` (it appends `/openai/v1/...`). Its retries are
off (`max_retries=0`). Structured output: `json_schema` on the models Groq documents for it,
JSON mode plus the schema in a system message on the others (Groq's JSON mode requires the
word "JSON" in the messages, which the hint provides). `_map_errors` is the one place where
the SDK's errors become aiops errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import groq
import httpx

from aiops.errors import ProviderError
from aiops.providers import (
    Completion,
    CompletionRequest,
    Usage,
    chat_settings,
    is_disconnect,
    schema_hint,
    scrub,
    status_error,
)

# Models with json_schema structured output (console.groq.com/docs/structured-outputs).
JSON_SCHEMA_MODELS = frozenset({
    "openai/gpt-oss-20b", "openai/gpt-oss-120b", "openai/gpt-oss-safeguard-20b",
    "moonshotai/kimi-k2-instruct", "moonshotai/kimi-k2-instruct-0905",
    "meta-llama/llama-4-maverick-17b-128e-instruct", "meta-llama/llama-4-scout-17b-16e-instruct",
})
CHAT_PATH = "/openai/v1/chat/completions"
_REASONING_MODELS = ("openai/gpt-oss", "qwen/qwen3")


def build_kwargs(request: CompletionRequest) -> dict[str, Any]:
    """The chat-completions arguments for a request (pure)."""
    messages = [dict(m) for m in request.messages]
    schema = request.output_schema
    kwargs: dict[str, Any] = {"model": request.model, **chat_settings(request.settings)}
    if "reasoning_effort" in kwargs and not request.model.startswith(_REASONING_MODELS):
        del kwargs["reasoning_effort"]
    if schema is not None:
        if schema.get("type") == "object" and request.model in JSON_SCHEMA_MODELS:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": request.schema_name, "schema": schema}}
        else:
            messages.insert(0, {"role": "system", "content": schema_hint(schema)})
            if schema.get("type") == "object":
                kwargs["response_format"] = {"type": "json_object"}
    kwargs["messages"] = messages
    return kwargs


def parse_response(data: Any, provider: str) -> Completion:
    """A Groq chat completion (SDK object or plain dict) -> Completion."""
    if not isinstance(data, dict):
        data = data.model_dump()
    choices = data.get("choices") or []
    if not choices:
        raise ProviderError(f"{provider} answered without a choice", provider=provider,
                            transient=True, kind="bad_response")
    choice = choices[0]
    message = choice.get("message") or {}
    usage = data.get("usage") or {}
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    x_groq = data.get("x_groq") or {}
    return Completion(
        text=message.get("content") or "",
        usage=Usage(input_tokens=usage.get("prompt_tokens") or 0,
                    output_tokens=usage.get("completion_tokens") or 0,
                    cached_input_tokens=prompt_details.get("cached_tokens") or 0,
                    reasoning_tokens=completion_details.get("reasoning_tokens") or 0),
        request_id=x_groq.get("id") or data.get("id"),
        model=data.get("model") or "",
        finish_reason=choice.get("finish_reason"),
    )


@contextmanager
def _map_errors(provider: str, secrets: tuple[str, ...]) -> Iterator[None]:
    try:
        yield
    except groq.APITimeoutError as exc:
        if is_disconnect(exc):
            raise ProviderError(f"{provider} connection failed: the server closed it",
                                provider=provider, transient=True, kind="connection") from None
        raise ProviderError(f"{provider} timed out", provider=provider, transient=True,
                            kind="timeout") from None
    except groq.APIConnectionError as exc:
        raise ProviderError(scrub(f"{provider} connection failed: {exc}", secrets),
                            provider=provider, transient=True, kind="connection") from None
    except groq.APIStatusError as exc:
        body: Any = exc.body
        if body is None:
            try:
                body = exc.response.json()
            except (ValueError, UnicodeDecodeError):
                body = exc.response.text
        raise status_error(provider, exc.status_code, body, exc.response.headers,
                           secrets) from None
    except groq.APIResponseValidationError as exc:
        raise ProviderError(scrub(f"{provider} sent a response that does not parse: {exc}",
                                  secrets), provider=provider, transient=True,
                            kind="bad_response") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ProviderError(f"{provider} sent a body that is not JSON", provider=provider,
                            transient=True, kind="bad_response") from None
    except groq.GroqError as exc:
        raise ProviderError(scrub(f"{provider} failed: {exc}", secrets), provider=provider,
                            kind="provider_error") from None


def _aiohttp_client(timeout_s: float) -> Any:
    """The SDK's aiohttp-backed client (groq[aiohttp]); None (its httpx default) if absent."""
    factory = getattr(groq, "DefaultAioHttpClient", None)
    return factory(timeout=timeout_s) if factory is not None else None


class GroqProvider:
    def __init__(self, *, name: str, api_key: str, base_url: str | None, timeout_s: float,
                 default_headers: dict[str, str] | None = None) -> None:
        self.name = name
        self._secrets = (api_key,)
        # aiohttp underneath (groq[aiohttp]): httpx's pool is slow at high concurrency.
        self._client = groq.AsyncGroq(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s,
            default_headers=default_headers,
            http_client=_aiohttp_client(timeout_s))

    async def complete(self, request: CompletionRequest) -> Completion:
        kwargs = build_kwargs(request)
        with _map_errors(self.name, self._secrets):
            # The SDK's documented `post` with a raw response: its client, auth, timeouts and
            # error classes, without re-walking the parameters through its type transforms.
            response = await self._client.post(CHAT_PATH, cast_to=httpx.Response, body=kwargs)
            return parse_response(response.json(), self.name)

    async def aclose(self) -> None:
        await self._client.close()
