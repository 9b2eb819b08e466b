"""What answers without a token: liveness, readiness, the OpenAPI document and the API
reference page (rendered here from that document: it loads nothing from anywhere else, so
it works offline)."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from aiops.access import LEAST_ROLE, Permission
from aiops.server.api.guard import BEARER, Operations
from aiops.server.api.problems import (
    CODES,
    ApiProblem,
    ExecutionProblem,
    Problem,
    ProblemItem,
    type_uri,
)

ops = Operations("health")


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    database: str
    revision: str | None


@ops.get("/healthz", permission=Permission.PUBLIC, response_model=Health,
         summary="Liveness: the process answers")
def healthz() -> Health:
    return Health(status="ok")


@ops.get("/readyz", permission=Permission.PUBLIC, response_model=Ready, problems=["not-ready"],
         summary="Readiness: the database answers and its schema is current")
def readyz(request: Request) -> Ready:
    from aiops.commands.catalog import readiness

    result = readiness(request.app.state.aiops.store)
    if not result.ready:
        raise ApiProblem("not-ready", result.detail, headers={"Retry-After": "5"})
    return Ready(status="ready", database=result.database, revision=result.revision)


@ops.get("/openapi.json", permission=Permission.PUBLIC, include_in_schema=False)
def openapi_json(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@ops.get("/docs", permission=Permission.PUBLIC, include_in_schema=False,
         response_class=HTMLResponse)
def reference(request: Request) -> HTMLResponse:
    return HTMLResponse(render_reference(request.app.openapi()))


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with the problem schema and the bearer scheme (once per app)."""
    if app.openapi_schema is None:
        doc = get_openapi(title=app.title, version=app.version, description=app.description,
                          routes=app.routes)
        components = doc.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        for model in (Problem, ProblemItem, ExecutionProblem):
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        components["securitySchemes"] = {BEARER: {
            "type": "http", "scheme": "bearer",
            "description": "An API token: `aiops_<key id>_<secret>` (`aiops token create`)."}}
        # FastAPI adds its own 422 to operations with parameters: ours is a problem document.
        for path in doc.get("paths", {}).values():
            for operation in path.values():
                answer = operation.get("responses", {}).get("422")
                if answer is not None and "application/json" in answer.get("content", {}):
                    del answer["content"]["application/json"]
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        app.openapi_schema = doc
    return app.openapi_schema


@cache
def _template() -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("aiops.server.api", "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["code"] = _code_spans
    return env.get_template("reference.html")


def _code_spans(text: str) -> Any:
    """Escaped text with its `backticked` spans as <code> (what the descriptions use)."""
    import re

    from markupsafe import Markup, escape

    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


def render_reference(doc: dict[str, Any]) -> str:
    """The API reference as one HTML page, with its own small stylesheet."""
    operations = []
    for path, methods in doc.get("paths", {}).items():
        for method, op in methods.items():
            operations.append({
                "method": method.upper(), "path": path, "id": op.get("operationId", ""),
                "summary": op.get("summary", ""), "description": op.get("description", ""),
                "permission": op.get("x-permission", ""), "role": op.get("x-least-role"),
                "tag": (op.get("tags") or [""])[0],
                "parameters": [{"name": p["name"], "in": p["in"],
                                "required": p.get("required", False),
                                "description": p.get("description", ""),
                                "schema": _schema_text(p.get("schema", {}))}
                               for p in op.get("parameters", [])],
                "responses": [{"status": s, "description": r.get("description", "")}
                              for s, r in op.get("responses", {}).items()]})
    errors = [{"code": c, "status": s, "title": t, "anchor": type_uri(c).split("#")[1]}
              for c, (s, t) in CODES.items()]
    return str(_template().render(title=doc["info"]["title"], version=doc["info"]["version"],
                                  description=doc["info"].get("description", ""),
                                  operations=operations, errors=errors,
                                  roles=[(p.label, r) for p, r in LEAST_ROLE.items()]))


def _schema_text(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " | ".join(_schema_text(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    text = str(schema.get("type", "any"))
    if "format" in schema:
        text += f" ({schema['format']})"
    bounds = [f"{k} {schema[k]}" for k in ("minimum", "maximum", "maxLength") if k in schema]
    return text + (f", {', '.join(bounds)}" if bounds else "")
