"""Plan -> rows to write: one handler per change kind and per drift kind.

The handlers decide nothing (the plan did); they turn each change into the typed rows of a
`records.Batch`, which the store's writer sends as a few bulk statements inside the lock and
the one transaction opened by `commands.apply`. Nothing here touches the database: ids come
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
from aiops.records import (
    Archive,
    Batch,
    FunctionColumns,
    FunctionUpdate,
    Managed,
    NewFunction,
    NewVersion,
    PointerUpdate,
    VersionRestore,
)


@dataclass(frozen=True, kw_only=True)
class Ctx:
    state: DeployedState
    project: str
    user_id: str  # who applies: created_by / updated_by of every row written
    git_commit: str | None
    now: datetime


Pointers = dict[str, PointerUpdate]  # function id -> where its pointer moves (one per function)


def build_batch(plan: Plan, ctx: Ctx) -> Batch:
    """All the rows `plan` writes, grouped for bulk statements."""
    batch = Batch()
    pointers: Pointers = {}
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


def _columns(change: FunctionChange) -> FunctionColumns:
    assert change.desired is not None
    return FunctionColumns.of(change.desired.metadata, change.desired.metadata_hash)


def _version(function_id: str, change: FunctionChange, ctx: Ctx) -> NewVersion:
    d = change.desired
    assert d is not None
    return NewVersion(id=str(uuid.uuid4()), function_id=function_id, version=d.version,
                      behaviour_hash=d.behaviour_hash, content=d.content,
                      git_commit=ctx.git_commit, created_at=ctx.now, created_by=ctx.user_id)


def _pointer(function_id: str, version_id: str, ctx: Ctx) -> PointerUpdate:
    return PointerUpdate(function_id=function_id, version_id=version_id,
                         applied_commit=ctx.git_commit, now=ctx.now, updated_by=ctx.user_id)


def _managed(change: FunctionChange, ctx: Ctx) -> Managed:
    return Managed(project=ctx.project, name=change.name, first_applied_at=ctx.now)


def _create(change: FunctionChange, ctx: Ctx, batch: Batch, _p: Pointers) -> None:
    version = _version(str(uuid.uuid4()), change, ctx)
    batch.new_versions.append(version)
    # The version's foreign key to its function is checked at commit (deferred pointer).
    batch.new_functions.append(NewFunction(
        id=version.function_id, name=change.name, columns=_columns(change),
        version_id=version.id, managed_by=ctx.project, applied_commit=ctx.git_commit,
        now=ctx.now, created_by=ctx.user_id))
    batch.managed.append(_managed(change, ctx))


def _new_version(change: FunctionChange, ctx: Ctx, batch: Batch, pointers: Pointers) -> None:
    stored = _stored(ctx, change.name)
    version = _version(stored.id, change, ctx)
    batch.new_versions.append(version)
    pointers[stored.id] = _pointer(stored.id, version.id, ctx)
    _metadata(change, ctx, batch, pointers)


def _rollback(change: FunctionChange, ctx: Ctx, batch: Batch, pointers: Pointers) -> None:
    stored = _stored(ctx, change.name)
    assert change.target_version_id is not None
    pointers[stored.id] = _pointer(stored.id, change.target_version_id, ctx)
    _metadata(change, ctx, batch, pointers)


def _metadata(change: FunctionChange, ctx: Ctx, batch: Batch, _p: Pointers) -> None:
    if not change.metadata_changed:
        return
    stored = _stored(ctx, change.name)
    batch.function_updates.append(FunctionUpdate(
        function_id=stored.id, columns=_columns(change), managed_by=ctx.project,
        applied_commit=ctx.git_commit, now=ctx.now, updated_by=ctx.user_id))
    batch.managed.append(_managed(change, ctx))


def _archive(change: FunctionChange, ctx: Ctx, batch: Batch, _p: Pointers) -> None:
    stored = _stored(ctx, change.name)
    # The hash covers the archived row: an archive made by hand (status set with SQL) is
    # then told apart from this one (plan reports it as drift).
    batch.archives.append(Archive(function_id=stored.id,
                                  metadata_hash=stored.archived_metadata_hash,
                                  applied_commit=ctx.git_commit, now=ctx.now,
                                  updated_by=ctx.user_id))


def _noop(change: FunctionChange, ctx: Ctx, batch: Batch, _p: Pointers) -> None:
    return None


Handler = Callable[[FunctionChange, Ctx, Batch, Pointers], None]
HANDLERS: dict[str, Handler] = {
    "create": _create, "new_version": _new_version, "rollback": _rollback,
    "update_metadata": _metadata, "archive": _archive, "noop": _noop,
}

# --- drift: restore what git says ----------------------------------------------------------


def _restore_version(finding: DriftFinding, change: FunctionChange | None, ctx: Ctx,
                     batch: Batch, _p: Pointers) -> None:
    assert change is not None and change.desired is not None and finding.version_id
    batch.version_restores.append(VersionRestore(version_id=finding.version_id,
                                                 content=change.desired.content))


def _restore_pointer(finding: DriftFinding, change: FunctionChange | None, ctx: Ctx,
                     batch: Batch, pointers: Pointers) -> None:
    assert change is not None and change.desired is not None
    stored = _stored(ctx, finding.name)
    if stored.id in pointers:  # a new version or a rollback already sets it
        return
    target = stored.version_named(change.desired.version)
    if target is not None:
        pointers[stored.id] = _pointer(stored.id, target.id, ctx)


def _covered(finding: DriftFinding, change: FunctionChange | None, ctx: Ctx, batch: Batch,
             _p: Pointers) -> None:
    """Metadata drift and a missing function are restored by the change itself."""


DriftHandler = Callable[[DriftFinding, FunctionChange | None, Ctx, Batch, Pointers], None]
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
