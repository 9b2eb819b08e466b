"""`aiops watch`: the loop over an injected change stream, and once over real file events."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from aiops import commands
from aiops.cli import cli
from aiops.workspace import Workspace
from tests.fixtures_db import current_versions, spec_data, write_function, write_project


def test_watch_loop_applies_reports_and_does_not_retry_an_unchanged_failure(
        project: Path, db_url: str) -> None:
    write_project(project, [spec_data()])
    path = str(project / "functions" / "greet" / "function.yaml")
    seen: list[str] = []

    def changes() -> Iterator[list[str]]:
        write_function(project, spec_data(version="1.1.0", model="mock-large"))
        yield [path]
        (project / "functions" / "greet" / "function.yaml").write_text("name: [broken\n")
        yield [path]
        yield [path]  # the same broken bytes again (an editor touching the file): no retry
        yield [str(project / "README.md")]  # outside functions/ and providers.yaml
        write_function(project, spec_data(version="1.2.0", model="mock-small"))
        yield [path, path]

        yield []  # a quiet tick, nothing changed: no pass

    passes = commands.watch(commands.open_workspace(project), changes(), seen.append)
    assert passes == 4
    assert seen[0] == "Applied: 1 to create"
    assert seen[1] == "Applied: 1 new version"
    assert seen[2].startswith("Error: 1 error(s):\nfunctions/greet/function.yaml:2:1: error")
    assert seen[3] == "Applied: 1 new version"
    assert current_versions(db_url) == {"greet": ("active", "1.2.0")}


def test_watch_loop_reports_one_pass_per_batch_even_if_files_change_during_a_pass(
        tmp_path: Path) -> None:
    write_project(tmp_path, [spec_data()])
    path = tmp_path / "functions" / "greet" / "function.yaml"
    calls: list[int] = []

    def reconcile_pass() -> str:
        calls.append(len(calls))
        if len(calls) == 2:  # a save lands while this pass runs
            write_function(tmp_path, spec_data(description="during the pass"))
        return f"pass {len(calls)}"

    def changes() -> Iterator[list[str]]:
        write_function(tmp_path, spec_data(description="edit"))
        yield [str(path)]
        yield [str(path)]  # watchfiles hands over what changed meanwhile: one more pass

    seen: list[str] = []
    assert commands.watch(Workspace(root=tmp_path), changes(), seen.append,
                          reconcile=reconcile_pass) == 3
    assert seen == ["pass 1", "pass 2", "pass 3"]


def test_watch_command_exits_cleanly_on_ctrl_c(project: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    write_project(project, [spec_data()])

    def interrupted(ws: Workspace, stop: object = None) -> Iterator[list[str]]:
        raise KeyboardInterrupt
        yield []  # pragma: no cover

    monkeypatch.setattr(commands, "file_changes", interrupted)
    result = CliRunner().invoke(cli, ["watch", "-C", str(project)])
    assert result.exit_code == 0, result.output
    assert "Applied: 1 to create" in result.output
    assert result.output.rstrip().endswith("Stopped.")


def test_an_edit_before_the_watcher_started_is_caught_by_a_tick(tmp_path: Path) -> None:
    write_project(tmp_path, [spec_data()])
    seen: list[str] = []

    def reconcile_pass() -> str:
        if not seen:  # saved while the first pass ran, before any watcher could see it
            write_function(tmp_path, spec_data(description="early edit"))
        return f"pass {len(seen) + 1}"

    passes = commands.watch(Workspace(root=tmp_path), iter([[], []]), seen.append,
                            reconcile=reconcile_pass)
    assert (passes, seen) == (2, ["pass 1", "pass 2"])


def test_real_file_events_trigger_a_pass(project: Path, db_url: str) -> None:
    write_project(project, [spec_data()])
    stop = threading.Event()
    seen: list[str] = []
    ws = commands.open_workspace(project)
    loop = threading.Thread(target=commands.watch,
                            args=(ws, commands.file_changes(ws, stop), seen.append))
    loop.start()
    try:
        deadline = time.monotonic() + 20
        while not seen:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)  # let the watcher start before editing
        write_function(project, spec_data(version="1.1.0", model="mock-large"))
        while len(seen) < 2:
            assert time.monotonic() < deadline, seen
            time.sleep(0.05)
    finally:
        stop.set()
        loop.join(10)
    assert seen[:2] == ["Applied: 1 to create", "Applied: 1 new version"]
    assert current_versions(db_url) == {"greet": ("active", "1.1.0")}


def test_watch_loop_retries_a_database_failure_on_the_next_tick(tmp_path: Path) -> None:
    # A busy lock or a database that is briefly down is not the files' fault: the next quiet
    # tick retries (reporting the same error once), instead of waiting for a file to change.
    from aiops.errors import LockBusy

    write_project(tmp_path, [spec_data()])
    outcomes: list[Exception | str] = [LockBusy("busy"), LockBusy("busy"), "applied"]

    def reconcile_pass() -> str:
        out = outcomes.pop(0)
        if isinstance(out, Exception):
            raise out
        return out

    seen: list[str] = []
    passes = commands.watch(Workspace(root=tmp_path), iter([[], [], [], []]), seen.append,
                            reconcile=reconcile_pass)
    assert passes == 3
    assert seen == ["Error: busy", "applied"]
