"""The `openai` provider: OpenAI's chat-completions API through the official async SDK.

With `base_url` it serves any OpenAI-compatible server (vLLM, Ollama, a proxy, the mock). The
SDK's own retries are off (`max_retries=0`) so that aiops's retry policy is the one that runs
and is logged. Structured output: `json_schema` (strict when the schema allows it) for models
that support it, JSON mode plus the schema in a system message for older ones.
Errors are mapped in `providers._sdk`, shared with the groq provider (same SDK template).
"""

from __future__ import annotations

from typing import Any

import openai

# openai 3 moved to the httpx2 fork: its client and its `cast_to` want that httpx. The SDK's
# version decides, not which one is installed: httpx2 next to openai 2 (another package's) is no
# client for it.
if int(openai.__version__.split(".")[0]) >= 3:
    import httpx2 as sdk_httpx
else:  # pragma: no cover - openai 1.x and 2.x (the lowest versions CI tests)
    # mypy types the name from the httpx2 import above; this is the same role under openai<3.
    import httpx as sdk_httpx  # type: ignore[no-redef]

from aiops.providers import (
    Completion,
    CompletionRequest,
    chat_settings,
    schema_hint,
    strict_compatible,
)
from aiops.providers._sdk import SdkChatProvider, parse_chat_completion, sdk_http_client
from aiops.providers._wire import Wire
from aiops.spec import DEFAULT_MAX_RESPONSE_BYTES

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


def parse_response(data: Any, provider: str, headers: Any = None) -> Completion:
    """A chat completion (SDK object or plain dict) -> Completion."""
    request_id = headers.get("x-request-id") if headers is not None else None
    return parse_chat_completion(data, provider, request_id)


class OpenAIProvider(SdkChatProvider):
    def __init__(self, *, name: str, api_key: str, base_url: str | None, timeout_s: float,
                 default_headers: dict[str, str] | None = None,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        wire = Wire(provider=name, timeout_s=timeout_s, max_response_bytes=max_response_bytes)
        client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s,
            default_headers=default_headers, http_client=sdk_http_client(sdk_httpx, wire))
        super().__init__(name=name, sdk=openai, base_error=openai.OpenAIError, client=client,
                         secrets=(api_key,), chat_path=CHAT_PATH, build_kwargs=build_kwargs,
                         parse=parse_response, raw_response=sdk_httpx.Response)
