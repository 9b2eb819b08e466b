"""`aiops run`, `aiops logs` and `aiops mock-provider` through the CLI: output on stdout,
documented exit codes, one-line errors with the log id, batches in input order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from aiops.cli import cli
from aiops.providers.mock_server import MockConfig, MockServer
from tests import fixtures_providers as runner_project
from tests.e2e.helpers import aiops
from tests.fixtures_db import apply_project

GOOD = '{"subject": "Charged twice", "body": "Refund please"}'


@pytest.fixture
def project(tmp_path: Path, mock_provider: MockServer) -> tuple[Path, dict[str, str]]:
    limited = dict(runner_project.CLASSIFY, name="limited", fallbacks=[],
                   limits={"rpm": 1, "on_limit": "fail"})
    capped = dict(runner_project.CLASSIFY, name="capped", fallbacks=[],
                  limits={"daily_calls": 1})
    # tpm 200 holds one call (~160 tokens): the next fits ~45 s after the window ends.
    patient = dict(runner_project.CLASSIFY, name="patient", fallbacks=[],
                   limits={"tpm": 200, "on_limit": "wait"})
    root = runner_project.write(tmp_path / "proj", runner_project.CLASSIFY, limited, capped,
                                patient)
    url = f"sqlite:///{tmp_path / 'aiops.db'}"
    apply_project(root, url=url, actor="ci <ci@example.com>")
    env = {**runner_project.env_for(mock_provider.url), "AIOPS_DATABASE_URL": url,
           "AIOPS_RATE_LIMIT_URL": ""}
    return root, env


def invoke(project: tuple[Path, dict[str, str]], *args: str, input: str | None = None) -> Any:
    root, env = project
    return CliRunner().invoke(cli, [*args, "-C", str(root)], env=env, input=input)


def test_run_prints_the_output_json(project: Any) -> None:
    result = invoke(project, "run", "classify", "--input", GOOD)
    assert result.exit_code == 0, result.output
    value = json.loads(result.stdout)
    assert value["queue"] in ("billing", "technical", "other")


def test_input_from_a_file_and_stdin(project: Any, tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text(GOOD, encoding="utf-8")
    assert invoke(project, "run", "classify@1.0.0", "--input", f"@{tmp_path / 'in.json'}"
                  ).exit_code == 0
    assert invoke(project, "run", "classify@1", "--input", "-", input=GOOD).exit_code == 0


@pytest.mark.parametrize(("args", "code", "message"), [
    (("--input", '{"subject": "x"}'), 3, '"body" is a required property (log '),
    (("--input", "{not json"), 3, "--input is not valid JSON"),
    (("--input", "@/nonexistent.json"), 3, "cannot read the input file"),
    ((), 2, "give exactly one of --input"),
])
def test_input_errors(project: Any, args: tuple[str, ...], code: int, message: str) -> None:
    result = invoke(project, "run", "classify", *args)
    assert result.exit_code == code
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_unknown_function(project: Any) -> None:
    result = invoke(project, "run", "clasify", "--input", GOOD)
    assert result.exit_code == 1 and "did you mean `classify`" in result.stderr


@pytest.mark.parametrize(("fault", "code", "message"), [
    ("auth", 4, "answered 401"),
    ("server_error", 4, "answered 500"),
    ("schema", 5, "does not match output_schema"),
])
def test_provider_and_output_failures(project: Any, mock_provider: MockServer, fault: str,
                                      code: int, message: str) -> None:
    mock_provider.app.force_fault(fault)
    result = invoke(project, "run", "classify", "--input", GOOD)
    assert result.exit_code == code, result.output
    assert message in result.stderr and "(log " in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(project: Any, mock_provider: MockServer) -> None:
    mock_provider.app.force_fault("auth")
    root, env = project
    proc = subprocess.run([sys.executable, "-m", "aiops", "--debug", "run", "classify",
                           "--input", GOOD, "-C", str(root)], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_rate_limit_exit_code_in_a_batch(project: Any, tmp_path: Path) -> None:
    batch = tmp_path / "two.jsonl"
    batch.write_text(f"{GOOD}\n{GOOD}\n", encoding="utf-8")
    result = invoke(project, "run", "limited", "--input-file", str(batch))
    assert result.exit_code == 6
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["error"] is None and lines[1]["error"]["type"] == "LimitExceeded"


def test_max_wait_bounds_how_long_a_call_waits_for_room(project: Any, tmp_path: Path) -> None:
    """Without it a call waits as long as its window takes; with it, one that would wait
    longer fails with exit 6 and says why."""
    batch = tmp_path / "two.jsonl"
    batch.write_text(f"{GOOD}\n{GOOD}\n", encoding="utf-8")
    started = time.monotonic()
    result = invoke(project, "run", "patient", "--input-file", str(batch), "--max-wait", "0.5")
    assert result.exit_code == 6 and time.monotonic() - started < 20
    errors = [entry["error"] for entry in map(json.loads, result.stdout.splitlines())]
    (error,) = [e for e in errors if e is not None]
    assert error["type"] == "LimitExceeded" and "tpm 200 had no room" in error["message"]
    assert "bounded to 0.5s (--max-wait)" in error["message"]


def test_daily_calls_budget_exit_code(project: Any) -> None:
    assert invoke(project, "run", "capped", "--input", GOOD).exit_code == 0
    result = invoke(project, "run", "capped", "--input", GOOD)
    assert result.exit_code == 7 and "budget" in result.stderr


def test_batch_in_input_order_with_summary(project: Any, tmp_path: Path) -> None:
    rows = [GOOD, "not json", "", '{"subject": "no body"}'] + [
        json.dumps({"subject": f"s{i}", "body": "b"}) for i in range(20)]
    batch = tmp_path / "in.jsonl"
    batch.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = invoke(project, "run", "classify", "--input-file", str(batch), "--output", str(out),
                    "--concurrency", "8")
    assert result.exit_code == 3  # the first failed line's code
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [entry["line"] for entry in lines] == [1, 2, *list(range(4, 25))]
    assert set(lines[0]) == {"line", "output", "error", "log_id"}
    assert lines[1]["error"]["type"] == "InputError" and lines[1]["log_id"] is None
    assert lines[2]["error"]["type"] == "InputError" and lines[2]["log_id"]
    assert all(entry["error"] is None and entry["log_id"] for entry in lines[3:])
    assert "ok 21, failed 2" in result.stderr and "p95" in result.stderr


def test_logs_lists_and_filters(project: Any) -> None:
    ok = invoke(project, "run", "classify", "--input", GOOD)
    assert ok.exit_code == 0, ok.output
    assert invoke(project, "run", "classify", "--input", '{"subject": "x"}').exit_code == 3
    everything = invoke(project, "logs", "classify", "--json")
    rows = [json.loads(line) for line in everything.stdout.splitlines()]
    assert [r["status"] for r in rows] == ["error", "ok"]
    errors = invoke(project, "logs", "classify", "--status", "error", "--since", "1h", "--json")
    assert len(errors.stdout.splitlines()) == 1
    table = invoke(project, "logs", "classify")
    assert table.exit_code == 0 and rows[0]["id"] in table.stdout
    assert invoke(project, "logs", "classify", "--since", "yesterday").exit_code == 2
    unknown = invoke(project, "logs", "clasify")
    assert unknown.exit_code == 1 and "did you mean `classify`" in unknown.stderr


def test_mock_provider_command(tmp_path: Path) -> None:
    responses = tmp_path / "responses.yaml"
    responses.write_text("responses:\n  - match: {contains: hello}\n    output: canned\n",
                         encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "aiops", "mock-provider", "--port", "0",
                             "--responses", str(responses), "--model", "gpt-4o-mini"],
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        url = proc.stderr.readline().split()[-1]
        assert url.startswith("http://127.0.0.1:")
        deadline = time.monotonic() + 10
        body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
        while True:
            try:
                reply = httpx.post(url + "/v1/chat/completions", json=body)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert reply.json()["choices"][0]["message"]["content"] == "canned"
        models = httpx.get(url + "/v1/models").json()
        assert [m["id"] for m in models["data"]] == ["gpt-4o-mini"]
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_batch_exit_code_is_the_first_failed_line_not_the_first_to_fail(
        project: Any, tmp_path: Path) -> None:
    """Line 3 (not JSON) is refused as soon as it is read, before lines 1 and 2 finish; one of
    them is refused by the rate limit (6), and it comes first in the file."""
    batch = tmp_path / "in.jsonl"
    batch.write_text(f"{GOOD}\n{GOOD}\nnot json\n", encoding="utf-8")
    result = invoke(project, "run", "limited", "--input-file", str(batch), "--concurrency", "3")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["error"]["type"] if e["error"] else None for e in lines].count("LimitExceeded") == 1
    assert result.exit_code == 6


def test_inputs_with_a_byte_order_mark(project: Any, tmp_path: Path) -> None:
    """Files written by Windows tools start with a UTF-8 BOM; it is not part of the JSON."""
    single = tmp_path / "in.json"
    single.write_text("\ufeff" + GOOD, encoding="utf-8")
    result = invoke(project, "run", "classify", "--input", f"@{single}")
    assert result.exit_code == 0, result.output
    batch = tmp_path / "in.jsonl"
    batch.write_text("\ufeff" + GOOD + "\n" + GOOD + "\n", encoding="utf-8")
    result = invoke(project, "run", "classify", "--input-file", str(batch))
    assert result.exit_code == 0, result.output


def test_input_file_that_is_not_utf8_is_an_input_error(project: Any, tmp_path: Path) -> None:
    bad = tmp_path / "in.json"
    bad.write_bytes(b'{"subject": "caf\xe9", "body": "x"}')
    result = invoke(project, "run", "classify", "--input", f"@{bad}")
    assert result.exit_code == 3 and "UTF-8" in result.stderr, result.output
    assert "Traceback" not in result.stderr
    batch = tmp_path / "in.jsonl"
    batch.write_bytes(GOOD.encode() + b'\n{"subject": "caf\xe9", "body": "x"}\n' +
                      GOOD.encode() + b"\n")
    result = invoke(project, "run", "classify", "--input-file", str(batch))
    assert result.exit_code == 3, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["line"] for e in lines] == [1, 2, 3]
    assert lines[1]["error"]["type"] == "InputError" and lines[2]["error"] is None


def test_nan_in_the_input_is_an_input_error(project: Any) -> None:
    result = invoke(project, "run", "classify", "--input",
                    '{"subject": "x", "body": "y", "n": NaN}')
    assert result.exit_code == 3 and "NaN" in result.stderr


def test_the_logged_execution_time_is_the_executions_own(
        project: Any, mock_provider_factory: Any) -> None:
    """A fresh `aiops run` against a mock that answers in 50 ms. Before: its log row said
    about 600 ms (1 s on a slower machine): the OpenAI SDK imported and built inside the
    execution's clock."""
    from aiops.store import open_store

    root, env = project
    slow = mock_provider_factory(MockConfig(latency_ms=50))
    env = {**env, **runner_project.env_for(slow.url)}
    result = aiops("run", "classify", "--input", GOOD, "-C", root, env=env)
    assert result.returncode == 0, result.stderr
    row = open_store(env["AIOPS_DATABASE_URL"]).recent_logs("classify", 1)[0]
    call = row.metadata["attempts"][0]["latency_ms"]
    assert call >= 50 and row.execution_time is not None
    assert row.execution_time < 500
    assert row.execution_time < call + 100, (row.execution_time, call)
