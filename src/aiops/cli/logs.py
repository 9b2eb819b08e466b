"""`aiops logs`: the executions the runner recorded, without SQL (a thin wrapper over
aiops.commands).

- `aiops logs` lists the newest executions of every function, `aiops logs NAME` those of one
  function: a table, or JSON lines with `--json`; `--limit` bounds them (20 by default).
- `aiops logs --id LOG_ID` shows one execution in full: its input, output and error, and each
  attempt (provider, model, status, latency, error) from the row's `metadata.attempts`; one
  JSON object with `--json`. In the text view a value longer than SHOWN_CHARS is cut, saying
  how much more `--json` prints.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from aiops.cli import database_option, emit, json_option, json_text, paint, project_dir_option, say
from aiops.errors import UsageError
from aiops.records import LogRecord

SHOWN_CHARS = 20_000  # of an input, output or error in the text view of one execution
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


_EXAMPLES = """\b
Examples:
  aiops logs                          the newest executions of every function
  aiops logs summarize --status error --since 24h
  aiops logs --limit 200 --json | jq -r 'select(.status == "error") | .id'
  aiops logs --id LOG_ID              one execution, with its attempts
"""


@click.command(epilog=_EXAMPLES)
@click.argument("name", required=False)
@click.option("--id", "log_id", metavar="LOG_ID",
              help="Show this execution in full: its input, output, error and each attempt.")
@click.option("--status", type=click.Choice(["ok", "error"]), default=None,
              help="Only the executions that succeeded, or failed.")
@click.option("--since", default=None, help="A duration (15m, 24h, 7d) or an ISO time.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000),
              help="Most executions listed.")
@json_option("JSON: one line per execution; with --id, one object with everything.")
@project_dir_option()
@database_option
def logs(name: str | None, log_id: str | None, status: str | None, since: str | None,
         limit: int, as_json: bool, project_dir: Path, database_url: str | None) -> None:
    """Recent executions, newest first: of every function, of one, or one in full.

    Without NAME, every function's; with NAME, that function's: time, log id, function,
    version, status, provider, latency, attempts, tokens, cost and error. With --id LOG_ID
    (the id a table row or an error names), that execution in full.
    """
    from aiops import commands

    if log_id is not None and (name is not None or status is not None or since is not None):
        raise UsageError("--id shows one execution: give it without NAME, --status or --since")
    after = parse_since(since)
    ws = commands.open_workspace(project_dir, database_url=database_url)
    if log_id is not None:
        record = commands.log_by_id(ws, log_id)
        if as_json:
            emit(json_text(execution_json(record)))
        else:
            say(render_execution(record))
        return
    rows = commands.logs(ws, name, limit=limit, status=status, since=after)
    if as_json:
        for r in rows:
            emit(json_text(_summary(r)))
        return
    if not rows:
        say(f"No executions of {name} match." if name else "No executions match.")
        return
    say(_table(rows), one_line=False, style=_paint_table)


def _attempts(r: LogRecord) -> list[dict[str, Any]]:
    attempts = r.metadata.get("attempts")
    return [a for a in attempts if isinstance(a, dict)] if isinstance(attempts, list) else []


def _error_message(r: LogRecord) -> str:
    if isinstance(r.error, dict):
        return str(r.error.get("message", ""))
    return "" if r.error is None else str(r.error)


def _summary(r: LogRecord) -> dict[str, Any]:
    """One execution in the list (`--json`): `attempts` is their number."""
    return {"id": r.id, "created_at": r.created_at.isoformat(), "function": r.name,
            "version": r.version, "status": r.status, "provider": r.provider,
            "model": r.metadata.get("model"), "execution_ms": r.execution_time,
            "input_tokens": r.input_tokens, "output_tokens": r.output_tokens,
            "cost_usd": r.cost_usd, "actor": r.actor, "error": r.error,
            "attempts": len(_attempts(r))}


def execution_json(r: LogRecord) -> dict[str, Any]:
    """One execution in full (`--id --json`): the list's fields, with `attempts` a list of
    objects, and the input, the output and the row's other metadata."""
    extra = {k: v for k, v in r.metadata.items() if k not in ("attempts", "model", "version")}
    return {**_summary(r), "attempts": _attempts(r), "input": r.input, "output": r.output,
            "metadata": extra}


_HEADER = ("TIME (UTC)", "LOG ID", "FUNCTION", "VERSION", "STATUS", "PROVIDER", "MS", "ATT",
           "TOKENS", "COST $", "ERROR")
_RIGHT = {"MS", "ATT", "TOKENS", "COST $"}


def _table(rows: list[LogRecord]) -> str:
    cells = [_HEADER] + [(
        f"{r.created_at:%Y-%m-%d %H:%M:%S}", r.id, r.name, r.version or "-", r.status,
        r.provider or "-", f"{r.execution_time or 0:.0f}", str(len(_attempts(r))),
        str((r.input_tokens or 0) + (r.output_tokens or 0)), f"{r.cost_usd or 0:.6f}",
        _error_message(r)[:100]) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(_HEADER) - 1)]
    lines = []
    for row in cells:
        padded = [cell.rjust(w) if head in _RIGHT else cell.ljust(w)
                  for head, cell, w in zip(_HEADER, row, widths, strict=False)]
        # each row on one line: a newline in an error message is written as \n
        lines.append(_one_line("  ".join([*padded, row[-1]]).rstrip()))
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _paint_table(text: str) -> str:
    head, *rows = text.split("\n")
    status_at = head.index("STATUS")
    out = [paint(head, bold=True)]
    for row in rows:
        status = row[status_at:].split(" ", 1)[0]
        colour = "green" if status == "ok" else "red"
        out.append(row[:status_at] + paint(status, colour) + row[status_at + len(status):])
    return "\n".join(out)


def render_execution(r: LogRecord) -> str:
    """One execution for a person: its facts, input, output, error, then one line per
    attempt."""
    meta = r.metadata
    model = meta.get("model")
    lines = [f"Execution {r.id}",
             f"  function  {r.name} {r.version}",
             f"  time      {r.created_at:%Y-%m-%d %H:%M:%S} UTC",
             f"  status    {r.status}",
             f"  provider  {r.provider or '-'}{f' / {model}' if model else ''}",
             f"  latency   {_ms(r.execution_time)}",
             f"  tokens    {r.input_tokens or 0} in, {r.output_tokens or 0} out"
             f"  (cost ${r.cost_usd or 0:.6f})",
             f"  actor     {r.actor or '-'}"]
    if meta.get("git_commit"):
        lines.append(f"  commit    {meta['git_commit']}")
    error = r.error
    if isinstance(error, dict) and {"type", "message"} <= error.keys():
        error = f"{error['type']} (exit {error.get('exit_code', '?')}): {error['message']}"
    for title, value in (("Input", r.input), ("Output", r.output), ("Error", error)):
        lines += ["", f"{title}:", _indented(_shown(value))]
    attempts = _attempts(r)
    lines += ["", f"Attempts ({len(attempts)}):"]
    for n, a in enumerate(attempts, 1):
        what = " ".join(str(x) for x in (a.get("kind"), a.get("http_status")) if x)
        facts = [f"{a.get('provider', '?')}/{a.get('model', '?')}", str(a.get("status", "?")),
                 _ms(a.get("latency_ms"))]
        if a.get("repair"):
            facts.append("repair")
        if a.get("limit_wait_ms"):
            facts.append(f"waited {_ms(a['limit_wait_ms'])} for a rate limit")
        if what:
            facts.append(what)
        lines.append(f"  {n}. " + "  ".join(facts))
        if a.get("error") or a.get("message"):
            error = ": ".join(str(x) for x in (a.get("error"), a.get("message")) if x)
            lines.append(f"     {_one_line(error)}")
    if not attempts:
        lines.append("  (none: it failed before calling a provider)")
    return "\n".join(lines)


def _ms(value: Any) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.0f} ms"


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False,
                                                           default=str)
    if len(text) > SHOWN_CHARS:
        return (f"{text[:SHOWN_CHARS]}\n... ({len(text) - SHOWN_CHARS} more characters; "
                "--json prints it whole)")
    return text


def _indented(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.split("\n"))
