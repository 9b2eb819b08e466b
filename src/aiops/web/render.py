"""Rendering pages: the Jinja2 environment of the UI's templates, and what every page gets
(the caller, the CSRF token, the nav). Autoescaping is on: every value is escaped unless a
template says otherwise, and nothing user-written is ever marked safe."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from aiops.web import PREFIX

if TYPE_CHECKING:
    from aiops.store import Store
    from aiops.workspace import Workspace

TEMPLATES = Path(__file__).parent / "templates"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.globals["ui"] = PREFIX
    env.filters["when"] = when
    env.filters["usd"] = usd
    env.filters["ms"] = ms
    env.filters["percent"] = percent
    return env


def render(request: Request, template: str, *, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    """`template` rendered with `context`, the caller (None when signed out) and its CSRF
    token (`csrf_input()` writes the hidden field)."""
    session = getattr(request.state, "ui_session", None)
    csrf = session.record.csrf if session is not None else ""
    values = {"request": request, "caller": session.caller if session else None,
              "csrf": csrf, "path": request.url.path,
              "csrf_input": lambda: Markup('<input type="hidden" name="csrf" value="{}">')
              .format(csrf), **context}
    html = environment().get_template(template).render(values)
    return HTMLResponse(html, status_code=status_code)


def store(request: Request) -> Store:
    found: Store = request.app.state.aiops.store()
    return found


def workspace(request: Request) -> Workspace:
    ws: Workspace = request.app.state.aiops.workspace
    return ws


# --- filters -----------------------------------------------------------------------------------


def when(value: datetime | None) -> str:
    """A time as UTC, to the second."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def usd(value: float | None) -> str:
    if value is None:
        return "—"
    return f"${value:,.4f}" if value < 100 else f"${value:,.2f}"


def ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def percent(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.1f} %"
