"""`aiops run`, `aiops mock-provider`: thin wrappers over aiops.commands.

Exit codes of `aiops run` (from aiops.errors): 0 ok, 1 configuration or not found, 2 usage,
3 input invalid, 4 provider failed, 5 output invalid after repairs, 6 rate limit, 7 budget,
8 the output was printed but its log row (or what it cost) could not be recorded, 128 + the
signal's number when SIGINT or SIGTERM cancelled it. A batch (aiops.cli.batch) exits 0 when
every line succeeded, else with the code of its first failed line. When several things went
wrong, the order of `aiops.cli.ending` picks the code.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

import click

from aiops.cli import (
    CLOSED,
    PROCESS_ENDS,
    database_option,
    drop_stdout,
    emit,
    json_text,
    project_dir_option,
    say,
    say_error,
)
from aiops.cli.params import FiniteFloat, InputFile, OutputFile
from aiops.collector import gc_paused
from aiops.errors import (
    AiopsError,
    InputError,
    RuntimeFailure,
    UsageError,
)
from aiops.files import FileRefused, read_bounded

_PROJECT = project_dir_option()


MAX_INPUT_TEXT = 64 << 20  # bytes of one input's text: 10 MiB of JSON (the largest
                           # max_input_bytes) with room for indentation


def _read_input(value: str) -> Any:
    """`--input`: JSON, `@FILE` or `-` (stdin), read within MAX_INPUT_TEXT, parsed by
    `parse_input`. A FIFO works (`@<(jq ...)`); `@/dev/zero` is refused at the bound."""
    if value == "-":
        source = "stdin"
        data = sys.stdin.buffer.read(MAX_INPUT_TEXT + 1)
    elif value.startswith("@"):
        path = Path(value[1:])
        source = str(path)
        try:  # the shared bounded reader; `decode_input` words a text over the bound
            data = read_bounded(path, MAX_INPUT_TEXT, stream_ok=True, cut=True)
        except FileRefused as exc:
            raise InputError(f"cannot read the input file {path}: it {exc.reason}") from None
    else:
        source = "--input"
        # The shell's bytes reach Python decoded with surrogateescape: invalid UTF-8 becomes
        # lone surrogates, which only re-encoding finds.
        data = value.encode("utf-8", "surrogateescape")
    return decode_input(data, source)


def decode_input(data: bytes, source: str) -> Any:
    """One input's bytes -> its value, or an InputError naming `source`."""
    if len(data) > MAX_INPUT_TEXT:
        raise InputError(f"{source} is over {MAX_INPUT_TEXT >> 20} MiB, the bound on an "
                         "input's text (limits.max_input_bytes is at most 10 MiB)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{source} is not UTF-8 text: {exc.reason} at byte "
                         f"{exc.start}") from None
    return parse_input(text.removeprefix("\ufeff"), source)  # a BOM (Windows tools) is not JSON


def parse_input(text: str, source: str) -> Any:
    """One input's JSON, or an InputError that names `source` (and the line and column, or
    the JSON path): not JSON, nested deeper than fastjson.MAX_DEPTH, a lone surrogate."""
    from aiops import fastjson

    try:
        return fastjson.loads_input(text)
    except fastjson.Refused as exc:
        raise InputError(f"{source}: {exc}") from None
    except ValueError as exc:
        raise InputError(f"{source} is not valid JSON: {exc}") from None


_RUN_EXAMPLES = """\b
Examples:
  aiops run summarize --input '{"text": "..."}'
  aiops run summarize@1.2.0 --input @input.json     an exact version
  aiops run summarize@1 --input - < input.json      the newest applied 1.x
  aiops run summarize --input-file in.jsonl --output out.jsonl --concurrency 8
"""


@click.command(epilog=_RUN_EXAMPLES)
@click.argument("target", metavar="NAME[@VERSION]")
@click.option("--input", "input_", metavar="JSON|@FILE|-", help="The input: JSON, @file or -.")
@click.option("--input-file", type=InputFile(),
              help="Batch: a JSON-lines file, one input per line.")
@click.option("--output", type=OutputFile(),
              help="Batch: where to write the JSON-lines results (default: stdout).")
@click.option("--concurrency", default=32, show_default=True, type=click.IntRange(1, 10000),
              help="Batch: most executions at once.")
@click.option("--actor", default=None, help="Who runs it (logged; default: the OS user).")
@click.option("--max-wait", type=FiniteFloat(min=0), default=None, metavar="SECONDS",
              help="Fail a call (exit 6) that would wait longer than this for room in a rate "
                   "limit or a concurrency slot (default: wait as long as it takes).")
@_PROJECT
@database_option
def run(target: str, input_: str | None, input_file: Path | None, output: Path | None,
        concurrency: int, actor: str | None, max_wait: float | None, project_dir: Path,
        database_url: str | None) -> None:
    """Run a function; print its output as JSON.

    NAME[@VERSION]: NAME runs the current version, NAME@1.2.0 that version, NAME@1 the newest
    applied 1.x. With --input-file, a batch: one JSON line per input, in input order, and a
    summary on stderr. Exit 0 on success; 3 input, 4 provider, 5 output, 6 rate limit,
    7 budget, 8 output delivered but not logged (see `aiops --help`).
    """
    if (input_ is None) == (input_file is None):
        raise UsageError("give exactly one of --input (JSON, @file or -) and --input-file")
    if input_file is not None:
        from aiops import commands
        from aiops.cli.batch import run_batch

        ws = commands.open_workspace(project_dir, database_url=database_url)
        runner = commands.open_runner(ws, actor=actor, max_wait_s=max_wait)
        code = asyncio.run(run_batch(runner, target, input_file, output, concurrency))
        _closed(ws)
        raise SystemExit(code)
    # One execution: the cyclic GC is paused from here to the end (aiops.collector). Most of
    # a single run's time is importing (the verbs, the provider's SDK, SQLAlchemy, pydantic),
    # and each collection pass in it walks every object imported so far: some 10% of the
    # run's CPU. One execution leaves little garbage, and reference counting frees what holds
    # no cycle. When the process ends with the command, collection resumes without the
    # young pass over all of that (30 ms).
    assert input_ is not None
    ctx = click.get_current_context()
    with gc_paused(promote=isinstance(ctx.obj, dict) and bool(ctx.obj.get(PROCESS_ENDS))):
        from aiops import commands

        ws = commands.open_workspace(project_dir, database_url=database_url)
        runner = commands.open_runner(ws, actor=actor, max_wait_s=max_wait)
        value = _read_input(input_)
        try:
            code = asyncio.run(_single(ws, runner, target, value))
        except AiopsError:  # the run's own error, raised once the runner was closed
            _closed(ws)
            raise
        _closed(ws)
        raise SystemExit(code)


def _closed(ws: Any) -> None:
    """The runner is closed (its log rows written or spooled, its budgets settled): close
    the database's connections too, and tell `aiops.cli.main` that the process may end
    without the interpreter's teardown."""
    ws.close()
    ctx = click.get_current_context(silent=True)
    if ctx is not None and isinstance(ctx.obj, dict):
        ctx.obj[CLOSED] = True


async def _single(ws: Any, runner: Any, target: str, value: Any) -> int:
    """Run once and print the output; the exit code (`aiops.cli.ending`). What could not be
    recorded (a log row, what the call cost) is reported after the output, never instead of
    it. SIGINT or SIGTERM cancels the call: its log row says so, what it reserved is given
    back, and the exit code is 130 or 143."""
    from aiops import commands
    from aiops.cli.ending import Signals, exit_code, report

    stop = asyncio.Event()
    with Signals(lambda sig: stop.set()) as signals:
        result = await commands.run(ws, target, value, stop=stop, runner=runner)
    execution, error, failures = result.execution, result.error, result.unrecorded
    output: Exception | None = None
    if execution is not None and error is None:
        if execution.deprecated:  # not resolved again: that could fail after a success
            say(f"Warning: {execution.function} {execution.version} is deprecated", err=True)
        try:
            emit(json_text(execution.output))
        except BrokenPipeError as exc:  # ends silently, like other Unix tools
            output = exc
            drop_stdout()
        except RuntimeFailure as exc:  # stdout refused it: disk full, an I/O error
            output = exc
            say_error(exc)
    report(result.log_warnings, failures)
    if signals.received is not None:
        say(f"Interrupted by {signals.name}: the execution was cancelled", err=True)
    code = exit_code(received=signals.received, output=output,
                     failed=error.exit_code if error is not None else 0, records=failures)
    if error is not None and code == error.exit_code:
        raise error  # the CLI's handler: `Error: ...` with the log id (and --debug's traceback)
    return code


@click.command(name="mock-provider", epilog="""\b
Examples:
  aiops mock-provider --port 8080 &
  export AIOPS_OPENAI_BASE_URL=http://127.0.0.1:8080/v1    then aiops run ...
  aiops mock-provider --fault-rate 0.2 --latency-ms 300    faults and latency
""")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="The port (0: a free one, printed on stderr).")
@click.option("--latency-ms", default=0.0, show_default=True, type=FiniteFloat(0),
              help="Added to every answer.")
@click.option("--fault-rate", default=0.0, show_default=True, type=FiniteFloat(0, 1),
              help="Share of calls that fail: 429, 500, 503, timeouts, dropped connections, "
                   "bodies that are not JSON, invalid output.")
@click.option("--responses", type=InputFile(),
              help="A YAML/JSON file of canned responses (`match` + `output`).")
@click.option("--retry-after", default=1.0, show_default=True, type=FiniteFloat(0),
              help="Seconds a 429/503 fault asks the client to wait.")
@click.option("--seed", default=0, show_default=True, help="Seed of the fault sequence.")
@click.option("--model", "models", multiple=True, metavar="NAME",
              help="A model GET /v1/models lists (repeatable; the responses file's models are "
                   "listed too).")
def mock_provider(host: str, port: int, latency_ms: float, fault_rate: float,
                  responses: Path | None, retry_after: float, seed: int,
                  models: tuple[str, ...]) -> None:
    """A local mock of the OpenAI, Groq and custom-backend APIs (for tests and demos)."""
    from aiops import commands

    def ready(url: str) -> None:
        say(f"mock provider on {url}\n  openai: base_url {url}/v1\n  groq:   base_url "
            f"{url}\n  http:   base_url {url}/aiops\n"
            f"e.g. export AIOPS_OPENAI_BASE_URL={url}/v1 AIOPS_GROQ_BASE_URL={url}", err=True)

    with contextlib.suppress(KeyboardInterrupt):
        commands.serve_mock(host=host, port=port, latency_ms=latency_ms, fault_rate=fault_rate,
                            responses=responses, retry_after_s=retry_after, seed=seed,
                            models=models, ready=ready)
