"""`aiops alerts check|list`: evaluate every rule once (for cron), and show rules and states.

Exit codes of `check`: 0 no rule fires, 2 some fire, 1 an error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from aiops import commands
from aiops.cli import database_option, emit_json, json_option, paint, project_dir_option, say

EXIT_FIRING = 2


@click.group()
def alerts() -> None:
    """Alert rules: evaluate them once (check), or show them and their states (list)."""


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        say("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(),
            one_line=True)


_STATE_COLOUR = {"firing": "red", "pending": "yellow", "ok": "green"}


@alerts.command(epilog="""\b
Examples:
  aiops alerts check          evaluate, notify; exit 2 if any rule fires
  * * * * * cd /srv/prompts && aiops alerts check -q      (cron)
  aiops alerts check --json
""")
@project_dir_option()
@database_option
@json_option("Print JSON: {format_version, evaluated, firing, rules, delivery, problems}.")
@click.option("--quiet", "-q", is_flag=True, help="Print only rules that fire and errors.")
def check(project_dir: Path, database_url: str | None, as_json: bool, quiet: bool) -> None:
    """Evaluate every alert rule once, queue and send its notifications.

    Rules are the `alerts:` of the functions in the database (what `aiops apply` wrote);
    receivers are aiops.yaml's `alerting.receivers`. A notification goes out when a rule
    starts firing, when it resolves, and every repeat interval while it fires; a receiver
    that is down gets it on a later run. Exit 0 when no rule fires, 2 when some do, 1 on an
    error.
    """
    ws = commands.open_workspace(project_dir, database_url=database_url)
    report = commands.check_alerts(ws)
    if as_json:
        emit_json(json.dumps({
            "format_version": 1, "evaluated": report.evaluated,
            "firing": len(report.firing),
            "rules": [_result(r) for r in report.results],
            "delivery": {"sent": report.delivery.sent, "retrying": report.delivery.retrying,
                         "failed": report.delivery.failed,
                         "errors": list(report.delivery.errors)},
            "problems": list(report.problems)}, indent=2))
    else:
        for problem in report.problems:
            say(f"warning: {problem}", err=True)
        rows = [("FUNCTION", "RULE", "STATE", "VALUE", "CONDITION")]
        for r in report.results:
            if quiet and r.state.state != "firing":
                continue
            rows.append((r.rule.function, r.rule.rule.rule_name, r.state.state,
                         _value(r.measurement.value), commands.condition_text(r.rule.rule)))
        if len(rows) > 1:
            _table(rows)
        d = report.delivery
        for error in d.errors:
            say(f"delivery: {error}", err=True)
        if not quiet:
            verdict = (f"{len(report.results)} rule(s), {len(report.firing)} firing; "
                       f"{len(report.notifications)} notification(s) queued, {d.sent} sent"
                       + (f", {d.retrying} to retry" if d.retrying else "")
                       + (f", {d.failed} given up" if d.failed else "") + ".")
            say(verdict, style=lambda t: paint(t, "red" if report.firing else "green",
                                               bold=True))
    raise SystemExit(EXIT_FIRING if report.firing else 0)


def _result(r: Any) -> dict[str, Any]:
    return {"function": r.rule.function, "rule": r.rule.rule.rule_name,
            "metric": r.rule.rule.metric, "state": r.state.state,
            "value": r.measurement.value, "baseline_value": r.measurement.baseline,
            "calls": r.measurement.calls,
            "notification": r.event.kind if r.event is not None else None}


@alerts.command("list", epilog="""\b
Examples:
  aiops alerts list
  aiops alerts list --json | jq '.rules[] | select(.state == "firing")'
""")
@project_dir_option()
@database_option
@json_option("Print JSON: {format_version, rules: [...]}.")
def list_(project_dir: Path, database_url: str | None, as_json: bool) -> None:
    """The alert rules in the database and their states (as of the last evaluation)."""
    views = commands.list_alerts(commands.open_workspace(project_dir,
                                                         database_url=database_url))
    if as_json:
        emit_json(json.dumps({"format_version": 1, "rules": [v.as_dict() for v in views]},
                             indent=2))
        return
    if not views:
        say("No alert rules in the database; add `alerts:` to a function and `aiops apply`.")
        return
    rows = [("FUNCTION", "RULE", "STATE", "SINCE", "VALUE", "CONDITION", "NOTIFY")]
    for v in views:
        rows.append((v.function, v.rule, v.state,
                     "-" if v.since is None else f"{v.since:%Y-%m-%d %H:%M}", _value(v.value),
                     v.condition, ",".join(v.notify) or "-"))
    _table(rows)


__all__ = ["alerts"]
