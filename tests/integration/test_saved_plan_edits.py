"""A saved plan edited by hand is refused on apply, on real SQLite and PostgreSQL: its content
is validated as the loader would, its hashes recomputed, and what it would write checked
against what that content and the database call for. The error names the function and
what does not match; exit 1; nothing is written."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aiops.cli import cli
from aiops.fingerprint import content_hash
from tests.fixtures_db import apply_project, plan_project, snapshot, spec_data, write_project

Edit = Callable[[dict[str, Any]], None]


def change(plan: dict[str, Any], name: str = "greet") -> dict[str, Any]:
    return next(c for c in plan["changes"] if c["name"] == name)


def rehash(c: dict[str, Any]) -> None:
    """What a person who knows the format does after an edit: recompute both hashes."""
    c["desired"]["behaviour_hash"] = content_hash(c["desired"]["content"])
    c["desired"]["metadata_hash"] = content_hash(c["desired"]["metadata"])


def model_edited(plan: dict[str, Any]) -> None:
    change(plan)["desired"]["content"]["model"] = "mock-large"


def description_edited(plan: dict[str, Any]) -> None:
    change(plan)["desired"]["metadata"]["description"] = "Edited."


def invalid_schema_rehashed(plan: dict[str, Any]) -> None:
    c = change(plan)
    c["desired"]["content"]["input_schema"]["properties"]["who"]["type"] = "strnig"
    rehash(c)


def unknown_filter_rehashed(plan: dict[str, Any]) -> None:
    c = change(plan)
    c["desired"]["content"]["prompt"][0]["content"] = "Hi {{ who | shout }}"
    rehash(c)


def unknown_key_rehashed(plan: dict[str, Any]) -> None:
    c = change(plan)
    c["desired"]["content"]["retry"]["max_attempts_"] = 3
    rehash(c)


def default_removed_rehashed(plan: dict[str, Any]) -> None:
    c = change(plan)
    del c["desired"]["content"]["retry"]["max_attempts"]
    rehash(c)


def unknown_provider_rehashed(plan: dict[str, Any]) -> None:
    c = change(plan)
    c["desired"]["content"]["provider"] = "nowhere"
    rehash(c)


def pointer_at_another_function(plan: dict[str, Any]) -> None:
    """A rollback aimed at a version row of another function (its id, from the drift-free
    state summary's database): apply would point greet at it."""
    c = change(plan)
    c["action"], c["target_version_id"] = "rollback", plan["_other_version_id"]


def version_lowered_rehashed(plan: dict[str, Any]) -> None:
    """A version below the deployed one, with new content: the version rules refuse it."""
    c = change(plan)
    c["to_version"] = c["desired"]["version"] = "0.9.0"
    c["desired"]["content"]["model"] = "mock-large"
    rehash(c)


def content_dropped(plan: dict[str, Any]) -> None:
    change(plan)["desired"] = None


EDITS: list[tuple[Edit, str]] = [
    (model_edited, "greet: the behaviour hash does not match its content"),
    (description_edited, "greet: the metadata hash does not match its metadata"),
    (invalid_schema_rehashed, "greet: its content does not validate: "
                              "input_schema.properties.who.type: not a valid JSON Schema"),
    (unknown_filter_rehashed, "greet: its content does not validate: prompt[0].content: "
                              "unknown filter `shout`"),
    (unknown_key_rehashed, "greet: its content does not validate: retry.max_attempts_: "
                           "unknown key `max_attempts_`"),
    (default_removed_rehashed, "greet: its content is not what the loader makes of it"),
    (unknown_provider_rehashed, "greet: its content does not validate: provider: "
                                "provider `nowhere` is not in providers.yaml"),
    (pointer_at_another_function, 'greet: action is "rollback" in the plan, but its content '
                                  'and the database make it "new_version"'),
    (version_lowered_rehashed, "greet: the plan writes it, but its content and the database "
                               "refuse it: functions/greet/function.yaml: error: version: "
                               "version goes down from 1.0.0 to 0.9.0"),
    (content_dropped, "greet: a new_version without its content"),
]


def other_version_id(db_url: str) -> str:
    from sqlalchemy import select

    from aiops.store import open_store
    from aiops.store.tables import F

    with open_store(db_url).engine.connect() as conn:
        return str(conn.execute(select(F.c.current_version_id).where(F.c.name == "other"))
                   .scalar_one())


@pytest.fixture
def saved(project: Path, db_url: str) -> Path:
    """greet 1.0.0 and other applied; greet 1.1.0 planned and saved to plan.json."""
    write_project(project, [spec_data(), spec_data("other")])
    apply_project(project, actor="ci")
    write_project(project, [spec_data(version="1.1.0", description="New."), spec_data("other")])
    out = project / "plan.json"
    result = CliRunner().invoke(cli, ["plan", "-C", str(project), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize(("edit", "message"), EDITS, ids=[e.__name__ for e, _ in EDITS])
def test_an_edited_saved_plan_is_refused_and_nothing_is_written(
        project: Path, db_url: str, saved: Path, edit: Edit, message: str) -> None:
    plan = json.loads(saved.read_text(encoding="utf-8"))
    plan["_other_version_id"] = other_version_id(db_url)
    edit(plan)
    del plan["_other_version_id"]
    saved.write_text(json.dumps(plan), encoding="utf-8")
    before = snapshot(db_url)
    result = CliRunner().invoke(cli, ["apply", str(saved), "-C", str(project)])
    assert result.exit_code == 1, result.output
    assert "this plan was changed after `aiops plan -o` saved it; nothing was written" in (
        result.stderr)
    assert message in result.stderr, result.stderr
    assert "internal error" not in result.stderr
    assert snapshot(db_url) == before


def test_the_saved_plan_as_written_applies(project: Path, db_url: str, saved: Path) -> None:
    result = CliRunner().invoke(cli, ["apply", str(saved), "-C", str(project)])
    assert result.exit_code == 0, result.output
    assert plan_project(project).verdict() == "No changes."


def test_a_saved_prune_and_drift_restore_apply(project: Path, db_url: str) -> None:
    """Archives and drift restores carry no edit to refuse: a plain saved plan with both."""
    from sqlalchemy import update

    from aiops.store import open_store
    from aiops.store.tables import F

    write_project(project, [spec_data(), spec_data("other")])
    apply_project(project, actor="ci")
    with open_store(db_url).engine.begin() as conn:
        conn.execute(update(F).where(F.c.name == "greet").values(description="hacked"))
    write_project(project, [spec_data()])
    out = project / "plan.json"
    result = CliRunner().invoke(cli, ["plan", "-C", str(project), "--prune", "-o", str(out)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["apply", str(out), "-C", str(project)])
    assert result.exit_code == 0, result.output
    assert plan_project(project, prune=True).verdict() == "No changes."
