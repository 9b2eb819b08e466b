"""`aiops validate`, `init`, `new`, `schema`: the project commands (thin wrappers)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from aiops import commands
from aiops.cli import emit, emit_json, json_option, output_format, paint, project_dir_option, say
from aiops.cli.params import Format, NewDirectory


def _render_text(report: commands.ValidationReport) -> str:
    lines = [d.render() for d in report.diagnostics]
    errors, warnings = len(report.errors), len(report.warnings)
    against = f" against {report.base}" if report.base else ""
    if errors:
        lines.append(f"{errors} error(s), {warnings} warning(s) in {report.functions} "
                     f"function(s){against}.")
    else:
        lines.append(f"OK: {report.functions} function(s) valid{against}"
                     + (f", {warnings} warning(s)." if warnings else "."))
    return "\n".join(lines)


def _render_json(report: commands.ValidationReport) -> str:
    payload = {
        "format_version": 1,
        "ok": report.ok,
        "functions": report.functions,
        "base": report.base,
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "diagnostics": [d.as_dict() for d in report.diagnostics],
    }
    return json.dumps(payload, indent=2)


def _paint_report(text: str) -> str:
    """The last line, the verdict: green when clean, red with errors."""
    head, _, last = text.rpartition("\n")
    last = paint(last, "green" if last.startswith("OK") else "red", bold=True)
    return f"{head}\n{last}" if head else last


@click.command(epilog="""\b
Examples:
  aiops validate                      the project here (or above)
  aiops validate --base origin/main   also the version rules against main
  aiops validate --json | jq '.diagnostics[] | select(.severity == "error")'
""")
@click.argument("project_dir", default=".", type=click.Path(file_okay=False, path_type=Path))
@project_dir_option("project_option", default=None,
                    help="The project directory (same as PROJECT_DIR).")
@click.option("--base", "base", metavar="GIT_REF",
              help="Also check version rules against this git revision (e.g. origin/main).")
@json_option("Print JSON: {format_version, ok, functions, errors, warnings, diagnostics}.")
@click.option("--format", "fmt", type=Format("text"), default="text", hidden=True)
def validate(project_dir: Path, project_option: Path | None, base: str | None, as_json: bool,
             fmt: str) -> None:
    """Check every function file and providers.yaml.

    PROJECT_DIR (default: the current directory) is the project or a directory in it. Every
    problem of every file is listed as file:line:column: severity: key.path: message. Exit 0
    when there is no error (warnings allowed), 1 otherwise.
    """
    fmt = output_format(as_json, fmt)
    report = commands.validate(commands.open_workspace(project_option or project_dir), base=base)
    if fmt == "json":
        emit_json(_render_json(report))
    else:
        say(_render_text(report), style=_paint_report)
    raise SystemExit(0 if report.ok else 1)


@click.command(epilog="""\b
Examples:
  aiops init my-project && cd my-project && aiops validate && aiops test
  aiops init                          in the current directory
""")
@click.argument("project_dir", default=".", type=NewDirectory())
@click.option("--force", is_flag=True,
              help="Overwrite the scaffold's files that exist (they are kept otherwise).")
def init(project_dir: Path, force: bool) -> None:
    """Scaffold a project: providers.yaml, an example function with its cassette, the CI
    workflow, pre-commit hooks.

    In PROJECT_DIR (default: the current directory; made if missing). Existing files are
    kept; a git repository is made if PROJECT_DIR is not in one. The new project passes
    `aiops validate` and `aiops test` at once, offline.
    """
    result = commands.init_project(project_dir, force=force)
    for path in result.written:
        say(f"created {path}")
    for path in result.kept:
        say(f"kept    {path} (exists; --force overwrites it)")
    if result.git_repository is not None:
        say(f"made a git repository in {result.git_repository}")
    for note in result.notes:
        say(f"note: {note}")
    say("Next: `aiops validate`, `aiops test`, then commit and push.")


@click.command(epilog="""\b
Examples:
  aiops new summarize
  aiops new classify --provider openai --model gpt-4o-mini
""")
@click.argument("name")
@project_dir_option()
@click.option("--provider", help="A provider of providers.yaml (default: the first one).")
@click.option("--model", help="The model (default: the provider's first priced model).")
@click.option("--description", default="Describe what it does.", show_default=True,
              help="The function's description.")
def new(name: str, project_dir: Path, provider: str | None, model: str | None,
        description: str) -> None:
    """Scaffold functions/NAME/function.yaml.

    NAME: lowercase letters, digits and dashes. The skeleton validates at once; edit its
    prompt and schemas, then `aiops plan`.
    """
    for path in commands.new_function(commands.open_workspace(project_dir), name,
                                      description=description, provider=provider, model=model):
        say(f"created {path}")


@click.command()
@click.option("--kind", type=click.Choice(["function", "providers"]), default="function",
              show_default=True, help="The format: a function file, or providers.yaml.")
def schema(kind: str) -> None:
    """Print the JSON Schema of the function format (or of providers.yaml)."""
    emit(commands.schema_text(kind), nl=False)


__all__ = ["init", "new", "schema", "validate"]
