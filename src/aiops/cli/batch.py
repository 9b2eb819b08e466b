"""`aiops run NAME --input-file in.jsonl [--output out.jsonl]`: a batch, streamed.

- **Memory does not grow with the input.** Lines are read only as executions start, and at
  most `window_for(concurrency)` lines, or `MAX_WAITING_BYTES` of results, ahead of the
  oldest line not yet written (`_Ordered` writes in input order; a slow line holds reading
  back instead of letting the lines after it pile up). Each result is written as soon as the
  lines before it are, and dropped. The log rows are bounded the same way, in rows and bytes
  (`aiops.batch.LogWriter`). The summary's p50/p95 come from a fixed-bucket histogram
  (within 1%).
- **The output does not depend on the log.** Every finished result is written and the output
  flushed and closed before the log rows are flushed; rows that could not be written are
  reported after (`LogWriteError`), and so is spending that could not be settled.
- **An output that cannot be written** (disk full; stdout closed by its reader) stops the
  batch like a signal: no new lines, the executions in flight finish and keep their rows.
- **Signals.** SIGINT and SIGTERM stop reading new lines; the executions in flight get
  `DRAIN_S` to finish, then are cancelled (a second signal cancels them at once, a third
  exits at once). Either way each keeps its log row and its output line, and releases what
  it reserved.
- **The end** (`aiops.cli.ending`): the summary, then every failure on its own line; the
  exit code is the most serious (a signal, the output, the first failed line, then 8).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from aiops.cli import drop_stdout, json_text, say, say_error, write_all, write_failed
from aiops.cli.ending import Signals, exit_code, report
from aiops.cli.run import MAX_INPUT_TEXT, decode_input
from aiops.errors import AiopsError, InputError, UsageError

DRAIN_S = 5.0  # how long executions in flight may finish after SIGINT / SIGTERM
MAX_WAITING_BYTES = 64 << 20  # results finished, waiting for a slower line before them


def window_for(concurrency: int) -> int:
    """How many lines reading may run ahead of the oldest line not yet written."""
    return max(1024, 4 * concurrency)


def check_output(input_file: Path, output: Path | None) -> None:
    """Refuse an output that is the input: an --output naming it (a path, a symlink or a hard
    link to it), which opening for writing would empty before a line is read, and a stdout
    that is the input file (`>> in.jsonl`), which would read its own results back as input,
    without end."""
    try:
        if output is not None:
            same = output.exists() and os.path.samefile(output, input_file)
        else:
            same = os.path.samestat(os.fstat(sys.stdout.fileno()), os.stat(input_file))
    except (OSError, ValueError):  # ValueError: a stdout that is no file (a test's capture)
        same = False
    if same and output is not None:
        raise UsageError(f"--output {output} is the input file {input_file} (the same file on "
                         "disk): writing to it would empty it; choose another path")
    if same:
        raise UsageError(f"stdout is the input file {input_file} (`>> {input_file}`?): the "
                         "results would be read back as input, without end; write them "
                         "elsewhere (--output FILE, or another file)")


class _Ordered:
    """Writes entries in input order as soon as the lines before them are written, and admits
    a line only while fewer than `window` lines are read and not yet written, and fewer than
    `max_bytes` of results wait for a line before them. The first write that fails is kept
    in `error` (nothing more is written) and reported to `on_error`."""

    def __init__(self, sink: TextIO, window: int, max_bytes: int,
                 on_error: Callable[[], None]) -> None:
        self.sink = sink
        self.window = window
        self.max_bytes = max_bytes
        self.on_error = on_error
        self.error: OSError | None = None
        self.unwritten: deque[int] = deque()  # lines admitted and not yet written, in order
        self.ready: dict[int, str] = {}  # finished, as the text to write
        self.waiting_bytes = 0  # the size of `ready`
        self._waiters: list[asyncio.Future[None]] = []

    async def admit(self, line: int, stopping: asyncio.Event) -> bool:
        """Wait for room for `line`; False when stopping instead."""
        while (len(self.unwritten) >= self.window or self.waiting_bytes >= self.max_bytes) \
                and not stopping.is_set():
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
        text = json_text(entry) + "\n"  # serialised once: what waits is counted in bytes
        if self.unwritten[0] != line:
            self.ready[line] = text
            self.waiting_bytes += len(text)
            return
        self.unwritten.popleft()
        self._write(text)
        while self.unwritten and self.unwritten[0] in self.ready:
            text = self.ready.pop(self.unwritten.popleft())
            self.waiting_bytes -= len(text)
            self._write(text)
        self.wake()

    def close(self, output: Path | None) -> None:
        """At the end: a line admitted whose result never came (an interrupted batch
        cancelled it before it ran) gets an entry saying so, the lines after it are written;
        then the output is closed (stdout flushed). A failure is kept in `error`."""
        while self.unwritten:
            line = self.unwritten.popleft()
            self._write(self.ready.pop(line) if line in self.ready else json_text({
                "line": line, "output": None, "error": {
                    "type": "NotRun", "message": "the batch was interrupted before this line "
                    "ran"}, "log_id": None}) + "\n")
        try:
            if output is not None:
                self.sink.close()
            else:
                self.sink.flush()
        except OSError as exc:
            self.error = self.error or exc

    def _write(self, text: str) -> None:
        if self.error is not None:
            return
        try:  # whole, or an error (a pipe's reader that leaves mid-write: `write_all`)
            try:
                write_all(self.sink, text)
            except UnicodeEncodeError:  # a lone surrogate (quoted from an input): escaped
                write_all(self.sink, json.dumps(json.loads(text)) + "\n")
        except OSError as exc:
            self.error = exc
            self.on_error()


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
    from rich.markup import escape

    from aiops.cli.progress import batch_progress

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
    stop = asyncio.Event()  # no new lines: a signal, or an output that cannot be written

    def stop_reading() -> None:
        stop.set()
        out.wake()

    out = _Ordered(sink, window_for(concurrency), MAX_WAITING_BYTES, stop_reading)
    console = Console(stderr=True)

    def stopping(sig: int) -> None:
        stop_reading()
        console.print(f"{signals.name}: no new lines; waiting up to {DRAIN_S:.0f} s for the "
                      "executions in flight (send it again to cancel them now)",
                      highlight=False)

    with batch_progress(console, runner) as progress, Signals(stopping) as signals:
        task = progress.add_task(escape(target), total=total)

        def finished(line: int, entry: dict[str, Any], execution: Any, error: str | None,
                     code: int) -> None:
            summary.add(execution, error, code, line=line)
            out.put(line, entry)
            progress.advance(task)

        lines = _Lines(input_file, out, stop, finished)

        def on_result(position: int, result: Any) -> None:
            n = lines.line_of.pop(position)
            finished(n, *_entry(n, result))

        reader = lines.read()
        work = asyncio.ensure_future(runner.run_many(
            target, reader, concurrency=concurrency, on_result=on_result))
        try:
            await _until(work, stop)
            if not work.done():  # stopping: no new lines; the ones in flight may finish
                await _until(work, signals.cancel, DRAIN_S)
        finally:
            if not work.done():
                work.cancel()
            await asyncio.wait({work})
            await reader.aclose()
            out.close(output)  # lines taken but cancelled before they ran; never raises
            failures = await runner.close()  # every step, whatever failed
        if not work.cancelled():
            work.result()  # a failure of the batch itself (not of a line) is raised
    if isinstance(out.error, BrokenPipeError):  # ends silently, like other Unix tools (141)
        drop_stdout()
    else:
        say(summary.render(), err=True)
        if out.error is not None:
            say_error(write_failed(out.error, output))
    report(runner.log_warnings(), failures)
    if signals.received is not None:
        say(f"Interrupted by {signals.name}: lines from {lines.next_line} on were not run",
            err=True)
    return exit_code(received=signals.received, output=out.error, failed=summary.first_code,
                     records=failures)
