"""The alerts page (issue 14): `/ui/alerts`, every alert rule of the functions the caller may
view with its state (ok, pending, firing, unknown), since when and its last value, then the
history of notifications, newest first, a page at a time, with their deliveries.

The same read as `aiops alerts list` and GET /api/contributor/alerts
(`aiops.commands.alerts.alerts_overview`), with the same access filter.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from aiops.commands.alerts import alerts_overview
from aiops.web.render import render, store
from aiops.web.session import UiCaller

router = APIRouter()

PAGE = 50  # history items per page
STATES = ("firing", "pending", "ok", "unknown")  # the order rules are listed in


@router.get("/alerts", response_class=HTMLResponse)
def alerts(request: Request, caller: UiCaller,
           cursor: Annotated[str | None, Query(max_length=500)] = None) -> HTMLResponse:
    overview = alerts_overview(store(request), caller=caller, limit=PAGE, cursor=cursor)
    rules = sorted(overview.rules, key=lambda r: (STATES.index(r.state) if r.state in STATES
                                                  else len(STATES), r.function, r.rule))
    names = {r.function_id: r.function for r in overview.rules}
    history = [(h, names.get(h.function_id) or str(h.payload.get("function") or h.function_id))
               for h in overview.history]
    firing = sum(r.state == "firing" for r in rules)
    return render(request, "alerts.html", title="Alerts", rules=rules, history=history,
                  firing=firing, next_cursor=overview.next_cursor, older=cursor is not None)
