"""`aiops stats` and `aiops rollups`: execution stats read from the rollups, and the rollups'
upkeep (a thin wrapper over aiops.commands).

- `aiops stats [NAME] [--since 24h] [--by version|provider|model|day] [--json]`: calls,
  errors, error rate, p50/p95/p99 latency, tokens, cost and the share of today's budget and
  quota used, per function (or for one), in total or per group.
- `aiops rollups backfill`: compute the rollups from the logs written before them (once,
  after `aiops db upgrade` to revision 0005; idempotent).
- `aiops rollups compact [--older-than 7d]`: per-minute rows older than that are deleted (the
  hourly rows, written with them, keep their sums).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from aiops.cli import database_option, emit, json_option, json_text, project_dir_option, say
from aiops.cli.logs import parse_since
from aiops.errors import UsageError

_EXAMPLES = """\b
Examples:
  aiops stats                         every function, the last 24 hours
  aiops stats summarize --since 7d --by version
  aiops stats --by day --since 30d --json | jq '.functions[].calls'
"""


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}ms" if value >= 10 else f"{value:.1f}ms"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _budget(b: dict[str, Any]) -> str:
    parts = []
    if b["calls_share"] is not None:
        parts.append(f"calls {_pct(b['calls_share'])} of {b['daily_calls']}")
    if b["usd_share"] is not None:
        parts.append(f"${b['usd_spent']:.4f} = {_pct(b['usd_share'])} of "
                     f"${b['daily_budget_usd']:g}")
    return ", ".join(parts) or "-"


_HEAD = ("FUNCTION", "GROUP", "CALLS", "ERRORS", "ERR%", "P50", "P95", "P99", "TOKENS IN",
         "TOKENS OUT", "COST $", "BUDGET TODAY")


def _line(name: str, group: str, s: dict[str, Any], budget: str) -> tuple[str, ...]:
    return (name, group, str(s["calls"]), str(s["errors"]), _pct(s["error_rate"]),
            _ms(s["p50_ms"]), _ms(s["p95_ms"]), _ms(s["p99_ms"]), str(s["input_tokens"]),
            str(s["output_tokens"]), f"{s['cost_usd']:.6f}", budget)


def render(report: dict[str, Any]) -> str:
    rows: list[tuple[str, ...]] = [_HEAD]
    for f in report["functions"]:
        rows.append(_line(f["name"], "all", f, _budget(f["budget"])))
        for g in f["groups"]:
            label = g.get("key", g.get("start", ""))
            if "key" in g and "start" in g:
                label = f"{g['key']} {g['start']}"
            rows.append(_line("", str(label) or "''", g, ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEAD))]
    text = "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)
    t = report["total"]
    return (f"{text}\n\nFrom {report['since']} to {report['until']} (UTC): {t['calls']} calls, "
            f"{t['errors']} errors, ${t['cost_usd']:.6f}. Percentiles are read from latency "
            "buckets: within about 9 %.")


@click.command(epilog=_EXAMPLES)
@click.argument("name", required=False)
@click.option("--since", default="24h", show_default=True,
              help="A duration (15m, 24h, 7d) or an ISO time.")
@click.option("--by", type=click.Choice(["version", "provider", "model", "day"]), default=None,
              help="Also each version, provider, model or UTC day apart.")
@json_option("JSON: one object with the window, the total and each function.")
@project_dir_option()
@database_option
def stats(name: str | None, since: str, by: str | None, as_json: bool, project_dir: Path,
          database_url: str | None) -> None:
    """Calls, errors, latency percentiles, tokens, cost and budget used, per function.

    Every function in the database, or NAME only (a name or an id). Read from the rollups
    each log write keeps (never by scanning the logs): calls, errors,
    error rate, p50/p95/p99 latency (from fixed buckets, within about 9 %), input and output
    tokens, cost, and the share of today's daily_calls and daily_budget_usd used. Logs
    written before the rollups existed count once `aiops rollups backfill` has run.
    """
    from aiops import commands

    after = parse_since(since)
    ws = commands.open_workspace(project_dir, database_url=database_url)
    report = commands.stats(ws.open_store(), name, since=after, by=by).as_dict()
    if as_json:
        emit(json_text(report))
    elif not report["functions"]:
        say("No functions in the database; run `aiops apply` first.")
    else:
        say(render(report), one_line=False)


@click.group()
def rollups() -> None:
    """The per-minute rollups that stats read: backfill and compaction."""


@rollups.command()
@project_dir_option()
@database_option
def backfill(project_dir: Path, database_url: str | None) -> None:
    """Compute the rollups from every log row (idempotent).

    Run it once after upgrading to a database with rollups, for the logs written before:
    it recomputes the whole table. Log writers wait while it runs; run it at a quiet time.
    """
    from aiops import commands

    ws = commands.open_workspace(project_dir, database_url=database_url)
    counted = commands.backfill_rollups(ws.open_store())
    say(f"Rollups recomputed from {counted} executions.")


@rollups.command()
@click.option("--older-than", default="7d", show_default=True,
              help="Compact per-minute rows older than this duration (at least 1h).")
@project_dir_option()
@database_option
def compact(older_than: str, project_dir: Path, database_url: str | None) -> None:
    """Delete per-minute rollups older than --older-than; the hourly rows keep their sums.

    Sums do not change; a window that starts or ends inside a compacted hour counts the
    whole hour. Run it daily (cron).
    """
    from datetime import UTC, datetime

    from aiops import commands

    cut = parse_since(older_than)
    if cut is None or not older_than[-1:].isalpha():
        raise UsageError(f"--older-than {older_than!r}: use a duration (48h, 7d)")
    ws = commands.open_workspace(project_dir, database_url=database_url)
    merged = commands.compact_rollups(ws.open_store(), datetime.now(UTC) - cut)
    say(f"Deleted {merged} per-minute rollup rows older than {older_than}; their hours stay "
        "summed in the hourly rows.")
