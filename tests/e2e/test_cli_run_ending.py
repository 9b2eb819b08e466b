"""How `aiops run` ends, single and batch, on real SQLite and PostgreSQL (`aiops.cli.ending`):
every close step tried and every failure reported (a database locked after the calls), a
signal that cancels a single run, an output that cannot be written, a stdout that is the
input, and provider messages that would drive the terminal.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aiops import commands
from aiops.cli import cli
from aiops.providers.mock_server import MockConfig
from aiops.store import open_store
from tests import fixtures_providers as runner_project
from tests.e2e.test_cli_batch import (
    AIOPS,
    GOOD,
    invoke,
    log_ids,
    make_project,
    read_output,
    reservations,
    write_lines,
)
from tests.fixtures_db import budget_leases
from tests.fixtures_providers import send_json, serve_http

ANSWER = {"id": "x", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
          "choices": [{"index": 0, "finish_reason": "stop", "message": {
              "role": "assistant", "content": '{"queue": "billing", "priority": 1}'}}],
          "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}


# --- a database locked after the calls -----------------------------------------------------


@pytest.fixture
def locker(db_url: str) -> Iterator[Callable[[], None]]:
    """`lock()`: another connection takes the write lock of the log and budget tables and
    keeps it to the end of the test (an `aiops apply`, a backup, a DBA's session)."""
    held: list[Any] = []
    guard = threading.Lock()

    def lock() -> None:
        with guard:
            if held:
                return
            if db_url.startswith("sqlite"):
                conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None,
                                       check_same_thread=False)
                conn.execute("BEGIN EXCLUSIVE")
            else:
                import psycopg

                conn = psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"))
                conn.execute("LOCK TABLE ai_function_logs, usage_counters, budget_leases IN "
                             "ACCESS EXCLUSIVE MODE")
            held.append(conn)

    yield lock
    for conn in held:
        conn.rollback()
        conn.close()


@pytest.mark.parametrize("mode", ["batch", "single"])
def test_a_database_locked_after_the_calls_reports_every_failure(
        tmp_path: Path, db_url: str, locker: Callable[[], None],
        monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """The calls succeed; then the log rows and the budget's settlement find the database
    locked. It used to exit 75 (the settlement's LockBusy) with no summary and the log
    error hidden; now every close step is tried, the results and the summary are printed,
    then both failures, and the exit code is 8 (delivered, not recorded)."""

    class LockThenAnswer(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            locker()
            send_json(self, 200, ANSWER)

        def log_message(self, *args: Any) -> None:
            pass

    open_runner = commands.open_runner

    def runner_with_short_waits(ws: Any, **kwargs: Any) -> Any:
        store = open_store(db_url, lock_timeout_s=0.2, patience_s=0.3)
        return open_runner(ws, actor=kwargs.get("actor"), store=store)

    monkeypatch.setattr(commands, "open_runner", runner_with_short_waits)
    with serve_http(LockThenAnswer) as url:
        root, env = make_project(tmp_path, db_url, url)
        out = tmp_path / "out.jsonl"
        if mode == "batch":
            batch = write_lines(tmp_path / "in.jsonl", [dict(GOOD, body=str(i)) for i in range(20)])
            result = invoke(root, env, "run", "budgeted", "--input-file", str(batch), "--output",
                            str(out), "--concurrency", "20")
        else:
            result = invoke(root, env, "run", "budgeted", "--input", json.dumps(GOOD))
    calls = 20 if mode == "batch" else 1
    assert result.exit_code == 8, result.output
    if mode == "batch":
        assert [e["line"] for e in read_output(out)] == list(range(1, 21))
        assert all(e["error"] is None for e in read_output(out))
        assert "ok 20, failed 0" in result.stderr
    else:
        assert json.loads(result.stdout)["queue"] == "billing"
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 2, result.stderr
    assert errors[0].startswith(f"Error: {calls} log row(s) could not be written: ")
    assert "locked" in errors[0]
    assert errors[1].startswith(f"Error: budgeted: the daily budget could not be settled "
                                f"({calls} call(s), $")
    assert "locked" in errors[1] and "released by the sweep 60 s after" in errors[1]
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


# --- a signal during a single run --------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_cancels_a_single_run_and_keeps_its_row(
        tmp_path: Path, db_url: str, mock_provider_factory: Any, sig: signal.Signals) -> None:
    """SIGTERM used to kill `aiops run` during its call: no log row, and its budget lease
    left reserved. Now either signal cancels the call: its row says so, the lease is given
    back, exit 128 + the signal's number."""
    mock = mock_provider_factory(MockConfig(latency_ms=30_000))
    root, env = make_project(tmp_path, db_url, mock.url, timeout_s=60)
    proc = subprocess.Popen([AIOPS, "run", "budgeted", "--input", json.dumps(GOOD), "-C",
                             str(root)], env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while mock.app.stats["requests"] < 1:  # the call is in flight
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig, err
    assert out == ""
    assert err.strip() == f"Interrupted by {sig.name}: the execution was cancelled"
    (row,) = open_store(db_url).recent_logs("budgeted", 10)
    assert row.status == "error" and "cancelled" in row.error["message"]
    assert all(calls == 0 and usd == pytest.approx(0, abs=1e-9)
               for calls, usd in reservations(db_url)), reservations(db_url)
    assert budget_leases(open_store(db_url)) == []


# --- an output that cannot be written ----------------------------------------------------------


def test_an_output_on_a_full_disk_is_one_line_and_the_rows_are_written(
        tmp_path: Path, db_url: str, mock_provider: Any) -> None:
    """`--output /dev/full` used to end in "internal error OSError" and asyncio's "Task
    exception was never retrieved"."""
    root, env = make_project(tmp_path, db_url, mock_provider.url)
    batch = write_lines(tmp_path / "in.jsonl", [dict(GOOD, body="b" * 2000)] * 20)
    proc = subprocess.run([AIOPS, "run", "budgeted", "--input-file", str(batch), "--output",
                           "/dev/full", "-C", str(root)], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "rror" in line]
    assert errors == ["Error: cannot write --output /dev/full: No space left on device"], \
        proc.stderr
    assert "ok 20, failed 0" in proc.stderr
    assert len(log_ids(db_url)) == 20


@pytest.mark.parametrize("mode", ["batch", "single"])
def test_a_stdout_on_a_full_disk_is_one_line(tmp_path: Path, mock_provider: Any,
                                             mode: str) -> None:
    db_url = f"sqlite:///{tmp_path / 'aiops.db'}"
    root, env = make_project(tmp_path, db_url, mock_provider.url)
    if mode == "batch":
        lines = write_lines(tmp_path / "in.jsonl", [dict(GOOD, body="b" * 2000)] * 20)
        args = ["--input-file", str(lines)]
    else:
        args = ["--input", json.dumps(GOOD)]
    with open("/dev/full", "w") as full:
        proc = subprocess.run([AIOPS, "run", "budgeted", *args, "-C", str(root)], stdout=full,
                              stderr=subprocess.PIPE, env={**os.environ, **env}, text=True,
                              timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "rror" in line or "xception" in line]
    assert errors == ["Error: cannot write to stdout: No space left on device"], proc.stderr
    assert len(log_ids(db_url)) == (20 if mode == "batch" else 1)


def test_a_stdout_that_is_the_input_file_is_refused(tmp_path: Path, mock_provider: Any) -> None:
    """`aiops run f --input-file in.jsonl >> in.jsonl` read its own results back as input
    and grew the file without end."""
    db_url = f"sqlite:///{tmp_path / 'aiops.db'}"
    root, env = make_project(tmp_path, db_url, mock_provider.url)
    batch = write_lines(tmp_path / "in.jsonl", [GOOD] * 3)
    before = batch.read_bytes()
    with batch.open("a") as append:
        proc = subprocess.run([AIOPS, "run", "budgeted", "--input-file", str(batch), "-C",
                               str(root)], stdout=append, stderr=subprocess.PIPE,
                              env={**os.environ, **env}, text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"Error: stdout is the input file {batch}")
    assert proc.stderr.count("\n") == 1
    assert batch.read_bytes() == before
    assert log_ids(db_url) == []


# --- messages that would drive the terminal ----------------------------------------------------

HOSTILE = "bad \x00 input \x1b[31mred\x1b[0m \x9b2J\r\nforged: line\x07"


class HostileErrors(BaseHTTPRequestHandler):
    """A custom backend whose every answer is an error whose message holds control
    characters: NUL, ESC sequences, a C1 CSI, CR LF, BEL."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        send_json(self, 400, {"error": {"message": HOSTILE}})

    def log_message(self, *args: Any) -> None:
        pass


def test_control_characters_in_a_provider_message_are_escaped(tmp_path: Path) -> None:
    """They used to reach stderr raw: an ESC sequence recoloured (or rewrote) the terminal.
    `color=True` stands for a terminal (click strips ESC sequences only when it is not)."""
    plain = dict(runner_project.CLASSIFY, name="plain", provider="internal",
                 model="house-model", fallbacks=[])
    root = runner_project.write(tmp_path / "proj", plain)
    db_url = f"sqlite:///{tmp_path / 'aiops.db'}"
    from tests.fixtures_db import apply_project

    apply_project(root, url=db_url, actor="ci <ci@example.com>")
    with serve_http(HostileErrors) as url:
        env = {**runner_project.env_for(url), "AIOPS_DATABASE_URL": db_url,
               "AIOPS_RATE_LIMIT_URL": ""}
        result = CliRunner().invoke(cli, ["run", "plain", "--input", json.dumps(GOOD), "-C",
                                          str(root)], env=env, color=True)
        table = CliRunner().invoke(cli, ["logs", "plain", "-C", str(root)], env=env,
                                   color=True)
    assert result.exit_code == 4, result.output
    escaped = r"\x1b[31mred\x1b[0m \x9b2J\r\nforged: line\x07"
    assert r"bad \x00 input " + escaped in result.stderr  # the row has U+FFFD for NUL
    for text in (result.stderr, table.stdout):
        assert escaped in text, text
        assert not any(c in text for c in "\x00\x1b\x9b\r\x07"), repr(text)
    assert result.stderr.count("\n") == 1  # one line: no forged second line
    assert len(table.stdout.splitlines()) == 2  # the header and one row
