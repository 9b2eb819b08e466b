"""How the `aiops` process ends after `aiops run`: without the interpreter's teardown
(`aiops.cli.end_now`), once the run closed what it opened. Nothing that a normal exit would
deliver is lost: the output reaches stdout, the log row is in the database, the budget is
settled and its lease given back, the exit code is the run's, and the atexit handlers run.
The real console script in a subprocess, on real SQLite and PostgreSQL, against the mock.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from aiops.store import open_store
from tests import fixtures_providers as runner_project
from tests.e2e.test_cli_batch import (
    AIOPS,
    GOOD,
    invoke,
    make_project,
    read_output,
    reservations,
    write_lines,
)
from tests.fixtures_db import apply_project, budget_leases

# Registered in every `aiops` process of these tests (sitecustomize on PYTHONPATH): an atexit
# handler and a logging handler whose record is only written when logging shuts down, the
# two things a process that skips its teardown could lose.
SITECUSTOMIZE = """
import atexit, gc, logging, os, sys

_young = []  # with AIOPS_TEST_PROBE_GC: the new objects each collection pass looked at
if os.environ.get("AIOPS_TEST_PROBE_GC"):
    gc.callbacks.append(lambda phase, info: _young.append(gc.get_count()[0])
                        if phase == "start" else None)

class _AtShutdown(logging.Handler):
    def __init__(self):
        super().__init__()
        self.held = []
    def emit(self, record):
        self.held.append(record.getMessage())
    def flush(self):
        with open(os.environ["AIOPS_TEST_EXIT_MARK"], "a") as f:
            f.writelines(m + "\\n" for m in self.held)
        self.held.clear()

_handler = _AtShutdown()
logging.getLogger("exit-test").addHandler(_handler)
logging.getLogger("exit-test").warning("logging flushed at exit")

@atexit.register
def _mark():
    with open(os.environ["AIOPS_TEST_EXIT_MARK"], "a") as f:
        f.write("atexit ran\\n")
        probes = os.environ.get("AIOPS_TEST_PROBE_MODULES")
        if probes:  # which of these the process had loaded by its end
            loaded = [m for m in probes.split(",") if m in sys.modules]
            f.write("loaded: " + ",".join(loaded) + "\\n")
        if os.environ.get("AIOPS_TEST_PROBE_GC"):
            f.write(f"young: {max(_young, default=0)} {len(_young)}\\n")
    sys.stdout.write("")  # a handler may still write
"""


def run_cli(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[
        subprocess.CompletedProcess[str], list[str]]:
    """`aiops ARGS` with the atexit and logging probes; (the process, what they wrote)."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(textwrap.dedent(SITECUSTOMIZE), encoding="utf-8")
    mark = tmp_path / "exit-mark.txt"
    mark.unlink(missing_ok=True)
    full = {**os.environ, **env, "PYTHONPATH": str(site), "AIOPS_TEST_EXIT_MARK": str(mark)}
    full.pop("AIOPS_DEBUG", None)
    proc = subprocess.run([AIOPS, *args], env=full, capture_output=True, text=True,
                          timeout=120, check=False)
    lines = mark.read_text(encoding="utf-8").splitlines() if mark.exists() else []
    return proc, lines


def counters(db_url: str) -> list[tuple[int, float]]:
    with open_store(db_url).engine.connect() as conn:
        from sqlalchemy import text

        return [(r.calls_used, r.usd_spent) for r in conn.execute(
            text("SELECT calls_used, usd_spent FROM usage_counters"))]


def test_a_run_ends_with_its_row_written_its_budget_settled_and_atexit_run(
        tmp_path: Path, db_url: str, mock_provider: Any) -> None:
    root, env = make_project(tmp_path, db_url, mock_provider.url)
    proc, marks = run_cli(tmp_path, env, "run", "budgeted", "--input", json.dumps(GOOD), "-C",
                          str(root))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith("\n")
    (row,) = open_store(db_url).recent_logs("budgeted", 10)
    assert row.status == "ok" and row.output == json.loads(proc.stdout)
    assert set(row.output) == {"queue", "priority"}
    assert row.input == GOOD
    (used,) = counters(db_url)
    assert used[0] == 1 and used[1] > 0  # the call and its cost, settled
    assert all(calls == 0 and usd == pytest.approx(0, abs=1e-9)
               for calls, usd in reservations(db_url)), reservations(db_url)
    assert budget_leases(open_store(db_url)) == []  # given back, none left to the sweep
    assert sorted(marks) == ["atexit ran", "logging flushed at exit"]


@pytest.mark.parametrize("input_, code", [({"subject": "x"}, 3), (GOOD, 4)],
                         ids=["input-invalid", "provider-failed"])
def test_a_failed_run_keeps_its_exit_code_and_its_row(
        tmp_path: Path, db_url: str, mock_provider: Any, input_: dict[str, str],
        code: int) -> None:
    root, env = make_project(tmp_path, db_url, mock_provider.url)
    if code == 4:  # every call is refused (400, not retried): exit 4
        mock_provider.app.force_fault("bad_request")
    proc, marks = run_cli(tmp_path, env, "run", "budgeted", "--input", json.dumps(input_),
                          "-C", str(root))
    assert proc.returncode == code, proc.stderr
    assert proc.stdout == ""
    (row,) = open_store(db_url).recent_logs("budgeted", 10)
    assert row.status == "error" and row.error["exit_code"] == code
    assert proc.stderr.startswith("Error: ") and row.id in proc.stderr
    assert all(calls == 0 and usd == pytest.approx(0, abs=1e-9)
               for calls, usd in reservations(db_url)), reservations(db_url)
    assert sorted(marks) == ["atexit ran", "logging flushed at exit"]


def test_a_batch_ends_with_every_row_and_line_written(
        tmp_path: Path, db_url: str, mock_provider: Any) -> None:
    root, env = make_project(tmp_path, db_url, mock_provider.url)
    batch = write_lines(tmp_path / "in.jsonl", [dict(GOOD, body=str(i)) for i in range(30)])
    out = tmp_path / "out.jsonl"
    proc, marks = run_cli(tmp_path, env, "run", "budgeted", "--input-file", str(batch),
                          "--output", str(out), "-C", str(root))
    assert proc.returncode == 0, proc.stderr
    lines = read_output(out)
    assert [e["line"] for e in lines] == list(range(1, 31))
    rows = open_store(db_url).recent_logs("budgeted", 100)
    assert sorted(r.id for r in rows) == sorted(e["log_id"] for e in lines)
    assert budget_leases(open_store(db_url)) == []
    assert sorted(marks) == ["atexit ran", "logging flushed at exit"]


# Libraries a run loads only when its function's provider needs them. openai 3 is built on the
# httpx2 fork, openai<3 (the lowest versions CI tests) on httpx: the run loads the one its SDK uses.
# And what no run loads, whatever its provider: the database's other dialect, the migrations,
# and the store's parts that serve the API, the UI and the reconciler.
PROBES = ("openai", "groq", "httpx", "httpx2", "aiohttp", "sqlalchemy.dialects.postgresql",
          "alembic", "aiops.plan", "aiops.store.catalog", "aiops.store.tokens",
          "aiops.store.alerts", "aiops.monitoring.alerts", "aiops.store.sessions")
OPENAI_HTTP = "httpx2" if int(version("openai").split(".")[0]) >= 3 else "httpx"
NEEDS = {"openai": {"openai", OPENAI_HTTP, "aiohttp"}, "groq": {"groq", "httpx", "aiohttp"},
         "internal": {"aiohttp"}}
MODELS = {"openai": "gpt-4o-mini", "groq": "llama-3.1-8b-instant", "internal": "house-model"}


@pytest.mark.parametrize("provider", ["openai", "groq", "internal"])
def test_a_run_loads_only_its_providers_sdk(tmp_path: Path, mock_provider: Any,
                                            provider: str) -> None:
    """The openai and groq providers each load their own SDK (not the other's), the http
    one (`internal`) neither; a run on SQLite loads nothing of PostgreSQL's."""
    data = dict(runner_project.CLASSIFY, provider=provider, model=MODELS[provider],
                fallbacks=[])
    root = runner_project.write(tmp_path / "proj", data)
    url = f"sqlite:///{tmp_path / 'aiops.db'}"
    apply_project(root, url=url, actor="ci <ci@example.com>")
    env = {**runner_project.env_for(mock_provider.url), "AIOPS_DATABASE_URL": url,
           "AIOPS_RATE_LIMIT_URL": "", "AIOPS_TEST_PROBE_MODULES": ",".join(PROBES)}
    proc, marks = run_cli(tmp_path, env, "run", "classify", "--input", json.dumps(GOOD), "-C",
                          str(root))
    assert proc.returncode == 0, proc.stderr
    (loaded,) = [m.removeprefix("loaded: ") for m in marks if m.startswith("loaded:")]
    assert set(filter(None, loaded.split(","))) == NEEDS[provider]


def test_a_run_of_the_command_ends_without_a_pass_over_its_imports(
        tmp_path: Path, mock_provider: Any) -> None:
    """`aiops` (aiops.cli.main) ends the process with a single run: collection resumes
    without a pass over everything the run's imports allocated (~30 ms), so no pass looks at
    more new objects than about a threshold's worth (aiops.collector, `promote`)."""
    root, env = make_project(tmp_path, f"sqlite:///{tmp_path / 'aiops.db'}",
                             mock_provider.url)
    proc, marks = run_cli(tmp_path, {**env, "AIOPS_TEST_PROBE_GC": "1"}, "run", "classify",
                          "--input", json.dumps(GOOD), "-C", str(root))
    assert proc.returncode == 0, proc.stderr
    (young,) = [m.removeprefix("young: ").split() for m in marks if m.startswith("young:")]
    largest, passes = int(young[0]), int(young[1])
    assert passes > 0  # the probe saw the passes before the run paused collection
    assert largest < 10 * gc.get_threshold()[0], largest  # not the 100,000s of the imports


@pytest.mark.parametrize("input_, code", [(GOOD, 0), ({"subject": "x"}, 3)])
def test_a_run_in_process_leaves_the_garbage_collector_as_it_was(
        tmp_path: Path, mock_provider: Any, input_: dict[str, str], code: int) -> None:
    """A single run pauses the cyclic GC while it starts up and runs; an in-process caller
    (a test, an application driving the CLI) gets it back on, and off when it was off."""
    root, env = make_project(tmp_path, f"sqlite:///{tmp_path / 'aiops.db'}",
                             mock_provider.url)
    for enabled in (True, False):
        gc.enable() if enabled else gc.disable()
        try:
            result = invoke(root, env, "run", "budgeted", "--input", json.dumps(input_))
            assert result.exit_code == code, result.output
            assert gc.isenabled() is enabled
        finally:
            gc.enable()


# --- end_now itself ------------------------------------------------------------------------


# stdout buffered as a pipe or a file is by default (the test run may set PYTHONUNBUFFERED).
BUFFERED = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def ended(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """A Python process that runs `code` (with `end_now` imported) and exits normally after."""
    program = textwrap.dedent("""
        import atexit, sys, threading, time
        from aiops.cli import end_now
        atexit.register(lambda: print("atexit ran", file=sys.stderr))
    """) + textwrap.dedent(code) + "\nprint('returned', file=sys.stderr)\nsys.exit(9)\n"
    return subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=60, check=False, cwd=tmp_path, env=BUFFERED)


def test_end_now_flushes_what_is_buffered_and_keeps_the_code(tmp_path: Path) -> None:
    # stdout is a pipe: block-buffered, so this stays in the buffer until a flush.
    proc = ended("sys.stdout.write('x' * 100); end_now(5)", tmp_path)
    assert proc.returncode == 5
    assert proc.stdout == "x" * 100
    assert proc.stderr == "atexit ran\n"  # once, and it did not return


def test_end_now_with_no_code_is_success(tmp_path: Path) -> None:
    assert ended("end_now(None)", tmp_path).returncode == 0


def test_end_now_leaves_a_message_and_a_running_thread_to_the_normal_exit(
        tmp_path: Path) -> None:
    """A SystemExit("message") prints it and exits 1; a thread that is not a daemon is
    waited for. Both are the normal exit's: `end_now` returns and lets it happen."""
    proc = ended("end_now('a message')", tmp_path)
    assert proc.returncode == 9 and "returned" in proc.stderr
    proc = ended("""
        def work():
            time.sleep(0.3)
            print("thread finished", file=sys.stderr)
        threading.Thread(target=work).start()
        end_now(0)
    """, tmp_path)
    assert proc.returncode == 9
    assert proc.stderr.splitlines() == ["returned", "thread finished", "atexit ran"]


def test_end_now_returns_when_stdout_refuses_its_flush(tmp_path: Path) -> None:
    """A stdout that cannot take what is buffered (here: full) is the normal exit's to
    report: end_now returns rather than lose it silently."""
    with open("/dev/full", "w") as full:
        program = textwrap.dedent("""
            import sys
            from aiops.cli import end_now
            sys.stdout.write("x" * 100)
            end_now(0)
            print("returned", file=sys.stderr)
        """)
        proc = subprocess.run([sys.executable, "-c", program], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=60, check=False,
                              env=BUFFERED)
    assert "returned" in proc.stderr
    assert proc.returncode != 0  # the normal exit reports the lost output
