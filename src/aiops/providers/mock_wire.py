"""The mock provider's wire formats: what OpenAI, Groq and the custom protocol answer, as
`Reply` values (no sockets): errors and their rate-limit headers, the 400 a malformed request
gets, the schema a request asks for, the token limit it sets. Pure.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiops import fastjson
from aiops.providers import SCHEMA_HINT
from aiops.providers.mock_values import CannotGenerate

_HINT_SCHEMA = re.compile(re.escape(SCHEMA_HINT) + r"\s*```json\s*(.*?)\s*```", re.S)


def violating(schema: Any) -> Any:
    """Output that a schema refuses (for the `schema` fault)."""
    if isinstance(schema, dict) and schema.get("type") == "object":
        return {"unexpected_field": [1, 2, 3]}
    return {"not": "a string"}


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    action: str | None = None  # "drop" | "timeout"


def max_tokens(wire: str, request: dict[str, Any]) -> int | None:
    """The output token limit a request sets (`max_tokens`, or `max_completion_tokens`)."""
    source = (request.get("settings") or {}) if wire == "aiops" else request
    limit = source.get("max_completion_tokens") or source.get("max_tokens")
    return limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 \
        else None


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


# The parameters an answer depends on, per wire format: name -> (the types it may have, what
# OpenAI's message calls them). `messages` items are checked apart.
_Param = tuple[tuple[type, ...], str]
_ARRAY: _Param = ((list,), "an array")
_STRING: _Param = ((str,), "a string")
_OBJECT: _Param = ((dict,), "an object")
_INTEGER: _Param = ((int,), "an integer")
_CHAT: dict[str, _Param] = {"messages": _ARRAY, "model": _STRING, "response_format": _OBJECT,
                            "max_tokens": _INTEGER, "max_completion_tokens": _INTEGER}
_PARAMS: dict[str, dict[str, _Param]] = {
    "openai": _CHAT, "groq": _CHAT,
    "aiops": {"messages": _ARRAY, "model": _STRING, "settings": _OBJECT,
              "output_schema": _OBJECT}}


def malformed(wire: str, request: Any) -> tuple[str, str | None, str] | None:
    """(message, param, code) when the request is not one a provider would answer: the body
    is not an object, a parameter the answer depends on is missing or of the wrong type."""
    if not isinstance(request, dict):
        return (f"The request body must be a JSON object, not {json_type(request)}.", None,
                "invalid_type")
    if "messages" not in request or (wire != "aiops" and "model" not in request):
        name = "messages" if "messages" not in request else "model"
        return f"Missing required parameter: '{name}'.", name, "missing_required_parameter"
    for name, (types, expected) in _PARAMS[wire].items():
        value = request.get(name)
        if (value is not None or name == "messages") and (
                not isinstance(value, types) or isinstance(value, bool)):
            return (f"Invalid type for '{name}': expected {expected}, but got "
                    f"{json_type(value)} instead.", name, "invalid_type")
    for i, message in enumerate(request["messages"]):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return (f"Invalid type for 'messages[{i}]': expected an object with a string "
                    f"'role', but got {json_type(message)} instead.", f"messages[{i}]",
                    "invalid_type")
    fmt = request.get("response_format") or {}
    inner = fmt.get("json_schema")
    if fmt.get("type") == "json_schema" and not (
            isinstance(inner, dict) and isinstance(inner.get("schema", {}), dict)):
        return ("Invalid type for 'response_format.json_schema': expected an object with an "
                f"object 'schema', but got {json_type(inner)} instead.",
                "response_format.json_schema", "invalid_type")
    return None


def invalid(wire: str, message: str, param: str | None, code: str) -> Reply:
    """400 in the wire's error shape (OpenAI's, Groq's, or the custom protocol's)."""
    if wire == "aiops":
        return json_reply(400, {"error": {"code": "invalid_request", "message": message}})
    return json_reply(400, {"error": {"message": message, "type": "invalid_request_error",
                                 "param": param, "code": code}})


def cannot_generate(wire: str, exc: CannotGenerate, request: dict[str, Any]) -> Reply:
    """The requested schema is beyond the generator: a 400 that says where, why, and what to
    do, rather than output the schema refuses."""
    message = (f"aiops mock-provider cannot generate output for this schema at {exc.where}: "
               f"{exc.reason}. Give this prompt a canned answer in the --responses file "
               "(`match: {contains: ...}` with an `output`).")
    param = "output_schema" if wire == "aiops" else (
        "response_format" if (request.get("response_format") or {}).get("type")
        == "json_schema" else None)
    if wire == "aiops":
        return json_reply(422, {"error": {"code": "unprocessable", "message": message}})
    return json_reply(400, {"error": {"message": message, "type": "invalid_request_error",
                                 "param": param, "code": "mock_cannot_generate"}})


def requested_schema(wire: str, request: dict[str, Any],
                     messages: list[Any]) -> dict[str, Any] | None:
    """The schema the answer must fit: `json_schema`, the custom protocol's `output_schema`,
    or the one aiops puts in a system message for JSON mode."""
    if wire == "aiops":
        schema = request.get("output_schema")
        return schema if isinstance(schema, dict) else None
    fmt = request.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
    for m in messages:
        if isinstance(m, dict) and m.get("role") == "system":
            found = _HINT_SCHEMA.search(str(m.get("content", "")))
            if found:
                with contextlib.suppress(ValueError):
                    hinted = json.loads(found.group(1))  # schema_hint embeds an object
                    if isinstance(hinted, dict):
                        return hinted
    if fmt.get("type") == "json_object":
        return {"type": "object"}
    return None


@functools.cache
def ratelimit_headers(requests: int, tokens: int) -> dict[str, str]:
    """A provider's rate-limit headers (the same every time: copy before changing them)."""
    return {"x-ratelimit-limit-requests": str(requests),
            "x-ratelimit-remaining-requests": str(requests - 1),
            "x-ratelimit-reset-requests": "6s", "x-ratelimit-limit-tokens": str(tokens),
            "x-ratelimit-remaining-tokens": str(tokens - 100), "x-ratelimit-reset-tokens": "12ms"}


# An infinite count of an entry's `usage` is written as the JSON number 1e400 (what a
# backend's overflowing counter may send; a reader's float makes it infinite), not as
# `Infinity`, which is not JSON.
_OVERFLOW = "__mock_1e400__"


def usage_count(value: Any) -> Any:
    """A token count as the reply writes it (an infinite one as 1e400)."""
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return _OVERFLOW if value > 0 else "-" + _OVERFLOW
    return value


def usage_total(a: Any, b: Any) -> Any:
    return a + b if isinstance(a, int) and isinstance(b, int) else None


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    body = fastjson.dumps(payload)
    if _OVERFLOW.encode() in body:
        body = body.replace(f'"-{_OVERFLOW}"'.encode(), b"-1e400").replace(
            f'"{_OVERFLOW}"'.encode(), b"1e400")
    return Reply(status=status, body=body,
                 headers={"content-type": "application/json", **(headers or {})})


_ERRORS: dict[str, tuple[int, str, str | None, str]] = {
    # fault: (status, type, code, message)
    "rate_limit": (429, "requests", "rate_limit_exceeded",
                   "Rate limit reached for {model} in organization org-mock on requests per min "
                   "(RPM): Limit 500, Used 500, Requested 1. Please try again in {after}s."),
    "server_error": (500, "server_error", None, "The server had an error while processing your "
                     "request. Sorry about that!"),
    "unavailable": (503, "server_error", None, "That model is currently overloaded with other "
                    "requests. You can retry your request."),
    "auth": (401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided. You "
             "can find your API key at https://platform.openai.com/account/api-keys."),
    "bad_request": (400, "invalid_request_error", "invalid_value", "Invalid request."),
    "not_found": (404, "invalid_request_error", "model_not_found",
                  "The model does not exist or you do not have access to it."),
}
_AIOPS_CODES = {"rate_limit": "rate_limited", "server_error": "internal", "unavailable":
                "unavailable", "auth": "unauthorized", "bad_request": "invalid_request",
                "not_found": "model_not_found"}


def error_reply(wire: str, fault: str, message: str | None, after: float) -> Reply:
    """A provider's error answer for an injected fault (`after`: what Retry-After asks)."""
    status, kind, code, text = _ERRORS[fault]
    text = message or text.format(model="the model", after=after)
    headers: dict[str, str] = {}
    if status in (429, 503):
        headers["retry-after"] = str(max(1, int(after + 0.999)))
        headers["retry-after-ms"] = str(int(after * 1000))
    if status == 429:
        headers.update(ratelimit_headers(500, 200000))
        headers["x-ratelimit-remaining-requests"] = "0"
    if wire == "aiops":
        return json_reply(status, {"error": {"code": _AIOPS_CODES[fault], "message": text,
                                        "retry_after_s": after if status in (429, 503) else None}},
                     headers)
    if wire == "groq":
        groq_type = {500: "internal_server_error", 503: "service_unavailable"}.get(status, kind)
        return json_reply(status, {"error": {"message": text, "type": groq_type,
                                        **({"code": code} if code else {})}}, headers)
    return json_reply(status, {"error": {"message": text, "type": kind, "param": None,
                                         "code": code}},
                 headers)
