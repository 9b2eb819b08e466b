"""Running functions through the API: a test run from the contributor API, and a run for
applications, with an optional `Idempotency-Key`. Each route makes one call into the verbs
(`aiops.commands.invoke.invoke`), which runs through the worker's runner exactly as `aiops run`
does (limits, budgets, filters, one log row).

How an execution answers, on both routes:

    it ran and succeeded    200, the output with the execution's log id, latency, tokens,
                            cost and attempts
    it ran and failed       the problem document of its error (422 `invalid-input`, 429
                            `rate-limited` / `budget-exceeded` / `quota-exceeded` (the
                            token's daily quotas), 502 `provider-error` / `invalid-output`, 500
                            `internal-error`), with `execution`: the same log id, latency,
                            tokens, cost and attempts; a budget's or a quota's with Retry-After
    it did not run          a problem document without `execution` (401, 403, 404, 409, 422
                            `validation-failed` / `idempotency-key-reused`, 429
                            `quota-exceeded` for the token's rpm, ...)
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import Header, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from aiops.access import Caller, Permission
from aiops.commands import invoke
from aiops.commands.execution import RunResult
from aiops.errors import AiopsError, FieldError, InputError
from aiops.server.api.functions import BASE, FunctionRef
from aiops.server.api.guard import CallerDep, Operations
from aiops.server.api.problems import (
    _PRIVATE,
    AttemptInfo,
    ExecutionInfo,
    ProblemItem,
    code_of,
    problem_response,
    retry_after,
)
from aiops.spec import SEMVER_PATTERN

ops = Operations("runs")
log = logging.getLogger("aiops.server")

RUN = "/api/functions/{ref}/run"
REPLAYED = "Idempotent-Replayed"
_NAME = r"[a-z][a-z0-9-]{1,62}"
REF_PATTERN = rf"^{_NAME}(@(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*)){{0,2}}|@{SEMVER_PATTERN[1:-1]})?$"
# What can go wrong on every operation that runs a function: its own errors, and the quotas'.
_RUN_PROBLEMS = ["invalid-input", "rate-limited", "budget-exceeded", "quota-exceeded",
                 "provider-error", "invalid-output", "misconfigured", "bad-request",
                 "validation-failed"]

Ref = Annotated[str, Path(pattern=REF_PATTERN, max_length=200, description=(
    "The function's name, optionally with a version: `name` (its current version), "
    "`name@1.2.0` (that version), `name@1` or `name@1.2` (the newest applied version it "
    "starts with)."))]
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", pattern=invoke.IDEMPOTENCY_KEY_PATTERN, max_length=255,
    description="Any unique string of 1 to 255 visible ASCII characters (a UUID, say). A "
    "retry with the same key and the same request gets the first answer, byte for byte, with "
    "`Idempotent-Replayed: true`, and runs nothing; keys are kept 24 hours, per token.")]


class RunAnswer(ExecutionInfo):
    """A run that succeeded: its output, and the execution."""

    output: Any = Field(description="The function's output: JSON valid against its "
                        "output_schema (a string for a text function).")


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: dict[str, Any] = Field(description="The function's input: an object valid "
                                  "against its input_schema (defaults are filled in).")


class TestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: dict[str, Any] | None = Field(None, description=(
        "The function's input, as for a run (required unless `golden`)."))
    version: str | None = Field(None, pattern=SEMVER_PATTERN, max_length=100, description=(
        "Run this applied version (default: the current one)."))
    provider: str | None = Field(None, max_length=63, description=(
        "Run on this provider of the version's matrix alone (its provider and its "
        "fallbacks'), with that entry's model and settings, and no fallbacks. With `golden`: "
        "replay only this provider of the test matrix."))
    golden: bool = Field(False, description=(
        "Replay the function's golden tests (its file's `tests:`) from their cassettes in the "
        "server's project instead, offline; without `input` or `version`."))


class GoldenCase(BaseModel):
    """One golden test on one provider, as `aiops test --json` reports it."""

    function: str
    provider: str
    model: str
    test: str
    status: str = Field(description="passed, failed, error, miss (the request is not in the "
                        "cassette: the prompt changed) or no-cassette.")
    cassette: str
    message: str
    diff: str
    fix: str
    latency_ms: float | None
    cost_usd: float | None
    recorded: int
    output: Any
    assertions: list[dict[str, Any]]


class GoldenAnswer(BaseModel):
    """A replay of a function's golden tests: 200 whether they pass or not (`ok`)."""

    format_version: int
    mode: str
    ok: bool
    counts: dict[str, int]
    duration_s: float
    skipped: list[str]
    results: list[GoldenCase]


@ops.operation("POST", RUN, permission=Permission.INVOKE, response_model=RunAnswer,
               problem_schema="ExecutionProblem",
               problems=[*_RUN_PROBLEMS, "request-in-progress", "idempotency-key-reused"],
               summary="Run a function for an application",
               description="Runs `ref` on `input` with the limits, budgets, filters and logging "
               "of `aiops run`; the log row names the token's user. An execution that ran and "
               "failed answers with its problem document, whose `execution` holds its log id. "
               "With `Idempotency-Key`, a retry answers the first answer and runs nothing; the "
               "same key with another request is 422 `idempotency-key-reused`, and with a "
               "request still running 409 `request-in-progress`.")
async def run_function(request: Request, caller: CallerDep, ref: Ref, body: RunRequest,
                       idempotency_key: IdempotencyKey = None) -> Response:
    server = request.app.state.aiops
    name, selector = invoke.split_ref(ref)
    store = server.store()
    name = await invoke.authorize_run(store, await server.runner(), name, caller)
    claim = None
    if idempotency_key is not None:
        claim = await run_in_threadpool(invoke.claim_key, store, caller, idempotency_key,
                                        invoke.fingerprint(f"run {ref}", body.model_dump()))
        if claim.stored is not None:
            return Response(claim.stored.body, status_code=claim.stored.status_code,
                            media_type=claim.stored.content_type, headers={REPLAYED: "true"})
    return await _execute(request, caller, name, body.input, selector=selector, claim=claim)


@ops.operation("POST", BASE + "/{id}/test", permission=Permission.INVOKE,
               response_model=RunAnswer | GoldenAnswer, problem_schema="ExecutionProblem",
               problems=[*_RUN_PROBLEMS, "internal-error"],
               summary="Test a function: run it on an input, logged as a test, or replay its "
               "golden tests",
               description="Runs the function (optionally one `version`, or one `provider` of "
               "its matrix) on `input` through the runner, logged as a test (`\"test\": true` "
               "in the log row's metadata) with the token as its actor; answers as a run "
               "does. With `golden: true`, replays the function's golden tests from the "
               "cassettes of the server's project instead (offline, nothing logged) and "
               "answers the report, 200 whether they pass or not.")
async def test_function(request: Request, caller: CallerDep, id: FunctionRef,
                        body: TestRequest) -> Response | GoldenAnswer:
    server = request.app.state.aiops
    if body.golden:
        for field, value in (("input", body.input), ("version", body.version)):
            if value is not None:
                raise FieldError(f"`golden: true` replays the function's own test cases from "
                                 f"its file: send no `{field}`", pointer=f"/{field}")
        report = await run_in_threadpool(invoke.golden, server.workspace, server.store(),
                                         caller, id, provider=body.provider)
        return GoldenAnswer.model_validate(report)
    # Who may not view the function hears 404 (and who may not invoke it 403) whatever the body.
    name = await run_in_threadpool(invoke.authorize, server.store(), id, caller)
    if body.input is None:
        raise FieldError("send the function's `input` (an object), or `golden: true`",
                         pointer="/input")
    return await _execute(request, caller, name, body.input, selector=body.version,
                          provider=body.provider, test=True)


async def _execute(request: Request, caller: Caller, name: str, value: Any, *,
                   selector: str | None = None, provider: str | None = None,
                   test: bool = False, claim: invoke.Claim | None = None) -> Response:
    """Run, answer, and keep the answer under the claim (when there is one)."""
    server = request.app.state.aiops
    store = server.store()
    runner = await server.runner()
    try:
        result = await invoke.invoke(store, runner, caller, name, value, selector=selector,
                                     provider=provider, test=test,
                                     log_id=claim.log_id if claim is not None else None)
    except BaseException:  # it did not run (or was cancelled): a retry runs anew
        if claim is not None:
            _release(store, claim)
        raise
    response = answer(request, result, test=test)
    if claim is not None:
        stored = invoke.Stored(status_code=response.status_code,
                               content_type=response.headers["content-type"],
                               body=bytes(response.body))
        try:
            await run_in_threadpool(invoke.finish_key, store, claim, stored)
        except AiopsError as exc:  # the execution stands; a retry meets a running claim
            log.error("%s: the answer of Idempotency-Key execution %s was not kept: %s",
                      request.url.path, claim.log_id, exc)
    return response


def _release(store: Any, claim: invoke.Claim) -> None:
    try:
        invoke.release_key(store, claim)
    except AiopsError as exc:
        log.error("Idempotency-Key claim %s was not released: %s", claim.log_id, exc)


def answer(request: Request, result: RunResult, *, test: bool) -> JSONResponse:
    """The answer to an execution: 200 with its output, or its error's problem document with
    the execution in `execution`."""
    ex = result.execution
    assert ex is not None  # `invoke` raises what kept it from running
    info = ExecutionInfo(
        log_id=ex.log_id, function=ex.function, version=ex.version, test=test,
        provider=ex.provider, model=ex.model, latency_ms=round(ex.latency_ms, 3),
        input_tokens=ex.input_tokens, output_tokens=ex.output_tokens,
        cost_usd=round(ex.cost_usd, 10),
        attempts=[AttemptInfo(**a.as_dict()) for a in ex.attempts], deprecated=ex.deprecated,
        warnings=[str(e) for e in result.unrecorded] + list(result.log_warnings))
    if result.error is None:
        body = RunAnswer(output=ex.output, **info.model_dump())
        return JSONResponse(body.model_dump(mode="json"))
    error = result.error
    code = code_of(error)
    detail = str(error)
    if code in _PRIVATE:  # a bug, a provider missing from providers.yaml: the server's business
        log.error("%s: execution %s failed: %s", request.url.path, ex.log_id, error)
        detail = (f"the execution failed on the server's side; its log row {ex.log_id} and the "
                  "server's log have the details")
    errors = None
    if isinstance(error, InputError) and error.pointer is not None:
        errors = [ProblemItem(detail=error.message, pointer="/input" + error.pointer)]
    elif isinstance(error, FieldError):
        errors = [ProblemItem(detail=error.message, pointer=error.pointer)]
    return problem_response(request, code, detail, errors=errors, headers=retry_after(error),
                            extra={"execution": info.model_dump(mode="json")})
