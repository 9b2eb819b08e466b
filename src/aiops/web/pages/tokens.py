"""Tokens (admin only): make one (its text shown once, on the answer to the form), list them,
revoke one. The verbs are the admin API's (`aiops.commands.tokens`), with the same checks of
a name, a role, groups and a lifetime (`aiops.tokens`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aiops import commands
from aiops.access import ROLES, Caller, Permission
from aiops.errors import UsageError, UserError
from aiops.web import PREFIX
from aiops.web.render import render, store, workspace
from aiops.web.session import form_data, require

router = APIRouter()
Admin = Annotated[Caller, Depends(require(Permission.ADMIN))]


def _page(request: Request, *, created: Any = None, error: str | None = None,
          form: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    tokens = commands.list_tokens(workspace(request), include_revoked=True,
                                  store=store(request))
    response = render(request, "tokens.html", title="Tokens", tokens=tokens, roles=ROLES,
                      created=created, error=error, form=form or {}, now=datetime.now(UTC),
                      status_code=status_code)
    if created is not None:
        response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/tokens")
async def tokens_page(request: Request, _: Admin) -> HTMLResponse:
    return await run_in_threadpool(_page, request)


def _number(form: dict[str, str], key: str, what: str, kind: type[float] | type[int]
            ) -> Any:
    """A form's optional number (an empty field: None); a UsageError naming the field."""
    value = form.get(key, "").strip()
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        raise UsageError(f"{what} must be a {'whole ' if kind is int else ''}number (got "
                         f"{value[:20]!r})") from None


@router.post("/tokens")
async def create_token(request: Request, caller: Admin) -> Response:
    form = await form_data(request)

    def make() -> HTMLResponse:
        try:
            made = commands.create_token(
                workspace(request), name=form.get("name", "").strip(),
                role=form.get("role", ""),
                groups=tuple(g.strip() for g in form.get("groups", "").split(",") if g.strip()),
                expires=form.get("expires", "").strip() or None,
                rpm=_number(form, "rpm", "Runs per minute", int),
                daily_calls=_number(form, "daily_calls", "Runs per day", int),
                daily_usd=_number(form, "daily_usd", "USD per day", float),
                user=form.get("user", "").strip() or None, created_by=caller.user_actor,
                store=store(request))
        except UserError as exc:
            return _page(request, error=str(exc), form=form, status_code=400)
        return _page(request, created=made)

    return await run_in_threadpool(make)


@router.post("/tokens/{ref}/revoke")
async def revoke_token(request: Request, _: Admin, ref: str) -> Response:
    await run_in_threadpool(commands.revoke_token, workspace(request), ref,
                            store=store(request))
    return RedirectResponse(f"{PREFIX}/tokens", status_code=303)
