"""The API's executions (DESIGN §9): a function run for an API caller, as a test
(`POST /api/contributor/ai-functions/{id}/test`) or for an application
(`POST /api/functions/{ref}/run`).

`invoke` is the one call into the runner for both: the caller's access checked (a function it
may not view is missing, one it may view but not invoke is PermissionDenied), its token's
quotas admitted (`aiops.commands.quotas`: rpm before the run, daily calls and USD with each
provider call), then the runner the server's worker keeps, with the limits, budgets, filters and logging of `aiops
run`; the log row names the caller (`token:NAME`) and its user (`created_by`), and says
`"test": true` for a test. Its row is written before `invoke` returns.

Idempotency keys (`claim_key`, `finish_key`, `release_key`) live in the database, so that every
worker and replica sees them: a claim, the execution, then the answer's bytes stored under the
claim, each in its own short transaction (DESIGN §11: the execution id is chosen at the claim;
no transaction is open across the provider call).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiops.access import Caller, may
from aiops.commands.catalog import not_visible, visible_function
from aiops.commands.execution import RunResult, open_runner
from aiops.commands.quotas import admit
from aiops.errors import (
    AiopsError,
    ConflictError,
    FieldError,
    LogWriteError,
    NotFoundError,
    PermissionDenied,
    UserError,
)
from aiops.runner import Origin, parse_target
from aiops.workspace import Workspace

if TYPE_CHECKING:
    from aiops.runner import Runner
    from aiops.store import Store

IDEMPOTENCY_TTL_S = 24 * 3600.0  # how long a key's answer is kept
# How long a claim holds its key while its request runs; a claim older than this (its worker
# died) is taken over by a retry. Longer than any execution lasts.
IDEMPOTENCY_LEASE_S = 600.0
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # visible ASCII, as the draft's examples


class RequestInProgress(ConflictError):
    """A request under the same Idempotency-Key is still running (an API answer: 409)."""


class IdempotencyKeyReused(UserError):
    """An Idempotency-Key sent again with a different request (an API answer: 422)."""


def open_api_runner(ws: Workspace, store: Store, *, max_wait_s: float | None,
                    env: Mapping[str, str] | None = None) -> Runner:
    """The runner a server worker keeps for its requests: the project's providers, the
    worker's store, rate-limit waits bounded by `max_wait_s`."""
    return open_runner(ws, store=store, env=env, max_wait_s=max_wait_s, actor="api")


def authorize(store: Store, ref: str, caller: Caller) -> str:
    """The name of the function `ref` (its name or id) when `caller` may invoke it:
    NotFoundError when it may not view it (or nothing has that name), PermissionDenied when it
    may view it but not invoke it."""
    row = visible_function(store, ref, caller)
    _may_invoke(caller, row.summary.name, row.summary.access)
    name: str = row.summary.name
    return name


async def authorize_run(store: Store, runner: Runner, name: str, caller: Caller) -> str:
    """`authorize` for a run by name, from the runner's resolution of `name` (which the run
    needs anyway, and which the runner keeps FLOATING_TTL_S): no query of its own on the hot
    path, so an access list changed elsewhere binds runs within those seconds, as the
    version they run does. Whatever the resolution raises (no such function, archived, the
    database down), the database answers instead, exactly as `authorize` does."""
    try:
        prepared = await runner.resolve(name)
    except AiopsError:
        return await asyncio.to_thread(authorize, store, name, caller)
    dv = prepared.dv
    if not may(caller, "view", dv.access):
        raise not_visible(name)
    _may_invoke(caller, dv.name, dv.access)
    return dv.name


def _may_invoke(caller: Caller, name: str, access: Mapping[str, Any]) -> None:
    if not may(caller, "invoke", access):
        raise PermissionDenied(f"your token may view {name} but not run it: its "
                               "`access.invoke` list names none of the token's groups")


async def invoke(store: Store, runner: Runner, caller: Caller, name: str, value: Any, *,
                 selector: str | None = None, provider: str | None = None, test: bool = False,
                 log_id: str | None = None) -> RunResult:
    """Run `name[@selector]` on `value` for `caller` (access checked before: `authorize`).
    `provider`: one provider of the version's matrix alone. `log_id`: the execution's id,
    chosen by the caller (an idempotency claim). Errors before the execution (an unknown
    version, a provider outside the matrix) raise; the execution's own are in the result."""
    target = f"{name}@{selector}" if selector else name
    origin = Origin(actor=caller.actor, created_by=caller.user_id,
                    metadata={"test": True} if test else {}, log_id=log_id)
    quota = await admit(runner, caller)  # the token's rpm, and the claim on its daily quotas
    execution = await runner.run(target, value, origin=origin, provider=provider, quota=quota)
    unrecorded: list[AiopsError] = []
    try:
        await runner.flush()  # the row is in the database before the answer names it
    except LogWriteError as exc:
        unrecorded.append(exc)
    return RunResult(execution=execution, error=execution.error, unrecorded=tuple(unrecorded),
                     log_warnings=tuple(runner.log_warnings()))


def golden(ws: Workspace, store: Store, caller: Caller, ref: str, *,
           provider: str | None = None) -> dict[str, Any]:
    """Replay the golden tests of the function `ref` (its name or id) from the cassettes of
    the server's working tree, for `caller` (access checked as for a run), on each provider
    of its matrix or only `provider`: the report as `aiops test --json` prints it. Offline,
    in a child process (`golden_replay_isolated`). NotFoundError when the function has no file
    in the working tree; FieldError at `/provider` for a provider outside its matrix."""
    from aiops.commands.golden import golden_replay_isolated
    from aiops.golden import matrix
    from aiops.loader import function_file

    name = authorize(store, ref, caller)
    loaded = ws.reopened().project.functions.get(name)  # the files as they are now
    if loaded is None:
        raise NotFoundError(f"{name} has no file in the server's project ({function_file(name)}"
                            "), and golden tests replay from its file and cassettes")
    if provider is not None and provider not in matrix(loaded.spec):
        raise FieldError(f"provider `{provider}` is not in {name}'s test matrix "
                         f"({', '.join(matrix(loaded.spec))})", pointer="/provider")
    return golden_replay_isolated(ws.root, name, provider=provider)


def split_ref(ref: str) -> tuple[str, str | None]:
    """`name`, `name@1.2.0`, `name@1`: the name and the version selector."""
    return parse_target(ref)


# --- idempotency keys ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Stored:
    """An answer, as sent: replayed byte for byte."""

    status_code: int
    content_type: str
    body: bytes


@dataclass(frozen=True, kw_only=True)
class Claim:
    """A request's hold on its key: `log_id` is the execution's id; `stored` the first
    answer, when the key has one (replay it, run nothing)."""

    token_id: str
    key: str
    log_id: str
    stored: Stored | None = None


def fingerprint(route: str, payload: Any) -> str:
    """What a request asks, for telling a retry from another request under the same key:
    the route (with the function's ref) and the body's value (not its spelling)."""
    raw = json.dumps([route, payload], sort_keys=True, separators=(",", ":"),
                     ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def claim_key(store: Store, caller: Caller, key: str, print_: str) -> Claim:
    """Claim `key` for this request of `caller`'s token. A Claim to run under (new, or taken
    over from a request whose worker died), or one with the stored answer; RequestInProgress
    when another request holds the key now; IdempotencyKeyReused when the key was used for a
    different request."""
    row = store.claim_idempotency_key(token_id=caller.token_id, key=key, fingerprint=print_,
                                      log_id=str(uuid.uuid4()), lease_s=IDEMPOTENCY_LEASE_S,
                                      ttl_s=IDEMPOTENCY_TTL_S)
    if row.state == "mismatch":
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used for a different request (another function, version "
            "or body) in the last 24 hours; use a new key for a new request")
    if row.state == "running":
        raise RequestInProgress(
            "a request with this Idempotency-Key is still running; retry after it ends to get "
            "its answer")
    stored = None
    if row.state == "done":
        stored = Stored(status_code=row.status_code or 200,
                        content_type=row.content_type or "application/json",
                        body=row.response or b"")
    return Claim(token_id=caller.token_id, key=key, log_id=row.log_id, stored=stored)


def finish_key(store: Store, claim: Claim, answer: Stored) -> None:
    """Keep `answer` under the claim's key: retries get it."""
    store.finish_idempotency_key(token_id=claim.token_id, key=claim.key, log_id=claim.log_id,
                                 status_code=answer.status_code,
                                 content_type=answer.content_type, response=answer.body)


def release_key(store: Store, claim: Claim) -> None:
    """Give the key back: the request ended before any execution, so a retry runs anew."""
    store.release_idempotency_key(token_id=claim.token_id, key=claim.key, log_id=claim.log_id)
