"""The runner's verbs: run once, run many, read the logs, serve the mock provider.

A run's session is a `Runner` (`open_runner`): the project's providers and database, opened
without reading a function file. `run` and `run_many` open one (or use the one given), run,
and close it, every close step tried: what could not be recorded is returned next to the
results, never instead of them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiops.access import Caller
from aiops.actors import os_user
from aiops.errors import AiopsError, NotFoundError, UsageError, UserError
from aiops.limits import RateLimiter
from aiops.records import LogRecord
from aiops.runner import Execution, Runner, RunnerStore
from aiops.workspace import Workspace

if TYPE_CHECKING:
    from aiops.store import Store


def open_runner(ws: Workspace, *, env: Mapping[str, str] | None = None,
                store: RunnerStore | None = None, actor: str | None = None,
                max_wait_s: float | None = None) -> Runner:
    """A Runner for the project: its providers.yaml and its database (the function files are
    not read). `actor`: who runs (its log rows' user; default: the OS user). `max_wait_s`
    bounds how long a call waits for a rate limit or a concurrency slot (default: as long as
    it takes)."""
    providers = ws.providers  # before the database: a project without providers opens none
    env = os.environ if env is None else env
    return Runner(store=store or ws.open_store(), providers=providers, env=env,
                  actor=actor or os_user(),
                  limiter=RateLimiter.from_env(env, max_wait_s=max_wait_s))


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """One run: the execution (None when it never ran, such as an unknown function, or was
    stopped before it ended), its error (or what kept it from running), and what closing
    the runner could not record (log rows, what the call cost: LogWriteError,
    BudgetSettleError)."""

    execution: Execution | None
    error: AiopsError | None
    unrecorded: tuple[AiopsError, ...] = ()
    log_warnings: tuple[str, ...] = ()  # rows stored without their values
    stopped: bool = False  # `stop` was set: the call was cancelled (its log row says so)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.stopped


async def run(ws: Workspace, target: str, value: Any, *, actor: str | None = None,
              max_wait_s: float | None = None, stop: asyncio.Event | None = None,
              runner: Runner | None = None, caller: Caller | None = None) -> RunResult:
    """`aiops run NAME --input ...`: run `target` (`name`, `name@1.2.0`, `name@1`) on `value`
    once, then close the runner. Setting `stop` cancels the call: its log row says so, and
    what it reserved is given back. Cancelled itself, it cancels the call, closes the runner
    and lets the cancellation through. `caller`: the API caller whose quotas the run is
    admitted against (`aiops.commands.quotas`); a refusal is the result's QuotaExceeded."""
    runner = runner or open_runner(ws, actor=actor, max_wait_s=max_wait_s)
    call = asyncio.ensure_future(_admitted(runner, target, value, actor, caller))
    execution: Execution | None = None
    error: AiopsError | None = None
    stopped = False
    try:
        if stop is not None:
            await _first(call, stop)
            if not call.done():
                call.cancel()
        execution = await call
        error = execution.error
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():  # the caller was cancelled, not the call
            call.cancel()
            await asyncio.wait({call})
            await runner.close()
            raise
        stopped = True
    except AiopsError as exc:  # before it ran (an unknown function): no row
        error = exc
    unrecorded = await runner.close()  # every step, whatever failed
    return RunResult(execution=execution, error=error, unrecorded=tuple(unrecorded),
                     log_warnings=tuple(runner.log_warnings()), stopped=stopped)


async def _admitted(runner: Runner, target: str, value: Any, actor: str | None,
                    caller: Caller | None) -> Execution:
    from aiops.commands.quotas import admit

    quota = await admit(runner, caller)
    return await runner.run(target, value, actor=actor, quota=quota)


async def _first(call: asyncio.Future[Any], stop: asyncio.Event) -> None:
    """Until `call` is done or `stop` is set."""
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({call, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()


@dataclass(frozen=True, kw_only=True)
class RunManyResult:
    """What closing the runner after a batch could not record, and the rows stored without
    their values; each input's result went to `on_result`."""

    unrecorded: tuple[AiopsError, ...] = ()
    log_warnings: tuple[str, ...] = ()


async def run_many(ws: Workspace, target: str, inputs: Iterable[Any] | AsyncIterable[Any], *,
                   on_result: Callable[[int, Execution | AiopsError], object],
                   concurrency: int = 32, actor: str | None = None,
                   max_wait_s: float | None = None,
                   runner: Runner | None = None) -> RunManyResult:
    """Run `target` on every input, at most `concurrency` at once, handing each result to
    `on_result(index, result)` as it is known (`Runner.run_many`), then close the runner."""
    runner = runner or open_runner(ws, actor=actor, max_wait_s=max_wait_s)
    try:
        await runner.run_many(target, inputs, on_result=on_result, concurrency=concurrency)
    finally:
        unrecorded = await runner.close()
    return RunManyResult(unrecorded=tuple(unrecorded), log_warnings=tuple(runner.log_warnings()))


def logs(ws: Workspace, name: str | None = None, *, limit: int = 20,
         status: str | None = None, since: datetime | None = None,
         store: Store | None = None) -> list[LogRecord]:
    """`aiops logs [NAME]`: the newest executions of `name`, or of every function, newest
    first. An unknown function is a NotFoundError (with "did you mean"); an archived one's
    logs stay readable."""
    store = store or ws.open_store()
    if name is not None:
        try:
            store.resolve(name)
        except NotFoundError:
            raise
        except UserError:
            pass  # archived: it does not run, but its logs stay readable
    return store.recent_logs(name, limit, status=status, since=since)


def log_by_id(ws: Workspace, log_id: str, *, store: Store | None = None) -> LogRecord:
    """`aiops logs --id LOG_ID`: one execution, whole (its input, output, error, and each
    attempt in `metadata["attempts"]`). A UsageError when `log_id` is not a log id (a UUID),
    a NotFoundError when no execution has it."""
    import uuid

    try:
        canonical = str(uuid.UUID(log_id))
    except ValueError:
        raise UsageError(f"--id {log_id!r} is not a log id: a UUID, as `aiops logs` lists them "
                         "and errors name them (log ...)") from None
    record = (store or ws.open_store()).log(canonical)
    if record is None:
        raise NotFoundError(f"no execution has the log id {canonical} in this project's "
                            "database; `aiops logs` lists the recent ones")
    return record


def serve_mock(*, host: str, port: int, latency_ms: float = 0.0, fault_rate: float = 0.0,
               responses: Path | None = None, retry_after_s: float = 1.0, seed: int = 0,
               models: tuple[str, ...] = (), ready: Callable[[str], None] | None = None) -> None:
    """`aiops mock-provider`: serve the mock of the OpenAI, Groq and custom-backend APIs until
    interrupted; `ready(url)` once it listens. A responses file that does not load, or an
    address it cannot listen on, is a UsageError."""
    import yaml

    from aiops.providers.mock_server import MockConfig, load_responses, serve_forever

    try:
        entries = load_responses(responses) if responses else []
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise UsageError(f"--responses: {exc}") from None
    config = MockConfig(latency_ms=latency_ms, fault_rate=fault_rate, responses=entries,
                        seed=seed, retry_after_s=retry_after_s, models=models)
    try:
        asyncio.run(serve_forever(config, host, port,
                                  None if ready is None else lambda server: ready(server.url)))
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host name IDNA cannot encode
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise UsageError(f"cannot listen on {host}:{port}: {reason}") from None
