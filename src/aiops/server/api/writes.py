"""The contributor API's writes: create, change and delete a function through git (DESIGN §9).

Each is a verb of `aiops.commands.writes`, called with the caller (the function's access lists
apply), the caller's user as the commit's author, and the server's `--writes` mode. The body is
the function document as JSON, or as YAML with `Content-Type: application/yaml`. The answer says
what was committed, on which branch, and what the apply did:

    commit mode   201 (POST) or 200, with the function's new ETag; `applied` says whether the
                  database holds it now (a failed apply is reported, the commit stays)
    branch mode   202: committed on `branch`, not applied
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from fastapi import Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from aiops import commands
from aiops.access import Caller, Permission
from aiops.commands.writes import Identity, WriteResult
from aiops.errors import Diagnostic, NotFoundError, shown
from aiops.server.api.functions import BASE, FunctionRef
from aiops.server.api.guard import CallerDep, Operations
from aiops.server.api.problems import ApiProblem, ProblemItem

ops = Operations("functions")

JSON = "application/json"
YAML = ("application/yaml", "application/x-yaml", "text/yaml")
IfMatch = Annotated[str | None, Header(max_length=1000, description=(
    "The ETag of the function as you read it (GET answers it)."))]

_BODY = {"requestBody": {"required": True, "content": {
    JSON: {"schema": {"type": "object", "description": "A function document, as "
                      "docs/format.md describes it (`apiVersion: aiops/v1`, `name`, ...)."}},
    "application/yaml": {"schema": {"type": "string", "description": "The function's file, "
                                     "committed as written."}}}}}
_ACCEPTED = {202: {"description": "Committed on a new branch (`--writes branch`), not "
                   "applied: the answer's `branch` names it."}}


class WriteWarning(BaseModel):
    """A warning about the document: where (a JSON pointer; in YAML, a line and column)."""

    detail: str
    code: str
    pointer: str | None = None
    line: int | None = None
    column: int | None = None


class WriteAnswer(BaseModel):
    name: str
    action: Literal["create", "update", "delete"]
    mode: Literal["commit", "branch"]
    version: str | None = Field(description="The version the file names (deleted: the last).")
    commit: str = Field(description="The commit made, with the token's user as its author.")
    branch: str | None = Field(description="Branch mode: the new branch that holds the commit.")
    applied: bool = Field(description="Commit mode: whether the apply succeeded (the database "
                          "holds the commit). False in branch mode.")
    apply_error: str | None = Field(description="Why the apply failed; the commit stays, and "
                                    "the next apply converges on it.")
    plan: dict[str, Any] | None = Field(description="What the apply did (or, failed, would "
                                        "do): the plan as `aiops plan --json` prints it.")
    warnings: list[WriteWarning]
    notes: list[str]


@ops.operation("POST", BASE, permission=Permission.EDIT, response_model=WriteAnswer,
               status_code=201, responses=_ACCEPTED, openapi_extra=_BODY,
               problems=["invalid-spec", "conflict", "bad-request", "unsupported-media-type",
                         "writes-off", "busy"],
               summary="Create a function: commit its file, then apply it")
async def create_function(request: Request, response: Response,
                          caller: CallerDep) -> WriteAnswer:
    document = await _document(request)
    server = request.app.state.aiops
    result = await _run(commands.create_function, server.workspace, document,
                        author=_author(caller), mode=server.config.writes, caller=caller,
                        store=_store_for(server))
    if result.mode == "commit":
        response.headers["Location"] = f"{BASE}/{result.name}"
    return _answer(result, response, server)


@ops.operation("PUT", BASE + "/{id}", permission=Permission.EDIT, response_model=WriteAnswer,
               responses=_ACCEPTED, openapi_extra=_BODY,
               problems=["invalid-spec", "conflict", "bad-request", "unsupported-media-type",
                         "precondition-required", "precondition-failed", "writes-off",
                         "busy"],
               summary="Change a function: commit its new file (If-Match required), then "
               "apply it")
async def update_function(request: Request, response: Response, caller: CallerDep,
                          id: FunctionRef, if_match: IfMatch = None) -> WriteAnswer:
    document = await _document(request)
    server = request.app.state.aiops
    name = await run_in_threadpool(_name_of, server, id)
    result = await _run(commands.update_function, server.workspace, name, document,
                        author=_author(caller), if_match=if_match, mode=server.config.writes,
                        caller=caller, store=_store_for(server))
    return _answer(result, response, server)


@ops.operation("DELETE", BASE + "/{id}", permission=Permission.EDIT, response_model=WriteAnswer,
               responses=_ACCEPTED,
               problems=["conflict", "precondition-failed", "writes-off", "busy"],
               summary="Delete a function: remove its directory in a commit and archive it "
               "(versions and logs stay)")
async def delete_function(request: Request, response: Response, caller: CallerDep,
                          id: FunctionRef, if_match: IfMatch = None) -> WriteAnswer:
    server = request.app.state.aiops
    name = await run_in_threadpool(_name_of, server, id)
    result = await _run(commands.delete_function, server.workspace, name,
                        author=_author(caller), if_match=if_match, mode=server.config.writes,
                        caller=caller, store=_store_for(server))
    return _answer(result, response, server)


async def _run(verb: Callable[..., WriteResult], *args: Any, **kw: Any) -> WriteResult:
    """A write verb off the event loop: it runs git and waits for the reconciler's lock."""
    return await run_in_threadpool(verb, *args, **kw)


def _store_for(server: Any) -> Any:
    """The worker's store in commit mode; branch and off modes need no database."""
    return server.store() if server.config.writes == "commit" else None


async def _document(request: Request) -> Mapping[str, Any] | bytes:
    """The body: a JSON object, or YAML text (kept as bytes, committed as written)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if kind in YAML:
        return body
    if kind != JSON:
        raise ApiProblem("unsupported-media-type", f"send the function document as {JSON} "
                         f"or as application/yaml, not {shown(kind or 'no Content-Type')}")
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise ApiProblem("bad-request", f"the body is not JSON: {exc}") from None
    except RecursionError:  # `[[[[...` within the body bound
        raise ApiProblem("bad-request", "the body nests too deeply to be a function "
                         "document") from None
    if not isinstance(value, dict):
        raise ApiProblem("invalid-spec", "a function document is a JSON object",
                         errors=[ProblemItem(detail="not an object", pointer="")])
    return value


def _name_of(server: Any, ref: str) -> str:
    """`{id}` as a name: a UUID is looked up in the database (a function its caller may not
    view is found by the verb to be missing, like any other)."""
    try:
        uuid.UUID(ref)
    except ValueError:
        return ref
    row = server.store().find_function(ref)
    if row is None:
        raise NotFoundError(f"no function {shown(ref)}: no function has that name or id, or "
                            "your token may not view it")
    name: str = row.summary.name
    return name


def _author(caller: Caller) -> Identity:
    """The commit's author: the token's user (name and e-mail, when it has one)."""
    return Identity(name=caller.user_name or caller.token_name, email=caller.user_email)


def _answer(result: WriteResult, response: Response, server: Any) -> WriteAnswer:
    if result.applied:  # this worker's runs see the new version, and access lists, at once
        server.forget_versions()
    if result.mode == "branch":
        response.status_code = 202
    if result.etag is not None:
        response.headers["ETag"] = result.etag
    return WriteAnswer(
        name=result.name, action=result.action, mode="branch" if result.mode == "branch"
        else "commit", version=result.version, commit=result.commit, branch=result.branch,
        applied=result.applied, apply_error=result.apply_error,
        plan=result.plan.to_dict() if result.plan is not None else None,
        warnings=[_warning(d) for d in result.warnings], notes=list(result.notes))


def _warning(d: Diagnostic) -> WriteWarning:
    return WriteWarning(detail=d.message + (f" (fix: {d.fix})" if d.fix else ""), code=d.code,
                        pointer=d.pointer, line=d.line, column=d.column)
