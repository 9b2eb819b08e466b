"""The public Python API: `aiops.open(path)` is a `Workspace` whose methods are the verbs.

    import aiops

    with aiops.open("path/to/project") as ws:
        result = ws.run("summarize@1", {"text": "..."})
        print(result.output, result.cost_usd, result.log_id)

Each method calls one verb of `aiops.commands` and decides nothing itself. What it adds is
what an application needs and a command does not: a session. The database is opened once,
and the runner (`commands.open_runner`: provider clients, rate limiter, budget leases, log
writer) stays open across calls until `close()`, `aclose()` or the end of the `with` block.

The runner is asyncio inside and belongs to one event loop (its HTTP clients and its log
writer do). The async methods run it natively on the caller's loop, one runner per loop. The
sync methods run the same coroutines on one private loop, in a daemon thread the workspace
starts on first use: any thread may call them, and calls from several threads run
concurrently on that loop (one runner, one connection pool, one set of rate limits). All the
runners share one database engine (`aiops.store.Store` is thread-safe).

The verbs that read the project's files (validate, plan, apply, status, test, new_function)
read them anew on each call, so edits made in between count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import warnings
import weakref
from collections.abc import AsyncIterable, Coroutine, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from aiops import commands
from aiops.errors import AiopsError, UsageError

if TYPE_CHECKING:
    from aiops.commands import ApplyResult, InitResult, Status, ValidationReport
    from aiops.golden import GoldenReport
    from aiops.plan import Plan
    from aiops.records import LogRecord
    from aiops.runner import Execution, Runner
    from aiops.store import Store

T = TypeVar("T")
_log = logging.getLogger("aiops")
_Loop = asyncio.AbstractEventLoop
LOCK_TIMEOUT_S = 30.0  # Workspace.open_store's default: the session's database waits this long


def open(path: str | os.PathLike[str] = ".", *, database_url: str | None = None,
         env: Mapping[str, str] | None = None, actor: str | None = None,
         max_wait_s: float | None = None) -> Workspace:
    """The project at or above `path` (found as `aiops` commands find it: the nearest
    directory with functions/, providers.yaml or aiops.yaml). Nothing is read or opened yet.

    `database_url` wins over AIOPS_DATABASE_URL and aiops.yaml; `env` is where the provider
    keys and the AIOPS_* settings are read (default: os.environ); `actor` is logged with each
    execution and recorded by apply; `max_wait_s` bounds how long a call waits for room in a
    rate limit or a concurrency slot (LimitExceeded past it; default: as long as it takes).
    NotAProject outside a project, UsageError when `path` is not a directory."""
    ws = commands.open_workspace(Path(path), database_url=database_url, environ=env)
    return Workspace(ws, env=env, actor=actor, max_wait_s=max_wait_s)


def init(path: str | os.PathLike[str], *, force: bool = False) -> InitResult:
    """`aiops init`: scaffold a project at `path` (created if missing). Existing files are
    kept (listed in `kept`) unless `force`; a directory outside git becomes a repository."""
    return commands.init_project(Path(path), force=force)


class Workspace:
    """One project, its database and its runners; what `aiops.open()` returns.

    Use it as a context manager (`with` or `async with`), or call `close()` (`await
    aclose()`) when done: closing flushes the log rows, gives back unused budget leases and
    closes the provider clients. Thread-safe: see docs/python.md."""

    def __init__(self, workspace: commands.Workspace, *, env: Mapping[str, str] | None = None,
                 actor: str | None = None, max_wait_s: float | None = None) -> None:
        self._ws = workspace
        self._env = env
        self._actor = actor
        self._max_wait_s = max_wait_s
        self._lock = threading.RLock()
        self._store: Store | None = None
        self._runners: dict[_Loop, Runner] = {}
        self._private: _PrivateLoop | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._closed = False

    @property
    def root(self) -> Path:
        """The project's directory."""
        return self._ws.root

    def __repr__(self) -> str:
        return f"<aiops.Workspace {str(self.root)!r}{' closed' if self._closed else ''}>"

    # -- the files ----------------------------------------------------------------------------

    def validate(self, *, base: str | None = None) -> ValidationReport:
        """`aiops validate`: every check of every file; with `base` (a git revision), the
        version rules against it too. Problems are in the report, not raised."""
        return commands.validate(self._files(), base=base)

    def plan(self, *, prune: bool = False, max_prune: int | None = None,
             adopt: bool = False) -> Plan:
        """`aiops plan`: the files against the database, as data (`Plan.errors` holds what
        keeps it from being applied). `adopt`: take over functions of the same name that
        another project applied (refused otherwise)."""
        return commands.plan(self._files(), prune=prune, max_prune=max_prune, adopt=adopt,
                             store=self._database())

    def apply(self, *, expected: Plan | None = None, prune: bool = False,
              max_prune: int | None = None, adopt: bool = False, actor: str | None = None,
              lock_timeout_s: float = LOCK_TIMEOUT_S) -> ApplyResult:
        """`aiops apply`: validate, lock, write the plan. With `expected` (a plan from
        `plan()`), only that plan, refused with StalePlanError if the database changed since.
        Invalid files are a SpecError. The runners see the new versions at once."""
        # SQLite's lock wait is its connections' busy timeout: another wait, another store
        # (aiops.store keeps an engine per URL and timeout).
        store = self._database() if lock_timeout_s == LOCK_TIMEOUT_S else None
        result = commands.apply(self._files(), expected=expected, prune=prune,
                                max_prune=max_prune, adopt=adopt, actor=actor or self._actor,
                                lock_timeout_s=lock_timeout_s, store=store)
        if result.wrote:
            for runner in list(self._runners.values()):
                runner.invalidate()
        return result

    def status(self) -> Status:
        """`aiops status`: each function, in sync or not, and the last apply."""
        return commands.status(self._files(), store=self._database())

    def test(self, names: Sequence[str] = (), *, provider: str | None = None,
             record: bool = False) -> GoldenReport:
        """`aiops test`: the golden tests of every function (or of `names`), replayed from
        their cassettes, or recorded with `record`. Not from a running event loop."""
        return commands.golden_tests(self._files(), names=names, provider=provider,
                                     record=record, env=self._env)

    def new_function(self, name: str, *, description: str = "Describe what it does.",
                     provider: str | None = None, model: str | None = None) -> list[Path]:
        """`aiops new`: scaffold functions/<name>/function.yaml; the paths written."""
        return commands.new_function(self._files(), name, description=description,
                                     provider=provider, model=model)

    def upgrade_database(self) -> str:
        """`aiops db upgrade`: create or migrate the database's schema (SQLite is migrated on
        first use; PostgreSQL only by this); the database's URL, password hidden."""
        self._check_open()
        return commands.upgrade_database(self._ws)

    def _files(self) -> commands.Workspace:
        """The project with its files to be read anew (its database stays this one's)."""
        self._check_open()
        return self._ws.reopened()

    # -- running --------------------------------------------------------------------------

    def run(self, target: str, input: Any, *, actor: str | None = None) -> Execution:
        """Run `target` (`name`, `name@1.2.0`, `name@1`, `name@1.2`) on `input` (a dict)
        and return the Execution. A failed execution raises its error (InputError,
        ProviderError, OutputError, LimitExceeded, BudgetExceeded), whose `log_id` names its
        log row; a function that cannot run at all raises NotFoundError or UserError."""
        return self._call(self.arun(target, input, actor=actor))

    def run_many(self, target: str, inputs: Iterable[Any], *, concurrency: int = 32,
                 actor: str | None = None) -> list[Execution]:
        """Run `target` on every input, at most `concurrency` at once; the Executions in the
        order of the inputs. A failed execution is in the list with its `error`; a function
        that cannot run at all raises, as in `run`."""
        return self._call(self.arun_many(target, inputs, concurrency=concurrency, actor=actor))

    async def arun(self, target: str, input: Any, *, actor: str | None = None) -> Execution:
        """`run` on the running event loop."""
        execution = await self._runner().run(target, input, actor=actor)
        if execution.error is not None:
            raise execution.error
        return execution

    async def arun_many(self, target: str, inputs: Iterable[Any] | AsyncIterable[Any], *,
                        concurrency: int = 32, actor: str | None = None) -> list[Execution]:
        """`run_many` on the running event loop; `inputs` may be an async iterable, read as
        executions start."""
        results: dict[int, Execution] = {}

        def keep(index: int, result: Execution | AiopsError) -> None:
            if isinstance(result, AiopsError):  # it could not run: raised, the batch stops
                raise result
            results[index] = result

        await self._runner().run_many(target, inputs, on_result=keep, concurrency=concurrency,
                                      actor=actor)
        return [results[i] for i in range(len(results))]

    # -- the logs -------------------------------------------------------------------------

    def logs(self, name: str | None = None, *, limit: int = 20, status: str | None = None,
             since: datetime | None = None) -> list[LogRecord]:
        """`aiops logs [NAME]`: the newest executions of `name`, or of every function when
        it is None, newest first (`status`: "ok" or "error"; `since`: a datetime). This
        workspace's log rows are written first, except those of a runner on the event loop
        of the calling thread: there, use `alogs`."""
        self._flush_all_but_mine()
        return commands.logs(self._ws, name, limit=limit, status=status, since=since,
                             store=self._database())

    def log(self, log_id: str) -> LogRecord:
        """`aiops logs --id LOG_ID`: one execution, whole (`Execution.log_id` names it). A
        UsageError when `log_id` is not a log id, a NotFoundError when no row has it."""
        self._flush_all_but_mine()
        return commands.log_by_id(self._ws, log_id, store=self._database())

    async def alogs(self, name: str | None = None, *, limit: int = 20,
                    status: str | None = None, since: datetime | None = None
                    ) -> list[LogRecord]:
        """`logs` on the running event loop, after writing every runner's log rows."""
        store = await self._aflush_all()
        return await asyncio.to_thread(commands.logs, self._ws, name, limit=limit,
                                       status=status, since=since, store=store)

    async def alog(self, log_id: str) -> LogRecord:
        """`log` on the running event loop, after writing every runner's log rows."""
        store = await self._aflush_all()
        return await asyncio.to_thread(commands.log_by_id, self._ws, log_id, store=store)

    def _flush_all_but_mine(self) -> None:
        """Write the log rows of the runners on other threads' loops (this thread's loop, if
        any, cannot be waited for from a sync call)."""
        current = _running_loop()
        for flushed in self._flush_elsewhere(current):
            flushed.result()

    async def _aflush_all(self) -> Store:
        """Write every runner's log rows, this loop's too; the store to read."""
        current = asyncio.get_running_loop()
        runner = self._runners.get(current)
        if runner is not None:
            await runner.flush()
        for flushed in self._flush_elsewhere(current):
            await asyncio.wrap_future(flushed)
        return self._database()

    def _flush_elsewhere(self, current: _Loop | None) -> list[Any]:
        """Start writing the log rows of the runners on loops running in other threads."""
        return [asyncio.run_coroutine_threadsafe(runner.flush(), loop)
                for loop, runner in list(self._runners.items())
                if loop is not current and loop.is_running()]

    # -- the session ----------------------------------------------------------------------

    def close(self) -> None:
        """Close every runner (flush its log rows, settle its budget leases, close its
        provider clients), and stop the private event loop. Idempotent. LogWriteError or
        BudgetSettleError when part of what the executions did could not be recorded (their
        results were delivered). In a coroutine whose loop ran executions, use `await
        aclose()`."""
        current = _running_loop()
        if current is not None and current in self._runners:
            raise UsageError("this event loop has a runner to close: use `await ws.aclose()` "
                             "(or `async with aiops.open(...)`) in a coroutine")
        failures: list[AiopsError] = []
        for loop, runner in self._shut():
            if loop.is_running():
                failures += asyncio.run_coroutine_threadsafe(runner.close(), loop).result()
            elif not loop.is_closed() and current is None:
                failures += loop.run_until_complete(runner.close())
            else:
                _unflushed(loop)
            _report(runner)
        self._release()
        if failures:
            raise failures[0]

    async def aclose(self) -> None:
        """`close` from a coroutine: the runner of this event loop is closed on it."""
        current = asyncio.get_running_loop()
        failures: list[AiopsError] = []
        for loop, runner in self._shut():
            if loop is current:
                failures += await runner.close()
            elif loop.is_running():
                failures += await asyncio.wrap_future(
                    asyncio.run_coroutine_threadsafe(runner.close(), loop))
            else:
                _unflushed(loop)
            _report(runner)
        await asyncio.to_thread(self._release)
        if failures:
            raise failures[0]

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> Workspace:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError(f"this workspace ({self.root}) is closed; open it again with "
                             "aiops.open()")

    def _database(self) -> Store:
        """The project's database, opened on first use, once."""
        with self._lock:
            self._check_open()
            if self._store is None:
                self._store = self._ws.open_store()
            return self._store

    def _runner(self) -> Runner:
        """The runner of the running event loop, opened on first use."""
        loop = asyncio.get_running_loop()
        runner = self._runners.get(loop)
        if runner is not None:
            return runner
        with self._lock:
            self._check_open()
            for ended in [old for old in self._runners if old.is_closed()]:
                del self._runners[ended]
                _unflushed(ended)
            runner = self._runners.get(loop)
            if runner is None:
                runner = self._runners[loop] = commands.open_runner(
                    self._ws, env=self._env, store=self._database(), actor=self._actor,
                    max_wait_s=self._max_wait_s)
            return runner

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the private event loop and wait for it; interrupted (Ctrl-C),
        cancel it (its execution's log row says so)."""
        try:
            loop = self._private_loop()
        except BaseException:
            coroutine.close()
            raise
        done = asyncio.run_coroutine_threadsafe(coroutine, loop)
        try:
            return done.result()
        except BaseException:
            done.cancel()
            raise

    def _private_loop(self) -> _Loop:
        with self._lock:
            self._check_open()
            if self._private is None:
                self._private = _PrivateLoop()
                # An application that never closes it: the thread stops when it is collected.
                self._finalizer = weakref.finalize(self, _abandon, self._private,
                                                   self._runners)
            if threading.current_thread() is self._private.thread:
                raise UsageError("a sync method of aiops.Workspace was called from inside "
                                 "one of its own runs (an input iterator?); use the async "
                                 "methods there")
            return self._private.loop

    def _shut(self) -> list[tuple[_Loop, Runner]]:
        """Mark closed; the runners to close."""
        with self._lock:
            self._closed = True
            runners = list(self._runners.items())
            self._runners.clear()
            if self._finalizer is not None:
                self._finalizer.detach()
        return runners

    def _release(self) -> None:
        """Stop the private loop's thread. (The database engine stays: aiops.store keeps one
        per URL for the process, and other workspaces may use it.)"""
        with self._lock:
            private, self._private = self._private, None
            self._store = None
        if private is not None:
            private.stop()


class _PrivateLoop:
    """An event loop running in a daemon thread: where the sync methods run the runner."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, name="aiops-runner", daemon=True)
        self.winding_down: asyncio.Future[None] | None = None
        self.thread.start()

    def _serve(self) -> None:
        try:
            self.loop.run_forever()
            # As asyncio.run does: database calls still running in the loop's threads end
            # before their connections' pool can be disposed of.
            with contextlib.suppress(RuntimeError):  # at exit, no new thread may start
                self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self.thread:
            self.thread.join()


def _abandon(private: _PrivateLoop, runners: dict[_Loop, Runner]) -> None:
    """A workspace collected, or the process ending, without close(): close the private
    loop's runner as far as the interpreter still allows (at exit, the thread pools that
    write log rows may refuse work), then stop the loop."""
    runner = runners.pop(private.loop, None)

    async def wind_down() -> None:
        try:
            if runner is not None:
                for failure in await runner.close():
                    _log.warning("aiops: closing an unclosed workspace: %s", failure)
        except Exception as exc:
            _log.warning("aiops: closing an unclosed workspace failed: %s", exc)
        finally:
            private.loop.stop()

    if threading.current_thread() is private.thread:  # collected by its own loop's thread
        private.winding_down = private.loop.create_task(wind_down())
        return
    try:
        asyncio.run_coroutine_threadsafe(wind_down(), private.loop)
    except RuntimeError:  # the loop is closed already
        return
    private.thread.join(timeout=30)


def _unflushed(loop: _Loop) -> None:
    warnings.warn(
        "an aiops runner's event loop "
        + ("ended" if loop.is_closed() else "is not running")
        + " before `await ws.aclose()` ran in it: log rows still queued there are lost; "
        "use `async with aiops.open(...)`, or `await ws.aclose()` in that loop",
        ResourceWarning, stacklevel=3)


def _report(runner: Runner) -> None:
    for warning in runner.log_warnings():  # rows stored without their values
        _log.warning("aiops: %s", warning)


def _running_loop() -> _Loop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
