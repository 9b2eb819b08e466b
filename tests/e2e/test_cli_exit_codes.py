"""Exit codes and messages of the whole command line: `--debug` keeps each error's code, a
broken pipe ends quietly (141) on every command that writes to stdout, and an option value
that cannot work is a usage error before anything runs, never "internal error ... report it"
(a table of hostile values per option, in the spirit of a small fuzz)."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aiops.cli import EXIT_BROKEN_PIPE, cli
from tests import fixtures_providers as runner_project
from tests.e2e.helpers import AIOPS
from tests.fixtures_db import apply_project

GOOD = '{"subject": "Charged twice", "body": "Refund please"}'


@pytest.fixture
def applied(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A project with `classify` applied to SQLite; its providers point at nothing (nothing
    here reaches a provider)."""
    root = runner_project.write(tmp_path / "proj", runner_project.CLASSIFY)
    url = f"sqlite:///{tmp_path / 'aiops.db'}"
    apply_project(root, url=url, actor="ci")
    (tmp_path / "in.jsonl").write_text(GOOD + "\n", encoding="utf-8")
    return root, {**runner_project.env_for("http://127.0.0.1:9"), "AIOPS_DATABASE_URL": url}


def invoke(applied: tuple[Path, dict[str, str]], *args: str | Path) -> Any:
    root, env = applied
    argv = [str(a).replace("PROJ", str(root)) for a in args]
    return CliRunner().invoke(cli, argv, env=env)


def log_rows(applied: tuple[Path, dict[str, str]]) -> int:
    result = invoke(applied, "logs", "classify", "-C", "PROJ", "--json", "--limit", "10000")
    return len(result.stdout.splitlines())


# --- --debug keeps the exit codes ----------------------------------------------------------


@pytest.mark.parametrize(("args", "code"), [
    (("run", "classify", "-C", "PROJ", "--input", "{}"), 3),  # InputError
    (("run", "classify", "-C", "PROJ"), 2),  # UsageError
    (("run", "clasify", "-C", "PROJ", "--input", GOOD), 1),  # NotFoundError
    (("logs", "classify", "-C", "PROJ", "--since", "yesterday"), 2),
])
def test_debug_prints_the_traceback_and_keeps_the_code(applied: Any, args: tuple[str, ...],
                                                       code: int) -> None:
    plain = invoke(applied, *args)
    debug = invoke(applied, "--debug", *args)
    assert plain.exit_code == debug.exit_code == code, debug.output
    assert "Traceback (most recent call last)" in debug.stderr
    assert "Traceback" not in plain.stderr
    last = [r.stderr.splitlines()[-1].split(" (log ")[0] for r in (plain, debug)]
    assert last[0] == last[1] and last[0].startswith("Error: ")


def test_debug_keeps_the_code_in_the_real_process(applied: Any) -> None:
    root, env = applied
    proc = subprocess.run([AIOPS, "--debug", "run", "classify", "-C", str(root), "--input",
                           "{}"], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 3 and "Traceback" in proc.stderr


# --- a broken pipe ends quietly -------------------------------------------------------------


def _with_closed_stdout(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run the real console script with a stdout whose reader is already gone."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([AIOPS, *args], stdout=write, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, **env}, timeout=120, check=False)
    finally:
        os.close(write)
    return proc.returncode, proc.stderr


def test_a_broken_pipe_ends_quietly_on_every_command_that_writes(applied: Any,
                                                                 tmp_path: Path) -> None:
    """Every write to stdout goes through one of two handlers: the command line's parsing
    (`--version`, `--help`) and the commands' (`LazyGroup.invoke`): one command of each kind
    of output (text, JSON, a saved plan, files then text, a batch's lines)."""
    root, env = applied
    p = str(root)
    commands = [
        ["--version"], ["plan", "--help"], ["validate", p], ["plan", "-C", p, "-o", "-"],
        ["status", "-C", p, "--json"], ["new", "other", "-C", p],
        ["run", "classify", "-C", p, "--input-file", str(tmp_path / "in.jsonl")],
    ]
    env = {**env, "AIOPS_OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda a: _with_closed_stdout(a, env), commands))
    for args, (code, stderr) in zip(commands, results, strict=True):
        assert code == EXIT_BROKEN_PIPE, (args, code, stderr)
        assert "Traceback" not in stderr and "Error" not in stderr, (args, stderr)


def test_plan_to_stdout_is_the_saved_plan(applied: Any, tmp_path: Path) -> None:
    """`-o -`: the saved plan on stdout (for `aiops apply`), the plan a person reads on
    stderr; `aiops plan -o - | head -c 10` is the broken pipe above."""
    result = invoke(applied, "plan", "-C", "PROJ", "-o", "-")
    assert result.exit_code == 0, result.output
    saved = tmp_path / "saved.json"
    saved.write_text(result.stdout, encoding="utf-8")
    assert json.loads(result.stdout)["format_version"] == 1
    assert result.stderr.startswith("No changes.")
    assert not (Path.cwd() / "-").exists()
    applied_again = invoke(applied, "apply", saved, "-C", "PROJ")
    assert applied_again.exit_code == 0, applied_again.output


# --- option values that cannot work: a usage error before anything runs --------------------


def test_missing_output_directory_is_a_usage_error_before_anything_runs(
        applied: Any, tmp_path: Path) -> None:
    before = log_rows(applied)
    result = invoke(applied, "run", "classify", "-C", "PROJ", "--input-file",
                    tmp_path / "in.jsonl", "--output", tmp_path / "no/such/dir/out.jsonl")
    assert result.exit_code == 2, result.output
    assert f"directory {tmp_path / 'no/such/dir'} does not exist" in result.stderr
    assert "internal error" not in result.stderr
    assert log_rows(applied) == before  # nothing ran


@pytest.mark.parametrize(("since", "message"), [
    ("999999999d", "at most 36500d back"),
    ("99999999999999999999999s", "at most 3153600000s back"),
    ("0001-01-01T00:00+14:00", "is out of range"),
    ("9999-12-31T23:59:59-14:00", "is out of range"),
])
def test_logs_since_out_of_range_names_the_bound(applied: Any, since: str,
                                                 message: str) -> None:
    result = invoke(applied, "logs", "classify", "-C", "PROJ", "--since", since)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "internal error" not in result.stderr


def _hostile(tmp: Path) -> list[tuple[str, ...]]:
    """Command lines whose one hostile value must be refused with a usage error (exit 2)."""
    tmp.mkdir()
    (tmp / "a-file").write_text("x", encoding="utf-8")
    (tmp / "a-dir").mkdir()
    missing, under_file = str(tmp / "no/such/dir/x"), str(tmp / "a-file/x")
    too_long, a_dir = str(tmp / ("n" * 300)), str(tmp / "a-dir")
    lines = str(tmp / "in.jsonl")
    cases: list[tuple[str, ...]] = []
    for bad in (missing, under_file, too_long, a_dir, ""):
        cases += [("plan", "-C", "PROJ", "-o", bad),
                  ("run", "classify", "-C", "PROJ", "--input-file", lines, "--output", bad)]
    for bad in (under_file, too_long, a_dir, ""):
        cases += [("test", "-C", "PROJ", "--junit-xml", bad),
                  ("test", "-C", "PROJ", "--markdown-out", bad)]
    for bad in (str(tmp / "a-file"), under_file, too_long, "/dev/null"):
        cases.append(("init", bad))
    for bad in ("/dev/zero", missing, a_dir, too_long):
        cases += [("run", "classify", "-C", "PROJ", "--input-file", bad),
                  ("apply", bad, "-C", "PROJ"), ("import", bad),
                  ("mock-provider", "--port", "0", "--responses", bad)]
    for bad in ("nan", "inf", "-1", "1e309", "86401"):
        cases.append(("apply", "-C", "PROJ", "--auto-approve", "--lock-timeout", bad))
    for option in ("--latency-ms", "--fault-rate", "--retry-after"):
        cases += [("mock-provider", "--port", "0", option, bad) for bad in ("nan", "inf")]
    cases.append(("mock-provider", "--port", "0", "--host", "x" * 100))  # IDNA refuses it
    for arg in ("run", "logs"):  # bytes the shell passed that are not UTF-8 (surrogateescape)
        cases.append((arg, "caf\udce9", "-C", "PROJ"))
    cases.append(("plan", "-C", "PROJ", "-o", str(tmp / "caf\udce9.json")))
    return cases


def test_hostile_option_values_are_usage_errors(applied: Any, tmp_path: Path) -> None:
    failures = []
    for args in _hostile(tmp_path / "h"):
        result = invoke(applied, *args)
        crashed = not isinstance(result.exception, SystemExit | None)
        if result.exit_code != 2 or "internal error" in result.output or crashed:
            failures.append((args, result.exit_code, result.output[-300:]))
    assert failures == []


def test_a_file_the_system_refuses_mid_way_is_not_an_internal_error(
        applied: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Disk full (or permissions changed) after the checks: the system's words, exit 1."""
    def full(self: Path, *args: Any, **kwargs: Any) -> int:
        raise OSError(28, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", full)
    result = invoke(applied, "plan", "-C", "PROJ", "-o", tmp_path / "plan.json")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {tmp_path / 'plan.json'}: No space left on device"
