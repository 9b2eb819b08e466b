"""Drift says what actually changed, on real SQLite and PostgreSQL, in the plan's three views
(text, --json, markdown): a function archived by hand is not "re-activated: its file is
back", and a current-version pointer moved back with SQL is not a rollback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import select, update

from aiops import commands
from aiops.cli import cli
from aiops.store import open_store
from aiops.store.tables import F, V
from tests.fixtures_db import (
    apply_project,
    current_versions,
    plan_project,
    spec_data,
    write_project,
)


def apply(project: Path, **kw: Any) -> commands.ApplyResult:
    return apply_project(project, actor="Tess <tess@example.org>", **kw)


def views(project: Path) -> tuple[str, dict[str, Any], str]:
    """The plan as text, as JSON and as markdown, through the CLI."""
    def plan(*args: str) -> str:
        result = CliRunner().invoke(cli, ["plan", "-C", str(project), *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    return plan(), json.loads(plan("--json")), plan("--format", "markdown")


def sql(db_url: str, statement: Any) -> None:
    with open_store(db_url).engine.begin() as conn:
        conn.execute(statement)


def two_versions(project: Path) -> None:
    """greet 1.1.0 then 1.2.0 applied (the pointer at 1.2.0), and an unrelated function."""
    write_project(project, [spec_data(version="1.1.0"), spec_data("other")])
    apply(project)
    write_project(project, [spec_data(version="1.2.0", model="mock-large"), spec_data("other")])
    apply(project)


def version_id(db_url: str, version: str) -> Any:
    with open_store(db_url).engine.connect() as conn:
        return conn.execute(select(V.c.id).where(V.c.version == version).where(
            V.c.function_id == select(F.c.id).where(F.c.name == "greet").scalar_subquery())
        ).scalar_one()


def assert_said_everywhere(project: Path, message: str, *, kind: str, not_said: str) -> None:
    text, data, markdown = views(project)
    assert f"! greet: {message}" in text, text
    assert [(d["name"], d["kind"], d["message"]) for d in data["drift"]] == [
        ("greet", kind, message)]
    assert f"- **greet**: {message}" in markdown, markdown
    for view in (text, json.dumps(data["changes"]), markdown):  # (counts name every action)
        assert not_said not in view


def test_a_function_archived_by_hand_is_drift_not_a_reactivation(project: Path,
                                                                 db_url: str) -> None:
    two_versions(project)
    sql(db_url, update(F).where(F.c.name == "greet").values(status="archived"))
    assert_said_everywhere(
        project, "archived in the database, not by aiops: apply restores it as active",
        kind="metadata", not_said="its file is back")
    _, data, _ = views(project)
    (change,) = [c for c in data["changes"] if c["name"] == "greet"]
    assert change["reason"] == "metadata restored: archived outside aiops (no new version)"
    apply(project)
    assert current_versions(db_url)["greet"] == ("active", "1.2.0")
    assert plan_project(project).verdict() == "No changes."


def test_a_function_archived_by_prune_and_readded_is_reactivated(project: Path,
                                                                 db_url: str) -> None:
    two_versions(project)
    write_project(project, [spec_data("other")])
    apply(project, prune=True)
    assert current_versions(db_url)["greet"] == ("archived", "1.2.0")
    assert plan_project(project).drift == ()  # archived by aiops: no drift
    write_project(project, [spec_data(version="1.2.0", model="mock-large"), spec_data("other")])
    text, data, _ = views(project)
    assert data["drift"] == [] and "re-activated: its file is back" in text
    apply(project)
    assert current_versions(db_url)["greet"] == ("active", "1.2.0")


def test_a_pruned_function_unarchived_by_hand_is_drift(project: Path, db_url: str) -> None:
    two_versions(project)
    write_project(project, [spec_data("other")])
    apply(project, prune=True)
    sql(db_url, update(F).where(F.c.name == "greet").values(status="active"))
    (finding,) = plan_project(project).drift
    assert finding.message == ("re-activated in the database, not by aiops (its file is gone): "
                               "`apply --prune` archives it again")
    assert not finding.restorable
    apply(project, prune=True)
    assert current_versions(db_url)["greet"] == ("archived", "1.2.0")


def test_a_pointer_moved_back_by_sql_is_drift_not_a_rollback(project: Path,
                                                             db_url: str) -> None:
    two_versions(project)
    sql(db_url, update(F).where(F.c.name == "greet").values(
        current_version_id=version_id(db_url, "1.1.0")))
    message = "current version moved from 1.2.0 to 1.1.0 outside aiops: apply moves it back"
    assert_said_everywhere(project, message, kind="pointer", not_said="rollback")
    apply(project)
    assert current_versions(db_url)["greet"] == ("active", "1.2.0")
    assert plan_project(project).verdict() == "No changes."


def test_both_pointers_moved_back_by_sql_is_drift_not_a_rollback(project: Path,
                                                                 db_url: str) -> None:
    """Whoever moves `reconciled_version_id` too leaves the time of the last apply, which
    created 1.2.0, behind: the move is still told apart from a rollback."""
    two_versions(project)
    old = version_id(db_url, "1.1.0")
    sql(db_url, update(F).where(F.c.name == "greet").values(current_version_id=old,
                                                             reconciled_version_id=old))
    message = "current version moved from 1.2.0 to 1.1.0 outside aiops: apply moves it back"
    assert_said_everywhere(project, message, kind="pointer", not_said="rollback")
    apply(project)
    assert current_versions(db_url)["greet"] == ("active", "1.2.0")
    assert plan_project(project).verdict() == "No changes."


def test_a_pointer_moved_and_a_new_version_in_git(project: Path, db_url: str) -> None:
    two_versions(project)
    sql(db_url, update(F).where(F.c.name == "greet").values(
        current_version_id=version_id(db_url, "1.1.0")))
    write_project(project, [spec_data(version="1.3.0", model="mock-small"), spec_data("other")])
    (finding,) = plan_project(project).drift
    assert finding.message == ("current version moved from 1.2.0 to 1.1.0 outside aiops: "
                               "git says 1.3.0: apply moves it there")


def test_git_rollbacks_back_and_forth_are_rollbacks_without_drift(project: Path,
                                                                  db_url: str) -> None:
    two_versions(project)
    write_project(project, [spec_data(version="1.1.0"), spec_data("other")])  # git revert
    text, data, _ = views(project)
    assert data["drift"] == [] and "< greet: rollback 1.2.0 -> 1.1.0" in text
    apply(project)
    write_project(project, [spec_data(version="1.2.0", model="mock-large"), spec_data("other")])
    plan = plan_project(project)
    assert plan.drift == () and [c.action for c in plan.changes] == ["rollback", "noop"]
    apply(project)
    assert current_versions(db_url)["greet"] == ("active", "1.2.0")
