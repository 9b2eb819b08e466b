"""The ASGI app of `aiops serve`, made by `create_app(config)` once per worker process.

Stateless: a worker holds the project's `Workspace` and a connection pool, nothing else; the
database (and Redis, for shared limits) hold the state, so workers and replicas share the work.
The config reaches worker processes through one environment variable (`CONFIG_ENV`), which
`serve` sets before uvicorn starts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fastapi import Depends, FastAPI

from aiops import __version__, commands
from aiops.access import Caller, Permission
from aiops.collector import heap_frozen
from aiops.commands.metrics import enable_metrics
from aiops.commands.tokens import TOKEN_TRUST_S, TokenCache, TokenRefused
from aiops.errors import ConfigError, UsageError
from aiops.server.api import (
    admin,
    alerts,
    bodies,
    functions,
    guard,
    health,
    invoke,
    metrics,
    problems,
    stats,
    writes,
)
from aiops.server.api.problems import ApiProblem
from aiops.web.app import mount as mount_ui
from aiops.workspace import Workspace

if TYPE_CHECKING:
    from aiops.runner import Runner
    from aiops.store import Store

CONFIG_ENV = "AIOPS_SERVER_CONFIG"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's (aiops.metrics)
Writes = Literal["commit", "branch", "off"]
MAX_BODY_BYTES = 1 << 20  # a function document, or a run's input, is far smaller


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    project_dir: str = "."
    database_url: str | None = None
    writes: Writes = "commit"
    max_body_bytes: int = MAX_BODY_BYTES
    # How long a run waits for room under a rate limit before it fails (429 `rate-limited`).
    max_wait_s: float = 30.0
    evaluate_alerts: bool = True  # each worker runs the alerts' evaluator (one at a time)
    # Seconds a worker trusts a token it checked (`TokenCache`); 0: every request asks the
    # database.
    token_trust_s: float = TOKEN_TRUST_S

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, environ: Any = None) -> ServerConfig:
        raw = (environ or os.environ).get(CONFIG_ENV)
        return cls(**json.loads(raw)) if raw else cls()


@dataclass(kw_only=True)
class ServerState:
    """What one worker keeps: the project, its store (opened on first use, and again after a
    failure), the permission of each operation, the tokens it checked lately (`tokens`;
    `commands.revoke_token` makes it forget a token at once)."""

    config: ServerConfig
    workspace: Workspace
    permissions: dict[Callable[..., Any], Permission] = field(default_factory=dict)
    tokens: TokenCache = field(default_factory=TokenCache)
    _store: Store | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _runner: Runner | None = None
    _runner_loop: asyncio.AbstractEventLoop | None = None

    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                self._store = self.workspace.open_store()
            return self._store

    async def runner(self) -> Runner:
        """The worker's runner (one per event loop): its provider clients, resolved versions,
        rate limits and budget leases serve every request."""
        from aiops.commands.invoke import open_api_runner

        loop = asyncio.get_running_loop()
        if self._runner is None or self._runner_loop is not loop:
            self._runner = open_api_runner(self.workspace, self.store(),
                                           max_wait_s=self.config.max_wait_s)
            self._runner_loop = loop
        return self._runner

    def forget_versions(self) -> None:
        """After this worker applied a write: its runs resolve names anew at once (other
        workers and replicas within `aiops.runner.FLOATING_TTL_S`)."""
        if self._runner is not None:
            self._runner.invalidate()

    async def close(self) -> None:
        """At shutdown: the runner's rows flushed, its budget leases given back."""
        runner, self._runner = self._runner, None
        if runner is not None and self._runner_loop is asyncio.get_running_loop():
            await runner.aclose()

    def authenticate(self, text: str) -> Caller:
        """The caller of a token, checked in the database unless this worker checked it
        within `tokens.ttl_s` (`trusted` answers those without I/O)."""
        try:
            return self.tokens.authenticate(self.store(), text)
        except TokenRefused as exc:
            raise ApiProblem("unauthenticated", str(exc), headers=guard.CHALLENGE) from None

    def trusted(self, text: str) -> Caller | None:
        return self.tokens.lookup(text)


def check_address(host: str, port: int) -> None:
    """A UsageError, in one line, when the server could not listen on `host`:`port` (in use,
    not an address of this machine, a port below 1024 without the right): said before
    uvicorn starts, which would log it and exit among its own lines."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host name IDNA cannot encode
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        hint = ("; another server listens there: stop it, or choose another --port"
                if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE else "")
        raise UsageError(f"cannot listen on {host}:{port}: {reason}{hint}") from None


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """The app for the project `config` names (default: `CONFIG_ENV`, else the current
    directory). A directory that is no project fails here, before any request."""
    config = config or ServerConfig.from_env()
    workspace = commands.open_workspace(Path(config.project_dir),
                                        database_url=config.database_url)
    state: ServerState

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        evaluator = _alerts_evaluator(workspace, stop) if config.evaluate_alerts else None
        # What start-up built (the libraries, the app) lives as long as the worker: frozen out
        # of the collector's sight, a full collection walks only what requests left behind,
        # not the whole heap, which it did in the middle of a request (the p99's tail). A
        # process that froze its heap itself keeps it so; ours is thawed when the app stops.
        froze = not heap_frozen()
        if froze:
            gc.freeze()
        try:
            yield
        finally:
            if froze:
                gc.unfreeze()
            stop.set()
            if evaluator is not None:
                evaluator.join(timeout=30)
            await state.close()

    app = FastAPI(title="aiops", version=__version__, openapi_url=None, docs_url=None,
                  redoc_url=None, dependencies=[Depends(guard.gate)], lifespan=lifespan,
                  description="AI functions as code: the catalog, its versions and logs, "
                  "and writes through git.")
    state = ServerState(config=config, workspace=workspace,
                        tokens=TokenCache(config.token_trust_s))
    app.state.aiops = state
    problems.install(app)
    state.permissions = guard.install(app, [health.ops, functions.ops, writes.ops, invoke.ops,
                                            stats.ops, alerts.ops, admin.ops,
                                            metrics.ops])
    enable_metrics()  # every execution of this worker counts in /metrics
    app.openapi = lambda: health.openapi_document(app)  # type: ignore[method-assign]
    mount_ui(app, state)  # the web UI: /ui, its own session guard (aiops.web)
    app.add_middleware(bodies.BodyLimit, max_bytes=config.max_body_bytes)
    return app


def _alerts_evaluator(workspace: Workspace, stop: threading.Event) -> threading.Thread:
    """The alerts' evaluator of this worker, in a thread until `stop` is set: every
    `alerting.interval` (`aiops.commands.alerts.run_evaluator`: the database lock makes one
    evaluation per interval across workers and replicas)."""
    thread = threading.Thread(target=commands.run_evaluator, args=(workspace, stop),
                              kwargs={"on_error": _evaluator_failed}, daemon=True,
                              name="aiops-alerts")
    thread.start()
    return thread


def _evaluator_failed(exc: Exception) -> None:
    logging.getLogger("aiops.alerts").warning("alert evaluation failed: %s: %s",
                                              type(exc).__name__, exc)


def serve(config: ServerConfig, *, host: str, port: int, workers: int) -> None:
    """Run the server until interrupted (uvicorn; `workers` processes, each its own app)."""
    import uvicorn

    os.environ[CONFIG_ENV] = config.to_env()
    with metrics_folder():
        create_app(config)  # fail before listening: not a project, unreadable settings
        check_address(host, port)
        uvicorn.run("aiops.server.app:create_app", factory=True, host=host, port=port,
                    workers=workers, log_level="info", server_header=False)


@contextlib.contextmanager
def metrics_folder() -> Iterator[Path]:
    """The folder where every worker writes its Prometheus counters (`aiops.metrics`), set in
    PROMETHEUS_MULTIPROC_DIR before anything imports prometheus_client, so that workers
    started from here inherit it. By default a new private folder, removed at exit; one the
    environment names is used, emptied of the counters of an earlier run first."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        folder = Path(given)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob("*.db"):  # an earlier run's: counting starts again from 0
                old.unlink()
        except OSError as exc:
            raise ConfigError(f"{MULTIPROC_ENV}={given}: not a folder aiops serve can use "
                              f"for its metrics ({exc.strerror or exc})") from None
        yield folder
        return
    folder = Path(tempfile.mkdtemp(prefix="aiops-metrics-"))  # mode 0700
    os.environ[MULTIPROC_ENV] = str(folder)
    try:
        yield folder
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)
