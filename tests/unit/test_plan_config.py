"""Where the database is, who the actor is, which project owns what: small pure helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiops.config import database_url
from aiops.reconcile import parse_actor, project_id
from aiops.spec import ProjectSettings
from aiops.store import normalise_url, redact


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
