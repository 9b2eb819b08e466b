"""Plan -> rows to write: one handler per change kind and per drift kind.

The handlers decide nothing (the plan did); they turn each change into rows of a
`store.Batch`, which the writer sends as a few bulk statements inside the lock and the one
transaction opened by `commands.apply`. Nothing here reads the database: ids come
from the deployed state the plan was checked against.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiops.errors import StalePlanError
from aiops.plan import DeployedState, DriftFinding, FunctionChange, Plan
from aiops.store import Batch, function_metadata_columns, version_columns, version_row


@dataclass(frozen=True, kw_only=True)
class Ctx:
    state: DeployedState
    project: str
    user_id: str | None
    git_commit: str | None
    now: datetime


def build_batch(plan: Plan, ctx: Ctx) -> Batch:
    """All the rows `plan` writes, grouped for bulk statements."""
    batch = Batch()
    pointers: dict[str, dict[str, Any]] = {}
    for change in plan.changes:
        HANDLERS[change.action](change, ctx, batch, pointers)
    by_name = {c.name: c for c in plan.changes}
    for finding in plan.drift:
        if finding.restorable:
            DRIFT_HANDLERS[finding.kind](finding, by_name.get(finding.name), ctx, batch, pointers)
    batch.pointer_updates = list(pointers.values())
    return batch


def _stored(ctx: Ctx, name: str) -> Any:
    stored = ctx.state.functions.get(name)
    if stored is None:  # the token check makes this unreachable; keep the message useful
        raise StalePlanError(f"{name} is no longer in the database; run `aiops plan` again")
    return stored


def _function_update(function_id: str, change: FunctionChange, ctx: Ctx) -> dict[str, Any]:
    assert change.desired is not None
    cols = function_metadata_columns(change.desired.metadata)
    return {"_id": uuid.UUID(function_id), **{f"v_{k}": v for k, v in cols.items()},
            "v_metadata_hash": change.desired.metadata_hash, "v_managed_by": ctx.project,
            "v_updated_at": ctx.now, "v_applied_at": ctx.now, "v_applied_commit": ctx.git_commit}


def _pointer(function_id: str, version_id: str, ctx: Ctx) -> dict[str, Any]:
    return {"_id": uuid.UUID(function_id), "cur": uuid.UUID(version_id), "now": ctx.now,
            "commit": ctx.git_commit}


def _create(change: FunctionChange, ctx: Ctx, batch: Batch, _p: dict[str, Any]) -> None:
    d = change.desired
    assert d is not None
    fid = str(uuid.uuid4())
    vrow = version_row(fid, d.content, version=d.version, behaviour_hash=d.behaviour_hash,
                       git_commit=ctx.git_commit, user_id=ctx.user_id, now=ctx.now)
    batch.new_versions.append(vrow)
    # The version's foreign key to its function is checked at commit (deferred pointer).
    batch.new_functions.append({
        "id": uuid.UUID(fid), "name": change.name, **function_metadata_columns(d.metadata),
        "metadata_hash": d.metadata_hash, "current_version_id": vrow["id"],
        "reconciled_version_id": vrow["id"], "managed_by": ctx.project,
        "applied_at": ctx.now, "applied_commit": ctx.git_commit, "created_at": ctx.now,
        "updated_at": ctx.now, "created_by": uuid.UUID(ctx.user_id) if ctx.user_id else None})
    batch.managed.append({"project": ctx.project, "name": change.name,
                          "first_applied_at": ctx.now})


def _new_version(change: FunctionChange, ctx: Ctx, batch: Batch,
                 pointers: dict[str, Any]) -> None:
    d = change.desired
    assert d is not None
    stored = _stored(ctx, change.name)
    vrow = version_row(stored.id, d.content, version=d.version, behaviour_hash=d.behaviour_hash,
                       git_commit=ctx.git_commit, user_id=ctx.user_id, now=ctx.now)
    batch.new_versions.append(vrow)
    pointers[stored.id] = _pointer(stored.id, str(vrow["id"]), ctx)
    _metadata(change, ctx, batch, pointers)


def _rollback(change: FunctionChange, ctx: Ctx, batch: Batch, pointers: dict[str, Any]) -> None:
    stored = _stored(ctx, change.name)
    assert change.target_version_id is not None
    pointers[stored.id] = _pointer(stored.id, change.target_version_id, ctx)
    _metadata(change, ctx, batch, pointers)


def _metadata(change: FunctionChange, ctx: Ctx, batch: Batch, _p: dict[str, Any]) -> None:
    if not change.metadata_changed:
        return
    stored = _stored(ctx, change.name)
    batch.function_updates.append(_function_update(stored.id, change, ctx))
    batch.managed.append({"project": ctx.project, "name": change.name,
                          "first_applied_at": ctx.now})


def _archive(change: FunctionChange, ctx: Ctx, batch: Batch, _p: dict[str, Any]) -> None:
    stored = _stored(ctx, change.name)
    # The hash covers the archived row: an archive made by hand (status set with SQL) is
    # then told apart from this one (plan reports it as drift).
    batch.archives.append({"_id": uuid.UUID(stored.id), "now": ctx.now,
                           "commit": ctx.git_commit, "hash": stored.archived_metadata_hash})


def _noop(change: FunctionChange, ctx: Ctx, batch: Batch, _p: dict[str, Any]) -> None:
    return None


Handler = Callable[[FunctionChange, Ctx, Batch, dict[str, Any]], None]
HANDLERS: dict[str, Handler] = {
    "create": _create, "new_version": _new_version, "rollback": _rollback,
    "update_metadata": _metadata, "archive": _archive, "noop": _noop,
}

# --- drift: restore what git says ----------------------------------------------------------


def _restore_version(finding: DriftFinding, change: FunctionChange | None, ctx: Ctx,
                     batch: Batch, _p: dict[str, Any]) -> None:
    assert change is not None and change.desired is not None and finding.version_id
    content = change.desired.content
    batch.version_restores.append({"_id": uuid.UUID(finding.version_id), "v_content": content,
                                   **{f"v_{k}": v for k, v in version_columns(content).items()}})


def _restore_pointer(finding: DriftFinding, change: FunctionChange | None, ctx: Ctx,
                     batch: Batch, pointers: dict[str, Any]) -> None:
    assert change is not None and change.desired is not None
    stored = _stored(ctx, finding.name)
    if stored.id in pointers:  # a new version or a rollback already sets it
        return
    target = stored.version_named(change.desired.version)
    if target is not None:
        pointers[stored.id] = _pointer(stored.id, target.id, ctx)


def _covered(finding: DriftFinding, change: FunctionChange | None, ctx: Ctx, batch: Batch,
             _p: dict[str, Any]) -> None:
    """Metadata drift and a missing function are restored by the change itself."""


DriftHandler = Callable[[DriftFinding, FunctionChange | None, Ctx, Batch, dict[str, Any]], None]
DRIFT_HANDLERS: dict[str, DriftHandler] = {
    "version_content": _restore_version, "pointer": _restore_pointer,
    "metadata": _covered, "missing": _covered,
}


def summary(plan: Plan) -> list[dict[str, Any]]:
    """What a run changed, for its record in reconcile_runs (the audit trail)."""
    out: list[dict[str, Any]] = [
        {"name": c.name, "action": c.action, "from": c.from_version, "to": c.to_version}
        for c in plan.changes if c.action != "noop"]
    out += [{"name": d.name, "action": f"restore_{d.kind}", "version": d.version}
            for d in plan.drift if d.restorable]
    return out
