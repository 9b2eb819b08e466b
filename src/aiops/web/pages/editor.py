"""The editor: a function's YAML with live validation, the plan of what saving would change,
the schema builder, and save, create and archive. Every action is a verb of
`aiops.commands.writes`, the API's own: validation is `preview_function` (the checks a write
makes: `aiops validate --base HEAD`), save is `update_function` with If-Match (`create_function`
for a new function), archive is `delete_function`, each with the caller, so the function's
`access.edit` list and the server's `--writes` mode apply exactly as through the API.

The page's script (`static/editor.js`) talks JSON to the routes below; a refusal is
`{"status", "code", "detail", "errors"}` (the errors with their line and column). What the
author is still typing is no refusal: a check's errors, and the builder's `{"problem": ...}`,
answer 200 (a browser logs every 4xx of a script as a console error).

    GET    /functions/new                 the editor on a new function's template
    GET    /functions/{name}/edit         the editor on the function's file at HEAD
    POST   /editor/check                  {name, text} -> what saving would find and do
    POST   /editor/schema-form            {text} -> {forms: both schemas' builder forms}
    POST   /editor/schema                 {text, key, form} -> {text: with that schema}
    POST   /functions                     the YAML body: create
    PUT    /functions/{name}              the YAML body, If-Match: save
    DELETE /functions/{name}              If-Match: archive
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from aiops import commands
from aiops.access import Caller, Permission
from aiops.commands.writes import Identity, WritePreview, WriteResult
from aiops.errors import (
    AiopsError,
    ConflictError,
    Diagnostic,
    NotFoundError,
    PermissionDenied,
    PreconditionFailed,
    PreconditionRequired,
    SpecError,
    UserError,
    WritesDisabled,
)
from aiops.render_plan import LABEL, render_text
from aiops.web.render import render, store, workspace
from aiops.web.schema_form import FormError, builder_state, with_form
from aiops.web.session import Forbidden, require
from aiops.yamlsrc import YamlProblem

router = APIRouter()
Editor = Annotated[Caller, Depends(require(Permission.EDIT))]
IfMatch = Annotated[str | None, Header(max_length=1000)]

# What the JSON routes answer for the verbs' refusals (the API's statuses for the same).
STATUS: tuple[tuple[type[AiopsError], int, str], ...] = (
    (SpecError, 422, "invalid-spec"), (NotFoundError, 404, "not-found"),
    (PermissionDenied, 403, "forbidden"), (WritesDisabled, 403, "writes-off"),
    (PreconditionFailed, 412, "precondition-failed"),
    (PreconditionRequired, 428, "precondition-required"), (ConflictError, 409, "conflict"),
    (UserError, 400, "bad-request"))


# --- pages ----------------------------------------------------------------------------------


@router.get("/functions/new")
async def new_page(request: Request, caller: Editor) -> HTMLResponse:
    ws = workspace(request)
    text = await run_in_threadpool(commands.function_template, ws, "my-function")
    return _page(request, name=None, text=text, etag=None)


@router.get("/functions/{name}/edit")
async def edit_page(request: Request, caller: Editor, name: str) -> HTMLResponse:
    source = await run_in_threadpool(_editable, request, caller, name)
    return _page(request, name=name, text=source[0], etag=source[1])


def _editable(request: Request, caller: Caller, name: str) -> tuple[str, str]:
    """The function's file at HEAD and its ETag, when the caller may change it: one it may
    not view is not found (as in the API), one it may not edit is refused."""
    detail = commands.get_function(store(request), name, caller=caller, ws=workspace(request))
    if "edit" not in detail.allowed:
        raise Forbidden(f"your token may not change {name}: its `access.edit` list names "
                        "none of the token's groups")
    source = commands.function_source(workspace(request), detail.summary.name)
    if source is None:
        raise NotFoundError(f"{name} has no file at HEAD in the server's repository: it is "
                            "changed in git, where it lives")
    return source


def _page(request: Request, *, name: str | None, text: str, etag: str | None) -> HTMLResponse:
    mode = request.app.state.aiops.config.writes
    return render(request, "editor.html", title=f"Edit {name}" if name else "New function",
                  name=name, text=text, etag=etag or "", mode=mode)


# --- checks and the schema builder ----------------------------------------------------------


@router.post("/editor/check")
async def check(request: Request, caller: Editor) -> Response:
    body = await _json(request)
    name, text = body.get("name"), body.get("text")
    if not isinstance(text, str) or not (name is None or isinstance(name, str)):
        return _problem(400, "bad-request", "send {\"name\": null or a name, \"text\": ...}")
    server = request.app.state.aiops
    try:
        found = await run_in_threadpool(commands.preview_function, server.workspace, name,
                                        text, caller=caller, store=server.store())
    except AiopsError as exc:
        return _refused(exc)
    return JSONResponse(preview_json(found, server.config.writes))


def preview_json(found: WritePreview, mode: str) -> dict[str, Any]:
    """What the page shows of a preview."""
    change = found.change
    return {
        "ok": found.ok, "name": found.name, "action": found.action, "mode": mode,
        "diagnostics": [diagnostic_json(d) for d in found.diagnostics],
        "elsewhere": [d.render() for d in found.elsewhere],
        "version": found.version, "base_version": found.base_version,
        "behaviour_changed": found.behaviour_changed, "version_bumped": found.version_bumped,
        "breaking": list(found.breaking), "major_bumped": found.major_bumped,
        "plan_errors": list(found.plan_errors),
        "change": None if change is None else {
            "action": change.action, "label": LABEL[change.action],
            "from_version": change.from_version, "to_version": change.to_version,
            "reason": change.reason, "breaking": list(change.breaking),
            "diffs": [{"field": d.field, "lines": list(d.lines)} for d in change.diffs]}}


def diagnostic_json(d: Diagnostic) -> dict[str, Any]:
    return {"line": d.line, "column": d.column, "path": d.path, "pointer": d.pointer,
            "message": d.message, "fix": d.fix, "severity": d.severity, "code": d.code}


@router.post("/editor/schema-form")
async def schema_form(request: Request, caller: Editor) -> Response:
    """The builder's forms; `{"problem": ...}` (200: the builder waits, nothing failed) while
    the text does not parse."""
    body = await _json(request)
    text = body.get("text")
    if not isinstance(text, str):
        return _problem(400, "bad-request", "send {\"text\": the function's YAML}")
    try:
        return JSONResponse({"forms": builder_state(text)})
    except YamlProblem as exc:
        return JSONResponse({"problem": f"the YAML does not parse: {exc}"})


@router.post("/editor/schema")
async def schema_write(request: Request, caller: Editor) -> Response:
    """The text with the form's schema; `{"problem": ...}` (200, as a check's errors are)
    when the form or the text makes none."""
    body = await _json(request)
    text, key = body.get("text"), body.get("key")
    if not isinstance(text, str) or not isinstance(key, str):
        return _problem(400, "bad-request", "send {\"text\", \"key\", \"form\"}")
    try:
        return JSONResponse({"text": with_form(text, key, body.get("form"))})
    except FormError as exc:
        return JSONResponse({"problem": str(exc)})
    except YamlProblem as exc:
        return JSONResponse({"problem": f"fix the YAML first: {exc}"})
    except ValueError as exc:  # a file the rewrite cannot follow
        return JSONResponse({"problem": str(exc)})


# --- writes ---------------------------------------------------------------------------------


@router.post("/functions")
async def create(request: Request, caller: Editor) -> Response:
    text = await _text(request)
    server = request.app.state.aiops
    return await _write(commands.create_function, server.workspace, text, caller=caller,
                        request=request)


@router.put("/functions/{name}")
async def save(request: Request, caller: Editor, name: str,
               if_match: IfMatch = None) -> Response:
    text = await _text(request)
    server = request.app.state.aiops
    return await _write(commands.update_function, server.workspace, name, text,
                        if_match=if_match, caller=caller, request=request)


@router.delete("/functions/{name}")
async def archive(request: Request, caller: Editor, name: str,
                  if_match: IfMatch = None) -> Response:
    server = request.app.state.aiops
    return await _write(commands.delete_function, server.workspace, name, if_match=if_match,
                        caller=caller, request=request)


async def _write(verb: Any, *args: Any, caller: Caller, request: Request,
                 **kw: Any) -> Response:
    """One write verb, as the API's route calls it: the caller's user as the author, the
    server's `--writes` mode, the store in commit mode."""
    server = request.app.state.aiops
    mode = server.config.writes
    author = Identity(name=caller.user_name or caller.token_name, email=caller.user_email)
    try:
        result: WriteResult = await run_in_threadpool(
            verb, *args, author=author, mode=mode, caller=caller,
            store=server.store() if mode == "commit" else None, **kw)
    except AiopsError as exc:
        return _refused(exc)
    return JSONResponse({
        "name": result.name, "action": result.action, "mode": result.mode,
        "version": result.version, "commit": result.commit, "branch": result.branch,
        "etag": result.etag, "applied": result.applied, "apply_error": result.apply_error,
        "plan": render_text(result.plan) if result.plan is not None else None,
        "warnings": [diagnostic_json(d) for d in result.warnings],
        "notes": list(result.notes)}, status_code=202 if result.mode == "branch" else 200)


# --- requests and answers ----------------------------------------------------------------------


async def _json(request: Request) -> dict[str, Any]:
    import json

    try:
        value = json.loads(await request.body())
    except (ValueError, RecursionError):
        value = None
    return value if isinstance(value, dict) else {}


async def _text(request: Request) -> str:
    body = await request.body()
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("utf-8", "replace")  # the checks refuse it at its place


def _refused(exc: AiopsError) -> Response:
    """A verb's refusal as the page's script reads it; a SpecError with its diagnostics."""
    for cls, status, code in STATUS:
        if isinstance(exc, cls):
            errors = [diagnostic_json(d) for d in exc.diagnostics] if isinstance(
                exc, SpecError) else []
            detail = (f"{len([d for d in exc.diagnostics if d.is_error])} error(s) in the "
                      "document" if isinstance(exc, SpecError) else str(exc))
            return _problem(status, code, detail, errors)
    import logging

    logging.getLogger("aiops.web").warning("editor: %s: %s", type(exc).__name__, exc)
    return _problem(500, "internal-error", "the server could not do this; its log says why")


def _problem(status: int, code: str, detail: str,
             errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    return JSONResponse({"status": status, "code": code, "detail": detail,
                         "errors": errors or []}, status_code=status)
