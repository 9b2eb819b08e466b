"""`GET /metrics`: the Prometheus text exposition (`aiops.metrics`), for a token of role
viewer or above, showing the functions that token may view."""

from __future__ import annotations

from fastapi import Request, Response

from aiops.access import Permission
from aiops.commands.metrics import metrics_page
from aiops.server.api.guard import CallerDep, Operations

ops = Operations("metrics")
TEXT = "text/plain; version=0.0.4; charset=utf-8"


@ops.get("/metrics", permission=Permission.VIEW, response_class=Response,
         summary="Prometheus metrics: executions, latency, tokens, cost, budgets, alerts",
         responses={200: {"content": {TEXT: {"schema": {"type": "string"}}},
                          "description": "The Prometheus text exposition format 0.0.4."}})
def get_metrics(request: Request, caller: CallerDep) -> Response:
    body, content_type = metrics_page(request.app.state.aiops.store(), caller)
    return Response(body, media_type=content_type)
