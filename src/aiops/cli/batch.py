"""`aiops run NAME --input-file in.jsonl [--output out.jsonl]`: a batch, streamed.

- **Memory does not grow with the input.** Lines are read only as executions start, and at
  most `window_for(concurrency)` lines ahead of the oldest line not yet written (`_Ordered`
  writes in input order; a slow line holds reading back instead of letting the lines after
  it pile up). Each result is written as soon as the lines before it are, and dropped. The
  summary's p50/p95 come from a fixed-bucket histogram (within 1%).
- **The output does not depend on the log.** Every finished result is written and the output
  flushed and closed before the log rows are flushed; rows that could not be written are
  reported after (`LogWriteError`, exit 8 when no line failed).
- **Signals.** SIGINT and SIGTERM stop reading new lines; the executions in flight get
  `DRAIN_S` to finish, then are cancelled (a second signal cancels them at once, a third
  exits at once). Either way each keeps its log row and its output line, and releases what
  it reserved; the exit code is 128 + the signal's number (130, 143).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import sys
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import click

from aiops.cli.run import MAX_INPUT_TEXT, decode_input
from aiops.errors import AiopsError, InputError, LogWriteError, UsageError

DRAIN_S = 5.0  # how long executions in flight may finish after SIGINT / SIGTERM


def window_for(concurrency: int) -> int:
    """How many lines reading may run ahead of the oldest line not yet written."""
    return max(1024, 4 * concurrency)


async def close_runner(runner: Any) -> LogWriteError | None:
    """Flush and close; a log write failure is returned (to report after the results)."""
    try:
        await runner.aclose()
    except LogWriteError as exc:
        return exc
    return None


def warn_stored_alone(runner: Any) -> None:
    for warning in runner.log_warnings():
        click.echo(f"Warning: {warning}", err=True)


def check_output(input_file: Path, output: Path | None) -> None:
    """Refuse an --output that is the input (a path, a symlink or a hard link to it): opening
    it for writing would empty the input before a line is read."""
    if output is None:
        return
    try:
        same = output.exists() and os.path.samefile(output, input_file)
    except OSError:
        same = False
    if same:
        raise UsageError(f"--output {output} is the input file {input_file} (the same file on "
                         "disk): writing to it would empty it; choose another path")


class _Ordered:
    """Writes entries in input order as soon as the lines before them are written, and admits
    a line only while fewer than `window` lines are read and not yet written."""

    def __init__(self, sink: TextIO, window: int) -> None:
        self.sink = sink
        self.window = window
        self.unwritten: deque[int] = deque()  # lines admitted and not yet written, in order
        self.ready: dict[int, dict[str, Any]] = {}
        self._waiters: list[asyncio.Future[None]] = []

    async def admit(self, line: int, stopping: asyncio.Event) -> bool:
        """Wait for room for `line`; False when stopping instead."""
        while len(self.unwritten) >= self.window and not stopping.is_set():
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        if stopping.is_set():
            return False
        self.unwritten.append(line)
        return True

    def wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def put(self, line: int, entry: dict[str, Any]) -> None:
        self.ready[line] = entry
        if self.unwritten[0] != line:
            return
        while self.unwritten and self.unwritten[0] in self.ready:
            self._write(self.ready.pop(self.unwritten.popleft()))
        self.wake()

    def close_gaps(self) -> None:
        """At the end: a line admitted whose result never came (an interrupted batch
        cancelled it before it ran) gets an entry saying so; the lines after it are written."""
        while self.unwritten:
            line = self.unwritten.popleft()
            self._write(self.ready.pop(line) if line in self.ready else {
                "line": line, "output": None, "error": {
                    "type": "NotRun", "message": "the batch was interrupted before this line "
                    "ran"}, "log_id": None})

    def _write(self, entry: dict[str, Any]) -> None:
        try:
            self.sink.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
        except UnicodeEncodeError:  # a lone surrogate (quoted from an input): as an escape
            self.sink.write(json.dumps(entry, default=str) + "\n")


class _Latencies:
    """p50/p95 in constant memory: a value is counted in the bucket [R^k, R^(k+1)) and read
    back as the bucket's geometric middle, within 1% of the value at that rank (R = 1.02;
    about 1,200 buckets between 1 µs and 3 hours)."""

    RATIO = 1.02
    FLOOR_MS = 0.001

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.n = 0
        self._log_ratio = math.log(self.RATIO)

    def add(self, ms: float) -> None:
        k = math.floor(math.log(max(ms, self.FLOOR_MS)) / self._log_ratio)
        self.counts[k] = self.counts.get(k, 0) + 1
        self.n += 1

    def quantile(self, q: float) -> float | None:
        if not self.n:
            return None
        rank = min(self.n - 1, int(q * self.n))
        seen = 0
        for k in sorted(self.counts):
            seen += self.counts[k]
            if seen > rank:
                return float(self.RATIO ** (k + 0.5))
        raise AssertionError("unreachable")  # pragma: no cover


class _Summary:
    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.tokens = 0
        self.cost = 0.0
        self.latencies = _Latencies()
        self.first_code = 0  # the exit code of the first failed line, in file order
        self.first_line: int | None = None
        self.errors: dict[str, int] = {}

    def add(self, execution: Any, error_type: str | None, code: int, *, line: int) -> None:
        if execution is not None:
            self.tokens += execution.input_tokens + execution.output_tokens
            self.cost += execution.cost_usd
            self.latencies.add(execution.latency_ms)
        if error_type is None:
            self.ok += 1
            return
        self.failed += 1
        self.errors[error_type] = self.errors.get(error_type, 0) + 1
        if self.first_line is None or line < self.first_line:  # results arrive out of order
            self.first_line, self.first_code = line, code

    def render(self) -> str:
        def pct(q: float) -> str:
            value = self.latencies.quantile(q)
            return "-" if value is None else f"{value:.0f} ms"

        text = (f"ok {self.ok}, failed {self.failed}, tokens {self.tokens}, "
                f"cost ${self.cost:.6f}, p50 {pct(0.5)}, p95 {pct(0.95)}")
        if self.errors:
            text += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(self.errors.items())) + ")"
        return text


def _entry(line: int, result: Any) -> tuple[dict[str, Any], Any, str | None, int]:
    """An output line for a result: (entry, the execution or None, error type, exit code)."""
    if isinstance(result, AiopsError):
        return ({"line": line, "output": None, "error": {
            "type": type(result).__name__, "message": result.message},
            "log_id": result.log_id}, None, type(result).__name__, result.exit_code)
    error = None
    if result.error is not None:
        error = {"type": type(result.error).__name__, "message": result.error.message}
    return ({"line": line, "output": result.output, "error": error, "log_id": result.log_id},
            result, error["type"] if error is not None else None,
            result.error.exit_code if result.error else 0)


class _Signals:
    """SIGINT and SIGTERM while a batch runs: the first sets `stop`, the second `cancel`, a
    third restores the default handlers and re-raises (exit at once)."""

    def __init__(self, on_first: Callable[[int], None]) -> None:
        self.stop = asyncio.Event()
        self.cancel = asyncio.Event()
        self.received: int | None = None
        self._count = 0
        self._on_first = on_first
        self._installed: list[int] = []

    def __enter__(self) -> _Signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._handle, sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                continue
            self._installed.append(sig)
        return self

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed.clear()

    def _handle(self, sig: int) -> None:
        self._count += 1
        if self._count == 1:
            self.received = sig
            self.stop.set()
            self._on_first(sig)
        elif self._count == 2:
            self.cancel.set()
        else:
            self.__exit__()
            signal.raise_signal(sig)


async def _until(task: asyncio.Task[None], event: asyncio.Event,
                 timeout: float | None = None) -> None:
    """Until `task` ends, `event` is set or `timeout` passes."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({task, waiter}, timeout=timeout,
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()


class _Lines:
    """The inputs of a JSON-lines file, read as the batch takes them: a line that is not JSON
    gets its error entry at once; `line_of` maps a position in the batch to its line number
    while it runs; `next_line` is the first line not read."""

    def __init__(self, path: Path, out: _Ordered, stop: asyncio.Event,
                 finished: Callable[..., None]) -> None:
        self.path = path
        self.out = out
        self.stop = stop
        self.finished = finished
        self.line_of: dict[int, int] = {}
        self.next_line = 1

    async def read(self) -> AsyncGenerator[Any, None]:
        position = 0
        with self.path.open("rb") as handle:  # decoded line by line: one bad line, one error
            for n, raw in enumerate(raw_lines(handle), start=1):
                if raw.strip():
                    if not await self.out.admit(n, self.stop):
                        return
                    try:
                        value = decode_input(raw, f"line {n}")
                    except InputError as exc:
                        self.finished(n, {"line": n, "output": None, "error": {
                            "type": "InputError", "message": exc.message}, "log_id": None},
                            None, "InputError", InputError.exit_code)
                    else:
                        self.line_of[position] = n
                        position += 1
                        self.next_line = n + 1
                        yield value
                        continue
                self.next_line = n + 1


def raw_lines(handle: BinaryIO) -> Iterator[bytes]:
    """The lines of a file, each read within MAX_INPUT_TEXT: a longer one is cut there (and
    refused by `decode_input`), and the rest of it is skipped without being kept in memory."""
    while raw := handle.readline(MAX_INPUT_TEXT + 1):
        if len(raw) > MAX_INPUT_TEXT and not raw.endswith(b"\n"):
            while (rest := handle.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
        yield raw


async def run_batch(runner: Any, target: str, input_file: Path, output: Path | None,
                    concurrency: int) -> int:
    """Run a JSON-lines file; the exit code (see the module docstring)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    if not input_file.is_file():
        raise UsageError(f"--input-file {input_file} does not exist")
    check_output(input_file, output)
    with input_file.open("rb") as handle:
        total = sum(1 for line in raw_lines(handle) if line.strip())
    try:
        sink: TextIO = output.open("w", encoding="utf-8") if output else sys.stdout
    except OSError as exc:
        raise UsageError(f"cannot write --output {output}: {exc.strerror}") from None
    summary = _Summary()
    out = _Ordered(sink, window_for(concurrency))
    console = Console(stderr=True)

    def stopping(sig: int) -> None:
        out.wake()
        console.print(f"{signal.Signals(sig).name}: no new lines; waiting up to {DRAIN_S:.0f} s "
                      "for the executions in flight (send it again to cancel them now)",
                      highlight=False)

    log_error: LogWriteError | None = None
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress, \
            _Signals(stopping) as signals:
        task = progress.add_task(target, total=total)

        def finished(line: int, entry: dict[str, Any], execution: Any, error: str | None,
                     code: int) -> None:
            summary.add(execution, error, code, line=line)
            out.put(line, entry)
            progress.advance(task)

        lines = _Lines(input_file, out, signals.stop, finished)

        def on_result(position: int, result: Any) -> None:
            n = lines.line_of.pop(position)
            finished(n, *_entry(n, result))

        reader = lines.read()
        work = asyncio.ensure_future(runner.run_many(
            target, reader, concurrency=concurrency, on_result=on_result))
        try:
            await _until(work, signals.stop)
            if not work.done():  # stopping: no new lines; the ones in flight may finish
                await _until(work, signals.cancel, DRAIN_S)
        finally:
            if not work.done():
                work.cancel()
            await asyncio.wait({work})
            await reader.aclose()
            try:
                out.close_gaps()  # lines taken but cancelled before they ran
                if output:
                    sink.close()
                else:
                    sink.flush()
            finally:
                log_error = await close_runner(runner)
        if not work.cancelled():
            work.result()  # a failure of the batch itself (not of a line) is raised
    click.echo(summary.render(), err=True)
    warn_stored_alone(runner)
    if log_error is not None:
        click.echo(f"Error: {log_error}", err=True)
    if signals.received is not None:
        name = signal.Signals(signals.received).name
        click.echo(f"Interrupted by {name}: lines from {lines.next_line} on were not run",
                   err=True)
        return 128 + signals.received
    if log_error is not None and summary.first_code == 0:
        return log_error.exit_code
    return summary.first_code
