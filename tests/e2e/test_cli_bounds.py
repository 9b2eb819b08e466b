"""Every file aiops reads is bounded before it is read (issue 9): a FIFO does not hang
`validate`, `/dev/zero` or a 3 GiB file does not exhaust memory, a link out of the project is
not followed, and each is a located one-line error, through the real console script.

The commands run in a subprocess with their address space capped (RLIMIT_AS), so that a
reader that reads too much fails fast with MemoryError instead of taking the machine's memory,
and with a timeout, so that a reader that blocks fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aiops.sources import read_revision
from tests import fixtures_providers as runner_project
from tests.e2e.helpers import copy_examples, git
from tests.fixtures_db import apply_project

AIOPS = str(Path(sys.executable).parent / "aiops")
CAP = 800 << 20  # address space of the command: a bounded read fits, a 1 GiB one does not
HUGE = 3 << 30  # a sparse file: instant to make, far over any bound and over CAP


def capped(*args: str | Path, cwd: Path, env: dict[str, str] | None = None,
           stdin: Any = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))

    full = {**os.environ, **(env or {})}
    full.pop("AIOPS_DEBUG", None)
    return subprocess.run([AIOPS, *map(str, args)], cwd=cwd, env=full, stdin=stdin,
                          capture_output=True, text=True, timeout=timeout, check=False,
                          preexec_fn=limit)


@pytest.fixture
def project(tmp_path: Path, repo_root: Path) -> Path:
    return copy_examples(tmp_path / "project", repo_root)


def _sparse(path: Path, size: int = HUGE) -> None:
    with path.open("wb") as handle:
        handle.truncate(size)


SECRET = "sk-outside-the-project-0123456789"


def _make(kind: str, path: Path, outside: Path) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "huge":
        _sparse(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "dangling":
        path.symlink_to(outside / "nothing-here.yaml")
    elif kind == "outside":
        # A valid function file whose text holds a secret: it must not be read at all.
        target = outside / "function.yaml"
        target.write_text(f"apiVersion: aiops/v1\nname: fresh\nversion: 1.0.0\n"
                          f"description: {SECRET}\nprovider: openai\nmodel: gpt-4o-mini\n"
                          "prompt: [{role: user, content: hi}]\ninput_schema: {type: object}\n")
        path.symlink_to(target)


KINDS = {"fifo": "is a FIFO (named pipe), not a regular file",
         "dev-zero": "is a symlink to /dev/zero, outside the project directory",
         "huge": f"is {HUGE} bytes, over the 1 MiB bound",
         "directory": "is a directory, not a regular file",
         "dangling": "which does not exist",
         "outside": "outside the project directory"}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_validate_refuses_a_function_file_it_must_not_read(project: Path, tmp_path: Path,
                                                            kind: str) -> None:
    (project / "functions/fresh").mkdir()
    _make(kind, project / "functions/fresh/function.yaml", tmp_path)
    result = capped("validate", ".", cwd=project)
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = [x for x in result.stdout.splitlines() if "fresh" in x]
    assert line.startswith("functions/fresh/function.yaml: error: ") and KINDS[kind] in line
    assert "fix:" in line
    # The two warnings: the example's alert rules notify nobody.
    assert result.stdout.strip().endswith("1 error(s), 2 warning(s) in 5 function(s).")
    assert SECRET not in result.stdout + result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["providers.yaml", "aiops.yaml"])
def test_a_fifo_for_a_project_file_is_an_error_in_validate_and_plan(project: Path,
                                                                    name: str) -> None:
    (project / name).unlink(missing_ok=True)
    os.mkfifo(project / name)
    result = capped("validate", ".", cwd=project)
    assert result.returncode == 1
    assert f"{name}: error: is a FIFO (named pipe), not a regular file" in result.stdout
    result = capped("plan", cwd=project, env={"AIOPS_DATABASE_URL": f"sqlite:///{project}/x.db"})
    assert result.returncode == 1 and "FIFO" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_the_base_revision_is_read_within_the_same_bounds(project: Path, tmp_path: Path) -> None:
    git(project, "init", "-q", "-b", "main")
    (project / "functions/linked").mkdir()
    (project / "functions/linked/function.yaml").symlink_to("/etc/hostname")
    (project / "functions/inner").mkdir()  # a link inside the repository is followed
    (project / "functions/inner/function.yaml").symlink_to("../translate/function.yaml")
    (project / "functions/big").mkdir()
    (project / "functions/big/function.yaml").write_bytes(b"a: " + b"x" * (2 << 20))
    git(project, "add", ".")
    git(project, "commit", "-qm", "base")
    files = read_revision(project, "main")
    assert "outside the repository" in str(files["functions/linked/function.yaml"])
    assert files["functions/inner/function.yaml"] == (
        project / "functions/translate/function.yaml").read_bytes()
    assert "over the 1 MiB bound" in str(files["functions/big/function.yaml"])
    result = capped("validate", ".", "--base", "main", cwd=project)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


# --- files named on the command line -------------------------------------------------------


@pytest.fixture
def run_project(tmp_path: Path, mock_provider: Any) -> tuple[Path, dict[str, str]]:
    root = runner_project.write(tmp_path / "proj", dict(runner_project.CLASSIFY,
                                                        fallbacks=[]))
    url = f"sqlite:///{tmp_path / 'aiops.db'}"
    apply_project(root, url=url, actor="ci <ci@example.com>")
    return root, {**runner_project.env_for(mock_provider.url), "AIOPS_DATABASE_URL": url}


def test_an_input_file_is_bounded_and_must_be_a_file(run_project: Any, tmp_path: Path) -> None:
    root, env = run_project
    _sparse(tmp_path / "huge.json")
    for source, message in (("@/dev/zero", "over 64 MiB, the bound on an input's text"),
                            (f"@{tmp_path / 'huge.json'}", "over 64 MiB"),
                            (f"@{tmp_path}", "it is a directory")):
        result = capped("run", "classify", "--input", source, cwd=root, env=env)
        assert result.returncode == 3, result.stderr
        assert message in result.stderr and result.stderr.count("\n") == 1
    with open("/dev/zero", "rb") as zero:
        result = capped("run", "classify", "--input", "-", cwd=root, env=env, stdin=zero)
    assert result.returncode == 3 and "stdin is over 64 MiB" in result.stderr


def test_a_batch_line_over_the_bound_is_one_error_and_the_others_run(run_project: Any,
                                                                     tmp_path: Path) -> None:
    root, env = run_project
    batch = tmp_path / "batch.jsonl"
    good = b'{"subject": "s", "body": "b"}\n'
    with batch.open("wb") as handle:
        handle.write(good)
        handle.seek(len(good) + (1 << 30))  # a 1 GiB line of NUL bytes, sparse
        handle.write(b"\n" + good)
    result = capped("run", "classify", "--input-file", batch, cwd=root, env=env, timeout=90)
    assert result.returncode == 3, result.stderr
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x["line"] for x in lines] == [1, 2, 3]
    assert lines[0]["error"] is None and lines[2]["error"] is None
    assert lines[1]["error"]["message"].startswith("line 2 is over 64 MiB")


def test_a_saved_plan_an_import_and_mock_responses_are_bounded(project: Path,
                                                               tmp_path: Path) -> None:
    _sparse(tmp_path / "plan.json")
    result = capped("apply", tmp_path / "plan.json", cwd=project)
    assert result.returncode == 2 and "is over 256 MiB" in result.stderr
    for plan in ("/dev/zero", tmp_path / "fifo"):  # refused unread: a FIFO is never opened
        if plan != "/dev/zero":
            os.mkfifo(plan)
        result = capped("apply", plan, cwd=project)
        assert result.returncode == 2 and "not a regular file" in result.stderr
    for command in (("import", "/dev/zero", "--stdout"), ("mock-provider", "--responses",
                                                          "/dev/zero")):
        result = capped(*command, cwd=project)
        assert result.returncode == 2 and "not a regular file" in result.stderr
    _sparse(tmp_path / "huge.prompt")
    result = capped("import", tmp_path / "huge.prompt", "--stdout", cwd=project)
    assert result.returncode == 2 and "is 3221225472 bytes, over the 1 MiB bound" in \
        result.stderr
    (tmp_path / "responses.yaml").write_text("responses:\n- {match: {}, match: {}}\n")
    result = capped("mock-provider", "--responses", tmp_path / "responses.yaml", cwd=project)
    assert result.returncode == 2 and "responses.yaml:2: duplicate key `match`" in result.stderr
    assert "Traceback" not in result.stderr
