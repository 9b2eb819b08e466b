"""Writes through git (aiops.commands.writes) in real git repositories, against SQLite and
PostgreSQL: the file a person would write, validation as `aiops validate --base HEAD`, If-Match,
one winner among concurrent writers, branch mode, delete as the prune of one, the caller as
author and actor, and a commit whose apply failed."""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from aiops import commands
from aiops.commands import writes
from aiops.errors import (
    ConfigError,
    ConflictError,
    LockBusy,
    NotFoundError,
    PreconditionFailed,
    PreconditionRequired,
    RuntimeFailure,
    SpecError,
    WritesDisabled,
)
from aiops.gitwrite import Identity
from aiops.loader import load_one
from aiops.spec import FunctionSpec
from aiops.store import LogRow, Writer, open_store
from aiops.store.tables import L, R, U, V
from tests.fixtures_db import (
    count,
    current_versions,
    holding,
    snapshot,
    spec_data,
    write_function,
    write_project,
)

TESS = Identity(name="Tess Writer", email="tess@example.org")
OMAR = Identity(name="Omar", email="omar@example.org")
FILE = "functions/{}/function.yaml"

# What a person writes for spec_data("hello"): the scaffold's layout.
HELLO_YAML = """\
# yaml-language-server: $schema=../../schemas/function.schema.json
apiVersion: aiops/v1
name: hello
version: 1.0.0
description: The hello function.
provider: mock
model: mock-small
configuration:
  temperature: 0.2
  max_tokens: 100
prompt:
  - role: system
    content: You are terse.
  - role: user
    content: Say hello to {{ who }}.
input_schema:
  type: object
  required: [who]
  properties:
    who: {type: string}
  additionalProperties: false
output_schema:
  type: string
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def repo(project: Path) -> Path:
    """The project (greet applied) as a git repository with one commit by the operator."""
    write_project(project, [spec_data("greet")])
    git(project, "init", "-q", "-b", "main")
    git(project, "config", "user.name", "Server Operator")
    git(project, "config", "user.email", "ops@example.org")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "Start")
    commands.apply(ws_of(project), actor="Server Operator <ops@example.org>")
    return project


def ws_of(root: Path) -> commands.Workspace:
    return commands.open_workspace(root)


def head(root: Path) -> str:
    return git(root, "rev-parse", "HEAD").strip()


def commits(root: Path, ref: str = "HEAD") -> int:
    return int(git(root, "rev-list", "--count", ref))


def create(root: Path, document: Any, **kw: Any) -> writes.WriteResult:
    return writes.create_function(ws_of(root), document, author=kw.pop("author", TESS),
                                  mode=kw.pop("mode", "commit"), **kw)


def update(root: Path, name: str, document: Any, **kw: Any) -> writes.WriteResult:
    if_match = kw.pop("if_match") if "if_match" in kw else writes.function_etag(ws_of(root),
                                                                                 name)
    return writes.update_function(ws_of(root), name, document, author=kw.pop("author", TESS),
                                  if_match=if_match, mode=kw.pop("mode", "commit"), **kw)


# --- the file, the commit, the apply ---------------------------------------------------------


def test_create_commits_the_file_a_person_would_write_and_applies_it(repo: Path,
                                                                     db_url: str) -> None:
    result = create(repo, spec_data("hello"))
    path = repo / FILE.format("hello")
    assert path.read_text(encoding="utf-8") == HELLO_YAML
    assert git(repo, "show", f"HEAD:{FILE.format('hello')}") == HELLO_YAML
    spec, _, diags = load_one(FILE.format("hello"), HELLO_YAML.encode(), FunctionSpec)
    assert diags == [] and spec == FunctionSpec.model_validate(spec_data("hello"))
    assert result.commit == head(repo) and result.applied and result.apply_error is None
    assert result.version == "1.0.0" and result.plan is not None
    assert result.plan.verdict() == "Plan: 1 to create"
    assert result.etag == writes.function_etag(ws_of(repo), "hello")
    assert current_versions(db_url)["hello"] == ("active", "1.0.0")
    assert git(repo, "status", "--porcelain") == ""  # index and working tree follow HEAD


def test_the_caller_is_the_commits_author_and_the_applys_actor(repo: Path, db_url: str) -> None:
    result = create(repo, spec_data("hello"))
    who = git(repo, "log", "-1", "--format=%an|%ae|%cn|%ce|%s", result.commit).strip()
    assert who == "Tess Writer|tess@example.org|Server Operator|ops@example.org|Create hello 1.0.0"
    with open_store(db_url).engine.connect() as conn:
        run = conn.execute(select(R).order_by(R.c.finished_at.desc()).limit(1)).one()
        user = conn.execute(select(U).where(U.c.id == run.user_id)).one()
        version = conn.execute(select(V).where(V.c.version == "1.0.0")
                               .where(V.c.git_commit == result.commit)).one()
    assert run.actor == "Tess Writer <tess@example.org>" and run.git_commit == result.commit
    assert (user.name, user.email) == ("Tess Writer", "tess@example.org")
    assert version.created_by == user.id


def test_an_author_without_an_email_is_recorded_by_name(repo: Path, db_url: str) -> None:
    # An API token's user may have no email: git records `Name <>`, the run that user's row.
    result = create(repo, spec_data("hello"), author=Identity(name="ci-bot"))
    assert git(repo, "log", "-1", "--format=%an <%ae>", result.commit).strip() == "ci-bot <>"
    with open_store(db_url).engine.connect() as conn:
        run = conn.execute(select(R).where(R.c.git_commit == result.commit)).one()
        user = conn.execute(select(U).where(U.c.id == run.user_id)).one()
    assert run.actor == "ci-bot" and (user.name, user.email) == ("ci-bot", None)


def test_the_committer_is_the_server_when_given_or_when_git_names_nobody(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")  # only the repository's own config
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    server = Identity(name="aiops server", email="aiops@server.example")
    result = writes.create_function(ws_of(repo), spec_data("hello"), author=TESS,
                                    mode="commit", committer=server)
    assert git(repo, "log", "-1", "--format=%cn <%ce>", result.commit).strip() == str(server)
    git(repo, "config", "--unset", "user.name")
    other = create(repo, spec_data("other"))
    assert git(repo, "log", "-1", "--format=%cn <%ce>", other.commit).strip() == \
        "aiops <aiops@localhost>"


def test_the_documents_warnings_come_back_with_pointers(repo: Path) -> None:
    schema = {"type": "object", "required": ["who"], "additionalProperties": False,
              "properties": {"who": {"type": "string"}, "tone": {"type": "string"}}}
    result = create(repo, spec_data("hello", input_schema=schema))
    assert result.applied
    [warning] = result.warnings
    assert warning.severity == "warning" and warning.pointer == "/input_schema/properties/tone"
    assert warning.file == FILE.format("hello")


def test_yaml_text_is_committed_as_its_author_wrote_it(repo: Path) -> None:
    text = HELLO_YAML.replace("model: mock-small\n", "model: mock-small  # the cheap one\n")
    create(repo, text)
    assert (repo / FILE.format("hello")).read_text(encoding="utf-8") == text


def test_an_update_commits_and_applies_a_new_version(repo: Path, db_url: str) -> None:
    before = commits(repo)
    result = update(repo, "greet", spec_data(version="1.1.0", model="mock-large"))
    assert result.applied and result.plan is not None
    assert result.plan.verdict() == "Plan: 1 new version"
    assert git(repo, "log", "-1", "--format=%s").strip() == "Update greet 1.1.0"
    assert commits(repo) == before + 1
    assert current_versions(db_url)["greet"] == ("active", "1.1.0")


def test_a_staged_edit_elsewhere_stays_staged_and_out_of_the_commit(repo: Path) -> None:
    (repo / "notes.txt").write_text("half done\n", encoding="utf-8")
    git(repo, "add", "notes.txt")
    (repo / "providers.yaml").write_text((repo / "providers.yaml").read_text() + "# wip\n")
    result = create(repo, spec_data("hello"))
    assert git(repo, "show", "--name-only", "--format=", result.commit).split() == [
        FILE.format("hello")]
    status = git(repo, "status", "--porcelain").splitlines()
    assert sorted(status) == [" M providers.yaml", "A  notes.txt"]


def test_the_project_may_sit_below_the_top_of_its_repository(tmp_path: Path, db_url: str,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setenv("AIOPS_DATABASE_URL", db_url)
    monkeypatch.setenv("AIOPS_PROJECT", "nested")
    open_store(db_url, migrate=True)
    top = tmp_path / "mono"
    project = write_project(top / "ai")
    git(top, "init", "-q", "-b", "main")
    git(top, "-c", "user.name=O", "-c", "user.email=o@example.org", "commit", "-q",
        "--allow-empty", "-m", "empty")
    git(top, "add", "-A")
    git(top, "-c", "user.name=O", "-c", "user.email=o@example.org", "commit", "-q", "-m", "ai")
    result = create(project, spec_data("hello"), committer=TESS)
    assert git(top, "show", "--name-only", "--format=", result.commit).split() == [
        "ai/functions/hello/function.yaml"]
    assert git(top, "status", "--porcelain") == ""


# --- refusals that write nothing -----------------------------------------------------------


@contextlib.contextmanager
def nothing_written(root: Path, db_url: str) -> Iterator[None]:
    before = (head(root), git(root, "status", "--porcelain"), snapshot(db_url))
    yield
    assert (head(root), git(root, "status", "--porcelain"), snapshot(db_url)) == before


def test_an_invalid_document_is_refused_with_pointers_and_no_commit(repo: Path,
                                                                    db_url: str) -> None:
    bad = spec_data("hello", retry={"max_attempts": 0}, temperature=1)
    bad["input_schema"]["properties"]["who"]["type"] = "strin"
    with nothing_written(repo, db_url), pytest.raises(SpecError) as info:
        create(repo, bad)
    found = {(d.pointer, d.code) for d in info.value.diagnostics if d.is_error}
    assert ("/retry/max_attempts", "greater_than_equal") in found
    assert ("/temperature", "extra_forbidden") in found
    assert not (repo / "functions" / "hello").exists()
    assert all(d.file == FILE.format("hello") for d in info.value.diagnostics)
    with nothing_written(repo, db_url), pytest.raises(SpecError) as info:
        create(repo, spec_data("hello", input_schema=bad["input_schema"]))
    [schema_error] = [d for d in info.value.diagnostics if d.is_error]
    assert schema_error.pointer == "/input_schema/properties/who/type"
    assert "strin" in schema_error.message and schema_error.line is not None


def test_a_document_nested_past_the_bound_is_refused_before_it_is_written(
        repo: Path, db_url: str) -> None:
    deep: Any = "leaf"
    for _ in range(5000):  # deeper than Python would recurse: refused before any recursion
        deep = {"a/b": deep}
    with nothing_written(repo, db_url), pytest.raises(SpecError) as info:
        create(repo, spec_data("hello", metadata=deep))
    [error] = info.value.diagnostics
    assert error.code == "depth" and error.pointer == "/metadata" + "/a~1b" * 99


def test_yaml_that_does_not_parse_is_refused_at_its_line(repo: Path, db_url: str) -> None:
    text = HELLO_YAML.replace("version: 1.0.0", "version: 1.0.0\nversion: 1.0.1")
    with nothing_written(repo, db_url), pytest.raises(SpecError) as info:
        create(repo, text)
    [error] = info.value.diagnostics
    assert error.line == 5 and error.pointer == "/version" and "duplicate" in error.message


def test_the_version_rules_hold_against_head(repo: Path, db_url: str) -> None:
    changed = spec_data(model="mock-large")
    with nothing_written(repo, db_url), pytest.raises(SpecError) as info:
        update(repo, "greet", changed)
    [error] = info.value.diagnostics
    assert (error.pointer, error.code) == ("/version", "version-not-bumped")
    narrowed = spec_data(version="1.1.0", input_schema={
        "type": "object", "required": ["who", "age"],
        "properties": {"who": {"type": "string"}, "age": {"type": "integer"}},
        "additionalProperties": False}, prompt=[{"role": "user",
                                                 "content": "{{ who }} is {{ age }}."}])
    with nothing_written(repo, db_url), pytest.raises(SpecError) as info:
        update(repo, "greet", narrowed)
    [error] = info.value.diagnostics
    assert error.code == "breaking-change" and "2.0.0" in error.fix
    assert update(repo, "greet", narrowed | {"version": "2.0.0"}).applied


def test_name_in_path_and_document_must_agree(repo: Path, db_url: str) -> None:
    with nothing_written(repo, db_url), pytest.raises(SpecError) as info:
        update(repo, "greet", spec_data("other", version="1.1.0"))
    assert info.value.diagnostics[0].pointer == "/name"
    with nothing_written(repo, db_url), pytest.raises(SpecError) as info:
        create(repo, spec_data("../../escape"))
    assert info.value.diagnostics[0].pointer == "/name"


def test_create_of_an_existing_function_and_update_or_delete_of_a_missing_one(
        repo: Path, db_url: str) -> None:
    with nothing_written(repo, db_url):
        with pytest.raises(ConflictError, match="exists already"):
            create(repo, spec_data("greet"))
        with pytest.raises(NotFoundError):
            update(repo, "nobody", spec_data("nobody"), if_match="*")
        with pytest.raises(NotFoundError):
            writes.delete_function(ws_of(repo), "nobody", author=TESS, mode="commit")
        with pytest.raises(NotFoundError):
            writes.delete_function(ws_of(repo), "../greet", author=TESS, mode="commit")


def test_a_file_being_edited_is_never_committed(repo: Path, db_url: str) -> None:
    path = repo / FILE.format("greet")
    path.write_text(path.read_text() + "# half an edit\n", encoding="utf-8")
    with nothing_written(repo, db_url), pytest.raises(ConflictError, match="uncommitted"):
        update(repo, "greet", spec_data(version="1.1.0"))
    assert path.read_text().endswith("# half an edit\n")
    draft = repo / "functions" / "hello" / "function.yaml"
    write_function(repo, spec_data("hello"))
    with nothing_written(repo, db_url), pytest.raises(ConflictError, match="uncommitted"):
        create(repo, spec_data("hello", description="Mine."))
    assert "Mine." not in draft.read_text()


def test_writes_need_a_repository_with_a_commit(project: Path) -> None:
    with pytest.raises(ConfigError, match="not in a git repository; run `git init`"):
        create(project, spec_data("hello"))
    git(project, "init", "-q", "-b", "main")
    with pytest.raises(ConfigError, match="has no commit yet"):
        create(project, spec_data("hello"))
    assert not (project / "functions" / "hello").exists()


def test_writes_off_refuses_with_a_clear_message(repo: Path, db_url: str) -> None:
    with nothing_written(repo, db_url), pytest.raises(WritesDisabled, match="--writes off"):
        create(repo, spec_data("hello"), mode="off")


# --- If-Match and concurrent writers -------------------------------------------------------


def test_if_match_missing_and_stale(repo: Path, db_url: str) -> None:
    ws = ws_of(repo)
    etag = writes.function_etag(ws, "greet")
    assert etag is not None and etag.startswith('"') and etag.endswith('"')
    with nothing_written(repo, db_url):
        with pytest.raises(PreconditionRequired):
            update(repo, "greet", spec_data(version="1.1.0"), if_match=None)
        with pytest.raises(PreconditionFailed):
            update(repo, "greet", spec_data(version="1.1.0"), if_match='"0000"')
        with pytest.raises(PreconditionFailed):  # a weak tag never matches (RFC 9110)
            update(repo, "greet", spec_data(version="1.1.0"), if_match=f"W/{etag}")
    # A person's commit makes the ETag read before it stale.
    path = repo / FILE.format("greet")
    path.write_text(path.read_text().replace("The greet function.", "Greets."))
    git(repo, "commit", "-q", "-am", "Reword greet")
    assert writes.function_etag(ws, "greet") != etag
    with pytest.raises(PreconditionFailed):
        update(repo, "greet", spec_data(version="1.1.0"), if_match=etag)
    fresh = writes.function_etag(ws, "greet")
    assert update(repo, "greet", spec_data(version="1.1.0"),
                  if_match=f'"other", {fresh}').applied
    assert update(repo, "greet", spec_data(version="1.2.0"), if_match="*").applied


def test_two_concurrent_updates_with_the_same_if_match_one_wins(repo: Path,
                                                                db_url: str) -> None:
    etag = writes.function_etag(ws_of(repo), "greet")
    before = commits(repo)
    barrier = threading.Barrier(2)
    outcomes: list[Any] = []

    def edit(model: str, who: Identity) -> None:
        barrier.wait()
        try:
            outcomes.append(update(repo, "greet", spec_data(version="1.1.0", model=model),
                                   if_match=etag, author=who))
        except Exception as exc:  # the loser's error is the point
            outcomes.append(exc)

    threads = [threading.Thread(target=edit, args=args)
               for args in (("mock-large", TESS), ("mock-small-2", OMAR))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [o for o in outcomes if isinstance(o, writes.WriteResult)]
    lost = [o for o in outcomes if not isinstance(o, writes.WriteResult)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert isinstance(lost[0], PreconditionFailed)
    assert commits(repo) == before + 1 and won[0].commit == head(repo) and won[0].applied
    assert current_versions(db_url)["greet"] == ("active", "1.1.0")


def test_writes_queue_on_the_reconcilers_lock(repo: Path, db_url: str) -> None:
    st = open_store(db_url)

    def hold(taken: threading.Event, release: threading.Event) -> None:
        with st.writer():
            taken.set()
            release.wait(10)

    with nothing_written(repo, db_url), holding(hold), pytest.raises(LockBusy):
        create(repo, spec_data("hello"), lock_timeout_s=0.3)
    assert not (repo / "functions" / "hello").exists()


# --- branch mode -----------------------------------------------------------------------------


def test_branch_mode_leaves_head_and_the_working_tree_alone(repo: Path, db_url: str) -> None:
    (repo / "notes.txt").write_text("mine\n", encoding="utf-8")
    path = repo / FILE.format("greet")
    path.write_text(path.read_text() + "# someone's edit\n", encoding="utf-8")
    working = path.read_bytes()
    with nothing_written(repo, db_url):
        result = update(repo, "greet", spec_data(version="1.1.0", model="mock-large"),
                        mode="branch")
    assert path.read_bytes() == working
    assert result.branch is not None and result.branch.startswith("aiops/greet-")
    assert not result.applied and result.plan is None and result.etag is None
    assert git(repo, "rev-parse", result.branch).strip() == result.commit
    assert git(repo, "rev-parse", f"{result.commit}^").strip() == head(repo)
    committed = git(repo, "show", f"{result.branch}:{FILE.format('greet')}")
    assert "model: mock-large" in committed and "someone's edit" not in committed
    assert git(repo, "show", "--name-only", "--format=", result.commit).split() == [
        FILE.format("greet")]
    assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == "main"


def test_branch_mode_needs_no_database_and_validates_the_same(repo: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    monkeypatch.setenv("AIOPS_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(SpecError):
        update(repo, "greet", spec_data(model="mock-large"), mode="branch")
    assert create(repo, spec_data("hello"), mode="branch").branch is not None


# --- delete --------------------------------------------------------------------------------


def test_delete_archives_one_function_and_keeps_versions_and_logs(repo: Path,
                                                                  db_url: str) -> None:
    create(repo, spec_data("other"))
    cassette = repo / "functions" / "greet" / "cassettes" / "mock" / "t.yaml"
    cassette.parent.mkdir(parents=True)
    cassette.write_text("interactions: []\n", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "A cassette")
    st = open_store(db_url)
    dv = st.resolve("greet")
    st.insert_logs([LogRow(function_id=dv.function_id, version=dv.version,
                           version_id=dv.version_id, status="ok",
                           input={"who": "x"}, output="hi")])
    # `other` loses its file by a person's commit: only `apply --prune` archives it.
    git(repo, "rm", "-q", FILE.format("other"))
    git(repo, "commit", "-q", "-m", "Drop other by hand")
    versions, logs = count(db_url, V), count(db_url, L)
    result = writes.delete_function(ws_of(repo), "greet", author=OMAR,
                                    if_match=writes.function_etag(ws_of(repo), "greet"),
                                    mode="commit")
    assert result.applied and result.plan is not None and result.version == "1.0.0"
    assert [(c.name, c.action) for c in result.plan.changes if c.action != "noop"] == [
        ("greet", "archive")]
    assert current_versions(db_url) == {"greet": ("archived", "1.0.0"),
                                        "other": ("active", "1.0.0")}
    assert (count(db_url, V), count(db_url, L)) == (versions, logs)
    assert not (repo / "functions" / "greet").exists()
    assert git(repo, "ls-tree", "-r", "--name-only", "HEAD", "functions/greet") == ""
    assert git(repo, "log", "-1", "--format=%an %s").strip() == "Omar Delete greet"
    assert git(repo, "status", "--porcelain") == ""
    with pytest.raises(NotFoundError):
        writes.delete_function(ws_of(repo), "greet", author=OMAR, mode="commit")


def test_delete_with_a_stale_if_match_is_refused(repo: Path, db_url: str) -> None:
    with nothing_written(repo, db_url), pytest.raises(PreconditionFailed):
        writes.delete_function(ws_of(repo), "greet", author=OMAR, if_match='"stale"',
                               mode="commit")


def test_the_last_function_can_be_deleted(repo: Path, db_url: str) -> None:
    assert writes.delete_function(ws_of(repo), "greet", author=OMAR, mode="commit").applied
    assert current_versions(db_url) == {"greet": ("archived", "1.0.0")}


# --- an apply that fails after the commit -------------------------------------------------------


class FailingWrites:
    """The project's store, whose writer's writes fail (the database went away mid-apply)."""

    def __init__(self, db_url: str) -> None:
        self.store = open_store(db_url)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    @contextlib.contextmanager
    def writer(self, lock_timeout_s: float | None = None) -> Iterator[Any]:
        with self.store.writer(lock_timeout_s) as w:
            yield FailingWriter(w)


class FailingWriter(Writer):
    def __init__(self, writer: Writer) -> None:
        super().__init__(writer.conn)

    def write(self, batch: Any) -> None:
        raise RuntimeFailure("the database connection was lost")


def test_a_failed_apply_is_reported_and_the_next_apply_converges(repo: Path,
                                                                 db_url: str) -> None:
    before = snapshot(db_url)
    result = writes.update_function(
        ws_of(repo), "greet", spec_data(version="1.1.0", model="mock-large"), author=TESS,
        if_match=writes.function_etag(ws_of(repo), "greet"), mode="commit",
        store=FailingWrites(db_url))  # type: ignore[arg-type]
    assert not result.applied and result.apply_error == "the database connection was lost"
    assert result.commit == head(repo) and result.version == "1.1.0"
    assert result.plan is not None and result.plan.verdict() == "Plan: 1 new version"
    assert snapshot(db_url) == before  # the apply's transaction was rolled back whole
    assert commands.apply(ws_of(repo), actor="Server Operator <ops@example.org>").wrote
    assert current_versions(db_url)["greet"] == ("active", "1.1.0")
    assert commands.plan(ws_of(repo)).verdict() == "No changes."


def test_an_apply_the_database_refuses_is_reported_with_its_plan(repo: Path,
                                                                  db_url: str) -> None:
    # 1.1.0 was applied from a working-tree edit that was never committed, then discarded:
    # HEAD's rules allow a 1.1.0 with other content, the database does not.
    write_function(repo, spec_data(version="1.1.0", model="mock-large"))
    commands.apply(ws_of(repo), actor="Someone <someone@example.org>")
    git(repo, "checkout", "--", FILE.format("greet"))
    result = update(repo, "greet", spec_data(version="1.1.0", description="Other."))
    assert not result.applied and result.commit == head(repo)
    assert result.apply_error is not None and "already applied with other content" in \
        result.apply_error
    assert result.plan is not None and result.plan.errors
    assert current_versions(db_url)["greet"] == ("active", "1.1.0")
