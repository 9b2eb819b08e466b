"""A local mock provider server: OpenAI's, Groq's and aiops's custom wire formats.

    /v1/chat/completions          OpenAI chat completions (OpenAI SDK base_url: URL + /v1)
    /openai/v1/chat/completions   Groq (Groq SDK base_url: URL, the host root)
    /aiops/v1/complete            the custom backend protocol (http provider: URL + /aiops)

It answers deterministically: from a responses file when an entry matches, else with output
generated to fit the requested schema (`json_schema`, or the schema that aiops puts in a
system message for JSON mode), with usage and each provider's rate-limit headers. An answer
longer than the request's `max_tokens` is cut there (finish reason `length`), as providers
do; an entry's `usage: {input_tokens, output_tokens}` replaces the counts it reports (a
provider that ignores `max_tokens`, or counts wrongly; an infinite count is written as the
JSON number 1e400). Faults are injected at `fault_rate` (429 with Retry-After, 500, 503, timeouts, dropped connections, bodies
that are not JSON, malformed and schema-violating output) or forced per request with the
`X-Mock-Fault` header (or `MockProvider.force_fault` in process).

A raw asyncio HTTP/1.1 server (keep-alive, Content-Length and chunked bodies): small and fast,
because benchmarks measure against it. `serve_in_thread()` runs it in a background thread for
tests; `aiops mock-provider` runs it in the foreground.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiops.providers import SCHEMA_HINT

FAULTS = ("rate_limit", "server_error", "unavailable", "timeout", "drop", "bad_body",
          "malformed", "schema")
FORCED_ONLY = ("auth", "bad_request", "not_found", "none")
FAULT_HEADER = "x-mock-fault"
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable"}
_HINT_SCHEMA = re.compile(re.escape(SCHEMA_HINT) + r"\s*```json\s*(.*?)\s*```", re.S)
_WORDS = ("alpha", "bravo", "delta", "echo", "gamma", "kilo", "lima", "nova", "omega", "sigma")


@dataclass
class MockConfig:
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    responses: list[dict[str, Any]] = field(default_factory=list)
    seed: int = 0
    retry_after_s: float = 1.0  # what a 429/503 asks the client to wait
    timeout_fault_s: float = 60.0  # how long a `timeout` fault holds the request
    bearer_token: str | None = None  # custom protocol: require this token
    hmac_secret: str | None = None  # custom protocol: require this signature
    hmac_window_s: float = 300.0


def load_responses(path: Path) -> list[dict[str, Any]]:
    """Entries of a responses file (YAML or JSON): `{match: {...}, output|content|error}`,
    read like a cassette (bounded, safe YAML); ValueError says what is wrong, and where."""
    from aiops.files import FileRefused, read_bounded
    from aiops.yamlsrc import MAX_RECORDING_BYTES, RECORDING_BOUNDS, YamlProblem, parse_any

    try:
        data = parse_any(read_bounded(path, MAX_RECORDING_BYTES, stream_ok=True),
                         RECORDING_BOUNDS)
    except FileRefused as exc:
        raise ValueError(f"{path} {exc.reason}") from None
    except YamlProblem as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        raise ValueError(f"{where}: {exc.message}") from None
    entries = data.get("responses", []) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a list of responses (or `responses:` list)")
    return entries


# --- deterministic output -----------------------------------------------------------------


def generate(schema: Any, seed: str, key: str = "value") -> Any:
    """A value that validates against (the common subset of) a JSON Schema, from a seed."""
    if not isinstance(schema, dict):
        return f"mock {key}"
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        options = schema["enum"]
        return options[int(hashlib.md5((seed + key).encode()).hexdigest(), 16) % len(options)]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if schema.get(combinator):
            return generate(schema[combinator][0], seed, key)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        props = schema.get("properties", {})
        return {name: generate(sub, seed, name) for name, sub in props.items()}
    if kind == "array":
        count = max(schema.get("minItems", 1), 1)
        count = min(count, schema.get("maxItems", count))
        return [generate(schema.get("items", {}), seed, f"{key}{i}") for i in range(count)]
    if kind == "integer":
        low, high = schema.get("minimum", 0), schema.get("maximum")
        return int(low if high is None else min(max(low, 1), high))
    if kind == "number":
        low, high = schema.get("minimum", 0), schema.get("maximum")
        return float(low if high is None else min(max(low, 0.5), high))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    fmt = schema.get("format")
    if fmt in ("date-time", "date", "email", "uri"):
        return {"date-time": "2024-01-01T00:00:00Z", "date": "2024-01-01",
                "email": "mock@example.com", "uri": "https://example.com/mock"}[fmt]
    digest = hashlib.md5((seed + key).encode()).digest()
    text = f"{key} {_WORDS[digest[0] % len(_WORDS)]} {_WORDS[digest[1] % len(_WORDS)]}"
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if len(text) < low:
        text = text + "x" * (low - len(text))
    return text[:high] if high is not None else text


def _violating(schema: Any) -> Any:
    """Output that a schema refuses (for the `schema` fault)."""
    if isinstance(schema, dict) and schema.get("type") == "object":
        return {"unexpected_field": [1, 2, 3]}
    return {"not": "a string"}


# --- the application (pure request -> response, no sockets) ------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    action: str | None = None  # "drop" | "timeout"


class MockProvider:
    """The mock's behaviour: request in, `Reply` out. Counts requests and faults."""

    def __init__(self, config: MockConfig | None = None) -> None:
        self.config = config or MockConfig()
        self.forced_fault: str | None = None
        self.stats: Counter[str] = Counter()
        self._rng = random.Random(self.config.seed)
        self._ids = itertools.count(1)

    def force_fault(self, fault: str | None) -> None:
        if fault is not None and fault not in FAULTS + FORCED_ONLY:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS + FORCED_ONLY)}")
        self.forced_fault = fault

    def _pick_fault(self, headers: dict[str, str]) -> str | None:
        forced = headers.get(FAULT_HEADER) or self.forced_fault
        if forced:
            return None if forced == "none" else forced
        if self.config.fault_rate and self._rng.random() < self.config.fault_rate:
            return self._rng.choice(FAULTS)
        return None

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        self.stats["requests"] += 1
        if method == "GET" and path in ("/health", "/"):
            return _json(200, {"ok": True, "stats": dict(self.stats)})
        if path in ("/v1/chat/completions", "/openai/v1/chat/completions"):
            wire = "groq" if path.startswith("/openai") else "openai"
        elif path == "/aiops/v1/complete":
            wire = "aiops"
        else:
            return _json(404, {"error": {"message": f"no route {path}", "type": "invalid_request_error",
                                         "code": "not_found"}})
        if method != "POST":
            return _json(405, {"error": {"message": "use POST", "code": "method_not_allowed"}})
        if wire == "aiops":
            denied = self._check_auth(headers, body)
            if denied:
                return _json(401, {"error": {"code": denied, "message": f"request refused: {denied}"}})
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _error(wire, "bad_request", "the body is not JSON", self.config)
        fault = self._pick_fault(headers)
        if fault:
            self.stats[f"fault:{fault}"] += 1
            if fault in ("drop", "timeout"):
                return Reply(action=fault)
            if fault == "bad_body":
                return Reply(status=200, body=b'{"id": "chatcmpl-broken", "choices": [{"mess',
                             headers={"content-type": "application/json"})
            if fault == "auth":  # like an old OpenAI 401, it echoes the key it got
                key = headers.get("authorization", "").removeprefix("Bearer ")
                return _error(wire, fault, f"Incorrect API key provided: {key}.", self.config)
            if fault not in ("malformed", "schema"):
                return _error(wire, fault, None, self.config)
        return self._answer(wire, request, fault)

    def _check_auth(self, headers: dict[str, str], body: bytes) -> str | None:
        cfg = self.config
        if cfg.bearer_token is not None and headers.get("authorization") != f"Bearer {cfg.bearer_token}":
            return "bad_token"
        if cfg.hmac_secret is not None:
            from aiops.providers.http import verify

            return verify(cfg.hmac_secret, headers.get("x-aiops-timestamp"),
                          headers.get("x-aiops-signature"), body, window_s=cfg.hmac_window_s)
        return None

    def _answer(self, wire: str, request: dict[str, Any], fault: str | None) -> Reply:
        messages = request.get("messages") or []
        model = str(request.get("model") or "mock-model")
        schema = _requested_schema(wire, request, messages)
        prompt_text = "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        seed = hashlib.md5(prompt_text.encode()).hexdigest()
        entry = self._match(wire, model, prompt_text)
        if entry is not None and "error" in entry:
            return _json(int(entry.get("status", 400)), {"error": entry["error"]})
        if fault == "malformed":
            output: Any = None
            text = '{"result": ["unterminated'
        elif fault == "schema":
            output = _violating(schema)
            text = json.dumps(output)
        else:
            if entry is not None:
                output = entry.get("output", entry.get("content"))
            elif schema is not None and schema.get("type") != "string":
                output = generate(schema, seed)
            else:
                last = next((str(m.get("content", "")) for m in reversed(messages)
                             if isinstance(m, dict) and m.get("role") == "user"), "")
                output = generate(schema or {"type": "string"}, seed, "answer") if schema \
                    else f"Mock answer from {model}: {last[:60].strip()}"
            text = output if isinstance(output, str) else json.dumps(output)
        n = next(self._ids)
        prompt_tokens = len(prompt_text) // 4 + 3 * len(messages) + 1
        completion_tokens = len(text) // 4 + 1
        finish = "stop"
        limit = _max_tokens(wire, request)
        if limit is not None and completion_tokens > limit:  # cut short, as providers do
            text, completion_tokens, finish = text[:4 * limit], limit, "length"
            output = text if fault != "malformed" else output
        reported = (entry or {}).get("usage") or {}  # a provider that counts otherwise
        prompt_tokens = _number(reported.get("input_tokens", prompt_tokens))
        completion_tokens = _number(reported.get("output_tokens", completion_tokens))
        if wire == "aiops":
            return _json(200, {"output": output if fault != "malformed" else text, "text": text,
                               "model": model, "request_id": f"mock-{n}",
                               "finish_reason": finish,
                               "usage": {"input_tokens": prompt_tokens,
                                         "output_tokens": completion_tokens}})
        usage: dict[str, Any] = {"prompt_tokens": prompt_tokens,
                                 "completion_tokens": completion_tokens,
                                 "total_tokens": _total(prompt_tokens, completion_tokens)}
        body: dict[str, Any] = {
            "id": f"chatcmpl-mock{n}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "logprobs": None, "finish_reason": finish,
                         "message": {"role": "assistant", "content": text}}],
            "usage": usage}
        if wire == "openai":
            body["choices"][0]["message"]["refusal"] = None
            usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
            usage["completion_tokens_details"] = {"reasoning_tokens": 0, "audio_tokens": 0}
            headers = {"x-request-id": f"req_mock{n}", "openai-processing-ms":
                       str(int(self.config.latency_ms)), **_ratelimit_headers(500, 200000)}
        else:
            usage.update({"queue_time": 0.0001, "prompt_time": 0.001, "completion_time": 0.01,
                          "total_time": 0.011})
            body["x_groq"] = {"id": f"req_mock{n}"}
            headers = {"x-request-id": f"req_mock{n}", **_ratelimit_headers(14400, 30000)}
        return _json(200, body, headers)

    def _match(self, wire: str, model: str, prompt_text: str) -> dict[str, Any] | None:
        for entry in self.config.responses:
            match = entry.get("match") or {}
            if match.get("provider") not in (None, wire):
                continue
            if match.get("model") not in (None, model):
                continue
            if "contains" in match and str(match["contains"]) not in prompt_text:
                continue
            return entry
        return None


def _max_tokens(wire: str, request: dict[str, Any]) -> int | None:
    """The output token limit a request sets (`max_tokens`, or `max_completion_tokens`)."""
    source = (request.get("settings") or {}) if wire == "aiops" else request
    limit = source.get("max_completion_tokens") or source.get("max_tokens")
    return limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 \
        else None


def _requested_schema(wire: str, request: dict[str, Any], messages: list[Any]) -> dict[str, Any] | None:
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
                    hinted: dict[str, Any] = json.loads(found.group(1))  # schema_hint embeds an object
                    return hinted
    if fmt.get("type") == "json_object":
        return {"type": "object"}
    return None


def _ratelimit_headers(requests: int, tokens: int) -> dict[str, str]:
    return {"x-ratelimit-limit-requests": str(requests),
            "x-ratelimit-remaining-requests": str(requests - 1),
            "x-ratelimit-reset-requests": "6s", "x-ratelimit-limit-tokens": str(tokens),
            "x-ratelimit-remaining-tokens": str(tokens - 100), "x-ratelimit-reset-tokens": "12ms"}


# An infinite count of an entry's `usage` is written as the JSON number 1e400 (what a
# backend's overflowing counter may send; a reader's float makes it infinite), not as
# `Infinity`, which is not JSON.
_OVERFLOW = "__mock_1e400__"


def _number(value: Any) -> Any:
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return _OVERFLOW if value > 0 else "-" + _OVERFLOW
    return value


def _total(a: Any, b: Any) -> Any:
    return a + b if isinstance(a, int) and isinstance(b, int) else None


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    text = json.dumps(payload)
    if _OVERFLOW in text:
        text = text.replace(f'"-{_OVERFLOW}"', "-1e400").replace(f'"{_OVERFLOW}"', "1e400")
    return Reply(status=status, body=text.encode(),
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


def _error(wire: str, fault: str, message: str | None, config: MockConfig) -> Reply:
    status, kind, code, text = _ERRORS[fault]
    after = config.retry_after_s
    text = message or text.format(model="the model", after=after)
    headers: dict[str, str] = {}
    if status in (429, 503):
        headers["retry-after"] = str(max(1, int(after + 0.999)))
        headers["retry-after-ms"] = str(int(after * 1000))
    if status == 429:
        headers.update(_ratelimit_headers(500, 200000))
        headers["x-ratelimit-remaining-requests"] = "0"
    if wire == "aiops":
        return _json(status, {"error": {"code": _AIOPS_CODES[fault], "message": text,
                                        "retry_after_s": after if status in (429, 503) else None}},
                     headers)
    if wire == "groq":
        groq_type = {500: "internal_server_error", 503: "service_unavailable"}.get(status, kind)
        return _json(status, {"error": {"message": text, "type": groq_type,
                                        **({"code": code} if code else {})}}, headers)
    return _json(status, {"error": {"message": text, "type": kind, "param": None, "code": code}},
                 headers)


# --- the HTTP/1.1 server ------------------------------------------------------------------


class MockServer:
    """The asyncio server around a `MockProvider`; `start()` binds, `url` tells where."""

    def __init__(self, app: MockProvider, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, self.host, self.port,
                                                  backlog=2048, limit=1 << 20)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError,
                asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        latency = self.app.config.latency_ms / 1000
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            if headers.get("transfer-encoding", "").lower() == "chunked":
                body = await _read_chunked(reader)
            else:
                body = await reader.readexactly(int(headers.get("content-length", "0")))
            reply = self.app.handle(method, target.split("?", 1)[0], headers, body)
            if latency:
                await asyncio.sleep(latency)
            if reply.action == "drop":
                return
            if reply.action == "timeout":
                await asyncio.sleep(self.app.config.timeout_fault_s)
                return
            out = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Error')}",
                   f"content-length: {len(reply.body)}"]
            out += [f"{k}: {v}" for k, v in reply.headers.items()]
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + reply.body)
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                return


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


@contextlib.contextmanager
def serve_in_thread(config: MockConfig | None = None, host: str = "127.0.0.1",
                    port: int = 0) -> Iterator[MockServer]:
    """Run the mock in a background thread's event loop; yields the started server."""
    server = MockServer(MockProvider(config), host, port)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(server.stop())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=run, name="aiops-mock-provider", daemon=True)
    thread.start()
    started.wait(10)
    if failure:
        raise failure[0]
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


async def serve_forever(config: MockConfig, host: str, port: int,
                        ready: Any = None) -> None:
    """Run the mock until cancelled (the `aiops mock-provider` command)."""
    server = MockServer(MockProvider(config), host, port)
    await server.start()
    if ready is not None:
        ready(server)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
