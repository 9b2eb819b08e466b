"""The logs explorer: a function's executions with the API's filters (status, version,
actor, time), and one execution with its attempts and rendered error. Inputs and outputs
show only where the caller may read content (`aiops.access.may_read_content`), as in the
API: the verbs hide them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from aiops import commands
from aiops.access import Caller
from aiops.catalog import LogFilter
from aiops.errors import UsageError
from aiops.spec import SEMVER_PATTERN
from aiops.web.render import render, store
from aiops.web.session import UiCaller

router = APIRouter()
PAGE = 50
MAX_FUNCTIONS = 200  # the function picker's choices (a longer catalog: type the name)


def _time(value: str | None, what: str) -> datetime | None:
    """A `datetime-local` field's value (UTC), or ISO 8601."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{what}: {value[:40]!r} is not a time (2026-01-31T09:30)") from None


def logs_page(caller: Caller, st: Any, *, function: str | None, where: LogFilter,
              cursor: str | None) -> dict[str, Any]:
    names = [f.name for f in commands.list_functions(st, caller=caller,
                                                     limit=MAX_FUNCTIONS).items]
    if not function:
        return {"names": names, "entries": (), "next_cursor": None}
    page = commands.function_logs(st, function, caller=caller, where=where, cursor=cursor,
                                  limit=PAGE)
    return {"names": names, "entries": page.items, "next_cursor": page.next_cursor}


@router.get("/logs")
async def logs_explorer(
        request: Request, caller: UiCaller,
        function: Annotated[str | None, Query(max_length=100)] = None,
        status: Annotated[str | None, Query(pattern="^(ok|error)?$")] = None,
        version: Annotated[str | None, Query(max_length=100)] = None,
        actor: Annotated[str | None, Query(max_length=320)] = None,
        since: Annotated[str | None, Query(max_length=40)] = None,
        until: Annotated[str | None, Query(max_length=40)] = None,
        cursor: Annotated[str | None, Query(max_length=500)] = None) -> HTMLResponse:
    import re

    if version and not re.match(SEMVER_PATTERN, version):
        raise UsageError(f"version {version[:40]!r} is not a version (1.2.0)")
    where = LogFilter(status=status or None, version=version or None, actor=actor or None,
                      since=_time(since, "since"), until=_time(until, "until"))
    context = await run_in_threadpool(logs_page, caller, store(request), function=function,
                                      where=where, cursor=cursor)
    query = {"function": function or "", "status": status or "", "version": version or "",
             "actor": actor or "", "since": since or "", "until": until or ""}
    return render(request, "logs.html", title="Logs", filters=query,
                  log_function=function or "", **context)


@router.get("/logs/{function}/{log_id}")
async def log_row(request: Request, caller: UiCaller, function: str,
                  log_id: str) -> HTMLResponse:
    entry = await run_in_threadpool(commands.function_log, store(request), function, log_id,
                                    caller=caller)
    return render(request, "log.html", title=f"{function} execution", function=function,
                  entry=entry, pretty=_pretty)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
