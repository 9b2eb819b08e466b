"""plan.diff is pure: values in, a Plan out. No database, no files, no mocks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aiops.fingerprint import content_hash
from aiops.plan import (
    EMPTY_STATE,
    DeployedState,
    Plan,
    StoredFunction,
    StoredVersion,
    desired_of,
    diff,
    path_diff,
)
from aiops.render_plan import exit_code, render_json, render_markdown, render_text
from aiops.spec import FunctionSpec
from tests.fixtures_db import make_spec

P = "proj"


def stored_version(spec: FunctionSpec, vid: str | None = None) -> StoredVersion:
    d = desired_of(spec)
    return StoredVersion(id=vid or f"v-{spec.name}-{spec.version}", version=spec.version,
                         behaviour_hash=d.behaviour_hash, content=d.content)


def stored(*history: FunctionSpec, current: int = -1, owner: str = P,
           **changes: Any) -> StoredFunction:
    """A function as apply leaves it after applying `history` in order (current: an index)."""
    last = history[current]
    d = desired_of(last)
    versions = tuple(stored_version(s) for s in history)
    fields: dict[str, Any] = dict(
        id=f"f-{last.name}", name=last.name, status=d.metadata["status"], metadata=d.metadata,
        metadata_hash=d.metadata_hash, current_version_id=versions[current].id,
        reconciled_version_id=versions[current].id, managed_by=owner, versions=versions)
    if changes.get("status") == "archived":  # as `apply --prune` writes it
        fields["metadata"] = {**d.metadata, "status": "archived"}
        fields["metadata_hash"] = content_hash(fields["metadata"])
    fields.update(changes)
    return StoredFunction(**fields)


def state(*functions: StoredFunction, managed: set[str] | None = None) -> DeployedState:
    return DeployedState(functions={f.name: f for f in functions},
                         managed=frozenset(managed if managed is not None
                                           else {f.name for f in functions}))


def by_name(plan: Plan) -> dict[str, Any]:
    return {c.name: c for c in plan.changes}


def test_everything_new_is_created() -> None:
    specs = {n: make_spec(n) for n in ("alpha", "beta")}
    plan = diff(specs, EMPTY_STATE, project=P)
    assert [c.action for c in plan.changes] == ["create", "create"]
    assert plan.verdict() == "Plan: 2 to create"
    assert plan.changes[0].desired is not None
    assert plan.changes[0].desired.content["input_schema"]["required"] == ["who"]


def test_applied_state_plans_no_changes() -> None:
    a, b = make_spec("alpha"), make_spec("beta")
    plan = diff({"alpha": a, "beta": b}, state(stored(a), stored(b)), project=P)
    assert plan.verdict() == "No changes."
    assert not plan.has_changes
    assert exit_code(plan, detailed=True) == 0
    assert "2 unchanged function(s) hidden." in render_text(plan)


def test_new_version_shows_prompt_and_schema_diffs() -> None:
    old = make_spec()
    new = make_spec(version="1.1.0",
                    prompt=[{"role": "system", "content": "You are terse."},
                            {"role": "user", "content": "Say hi to {{ who }}."}],
                    input_schema={"type": "object", "required": ["who"],
                                  "properties": {"who": {"type": "string", "maxLength": 50}},
                                  "additionalProperties": False})
    plan = diff({"greet": new}, state(stored(old)), project=P)
    change = plan.changes[0]
    assert change.action == "new_version"
    assert (change.from_version, change.to_version) == ("1.0.0", "1.1.0")
    assert plan.verdict() == "Plan: 1 new version"
    diffs = {d.field: d for d in change.diffs}
    assert set(diffs) == {"prompt", "input_schema"}
    assert "-    Say hello to {{ who }}." in diffs["prompt"].lines
    assert "+    Say hi to {{ who }}." in diffs["prompt"].lines
    assert diffs["input_schema"].lines == ("+ input_schema.properties.who.maxLength: 50",)
    assert exit_code(plan, detailed=True) == 2
    assert exit_code(plan, detailed=False) == 0


def test_same_version_other_content_is_refused() -> None:
    old = make_spec()
    changed = make_spec(model="mock-large")
    plan = diff({"greet": changed}, state(stored(old)), project=P)
    assert plan.errors == ("greet 1.0.0 is already applied with other content; "
                           "bump `version` (e.g. 1.0.1)",)
    assert plan.verdict() == "Plan failed: 1 error(s)."
    assert exit_code(plan, detailed=True) == 1
    assert plan.changes[0].conflict


def test_reverting_to_an_applied_version_is_a_rollback() -> None:
    v1 = make_spec()
    v2 = make_spec(version="1.1.0", model="mock-large")
    plan = diff({"greet": v1}, state(stored(v1, v2)), project=P)
    change = plan.changes[0]
    assert change.action == "rollback"
    assert change.target_version_id == "v-greet-1.0.0"
    assert "moves back from 1.1.0 to 1.0.0" in change.reason
    assert plan.verdict() == "Plan: 1 rollback"
    assert [d.field for d in change.diffs] == ["model"]


def test_metadata_only_change_updates_in_place() -> None:
    old = make_spec()
    new = make_spec(description="Greets people.", limits={"rpm": 10})
    change = diff({"greet": new}, state(stored(old)), project=P).changes[0]
    assert change.action == "update_metadata"
    assert change.metadata_changed
    lines = {line for d in change.diffs for line in d.lines}
    assert '~ description: "The greet function." -> "Greets people."' in lines
    assert "~ limits.rpm: null -> 10" in lines


def test_removed_file_is_archived_only_with_prune() -> None:
    a, b = make_spec("alpha"), make_spec("beta")
    deployed = state(stored(a), stored(b))
    keep = diff({"alpha": a}, deployed, project=P)
    assert not keep.has_changes
    assert keep.notes == ("beta: no file; `apply --prune` would archive it",)
    pruned = diff({"alpha": a}, deployed, project=P, prune=True)
    assert by_name(pruned)["beta"].action == "archive"
    assert pruned.verdict() == "Plan: 1 to archive"


def test_prune_guards() -> None:
    specs = [make_spec(f"fn-{i}") for i in range(4)]
    deployed = state(*(stored(s) for s in specs))
    nothing_loaded = diff({}, deployed, project=P, prune=True)
    assert "no function file was loaded" in nothing_loaded.errors[0]
    too_many = diff({"fn-0": specs[0]}, deployed, project=P, prune=True, max_prune=2)
    assert too_many.errors == ("refusing to archive 3 functions in one apply (more than "
                               "max_prune=2); raise --max-prune if this is intended",)
    failed = diff({"fn-0": specs[0]}, deployed, project=P, prune=True,
                  failed=frozenset({"fn-1", "fn-2", "fn-3"}))
    assert not failed.has_changes and not failed.errors
    assert all("failed to load" in n for n in failed.notes)


def test_prune_touches_only_this_projects_functions() -> None:
    a, other = make_spec("alpha"), make_spec("theirs")
    deployed = state(stored(a), stored(other, owner="someone-else"),
                     stored(make_spec("gone"), status="archived"))
    plan = diff({"alpha": a}, deployed, project=P, prune=True)
    assert not plan.has_changes and not plan.notes


def test_readded_archived_function_is_reactivated() -> None:
    a = make_spec()
    archived = stored(a, status="archived")
    change = diff({"greet": a}, state(archived), project=P).changes[0]
    assert change.action == "update_metadata"
    assert "re-activated" in change.reason


def test_a_function_of_another_project_is_refused_unless_adopted() -> None:
    a, v2 = make_spec(), make_spec(version="1.1.0", model="mock-large")
    theirs = state(stored(a, owner="their-repo"))
    plan = diff({"greet": v2}, theirs, project=P)
    (error,) = plan.errors
    assert error == ("greet belongs to project `their-repo`, not to this project (`proj`): it "
                     "is not taken over without --adopt (fix: rename the function here, or "
                     "`aiops apply --adopt` to make this project its owner)")
    change = plan.changes[0]
    assert (change.action, change.conflict, change.reason) == ("noop", True, error)
    assert exit_code(plan, detailed=True) == 1 and error in render_text(plan)
    adopted = diff({"greet": v2}, theirs, project=P, adopt=True)
    assert not adopted.errors and adopted.adopt
    change = adopted.changes[0]
    assert change.action == "new_version" and change.adopt and change.metadata_changed
    assert change.reason.endswith("; adopted from project `their-repo` (--adopt)")
    same = diff({"greet": a}, theirs, project=P, adopt=True).changes[0]
    assert same.action == "update_metadata"
    assert same.reason == "metadata adopted from project `their-repo` (--adopt) (no new version)"


def test_a_function_without_an_owner_is_adopted_without_asking() -> None:
    a = make_spec()
    change = diff({"greet": a}, state(stored(a, owner=None)), project=P).changes[0]
    assert change.action == "update_metadata" and change.adopt
    assert "adopted from no project" in change.reason


def test_a_former_id_of_the_project_is_its_own_and_records_the_new_one() -> None:
    a = make_spec()
    former = {"prompts": "the folder's name, the id earlier aiops releases derived"}
    legacy = state(stored(a, owner="prompts"), stored(make_spec("gone"), owner="prompts"))
    plan = diff({"greet": a}, legacy, project="prompts-k3v9q2", former=former, prune=True)
    assert not plan.errors
    change = plan.changes[0]
    assert change.action == "update_metadata" and change.adopt
    assert change.reason == ("metadata owner recorded as `prompts-k3v9q2` (was `prompts`: the "
                             "folder's name, the id earlier aiops releases derived) (no new "
                             "version)")
    # A former id's function without a file is not pruned: it may be a namesake's.
    assert [c.action for c in plan.changes] == ["update_metadata"]
    assert plan.notes == ("gone: no file; recorded under `prompts` (the folder's name, the id "
                          "earlier aiops releases derived), so --prune leaves it until an apply "
                          "of its file records this project's id on it",)
    # Without the former id, the same function is another project's.
    assert "belongs to project `prompts`" in diff({"greet": a}, legacy,
                                                  project="prompts-k3v9q2").errors[0]


def test_drift_edited_version_row_is_found_and_restorable() -> None:
    a = make_spec()
    f = stored(a)
    tampered = StoredVersion(**{**f.versions[0].__dict__,
                                "content": {**f.versions[0].content, "model": "evil"}})
    plan = diff({"greet": a}, state(stored(a, versions=(tampered,))), project=P)
    (finding,) = plan.drift
    assert finding.kind == "version_content" and finding.restorable
    assert plan.has_changes and plan.verdict() == "Plan: 1 drift to restore"
    assert "edited outside git" in render_text(plan)


def test_drift_edited_denormalised_column_is_found() -> None:
    a = make_spec()
    v = stored_version(a)
    edited = StoredVersion(**{**v.__dict__, "copies_intact": False})
    plan = diff({"greet": a}, state(stored(a, versions=(edited,))), project=P)
    assert [d.kind for d in plan.drift] == ["version_content"]


def test_drift_pointer_moved_outside_git() -> None:
    v1, v2 = make_spec(), make_spec(version="1.1.0", model="mock-large")
    f = stored(v1, v2)
    moved = stored(v1, v2, current_version_id=f.versions[0].id)  # someone set it back by SQL
    plan = diff({"greet": v2}, state(moved), project=P)
    assert [d.kind for d in plan.drift] == ["pointer"]
    assert plan.changes[0].action == "noop"
    assert plan.has_changes


def test_drift_metadata_row_edited() -> None:
    a = make_spec()
    f = stored(a)
    edited = stored(a, metadata={**f.metadata, "description": "hacked"})
    plan = diff({"greet": a}, state(edited), project=P)
    assert [d.kind for d in plan.drift] == ["metadata"]
    assert plan.changes[0].metadata_changed


def test_drift_managed_function_missing_from_database() -> None:
    plan = diff({"greet": make_spec()}, state(managed={"greet"}), project=P)
    assert [d.kind for d in plan.drift] == ["missing"]
    assert plan.changes[0].action == "create"


def test_breaking_changes_are_listed() -> None:
    old = make_spec(output_schema={"type": "object", "required": ["a"],
                                   "properties": {"a": {"type": "string"}}})
    new = make_spec(version="2.0.0", output_schema={"type": "object", "properties": {}})
    plan = diff({"greet": new}, state(stored(old)), project=P)
    assert plan.changes[0].breaking
    md = render_markdown(plan)
    assert md.index("Breaking changes") < md.index("<details>")


def test_plan_round_trips_through_json() -> None:
    v1, v2 = make_spec(), make_spec(version="1.1.0", model="mock-large")
    plan = diff({"greet": v2, "new": make_spec("new")}, state(stored(v1)), project=P,
                adopt=True)
    again = Plan.from_dict(json.loads(render_json(plan)))
    assert again == plan and again.adopt
    data = json.loads(render_json(plan))
    assert data["format_version"] == 1
    assert data["verdict"] == "Plan: 1 to create, 1 new version"
    assert data["state_token"] == state(stored(v1)).token


def test_saved_plan_of_another_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="format_version"):
        Plan.from_dict({"format_version": 99})


def test_state_token_changes_with_any_planned_fact() -> None:
    a = make_spec()
    base = state(stored(a))
    moved = state(stored(a, current_version_id=None))
    assert base.token == state(stored(a)).token
    assert base.token != moved.token


def test_text_render_puts_the_verdict_first_and_hides_unchanged() -> None:
    a, b = make_spec("alpha"), make_spec("beta")
    plan = diff({"alpha": a, "beta": make_spec("beta", version="1.0.1", model="mock-large")},
                state(stored(a), stored(b)), project=P)
    text = render_text(plan)
    assert text.splitlines()[0] == "Plan: 1 new version"
    assert "~ beta: new version 1.0.0 -> 1.0.1" in text
    assert "alpha" not in text
    assert '~ model: "mock-small" -> "mock-large"' in text


def test_markdown_is_bounded_and_collapsible() -> None:
    specs = {f"fn-{i:03d}": make_spec(f"fn-{i:03d}") for i in range(300)}
    md = render_markdown(diff(specs, EMPTY_STATE, project=P), limit=5000)
    assert md.startswith("### aiops plan: Plan: 300 to create")
    assert len(md) < 5600
    assert "more function(s) not shown" in md
    assert md.count("<details>") == md.count("</details>") > 0


def test_secret_looking_values_are_redacted_in_diffs() -> None:
    lines = path_diff({"api_key": "sk-old", "api_key_env": "A"},
                      {"api_key": "sk-new", "api_key_env": "B"}, "metadata")
    assert lines == ('~ metadata.api_key: (redacted) -> (redacted)',
                     '~ metadata.api_key_env: "A" -> "B"')


def test_plan_is_deterministic() -> None:
    specs = {"greet": make_spec(version="1.1.0", model="mock-large")}
    deployed = state(stored(make_spec()))
    assert diff(specs, deployed, project=P) == diff(specs, deployed, project=P)


def test_stored_version_intact_uses_the_content_hash() -> None:
    v = stored_version(make_spec())
    assert v.intact
    assert content_hash(v.content) == v.behaviour_hash


def test_ordinary_settings_are_not_mistaken_for_secrets() -> None:
    # `max_tokens` holds "token", `author` holds "auth": a reviewer must see their values.
    lines = path_diff({"max_tokens": 100, "author": "ann"}, {"max_tokens": 400, "author": "bo"},
                      "configuration")
    assert lines == ('~ configuration.author: "ann" -> "bo"',
                     "~ configuration.max_tokens: 100 -> 400")
    for key in ("client_secret", "apiKey", "auth_token", "Authorization", "password",
                "access-token", "credentials"):
        assert path_diff({key: "old"}, {key: "new"}, "m") == (
            f"~ m.{key}: (redacted) -> (redacted)",), key


def test_markdown_stays_bounded_with_many_errors_archives_and_drift() -> None:
    names = [f"function-with-a-long-name-{i:04d}" for i in range(3000)]
    plan = Plan(project=P, state_token="t", changes=(),
                errors=tuple(f"functions/{n}/function.yaml:3:1: error: bad" for n in names))
    md = render_markdown(plan, limit=5000)
    assert len(md) < 5600 and md.startswith("### aiops plan: Plan failed")
    assert "more" in md
    archived = diff({"keep": make_spec("keep")},
                    state(stored(make_spec("keep")), *(stored(make_spec(n)) for n in names)),
                    project=P, prune=True, max_prune=10_000)
    md = render_markdown(archived, limit=5000)
    assert len(md) < 5600 and "To archive" in md


def test_markdown_fences_survive_backticks_in_a_prompt() -> None:
    # Prompts often say "answer inside ```json fences": the diff must not close its own fence.
    old = make_spec()
    new = make_spec(version="1.1.0", prompt=[
        {"role": "system", "content": "Answer inside ```json fences."},
        {"role": "user", "content": "Say hello to {{ who }}."}])
    md = render_markdown(diff({"greet": new}, state(stored(old)), project=P))
    opening = next(line for line in md.splitlines() if line.endswith("diff"))
    fence = opening.removesuffix("diff")
    assert len(fence) >= 4 and set(fence) == {"`"}
    body = md.split(opening, 1)[1]
    assert any(line == fence for line in body.splitlines())
    assert "```json fences" in body.split("\n" + fence + "\n", 1)[0]


def test_markdown_errors_keep_their_backticks_and_angle_brackets() -> None:
    error = "greet 1.0.0 is already applied with other content; bump `version` (<1.0.1>)"
    md = render_markdown(Plan(project=P, state_token="t", changes=(), errors=(error,)))
    assert f"- `` {error} ``" in md.splitlines()


def test_a_readded_archived_function_says_it_is_reactivated_with_any_action() -> None:
    # Apply writes status active whatever the action: the reason a reviewer reads says so.
    a, b = make_spec(), make_spec(version="1.1.0", model="mock-large")
    rolled = diff({"greet": a}, state(stored(a, b, status="archived")), project=P).changes[0]
    assert rolled.action == "rollback" and rolled.metadata_changed
    assert "re-activated" in rolled.reason
    bumped = diff({"greet": b}, state(stored(a, status="archived")), project=P).changes[0]
    assert bumped.action == "new_version" and "re-activated" in bumped.reason


# --- the version rules of DESIGN §4 hold against what the database holds ----------------------

OUT_AB = {"type": "object", "required": ["a", "b"],
          "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}


def _validate_base_words(old: FunctionSpec, new: FunctionSpec) -> list[str]:
    """What `aiops validate --base` says of the same two versions (the message and its fix)."""
    from aiops.checks import compare_versions
    from aiops.loader import load_sources
    from tests.factories import dump

    data = {**new.model_dump(mode="json", by_alias=True, exclude_none=True)}
    project = load_sources({"functions/greet/function.yaml": dump(data)})
    return [f"error: version: {d.message} (fix: {d.fix})"
            for d in compare_versions(project.functions["greet"], old)]


def test_a_lower_version_with_new_content_is_refused_in_the_words_of_validate_base() -> None:
    v1, v2 = make_spec(), make_spec(version="1.1.0", model="mock-large")
    lower = make_spec(version="1.0.5", model="mock-other")
    plan = diff({"greet": lower}, state(stored(v1, v2)), project=P)
    (error,) = plan.errors
    assert error == ("functions/greet/function.yaml: error: version: version goes down from "
                     "1.1.0 to 1.0.5 without matching that version's earlier content (fix: to "
                     "roll back, restore 1.0.5's content exactly (git revert); otherwise set a "
                     "version above 1.1.0)")
    assert [error.split(": ", 1)[1]] == _validate_base_words(v2, lower)
    assert plan.changes[0].conflict and exit_code(plan, detailed=True) == 1


def test_a_breaking_change_under_a_minor_bump_is_refused_listing_every_item() -> None:
    v1 = make_spec(output_schema=OUT_AB)
    v2 = make_spec(version="1.1.0", output_schema={"type": "object", "required": ["a"],
                                                   "properties": {"a": {"type": "integer"}}})
    plan = diff({"greet": v2}, state(stored(v1)), project=P)
    (error,) = plan.errors
    assert ("breaking change without a major version bump (1.0.0 -> 1.1.0): output.b: output "
            "property removed; output.a: type changed from string to integer") in error
    assert "(fix: set `version: 2.0.0`, or keep callers working)" in error
    assert [error.split(": ", 1)[1]] == _validate_base_words(v1, v2)
    assert plan.verdict() == "Plan failed: 1 error(s)."
    assert "Plan failed" in render_text(plan) and error in render_text(plan)
    # The same change under a major bump is allowed; its breaking items are still shown.
    major = make_spec(version="2.0.0", output_schema=v2.output_schema)
    plan = diff({"greet": major}, state(stored(v1)), project=P)
    assert not plan.errors and plan.changes[0].action == "new_version"
    assert len(plan.changes[0].breaking) == 2


def test_rules_compare_with_the_current_version_and_allow_a_rollback() -> None:
    v1 = make_spec(output_schema=OUT_AB)
    v2 = make_spec(version="2.0.0", output_schema={"type": "object", "properties": {}})
    # Rolled back to 1.0.0: 1.1.0 is compared with 1.0.0 (what callers get), not 2.0.0.
    rolled_back = stored(v1, v2, current=0)
    ok = make_spec(version="1.1.0", output_schema=OUT_AB, model="mock-large")
    assert not diff({"greet": ok}, state(rolled_back), project=P).errors
    # A revert to a version the database holds with the same content is a rollback.
    plan = diff({"greet": v1}, state(stored(v1, v2)), project=P)
    assert not plan.errors and plan.changes[0].action == "rollback"


def test_an_unchecked_schema_change_is_a_note_not_an_error() -> None:
    v1 = make_spec(output_schema={"type": "object", "anyOf": [{"required": ["a"]}]})
    v2 = make_spec(version="1.1.0", output_schema={"type": "object", "anyOf": [{}]})
    plan = diff({"greet": v2}, state(stored(v1)), project=P)
    assert not plan.errors
    (note,) = plan.notes
    assert note.startswith("functions/greet/function.yaml: warning: version: schema changes "
                           "aiops does not compare")


def test_without_a_current_pointer_the_highest_applied_version_is_the_base() -> None:
    v1, v2 = make_spec(), make_spec(version="1.2.0", model="mock-large")
    cleared = stored(v1, v2, current_version_id=None, reconciled_version_id=None)
    lower = make_spec(version="1.1.0", model="mock-other")
    (error,) = diff({"greet": lower}, state(cleared), project=P).errors
    assert "version goes down from 1.2.0 to 1.1.0" in error
    no_versions = stored(v1, current_version_id=None, reconciled_version_id=None, versions=())
    plan = diff({"greet": lower}, state(no_versions), project=P)
    assert not plan.errors and plan.changes[0].action == "new_version"


def test_content_that_cannot_be_compared_passes_only_a_major_bump() -> None:
    v1 = make_spec()
    f = stored(v1)
    held = StoredVersion(**{**f.versions[0].__dict__,
                            "content": {k: v for k, v in f.versions[0].content.items()
                                        if k != "output_schema"}})
    broken = stored(v1, versions=(held,))
    minor = make_spec(version="1.1.0", model="mock-large")
    (error,) = diff({"greet": minor}, state(broken), project=P).errors
    assert ("cannot check 1.0.0 -> 1.1.0 for breaking changes: the content held for 1.0.0 has "
            "no output_schema object to compare with (fix: set `version: 2.0.0`") in error
    major = make_spec(version="2.0.0", model="mock-large")
    assert not diff({"greet": major}, state(broken), project=P).errors
    odd = stored(v1, versions=(StoredVersion(**{**f.versions[0].__dict__, "version": "v1"}),))
    (error,) = diff({"greet": minor}, state(odd), project=P).errors
    assert '"v1", is not a semantic version' in error
