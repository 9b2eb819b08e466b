"""Shared pytest fixtures: providers.

`mock_provider` is a running mock provider server (aiops.providers.mock_server) on a free
loopback port, in a background thread; it yields the server, whose `.url` is the root
(OpenAI SDK: url + "/v1", Groq SDK: url, http provider: url + "/aiops") and whose `.app`
allows forcing faults and reading counters. `mock_provider_factory(MockConfig(...))` starts
others. `FakeStore` is the runner's store without a database (unit tests); `PROVIDERS`,
`CLASSIFY`, `write()` and `env_for()` make a project whose three providers (openai, groq,
http) point at a mock through AIOPS_<NAME>_BASE_URL (integration and e2e tests).
`serve_http(Handler)` runs a small stdlib server of the test's own (a backend that checks
signatures, a proxy, a canned answer) and yields its root URL, `send_json` answers from one;
`unused_port` is a loopback port that nothing listens on. `run_all(runner, target, inputs)`
collects a batch's results in input order; `until_still(count, n)` waits until a count of calls
stops growing (what a bound held back).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiops.budgets import Amount, LeaseSync, Pool, settled
from aiops.errors import NotFoundError
from aiops.fingerprint import behaviour_content
from aiops.loader import load_sources
from aiops.providers.mock_server import MockConfig, MockServer, serve_in_thread
from aiops.sources import read_tree
from aiops.spec import FunctionSpec
from aiops.store import DeployedVersion, LogRow
from tests.factories import spec_data


@contextlib.contextmanager
def serve_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` served on a free loopback port in a background thread: its root URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def answering(body: bytes, status: int = 200) -> Iterator[str]:
    """A server that answers every POST with `body` (JSON) and `status`: its root URL."""

    class Canned(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with serve_http(Canned) as url:
        yield url


def send_json(handler: BaseHTTPRequestHandler, status: int, payload: Any,
              headers: dict[str, str] | None = None) -> None:
    """Answer a test server's request with `payload` as JSON."""
    data = json.dumps(payload).encode()
    handler.send_response(status)
    for name, value in {"content-type": "application/json", **(headers or {})}.items():
        handler.send_header(name, value)
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mock_provider() -> Iterator[MockServer]:
    with serve_in_thread(MockConfig(retry_after_s=0.01, timeout_fault_s=5)) as server:
        yield server


@pytest.fixture
def mock_provider_factory() -> Iterator[object]:
    """Start mocks with a given MockConfig: `url = mock_provider_factory(MockConfig(...)).url`."""
    stack: list[object] = []

    def start(config: MockConfig) -> MockServer:
        cm = serve_in_thread(config)
        server = cm.__enter__()
        stack.append(cm)
        return server

    yield start
    for cm in reversed(stack):
        cm.__exit__(None, None, None)  # type: ignore[attr-defined]


async def run_all(runner: Any, target: str, inputs: list[Any], concurrency: int = 32) -> list[Any]:
    """`runner.run_many` over `inputs`, its results in input order (run_many hands each over
    as it finishes and keeps none)."""
    results: dict[int, Any] = {}
    await runner.run_many(target, inputs, concurrency=concurrency, on_result=results.__setitem__)
    return [results[i] for i in range(len(results))]


async def until_still(count: Callable[[], int], at_least: int) -> int:
    """Wait (at most 10 s) until `count()` reaches `at_least` and then stays the same over
    six turns of 50 ms: how many calls started before something held them back."""
    still = 0
    for _ in range(200):
        before = count()
        await asyncio.sleep(0.05)
        still = still + 1 if count() == before >= at_least else 0
        if still == 6:
            break
    return count()


# --- a store without a database, for runner unit tests ----------------------------------------



REPO = Path(__file__).resolve().parent.parent


def deployed(spec: FunctionSpec, **overrides: Any) -> DeployedVersion:
    """A DeployedVersion of a spec, as the store would return it."""
    values: dict[str, Any] = {
        "function_id": str(uuid.uuid5(uuid.NAMESPACE_URL, spec.name)),
        "version_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{spec.name}@{spec.version}")),
        "name": spec.name, "version": spec.version, "content": behaviour_content(spec),
        "git_commit": "0" * 40, "status": spec.status,
        "limits": spec.limits.model_dump(mode="json"),
        "access": spec.access.model_dump(mode="json")}
    values.update(overrides)
    return DeployedVersion(**values)


class FakeStore:
    """Resolve, logs and budget leases in memory (thread-safe, as the runner calls it from
    threads)."""

    def __init__(self, specs: list[FunctionSpec] | None = None) -> None:
        self.versions: dict[str, DeployedVersion] = {}
        self.logs: list[LogRow] = []
        self.usage: dict[tuple[str, str, date], dict[str, float]] = {}
        self.leases: dict[str, tuple[tuple[str, str, date], Amount]] = {}
        self.resolves = 0
        self._lock = threading.Lock()
        for spec in specs or []:
            self.add(spec)

    def add(self, spec: FunctionSpec, **overrides: Any) -> DeployedVersion:
        dv = deployed(spec, **overrides)
        self.versions[spec.name] = dv
        return dv

    def resolve(self, name: str, selector: str | None = None) -> DeployedVersion:
        self.resolves += 1
        dv = self.versions.get(name)
        if dv is None or (selector and not dv.version.startswith(selector)):
            raise NotFoundError(f"no function `{name}` in the database")
        return dv

    def insert_logs(self, rows: list[LogRow]) -> None:
        with self._lock:
            self.logs.extend(rows)

    def sync_budget_lease(self, sync: LeaseSync, size: Callable[[Pool], Amount]) -> Pool:
        """Leases as `aiops.store.leases` keeps them, without expiry."""
        key = (sync.ledger, sync.owner_id, sync.day)
        with self._lock:
            u = self.usage.setdefault(key, {
                "calls_reserved": 0, "calls_used": 0, "usd_reserved": 0.0, "usd_spent": 0.0})
            held = self.leases.pop(sync.lease_id, (key, Amount()))[1]
            others = [amount for k, amount in self.leases.values() if k == key]
            pool = settled(used=Amount(calls=int(u["calls_used"]), usd=u["usd_spent"]),
                           others=Amount(calls=sum(a.calls for a in others),
                                         usd=sum(a.usd for a in others)),
                           held=held, settle=sync.settle)
            new = size(pool)
            if new != Amount():
                self.leases[sync.lease_id] = (key, new)
            u.update(calls_used=pool.used.calls, usd_spent=pool.used.usd,
                     calls_reserved=pool.others.calls + new.calls,
                     usd_reserved=pool.others.usd + new.usd)
            return Pool(used=pool.used, others=pool.others, held=new)


def example_specs() -> dict[str, FunctionSpec]:
    """The repository's example functions, loaded."""
    project = load_sources(read_tree(REPO))
    return {name: lf.spec for name, lf in project.functions.items()}


@pytest.fixture
def fake_store() -> FakeStore:
    return FakeStore(list(example_specs().values()))


# --- a project for runner integration tests ---------------------------------------------------
# Three providers (openai, groq, http) meant to be pointed at the mock provider through
# AIOPS_<NAME>_BASE_URL, and functions written on demand. Timeouts are short, so that injected
# timeout faults (1 s) cost little, and not so short that a loaded CI machine trips them.


PROVIDERS = {"providers": {
    "openai": {"type": "openai", "api_key_env": "T_OPENAI_KEY", "timeout_s": 0.8,
               "models": {"gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}}},
    "groq": {"type": "groq", "api_key_env": "T_GROQ_KEY", "timeout_s": 0.8,
             "models": {"llama-3.1-8b-instant": {"input_per_mtok": 0.05,
                                                 "output_per_mtok": 0.08}}},
    "internal": {"type": "http", "base_url": "https://backend.invalid/aiops", "timeout_s": 0.8,
                 "auth": {"type": "hmac", "secret_env": "T_HMAC_SECRET"},
                 "models": {"house-model": {"input_per_mtok": 0.0, "output_per_mtok": 0.0}}},
}}

CLASSIFY: dict[str, Any] = spec_data(
    "classify", description=None, provider="openai", model="gpt-4o-mini",
    configuration={"temperature": 0, "max_tokens": 100},
    prompt=[{"role": "system", "content": "Route the ticket. Answer with JSON."},
            {"role": "user", "content": "Subject: {{ subject }}\n{{ body }}"}],
    input_schema={"type": "object", "required": ["subject", "body"], "properties": {
        "subject": {"type": "string", "minLength": 1}, "body": {"type": "string"}},
        "additionalProperties": False},
    output_schema={"type": "object", "required": ["queue", "priority"], "properties": {
        "queue": {"type": "string", "enum": ["billing", "technical", "other"]},
        "priority": {"type": "integer", "minimum": 1, "maximum": 4}},
        "additionalProperties": False},
    fallbacks=[{"provider": "groq", "model": "llama-3.1-8b-instant"},
               {"provider": "internal", "model": "house-model"}],
    retry={"max_attempts": 4, "backoff_s": 0.001, "max_backoff_s": 0.01, "repair_attempts": 2},
)


def write(root: Path, *functions: dict[str, Any]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "providers.yaml").write_text(yaml.safe_dump(PROVIDERS), encoding="utf-8")
    for data in functions:
        path = root / "functions" / data["name"] / "function.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return root


def env_for(url: str, **keys: str) -> dict[str, str]:
    """Keys and base-URL overrides that point the three providers at a mock at `url`."""
    return {"T_OPENAI_KEY": keys.get("openai", "sk-test-openai"),
            "T_GROQ_KEY": keys.get("groq", "gsk-test-groq"),
            "T_HMAC_SECRET": keys.get("hmac", "hmac-test-secret"),
            "AIOPS_OPENAI_BASE_URL": url + "/v1", "AIOPS_GROQ_BASE_URL": url,
            "AIOPS_INTERNAL_BASE_URL": url + "/aiops"}


def open_runner(root: Path, *, url: str | None = None, **kw: Any) -> Any:
    """`commands.open_runner` for the project at `root` (its database, or `url`)."""
    from aiops import commands

    return commands.open_runner(commands.open_workspace(root, database_url=url), **kw)
