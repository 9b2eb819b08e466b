"""`aiops run`, `aiops logs`, `aiops mock-provider`: thin wrappers over aiops.commands.

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
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from aiops.cli import drop_stdout, emit, json_text, project_dir_option, say, say_error
from aiops.cli.params import FiniteFloat, InputFile, OutputFile
from aiops.errors import (
    InputError,
    RuntimeFailure,
    UsageError,
)
from aiops.files import FileRefused, read_bounded

_PROJECT = project_dir_option()
_DB = click.option("--database-url", envvar="AIOPS_DATABASE_URL", default=None,
                   help="Database URL (default: AIOPS_DATABASE_URL, aiops.yaml, .aiops/).")


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


@click.command()
@click.argument("target", metavar="NAME[@VERSION]")
@click.option("--input", "input_", metavar="JSON|@FILE|-", help="The input: JSON, @file or -.")
@click.option("--input-file", type=InputFile(),
              help="Batch: a JSON-lines file, one input per line.")
@click.option("--output", type=OutputFile(),
              help="Batch: where to write the JSON-lines results (default: stdout).")
@click.option("--concurrency", default=32, show_default=True, type=click.IntRange(1, 10000))
@click.option("--actor", default=None, help="Who runs it (logged; default: the OS user).")
@click.option("--max-wait", type=FiniteFloat(min=0), default=None, metavar="SECONDS",
              help="Fail a call (exit 6) that would wait longer than this for room in a rate "
                   "limit or a concurrency slot (default: wait as long as it takes).")
@_PROJECT
@_DB
def run(target: str, input_: str | None, input_file: Path | None, output: Path | None,
        concurrency: int, actor: str | None, max_wait: float | None, project_dir: Path,
        database_url: str | None) -> None:
    """Run a function; print its output as JSON. With --input-file, run a batch."""
    if (input_ is None) == (input_file is None):
        raise UsageError("give exactly one of --input (JSON, @file or -) and --input-file")
    from aiops import commands

    ws = commands.open_workspace(project_dir, database_url=database_url)
    runner = commands.open_runner(ws, actor=actor, max_wait_s=max_wait)
    if input_ is not None:
        value = _read_input(input_)
        raise SystemExit(asyncio.run(_single(ws, runner, target, value)))
    assert input_file is not None
    from aiops.cli.batch import run_batch

    raise SystemExit(asyncio.run(run_batch(runner, target, input_file, output, concurrency)))


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


_SINCE = re.compile(r"^(\d+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_SINCE_DAYS = 36500  # a duration reaches at most 100 years back (logs are younger)


def parse_since(value: str | None) -> datetime | None:
    """`--since`: a duration back from now (15m, 24h, 7d; at most MAX_SINCE_DAYS) or an ISO
    time (UTC unless it names a zone); a UsageError naming the bound otherwise."""
    if not value:
        return None
    m = _SINCE.match(value)
    if m:
        unit = _UNIT_S[m[2]]
        if int(m[1]) * unit > MAX_SINCE_DAYS * 86400:  # compared before timedelta overflows
            raise UsageError(f"--since {value}: a duration reaches at most "
                             f"{MAX_SINCE_DAYS * 86400 // unit}{m[2]} back (100 years); for "
                             "older logs give an ISO time (2001-01-01)")
        return datetime.now(UTC) - timedelta(seconds=int(m[1]) * unit)
    try:
        when = datetime.fromisoformat(value)
        return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    except ValueError:
        raise UsageError(f"--since {value!r}: use a duration (15m, 24h, 7d) or an ISO "
                         "time (2024-05-01T12:00)") from None
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise UsageError(f"--since {value!r} is out of range: an ISO time between "
                         "0001-01-02 and 9999-12-30 (UTC)") from None


@click.command()
@click.argument("name")
@click.option("--status", type=click.Choice(["ok", "error"]), default=None)
@click.option("--since", default=None, help="A duration (15m, 24h, 7d) or an ISO time.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@_PROJECT
@_DB
def logs(name: str, status: str | None, since: str | None, limit: int, as_json: bool,
         project_dir: Path, database_url: str | None) -> None:
    """Recent executions of a function, newest first."""
    from aiops import commands

    ws = commands.open_workspace(project_dir, database_url=database_url)
    rows = commands.logs(ws, name, limit=limit, status=status, since=parse_since(since))
    if as_json:
        for r in rows:
            emit(json_text({"id": r.id, "created_at": r.created_at.isoformat(),
                            "version": r.version, "status": r.status,
                            "provider": r.provider, "execution_ms": r.execution_time,
                            "input_tokens": r.input_tokens,
                            "output_tokens": r.output_tokens, "cost_usd": r.cost_usd,
                            "actor": r.actor, "error": r.error,
                            "attempts": len(r.metadata.get("attempts", []))}))
        return
    if not rows:
        say(f"No executions of {name} match.")
        return
    say(f"{'time (UTC)':19}  {'log id':36}  {'version':9} {'status':6} {'provider':10} "
        f"{'ms':>7} {'att':>3} {'tokens':>7} {'cost $':>10}  error")
    for r in rows:
        err = (r.error or {}).get("message", "") if isinstance(r.error, dict) else ""
        say(f"{r.created_at:%Y-%m-%d %H:%M:%S}  {r.id:36}  {r.version or '-':9} "
            f"{r.status:6} {r.provider or '-':10} {r.execution_time or 0:>7.0f} "
            f"{len(r.metadata.get('attempts', [])):>3} "
            f"{(r.input_tokens or 0) + (r.output_tokens or 0):>7} "
            f"{r.cost_usd or 0:>10.6f}  {err[:100]}", one_line=True)


@click.command(name="mock-provider")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--latency-ms", default=0.0, show_default=True, type=FiniteFloat(0))
@click.option("--fault-rate", default=0.0, show_default=True, type=FiniteFloat(0, 1))
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
