"""The contributor API's reads: functions, one function (with an ETag), its versions (with
diffs) and its logs. Each is a verb of `aiops.commands.catalog`, called with the caller."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import Header, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field

from aiops.access import Permission
from aiops.catalog import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    FunctionDetail,
    FunctionSummary,
    LogEntry,
    LogFilter,
    VersionDetail,
    VersionSummary,
)
from aiops.commands import catalog
from aiops.errors import UsageError
from aiops.server.api.guard import CallerDep, Operations
from aiops.spec import SEMVER_PATTERN

if TYPE_CHECKING:
    from aiops.store import Store

ops = Operations("functions")
BASE = "/api/contributor/ai-functions"

FunctionRef = Annotated[str, Path(description="The function's id (a UUID) or its name.",
                                  max_length=100)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
Cursor = Annotated[str | None, Query(max_length=500, description=(
    "The `next_cursor` of the previous page; leave out for the first."))]


class FunctionPage(BaseModel):
    items: list[FunctionSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at "
                                    "the end.")


class VersionPage(BaseModel):
    items: list[VersionSummary]
    next_cursor: str | None


class LogPage(BaseModel):
    items: list[LogEntry]
    next_cursor: str | None


def _store(request: Request) -> Store:
    store: Store = request.app.state.aiops.store()
    return store


@ops.get(BASE, permission=Permission.VIEW, response_model=FunctionPage,
         problems=["validation-failed", "bad-request"],
         summary="List the functions your token may view, by name")
def list_functions(request: Request, caller: CallerDep,
                   status: Annotated[Literal["draft", "active", "deprecated", "archived"] | None,
                                     Query(description="Only functions with this status.")] = None,
                   search: Annotated[str | None, Query(max_length=200, description=(
                       "A case-insensitive part of the name or the description."))] = None,
                   cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT) -> FunctionPage:
    page = catalog.list_functions(_store(request), caller=caller, status=status, search=search,
                                  cursor=cursor, limit=limit)
    return FunctionPage(items=list(page.items), next_cursor=page.next_cursor)


@ops.get(BASE + "/{id}", permission=Permission.VIEW, response_model=FunctionDetail,
         responses={304: {"description": "Not modified: the ETag you sent is current."}},
         summary="One function: its current spec, versions, sync state and your permissions")
def get_function(request: Request, response: Response, caller: CallerDep, id: FunctionRef,
                 if_none_match: Annotated[str | None, Header(max_length=1000)] = None
                 ) -> FunctionDetail | Response:
    from aiops.commands import function_etag

    server = request.app.state.aiops
    detail = catalog.get_function(_store(request), id, caller=caller, ws=server.workspace)
    # The function's file at HEAD names its version, the one PUT and DELETE check If-Match
    # against; a function without one there (archived, another project's, a project outside
    # git) gets a hash of what this answer holds.
    try:
        tag = function_etag(server.workspace, detail.summary.name) or etag(detail)
    except UsageError:  # the project is not in a git repository: no file at HEAD
        tag = etag(detail)
    headers = {"ETag": tag, "Vary": "Authorization", "Cache-Control": "private, no-cache"}
    if if_none_match is not None and _matches(if_none_match, tag):
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return detail


def etag(value: object) -> str:
    """A strong ETag of what an answer holds."""
    raw = json.dumps(jsonable_encoder(value), sort_keys=True, separators=(",", ":"))
    return '"' + hashlib.sha256(raw.encode()).hexdigest()[:32] + '"'


def _matches(header: str, tag: str) -> bool:
    """If-None-Match: `*`, or a list of tags (weak comparison, RFC 9110 §13.1.2)."""
    listed = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in listed or tag in listed


@ops.get(BASE + "/{id}/versions", permission=Permission.VIEW, response_model=VersionPage,
         problems=["bad-request"], summary="A function's versions, newest first")
def list_versions(request: Request, caller: CallerDep, id: FunctionRef, cursor: Cursor = None,
                  limit: Limit = DEFAULT_LIMIT) -> VersionPage:
    page = catalog.list_versions(_store(request), id, caller=caller, cursor=cursor, limit=limit)
    return VersionPage(items=list(page.items), next_cursor=page.next_cursor)


Semver = Annotated[str, Path(pattern=SEMVER_PATTERN, max_length=100,
                             description="A version, e.g. 1.2.0.")]


@ops.get(BASE + "/{id}/versions/{version}", permission=Permission.VIEW,
         response_model=VersionDetail,
         summary="One version's content, and its diff against the version before it (or "
         "`against`)")
def get_version(request: Request, caller: CallerDep, id: FunctionRef, version: Semver,
                against: Annotated[str | None, Query(pattern=SEMVER_PATTERN, max_length=100,
                                                     description="Compare with this version "
                                                     "instead.")] = None) -> VersionDetail:
    return catalog.get_version(_store(request), id, version, caller=caller, against=against)


@ops.get(BASE + "/{id}/logs", permission=Permission.VIEW, response_model=LogPage,
         problems=["bad-request"],
         summary="A function's executions, newest first",
         description="Inputs, outputs and error messages are shown to tokens that may edit the "
         "function (role editor or above, on its `access.edit` list), and on the rows of the "
         "token's own calls; other rows have `content_hidden: true`.")
def function_logs(request: Request, caller: CallerDep, id: FunctionRef,
                  status: Annotated[Literal["ok", "error"] | None, Query()] = None,
                  version: Annotated[str | None, Query(pattern=SEMVER_PATTERN,
                                                       max_length=100)] = None,
                  actor: Annotated[str | None, Query(max_length=320)] = None,
                  since: Annotated[datetime | None, Query(description=(
                      "From this time on (ISO 8601; UTC without a zone)."))] = None,
                  until: Annotated[datetime | None, Query(description=(
                      "Before this time (ISO 8601)."))] = None,
                  cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT) -> LogPage:
    where = LogFilter(status=status, version=version, actor=actor, since=since, until=until)
    page = catalog.function_logs(_store(request), id, caller=caller, where=where,
                                 cursor=cursor, limit=limit)
    return LogPage(items=list(page.items), next_cursor=page.next_cursor)
