"""The contributor API's stats: one function's, and every function's the caller may view, read
from the rollups (`aiops.commands.stats`, the verb `aiops stats` calls too)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import Path, Query, Request
from pydantic import BaseModel, Field

from aiops.access import Permission
from aiops.commands import monitoring as stats_verbs
from aiops.server.api.guard import CallerDep, Operations

if TYPE_CHECKING:
    from aiops.store import Store

ops = Operations("stats")

FunctionRef = Annotated[str, Path(description="The function's id (a UUID) or its name.",
                                  max_length=100)]
Since = Annotated[datetime | None, Query(description=(
    "From this time on (ISO 8601; UTC without a zone). Default: 24 hours before `until`."))]
Until = Annotated[datetime | None, Query(description="Before this time (ISO 8601). Default: "
                                         "now.")]
By = Annotated[Literal["version", "provider", "model", "day"] | None, Query(description=(
    "Also each version, provider, model or UTC day apart, in `groups`."))]
Step = Annotated[int | None, Query(ge=stats_verbs.MIN_STEP_S, le=366 * 86400, description=(
    "A time series: `groups` holds one entry per step of this many seconds (a whole number "
    f"of minutes; at most {stats_verbs.MAX_STEPS} steps in the window)."))]


class Stats(BaseModel):
    calls: int
    errors: int
    error_rate: float | None = Field(description="errors / calls; null without calls.")
    errors_by_kind: dict[str, int] = Field(description="Errors per kind (the error's type).")
    p50_ms: float | None = Field(description="Read from the latency buckets: within about 9 "
                                 "% (docs/monitoring.md).")
    p95_ms: float | None
    p99_ms: float | None
    input_tokens: int
    output_tokens: int
    cost_usd: float


class Group(Stats):
    key: str | None = Field(None, description="The version, provider or model (`by`).")
    start: datetime | None = Field(None, description="The step's start (`step`, or `by=day`).")


class Budget(BaseModel):
    daily_calls: int | None
    calls_used: int
    calls_share: float | None = Field(description="calls_used / daily_calls, today (UTC).")
    daily_budget_usd: float | None
    usd_spent: float
    usd_share: float | None = Field(description="usd_spent / daily_budget_usd, today (UTC).")


class FunctionStats(Stats):
    id: str
    name: str
    budget: Budget
    groups: list[Group]


class StatsReport(BaseModel):
    since: datetime
    until: datetime
    by: str | None
    step_s: int | None
    total: Stats = Field(description="The sums over every function listed.")
    functions: list[FunctionStats]


def _store(request: Request) -> Store:
    store: Store = request.app.state.aiops.store()
    return store


_DESCRIPTION = ("Read from the per-minute rollups, never by scanning the logs: a window is "
                "whole minutes (an execution counts when the minute it was logged in starts "
                "in [since, until)).")


@ops.get("/api/contributor/ai-functions/{id}/stats", permission=Permission.VIEW,
         response_model=StatsReport, problems=["bad-request"],
         summary="One function's calls, errors, latency percentiles, tokens, cost and budget "
         "used", description=_DESCRIPTION)
def function_stats(request: Request, caller: CallerDep, id: FunctionRef, since: Since = None,
                   until: Until = None, by: By = None, step: Step = None) -> StatsReport:
    report = stats_verbs.stats(_store(request), id, since=since, until=until, by=by,
                               step_s=step, caller=caller)
    return StatsReport.model_validate(report.as_dict())


@ops.get("/api/contributor/stats", permission=Permission.VIEW, response_model=StatsReport,
         problems=["validation-failed", "bad-request"],
         summary="The stats of every function your token may view",
         description=_DESCRIPTION + " Functions the token may not view are left out, of the "
         "list and of the total.")
def all_stats(request: Request, caller: CallerDep, since: Since = None, until: Until = None,
              by: By = None, step: Step = None) -> StatsReport:
    report = stats_verbs.stats(_store(request), None, since=since, until=until, by=by,
                               step_s=step, caller=caller)
    return StatsReport.model_validate(report.as_dict())
