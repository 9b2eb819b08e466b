"""`aiops import FILE.prompt|FILE.prompty`: read the files, call the importer, write one file.

The translation and every check live in `aiops.importers` (pure); this module only reads the
prompt file and providers.yaml, and writes functions/<name>/function.yaml or stdout.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import click

from aiops.cli import emit, say
from aiops.cli.params import InputFile
from aiops.commands import ensure_schemas, schema_reference
from aiops.errors import Diagnostic, SpecError, UsageError
from aiops.files import FileRefused, read_bounded
from aiops.importers import prepare_import
from aiops.loader import FUNCTIONS_DIR, PROVIDERS_FILE, read_project_file
from aiops.spec import NAME_PATTERN
from aiops.workspace import NotAProject, find_root
from aiops.yamlsrc import MAX_FILE_BYTES, YamlProblem, decode


@click.command("import")
@click.argument("source", type=InputFile())
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

    Exit 0 when written (warnings name what was dropped), 1 when the file cannot be
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
    found = find_root(project_dir) if project_dir.is_dir() else None
    if found is None and not to_stdout:
        raise NotAProject(project_dir)
    project_dir = found or project_dir
    label = str(source)
    try:
        text = decode(read_bounded(source, MAX_FILE_BYTES, stream_ok=True))
    except FileRefused as exc:
        raise UsageError(f"{label} {exc.reason}") from None
    except YamlProblem as exc:
        raise SpecError([Diagnostic(file=label, line=exc.line, column=exc.column,
                                    message=exc.message, fix=exc.fix, code="import-encoding")]
                        ) from None
    providers_path = project_dir / PROVIDERS_FILE
    outcome = prepare_import(
        text, label, name=name, provider=provider, model=model, read_file=_reader(source),
        providers_file=(read_project_file(project_dir, PROVIDERS_FILE)
                        if os.path.lexists(providers_path) else None),
        # every functions/<name>/ sits at the same depth: any name gives the same reference
        schema_ref=schema_reference(project_dir, project_dir / FUNCTIONS_DIR / "name"))
    for diag in outcome.diagnostics:
        if not diag.is_error:
            say(diag.render(), err=True)
    if not outcome.ok or outcome.text is None or outcome.target is None:
        raise SpecError(outcome.diagnostics)
    if to_stdout:
        emit(outcome.text, nl=False)
        return
    target = project_dir / outcome.target
    if target.exists() and not force:
        raise UsageError(f"{target} already exists; pass --force to overwrite it, or --name "
                         "to import under another name")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(outcome.text, encoding="utf-8")
    for path in ensure_schemas(project_dir):  # what the written file's modeline points at
        say(f"created {path}")
    say(f"Imported {label} -> {target}")


def _reader(source: Path) -> Callable[[str], bytes]:
    """Reads what a `${file:...}` reference of `source` names: a file in the prompt file's
    directory or below it, bounded; a path or link leading out of it is refused."""
    base = source.parent

    def read(ref: str) -> bytes:
        rel = os.path.normpath(ref)
        if os.path.isabs(rel) or rel == os.pardir or rel.startswith(os.pardir + os.sep):
            raise FileRefused("is outside the directory of the .prompty file",
                              "copy the file next to the .prompty file and name it from there")
        try:
            return read_bounded(base / rel, MAX_FILE_BYTES, within=base)
        except FileRefused as exc:  # a link out is worded for a project: say which directory
            if "the project directory" not in exc.reason:
                raise
            raise FileRefused(exc.reason.replace("the project directory",
                                                 "the directory of the .prompty file"),
                              "copy the file next to the .prompty file") from None

    return read


__all__ = ["import_"]
