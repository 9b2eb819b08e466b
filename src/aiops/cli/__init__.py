"""The `aiops` command line: parse -> call the core -> render -> exit code.

Subcommands load lazily (`LAZY`), so `aiops --version` and `aiops validate` do not import the
database, HTTP or provider libraries. One error handler turns `AiopsError` into `Error: ...`
on stderr and its exit code; `--debug` adds the traceback and keeps the code.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from aiops import __version__
from aiops.errors import AiopsError

# command name -> "module:attribute" under aiops.cli
LAZY: dict[str, str] = {
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
    "logs": "run:logs",
    "mock-provider": "run:mock_provider",
    "test": "golden:test",
}


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


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(LAZY)

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
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except OSError as exc:
            if exc.filename is None:  # a socket, a pipe: not something the user named
                raise _internal(ctx, exc) from None
            # A file the system refused mid-way (disk full, permissions changed): the
            # environment's doing, said as the system says it.
            _traceback_if_debug(ctx)
            click.echo(f"Error: {exc.filename}: {exc.strerror}", err=True)
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
    click.echo(f"Error: internal error: {type(exc).__name__}: {exc} ({hint})", err=True)
    return click.exceptions.Exit(1)


def _broken_pipe() -> click.exceptions.Exit:
    """The reader of stdout went away (`aiops plan | head`): end like other Unix tools, with
    no message and 141 (what a shell reports for a process that SIGPIPE ended)."""
    # Python would print "Exception ignored ... BrokenPipeError" when it flushes stdout at
    # exit: point the descriptor at /dev/null first (the recipe of Python's docs).
    with contextlib.suppress(OSError, ValueError):  # not a real file (click's test runner)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return click.exceptions.Exit(EXIT_BROKEN_PIPE)


def _traceback_if_debug(ctx: click.Context) -> bool:
    """With --debug, the traceback of the error being handled, on stderr; the exit code stays
    the error's own (a script debugging a run still sees 3 for a bad input)."""
    if not (ctx.obj and ctx.obj.get("debug")):
        return False
    import traceback

    click.echo(traceback.format_exc().rstrip(), err=True)
    return True


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aiops")
@click.option("--debug", is_flag=True, envvar="AIOPS_DEBUG", help="Show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """aiops: AI functions as code."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main() -> None:
    cli(prog_name="aiops")
