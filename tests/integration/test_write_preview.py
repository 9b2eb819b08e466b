"""The preview of a write (aiops.commands.writes.preview_function), what the web UI's editor
shows as its author types: the write's own checks with lines and columns, the version rules
against HEAD's file, the plan against the database, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiops import commands
from aiops.access import Caller, Role
from aiops.commands import writes
from aiops.errors import ConflictError, NotFoundError, PermissionDenied
from aiops.store import open_store
from tests.fixtures_db import current_versions, snapshot, spec_data, write_function
from tests.integration.test_writes import FILE, git, head, repo, ws_of

__all__ = ["repo"]  # the fixture, shared with test_writes


def caller(role: Role, groups: tuple[str, ...]) -> Caller:
    return Caller(token_id="t", key_id="k", token_name="tok", user_id="u", role=role,
                  groups=groups)


def greet_text(root: Path) -> str:
    return (root / FILE.format("greet")).read_text(encoding="utf-8")


def preview(root: Path, name: str | None, text: str, db_url: str | None = None,
            caller: Caller | None = None) -> writes.WritePreview:
    store = open_store(db_url) if db_url is not None else None
    return writes.preview_function(ws_of(root), name, text, caller=caller, store=store)


def test_a_yaml_error_is_at_its_line_and_column(repo: Path) -> None:
    text = greet_text(repo).replace("model: mock-small", "model: [mock-small")
    found = preview(repo, "greet", text)
    assert not found.ok and found.change is None
    [error] = [d for d in found.diagnostics if d.is_error]
    assert error.line is not None and error.line >= 6 and error.column is not None


def test_a_schema_error_is_at_the_line_of_its_key(repo: Path) -> None:
    text = greet_text(repo).replace("      type: string\n", "      type: strin\n")
    line = text.splitlines().index("      type: strin") + 1
    found = preview(repo, "greet", text)
    assert not found.ok
    [error] = [d for d in found.diagnostics if d.code == "schema-invalid"]
    assert (error.line, error.pointer) == (line, "/input_schema/properties/who/type")


def test_a_behaviour_change_must_bump_the_version(repo: Path, db_url: str) -> None:
    text = greet_text(repo).replace("You are terse.", "You are brief.")
    found = preview(repo, "greet", text, db_url)
    assert not found.ok
    assert found.behaviour_changed and not found.version_bumped and found.breaking == ()
    assert [d.code for d in found.diagnostics if d.is_error] == ["version-not-bumped"]
    assert found.diagnostics[0].line == 3  # at `version:`
    bumped = preview(repo, "greet", text.replace("version: 1.0.0", "version: 1.0.1"), db_url)
    assert bumped.ok and bumped.version_bumped and bumped.base_version == "1.0.0"
    assert bumped.change is not None and bumped.change.action == "new_version"
    assert (bumped.change.from_version, bumped.change.to_version) == ("1.0.0", "1.0.1")
    assert any(d.field == "prompt" for d in bumped.change.diffs)


def test_a_breaking_change_needs_a_major_bump(repo: Path, db_url: str) -> None:
    text = greet_text(repo).replace(
        "  - who\n", "  - who\n  - mood\n").replace(
        "    who:\n      type: string\n",
        "    who:\n      type: string\n    mood:\n      type: string\n").replace(
        "Say hello to {{ who }}.", "Say hello to {{ who }}, {{ mood }}.")
    minor = preview(repo, "greet", text.replace("version: 1.0.0", "version: 1.1.0"), db_url)
    assert not minor.ok and minor.breaking and not minor.major_bumped
    assert "mood" in minor.breaking[0]
    assert [d.code for d in minor.diagnostics if d.is_error] == ["breaking-change"]
    major = preview(repo, "greet", text.replace("version: 1.0.0", "version: 2.0.0"), db_url)
    assert major.ok and major.breaking and major.major_bumped
    assert major.change is not None and major.change.to_version == "2.0.0"


def test_previews_write_nothing(repo: Path, db_url: str) -> None:
    before_db, before_head = snapshot(db_url), head(repo)
    text = greet_text(repo).replace("You are terse.", "Be kind.").replace(
        "version: 1.0.0", "version: 1.0.1")
    assert preview(repo, "greet", text, db_url).ok
    assert preview(repo, None, text.replace("name: greet", "name: hello"), db_url).ok
    assert snapshot(db_url) == before_db and head(repo) == before_head
    assert git(repo, "status", "--porcelain") == ""
    assert current_versions(db_url)["greet"] == ("active", "1.0.0")


def test_a_new_function_previews_as_a_create(repo: Path, db_url: str) -> None:
    text = greet_text(repo).replace("name: greet", "name: hello")
    found = preview(repo, None, text, db_url)
    assert found.ok and found.name == "hello" and found.action == "create"
    assert found.base_version is None and found.change is not None
    assert found.change.action == "create" and found.change.to_version == "1.0.0"
    nameless = preview(repo, None, text.replace("name: hello\n", ""))
    assert not nameless.ok and nameless.name is None and nameless.diagnostics


def test_the_write_refusals_are_the_previews(repo: Path) -> None:
    text = greet_text(repo)
    with pytest.raises(ConflictError):
        preview(repo, None, text)
    with pytest.raises(NotFoundError):
        preview(repo, "hello", text.replace("name: greet", "name: hello"))
    renamed = preview(repo, "greet", text.replace("name: greet", "name: hallo"))
    assert not renamed.ok and renamed.diagnostics[0].code == "name-mismatch"


def test_a_caller_off_the_edit_list_is_refused(repo: Path) -> None:
    access = {"view": ["everyone"], "invoke": ["everyone"], "edit": ["admins"]}
    write_function(repo, spec_data("greet", access=access))
    git(repo, "commit", "-qam", "Only admins edit greet")
    text = greet_text(repo)
    editor = caller("editor", ())
    with pytest.raises(PermissionDenied):
        preview(repo, "greet", text, caller=editor)
    admin_group = caller("editor", ("admins",))
    assert preview(repo, "greet", text, caller=admin_group).ok


def test_errors_in_other_files_are_told_apart(repo: Path) -> None:
    (repo / "providers.yaml").write_text("providers: [\n", encoding="utf-8")
    git(repo, "commit", "-qam", "Break providers.yaml")
    found = preview(repo, "greet", greet_text(repo))
    assert not found.ok and found.elsewhere
    assert all(d.file == "providers.yaml" for d in found.elsewhere)


def test_the_verb_is_exported() -> None:
    assert commands.preview_function is writes.preview_function


def test_the_preview_reads_its_functions_part_of_the_state(repo: Path, db_url: str) -> None:
    store = open_store(db_url)
    whole = store.read_state("test-project")
    part = store.read_state("test-project", frozenset({"greet"}))
    assert part.functions == whole.functions and part.managed == whole.managed == {"greet"}
    none = store.read_state("test-project", frozenset({"other"}))
    assert none.functions == {} and none.managed == frozenset()
