"""Where the database is, who the actor is, which project owns what: small pure helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiops.config import database_url
from aiops.reconcile import parse_actor, project_id
from aiops.spec import ProjectSettings
from aiops.store.engine import normalise_url, redact


def test_environment_wins_over_aiops_yaml_over_the_default(tmp_path: Path) -> None:
    settings = ProjectSettings(database_url="postgresql://from-yaml/db")
    env = {"AIOPS_DATABASE_URL": "postgresql://from-env/db"}
    assert database_url(tmp_path, settings, env) == "postgresql://from-env/db"
    assert database_url(tmp_path, settings, {}) == "postgresql://from-yaml/db"
    default = database_url(tmp_path, ProjectSettings(), {})
    assert default == f"sqlite:///{tmp_path.resolve()}/.aiops/aiops.db"
    assert (tmp_path / ".aiops").is_dir()  # created on first use


def test_postgres_urls_use_psycopg3_and_passwords_are_never_shown() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"
    assert "hunter2" not in redact("postgresql+psycopg://u:hunter2@h/db")


@pytest.mark.parametrize(("actor", "expected"), [
    ("Ada Lovelace <ada@example.org>", ("Ada Lovelace", "ada@example.org")),
    ("ada@example.org", ("ada@example.org", "ada@example.org")),
    ("ci-bot", ("ci-bot", None)),
    ("", ("unknown", None)),
])
def test_parse_actor(actor: str, expected: tuple[str, str | None]) -> None:
    assert parse_actor(actor) == expected


def test_project_id_prefers_the_environment_then_strips_credentials_from_the_remote(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    monkeypatch.setenv("AIOPS_PROJECT", "explicit")
    assert project_id(tmp_path) == "explicit"
    monkeypatch.delenv("AIOPS_PROJECT")
    assert project_id(tmp_path) == tmp_path.name
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin",
                    "https://user:tok3n@github.com/acme/prompts.git"], check=True)
    assert project_id(tmp_path) == "github.com/acme/prompts"
    subprocess.run(["git", "-C", str(tmp_path), "remote", "set-url", "origin",
                    "git@github.com:acme/prompts.git"], check=True)
    assert project_id(tmp_path) == "github.com/acme/prompts"


def test_a_relative_sqlite_path_in_aiops_yaml_is_relative_to_the_project(tmp_path: Path) -> None:
    # `aiops -C proj plan` and `cd proj && aiops plan` must use one database, not one per cwd.
    settings = ProjectSettings(database_url="sqlite:///state/ci.db?timeout=5")
    assert database_url(tmp_path, settings, {}) == (
        f"sqlite:///{tmp_path.resolve()}/state/ci.db?timeout=5")
    for url in ("sqlite:////abs/ci.db", "sqlite:///:memory:", "postgresql://h/db"):
        assert database_url(tmp_path, ProjectSettings(database_url=url), {}) == url


def test_the_default_database_is_the_projects_when_run_from_a_subdirectory(
        tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "providers.yaml").write_text("providers: {}\n", encoding="utf-8")
    sub = root / "functions" / "greet"
    sub.mkdir(parents=True)
    assert database_url(sub, None, {}) == f"sqlite:///{root.resolve()}/.aiops/aiops.db"
    assert not (sub / ".aiops").exists()  # no stray database next to the function
    # never above the repository's top, and a directory that is no project keeps its own
    lone = tmp_path / "lone" / "dir"
    lone.mkdir(parents=True)
    assert database_url(lone, None, {}) == f"sqlite:///{lone.resolve()}/.aiops/aiops.db"


def test_surrounding_whitespace_of_a_database_url_is_ignored(tmp_path: Path) -> None:
    # CI secrets often end with a newline: "db\n" is not a database anyone meant.
    env = {"AIOPS_DATABASE_URL": "postgresql://u@h/db\n"}
    assert database_url(tmp_path, None, env) == "postgresql://u@h/db"
    assert database_url(tmp_path, None, {"AIOPS_DATABASE_URL": "  \n"}).startswith("sqlite:///")
    settings = ProjectSettings(database_url=" postgresql://u@h/db ")
    assert database_url(tmp_path, settings, {}) == "postgresql://u@h/db"


def test_a_state_directory_that_cannot_be_created_is_a_config_error(tmp_path: Path) -> None:
    from aiops.errors import ConfigError

    (tmp_path / ".aiops").write_text("a file in the way", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\.aiops.*AIOPS_DATABASE_URL"):
        database_url(tmp_path, None, {})


def test_aiops_yaml_is_found_from_a_subdirectory_too(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # `aiops db upgrade` or `aiops run` from functions/greet/ must use the project's database,
    # the one its aiops.yaml names, not a default next to the current directory.
    from aiops.reconcile import project_database_url

    monkeypatch.delenv("AIOPS_DATABASE_URL", raising=False)
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "aiops.yaml").write_text("database_url: sqlite:///state/x.db\n", encoding="utf-8")
    sub = root / "functions" / "greet"
    sub.mkdir(parents=True)
    assert project_database_url(sub) == f"sqlite:///{root.resolve()}/state/x.db"
    assert project_database_url(root) == f"sqlite:///{root.resolve()}/state/x.db"
