"""Who the actor is, which project owns what, how database URLs are spelled: small helpers.

Where the project and its database are: tests/unit/test_workspace.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def test_project_id_prefers_the_environment_then_aiops_yaml_then_a_derived_id(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    def identity(root: Path) -> Any:
        return Workspace(root=root).identity

    root = tmp_path / "prompts"
    (root / "sub").mkdir(parents=True)
    monkeypatch.setenv("AIOPS_PROJECT", "explicit")
    assert (identity(root).id, identity(root).source) == ("explicit", "AIOPS_PROJECT")
    monkeypatch.delenv("AIOPS_PROJECT")
    # No git remote: the folder's absolute path, which two folders never share; the folder's
    # name (what earlier releases used) is a former id, recognised as this project's.
    derived = identity(root)
    assert (derived.id, derived.source) == (str(root.resolve()), "the folder's path")
    assert derived.former == {"prompts": "the folder's name, the id earlier aiops releases "
                                         "derived"}
    # aiops.yaml's `project` (what `aiops init` writes) wins over the derived id.
    (root / "aiops.yaml").write_text("project: prompts-k3v9q2\n")
    explicit = identity(root)
    assert (explicit.id, explicit.source) == ("prompts-k3v9q2", "`project` in aiops.yaml")
    assert set(explicit.former) == {str(root.resolve()), "prompts"}
    monkeypatch.setenv("AIOPS_PROJECT", "from-env")
    assert identity(root).id == "from-env"
    monkeypatch.delenv("AIOPS_PROJECT")
    (root / "aiops.yaml").unlink()
    # A git remote: the remote, credentials stripped, and the folder inside the repository.
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "remote", "add", "origin",
                    "https://user:tok3n@github.com/acme/prompts.git"], check=True)
    assert (identity(root).id, identity(root).former) == ("github.com/acme/prompts", {})
    subprocess.run(["git", "-C", str(root), "remote", "set-url", "origin",
                    "git@github.com:acme/prompts.git"], check=True)
    assert identity(root).id == "github.com/acme/prompts"
    inside = identity(root / "sub")
    assert (inside.id, inside.source) == ("github.com/acme/prompts/sub",
                                          "the git remote and the project's folder")
    assert inside.former == {"github.com/acme/prompts": "the git remote alone, the id earlier "
                                                        "aiops releases derived"}


def test_a_derived_id_stays_within_its_column() -> None:
    from aiops.workspace import _bounded_id

    long = "/" + "d" * 400
    bounded = _bounded_id(long)
    assert len(bounded) == 300 and bounded.endswith("d" * 100)
    assert _bounded_id(long + "x") != bounded
    assert _bounded_id("/short/path") == "/short/path"
