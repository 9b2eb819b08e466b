"""The Workspace: where the project is (as git finds a repository), which database it uses,
and what it reads to answer (no more than it needs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiops.errors import ConfigError
from aiops.spec import ProjectSettings
from aiops.workspace import NotAProject, Workspace, open_workspace

PROVIDERS = ("providers:\n  mock: {type: openai, models: {m: {input_per_mtok: 1, "
             "output_per_mtok: 1}}}\n")


def project(root: Path, *, aiops_yaml: str | None = None, git: bool = False) -> Path:
    (root / "functions").mkdir(parents=True)
    (root / "providers.yaml").write_text(PROVIDERS, encoding="utf-8")
    if aiops_yaml is not None:
        (root / "aiops.yaml").write_text(aiops_yaml, encoding="utf-8")
    if git:
        (root / ".git").mkdir()
    return root


def url(root: Path, env: dict[str, str] | None = None, **kw: str) -> str:
    return open_workspace(root, environ=env or {}, **kw).database_url


def test_the_override_wins_over_the_environment_over_aiops_yaml_over_the_default(
        tmp_path: Path) -> None:
    root = project(tmp_path / "p", aiops_yaml="database_url: postgresql://from-yaml/db\n")
    env = {"AIOPS_DATABASE_URL": "postgresql://from-env/db"}
    assert url(root, env, database_url="postgresql://given/db") == "postgresql://given/db"
    assert url(root, env) == "postgresql://from-env/db"
    assert url(root) == "postgresql://from-yaml/db"
    (root / "aiops.yaml").unlink()
    assert url(root) == f"sqlite:///{root.resolve()}/.aiops/aiops.db"
    assert not (root / ".aiops").exists()  # named, not created: opening the store creates it


def test_a_relative_sqlite_path_in_aiops_yaml_is_relative_to_the_project(tmp_path: Path) -> None:
    # `aiops -C proj plan` and `cd proj && aiops plan` must use one database, not one per cwd.
    root = project(tmp_path / "p", aiops_yaml="database_url: sqlite:///state/ci.db?timeout=5\n")
    assert url(root) == f"sqlite:///{root.resolve()}/state/ci.db?timeout=5"
    for absolute in ("sqlite:////abs/ci.db", "sqlite:///:memory:", "postgresql://h/db"):
        (root / "aiops.yaml").write_text(f"database_url: '{absolute}'\n", encoding="utf-8")
        assert url(root) == absolute


def test_surrounding_whitespace_of_a_database_url_is_ignored(tmp_path: Path) -> None:
    # CI secrets often end with a newline: "db\n" is not a database anyone meant.
    root = project(tmp_path / "p")
    assert url(root, {"AIOPS_DATABASE_URL": "postgresql://u@h/db\n"}) == "postgresql://u@h/db"
    assert url(root, {"AIOPS_DATABASE_URL": "  \n"}).startswith("sqlite:///")
    assert url(root, database_url=" \n").startswith("sqlite:///")
    (root / "aiops.yaml").write_text("database_url: ' postgresql://u@h/db '\n", encoding="utf-8")
    assert url(root) == "postgresql://u@h/db"


def test_from_a_subdirectory_the_project_above_is_the_workspace(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `aiops status` or `aiops run` from functions/greet/ work on the project, with the
    # database its aiops.yaml names, instead of an empty one next to the function.
    root = project(tmp_path / "repo", aiops_yaml="database_url: sqlite:///state/x.db\n",
                   git=True)
    sub = root / "functions" / "greet"
    sub.mkdir(parents=True)
    ws = open_workspace(sub, environ={})
    assert ws.root == root
    assert ws.database_url == f"sqlite:///{root.resolve()}/state/x.db"
    monkeypatch.chdir(sub)
    ws = open_workspace(environ={})  # the current directory, given relative: stays relative
    assert ws.root == Path("../..")
    assert ws.database_url == f"sqlite:///{root.resolve()}/state/x.db"


@pytest.mark.parametrize("marker", ["functions", "providers.yaml", "aiops.yaml"])
def test_any_one_marker_makes_a_project(tmp_path: Path, marker: str) -> None:
    if marker == "functions":
        (tmp_path / marker).mkdir()
    else:
        (tmp_path / marker).write_text("", encoding="utf-8")
    assert open_workspace(tmp_path).root == tmp_path


def test_outside_a_project_it_says_so_and_creates_nothing(tmp_path: Path) -> None:
    lone = tmp_path / "lone" / "dir"
    lone.mkdir(parents=True)
    with pytest.raises(NotAProject, match=r"^not an aiops project: no functions/, "
                                          r"providers\.yaml or aiops\.yaml here or above") as exc:
        open_workspace(lone)
    assert exc.value.exit_code == 1
    assert list(tmp_path.rglob("*")) == [tmp_path / "lone", lone]


def test_the_search_stops_at_the_top_of_the_git_repository(tmp_path: Path) -> None:
    # A providers.yaml in a directory above a repository is not that repository's project.
    (tmp_path / "providers.yaml").write_text(PROVIDERS, encoding="utf-8")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "src").mkdir()
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(NotAProject):
        open_workspace(repo / "src")
    assert open_workspace(tmp_path / "elsewhere" / "..").root == tmp_path / "elsewhere" / ".."


def test_a_state_directory_that_cannot_be_created_is_a_config_error(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    (root / ".aiops").write_text("a file in the way", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\.aiops.*AIOPS_DATABASE_URL"):
        open_workspace(root, environ={}).open_store()


def test_an_aiops_yaml_that_does_not_load_names_no_database(tmp_path: Path) -> None:
    # Not the default database in its place: the file may name another one.
    root = project(tmp_path / "p", aiops_yaml="database_url: [1]\n")
    with pytest.raises(ConfigError, match=r"aiops\.yaml does not load:\naiops\.yaml:1"):
        url(root)


def test_the_database_and_the_providers_are_found_without_reading_a_function_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `aiops run` on a project of 1,000 functions read every file to find its database.
    from aiops.commands import open_runner

    root = project(tmp_path / "p", aiops_yaml=f"database_url: sqlite:///{tmp_path}/x.db\n")

    def no(*args: object) -> None:
        raise AssertionError("a function file was read")

    monkeypatch.setattr("aiops.sources.read_tree", no)
    monkeypatch.setattr("aiops.workspace.read_tree", no)
    runner = open_runner(open_workspace(root), env={})
    assert list(runner.providers_file.providers) == ["mock"]
    assert runner.store.url == f"sqlite:///{tmp_path}/x.db"  # type: ignore[attr-defined]


def test_the_settings_are_the_projects_own_once_it_is_loaded(tmp_path: Path) -> None:
    root = project(tmp_path / "p", aiops_yaml="max_prune: 3\n")
    ws = Workspace(root=root, environ={})
    assert ws.settings == ProjectSettings(max_prune=3)
    loaded = Workspace(root=root, environ={})
    assert loaded.project.settings.max_prune == 3
    assert loaded.settings is loaded.project.settings


def test_the_log_patience_comes_from_aiops_yaml(tmp_path: Path) -> None:
    """How long log writes wait for a locked database was fixed at 120 s: a service with a
    tighter deadline (or a laptop with a slower disk) sets it in aiops.yaml."""
    root = project(tmp_path / "p", aiops_yaml="log_patience_s: 2.5\n")
    assert open_workspace(root).open_store()._patience.seconds == 2.5
    assert open_workspace(project(tmp_path / "q")).settings.log_patience_s == 120
