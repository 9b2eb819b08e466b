"""The web UI as a sub-application of the server's app, under `/ui`.

Its own FastAPI app, so that the API's gate (bearer tokens, problem documents) stays the
API's and the UI's session guard stays the UI's; both read the same `ServerState` (the store,
the workspace). `/` sends a browser to the functions list.

Every answer of the UI carries a strict Content-Security-Policy: everything from this origin
only, no inline script (the UI's JavaScript is in `static/aiops.js`), no framing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiops.errors import AiopsError, NotFoundError, UserError
from aiops.web import PREFIX
from aiops.web.pages import alerts, console, editor, functions, logs, monitoring, tokens
from aiops.web.render import render
from aiops.web.session import Forbidden, SignInRequired, check_writes
from aiops.web.session import router as session_router

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

STATIC = Path(__file__).parent / "static"

# One line per page module: its `router`, paths relative to /ui.
PAGE_ROUTERS: list[APIRouter] = [
    session_router,
    editor.router,  # before functions: /functions/new is not a function's page
    console.router,
    functions.router,
    logs.router,
    tokens.router,
    monitoring.router,
    alerts.router,
]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
OURS = frozenset(k for k, _ in HEADERS)


class SecurityHeaders:
    """Adds the CSP and its companions to every answer of the UI; pages are not cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith(PREFIX + "/static/")

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] not in OURS]
                headers += HEADERS
                if not static and not any(h[0] == b"cache-control" for h in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, sending)


def create_ui(state: Any) -> FastAPI:
    """The UI's app over the server's `state` (`aiops.server.app.ServerState`)."""
    ui = FastAPI(openapi_url=None, docs_url=None, redoc_url=None,
                 dependencies=[Depends(check_writes)])
    ui.state.aiops = state
    for router in PAGE_ROUTERS:
        ui.include_router(router)
    ui.mount("/static", StaticFiles(directory=STATIC), name="static")

    async def start(_: Request) -> Response:
        return RedirectResponse(PREFIX + "/functions", status_code=307)

    ui.add_route("/", start, methods=["GET"], include_in_schema=False)
    ui.add_middleware(SecurityHeaders)
    _handlers(ui)
    return ui


def mount(app: FastAPI, state: Any) -> None:
    """Add the UI to the server's `app`: `/ui/...`, and `/` leads there."""
    app.mount(PREFIX, create_ui(state), name="ui")

    async def home(_: Request) -> Response:
        return RedirectResponse(PREFIX + "/functions", status_code=307)

    app.add_route("/", home, methods=["GET"], include_in_schema=False)


def ui_routes(app: FastAPI) -> list[BaseRoute]:
    """The server app's routes that belong to the UI (outside the API's gate)."""
    return [r for r in app.routes if getattr(r, "path", None) in {PREFIX, "/"}
            and getattr(r, "name", None) in {"ui", "home"}]


def _handlers(ui: FastAPI) -> None:
    @ui.exception_handler(SignInRequired)
    async def sign_in_first(request: Request, exc: SignInRequired) -> Response:
        if request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            from urllib.parse import quote

            return RedirectResponse(f"{PREFIX}/signin?next={quote(target, safe='/')}",
                                    status_code=303)
        return _error(request, 401, "Sign in first", exc.reason)

    @ui.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return _error(request, 403, "Not allowed", str(exc))

    @ui.exception_handler(AiopsError)
    async def aiops_error(request: Request, exc: AiopsError) -> Response:
        if isinstance(exc, NotFoundError):
            return _error(request, 404, "Not found", str(exc))
        if isinstance(exc, UserError):
            return _error(request, 400, "That did not work", str(exc))
        logging.getLogger("aiops.web").warning("%s: %s", type(exc).__name__, exc)
        return _error(request, 500, "Something failed", "the server could not answer this; "
                      "its log says why")

    @ui.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        fields = ", ".join(".".join(str(p) for p in e.get("loc", ())[1:]) or "request"
                           for e in exc.errors()[:5])
        return _error(request, 400, "That did not work", f"check these fields: {fields}")

    @ui.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        title = {404: "Not found", 405: "Not allowed"}.get(exc.status_code, "Error")
        return _error(request, exc.status_code, title, str(exc.detail))


def _error(request: Request, status: int, title: str, detail: str) -> Response:
    return render(request, "error.html", status_code=status, title=title, status=status,
                  detail=detail)
