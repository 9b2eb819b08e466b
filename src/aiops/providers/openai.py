"""The `openai` provider: OpenAI's chat-completions API through the official async SDK.

With `base_url` it serves any OpenAI-compatible server (vLLM, Ollama, a proxy, the mock). The
SDK's own retries are off (`max_retries=0`) so that aiops's retry policy is the one that runs
and is logged. Structured output: `json_schema` (strict when the schema allows it) for models
that support it, JSON mode plus the schema in a system message for older ones.
`_map_errors` is the one place where the SDK's errors become aiops errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai

try:  # openai 3 moved to the httpx2 fork; its `cast_to` wants that Response class
    from httpx2 import Response as RawResponse
except ImportError:  # pragma: no cover - openai 1.x and 2.x
    from httpx import Response as RawResponse

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
    strict_compatible,
)

# Models that predate json_schema structured output: JSON mode and a schema hint instead.
_JSON_MODE_ONLY = ("gpt-3.5", "gpt-4-", "gpt-4-turbo")
CHAT_PATH = "/chat/completions"
_COMPLETION_TOKENS_MODELS = ("o1", "o3", "o4", "gpt-5")  # take max_completion_tokens


def response_format(model: str, schema: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    if schema is None or schema.get("type") != "object":
        return None
    if model == "gpt-4" or model.startswith(_JSON_MODE_ONLY):
        return {"type": "json_object"}
    return {"type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": strict_compatible(schema)}}


def build_kwargs(request: CompletionRequest) -> dict[str, Any]:
    """The chat-completions arguments for a request (pure)."""
    messages = [dict(m) for m in request.messages]
    schema = request.output_schema
    fmt = response_format(request.model, schema, request.schema_name)
    if schema is not None and (fmt is None or fmt["type"] == "json_object"):
        messages.insert(0, {"role": "system", "content": schema_hint(schema)})
    kwargs: dict[str, Any] = {"model": request.model, "messages": messages,
                              **chat_settings(request.settings)}
    if "max_tokens" in kwargs and request.model.startswith(_COMPLETION_TOKENS_MODELS):
        kwargs["max_completion_tokens"] = kwargs.pop("max_tokens")
    if "reasoning_effort" in kwargs and not request.model.startswith(_COMPLETION_TOKENS_MODELS):
        del kwargs["reasoning_effort"]
    if fmt is not None:
        kwargs["response_format"] = fmt
    return kwargs


def parse_response(data: Any, provider: str) -> Completion:
    """A chat completion (SDK object or plain dict) -> Completion."""
    if not isinstance(data, dict):
        data = data.model_dump(exclude_unset=False)
    choices = data.get("choices") or []
    if not choices:
        raise ProviderError(f"{provider} answered without a choice", provider=provider,
                            transient=True, kind="bad_response")
    choice = choices[0]
    message = choice.get("message") or {}
    text = message.get("content")
    if text is None and message.get("refusal"):
        raise ProviderError(f"{provider}: the model refused: {message['refusal']}",
                            provider=provider, kind="refusal")
    usage = data.get("usage") or {}
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return Completion(
        text=text or "",
        usage=Usage(input_tokens=usage.get("prompt_tokens") or 0,
                    output_tokens=usage.get("completion_tokens") or 0,
                    cached_input_tokens=prompt_details.get("cached_tokens") or 0,
                    reasoning_tokens=completion_details.get("reasoning_tokens") or 0),
        request_id=data.get("_request_id") or data.get("id"),
        model=data.get("model") or "",
        finish_reason=choice.get("finish_reason"),
    )


@contextmanager
def _map_errors(provider: str, secrets: tuple[str, ...]) -> Iterator[None]:
    try:
        yield
    except openai.APITimeoutError as exc:
        if is_disconnect(exc):
            raise ProviderError(f"{provider} connection failed: the server closed it",
                                provider=provider, transient=True, kind="connection") from None
        raise ProviderError(f"{provider} timed out", provider=provider, transient=True,
                            kind="timeout") from None
    except openai.APIConnectionError as exc:
        raise ProviderError(scrub(f"{provider} connection failed: {exc}", secrets),
                            provider=provider, transient=True, kind="connection") from None
    except openai.APIStatusError as exc:
        body: Any = exc.body
        if body is None:
            try:
                body = exc.response.json()
            except (ValueError, UnicodeDecodeError):
                body = exc.response.text
        raise status_error(provider, exc.status_code, body, exc.response.headers,
                           secrets) from None
    except openai.APIResponseValidationError as exc:
        raise ProviderError(scrub(f"{provider} sent a response that does not parse: {exc}",
                                  secrets), provider=provider, transient=True,
                            kind="bad_response") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ProviderError(f"{provider} sent a body that is not JSON", provider=provider,
                            transient=True, kind="bad_response") from None
    except openai.OpenAIError as exc:
        raise ProviderError(scrub(f"{provider} failed: {exc}", secrets), provider=provider,
                            kind="provider_error") from None


def _aiohttp_client(timeout_s: float) -> Any:
    """The SDK's aiohttp-backed client (openai[aiohttp]); None (its httpx default) if absent."""
    factory = getattr(openai, "DefaultAioHttpClient", None)
    return factory(timeout=timeout_s) if factory is not None else None


class OpenAIProvider:
    def __init__(self, *, name: str, api_key: str, base_url: str | None, timeout_s: float,
                 default_headers: dict[str, str] | None = None) -> None:
        self.name = name
        self._secrets = (api_key,)
        # aiohttp underneath: httpx's connection pool slows down badly with hundreds of
        # concurrent requests, which a batch makes.
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s,
            default_headers=default_headers,
            http_client=_aiohttp_client(timeout_s))

    async def complete(self, request: CompletionRequest) -> Completion:
        kwargs = build_kwargs(request)
        with _map_errors(self.name, self._secrets):
            # The SDK's documented `post` with a raw response: its client, auth, timeouts and
            # error classes, without re-walking the parameters through its type transforms
            # (half its CPU per call, most of it over the output schema).
            response = await self._client.post(CHAT_PATH, cast_to=RawResponse, body=kwargs)
            data = response.json()
            data["_request_id"] = response.headers.get("x-request-id")
            return parse_response(data, self.name)

    async def aclose(self) -> None:
        await self._client.close()
