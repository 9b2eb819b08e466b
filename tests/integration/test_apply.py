"""apply against real SQLite and PostgreSQL: idempotence, immutability, rollback, prune, drift,
stale plans, the lock, and a property test over random edit sequences."""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from aiops import commands
from aiops.cli import cli
from aiops.commands.reconcile import git_revision
from aiops.errors import AiopsError, LockBusy, SpecError, StalePlanError
from aiops.store import open_store
from aiops.store.tables import F, M, R, U, V
from tests.fixtures_db import (
    apply_project,
    count,
    current_versions,
    holding,
    plan_project,
    snapshot,
    spec_data,
    write_function,
    write_project,
)


def apply(project: Path, **kw: Any) -> commands.ApplyResult:
    return apply_project(project, actor=kw.pop("actor", "Tess <tess@example.org>"),
                                   **kw)


def test_apply_then_plan_is_no_changes_and_second_apply_writes_nothing(
        project: Path, db_url: str) -> None:
    write_project(project, [spec_data("alpha"), spec_data("beta")])
    first = apply(project)
    assert first.wrote and first.plan.verdict() == "Plan: 2 to create"
    assert plan_project(project).verdict() == "No changes."
    before = snapshot(db_url)
    second = apply(project)
    assert not second.wrote and second.run_id is None
    assert snapshot(db_url) == before


def test_run_is_recorded_with_actor_counts_and_duration(project: Path, db_url: str) -> None:
    write_project(project, [spec_data()])
    apply(project)
    with open_store(db_url).engine.connect() as conn:
        run = conn.execute(select(R)).one()
        user = conn.execute(select(U)).one()
    assert run.actor == "Tess <tess@example.org>"
    assert run.counts["create"] == 1 and run.status == "applied"
    assert run.duration_ms >= 0 and run.project == "test-project"
    assert run.changes == [{"name": "greet", "action": "create", "from": None, "to": "1.0.0"}]
    assert (user.name, user.email) == ("Tess", "tess@example.org")
    assert run.user_id == user.id


def test_new_version_and_metadata_update(project: Path, db_url: str) -> None:
    write_project(project, [spec_data()])
    apply(project)
    write_project(project, [spec_data(description="Now friendlier.")])
    result = apply(project)
    assert result.plan.verdict() == "Plan: 1 metadata update"
    assert count(db_url, V) == 1
    write_project(project, [spec_data(version="1.1.0", model="mock-large")])
    assert apply(project).plan.verdict() == "Plan: 1 new version"
    assert current_versions(db_url) == {"greet": ("active", "1.1.0")}
    assert count(db_url, V) == 2


def test_immutability_refuses_other_content_under_an_applied_version(
        project: Path, db_url: str) -> None:
    write_project(project, [spec_data()])
    apply(project)
    before = snapshot(db_url)
    write_project(project, [spec_data(model="mock-large")])
    with pytest.raises(AiopsError, match=r"greet 1\.0\.0 is already applied with other content; "
                                         r"bump `version`"):
        apply(project)
    assert snapshot(db_url) == before


def test_rollback_moves_the_pointer_and_writes_no_version(project: Path, db_url: str) -> None:
    v1 = spec_data()
    write_project(project, [v1])
    apply(project)
    write_project(project, [spec_data(version="1.1.0", model="mock-large")])
    apply(project)
    write_project(project, [v1])  # git revert
    result = apply(project)
    assert result.plan.verdict() == "Plan: 1 rollback"
    assert count(db_url, V) == 2
    assert current_versions(db_url) == {"greet": ("active", "1.0.0")}
    assert plan_project(project).verdict() == "No changes."


OUT_AB = {"type": "object", "required": ["a", "b"],
          "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}


def test_version_rules_hold_against_the_database(project: Path, db_url: str) -> None:
    """DESIGN §4 at plan and apply: a lower version with new content and a breaking change
    under a minor bump are refused, nothing written; a rollback and a major bump pass."""
    v1 = spec_data(output_schema=OUT_AB)
    write_project(project, [v1])
    apply(project)
    write_project(project, [spec_data(version="1.1.0", output_schema=OUT_AB, model="mock-large")])
    apply(project)
    before = snapshot(db_url)
    write_project(project, [spec_data(version="1.0.5", output_schema=OUT_AB, model="x")])
    down = ("version goes down from 1.1.0 to 1.0.5 without matching that version's earlier "
            "content")
    assert down in plan_project(project).errors[0]
    with pytest.raises(AiopsError, match=down):
        apply(project)
    breaking = spec_data(version="1.2.0", output_schema={
        "type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}})
    write_project(project, [breaking])
    items = ("breaking change without a major version bump (1.1.0 -> 1.2.0): output.b: output "
             "property removed; output.a: type changed from string to integer")
    assert items in plan_project(project).errors[0]
    with pytest.raises(AiopsError, match=re.escape(items)):
        apply(project)
    assert snapshot(db_url) == before
    write_project(project, [v1])  # a rollback to content the database holds
    assert apply(project).plan.verdict() == "Plan: 1 rollback"
    write_project(project, [{**breaking, "version": "2.0.0"}])
    assert apply(project).plan.verdict() == "Plan: 1 new version"
    assert current_versions(db_url) == {"greet": ("active", "2.0.0")}


def test_deployed_content_that_cannot_be_compared_passes_only_a_major_bump(
        project: Path, db_url: str) -> None:
    write_project(project, [spec_data()])
    apply(project)
    with open_store(db_url).engine.begin() as conn:  # a row edited outside aiops
        content = conn.execute(select(V.c.content)).scalar_one()
        conn.execute(update(V).values(content={k: v for k, v in content.items()
                                               if k != "output_schema"}))
    before = snapshot(db_url)
    write_project(project, [spec_data(version="1.1.0", model="mock-large")])
    with pytest.raises(AiopsError, match=re.escape(
            "cannot check 1.0.0 -> 1.1.0 for breaking changes: the content held for 1.0.0 has "
            "no output_schema")):
        apply(project)
    assert snapshot(db_url) == before
    write_project(project, [spec_data(version="2.0.0", model="mock-large")])
    assert apply(project).plan.verdict() == "Plan: 1 new version"


def _git(root: Path, *args: str) -> str:
    from tests.e2e.helpers import git

    return git(root, *args).strip()


def _recorded_commits(db_url: str) -> set[Any]:
    """Every commit the database recorded: runs, versions, functions."""
    with open_store(db_url).engine.connect() as conn:
        return {*conn.execute(select(R.c.git_commit)).scalars(),
                *conn.execute(select(V.c.git_commit)).scalars(),
                *conn.execute(select(F.c.applied_commit)).scalars()}


def test_uncommitted_changes_are_recorded_as_a_dirty_commit(project: Path, db_url: str) -> None:
    # The project is a folder of a repository: paths are the project's, the prefix stripped.
    repo = project.parent
    _git(repo, "init", "-q", "-b", "main")
    write_project(project, [spec_data()])
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "one")
    sha = _git(repo, "rev-parse", "HEAD")
    clean = apply(project)
    assert (clean.git_commit, clean.uncommitted, clean.dirty_warning) == (sha, (), None)
    assert _recorded_commits(db_url) == {sha}
    cassette = project / "functions" / "greet" / "cassettes" / "mock" / "t.yaml"
    cassette.parent.mkdir(parents=True)
    cassette.write_text("interactions: []\n")  # not read by apply: the tree stays clean
    write_function(project, spec_data(version="1.1.0", model="mock-large"))
    write_function(project, spec_data("fresh"))  # untracked
    dirty = apply(project)
    assert dirty.git_commit == f"{sha}-dirty"
    assert dirty.uncommitted == ("functions/fresh/function.yaml",
                                 "functions/greet/function.yaml")
    assert dirty.dirty_warning is not None and (
        "uncommitted changes (functions/fresh/function.yaml, functions/greet/function.yaml): "
        f"recorded as commit {sha}-dirty") in dirty.dirty_warning
    with open_store(db_url).engine.connect() as conn:
        run = conn.execute(select(R.c.git_commit).order_by(R.c.started_at.desc())).first()
        versions = dict(conn.execute(select(V.c.version, V.c.git_commit)
                                     .join(F, F.c.id == V.c.function_id)
                                     .where(F.c.name == "greet")).all())
        applied = dict(conn.execute(select(F.c.name, F.c.applied_commit)).all())
    assert run is not None and run.git_commit == f"{sha}-dirty"
    assert versions == {"1.0.0": sha, "1.1.0": f"{sha}-dirty"}
    assert applied == {"greet": f"{sha}-dirty", "fresh": f"{sha}-dirty"}
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "two")
    (project / "providers.yaml").unlink()  # a deleted source file is a change too
    assert git_revision(project).uncommitted == ("providers.yaml",)


def test_outside_git_no_commit_is_recorded(project: Path, db_url: str) -> None:
    write_project(project, [spec_data()])
    result = apply(project)
    assert (result.git_commit, result.dirty_warning) == (None, None)
    assert _recorded_commits(db_url) == {None}


def test_a_sha256_commit_stays_within_its_column() -> None:
    from aiops.commands.reconcile import Revision

    long = Revision(head="a" * 64, uncommitted=("providers.yaml",))
    assert long.recorded == "a" * 58 + "-dirty" and len(long.recorded) == 64
    assert Revision(head="b" * 40, uncommitted=()).recorded == "b" * 40


def test_prune_archives_keeps_versions_and_logs_and_readd_reactivates(
        project: Path, db_url: str) -> None:
    write_project(project, [spec_data("alpha"), spec_data("beta")])
    apply(project)
    write_project(project, [spec_data("alpha")])
    assert not apply(project).wrote  # no --prune: nothing archived
    assert current_versions(db_url)["beta"] == ("active", "1.0.0")
    assert apply(project, prune=True).plan.verdict() == "Plan: 1 to archive"
    assert current_versions(db_url)["beta"] == ("archived", "1.0.0")
    assert count(db_url, V) == 2
    write_project(project, [spec_data("alpha"), spec_data("beta")])
    assert apply(project, prune=True).plan.verdict() == "Plan: 1 metadata update"
    assert current_versions(db_url)["beta"] == ("active", "1.0.0")


def test_prune_refuses_an_empty_desired_set_and_too_many(project: Path, db_url: str) -> None:
    write_project(project, [spec_data(f"fn-{i}") for i in range(4)])
    apply(project)
    before = snapshot(db_url)
    write_project(project, [])
    with pytest.raises(AiopsError, match="no function file was loaded"):
        apply(project, prune=True)
    write_project(project, [spec_data("fn-0")])
    with pytest.raises(AiopsError, match="more than max_prune=2"):
        apply(project, prune=True, max_prune=2)
    (project / "aiops.yaml").write_text("max_prune: 1\n")
    with pytest.raises(AiopsError, match="more than max_prune=1"):
        apply(project, prune=True)
    assert snapshot(db_url) == before
    assert apply(project, prune=True, max_prune=3).plan.counts()["archive"] == 3


def test_prune_leaves_other_projects_functions(project: Path, db_url: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOPS_PROJECT", "other-repo")
    write_project(project, [spec_data("theirs")])
    apply(project)
    monkeypatch.setenv("AIOPS_PROJECT", "test-project")
    write_project(project, [spec_data("mine")])
    apply(project, prune=True)
    assert current_versions(db_url)["theirs"] == ("active", "1.0.0")


# --- project identity: who owns a function ----------------------------------------------------


def _owners(db_url: str) -> dict[str, str | None]:
    with open_store(db_url).engine.connect() as conn:
        return dict(conn.execute(select(F.c.name, F.c.managed_by)).all())


def _with_id(root: Path, project_id: str, functions: list[dict[str, Any]]) -> Path:
    write_project(root, functions)
    (root / "aiops.yaml").write_text(f"project: {project_id}\n")
    return root


def test_a_second_project_is_refused_a_function_of_the_same_name_unless_it_adopts(
        project: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIOPS_PROJECT")  # the ids of aiops.yaml
    first = _with_id(project.parent / "first", "first-k3v9q2", [spec_data()])
    second = _with_id(project.parent / "second", "second-x7m2aa",
                      [spec_data(version="1.1.0", model="mock-large")])
    apply(first)
    before = snapshot(db_url)
    refusal = ("greet belongs to project `first-k3v9q2`, not to this project "
               "(`second-x7m2aa`): it is not taken over without --adopt")
    plan = plan_project(second)
    assert refusal in plan.errors[0] and plan.changes[0].conflict
    with pytest.raises(AiopsError, match=re.escape(refusal)):
        apply(second)
    assert snapshot(db_url) == before
    adopted = apply(second, adopt=True)
    assert adopted.plan.verdict() == "Plan: 1 new version"
    assert "adopted from project `first-k3v9q2` (--adopt)" in adopted.plan.changes[0].reason
    assert _owners(db_url) == {"greet": "second-x7m2aa"}
    assert plan_project(second).verdict() == "No changes."
    assert "belongs to project `second-x7m2aa`" in plan_project(first).errors[0]


def test_two_folders_of_the_same_name_without_an_id_are_two_projects(
        project: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIOPS_PROJECT")  # derived: the folders' paths
    one = write_project(project.parent / "a" / "prompts", [spec_data()])
    two = write_project(project.parent / "b" / "prompts", [spec_data()])
    apply(one)
    assert _owners(db_url) == {"greet": str(one.resolve())}
    with pytest.raises(AiopsError, match=f"greet belongs to project `{re.escape(str(one))}`"):
        apply(two)


def test_a_database_of_an_earlier_release_keeps_working(project: Path, db_url: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Earlier releases recorded a project without a remote under its folder's name."""
    root = write_project(project.parent / "prompts", [spec_data(), spec_data("gone")])
    monkeypatch.setenv("AIOPS_PROJECT", "prompts")  # what an earlier release derived
    apply(root)
    monkeypatch.delenv("AIOPS_PROJECT")
    write_project(root, [spec_data()])
    plan = plan_project(root, prune=True)
    assert not plan.errors
    assert [c.action for c in plan.changes] == ["update_metadata"]  # `gone` left alone
    assert "owner recorded as" in plan.changes[0].reason
    assert plan.notes and plan.notes[0].startswith("gone: no file; recorded under `prompts`")
    assert apply(root, prune=True).wrote
    assert _owners(db_url) == {"greet": str(root.resolve()), "gone": "prompts"}
    assert plan_project(root).verdict() == "No changes."
    # `aiops init` in that folder (or `project:` set by hand): its old ids stay its own.
    (root / "aiops.yaml").write_text("project: prompts-k3v9q2\n")
    write_project(root, [spec_data(), spec_data("gone")])
    plan = plan_project(root)
    assert not plan.errors and plan.verdict() == "Plan: 2 metadata updates"
    assert "(was `prompts`: the folder's name" in plan.changes[0].reason
    assert "(was `/" in plan.changes[1].reason  # the path this release derived
    apply(root)
    assert set(_owners(db_url).values()) == {"prompts-k3v9q2"}
    # A namesake elsewhere is another project: refused, named.
    other = _with_id(project.parent / "p2" / "prompts", "prompts-x7m2aa", [spec_data()])
    with pytest.raises(AiopsError, match="greet belongs to project `prompts-k3v9q2`"):
        apply(other)


def test_invalid_file_writes_nothing_and_a_failed_file_is_not_pruned(
        project: Path, db_url: str) -> None:
    write_project(project, [spec_data("alpha"), spec_data("beta")])
    apply(project)
    before = snapshot(db_url)
    write_function(project, spec_data("alpha", version="1.1.0", model="mock-large"))
    (project / "functions" / "beta" / "function.yaml").write_text("name: [unclosed\n")
    with pytest.raises(SpecError):
        apply(project, prune=True)
    assert snapshot(db_url) == before
    plan = plan_project(project, prune=True)
    assert plan.errors and not any(c.action == "archive" for c in plan.changes)
    assert any("beta: its file failed to load" in n for n in plan.notes)


def test_cross_check_errors_block_apply(project: Path, db_url: str) -> None:
    write_project(project, [spec_data(provider="nope")])
    with pytest.raises(SpecError):
        apply(project)
    assert count(db_url, F) == 0


def test_drift_is_found_and_restored(project: Path, db_url: str) -> None:
    write_project(project, [spec_data(), spec_data("other")])
    apply(project)
    write_project(project, [spec_data(version="1.1.0", model="mock-large"), spec_data("other")])
    apply(project)
    st = open_store(db_url)
    with st.engine.begin() as conn:  # someone edits rows by hand
        v = conn.execute(select(V.c.id, V.c.content).where(V.c.version == "1.1.0")).one()
        conn.execute(update(V).where(V.c.id == v.id).values(
            content={**v.content, "model": "tampered"}))
        old = conn.execute(select(V.c.id).where(V.c.version == "1.0.0",
                                                V.c.function_id == select(F.c.id).where(
                                                    F.c.name == "greet").scalar_subquery())
                           ).scalar_one()
        conn.execute(update(F).where(F.c.name == "greet").values(current_version_id=old))
        conn.execute(update(F).where(F.c.name == "other").values(description="hacked"))
        other_id = select(F.c.id).where(F.c.name == "other").scalar_subquery()
        conn.execute(update(V).where(V.c.function_id == other_id).values(
            model="copy-edited", prompt_template=[{"role": "user", "content": "x"}]))
    plan = plan_project(project)
    assert sorted((d.name, d.kind) for d in plan.drift) == [
        ("greet", "pointer"), ("greet", "version_content"), ("other", "metadata"),
        ("other", "version_content")]
    assert plan.has_changes
    apply(project)
    assert plan_project(project).verdict() == "No changes."
    assert current_versions(db_url)["greet"] == ("active", "1.1.0")
    assert st.resolve("greet").content["model"] == "mock-large"
    with st.engine.connect() as conn:
        assert conn.execute(select(V.c.model).where(V.c.function_id == select(F.c.id).where(
            F.c.name == "other").scalar_subquery())).scalar_one() == "mock-small"


def test_managed_function_missing_from_database_is_recreated(project: Path,
                                                            db_url: str) -> None:
    write_project(project, [spec_data()])
    apply(project)
    st = open_store(db_url)
    with st.engine.begin() as conn:
        conn.execute(update(F).values(current_version_id=None))
        conn.execute(V.delete())
        conn.execute(F.delete())
    plan = plan_project(project)
    assert [d.kind for d in plan.drift] == ["missing"]
    apply(project)
    assert current_versions(db_url) == {"greet": ("active", "1.0.0")}
    assert count(db_url, M) == 1


def test_stale_saved_plan_is_refused(project: Path, db_url: str) -> None:
    write_project(project, [spec_data()])
    saved = plan_project(project)
    apply(project)  # someone else applied in between
    before = snapshot(db_url)
    with pytest.raises(StalePlanError, match=r"run `aiops plan -o plan\.json` again"):
        apply(project, expected=saved)
    assert snapshot(db_url) == before


def test_saved_plan_applies_exactly_what_was_reviewed(project: Path, db_url: str) -> None:
    write_project(project, [spec_data()])
    saved = plan_project(project)
    write_project(project, [spec_data(model="mock-large")])  # files change after review
    apply(project, expected=saved)
    assert open_store(db_url).resolve("greet").content["model"] == "mock-small"


@contextmanager
def lock_held_elsewhere(db_url: str) -> Iterator[None]:
    """Another writer holds the reconcile lock (in a thread) for the duration."""
    st = open_store(db_url)

    def hold(taken: threading.Event, release: threading.Event) -> None:
        with st.writer():
            taken.set()
            release.wait(10)

    with holding(hold):
        yield


def test_busy_lock_is_lock_busy(project: Path, db_url: str) -> None:
    """The message names an option only where the command has it: `aiops apply` has
    --lock-timeout; `aiops watch` (the same apply_project) and `aiops run` have none."""
    write_project(project, [spec_data()])
    with lock_held_elsewhere(db_url), pytest.raises(LockBusy) as info:
        apply(project, lock_timeout_s=0.3)
    assert info.value.exit_code == 75
    assert "--" not in str(info.value)
    with lock_held_elsewhere(db_url):
        result = CliRunner().invoke(cli, ["apply", "-C", str(project), "--auto-approve",
                                          "--lock-timeout", "0.3"])
    assert result.exit_code == 75, result.output
    assert "raise --lock-timeout (it was 0.3 s)" in result.output
    assert apply(project).wrote


def test_lock_timeout_zero_fails_at_once_instead_of_waiting_forever(project: Path,
                                                                     db_url: str) -> None:
    # PostgreSQL reads lock_timeout=0 as "no timeout": --lock-timeout 0 must still mean
    # "do not wait" there, as it does on SQLite.
    write_project(project, [spec_data()])
    with lock_held_elsewhere(db_url):
        started = time.monotonic()
        with pytest.raises(LockBusy):
            apply(project, lock_timeout_s=0)
        assert time.monotonic() - started < 5


# --- property: whatever the sequence of edits, apply converges and then plans no changes ----

OPS = ("create", "change", "bump", "bump", "revert", "revert", "delete", "readd")
_examples = iter(range(1_000_000))


class Model:
    """What the files say, and what each applied version's content was."""

    def __init__(self, prefix: str) -> None:
        self.names = [f"{prefix}-a", f"{prefix}-b"]
        self.files: dict[str, dict[str, Any]] = {}
        self.deleted: dict[str, dict[str, Any]] = {}
        self.applied: dict[str, dict[str, int]] = {}  # name -> version -> model variant
        self.next_variant = 0

    def step(self, op: str, i: int) -> None:
        """Apply `op` to one function; an op that cannot apply becomes the nearest one that
        can (a missing function is created, a deleted one re-added), so no step is wasted."""
        name = self.names[i % len(self.names)]
        if name in self.deleted:
            if op != "delete":
                self.files[name] = self.deleted.pop(name)
            return
        f = self.files.get(name)
        if f is None:
            self.files[name] = spec_data(name, model="m0")
        elif op == "delete":
            self.deleted[name] = self.files.pop(name)
        elif op == "revert" and len(self.applied.get(name, {})) > 1:
            others = sorted(v for v in self.applied[name] if v != f["version"])
            version = others[i % len(others)]
            self.files[name] = {**f, "version": version,
                                "model": f"m{self.applied[name][version]}"}
        elif op in ("bump", "revert"):
            self.next_variant += 1
            top = max([int(v.split(".")[1]) for v in self.applied.get(name, {})] + [0])
            self.files[name] = {**f, "version": f"1.{top + 1}.0",
                                "model": f"m{self.next_variant}"}
        else:  # create / change / readd of a present function: a metadata edit
            self.next_variant += 1
            self.files[name] = {**f, "description": f"edit {self.next_variant}"}

    def record_applied(self) -> None:
        for name, f in self.files.items():
            self.applied.setdefault(name, {})[f["version"]] = int(f["model"][1:])


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 3)), min_size=3,
                      max_size=10))
def test_any_edit_sequence_converges(project: Path, db_url: str,
                                     monkeypatch: pytest.MonkeyPatch,
                                     steps: list[tuple[str, int]]) -> None:
    root = project / f"ex{next(_examples)}"
    monkeypatch.setenv("AIOPS_PROJECT", root.name)  # examples share the database
    model = Model(root.name)
    write_project(root)
    archived: set[str] = set()
    for op, i in steps:
        model.step(op, i)
        shutil.rmtree(root / "functions")
        write_project(root, list(model.files.values()))
        prune = bool(model.files)  # pruning everything is refused by design
        event(apply(root, prune=prune, max_prune=100).plan.verdict())
        model.record_applied()
        archived = (archived | set(model.deleted) if prune else archived) - set(model.files)
        plan = plan_project(root, prune=prune)
        assert plan.verdict() == "No changes.", plan.verdict()
        deployed = current_versions(db_url)
        for name, f in model.files.items():
            assert deployed[name] == (f.get("status", "active"), f["version"])
        for name in model.deleted:
            assert deployed[name][0] == ("archived" if name in archived else "active")


def test_a_value_the_database_cannot_store_is_a_clear_error(project: Path, db_url: str) -> None:
    # PostgreSQL's jsonb refuses U+0000 that SQLite keeps: refused where it is written, on
    # both databases, before anything is written.
    data = spec_data()
    data["prompt"] = [{"role": "user", "content": "Say hello to {{ who }}.\x00"}]
    write_project(project, [data])
    with pytest.raises(SpecError, match=r"U\+0000") as info:
        apply(project)
    assert info.value.exit_code == 1
    [diag] = info.value.diagnostics
    assert (diag.file, diag.path) == ("functions/greet/function.yaml", "prompt[0].content")
    assert count(db_url, F) == 0
