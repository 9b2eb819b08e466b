"""`aiops run --input-file` on real SQLite and PostgreSQL: nothing lost (issue 9).

Every execution that ran has exactly one log row and every finished result is in the output,
whatever the database refuses; a log failure is reported after the output, with exit 8;
SIGINT and SIGTERM stop the batch cleanly (a real subprocess against the mock provider).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import text

from aiops.cli import cli
from aiops.cli.batch import DRAIN_S, run_batch
from aiops.providers.mock_server import MockConfig
from aiops.store import open_store
from aiops.store.logrows import spool_folder
from aiops.workspace import open_workspace
from tests import fixtures_providers as runner_project
from tests.fixtures_db import apply_project, budget_leases, held_lock
from tests.fixtures_providers import answering, open_runner

AIOPS = str(Path(sys.executable).parent / "aiops")
GOOD = {"subject": "Charged twice", "body": "Refund please"}
BUDGETED = dict(runner_project.CLASSIFY, name="budgeted", fallbacks=[],
                limits={"daily_calls": 100000, "daily_budget_usd": 100.0})


def make_project(tmp_path: Path, db_url: str, base_url: str,
                 timeout_s: float | None = None) -> tuple[Path, dict[str, str]]:
    root = runner_project.write(tmp_path / "proj", runner_project.CLASSIFY, BUDGETED)
    if timeout_s is not None:  # calls slower than the fixture's short timeout
        providers = yaml.safe_load((root / "providers.yaml").read_text(encoding="utf-8"))
        providers["providers"]["openai"]["timeout_s"] = timeout_s
        (root / "providers.yaml").write_text(yaml.safe_dump(providers), encoding="utf-8")
    open_store(db_url, migrate=True)
    apply_project(root, url=db_url, actor="ci <ci@example.com>")
    env = {**runner_project.env_for(base_url), "AIOPS_DATABASE_URL": db_url,
           "AIOPS_RATE_LIMIT_URL": ""}
    return root, env


def invoke(root: Path, env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(cli, [*args, "-C", str(root)], env=env)


def write_lines(path: Path, values: list[Any]) -> Path:
    path.write_text("".join(v if isinstance(v, str) else json.dumps(v) + "\n" for v in values),
                    encoding="utf-8")
    return path


def read_output(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def log_ids(db_url: str) -> list[str]:
    with open_store(db_url).engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM ai_function_logs")).scalars()
        return [str(uuid.UUID(str(i))) for i in ids]  # SQLite keeps them as bare hex


def refuse_rows(db_url: str, when: str | None) -> None:
    """A trigger that refuses log rows (all, or those whose input mentions `when`)."""
    engine = open_store(db_url).engine
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            cond = f"WHEN NEW.input LIKE '%{when}%' " if when else ""
            conn.execute(text(f"CREATE TRIGGER refuse BEFORE INSERT ON ai_function_logs {cond}"
                              "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"))
            return
        cond = f"NEW.input::text LIKE '%{when}%'" if when else "true"
        conn.execute(text("CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF " + cond +
                          " THEN RAISE EXCEPTION 'refused by a trigger'; END IF; RETURN NEW; "
                          "END $$ LANGUAGE plpgsql"))
        conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON ai_function_logs FOR EACH ROW "
                          "EXECUTE FUNCTION refuse()"))


def test_rows_the_database_refuses_lose_no_row_and_no_line(tmp_path: Path, db_url: str,
                                                           mock_provider: Any) -> None:
    """U+0000 in one input and a row a trigger refuses (and a lone surrogate, refused as an
    input error): on PostgreSQL 58 of 101 rows used to be lost, with output lines pointing
    at them."""
    root, env = make_project(tmp_path, db_url, mock_provider.url)
    refuse_rows(db_url, "poison")
    values: list[Any] = [dict(GOOD, body=f"b{i}") for i in range(101)]
    values[29] = '{"subject": "nul", "body": "a\\u0000b"}\n'
    values[59] = '{"subject": "surrogate", "body": "a\\ud800b"}\n'
    values[79] = dict(GOOD, body="poison")
    batch = write_lines(tmp_path / "in.jsonl", values)
    out = tmp_path / "out.jsonl"
    result = invoke(root, env, "run", "classify", "--input-file", str(batch), "--output",
                    str(out), "--concurrency", "16")
    lines = read_output(out)
    assert [e["line"] for e in lines] == list(range(1, 102))
    # A lone surrogate is refused as the input error it is, before anything runs: no row.
    failed = {e["line"]: e["error"]["type"] for e in lines if e["error"]}
    assert failed == {60: "InputError"} and result.exit_code == 3, result.output
    assert lines[59]["log_id"] is None
    assert sorted(log_ids(db_url)) == sorted(e["log_id"] for e in lines if e["log_id"])
    alone = next(r for r in open_store(db_url).recent_logs("classify", 200)
                 if r.id == lines[79]["log_id"])
    assert "refused by a trigger" in alone.input["_omitted"] and alone.status == "ok"
    assert f"Warning: log row {lines[79]['log_id']} was stored without" in result.stderr


# An OpenAI-compatible answer reporting 10^30 tokens.
HUGE_USAGE = json.dumps({
    "id": "x", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": '{"queue": "billing", "priority": 1}'}}],
    "usage": {"prompt_tokens": 10**30, "completion_tokens": 10**30,
              "total_tokens": 2 * 10**30}}).encode()


def test_a_provider_reporting_absurd_usage_loses_no_row(tmp_path: Path, db_url: str) -> None:
    """On SQLite, 157 of 300 rows were lost to a provider reporting 10^30 tokens."""
    with answering(HUGE_USAGE) as url:
        root, env = make_project(tmp_path, db_url, url)
        batch = write_lines(tmp_path / "in.jsonl", [dict(GOOD, body=str(i)) for i in range(60)])
        out = tmp_path / "out.jsonl"
        invoke(root, env, "run", "classify", "--input-file", str(batch), "--output", str(out),
               "--concurrency", "8")
    lines = read_output(out)
    assert [e["line"] for e in lines] == list(range(1, 61))
    assert sorted(log_ids(db_url)) == sorted(e["log_id"] for e in lines)


def test_the_output_is_complete_when_no_log_row_can_be_written(tmp_path: Path, db_url: str,
                                                               mock_provider: Any) -> None:
    root, env = make_project(tmp_path, db_url, mock_provider.url)
    refuse_rows(db_url, None)
    batch = write_lines(tmp_path / "in.jsonl", [dict(GOOD, body=str(i)) for i in range(41)])
    out = tmp_path / "out.jsonl"
    result = invoke(root, env, "run", "classify", "--input-file", str(batch), "--output",
                    str(out), "--concurrency", "8")
    assert result.exit_code == 8, result.output
    lines = read_output(out)
    assert [e["line"] for e in lines] == list(range(1, 42))
    assert all(e["error"] is None and e["output"]["queue"] for e in lines)
    assert "Error: 41 log row(s) could not be written" in result.stderr
    assert "refused by a trigger" in result.stderr and "function file" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_single_run_prints_its_output_when_its_log_row_cannot_be_written(
        tmp_path: Path, db_url: str, mock_provider: Any) -> None:
    root, env = make_project(tmp_path, db_url, mock_provider.url)
    refuse_rows(db_url, None)
    result = invoke(root, env, "run", "classify", "--input", json.dumps(GOOD))
    assert result.exit_code == 8, result.output
    assert json.loads(result.stdout)["queue"] in ("billing", "technical", "other")
    assert result.stderr.startswith("Error: 1 log row(s) could not be written")
    assert "refused by a trigger" in result.stderr


def test_rows_locked_out_past_the_patience_are_written_by_the_next_run(
        tmp_path: Path, db_url: str, mock_provider: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A database locked for longer than the patience used to lose every row of the batch;
    now the batch exits 8 saying where its rows wait, and the next `aiops run` writes them."""
    root, env = make_project(tmp_path, db_url, mock_provider.url)
    pending = open_workspace(root).pending_logs
    store = open_store(db_url, patience_s=0.3, pending_logs=pending)
    runner = open_runner(root, env=env, store=store, actor="ci")
    batch = write_lines(tmp_path / "in.jsonl", [dict(GOOD, body=str(i)) for i in range(20)])
    out = tmp_path / "out.jsonl"
    with held_lock(db_url, "ai_function_logs", most_s=5.0):
        code = asyncio.run(run_batch(runner, "classify", batch, out, 4))
    err = capsys.readouterr().err
    assert code == 8, err
    assert "Error: 20 log row(s) could not be written" in err
    assert f"saved to {spool_folder(pending, db_url)}" in err
    assert "the next `aiops run` or `aiops apply` of this project writes them" in err
    lines = read_output(out)
    assert len(lines) == 20 and all(e["error"] is None for e in lines)
    assert not log_ids(db_url)
    result = invoke(root, env, "run", "classify", "--input", json.dumps(GOOD))
    assert result.exit_code == 0, result.output
    written = log_ids(db_url)
    assert len(written) == 21 and {e["log_id"] for e in lines} <= set(written)
    assert not list(pending.glob("*/*.jsonl"))


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink", "relative"])
def test_an_output_that_is_the_input_is_refused(tmp_path: Path, mock_provider: Any,
                                                link: str) -> None:
    """It used to empty the input and exit 0."""
    db_url = f"sqlite:///{tmp_path / 'aiops.db'}"
    root, env = make_project(tmp_path, db_url, mock_provider.url)
    batch = write_lines(tmp_path / "in.jsonl", [GOOD, GOOD])
    before = batch.read_bytes()
    output = {"same": batch, "relative": tmp_path / "." / "sub" / ".." / "in.jsonl",
              "symlink": tmp_path / "link.jsonl", "hardlink": tmp_path / "hard.jsonl"}[link]
    (tmp_path / "sub").mkdir()
    if link == "symlink":
        output.symlink_to(batch)
    elif link == "hardlink":
        os.link(batch, output)
    result = invoke(root, env, "run", "classify", "--input-file", str(batch), "--output",
                    str(output))
    assert result.exit_code == 2, result.output
    assert "is the input file" in result.stderr and result.stderr.count("\n") == 1
    assert batch.read_bytes() == before
    assert log_ids(db_url) == []


# --- signals ----------------------------------------------------------------------------------


def slow_batch(tmp_path: Path, mock_provider_factory: Any, db_url: str, *, latency_ms: float,
               total: int, concurrency: int) -> tuple[Any, subprocess.Popen[str], Path]:
    """`aiops run budgeted` over `total` lines in a subprocess, against a mock answering after
    `latency_ms`: (the mock, the process, its output file)."""
    mock = mock_provider_factory(MockConfig(latency_ms=latency_ms))
    root, env = make_project(tmp_path, db_url, mock.url, timeout_s=60)
    batch = write_lines(tmp_path / "in.jsonl", [dict(GOOD, body=str(i)) for i in range(total)])
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        [AIOPS, "run", "budgeted", "--input-file", str(batch), "--output", str(out),
         "--concurrency", str(concurrency), "-C", str(root)],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return mock, proc, out


def wait_for_rows(db_url: str, at_least: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while len(log_ids(db_url)) < at_least:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.05)


def reservations(db_url: str) -> list[tuple[int, float]]:
    with open_store(db_url).engine.connect() as conn:
        return [(r.calls_reserved, r.usd_reserved) for r in conn.execute(
            text("SELECT calls_reserved, usd_reserved FROM usage_counters"))]


def check_consistent(db_url: str, out: Path, total: int) -> list[dict[str, Any]]:
    """One row per line that ran, a line for every row, lines a prefix of the file, no
    budget reservation or lease left behind."""
    lines = read_output(out)
    assert 0 < len(lines) < total
    assert [e["line"] for e in lines] == list(range(1, len(lines) + 1))
    assert sorted(log_ids(db_url)) == sorted(e["log_id"] for e in lines)
    assert all(calls == 0 and usd == pytest.approx(0, abs=1e-9)
               for calls, usd in reservations(db_url)), reservations(db_url)
    assert budget_leases(open_store(db_url)) == []  # every lease given back, none to sweep
    return lines


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_batch_and_loses_nothing(tmp_path: Path, db_url: str,
                                                    mock_provider_factory: Any,
                                                    sig: signal.Signals) -> None:
    """Intake stops, the calls in flight finish (400 ms, within the drain bound), their rows
    and lines are written, and no reservation is left (SIGTERM used to kill the process and
    leave them reserved; SIGINT cancelled the calls and dropped their lines)."""
    _, proc, out = slow_batch(tmp_path, mock_provider_factory, db_url, latency_ms=400,
                              total=200, concurrency=4)
    wait_for_rows(db_url, 4, proc)
    proc.send_signal(sig)
    started = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < DRAIN_S + 3, err
    assert proc.returncode == 128 + sig, err
    lines = check_consistent(db_url, out, 200)
    assert all(e["error"] is None for e in lines)  # finished, not cancelled
    assert f"Interrupted by {sig.name}: lines from {len(lines) + 1} on were not run" in err


def test_a_second_signal_cancels_the_calls_in_flight_and_keeps_their_rows(
        tmp_path: Path, mock_provider_factory: Any) -> None:
    db_url = f"sqlite:///{tmp_path / 'aiops.db'}"
    _, proc, out = slow_batch(tmp_path, mock_provider_factory, db_url, latency_ms=3000,
                              total=20, concurrency=4)
    wait_for_rows(db_url, 4, proc)  # the first four finished; four more are in flight
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, err
    lines = check_consistent(db_url, out, 20)
    assert len(lines) == 8 and all(e["error"] is None for e in lines[:4])
    # cancelled, not finished (they had 2.7 s to go, within the 5 s the first signal gives)
    assert all("cancelled" in e["error"]["message"] for e in lines[4:]), lines[4:]


def test_calls_still_in_flight_after_the_drain_bound_are_cancelled(
        tmp_path: Path, mock_provider_factory: Any) -> None:
    db_url = f"sqlite:///{tmp_path / 'aiops.db'}"
    mock, proc, out = slow_batch(tmp_path, mock_provider_factory, db_url, latency_ms=30_000,
                                 total=20, concurrency=3)
    deadline = time.monotonic() + 60
    while mock.app.stats["requests"] < 3:  # three calls in flight
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert DRAIN_S - 0.5 < time.monotonic() - started < DRAIN_S + 4, err
    assert proc.returncode == 130, err
    lines = check_consistent(db_url, out, 20)
    assert len(lines) == 3 and all("cancelled" in e["error"]["message"] for e in lines)
