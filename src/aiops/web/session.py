"""Signing in and out of the web UI, the caller of a request, and the CSRF check of writes.

A person signs in with an API token (the form's field "Token"); it is checked exactly as the
API checks a bearer token, and starts a session (`aiops.commands.sessions`) whose random
secret the browser keeps in an HttpOnly, SameSite=Strict cookie scoped to `/ui`. Each request
reads the session and its token again (one query): a revoked token signs its sessions out.

CSRF: every POST, PUT, PATCH and DELETE under `/ui` carries the session's CSRF token (form
field `csrf` or header `X-CSRF-Token`), checked before the route runs (`check_writes`, a
dependency of the whole sub-app); the sign-in form, made before any session exists, carries a
random value that must equal its own cookie's (double submit). A write whose `Origin` is
another site's is refused too.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from aiops.access import LEAST_ROLE, Caller, Permission, role_allows
from aiops.commands.sessions import Session, SessionRefused, session_of, sign_in, sign_out
from aiops.commands.tokens import TokenRefused
from aiops.sessions import COOKIE, csrf_matches
from aiops.web import PREFIX
from aiops.web.render import render, store

router = APIRouter()
SIGNIN_COOKIE = "aiops_signin"  # the sign-in form's double-submit value
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SignInRequired(Exception):
    """No valid session: a GET is sent to the sign-in page (then back), a write is refused."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Forbidden(Exception):
    """The caller's role does not allow this page or action (a 403 page)."""


async def form_data(request: Request) -> dict[str, str]:
    """The fields of a urlencoded form body (the last of repeated names), read once per
    request (the server's body limit bounds it)."""
    cached: dict[str, str] | None = getattr(request.state, "ui_form", None)
    if cached is None:
        body = await request.body()
        cached = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        request.state.ui_form = cached
    return cached


async def current_session(request: Request) -> Session:
    """The request's session (read once per request); SignInRequired without one."""
    found: Session | None = getattr(request.state, "ui_session", None)
    if found is not None:
        return found
    secret = request.cookies.get(COOKIE)
    try:
        found = await run_in_threadpool(session_of, store(request), secret)
    except SessionRefused as exc:
        raise SignInRequired(str(exc)) from None
    request.state.ui_session = found
    return found


async def current_caller(session: Annotated[Session, Depends(current_session)]) -> Caller:
    return session.caller


# The signed-in caller of a page (a GET without a session goes to the sign-in page).
UiCaller = Annotated[Caller, Depends(current_caller)]


def require(permission: Permission) -> Callable[[Caller], Coroutine[Any, Any, Caller]]:
    """A dependency: the caller, when its role allows `permission`; a 403 page otherwise."""

    async def allowed(caller: UiCaller) -> Caller:
        if not role_allows(caller.role, permission):
            raise Forbidden(f"this page needs a token of role {LEAST_ROLE[permission]} or "
                            f"above; yours is {caller.role}")
        return caller

    return allowed


async def check_writes(request: Request) -> None:
    """The sub-app's dependency: a write carries the session's CSRF token (the sign-in form:
    its cookie's value), and comes from this site."""
    if request.method not in UNSAFE:
        return
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise Forbidden("this request comes from another site")
    given = request.headers.get("x-csrf-token")
    if given is None and request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        given = (await form_data(request)).get("csrf")
    if request.url.path == PREFIX + "/signin":
        expected = request.cookies.get(SIGNIN_COOKIE)
        if not expected or not csrf_matches(expected, given):
            raise Forbidden("the sign-in form expired; reload the page and sign in again")
        return
    session = await current_session(request)
    if not csrf_matches(session.record.csrf, given):
        raise Forbidden("this form is missing its CSRF token, or it belongs to another "
                        "session; reload the page and try again")


def _next_target(value: str | None) -> str:
    """Where to go after signing in: a page of the UI only (never another site)."""
    if value and value.startswith(PREFIX + "/") and not value.startswith("//") \
            and "\\" not in value:
        return value
    return PREFIX + "/functions"


def _cookie_options(request: Request) -> dict[str, Any]:
    return {"httponly": True, "samesite": "strict", "path": PREFIX,
            "secure": request.url.scheme == "https"}


@router.get("/signin")
def signin_page(request: Request, next: str | None = None) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = render(request, "signin.html", title="Sign in", nonce=nonce,
                      next=_next_target(next), error=None)
    response.set_cookie(SIGNIN_COOKIE, nonce, max_age=3600, **_cookie_options(request))
    return response


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await form_data(request)
    target = _next_target(form.get("next"))
    try:
        session = await run_in_threadpool(sign_in, store(request), form.get("token", ""))
    except TokenRefused as exc:
        nonce = request.cookies.get(SIGNIN_COOKIE, "")
        return render(request, "signin.html", title="Sign in", nonce=nonce, next=target,
                      error=str(exc), status_code=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, session.secret, max_age=int(
        (session.expires_at - session.created_at).total_seconds()), **_cookie_options(request))
    response.delete_cookie(SIGNIN_COOKIE, path=PREFIX)
    return response


@router.post("/signout")
async def signout(request: Request, _: UiCaller) -> Response:
    await run_in_threadpool(sign_out, store(request), request.cookies.get(COOKIE))
    response = RedirectResponse(PREFIX + "/signin", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response
