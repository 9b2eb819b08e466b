"""`aiops plan`, `apply`, `watch`, `status`, `db upgrade`: thin wrappers over aiops.commands.

Exit codes: 0 success (plan: no changes, with --detailed-exitcode), 1 error, 2 changes
(plan --detailed-exitcode), 75 the reconcile lock is busy.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from aiops import commands
from aiops.cli import emit_json, json_option, output_format, paint, project_dir_option, say
from aiops.cli.params import FiniteFloat, Format, OutputFile
from aiops.errors import LockBusy, UsageError
from aiops.files import FileRefused, read_bounded
from aiops.plan import Plan
from aiops.render_plan import (
    exit_code,
    plan_json,
    render_json,
    render_markdown,
    render_text,
)

MAX_LOCK_TIMEOUT_S = 86400.0  # a day; PostgreSQL's lock_timeout holds at most 24.8 days
project_dir = project_dir_option("root")
prune_opt = click.option("--prune", is_flag=True,
                         help="Archive functions of this project whose file was removed.")
max_prune_opt = click.option("--max-prune", type=click.IntRange(min=0), default=None,
                             help="Most archives in one apply (default: aiops.yaml max_prune, 10).")
adopt_opt = click.option("--adopt", is_flag=True,
                         help="Take over functions of the same name that another project "
                              "applied (refused otherwise, naming the owner).")


class _DetailedUsageError(click.UsageError):
    exit_code = 1


class _PlanCommand(click.Command):
    """With --detailed-exitcode, 2 means "changes": a bad command line exits 1 instead."""

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        detailed = "--detailed-exitcode" in args  # before parsing consumes `args`
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            if detailed:
                raise _DetailedUsageError(exc.format_message(), exc.ctx) from None
            raise


_PLAN_EXAMPLES = """\b
Examples:
  aiops plan                          what would change, and why
  aiops plan --detailed-exitcode      exit 2 when there are changes (CI)
  aiops plan --json | jq .counts      the plan as JSON
  aiops plan --format markdown        for a pull-request comment
  aiops plan -o plan.json             save it; then: aiops apply plan.json
  aiops plan --prune                  also archive what lost its file
"""


@click.command(cls=_PlanCommand, epilog=_PLAN_EXAMPLES)
@project_dir
@prune_opt
@max_prune_opt
@adopt_opt
@json_option("Print the plan as JSON (the saved plan's format).")
@click.option("--format", "fmt", type=Format("text", "markdown"), default="text",
              show_default=True, help="text for a terminal, markdown for a pull request.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 no changes, 1 error, 2 changes.")
@click.option("-o", "--out", type=OutputFile(allow_dash=True),
              help="Save the plan (with the state it was computed against) for `aiops apply`; "
                   "`-` writes it to stdout (and the plan a person reads to stderr).")
def plan(root: Path, prune: bool, max_prune: int | None, adopt: bool, as_json: bool, fmt: str,
         detailed_exitcode: bool, out: Path | None) -> None:
    """Show what `aiops apply` would change in the database, and why.

    The verdict first, then each function's action and reason, with the prompt and schema
    diffs. Exit 0 (with --detailed-exitcode: 0 no changes, 2 changes), 1 on errors.
    """
    try:
        fmt = output_format(as_json, fmt)
        result = commands.plan(commands.open_workspace(root), prune=prune, max_prune=max_prune,
                               adopt=adopt)
    except UsageError as exc:
        if detailed_exitcode:  # 2 means "changes" here; every error is 1
            exc.exit_code = 1
        raise
    render = {"text": render_text, "json": render_json, "markdown": render_markdown}[fmt]
    to_stdout = out is not None and str(out) == "-"
    if fmt == "json" and not to_stdout:
        emit_json(render(result))
    else:  # stdout is the saved plan's with `-o -`
        say(render(result), err=to_stdout, style=paint_plan if fmt == "text" else None)
    if out is not None:
        if result.errors:
            say("Error: the plan has errors; not saved.", err=True)
        elif to_stdout:
            emit_json(render_json(result))
        else:
            out.write_text(render_json(result) + "\n", encoding="utf-8")
            if fmt == "text":
                say(f"\nSaved to {out}; apply it with `aiops apply {out}`.")
    raise SystemExit(exit_code(result, detailed_exitcode))


_VERDICT = {"No changes": "green", "Plan failed": "red"}  # by its start; otherwise yellow
_SIGN = {"+": "green", "-": "red", "~": "yellow", "<": "yellow", "@": "cyan"}


def paint_plan(text: str) -> str:
    """The plan as `render_text` writes it, in colour: the verdict (green: nothing to do, red:
    errors, yellow: changes), each change by its symbol (+ create, ~ new version, < rollback,
    - archive), the errors, drift and breaking items, and the diffs' lines."""
    lines = text.split("\n")
    section = ""
    for i, line in enumerate(lines):
        body = line.lstrip(" ")
        indent = len(line) - len(body)
        if i == 0:
            colour = next((c for start, c in _VERDICT.items() if line.startswith(start)),
                          "yellow")
            lines[i] = paint(line, colour, bold=True)
        elif indent == 0:
            section = line
            if line[:1] in _SIGN and line[1:2] == " ":
                lines[i] = paint(line, _SIGN[line[0]], bold=True)
            elif line.startswith("Errors"):
                lines[i] = paint(line, "red", bold=True)
        elif section.startswith(("Errors", "Drift")):
            lines[i] = paint(line, "red" if section.startswith("Errors") else "yellow")
        elif indent == 4 and body.startswith("breaking:"):
            lines[i] = paint(line, "red")
        elif indent == 6 and body.startswith(("+++ ", "--- ")):
            lines[i] = paint(line, bold=True)
        elif indent == 6 and body[:1] in _SIGN:
            lines[i] = paint(line, _SIGN[body[0]])
    return "\n".join(lines)


def _interactive() -> bool:
    """Whether a person can answer (Terraform's rule: no terminal, no question, no apply)."""
    return sys.stdin.isatty()


MAX_PLAN_BYTES = 256 << 20  # a saved plan of 1,000 functions with large schemas is ~50 MiB


def _read_plan(path: Path) -> Plan:
    """A saved plan, read as hostile input: a regular file within MAX_PLAN_BYTES, JSON nested
    no deeper than a function file allows (plus the plan's own levels)."""
    from aiops import fastjson
    from aiops.yamlsrc import MAX_DEPTH

    try:  # the shared bounded reader: a FIFO is refused unopened, /dev/zero unread
        data = read_bounded(path, MAX_PLAN_BYTES, cut=True)
    except FileRefused as exc:
        if exc.missing:
            raise UsageError(f"plan file {path} does not exist; make one with "
                             f"`aiops plan -o {path}`") from None
        raise UsageError(f"plan file {path} {exc.reason}") from None
    if len(data) > MAX_PLAN_BYTES:
        raise UsageError(f"plan file {path} is over {MAX_PLAN_BYTES >> 20} MiB; a plan saved "
                         "by `aiops plan -o` is smaller")
    try:
        return Plan.from_dict(fastjson.loads_input(data.decode("utf-8"), MAX_DEPTH + 10))
    except (ValueError, KeyError, TypeError) as exc:  # UnicodeDecodeError is a ValueError
        raise UsageError(f"{path} is not a plan saved by `aiops plan -o` ({exc})") from None


_APPLY_EXAMPLES = """\b
Examples:
  aiops apply                         show the plan, ask, then write it
  aiops apply --auto-approve          without asking (CI)
  aiops plan -o plan.json && aiops apply plan.json
                                      exactly the plan that was reviewed
  aiops apply --auto-approve --json   the result as JSON
"""


@click.command(epilog=_APPLY_EXAMPLES)
@click.argument("plan_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@project_dir
@prune_opt
@max_prune_opt
@adopt_opt
@click.option("--auto-approve", is_flag=True, help="Apply without asking.")
@click.option("--actor", help="Who applies (default: git config user.name <user.email>).")
@click.option("--lock-timeout", type=FiniteFloat(min=0, max=MAX_LOCK_TIMEOUT_S), default=30.0,
              show_default=True,
              help="Seconds to wait for another apply to finish (exit 75 when it does not).")
@json_option("Print the result as JSON: whether it wrote, the run id, the time and the plan "
             "applied (needs --auto-approve or PLAN_FILE).")
def apply(plan_file: Path | None, root: Path, prune: bool, max_prune: int | None, adopt: bool,
          auto_approve: bool, actor: str | None, lock_timeout: float, as_json: bool) -> None:
    """Write the plan to the database: one transaction, under a lock, recorded.

    Without PLAN_FILE the plan is made now: shown, then applied after you answer `yes` (or at
    once with --auto-approve). PLAN_FILE is a plan saved by `aiops plan -o`: it is applied
    exactly, or refused if the database or the files changed since. Exit 0 when applied or
    nothing to do, 1 on errors or a refused plan, 75 when another apply holds the lock.
    """
    if as_json and plan_file is None and not auto_approve:
        raise UsageError("--json needs --auto-approve or a saved plan (PLAN_FILE): the question "
                         "would mix with the JSON")
    expected: Plan | None = None
    ws = commands.open_workspace(root)
    if plan_file is not None:
        if prune or max_prune is not None or adopt:
            raise UsageError("a saved plan already says whether it prunes and adopts; plan "
                             "again with `aiops plan --prune -o FILE` (or `--adopt`)")
        expected = _read_plan(plan_file)  # a saved plan is its own approval
    elif not auto_approve:
        if not _interactive():
            raise UsageError("refusing to apply without a terminal to ask; pass --auto-approve, "
                             "or apply a saved plan (`aiops plan -o plan.json`, then "
                             "`aiops apply plan.json`)")
        expected = commands.plan(ws, prune=prune, max_prune=max_prune, adopt=adopt)
        say(render_text(expected), style=paint_plan)
        if expected.errors:
            raise SystemExit(1)
        if not expected.has_changes:
            return
        answer = click.prompt("\nApply these changes? Only 'yes' is accepted", default="",
                              show_default=False)
        if answer.strip() != "yes":
            say("Apply cancelled; nothing was written.")
            raise SystemExit(1)
    try:
        # The files read anew: one edited while the question waited refuses the approved plan.
        result = commands.apply(ws.reopened(), expected=expected, prune=prune,
                                max_prune=max_prune, adopt=adopt, actor=actor,
                                lock_timeout_s=lock_timeout)
    except LockBusy as exc:  # the one command with this option names it
        raise LockBusy(f"{exc}, or raise --lock-timeout (it was {lock_timeout:g} s)") from None
    if as_json:
        emit_json(json.dumps({"format_version": 1, "applied": result.wrote,
                              "run_id": result.run_id,
                              "duration_ms": round(result.duration_ms, 3),
                              "plan": plan_json(result.plan)},
                             indent=2, sort_keys=True, ensure_ascii=False))
    else:
        if expected is None:
            say(render_text(result.plan), style=paint_plan)
        if result.wrote:
            say(f"\nApplied in {result.duration_ms:.0f} ms (run {result.run_id}).")
        elif expected is None or plan_file is not None:
            say("Nothing to apply: the database already matches.")
    dirty = [result.dirty_warning] if result.dirty_warning else []
    for warning in (*dirty, *result.log_warnings):
        say(f"Warning: {warning}", err=True, one_line=True)


@click.command()
@project_dir
def watch(root: Path) -> None:
    """Re-validate and re-apply on every change to functions/ and providers.yaml.

    For a development database: each change is applied at once, without a question. Ctrl-C
    stops it.
    """
    ws = commands.open_workspace(root)
    say(f"Watching {ws.root.resolve()} (Ctrl-C to stop).")
    with contextlib.suppress(KeyboardInterrupt):
        commands.watch(ws, commands.file_changes(ws),
                       lambda line: say(line, err=line.startswith("Error")))
    say("Stopped.")


@click.command(epilog="""\b
Examples:
  aiops status                        a table, and the last apply
  aiops status --json | jq '.functions[] | select(.sync != "in sync")'
""")
@project_dir
@json_option("Print JSON: {format_version, functions: [{name, sync, deployed_version, ...}]}.")
def status(root: Path, as_json: bool) -> None:
    """Each function: in sync or not, current version, last apply."""
    result = commands.status(commands.open_workspace(root))
    rows = result.functions
    if as_json:
        emit_json(json.dumps({"format_version": 1, "functions": [r.__dict__ for r in rows]},
                             indent=2, default=str))
        return
    if not rows:
        say("No functions in the files or the database.")
        return
    header = ("FUNCTION", "SYNC", "DEPLOYED", "GIT", "STATUS", "APPLIED", "COMMIT")
    table = [header] + [(r.name, r.sync, r.deployed_version or "-", r.desired_version or "-",
                         r.status or "-", (r.applied_at or "-")[:19].replace("T", " "),
                         _short_commit(r.applied_commit) or "-") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        say("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(),
            one_line=True)
    run = result.last_run
    if run:
        say(f"\nLast apply: {run['finished_at']:%Y-%m-%d %H:%M:%S} UTC by {run['actor']}"
            f" (commit {_short_commit(run['git_commit']) or 'none'}, "
            f"{run['duration_ms']:.0f} ms)")


def _short_commit(commit: str | None) -> str | None:
    """A commit as `status` shows it: 10 characters, and `-dirty` kept (see `aiops apply`)."""
    if commit is None:
        return None
    dirty = commit.endswith("-dirty")
    return commit.removesuffix("-dirty")[:10] + ("-dirty" if dirty else "")


@click.group()
def db() -> None:
    """The database schema."""


@db.command()
@project_dir
def upgrade(root: Path) -> None:
    """Create or migrate the database schema to the newest revision.

    The default SQLite database (.aiops/aiops.db) is migrated on first use; PostgreSQL
    (AIOPS_DATABASE_URL or aiops.yaml's database_url) needs this once per release.
    """
    url = commands.upgrade_database(commands.open_workspace(root))
    say(f"Database {url} is at the newest schema revision.")
