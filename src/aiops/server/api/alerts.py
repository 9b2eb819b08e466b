"""The alerts' read: rules, their states and the history of notifications, of the functions
the caller may view (`aiops.commands.alerts.alerts_overview`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Query, Request
from pydantic import BaseModel, Field

from aiops.access import Permission
from aiops.catalog import DEFAULT_LIMIT, MAX_LIMIT
from aiops.commands import alerts_overview
from aiops.server.api.guard import CallerDep, Operations

ops = Operations("alerts")


class AlertRule(BaseModel):
    function: str
    function_id: str
    rule: str = Field(description="The rule's name, unique in its function.")
    metric: str
    condition: str = Field(description="The condition, in words: `error_rate > 0.05 over 15m`.")
    severity: str
    notify: list[str] = Field(description="Receivers of aiops.yaml it notifies.")
    state: str = Field(description="ok, pending (its `for` is running), firing, or unknown "
                       "(never evaluated).")
    since: datetime | None = Field(description="When the rule entered its state.")
    value: float | None = Field(description="The metric at the last evaluation.")
    evaluated_at: datetime | None
    definition: dict[str, Any] = Field(description="The rule as applied.")


class Delivery(BaseModel):
    receiver: str
    status: str = Field(description="pending (to try again), sent or failed (given up).")
    attempts: int
    sent_at: datetime | None
    last_error: str | None


class AlertEvent(BaseModel):
    id: str
    function_id: str
    rule: str
    event: str = Field(description="firing or resolved.")
    severity: str
    value: float | None
    at: datetime
    payload: dict[str, Any] = Field(description="What receivers were sent (the webhook's "
                                    "`data`).")
    deliveries: list[Delivery]


class AlertsPage(BaseModel):
    rules: list[AlertRule]
    history: list[AlertEvent] = Field(description="Notifications, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for older history; null at "
                                    "the end.")


@ops.get("/api/contributor/alerts", permission=Permission.VIEW, response_model=AlertsPage,
         problems=["validation-failed", "bad-request"],
         summary="Alert rules, their states and the history of notifications",
         description="Of the functions your token may view; others do not appear.")
def list_alerts(request: Request, caller: CallerDep,
                cursor: Annotated[str | None, Query(max_length=500, description=(
                    "The `next_cursor` of the previous page; leave out for the first."))] = None,
                limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=(
                    "History items per page."))] = DEFAULT_LIMIT) -> AlertsPage:
    overview = alerts_overview(request.app.state.aiops.store(), caller=caller, limit=limit,
                               cursor=cursor)
    return AlertsPage(
        rules=[AlertRule(**r.as_dict()) for r in overview.rules],
        history=[AlertEvent(id=h.id, function_id=h.function_id, rule=h.rule, event=h.event,
                            severity=h.severity, value=h.value, at=h.at,
                            payload=dict(h.payload),
                            deliveries=[Delivery(**d) for d in h.deliveries])
                 for h in overview.history],
        next_cursor=overview.next_cursor)
