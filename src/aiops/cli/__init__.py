"""The `aiops` command line: parse -> call the core -> render -> exit code.

Subcommands load lazily (`LAZY`), so `aiops --version`, `aiops --help` (whose summaries are
`SUMMARIES`) and `aiops validate` do not import the database, HTTP or provider libraries. One
error handler turns `AiopsError` into `Error: ...` on stderr and its exit code; `--debug`
adds the traceback and keeps the code.

Everything the commands write goes out through `say` (a message for a person: control
characters escaped, so that a provider's error body cannot drive the terminal; coloured where
`colour_on` says so) or `emit` (data on stdout, as is). Both write the whole text or fail: a
reader of stdout that went away (`aiops status | head -1`) ends the command quietly with
EXIT_BROKEN_PIPE, whichever write met it; any other failure to write stdout is one line
naming stdout, exit 1.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from aiops import __version__
from aiops.errors import AiopsError, RuntimeFailure

# command name -> "module:attribute" under aiops.cli
LAZY: dict[str, str] = {
    "alerts": "alerts:alerts",
    "validate": "project:validate",
    "init": "project:init",
    "new": "project:new",
    "schema": "project:schema",
    "import": "importer:import_",
    "plan": "reconcile:plan",
    "apply": "reconcile:apply",
    "watch": "reconcile:watch",
    "status": "reconcile:status",
    "db": "reconcile:db",
    "run": "run:run",
    "logs": "logs:logs",
    "mock-provider": "run:mock_provider",
    "test": "golden:test",
    "serve": "serve:serve",
    "token": "serve:token",
    "stats": "stats:stats",
    "rollups": "stats:rollups",
}

# command name -> its summary in `aiops --help`, whole (click would cut it at ~45 characters,
# and reading it from the command would import them all). It is the first sentence of the
# command's own help (a test keeps them equal).
SUMMARIES: dict[str, str] = {
    "alerts": "Alert rules: evaluate them once (check), or show them and their states (list).",
    "apply": "Write the plan to the database: one transaction, under a lock, recorded.",
    "db": "The database schema.",
    "import": "Translate a Dotprompt (.prompt) or Prompty (.prompty) file into an aiops "
              "function.",
    "init": "Scaffold a project: providers.yaml, an example function with its cassette, the "
            "CI workflow, pre-commit hooks.",
    "logs": "Recent executions, newest first: of every function, of one, or one in full.",
    "mock-provider": "A local mock of the OpenAI, Groq and custom-backend APIs (for tests and "
                     "demos).",
    "new": "Scaffold functions/NAME/function.yaml.",
    "plan": "Show what `aiops apply` would change in the database, and why.",
    "rollups": "The per-minute rollups that stats read: backfill and compaction.",
    "run": "Run a function; print its output as JSON.",
    "schema": "Print the JSON Schema of the function format (or of providers.yaml).",
    "serve": "Serve the REST API and its reference page (/docs) until interrupted.",
    "stats": "Calls, errors, latency percentiles, tokens, cost and budget used, per "
             "function.",
    "status": "Each function: in sync or not, current version, last apply.",
    "token": "Manage the API's tokens: create (shown once), list, revoke.",
    "test": "Run golden tests: every test of every function (or NAME...) on each provider of "
            "its matrix, replaying recorded provider HTTP.",
    "validate": "Check every function file and providers.yaml.",
    "watch": "Re-validate and re-apply on every change to functions/ and providers.yaml.",
}

EPILOG = """\b
Examples:
  aiops init my-project     a project that passes its own checks
  aiops validate            check every file (fast: a pre-commit hook)
  aiops plan                what apply would change, and why
  aiops apply               write it to the database (asks first)
  aiops run hello --input '{"text": "Hi"}'
  aiops logs                recent executions of every function
  aiops logs --id LOG_ID    one execution in full, with its attempts
  aiops COMMAND --help      a command's options and examples

\b
Exit codes:
  0     success
  1     error: invalid files or configuration, not found, a failed test
  2     usage error; plan --detailed-exitcode: there are changes;
        alerts check: some rule fires
  3-8   run: 3 input, 4 provider, 5 output, 6 rate limit, 7 budget,
        8 output delivered but its log row not recorded
  75    apply: the lock is busy; run: the database is locked
  130   interrupted (Ctrl-C)
  141   stdout closed by its reader (aiops status | head -1)
  143   run: stopped by SIGTERM

\b
Colour on a terminal: NO_COLOR=1 turns it off, FORCE_COLOR=1 on.
Shell completion (bash; zsh_source, fish_source for the others):
  eval "$(_AIOPS_COMPLETE=bash_source aiops)"
"""


_F = TypeVar("_F", bound=Callable[..., Any])

EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `cat big | head`


def project_dir_option(dest: str = "project_dir", *, default: str | None = ".",
                       help: str = "The project directory (holds functions/ and providers.yaml)."
                       ) -> Callable[[_F], _F]:
    """`-C/--project-dir`, the same on every command: an existing directory (a typo must not
    create a project, or a database, somewhere new)."""
    return click.option("-C", "--project-dir", dest, default=default,
                        show_default=default is not None, help=help,
                        type=click.Path(exists=True, file_okay=False, path_type=Path))


database_option = click.option(
    "--database-url", envvar="AIOPS_DATABASE_URL", default=None,
    help="Database URL (default: AIOPS_DATABASE_URL, aiops.yaml's database_url, .aiops/).")


def json_option(help: str = "Print JSON instead of text.") -> Callable[[_F], _F]:
    """`--json`: the one spelling of JSON output on every command that has one."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def output_format(as_json: bool, fmt: str) -> str:
    """The format of `--json` and `--format` (its hidden `json` is the same as `--json`); a
    UsageError when they disagree."""
    from aiops.errors import UsageError

    if as_json and fmt not in ("text", "json"):
        raise UsageError(f"--json and --format {fmt} disagree; give one of them")
    return "json" if as_json else fmt


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(LAZY)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, SUMMARIES[name]) for name in self.list_commands(ctx)])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = LAZY.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command = getattr(importlib.import_module(f"aiops.cli.{module}"), attr)
        assert isinstance(command, click.Command)
        return command

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:  # `--help` and `--version` write while the command line is parsed
            return super().make_context(info_name, args, parent=parent, **extra)
        except BrokenPipeError:
            raise _broken_pipe() from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            raise _broken_pipe() from None
        except AiopsError as exc:
            _traceback_if_debug(ctx)
            say_error(exc)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            say("Interrupted.", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except OSError as exc:
            if exc.filename is None:  # a socket, a pipe: not something the user named
                raise _internal(ctx, exc) from None
            # A file the system refused mid-way (disk full, permissions changed): the
            # environment's doing, said as the system says it.
            _traceback_if_debug(ctx)
            say(f"Error: {exc.filename}: {exc.strerror}", err=True)
            ctx.exit(1)
        except Exception as exc:
            raise _internal(ctx, exc) from None

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # What Python could not decode reaches us as lone surrogates, which every encoder
        # refuses later (a database query, stdout). `run --input` checks its own: that one
        # is the run's input (exit 3).
        for before, arg in zip(["", *args], args, strict=False):
            if before == "--input" or arg.startswith("--input="):
                continue
            if not arg.isascii() and _not_utf8(arg):
                raw = arg.encode("utf-8", "surrogateescape")
                raise click.UsageError(f"argument {raw!r} is not UTF-8 text; aiops reads its "
                                       "command line as UTF-8", ctx)
        return super().parse_args(ctx, args)


def _not_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _internal(ctx: click.Context, exc: Exception) -> click.exceptions.Exit:
    """A bug: one line that asks for a report (with --debug, after the traceback)."""
    hint = "report it" if _traceback_if_debug(ctx) else (
        "run with --debug for the traceback and report it")
    say(f"Error: internal error: {type(exc).__name__}: {exc} ({hint})", err=True)
    return click.exceptions.Exit(1)


def _broken_pipe() -> click.exceptions.Exit:
    """The reader of stdout went away (`aiops plan | head`): end like other Unix tools, with
    no message and 141 (what a shell reports for a process that SIGPIPE ended)."""
    drop_stdout()
    return click.exceptions.Exit(EXIT_BROKEN_PIPE)


def drop_stdout() -> None:
    """Point stdout at /dev/null: what is still buffered for a stdout that failed would fail
    again when Python flushes it at exit ("Exception ignored ..."; the recipe of Python's
    docs)."""
    with contextlib.suppress(OSError, ValueError):  # not a real file (click's test runner)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


# --- output ----------------------------------------------------------------------------------

# What a terminal acts on: C0 controls but tab and newline (ESC starts a sequence, CR
# rewrites the line, NUL and BEL), DEL, and C1 (U+009B is a one-character CSI).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_OR_NEWLINE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


_NAMED = {"\n": "\\n", "\r": "\\r"}


def terminal_safe(text: str, *, one_line: bool = False) -> str:
    """`text` with its control characters written as escapes (`\\x1b`, `\\r`), tab and
    newline kept (newline escaped too when `one_line`)."""
    pattern = _CONTROL_OR_NEWLINE if one_line else _CONTROL
    return pattern.sub(lambda m: _NAMED.get(m.group()) or f"\\x{ord(m.group()):02x}", text)


def say(message: str, *, err: bool = False, one_line: bool = False, nl: bool = True,
        style: Callable[[str], str] | None = None) -> None:
    """A message for a person, on stdout or stderr, terminal-safe (`terminal_safe`). Where
    `colour_on` says so, `style` colours it (after the escaping: its own escapes are the only
    ones that reach the terminal), and a leading `Error:` or `Warning:` is red or yellow."""
    text = terminal_safe(message, one_line=one_line)
    if colour_on(err=err):
        text = _lead(style(text) if style is not None else text)
    _write(text, err=err, nl=nl)


def say_error(exc: AiopsError) -> None:
    """`Error: ...` on stderr. What failed while running (a provider's words among it) is
    one line; an error about the user's files may list one problem per line."""
    say(f"Error: {exc}", err=True, one_line=isinstance(exc, RuntimeFailure))


# --- colour ----------------------------------------------------------------------------------


def colour_on(*, err: bool = False) -> bool:
    """Whether what goes to stdout (or stderr) is coloured: never with NO_COLOR set to
    anything but "" (https://no-color.org), always with FORCE_COLOR so set, otherwise only on a
    terminal that is not TERM=dumb (the order of Python's own `_colorize`). The one place
    that decides it: `say` and the commands' styles ask here."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    stream = sys.stderr if err else sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no stream (pythonw), or a closed one
        return False


def paint(text: str, colour: str | None = None, *, bold: bool = False) -> str:
    """`text` in ANSI colour (for a `style`: call it only when `colour_on`)."""
    return click.style(text, fg=colour, bold=bold or None)


_LEADS = (("Error:", "red"), ("Warning:", "yellow"))


def _lead(text: str) -> str:
    for word, colour in _LEADS:
        if text.startswith(word):
            return paint(word, colour, bold=True) + text[len(word):]
    return text


def emit(text: str, *, nl: bool = True) -> None:
    """Data on stdout (JSON, YAML, a saved plan), as is."""
    _write(text, nl=nl)


def emit_json(text: str, *, nl: bool = True) -> None:
    """JSON text on stdout, its C1 controls and DEL escaped (`json_text`)."""
    _write(_escape_c1(text), nl=nl)


def json_text(value: Any) -> str:
    """A value as one line of JSON for stdout or an output file: non-ASCII kept, and the C1
    controls and DEL (which `json` leaves raw) escaped like the others, so that a model's
    output cannot drive the terminal it is printed on."""
    import json

    return _escape_c1(json.dumps(value, ensure_ascii=False, default=str))


_C1 = re.compile("[\x7f-\x9f]")


def _escape_c1(json_text: str) -> str:
    """JSON text with the C1 controls and DEL (which only its strings can hold, and `json`
    leaves raw) written as escapes: the same value, and nothing a terminal acts on."""
    return _C1.sub(lambda m: f"\\u{ord(m.group()):04x}", json_text)


def _write(text: str, *, err: bool = False, nl: bool = True) -> None:
    try:
        write_all(sys.stderr if err else sys.stdout, text + "\n" if nl else text)
    except BrokenPipeError:
        raise
    except OSError as exc:
        if err:
            raise
        raise write_failed(exc) from None


def write_all(stream: TextIO, text: str) -> None:
    """Write `text` to `stream` whole and flush it, or raise (BrokenPipeError when its reader
    went away). A pipe whose reader leaves in the middle of a large write takes part of it and
    returns the count (with a SIGPIPE, which Python ignores), and Python's text layer drops
    the rest without a word; so the bytes are written here until every one is taken or a
    write fails."""
    buffer = getattr(stream, "buffer", None)
    if buffer is None:  # a text-only stream (io.StringIO)
        stream.write(text)
        stream.flush()
        return
    stream.flush()  # what the text layer holds goes first
    data = memoryview(text.encode(stream.encoding or "utf-8", stream.errors or "strict"))
    while data:
        data = data[buffer.write(data):]
    buffer.flush()


def write_failed(exc: OSError, output: Path | None = None) -> RuntimeFailure:
    """A failure to write the output (disk full, an I/O error; not a broken pipe) as one line
    that names it: `output`, or stdout."""
    if output is None:
        drop_stdout()
    where = f"--output {output}" if output is not None else "to stdout"
    return RuntimeFailure(f"cannot write {where}: {exc.strerror or exc}")


def _traceback_if_debug(ctx: click.Context) -> bool:
    """With --debug, the traceback of the error being handled, on stderr; the exit code stays
    the error's own (a script debugging a run still sees 3 for a bad input)."""
    if not (ctx.obj and ctx.obj.get("debug")):
        return False
    import traceback

    say(traceback.format_exc().rstrip(), err=True)
    return True


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=EPILOG)
@click.version_option(__version__, prog_name="aiops")
@click.option("--debug", is_flag=True, envvar="AIOPS_DEBUG",
              help="Show the traceback of an error (the exit code stays the error's); "
                   "AIOPS_DEBUG=1 does the same.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """aiops: AI functions as code. Versioned prompts, schemas and policies in git, reconciled
    into a database and run with retries, fallbacks, limits and budgets."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


# ctx.obj key: the command closed everything it opened (its log rows written, its budgets
# settled, its connections closed), so the process may end without tearing the interpreter
# down (`main`).
CLOSED = "closed"
# ctx.obj key, set by `main` only: the process ends when the command does (an in-process
# caller of `cli`, such as a test's CliRunner, lives on).
PROCESS_ENDS = "process_ends"


def main() -> None:
    """The `aiops` command. A command that set `CLOSED` ends at once (`end_now`): tearing
    down the interpreter frees every module one by one (the OpenAI SDK, SQLAlchemy and
    pydantic: some 170 ms of an `aiops run`), for a process about to end anyway."""
    state: dict[str, Any] = {PROCESS_ENDS: True}
    try:
        cli(prog_name="aiops", obj=state)
    except SystemExit as exc:
        if state.get(CLOSED):
            end_now(exc.code)
        raise


def end_now(code: object) -> None:
    """End the process with `code` (an int or None, as SystemExit carries) without the
    interpreter's teardown, after what a normal exit does that matters: stdout and stderr
    flushed, the atexit handlers run (logging's flush among them). Returns (the caller then
    exits normally) when that cannot be done safely: stdout or stderr refuses its flush (the
    normal exit reports it), `code` is a message, or a thread that is not a daemon still
    runs (a normal exit waits for it)."""
    import atexit
    import threading

    if code is not None and not isinstance(code, int):
        return
    if any(t.is_alive() and not t.daemon for t in threading.enumerate()
           if t is not threading.main_thread()):
        return
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return
    atexit._run_exitfuncs()
    try:  # what an atexit handler wrote
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return
    os._exit(code or 0)
