"""The `groq` provider: Groq's OpenAI-shaped chat-completions API through the official SDK.

Groq's SDK takes the host root as `base_url` (it appends `/openai/v1/...`). Its retries are
off (`max_retries=0`). Structured output: `json_schema` on the models Groq documents for it,
JSON mode plus the schema in a system message on the others (Groq's JSON mode requires the
word "JSON" in the messages, which the hint provides). Errors are mapped in
`providers._sdk`, shared with the openai provider (same SDK template).
"""

from __future__ import annotations

from typing import Any

import groq
import httpx

from aiops.providers import Completion, CompletionRequest, chat_settings, schema_hint
from aiops.providers._sdk import SdkChatProvider, parse_chat_completion, sdk_http_client
from aiops.providers._wire import Wire
from aiops.spec import DEFAULT_MAX_RESPONSE_BYTES

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


def parse_response(data: Any, provider: str, headers: Any = None) -> Completion:
    """A Groq chat completion (SDK object or plain dict) -> Completion."""
    if not isinstance(data, dict):
        data = data.model_dump()
    request_id = (data.get("x_groq") or {}).get("id")
    return parse_chat_completion(data, provider, request_id)


class GroqProvider(SdkChatProvider):
    def __init__(self, *, name: str, api_key: str, base_url: str | None, timeout_s: float,
                 default_headers: dict[str, str] | None = None,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        wire = Wire(provider=name, timeout_s=timeout_s, max_response_bytes=max_response_bytes)
        client = groq.AsyncGroq(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s,
            default_headers=default_headers, http_client=sdk_http_client(httpx, wire))
        super().__init__(name=name, sdk=groq, base_error=groq.GroqError, client=client,
                         secrets=(api_key,), chat_path=CHAT_PATH, build_kwargs=build_kwargs,
                         parse=parse_response, raw_response=httpx.Response)
