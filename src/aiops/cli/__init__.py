"""The `aiops` command line: parse -> call the core -> render -> exit code.

Subcommands load lazily (`LAZY`), so `aiops --version` and `aiops validate` do not import the
database, HTTP or provider libraries. One error handler turns `AiopsError` into `Error: ...`
on stderr and its exit code; `--debug` shows the traceback instead.
"""

from __future__ import annotations

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

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AiopsError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)
        except Exception as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"Error: internal error: {type(exc).__name__}: {exc} "
                       "(run with --debug for the traceback and report it)", err=True)
            ctx.exit(1)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aiops")
@click.option("--debug", is_flag=True, envvar="AIOPS_DEBUG", help="Show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """aiops: AI functions as code."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main() -> None:
    # Keep a broken pipe (`aiops ... | head`) quiet.
    try:
        cli(prog_name="aiops")
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
