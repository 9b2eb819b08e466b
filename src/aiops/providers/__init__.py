"""The provider interface: one small request/response pair and a factory.

    CompletionRequest -> Provider.complete() -> Completion (text, parsed JSON, Usage, request id)

One module per wire API (`openai`, `groq`, `http`) maps to and from its format and translates
its errors into `aiops.errors` in one context manager, at that edge only. The runner sees only
the types below. Keys are read from the environment variables that providers.yaml names, and
never leave the provider object: errors are scrubbed of them before they are raised (and the
runner scrubs outputs, inputs and messages of every form of them: `aiops.keyscrub`).

`base_url` comes from providers.yaml, or from `AIOPS_<NAME>_BASE_URL` (the provider's name in
upper case, dashes as underscores), so a demo or CI can point the providers at a mock server
without editing the file.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiops import fastjson
from aiops.errors import ConfigError, ProviderError, ProviderErrorKind
from aiops.keyscrub import REDACTED, scrubber
from aiops.spec import ProviderSpec

# Settings of `Configuration` that the chat-completions APIs take as they are.
CHAT_SETTINGS = ("temperature", "max_tokens", "top_p", "stop", "seed", "presence_penalty",
                 "frequency_penalty", "reasoning_effort")
SCHEMA_HINT = "Respond with one JSON object that validates against this JSON Schema:"
# What aiops knows of each wire API, here and nowhere else:
# where a key is read when providers.yaml names no `api_key_env` (the SDKs' own defaults),
DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "groq": "GROQ_API_KEY"}
# the APIs' own addresses when it names no `base_url` (what cassettes record),
DEFAULT_BASE_URLS = {"openai": "https://api.openai.com/v1", "groq": "https://api.groq.com"}
# and the custom backend protocol's endpoint, under its base_url (docs/custom-backend.md).
HTTP_PATH = "/v1/complete"


def secret_env_names(spec: ProviderSpec) -> list[str]:
    """The environment variables that hold a provider's secrets: its API key (providers.yaml's
    `api_key_env`, else the SDK's default variable), and an `http` provider's bearer token or
    HMAC secret."""
    names = [spec.api_key_env or DEFAULT_KEY_ENV.get(spec.type)]
    if spec.auth is not None:
        names.append(spec.auth.token_env if spec.auth.type == "bearer" else spec.auth.secret_env)
    return [name for name in names if name]


@dataclass(frozen=True, kw_only=True)
class CompletionRequest:
    """What the runner asks for: rendered messages, the model, its settings, a schema."""

    messages: tuple[dict[str, str], ...]
    model: str
    settings: dict[str, Any] = field(default_factory=dict)
    output_schema: dict[str, Any] | None = None  # None: plain text is wanted
    function: str = ""
    version: str = ""
    schema_name: str = "output"


@dataclass(frozen=True, kw_only=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0  # part of input_tokens
    reasoning_tokens: int = 0  # part of output_tokens

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


# The most tokens one call may report in any count. Models answer at most a few hundred
# thousand; a count past this is a backend's bug, and priced it could be any sum (10^400
# tokens overflow a float), so the call is refused and charged its estimate instead.
MAX_CALL_TOKENS = 10**9


def reported_usage(provider: str, *, input_tokens: object, output_tokens: object,
                   cached_input_tokens: object = 0, reasoning_tokens: object = 0) -> Usage:
    """The token counts a provider reported, as they came in its body (absent: 0): each must
    be a whole number from 0 to MAX_CALL_TOKENS, else the answer is refused (`bad_usage`):
    priced, a negative count is a credit that lifts the day's budget, and an absurd one is
    any sum at all. The one check of usage, for every provider."""
    raw = {"input_tokens": input_tokens, "output_tokens": output_tokens,
           "cached_input_tokens": cached_input_tokens, "reasoning_tokens": reasoning_tokens}
    counts: dict[str, int] = {}
    problems = []
    for key, value in raw.items():
        count, why = _token_count(value)
        if why is not None:
            problems.append(f"{key} {why}")
        counts[key] = count
    if problems:
        # Not transient: a provider that counts this way will again; the next fallback runs.
        raise ProviderError(
            f"{provider} reported token counts that cannot be right ({'; '.join(problems)}); "
            f"a count is a whole number from 0 to {MAX_CALL_TOKENS:,} for one call, so the "
            "answer is refused and the call is charged its estimate", provider=provider,
            kind="bad_usage", billed=True)
    return Usage(**counts)


def _token_count(value: object) -> tuple[int, str | None]:
    """(the count, None), or (0, why it is not a count)."""
    if value is None:
        return 0, None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)  # 12.0: JSON does not tell integers from floats
    if isinstance(value, bool) or not isinstance(value, int):
        shown = repr(value) if not isinstance(value, str) else json.dumps(value[:20])
        return 0, f"{shown[:30]} is not a whole number"
    if value < 0:
        return 0, f"{value} is negative"
    if value > MAX_CALL_TOKENS:
        shown = str(value) if value < 10**15 else f"~10^{int(value.bit_length() * 0.30103)}"
        return 0, f"{shown} is over {MAX_CALL_TOKENS:,}"
    return value, None


@dataclass(frozen=True, kw_only=True)
class Completion:
    text: str
    parsed: Any = None  # the JSON value when the provider returned structured output
    usage: Usage = Usage()
    request_id: str | None = None
    model: str = ""
    finish_reason: str | None = None
    refusal: str | None = None  # the model's refusal, in place of an answer
    instead: str | None = None  # what came back instead of text (tool calls), described


def whole(completion: Completion, request: CompletionRequest, provider: str) -> Completion:
    """`completion` when it is a whole answer; else the ProviderError of what it is instead,
    carrying it (the provider billed it: the runner logs and charges its usage). In order: a
    refusal, a content filter's stop, an answer cut off at max_tokens (finish_reason
    `length`, on OpenAI, Groq and the http protocol alike), an answer without content. None
    is retried on the same provider (it would most likely come back the same, and bill
    again); the next fallback runs."""
    reason = completion.finish_reason
    if completion.refusal is not None:
        problem = f"{provider}: the model refused: {completion.refusal}"
        kind: ProviderErrorKind = "refusal"
    elif reason == "content_filter":
        problem = (f"{provider} stopped the answer at its content filter (finish_reason "
                   f"content_filter) after {completion.usage.output_tokens} output tokens")
        kind = "content_filter"
    elif reason == "length":
        limit = request.settings.get("max_tokens")
        where = f"max_tokens ({limit})" if limit is not None else \
            "the model's own output limit (no max_tokens was sent)"
        problem = (f"{provider} cut the answer off at {where}, after "
                   f"{completion.usage.output_tokens} output tokens (finish_reason length); "
                   "raise max_tokens in the function's configuration, or ask for less")
        kind = "truncated"
    elif completion.parsed is None and not completion.text.strip():
        what = completion.instead or "an empty message"  # whitespace is no answer either
        problem = f"{provider} answered without content: {what} (finish_reason {reason})"
        kind = "no_content"
    else:
        return completion
    raise ProviderError(problem[:1000], provider=provider, kind=kind, answer=completion)


class Provider(Protocol):
    name: str

    async def complete(self, request: CompletionRequest) -> Completion: ...

    async def aclose(self) -> None: ...


def env_var_for_base_url(name: str) -> str:
    """`AIOPS_<NAME>_BASE_URL`: the override of a provider's base URL."""
    return f"AIOPS_{re.sub(r'[^A-Za-z0-9]', '_', name).upper()}_BASE_URL"


def resolve_base_url(name: str, spec: ProviderSpec, env: Mapping[str, str]) -> str | None:
    override = env.get(env_var_for_base_url(name))
    return override.rstrip("/") if override else (spec.base_url.rstrip("/")
                                                  if spec.base_url else None)


def require_env(env: Mapping[str, str], var: str, provider: str, what: str = "API key") -> str:
    value = env.get(var)
    if not value:
        raise ConfigError(
            f"provider `{provider}` needs its {what}: set the `{var}` environment variable "
            f"(providers.yaml names it; keys are never read from files)"
        )
    return value


def make_provider(name: str, spec: ProviderSpec, env: Mapping[str, str]) -> Provider:
    """Build the provider `name` of providers.yaml; the SDK is imported only here, lazily."""
    base_url = resolve_base_url(name, spec, env)
    if spec.type == "openai":
        from aiops.providers.openai import OpenAIProvider

        key = require_env(env, spec.api_key_env or DEFAULT_KEY_ENV["openai"], name)
        return OpenAIProvider(name=name, api_key=key, base_url=base_url, timeout_s=spec.timeout_s,
                              max_response_bytes=spec.max_response_bytes)
    if spec.type == "groq":
        from aiops.providers.groq import GroqProvider

        key = require_env(env, spec.api_key_env or DEFAULT_KEY_ENV["groq"], name)
        return GroqProvider(name=name, api_key=key, base_url=base_url, timeout_s=spec.timeout_s,
                            max_response_bytes=spec.max_response_bytes)
    if spec.type == "http":
        from aiops.providers.http import HttpProvider

        if base_url is None:  # the spec refuses it; the override may not rescue it
            raise ConfigError(f"provider `{name}` (type http) needs `base_url`")
        auth = spec.auth
        token = secret = None
        window_s = 300
        if auth is not None and auth.type == "bearer":
            token = require_env(env, auth.token_env, name, "bearer token")
        elif auth is not None and auth.type == "hmac":
            secret = require_env(env, auth.secret_env, name, "HMAC secret")
            window_s = auth.window_s
        return HttpProvider(name=name, base_url=base_url, timeout_s=spec.timeout_s, token=token,
                            secret=secret, window_s=window_s,
                            max_response_bytes=spec.max_response_bytes)
    raise ConfigError(f"provider `{name}` has unknown type `{spec.type}`")


# --- helpers shared by the provider modules (pure) ----------------------------------------


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """Remove every secret value from a text (an error body may echo a key), in any case or
    encoding (`aiops.keyscrub`), and any bearer token."""
    text = scrubber(secrets).text(text)
    return re.sub(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}", r"\1" + REDACTED, text)


def retry_after_seconds(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


TRANSIENT_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
STATUS_KINDS: dict[int, ProviderErrorKind] = {
    400: "bad_request", 401: "auth", 403: "permission", 404: "not_found", 413: "too_large",
    422: "bad_request", 429: "rate_limit"}


def error_detail(body: Any) -> tuple[str, str | None]:
    """(message, code) from an `{"error": {...}}` body of OpenAI, Groq or the http protocol."""
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping):
            message = err.get("message") or err.get("detail") or ""
            code = err.get("code") or err.get("type")
            return str(message), (str(code) if code is not None else None)
        if isinstance(err, str):
            return err, None
    if isinstance(body, str):
        return body[:500], None
    return "", None


def status_error(provider: str, status: int, body: Any, headers: Mapping[str, str] | None,
                 secrets: tuple[str, ...]) -> ProviderError:
    """A ProviderError for an HTTP error answer: transient or not, with Retry-After."""
    message, code = error_detail(body)
    transient = status in TRANSIENT_STATUSES and code != "insufficient_quota"
    kind: ProviderErrorKind = STATUS_KINDS.get(status) or (
        "server_error" if status >= 500 else "provider_error")
    if code == "insufficient_quota":
        kind = "quota"
    text = f"{provider} answered {status}"
    if code:
        text += f" ({code})"
    if message:
        text += f": {message}"
    if status == 401:
        text += " — check the key in the environment variable that providers.yaml names"
    return ProviderError(scrub(text, secrets)[:1000], provider=provider, status=status,
                         transient=transient, retry_after_s=retry_after_seconds(headers),
                         kind=kind)


def schema_hint(schema: dict[str, Any]) -> str:
    """The instruction added when a provider has JSON mode but no schema mode."""
    return f"{SCHEMA_HINT}\n```json\n{json.dumps(schema, sort_keys=True)}\n```"


def strict_compatible(schema: Any) -> bool:
    """Whether OpenAI's strict json_schema mode accepts `schema` as it is: every object
    closed (`additionalProperties: false`) with every property required."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            props = schema.get("properties", {})
            if schema.get("additionalProperties") is not False:
                return False
            if set(schema.get("required", [])) != set(props):
                return False
        for key in ("default", "minLength", "maxLength", "pattern", "format", "minItems",
                    "maxItems", "uniqueItems", "minimum", "maximum"):
            if key in schema:
                return False
        return all(strict_compatible(v) for v in schema.values() if isinstance(v, dict | list))
    if isinstance(schema, list):
        return all(strict_compatible(v) for v in schema)
    return True


_DISCONNECTS = {"ServerDisconnectedError", "ClientOSError", "ClientConnectionResetError",
                "RemoteProtocolError", "ConnectionResetError", "ClientConnectorError",
                "ClientConnectorDNSError", "ClientConnectorSSLError",
                "ClientConnectorCertificateError", "ClientSSLError", "ConnectionRefusedError",
                "ClientProxyConnectionError"}
# Failures to connect at all: their own text (host, port, "Name or service not known") is
# the useful part of the message.
_CANNOT_CONNECT = ("ClientConnector", "ConnectionRefused", "ClientSSL", "ClientProxyConnection")


def disconnect_cause(exc: BaseException) -> BaseException | None:
    """The dropped, refused or unresolvable connection behind a 'timeout' from an HTTP stack
    (the aiohttp transports report all of them as timeouts), or None for a real timeout."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if type(seen).__name__ in _DISCONNECTS:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def is_disconnect(exc: BaseException) -> bool:
    """Whether a 'timeout' from an HTTP stack was really a dropped or refused connection."""
    return disconnect_cause(exc) is not None


def disconnect_message(provider: str, cause: BaseException, secrets: tuple[str, ...]) -> str:
    """`connection failed: ...`, saying why when the connection could not be made."""
    if type(cause).__name__.startswith(_CANNOT_CONNECT):
        return scrub(f"{provider} connection failed: {cause}", secrets)[:500]
    return f"{provider} connection failed: the server closed it"


def timeout_error(provider: str, exc: BaseException, secrets: tuple[str, ...]) -> ProviderError:
    """A transport 'timeout' as what it was: a failed connection, or a real timeout."""
    cause = disconnect_cause(exc)
    if cause is not None:
        return ProviderError(disconnect_message(provider, cause, secrets), provider=provider,
                             transient=True, kind="connection")
    return ProviderError(f"{provider} timed out", provider=provider, transient=True,
                         kind="timeout")


def not_json_error(provider: str) -> ProviderError:
    return ProviderError(f"{provider} sent a body that is not JSON", provider=provider,
                         transient=True, kind="bad_response")


# How deep a model's JSON output may nest (its text, or the `output` of the http protocol),
# as a run's input may (fastjson.MAX_DEPTH): outputs that schemas describe nest a few levels,
# and nothing recursive (a parser, a validator, a log row's encoder) meets a deeper one.
MAX_OUTPUT_DEPTH = 100
# A response body: an output, and the object around it (a chat completion's text is a string
# inside a body 5 levels deep).
MAX_BODY_DEPTH = MAX_OUTPUT_DEPTH + 1


def json_body(raw: bytes, provider: str) -> Any:
    """The JSON of a response body, or the (transient) error that a body of another kind is:
    not JSON, or nested deeper than MAX_BODY_DEPTH."""
    try:
        return fastjson.loads_bounded(raw, MAX_BODY_DEPTH)
    except fastjson.Refused as exc:
        raise ProviderError(f"{provider} sent a body that aiops does not read: {exc}",
                            provider=provider, transient=True, kind="bad_response") from None
    except ValueError:
        raise not_json_error(provider) from None


def chat_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {k: settings[k] for k in CHAT_SETTINGS if settings.get(k) is not None}


def parse_json_text(text: str) -> Any:
    """JSON from a model's text: the whole text, or a fenced ```json block. Raises ValueError
    (`fastjson.Refused` when it nests deeper than MAX_OUTPUT_DEPTH)."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = re.sub(r"^```[a-zA-Z]*\s*|\s*```$", "", stripped)
    return fastjson.loads_bounded(stripped, MAX_OUTPUT_DEPTH)
