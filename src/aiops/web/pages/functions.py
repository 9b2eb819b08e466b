"""The functions list and a function's page: what the API's catalog and stats reads return
(`aiops.commands.catalog`, `aiops.commands.monitoring`), drawn as HTML for the caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from aiops import commands
from aiops.access import Caller
from aiops.catalog import FileState, FunctionSummary, VersionDetail
from aiops.commands.monitoring import FunctionStats
from aiops.web.render import render, store, workspace
from aiops.web.session import UiCaller
from aiops.web.svg import sparkline

router = APIRouter()
PAGE = 50
HOURS = 24
SYNC_LABELS = {"in_sync": "in sync", "pointer_moved": "drifted", "not_applied": "not applied"}
SCHEMA_FIELDS = ("input_schema", "output_schema")


@dataclass(frozen=True, kw_only=True)
class Row:
    function: FunctionSummary
    sync: str
    stats: FunctionStats | None
    hourly: tuple[int, ...]


def sync_of(f: FunctionSummary, file: FileState | None) -> str:
    """drifted: someone moved the current version since the last apply (the next apply puts
    it back); not applied: the file in the server's working tree differs from what is
    applied, or is missing, or there is no current version; else in sync."""
    if f.sync == "pointer_moved":
        return "pointer_moved"
    if f.version is None or (file is not None and file.state != "same"):
        return "not_applied"
    return "in_sync"


def function_rows(caller: Caller, st: Any, ws: Any, *, q: str | None, status: str | None,
                  cursor: str | None, now: datetime) -> tuple[list[Row], str | None]:
    """A page of the list: the functions, their files' states, their last 24 hours (totals
    and calls per hour, both from the rollups)."""
    page = commands.list_functions(st, caller=caller, status=status, search=q, cursor=cursor,
                                   limit=PAGE)
    if not page.items:
        return [], page.next_cursor
    files = commands.file_states(ws, st, page.items)
    until = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    since = until - timedelta(hours=HOURS)
    ids = {f.id for f in page.items}
    report = commands.stats(st, None, since=since, until=until, caller=caller, only=ids)
    hourly = commands.calls_series(st, ids, since=since, until=until, step_s=3600)
    by_id = {s.id: s for s in report.functions}
    rows = [Row(function=f, sync=sync_of(f, files.get(f.name)), stats=by_id.get(f.id),
                hourly=hourly.get(f.id, (0,) * HOURS)) for f in page.items]
    return rows, page.next_cursor


@router.get("/functions")
async def functions_list(
        request: Request, caller: UiCaller,
        q: Annotated[str | None, Query(max_length=200)] = None,
        status: Annotated[str | None, Query(pattern="^(draft|active|deprecated|archived)?$")]
        = None,
        sync: Annotated[str | None, Query(pattern="^(in_sync|pointer_moved|not_applied)?$")]
        = None,
        cursor: Annotated[str | None, Query(max_length=500)] = None) -> HTMLResponse:
    rows, next_cursor = await run_in_threadpool(
        function_rows, caller, store(request), workspace(request), q=q or None, status=status or None,
        cursor=cursor, now=datetime.now(UTC))
    if sync:
        rows = [r for r in rows if r.sync == sync]
    return render(request, "functions.html", title="Functions", rows=rows, q=q or "",
                  status=status or "", sync=sync or "", next_cursor=next_cursor,
                  sync_labels=SYNC_LABELS, sparkline=sparkline)


@dataclass(frozen=True, kw_only=True)
class SchemaRow:
    path: str
    type: str
    required: bool
    description: str
    rules: str


def schema_rows(schema: Any, prefix: str = "", depth: int = 0) -> list[SchemaRow]:
    """A JSON Schema's properties as table rows, nested objects and arrays of objects with
    dotted paths (`items[]` for array items)."""
    if not isinstance(schema, dict) or depth > 8:
        return []
    if depth == 0 and "properties" not in schema:  # a string, an array, ...: the value itself
        return [SchemaRow(path="(the whole value)", type=_type_of(schema), required=True,
                          description=str(schema.get("description", "")),
                          rules=_rules_of(schema))]
    rows: list[SchemaRow] = []
    required = set(schema.get("required") or ())
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        path = f"{prefix}{name}"
        rows.append(SchemaRow(path=path, type=_type_of(prop), required=name in required,
                              description=str(prop.get("description", "")),
                              rules=_rules_of(prop)))
        rows += schema_rows(prop, path + ".", depth + 1)
        items = prop.get("items")
        if isinstance(items, dict):
            rows += schema_rows(items, path + "[].", depth + 1)
    return rows


def _type_of(prop: dict[str, Any]) -> str:
    kind = prop.get("type")
    if isinstance(kind, list):
        kind = " | ".join(str(k) for k in kind)
    if kind == "array" and isinstance(prop.get("items"), dict):
        return f"array of {_type_of(prop['items'])}"
    if kind is None and "$ref" in prop:
        return f"$ref {prop['$ref']}"
    if kind is None and "enum" in prop:
        return "enum"
    return str(kind or "any")


_RULES = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
          "pattern", "format", "minItems", "maxItems", "const")


def _rules_of(prop: dict[str, Any]) -> str:
    import json

    parts = []
    if "enum" in prop:
        parts.append("one of " + ", ".join(json.dumps(v) for v in prop["enum"]))
    parts += [f"{k} {json.dumps(prop[k])}" for k in _RULES if k in prop]
    if "default" in prop:
        parts.append(f"default {json.dumps(prop['default'])}")
    return "; ".join(parts)


def split_diff(detail: VersionDetail | None) -> dict[str, list[Any]]:
    """A diff's fields in three parts: the prompt, the schemas, the settings (the rest)."""
    parts: dict[str, list[Any]] = {"prompt": [], "schemas": [], "settings": []}
    for change in detail.diff if detail else ():
        part = ("prompt" if change.field == "prompt"
                else "schemas" if change.field in SCHEMA_FIELDS else "settings")
        parts[part].append(change)
    return parts


def function_page(caller: Caller, request: Request, name: str, a: str | None,
                  b: str | None) -> dict[str, Any]:
    st, ws = store(request), workspace(request)
    detail = commands.get_function(st, name, caller=caller, ws=ws)
    versions = detail.versions
    diff = None
    if len(versions) > 1 or (a and b):
        to = b or versions[0].version
        base = a or (versions[1].version if len(versions) > 1 else None)
        diff = commands.get_version(st, name, to, caller=caller, against=base)
    logs = commands.function_logs(st, name, caller=caller, limit=10).items
    stats = commands.stats(st, name, caller=caller).functions[0]
    rules = [r for r in commands.alerts_overview(st, caller=caller, limit=1).rules
             if r.function == detail.summary.name]
    spec = detail.spec or {}
    return {"detail": detail, "diff": diff, "diff_parts": split_diff(diff),
            "logs": logs, "stats": stats, "rules": rules,
            "schemas": {f: schema_rows(spec.get(f)) for f in SCHEMA_FIELDS},
            "sync": SYNC_LABELS[sync_of(detail.summary, detail.file)],
            "can_edit": "edit" in detail.allowed, "can_invoke": "invoke" in detail.allowed}


@router.get("/functions/{name}")
async def function_detail(
        request: Request, caller: UiCaller, name: str,
        a: Annotated[str | None, Query(max_length=100)] = None,
        b: Annotated[str | None, Query(max_length=100)] = None) -> HTMLResponse:
    context = await run_in_threadpool(function_page, caller, request, name, a or None,
                                      b or None)
    return render(request, "function.html", title=context["detail"].summary.name, **context)
