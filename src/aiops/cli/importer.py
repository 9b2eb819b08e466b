"""`aiops import FILE.prompt|FILE.prompty`: a thin wrapper over aiops.commands.importer."""

from __future__ import annotations

import re
from pathlib import Path

import click

from aiops import commands
from aiops.cli import emit, say
from aiops.cli.params import InputFile
from aiops.errors import Diagnostic, SpecError, UsageError
from aiops.spec import NAME_PATTERN


@click.command("import", epilog="""\b
Examples:
  aiops import prompts/summarize.prompt
  aiops import support.prompty --name triage --provider openai
  aiops import summarize.prompt --stdout      print the YAML, write nothing
""")
@click.argument("source", metavar="FILE", type=InputFile())
@click.option("--name", help="Function name (default: the file's name, made valid).")
@click.option("--provider", help="A provider of providers.yaml (default: one whose type "
              "serves the model's family, e.g. gpt-* -> openai, llama -> groq; else the "
              "first one, with a warning).")
@click.option("--model", help="Model to use (default: the model the file names).")
@click.option("-C", "--project-dir", "project_dir", default=".", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="The aiops project.")
@click.option("--stdout", "to_stdout", is_flag=True, help="Print the YAML; write nothing.")
@click.option("--force", is_flag=True, help="Overwrite an existing function file.")
def import_(source: Path, name: str | None, provider: str | None, model: str | None,
            project_dir: Path, to_stdout: bool, force: bool) -> None:
    """Translate a Dotprompt (.prompt) or Prompty (.prompty) file into an aiops function.

    FILE is written as functions/NAME/function.yaml. Exit 0 when written (warnings name what was dropped), 1 when the file cannot be
    translated faithfully (nothing is written), 2 for a command line that cannot work.
    """
    if name is not None and not re.match(NAME_PATTERN, name):
        raise UsageError(f"--name `{name}` is not a valid function name: lowercase letters, "
                         "digits and dashes, starting with a letter, 2 to 63 characters")
    if not to_stdout and not project_dir.is_dir():
        raise UsageError(f"project directory {project_dir} does not exist; pass -C DIR "
                         "or --stdout")
    # With --stdout a project is optional (its providers.yaml picks the provider); to write
    # the function, one is needed: the project at or above -C DIR.
    ws = None
    if not to_stdout or (project_dir.is_dir() and commands.find_root(project_dir) is not None):
        ws = commands.open_workspace(project_dir)
    try:
        result = commands.import_file(source, ws, name=name, provider=provider, model=model,
                                      write=not to_stdout, force=force)
    except SpecError as exc:
        _warn(exc.diagnostics)
        raise
    _warn(result.warnings)
    if result.target is None:
        emit(result.text, nl=False)
        return
    for path in result.created:
        say(f"created {path}")
    say(f"Imported {source} -> {result.target}")


def _warn(diagnostics: tuple[Diagnostic, ...]) -> None:
    for diag in diagnostics:
        if not diag.is_error:
            say(diag.render(), err=True)


__all__ = ["import_"]
