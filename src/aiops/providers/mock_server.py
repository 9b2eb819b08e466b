"""A local mock provider server: OpenAI's, Groq's and aiops's custom wire formats.

    /v1/chat/completions          OpenAI chat completions (OpenAI SDK base_url: URL + /v1)
    /openai/v1/chat/completions   Groq (Groq SDK base_url: URL, the host root)
    /aiops/v1/complete            the custom backend protocol (http provider: URL + /aiops)
    GET /v1/models, /openai/v1/models   the models it knows (OpenAI's list format)

It answers deterministically: from a responses file when an entry matches, else with output
generated to fit the requested schema (`json_schema`, or the schema that aiops puts in a
system message for JSON mode; `aiops.providers.mock_values`), with usage and each provider's
rate-limit headers. A schema it cannot write a value for is a 400 that says where and why,
never output its schema refuses; a malformed request (HTTP, JSON, or a parameter of the
wrong type) is a 400 with an OpenAI-style error body. An answer
longer than the request's `max_tokens` is cut there (finish reason `length`), as providers
do; an entry's `usage: {input_tokens, output_tokens}` replaces the counts it reports (a
provider that ignores `max_tokens`, or counts wrongly; an infinite count is written as the
JSON number 1e400). Faults are injected at `fault_rate` (429 with Retry-After, 500, 503,
timeouts, dropped connections, bodies that are not JSON, malformed and schema-violating
output) or forced per request with the `X-Mock-Fault` header (or `MockProvider.force_fault`
in process).

The answers' wire formats (errors, the 400s, the schema asked for) are in
`aiops.providers.mock_wire`. The server is raw asyncio HTTP/1.1 (keep-alive, Content-Length
and chunked bodies, a 400 for anything else): small and fast, because benchmarks measure
against it. Behind aiohttp.web the same answers cost 1.6 times the server's CPU a request
(measured with benchmarks/runner.py's bare-client floor). `serve_in_thread()` runs it in a
background thread for tests; `aiops mock-provider` runs it in the foreground.
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

from aiops import fastjson
from aiops.providers.mock_values import CannotGenerate, generate
from aiops.providers.mock_wire import (
    Reply,
    cannot_generate,
    error_reply,
    invalid,
    json_reply,
    malformed,
    max_tokens,
    ratelimit_headers,
    requested_schema,
    usage_count,
    usage_total,
    violating,
)

FAULTS = ("rate_limit", "server_error", "unavailable", "timeout", "drop", "bad_body",
          "malformed", "schema")
FORCED_ONLY = ("auth", "bad_request", "not_found", "none")
FAULT_HEADER = "x-mock-fault"
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 413: "Payload Too Large", 422: "Unprocessable Entity",
            429: "Too Many Requests", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}
MAX_HEAD_BYTES = 1 << 20  # request line and headers
MAX_BODY_BYTES = 64 << 20
DEFAULT_MODELS = ("mock-model",)  # listed when neither the config nor an entry names one


@dataclass
class MockConfig:
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    responses: list[dict[str, Any]] = field(default_factory=list)
    seed: int = 0
    retry_after_s: float = 1.0  # what a 429/503 asks the client to wait
    timeout_fault_s: float = 60.0  # how long a `timeout` fault holds the request
    models: tuple[str, ...] = ()  # what GET /v1/models lists (with the entries' models)
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


# --- the application (pure request -> response, no sockets) ------------------------------


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
            return json_reply(200, {"ok": True, "stats": dict(self.stats)})
        if method == "GET" and path.startswith(("/v1/models", "/openai/v1/models")):
            return self._models(path.partition("/models")[2].strip("/"))
        if path in ("/v1/chat/completions", "/openai/v1/chat/completions"):
            wire = "groq" if path.startswith("/openai") else "openai"
        elif path == "/aiops/v1/complete":
            wire = "aiops"
        else:
            return json_reply(404, {"error": {"message": f"no route {path}", "type": "invalid_request_error",
                                         "code": "not_found"}})
        if method != "POST":
            return json_reply(405, {"error": {"message": "use POST", "code": "method_not_allowed"}})
        if wire == "aiops":
            denied = self._check_auth(headers, body)
            if denied:
                return json_reply(401, {"error": {"code": denied, "message": f"request refused: {denied}"}})
        try:
            request = fastjson.loads(body)
        except (ValueError, UnicodeDecodeError):
            return error_reply(wire, "bad_request", "the body is not JSON",
                               self.config.retry_after_s)
        problem = malformed(wire, request)
        if problem is not None:
            return invalid(wire, *problem)
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
                return error_reply(wire, fault, f"Incorrect API key provided: {key}.",
                                   self.config.retry_after_s)
            if fault not in ("malformed", "schema"):
                return error_reply(wire, fault, None, self.config.retry_after_s)
        return self._answer(wire, request, fault)

    def models(self) -> list[str]:
        """The configured models, then those the responses entries match on."""
        named = [*self.config.models, *(str((e.get("match") or {}).get("model"))
                                        for e in self.config.responses
                                        if isinstance(e, dict) and isinstance(e.get("match"), dict)
                                        and (e.get("match") or {}).get("model") is not None)]
        return list(dict.fromkeys(named)) or list(DEFAULT_MODELS)

    def _models(self, one: str) -> Reply:
        """OpenAI's `GET /models` (a list) and `GET /models/{id}`."""
        cards = {m: {"id": m, "object": "model", "created": 0, "owned_by": "aiops-mock"}
                 for m in self.models()}
        if not one:
            return json_reply(200, {"object": "list", "data": list(cards.values())})
        if one in cards:
            return json_reply(200, cards[one])
        return json_reply(404, {"error": {"message": f"The model `{one}` does not exist or you do "
                                                "not have access to it.",
                                     "type": "invalid_request_error", "param": None,
                                     "code": "model_not_found"}})

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
        schema = requested_schema(wire, request, messages)
        prompt_text = "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        seed = hashlib.md5(prompt_text.encode()).hexdigest()
        entry = self._match(wire, model, prompt_text)
        if entry is not None and "error" in entry:
            return json_reply(int(entry.get("status", 400)), {"error": entry["error"]})
        if fault == "malformed":
            output: Any = None
            text = '{"result": ["unterminated'
        elif fault == "schema":
            output = violating(schema)
            text = json.dumps(output)
        else:
            try:
                output = self._output(entry, schema, seed, model, messages)
            except CannotGenerate as exc:
                return cannot_generate(wire, exc, request)
            text = output if isinstance(output, str) else json.dumps(output)
        n = next(self._ids)
        prompt_tokens = len(prompt_text) // 4 + 3 * len(messages) + 1
        completion_tokens = len(text) // 4 + 1
        finish = "stop"
        limit = max_tokens(wire, request)
        if limit is not None and completion_tokens > limit:  # cut short, as providers do
            text, completion_tokens, finish = text[:4 * limit], limit, "length"
            output = text if fault != "malformed" else output
        finish = (entry or {}).get("finish_reason", finish)  # content_filter, tool_calls, ...
        reported = (entry or {}).get("usage") or {}  # a provider that counts otherwise
        prompt_tokens = usage_count(reported.get("input_tokens", prompt_tokens))
        completion_tokens = usage_count(reported.get("output_tokens", completion_tokens))
        if wire == "aiops":
            return json_reply(200, {"output": output if fault != "malformed" else text,
                                    "text": text,
                               "model": model, "request_id": f"mock-{n}",
                               "finish_reason": finish,
                               "usage": {"input_tokens": prompt_tokens,
                                         "output_tokens": completion_tokens}})
        usage: dict[str, Any] = {"prompt_tokens": prompt_tokens,
                                 "completion_tokens": completion_tokens,
                                 "total_tokens": usage_total(prompt_tokens, completion_tokens)}
        body: dict[str, Any] = {
            "id": f"chatcmpl-mock{n}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "logprobs": None, "finish_reason": finish,
                         "message": {"role": "assistant", "content": text}}],
            "usage": usage}
        message = body["choices"][0]["message"]
        if wire == "openai":
            message["refusal"] = None
        message.update((entry or {}).get("message") or {})  # null content, tool calls, refusal
        if wire == "openai":
            usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
            usage["completion_tokens_details"] = {"reasoning_tokens": 0, "audio_tokens": 0}
            headers = {"x-request-id": f"req_mock{n}", "openai-processing-ms":
                       str(int(self.config.latency_ms)), **ratelimit_headers(500, 200000)}
        else:
            usage.update({"queue_time": 0.0001, "prompt_time": 0.001, "completion_time": 0.01,
                          "total_time": 0.011})
            body["x_groq"] = {"id": f"req_mock{n}"}
            headers = {"x-request-id": f"req_mock{n}", **ratelimit_headers(14400, 30000)}
        return json_reply(200, body, headers)

    @staticmethod
    def _output(entry: dict[str, Any] | None, schema: dict[str, Any] | None, seed: str,
                model: str, messages: list[Any]) -> Any:
        if entry is not None:
            return entry.get("output", entry.get("content"))
        if schema is not None and schema.get("type") != "string":
            return generate(schema, seed)
        if schema is not None:
            return generate(schema, seed, "answer")
        last = next((str(m.get("content", "")) for m in reversed(messages)
                     if isinstance(m, dict) and m.get("role") == "user"), "")
        return f"Mock answer from {model}: {last[:60].strip()}"

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
                                                  backlog=2048, limit=MAX_HEAD_BYTES)
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
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:  # the client closed the connection
                return
            except asyncio.LimitOverrunError:
                await _refuse(writer, Malformed(f"the request line and headers are over "
                                                f"{MAX_HEAD_BYTES} bytes", 431))
                return
            try:
                method, path, headers = parse_head(head)
                if headers.get("expect", "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = await _read_body(reader, headers)
            except Malformed as exc:
                await _refuse(writer, exc)
                return
            try:
                reply = self.app.handle(method, path, headers, body)
            except Exception as exc:  # answered, so that a bug shows instead of a dropped line
                reply = json_reply(500, {"error": {
                    "message": f"the mock provider failed: {type(exc).__name__}: {exc}"[:500],
                    "type": "server_error", "param": None, "code": None}})
            if latency:
                await asyncio.sleep(latency)
            if reply.action == "drop":
                return
            if reply.action == "timeout":
                await asyncio.sleep(self.app.config.timeout_fault_s)
                return
            writer.write(_response(reply))
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                return


class Malformed(Exception):
    """An HTTP request the server cannot read: answered with `status`, then closed."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


_LENGTH = re.compile(r"[0-9]{1,19}")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """(method, path, headers) of a request head; Malformed when it is not HTTP/1.x."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[2].startswith("HTTP/1."):
        raise Malformed(f"the request line {lines[0][:80]!r} is not `METHOD /path HTTP/1.1`")
    method, target, _ = parts
    if target.startswith(("http://", "https://")):  # absolute form, as sent to a proxy
        target = "/" + target.split("/", 3)[-1] if target.count("/") >= 3 else "/"
    if not target.startswith("/"):
        raise Malformed(f"the request target {target[:80]!r} is not a path")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise Malformed(f"the header line {line[:80]!r} is not `Name: value`")
        headers[name.lower()] = value.strip()
    return method, target.split("?", 1)[0], headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await _read_chunked(reader)
    length = headers.get("content-length", "0")
    if not _LENGTH.fullmatch(length):
        raise Malformed(f"content-length {length[:30]!r} is not a number of bytes")
    if int(length) > MAX_BODY_BYTES:
        raise Malformed(f"the body is {length} bytes, over the mock's {MAX_BODY_BYTES}", 413)
    return await reader.readexactly(int(length))


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = (await reader.readuntil(b"\r\n"))[:-2].split(b";")[0].strip()
        try:
            size = int(line, 16)
        except ValueError:
            raise Malformed(f"the chunk size {line[:30].decode('latin-1')!r} is not "
                            "hexadecimal") from None
        total += size
        if size < 0 or total > MAX_BODY_BYTES:
            raise Malformed(f"the chunked body is over the mock's {MAX_BODY_BYTES} bytes", 413)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailer fields
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise Malformed("a chunk does not end with CRLF where its size says")


def _response(reply: Reply) -> bytes:
    out = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Error')}",
           f"content-length: {len(reply.body)}"]
    out += [f"{k}: {v}" for k, v in reply.headers.items()]
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + reply.body


async def _refuse(writer: asyncio.StreamWriter, problem: Malformed) -> None:
    """Answer a request that cannot be read (OpenAI's error shape), and close."""
    reply = json_reply(problem.status, {"error": {
        "message": f"malformed HTTP request: {problem}", "type": "invalid_request_error",
        "param": None, "code": "malformed_request"}}, {"connection": "close"})
    with contextlib.suppress(ConnectionError):
        writer.write(_response(reply))
        await writer.drain()
        writer.close()
        await writer.wait_closed()


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
