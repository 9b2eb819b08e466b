"""`aiops serve`: the REST API on uvicorn (aiops.server), and `aiops token`: the API tokens
(aiops.commands.tokens). Thin: parse, call, print.

Exit codes: 0 success, 1 error (not a project, unknown token), 2 a bad command line (also
an address `serve` cannot listen on: the port is in use, the host is not this machine's).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from aiops import commands
from aiops.cli import emit, project_dir_option, say
from aiops.cli.params import FiniteFloat

project_dir = project_dir_option("root")


@click.command()
@project_dir
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="The port to listen on.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes; each holds its own connections, none holds state.")
@click.option("--writes", type=click.Choice(["commit", "branch", "off"]), default="commit",
              show_default=True, help="What API writes do: commit and apply, commit on a new "
              "branch without applying, or refuse.")
@click.option("--database-url", default=None, help="The database (default: the project's).")
@click.option("--alerts/--no-alerts", default=True, show_default=True,
              help="Whether this server's workers evaluate the alert rules (--no-alerts: "
              "leave it to other replicas, or to `aiops alerts check`).")
def serve(root: Path, host: str, port: int, workers: int, writes: str,
          database_url: str | None, alerts: bool) -> None:
    """Serve the REST API and its reference page (/docs) until interrupted.

    Every request but /healthz, /readyz, /openapi.json and /docs needs a token
    (`aiops token create`). Example:

        aiops serve --port 8080 &
        curl -H "Authorization: Bearer $TOKEN" localhost:8080/api/contributor/ai-functions
    """
    from aiops.server.app import ServerConfig
    from aiops.server.app import serve as run_server

    config = ServerConfig(project_dir=str(root), database_url=database_url,
                          writes=writes, evaluate_alerts=alerts)  # type: ignore[arg-type]
    run_server(config, host=host, port=port, workers=workers)


@click.group()
def token() -> None:
    """Manage the API's tokens: create (shown once), list, revoke."""


@token.command("create")
@project_dir
@click.option("--name", required=True, help="The token's name (unique among active tokens).")
@click.option("--role", required=True, type=click.Choice(["viewer", "invoker", "editor", "admin"]),
              help="viewer reads; invoker also runs; editor also writes; admin also manages "
              "tokens.")
@click.option("--groups", default="", help="Comma-separated groups, matched against the "
              "functions' access lists.")
@click.option("--expires", default=None, help="Lifetime: 90d, 12h, 30m (default: no expiry).")
@click.option("--user", default=None, help='Who the token acts for, "Name <email>" (default: '
              "a user named like the token).")
@click.option("--rpm", type=click.IntRange(min=1), default=None,
              help="Requests per minute this token may run.")
@click.option("--daily-calls", type=click.IntRange(min=1), default=None,
              help="Calls per day this token may run.")
@click.option("--daily-usd", type=FiniteFloat(min=0.0, min_open=True), default=None,
              help="USD per day this token's calls may cost.")
@click.option("--json", "as_json", is_flag=True, help="Print the token and its record as JSON.")
def create(root: Path, name: str, role: str, groups: str, expires: str | None,
           user: str | None, rpm: int | None, daily_calls: int | None, daily_usd: float | None,
           as_json: bool) -> None:
    """Make a token and print it, once: it is stored only as a hash."""
    made = commands.create_token(
        commands.open_workspace(root), name=name, role=role,
        groups=tuple(g.strip() for g in groups.split(",") if g.strip()), expires=expires,
        user=user, rpm=rpm, daily_calls=daily_calls, daily_usd=daily_usd)
    if as_json:
        emit(json.dumps({"token": made.text, **_record(made.record)}, indent=2))
        return
    say(f"Created token {made.record.name} (key id {made.record.key_id}, role "
        f"{made.record.role}). It is shown this once; store it now:", err=True)
    emit(made.text)


@token.command("list")
@project_dir
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked tokens.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
def list_(root: Path, include_revoked: bool, as_json: bool) -> None:
    """The tokens, by name (never their secrets)."""
    tokens = commands.list_tokens(commands.open_workspace(root), include_revoked=include_revoked)
    if as_json:
        emit(json.dumps({"tokens": [_record(t) for t in tokens]}, indent=2))
        return
    if not tokens:
        say("No tokens; `aiops token create --name NAME --role ROLE` makes one.")
        return
    now = datetime.now(UTC)
    header = ("NAME", "KEY ID", "ROLE", "GROUPS", "STATE", "EXPIRES", "LAST USED", "QUOTAS",
              "TODAY")
    table = [header] + [(t.name, t.key_id, t.role, ",".join(t.groups) or "-", t.state(now),
                         _when(t.expires_at), _when(t.last_used_at), _quotas(t), _today(t))
                        for t in tokens]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        say("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(),
            one_line=True)


@token.command("revoke")
@project_dir
@click.argument("ref")
def revoke(root: Path, ref: str) -> None:
    """Revoke the token whose key id or name is REF: it is refused from now on."""
    record = commands.revoke_token(commands.open_workspace(root), ref)
    say(f"Revoked token {record.name} (key id {record.key_id}).")


def _quotas(t: Any) -> str:
    """`60 rpm, 1000 calls/day, $5/day`, or `-`."""
    parts = ([f"{t.rpm} rpm"] if t.rpm is not None else []) + (
        [f"{t.daily_calls} calls/day"] if t.daily_calls is not None else []) + (
        [f"${t.daily_usd:g}/day"] if t.daily_usd is not None else [])
    return ", ".join(parts) or "-"


def _today(t: Any) -> str:
    """What the token's calls used today (UTC): `12 calls, $0.0034`."""
    return f"{t.calls_today} call{'s' if t.calls_today != 1 else ''}, ${t.usd_today:.4f}"


def _when(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M}"


def _record(t: Any) -> dict[str, Any]:
    return {"name": t.name, "key_id": t.key_id, "role": t.role, "groups": list(t.groups),
            "user": t.user, "created_by": t.created_by,
            "created_at": t.created_at.isoformat(),
            "expires_at": t.expires_at.isoformat() if t.expires_at else None,
            "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
            "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
            "rpm": t.rpm, "daily_calls": t.daily_calls, "daily_usd": t.daily_usd,
            "today": {"calls": t.calls_today, "usd": t.usd_today}}
