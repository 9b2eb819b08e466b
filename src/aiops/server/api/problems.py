"""Every error the API answers is an RFC 9457 problem document (`application/problem+json`):
`type`, `title`, `status`, `detail`, `instance`, and a stable `code` that clients branch on
(docs/api.md lists them). Validation errors add `errors`: one item per problem, with a JSON
pointer into the body, or the query parameter or header it is about.

aiops errors map to statuses in one table (`STATUSES`, looked up along the exception's class
hierarchy, as Starlette looks up handlers). Anything else is a 500 whose detail says nothing
of the failure: the server's log has it, under the `instance` id the answer names.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from aiops.commands.invoke import IdempotencyKeyReused, RequestInProgress
from aiops.errors import (
    AiopsError,
    BudgetExceeded,
    ConfigError,
    ConflictError,
    DatabaseUnavailable,
    FieldError,
    InputError,
    LimitExceeded,
    LockBusy,
    NotFoundError,
    OutputError,
    PermissionDenied,
    PreconditionFailed,
    PreconditionRequired,
    ProviderError,
    QuotaExceeded,
    RuntimeFailure,
    SpecError,
    StalePlanError,
    UsageError,
    UserError,
    WritesDisabled,
)
from aiops.schemas import json_pointer

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("aiops.server")


class ProblemItem(BaseModel):
    """One problem of a request that did not validate: where (`pointer` into the JSON body,
    or the query/path `parameter`, or the `header`) and what."""

    model_config = ConfigDict(extra="forbid")
    detail: str
    pointer: str | None = None
    parameter: str | None = None
    header: str | None = None
    line: int | None = Field(None, description="In a YAML body: the line (1-based).")
    column: int | None = Field(None, description="In a YAML body: the column (1-based).")


class Problem(BaseModel):
    """An error (RFC 9457). `code` is stable: branch on it, not on `title` or `detail`."""

    model_config = ConfigDict(extra="forbid")
    type: str = Field(description="A URI reference naming the kind of problem (its section "
                      "of the API reference).")
    title: str
    status: int
    detail: str
    instance: str = Field(description="This occurrence: the request's path, or for a server "
                          "error an id to find in the server's log.")
    code: str
    errors: list[ProblemItem] | None = None


class AttemptInfo(BaseModel):
    """One call to a provider within an execution (or a provider passed over: `skipped`)."""

    provider: str
    model: str
    status: str = Field(description="ok, error, invalid (output that did not validate) or "
                        "skipped.")
    latency_ms: float
    error: str | None = Field(None, description="The error's class, e.g. ProviderError.")
    kind: str | None = Field(None, description="timeout, rate_limit, invalid_output, ...")
    http_status: int | None = None
    message: str | None = None
    repair: bool = Field(False, description="A re-ask after output that did not validate.")
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    request_id: str | None = None
    limit_wait_ms: float | None = Field(None, description="Time waited for a rate limit first.")


class ExecutionInfo(BaseModel):
    """One execution: its log row's id and what it took."""

    log_id: str = Field(description="The execution's id: its log row (`GET .../{id}/logs`).")
    function: str
    version: str = Field(description="The version that ran.")
    test: bool = Field(description="Logged as a test (`POST .../{id}/test`).")
    provider: str | None = Field(description="The provider that answered (null: none did).")
    model: str | None
    latency_ms: float
    input_tokens: int
    output_tokens: int
    cost_usd: float
    attempts: list[AttemptInfo]
    deprecated: bool = Field(description="The version that ran is deprecated.")
    warnings: list[str] = Field(description="What could not be recorded (the log row, when "
                                "the database refused it); empty when all was.")


class ExecutionProblem(Problem):
    """A problem document of an operation that runs a function: when the function ran and
    failed, `execution` says how (its log id, attempts, tokens, cost)."""

    execution: ExecutionInfo | None = None


# code -> (status, title): the stable codes, each with one status.
CODES: dict[str, tuple[int, str]] = {
    "bad-request": (400, "The request cannot be understood"),
    "unauthenticated": (401, "A valid API token is required"),
    "forbidden": (403, "The token's role does not allow this"),
    "writes-off": (403, "Writes are turned off on this server"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "conflict": (409, "Conflict with the current state"),
    "request-in-progress": (409, "A request with this Idempotency-Key is still running"),
    "precondition-failed": (412, "The resource changed since you read it"),
    "payload-too-large": (413, "The request body is too large"),
    "unsupported-media-type": (415, "Unsupported media type"),
    "validation-failed": (422, "The request does not validate"),
    "invalid-input": (422, "The function's input does not validate"),
    "invalid-spec": (422, "The function document does not validate"),
    "idempotency-key-reused": (422, "The Idempotency-Key was used for another request"),
    "precondition-required": (428, "If-Match is required"),
    "rate-limited": (429, "Rate limit reached"),
    "budget-exceeded": (429, "Budget exhausted"),
    "quota-exceeded": (429, "A quota of this token is reached"),
    "internal-error": (500, "Internal server error"),
    "provider-error": (502, "The provider failed"),
    "invalid-output": (502, "The provider's output did not validate"),
    "not-ready": (503, "The server is not ready"),
    "busy": (503, "The database is busy"),
    "misconfigured": (503, "The server cannot answer this as configured"),
}

# aiops error class -> code; the nearest class in the exception's MRO wins.
STATUSES: dict[type[AiopsError], str] = {
    UserError: "bad-request",
    UsageError: "bad-request",
    NotFoundError: "not-found",
    InputError: "invalid-input",
    SpecError: "invalid-spec",
    ConfigError: "misconfigured",
    RuntimeFailure: "internal-error",
    ProviderError: "provider-error",
    OutputError: "invalid-output",
    LimitExceeded: "rate-limited",
    BudgetExceeded: "budget-exceeded",
    QuotaExceeded: "quota-exceeded",
    StalePlanError: "conflict",
    LockBusy: "busy",
    DatabaseUnavailable: "not-ready",
    ConflictError: "conflict",
    RequestInProgress: "request-in-progress",
    IdempotencyKeyReused: "idempotency-key-reused",
    FieldError: "validation-failed",
    PreconditionRequired: "precondition-required",
    PreconditionFailed: "precondition-failed",
    PermissionDenied: "forbidden",
    WritesDisabled: "writes-off",
}
# Codes whose aiops message is the server's own business (paths, database URLs): the detail
# is generic and the message goes to the server's log.
_PRIVATE = {"misconfigured", "internal-error", "not-ready"}


def type_uri(code: str) -> str:
    return f"/docs#error-{code}"


class ApiProblem(Exception):
    """Raised by routes and the gate to answer with a problem document."""

    def __init__(self, code: str, detail: str, *, headers: Mapping[str, str] | None = None,
                 errors: Sequence[ProblemItem] | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.status, self.title = CODES[code]
        self.detail = detail
        self.headers = dict(headers or {})
        self.errors = list(errors) if errors is not None else None


def code_of(exc: AiopsError) -> str:
    for cls in type(exc).__mro__:
        if cls in STATUSES:
            return STATUSES[cls]
    return "internal-error"


def problem_response(request: Request, code: str, detail: str, *,
                     headers: Mapping[str, str] | None = None,
                     errors: Sequence[ProblemItem] | None = None,
                     instance: str | None = None,
                     extra: Mapping[str, Any] | None = None) -> JSONResponse:
    """The problem document of `code`; `extra`: extension members (RFC 9457 §3.2) that the
    operation's own problem schema declares."""
    status, title = CODES[code]
    body = Problem(type=type_uri(code), title=title, status=status, detail=detail,
                   instance=instance or request.url.path, code=code,
                   errors=list(errors) if errors is not None else None)
    return JSONResponse({**body.model_dump(exclude_none=True), **(extra or {})},
                        status_code=status,
                        headers=dict(headers or {}), media_type=MEDIA_TYPE)


def _incident(request: Request, exc: BaseException, what: str) -> str:
    """Log a failure the caller is not told about; the id the answer names."""
    incident = f"urn:uuid:{uuid.uuid4()}"
    log.error("%s %s %s: %s (%s)", incident, request.method, request.url.path, what,
              type(exc).__name__, exc_info=exc if what == "internal error" else None)
    return incident


async def _on_api_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem_response(request, exc.code, exc.detail, headers=exc.headers,
                            errors=exc.errors)


async def _on_aiops_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AiopsError)
    code = code_of(exc)
    headers = {"Retry-After": "1"} if code == "busy" else retry_after(exc)
    if code in _PRIVATE:
        incident = _incident(request, exc, str(exc))
        if code == "not-ready":  # the database's address is the server's business
            return problem_response(request, code, "the database does not answer; try again "
                                    f"later (the server's log says more under {incident})",
                                    instance=incident, headers={"Retry-After": "5"})
        return problem_response(request, code, "the server could not answer this; its log "
                                f"has the details under {incident}", instance=incident)
    errors = None
    if isinstance(exc, SpecError):
        errors = [ProblemItem(detail=d.message + (f" (fix: {d.fix})" if d.fix else ""),
                              pointer=d.pointer if d.pointer is not None
                              else pointer_of_path(d.path),
                              line=d.line if d.pointer is not None else None,
                              column=d.column if d.pointer is not None else None)
                  for d in exc.diagnostics if d.is_error]
    elif isinstance(exc, FieldError):
        errors = [ProblemItem(detail=exc.message, pointer=exc.pointer)]
    return problem_response(request, code, str(exc), headers=headers, errors=errors)


def retry_after(exc: AiopsError) -> dict[str, str] | None:
    """The Retry-After header of a refusal that says when trying again can succeed (a
    budget or quota: whole seconds, rounded up)."""
    seconds = exc.retry_after_s if isinstance(exc, BudgetExceeded) else None
    if seconds is None:
        return None
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large",
            415: "unsupported-media-type"}.get(exc.status_code, "bad-request")
    detail = {404: f"nothing is served at {request.url.path}",
              405: f"{request.method} is not allowed here"}.get(exc.status_code,
                                                                 str(exc.detail))
    return problem_response(request, code, detail, headers=exc.headers)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = [_item(e) for e in exc.errors()]
    return problem_response(request, "validation-failed",
                            f"{len(items)} problem(s) in the request; see `errors`",
                            errors=items)


async def _on_unhandled(request: Request, exc: Exception) -> JSONResponse:
    incident = _incident(request, exc, "internal error")
    return problem_response(request, "internal-error", "the server failed to answer; its log "
                            f"has the details under {incident}", instance=incident)


def _item(error: Mapping[str, Any]) -> ProblemItem:
    loc = [str(p) for p in error.get("loc", ())]
    where, rest = (loc[0], loc[1:]) if loc else ("body", [])
    message = str(error.get("msg", "invalid"))
    if where == "body":
        return ProblemItem(detail=message, pointer=json_pointer(rest))
    if where == "header":
        return ProblemItem(detail=message, header=rest[0] if rest else "")
    return ProblemItem(detail=message, parameter=".".join(rest))


def pointer_of_path(path: str) -> str:
    """A diagnostic's key path (`prompt[1].content`) as a JSON pointer (`/prompt/1/content`)."""
    import re

    return json_pointer(p for p in re.split(r"\.|\[(\d+)\]", path) if p)


def install(app: FastAPI) -> None:
    """Answer every error with a problem document."""
    app.add_exception_handler(ApiProblem, _on_api_problem)
    app.add_exception_handler(AiopsError, _on_aiops_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(Exception, _on_unhandled)


def responses(codes: Iterable[str], schema: str = "Problem") -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for problem documents with these codes (grouped by status), each
    of the component `schema`."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(CODES[code][0], []).append(code)
    return {status: {"description": "Problem: " + ", ".join(f"`{c}`" for c in sorted(cs)),
                     "content": {MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}
            for status, cs in sorted(by_status.items())}
