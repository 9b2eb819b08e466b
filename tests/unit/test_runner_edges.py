"""Edge paths of the runner found in review: non-finite numbers, cancellation, log-writer
retries. Each test names the defect it pins."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pytest

from aiops.batch import LogWriter
from aiops.errors import InputError, OutputError
from aiops.providers import Completion, CompletionRequest, Usage
from aiops.store import LogRow
from tests.fixtures_providers import until_still
from tests.unit.test_runner_core import Harness, spec


def strict_json(value: Any) -> str:
    return json.dumps(value, allow_nan=False)  # what PostgreSQL's json columns accept


@pytest.mark.parametrize("raw", ['{"who": "x", "extra": NaN}', '{"who": "x", "n": Infinity}'])
def test_non_finite_numbers_in_the_input_are_an_input_error(raw: str) -> None:
    """json.loads accepts NaN and Infinity; a log row holding one fails the whole batch insert
    on PostgreSQL, so the input is refused and the logged input stays strict JSON."""
    h = Harness(spec(input_schema={"type": "object", "properties": {
        "who": {"type": "string"}, "tone": {"type": "string"}, "extra": {}, "n": {}}}),
        {"p1": ['{"answer": "a"}']})
    ex = h.run(json.loads(raw))
    assert isinstance(ex.error, InputError) and "NaN" in ex.error.message
    assert h.providers["p1"].requests == []
    (row,) = h.store.logs
    strict_json(row.input)


def test_non_finite_numbers_in_the_output_are_invalid_output() -> None:
    h = Harness(spec(output_schema={"type": "object", "properties": {"n": {}}},
                     fallbacks=[]),
                {"p1": ['{"n": NaN}', '{"n": Infinity}']})
    ex = h.run({"who": "x"})
    assert isinstance(ex.error, OutputError)
    (row,) = h.store.logs
    strict_json(row.output)
    strict_json(row.metadata)


class Blocking:
    """A provider whose call never returns (until cancelled)."""

    name = "p1"

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def complete(self, request: CompletionRequest) -> Completion:
        self.started.set()
        await asyncio.sleep(3600)
        return Completion(text="{}", usage=Usage())

    async def aclose(self) -> None:
        pass


def test_a_cancelled_execution_still_logs_its_row_and_releases_its_budget() -> None:
    """Ctrl-C during a batch cancels the in-flight executions: each keeps its log row (the
    call may have cost money) and its budget reservation is released."""
    h = Harness(spec(), {}, limits={"daily_calls": 10, "daily_budget_usd": 1.0,
                                    "max_input_bytes": 65536})
    blocking = Blocking()
    h.runner._make = lambda name, pspec, env: blocking

    async def go() -> None:
        task = asyncio.ensure_future(h.runner.run("greet", {"who": "x"}))
        await blocking.started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await h.runner.aclose()

    asyncio.run(go())
    (row,) = h.store.logs
    assert row.status == "error" and "cancelled" in row.error["message"]
    assert (row.error["type"], row.error["exit_code"]) == ("Cancelled", 130)  # not 1
    (usage,) = h.store.usage.values()
    assert usage["calls_reserved"] == 0 and usage["usd_reserved"] == pytest.approx(0)


def test_cancellation_during_the_budget_lease_releases_it() -> None:
    """The lease is taken in a thread that completes even when the caller is cancelled; what
    it took is given back on close."""
    h = Harness(spec(), {"p1": ['{"answer": "a"}']},
                limits={"daily_calls": 10, "max_input_bytes": 65536})
    entered, release = threading.Event(), threading.Event()
    sync = h.store.sync_budget_lease

    def slow_sync(*args: Any) -> Any:
        entered.set()
        release.wait(5)
        return sync(*args)

    h.store.sync_budget_lease = slow_sync  # type: ignore[method-assign]

    async def go() -> None:
        task = asyncio.ensure_future(h.runner.run("greet", {"who": "x"}))
        while not entered.is_set():
            await asyncio.sleep(0.001)
        task.cancel()
        await asyncio.sleep(0.01)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        await h.runner.aclose()

    asyncio.run(go())
    (usage,) = h.store.usage.values()
    assert usage["calls_reserved"] == 0 and usage["usd_reserved"] == pytest.approx(0)
    assert usage["calls_used"] == 0  # no call was made
    assert len(h.store.logs) == 1


def _row(i: int) -> LogRow:
    return LogRow(id=f"00000000-0000-0000-0000-{i:012d}", function_id="f", version="1.0.0",
                  version_id=None,
                  status="ok", input={}, output=None, error=None, execution_time=1.0,
                  actor=None, metadata={}, provider=None, cost_usd=0.0, input_tokens=0,
                  output_tokens=0)


def calls_while_the_writer_is_stuck(h: Harness, inputs: Iterable[Any],
                                    **bounds: int) -> tuple[int, list[LogRow]]:
    """`run_many` over `inputs` (concurrency 4) with a LogWriter whose first write is stuck:
    (how many calls started before backpressure held them, the rows written once it is
    released: one per input)."""
    gate = threading.Event()
    written: list[LogRow] = []

    def slow_sink(rows: list[LogRow]) -> None:
        gate.wait(10)
        written.extend(rows)

    h.runner._logs = LogWriter(slow_sink, **bounds)

    async def go() -> int:
        done: list[int] = []
        work = asyncio.ensure_future(h.runner.run_many(
            "greet", inputs, concurrency=4, on_result=lambda i, r: done.append(i)))
        started = await until_still(lambda: len(h.providers["p1"].requests), 5)
        gate.set()
        await work
        await h.runner.aclose()
        assert len(done) == len(written)
        return started

    started = asyncio.run(go())
    assert len({r.id for r in written}) == len(written)
    return started, written


def test_executions_wait_while_the_log_writer_is_behind() -> None:
    """A database slower than the executions used to let rows pile up without bound; now an
    execution waits for room before it starts (backpressure), and nothing is lost."""
    h = Harness(spec(), {"p1": ['{"answer": "a"}'] * 200})
    started, written = calls_while_the_writer_is_stuck(
        h, [{"who": str(i)} for i in range(200)], max_batch=5, max_pending=10)
    # the first group is stuck in the sink: 10 queued, 5 in the write, 4 in flight at most
    assert started <= 10 + 5 + 4 and len(written) == 200


def test_executions_wait_while_the_log_writer_holds_too_many_bytes() -> None:
    """The queue was bounded in rows only: 2,000 rows of 2 MB inputs are 4 GB (a batch of
    4 MB lines died at 5.6 GB). With 2 MiB inputs and the writer stuck, executions now stop
    at MAX_PENDING_BYTES (64 MiB) queued: at most 7 rows in the stuck write (MAX_BATCH_BYTES,
    16 MiB), 32 queued, 4 in flight."""
    h = Harness(spec(limits={"max_input_bytes": 4 << 20}), {"p1": ['{"answer": "a"}'] * 120})
    started, written = calls_while_the_writer_is_stuck(
        h, itertools.repeat({"who": "x" * (2 << 20)}, 120))
    assert started <= 7 + 32 + 4 and len(written) == 120


def test_a_group_insert_is_bounded_in_bytes() -> None:
    """A group of 1,000 rows of 4 MB inputs was serialised whole (4 GB); now a group stops at
    MAX_BATCH_BYTES (16 MiB): 15 rows of 1 MiB."""
    groups: list[int] = []

    def sink(rows: list[LogRow]) -> None:
        groups.append(len(rows))

    async def go() -> None:
        writer = LogWriter(sink)
        for i in range(40):
            writer.submit(replace(_row(i), input={"who": "x" * (1 << 20)}))
        await writer.flush()

    asyncio.run(go())
    assert groups == [15, 15, 10]


def test_log_writer_reports_rows_it_could_not_write() -> None:
    def sink(rows: list[LogRow]) -> None:
        raise OSError("down")

    async def go() -> None:
        writer = LogWriter(sink)
        writer.submit(_row(1))
        await writer.flush()

    with pytest.raises(Exception, match="1 log row"):
        asyncio.run(go())





def test_invalid_output_error_does_not_echo_pii_the_output_filter_would_redact() -> None:
    """The validation message quotes the output ("'jane@x.com' is too long"); with an output
    `pii_redact` filter that text must not reach the error, the attempts or the log row."""
    h = Harness(spec(output_schema={"type": "object", "properties": {
        "answer": {"type": "string", "maxLength": 3}}}, fallbacks=[],
        filters={"output": [{"pii_redact": True}]}),
        {"p1": ['{"answer": "mail jane@x.com"}'] * 2})
    ex = h.run({"who": "x"})
    assert isinstance(ex.error, OutputError) and "[EMAIL]" in ex.error.message
    (row,) = h.store.logs
    assert "jane@x.com" not in json.dumps(row.error) + json.dumps(row.metadata)
    # the repair re-ask quotes the provider's own answer back to it: that is not a leak
    assert "jane@x.com" in h.providers["p1"].requests[1].messages[-2]["content"]


def test_a_cancelled_resolution_does_not_fail_the_callers_waiting_on_it() -> None:
    """Two requests resolve the same function at once; the first is cancelled (a client that
    disconnects): the second, which shared its resolution, must still run."""
    h = Harness(spec(), {"p1": ['{"answer": "a"}']})
    entered, release = threading.Event(), threading.Event()
    resolve = h.store.resolve

    def slow_resolve(name: str, selector: str | None = None) -> Any:
        entered.set()
        release.wait(5)
        return resolve(name, selector)

    h.store.resolve = slow_resolve  # type: ignore[method-assign]

    async def go() -> Any:
        first = asyncio.ensure_future(h.runner.run("greet", {"who": "x"}))
        while not entered.is_set():
            await asyncio.sleep(0.001)
        second = asyncio.ensure_future(h.runner.run("greet", {"who": "y"}))
        await asyncio.sleep(0.01)
        first.cancel()
        await asyncio.sleep(0.01)
        release.set()
        try:
            return await second
        finally:
            await h.runner.aclose()

    ex = asyncio.run(go())
    assert ex.ok


def test_a_key_read_from_the_default_variable_is_scrubbed_too() -> None:
    """`api_key_env` may be left out (OPENAI_API_KEY / GROQ_API_KEY are then read): that key
    must be scrubbed from errors like the named ones."""
    from aiops.runner import Runner
    from aiops.spec import ProvidersFile
    from tests.unit.test_runner_core import Scripted

    providers = ProvidersFile.model_validate({"providers": {
        "p1": {"type": "openai", "models": {"m1": {"input_per_mtok": 1, "output_per_mtok": 1}}},
        "p2": {"type": "groq", "models": {"m2": {"input_per_mtok": 1, "output_per_mtok": 1}}}}})
    h = Harness(spec(), {})
    scripted = {"p1": Scripted("p1", [RuntimeError("sdk said sk-default-openai-key-1")]),
                "p2": Scripted("p2", [RuntimeError("sdk said gsk-default-groq-key-2")])}
    runner = Runner(store=h.store, providers=providers,
                    env={"OPENAI_API_KEY": "sk-default-openai-key-1",
                         "GROQ_API_KEY": "gsk-default-groq-key-2"},
                    make=lambda name, pspec, env: scripted[name])

    async def go() -> Any:
        try:
            return await runner.run("greet", {"who": "x"})
        finally:
            await runner.aclose()

    ex = asyncio.run(go())
    assert ex.error is not None and "sk-default-openai-key-1" not in ex.error.message
    assert "default" not in json.dumps(h.store.logs[0].error)


def test_aiops_run_resolves_once_so_a_slow_call_cannot_fail_after_it_succeeded(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`aiops run NAME` resolved again after the call (for the deprecation warning): past the
    5 s cache of a floating name, a database gone meanwhile turned a success into an error."""
    from aiops import runner as runner_module
    from aiops.cli.run import _single
    from aiops.errors import RuntimeFailure

    monkeypatch.setattr(runner_module, "FLOATING_TTL_S", 0.0)
    h = Harness(spec(), {"p1": ['{"answer": "a"}']})
    resolve = h.store.resolve

    def once(name: str, selector: str | None = None) -> Any:
        if h.store.resolves >= 1:
            raise RuntimeFailure("database down")
        return resolve(name, selector)

    h.store.resolve = once  # type: ignore[method-assign]
    assert asyncio.run(_single(None, h.runner, "greet", {"who": "x"})) == 0
    assert json.loads(capsys.readouterr().out) == {"answer": "a"}


def test_aiops_run_warns_about_a_deprecated_version(capsys: pytest.CaptureFixture[str]) -> None:
    from aiops.cli.run import _single

    h = Harness(spec(), {"p1": ['{"answer": "a"}']}, status="deprecated")
    assert asyncio.run(_single(None, h.runner, "greet", {"who": "x"})) == 0
    assert "Warning: greet 1.0.0 is deprecated" in capsys.readouterr().err
