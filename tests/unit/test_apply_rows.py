"""apply.build_batch turns a plan into typed rows (aiops.records), with no database: what
the store's writer then sends as bulk statements."""

from __future__ import annotations

from datetime import UTC, datetime

from aiops.apply import Ctx, build_batch
from aiops.plan import EMPTY_STATE, DeployedState, diff
from aiops.records import Archive, FunctionUpdate, Managed, NewFunction, NewVersion, PointerUpdate
from tests.fixtures_db import make_spec
from tests.unit.test_plan import P, state, stored

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def ctx(deployed: DeployedState) -> Ctx:
    return Ctx(state=deployed, project=P, user_id="u-1", git_commit="abc123", now=NOW)


def test_a_new_function_is_a_version_and_a_function_pointing_at_it() -> None:
    spec = make_spec("greet")
    batch = build_batch(diff({"greet": spec}, EMPTY_STATE, project=P), ctx(EMPTY_STATE))
    [version] = batch.new_versions
    [function] = batch.new_functions
    assert isinstance(version, NewVersion) and isinstance(function, NewFunction)
    assert (function.id, function.version_id) == (version.function_id, version.id)
    assert (version.version, version.created_by, version.git_commit) == ("1.0.0", "u-1", "abc123")
    assert version.content["prompt"] == spec.model_dump(mode="json")["prompt"]
    assert (function.name, function.managed_by, function.columns.status) == ("greet", P, "active")
    assert batch.managed == [Managed(project=P, name="greet", first_applied_at=NOW)]
    assert batch.function_updates == batch.pointer_updates == batch.archives == []


def test_a_new_version_with_new_metadata_moves_the_pointer_and_updates_the_function() -> None:
    v1 = make_spec("greet")
    v2 = make_spec("greet", version="1.1.0", model="mock-large", description="Louder.")
    deployed = state(stored(v1))
    batch = build_batch(diff({"greet": v2}, deployed, project=P), ctx(deployed))
    [version] = batch.new_versions
    # ids are the deployed state's own, passed through: only the store makes UUIDs of them
    assert version.function_id == "f-greet"
    assert batch.pointer_updates == [PointerUpdate(function_id="f-greet", version_id=version.id,
                                                   applied_commit="abc123", now=NOW,
                                                   updated_by="u-1")]
    [update] = batch.function_updates
    assert isinstance(update, FunctionUpdate) and update.columns.description == "Louder."
    assert update.updated_by == "u-1"
    assert batch.new_functions == []


def test_a_pruned_function_is_archived_with_the_hash_of_its_archived_row() -> None:
    deployed = state(stored(make_spec("greet")))
    plan = diff({}, deployed, project=P, prune=True)
    batch = build_batch(plan, ctx(deployed))
    [archive] = batch.archives
    assert archive == Archive(function_id="f-greet",
                              metadata_hash=deployed.functions["greet"].archived_metadata_hash,
                              applied_commit="abc123", now=NOW, updated_by="u-1")
