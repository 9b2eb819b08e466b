"""The monitoring pages (issue 14): `/ui/monitoring`, every function the caller may view, and
`/ui/monitoring/{name}`, one function. Calls, errors, error rate, latency p50/p95/p99 and cost
over a time range (1 h, 24 h, 7 d, 30 d), breakdowns by version, provider and model, the top
functions by cost and by errors, and budget and quota use.

Every number comes from the stats verb over one window (the rollups, with the same access
filter as the API): `aiops.commands.monitoring.overview` reads the top functions by cost and
by errors, ranked in SQL, with their totals as `aiops stats` and GET /api/contributor/stats
give them (without the latency buckets), each function's budget use today, and the cells of
the same functions summed over them in SQL per version, provider, model and time step: the
series, the headline and every breakdown are sums of the cells, folded by the view, a few
rows per step whatever the number of functions. The page's assembly is
`aiops.web.monitoring_view` (pure).

The window is whole steps (`Range.window`): from the start of the step `span` before now to
the end of the running one. Every step of a chart is then whole but the running one, and a
range of hourly steps (24 h, 7 d, 30 d) reads no per-minute rollup: the running hour's hourly
rows hold it up to now.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from aiops.access import Caller
from aiops.commands.monitoring import overview, quota_use
from aiops.web.charts import format_value
from aiops.web.monitoring_view import RANGES, TOP, assemble, charts, range_of
from aiops.web.render import render, store
from aiops.web.session import UiCaller

router = APIRouter()

RangeKey = Annotated[str | None, Query(alias="range", max_length=10, description=(
    "The time range: 1h, 24h (the default), 7d or 30d."))]


@router.get("/monitoring", response_class=HTMLResponse)
def all_functions(request: Request, caller: UiCaller, range_key: RangeKey = None
                  ) -> HTMLResponse:
    return _page(request, caller, None, range_key)


@router.get("/monitoring/{name}", response_class=HTMLResponse)
def one_function(request: Request, caller: UiCaller,
                 name: Annotated[str, Path(max_length=100)], range_key: RangeKey = None
                 ) -> HTMLResponse:
    return _page(request, caller, name, range_key)


def _page(request: Request, caller: Caller, name: str | None, key: str | None) -> HTMLResponse:
    chosen = range_of(key)
    db = store(request)
    now = datetime.now(UTC)
    since, until = chosen.window(now)
    read = overview(db, name, since=since, until=until, step_s=chosen.step_s, top=TOP,
                    caller=caller, now=now)
    view = assemble(read, range_=chosen, name=None if name is None else read.budgets[0][0])
    drawn = [(c, Markup(c.svg)) for c in charts(view)]  # numbers, escaped text
    title = "Monitoring" if view.name is None else f"Monitoring: {view.name}"
    return render(request, "monitoring.html", title=title, view=view, charts=drawn,
                  ranges=RANGES, quota=quota_use(db, caller, now), shown=format_value)
