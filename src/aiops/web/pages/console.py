"""The test console: a form generated from a version's input schema (`aiops.web.input_form`),
a version and a provider picker, and Run, which runs the function as the API's test endpoint
does (`POST /api/contributor/ai-functions/{id}/test`): the same verbs, `invoke.authorize`
then `invoke.invoke` with `test=True`, through the worker's runner, logged as a test with the
caller as its actor.

    GET  /functions/{name}/test[?version=]   the console (who may not invoke it: refused)
    POST /functions/{name}/run               {input, version, provider} -> the execution
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from aiops import commands
from aiops.access import Caller, Permission
from aiops.commands import invoke
from aiops.errors import (
    AiopsError,
    BudgetExceeded,
    InputError,
    LimitExceeded,
    NotFoundError,
    OutputError,
    PermissionDenied,
    ProviderError,
    UserError,
)
from aiops.spec import SEMVER_PATTERN
from aiops.web import PREFIX
from aiops.web.input_form import fields_of
from aiops.web.render import render, store
from aiops.web.session import Forbidden, require

router = APIRouter()
Invoker = Annotated[Caller, Depends(require(Permission.INVOKE))]
# Errors whose message a caller may read (the API shows them too); others are the server's.
SHOWN = (UserError, ProviderError, OutputError, LimitExceeded, BudgetExceeded)


@router.get("/functions/{name}/test")
async def console_page(request: Request, caller: Invoker, name: str,
                       version: Annotated[str | None, Query(pattern=SEMVER_PATTERN,
                                                            max_length=100)] = None
                       ) -> HTMLResponse:
    context = await run_in_threadpool(_console, request, caller, name, version or None)
    return render(request, "console.html", title=f"Test {context['name']}", **context)


def _console(request: Request, caller: Caller, name: str, version: str | None) -> dict[str, Any]:
    st = store(request)
    try:
        name = invoke.authorize(st, name, caller)
    except PermissionDenied as exc:
        raise Forbidden(str(exc)) from None
    versions = commands.list_versions(st, name, caller=caller, limit=100).items
    chosen = next((v for v in versions if v.version == version), None) if version else next(
        (v for v in versions if v.current), versions[0] if versions else None)
    if chosen is None:
        raise NotFoundError(f"{name} has no version {version}" if version
                            else f"{name} has no applied version to run")
    content = commands.get_version(st, name, chosen.version, caller=caller).content
    matrix = [content.get("provider")] + [f.get("provider") for f in content.get(
        "fallbacks") or () if isinstance(f, dict)]
    providers = list(dict.fromkeys(p for p in matrix if isinstance(p, str)))
    return {"name": name, "versions": [v.version for v in versions],
            "current": next((v.version for v in versions if v.current), None),
            "version": chosen.version, "providers": providers,
            "fields": fields_of(content.get("input_schema")),
            "input_schema": content.get("input_schema")}


@router.post("/functions/{name}/run")
async def run(request: Request, caller: Invoker, name: str) -> Response:
    import json

    try:
        body = json.loads(await request.body())
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
        return _problem(400, "bad-request", "send {\"input\": an object, \"version\", "
                        "\"provider\"}")
    version, provider = body.get("version") or None, body.get("provider") or None
    if not all(v is None or isinstance(v, str) for v in (version, provider)):
        return _problem(400, "bad-request", "`version` and `provider` are text")
    server = request.app.state.aiops
    st = server.store()
    try:
        name = await run_in_threadpool(invoke.authorize, st, name, caller)
        result = await invoke.invoke(st, await server.runner(), caller, name, body["input"],
                                     selector=version, provider=provider, test=True)
    except AiopsError as exc:
        status = 404 if isinstance(exc, NotFoundError) else 403 if isinstance(
            exc, PermissionDenied) else 400 if isinstance(exc, UserError) else 500
        return _problem(status, type(exc).__name__, _message(exc))
    ex = result.execution
    assert ex is not None  # `invoke` raises what kept it from running
    error = result.error
    return JSONResponse({
        "ok": error is None, "output": ex.output, "log_id": ex.log_id,
        "log_url": f"{PREFIX}/logs/{ex.function}/{ex.log_id}",
        "function": ex.function, "version": ex.version, "provider": ex.provider,
        "model": ex.model, "latency_ms": round(ex.latency_ms, 3),
        "input_tokens": ex.input_tokens, "output_tokens": ex.output_tokens,
        "cost_usd": round(ex.cost_usd, 10), "attempts": [a.as_dict() for a in ex.attempts],
        "error": None if error is None else {
            "type": type(error).__name__, "message": _message(error),
            "pointer": error.pointer if isinstance(error, InputError) else None},
        "warnings": [str(e) for e in result.unrecorded] + list(result.log_warnings)})


def _message(exc: AiopsError) -> str:
    if isinstance(exc, SHOWN):
        return str(exc)
    import logging

    logging.getLogger("aiops.web").warning("test console: %s: %s", type(exc).__name__, exc)
    return "the execution failed on the server's side; its log row and the server's log " \
           "have the details"


def _problem(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"status": status, "code": code, "detail": detail}, status_code=status)
