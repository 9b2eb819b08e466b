"""Every command works on the project at or above where it runs (or -C DIR), with the
database that project names; outside a project, a command that needs one says so, exits 1
and creates nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from aiops.cli import cli
from tests.fixtures_db import spec_data, write_project

NOT_A_PROJECT = ("Error: not an aiops project: no functions/, providers.yaml or aiops.yaml "
                 "here or above")


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize("args", [
    ["plan"], ["apply", "--auto-approve"], ["status"], ["logs", "greet"],
    ["run", "greet", "--input", "{}"], ["test"], ["validate"], ["db", "upgrade"],
    ["new", "greet"], ["import", "x.prompt"], ["watch"],
])
def test_outside_a_project_a_command_says_so_exits_1_and_creates_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    monkeypatch.delenv("AIOPS_DATABASE_URL", raising=False)
    here = tmp_path / "not-a-project"
    here.mkdir()
    (here / "x.prompt").write_text("---\nmodel: openai/gpt-4o-mini\n---\nHi\n", encoding="utf-8")
    monkeypatch.chdir(here)
    r = run(*args)
    assert r.exit_code == 1, r.output
    assert r.output.startswith(NOT_A_PROJECT), r.output
    assert sorted(p.name for p in here.iterdir()) == ["x.prompt"]  # no .aiops/, no functions/


def test_from_a_subfolder_status_is_the_projects(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # It listed every function as "no file": the files were looked for in functions/greet/.
    monkeypatch.delenv("AIOPS_DATABASE_URL", raising=False)
    monkeypatch.setenv("AIOPS_PROJECT", "test-project")
    root = write_project(tmp_path / "proj", [spec_data("greet")])
    assert run("apply", "-C", root, "--auto-approve").exit_code == 0
    monkeypatch.chdir(root / "functions" / "greet")
    r = run("status")
    assert r.exit_code == 0, r.output
    assert re.search(r"^greet +in sync", r.output, re.MULTILINE), r.output
    r = run("validate")
    assert r.exit_code == 0, r.output
    assert r.output.startswith("OK: 1 function(s) valid")
    assert not (root / "functions" / "greet" / ".aiops").exists()


def test_from_a_subfolder_new_writes_into_the_projects_functions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_project(tmp_path / "proj", [spec_data("greet")])
    monkeypatch.chdir(root / "functions")
    r = run("new", "hello")
    assert r.exit_code == 0, r.output
    assert (root / "functions" / "hello" / "function.yaml").is_file()
    assert not (root / "functions" / "functions").exists()


def test_logs_uses_the_database_aiops_yaml_names(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # `aiops logs` opened .aiops/aiops.db instead, and said the function did not exist.
    monkeypatch.delenv("AIOPS_DATABASE_URL", raising=False)
    monkeypatch.setenv("AIOPS_PROJECT", "test-project")
    root = write_project(tmp_path / "proj", [spec_data("greet")])
    (root / "aiops.yaml").write_text("database_url: sqlite:///state/ci.db\n", encoding="utf-8")
    assert run("apply", "-C", root, "--auto-approve").exit_code == 0
    assert (root / "state" / "ci.db").is_file()
    r = run("logs", "greet", "-C", root)
    assert (r.exit_code, r.output) == (0, "No executions of greet match.\n")
    assert not (root / ".aiops").exists()
