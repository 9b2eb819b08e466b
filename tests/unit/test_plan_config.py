"""Who the actor is, which project owns what, how database URLs are spelled: small helpers.

Where the project and its database are: tests/unit/test_workspace.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiops.actors import parse_actor
from aiops.store.engine import normalise_url, redact
from aiops.workspace import Workspace


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

    def project_id(root: Path) -> str:
        return Workspace(root=root).project_id

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
