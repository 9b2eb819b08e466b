"""`aiops logs` without SQL, on SQLite and PostgreSQL: the recent executions of every function
(or one), bounded by --limit, and one execution in full with each attempt (`--id`), as text
and as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aiops.cli import cli
from aiops.providers.mock_server import MockServer
from tests import fixtures_providers as runner_project
from tests.fixtures_db import apply_project

GOOD = '{"subject": "Charged twice", "body": "Refund please"}'


@pytest.fixture
def ran(tmp_path: Path, db_url: str, store: Any, mock_provider: MockServer) -> dict[str, Any]:
    """Two functions applied to `db_url` (migrated: `store`); `classify` ran twice (ok, then every provider
    failing: four attempts on openai, then its fallbacks), `triage` once (ok)."""
    triage = dict(runner_project.CLASSIFY, name="triage", fallbacks=[])
    root = runner_project.write(tmp_path / "proj", runner_project.CLASSIFY, triage)
    apply_project(root, url=db_url, actor="ci")
    env = {**runner_project.env_for(mock_provider.url), "AIOPS_DATABASE_URL": db_url,
           "AIOPS_RATE_LIMIT_URL": ""}
    project = {"root": root, "env": env}
    assert invoke(project, "run", "classify", "--input", GOOD).exit_code == 0
    mock_provider.app.force_fault("server_error")
    failed = invoke(project, "run", "classify", "--input", GOOD)
    assert failed.exit_code == 4, failed.output
    mock_provider.app.force_fault(None)
    assert invoke(project, "run", "triage", "--input", GOOD).exit_code == 0
    project["failed_id"] = failed.stderr.split("(log ")[1].split(")")[0]
    return project


def invoke(project: dict[str, Any], *args: str) -> Any:
    return CliRunner().invoke(cli, [*args, "-C", str(project["root"])], env=project["env"])


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_without_a_name_every_function_newest_first(ran: dict[str, Any]) -> None:
    rows = json_lines(invoke(ran, "logs", "--json").stdout)
    assert [(r["function"], r["status"]) for r in rows] == [
        ("triage", "ok"), ("classify", "error"), ("classify", "ok")]
    assert rows[1]["id"] == ran["failed_id"] and rows[1]["attempts"] > 1
    table = invoke(ran, "logs")
    assert table.exit_code == 0
    head, *lines = table.stdout.splitlines()
    assert head.split()[:5] == ["TIME", "(UTC)", "LOG", "ID", "FUNCTION"]
    assert [line.split()[3] for line in lines] == ["triage", "classify", "classify"]
    assert ran["failed_id"] in table.stdout and "answered 500" in table.stdout


def test_a_name_and_the_filters(ran: dict[str, Any]) -> None:
    rows = json_lines(invoke(ran, "logs", "classify", "--json").stdout)
    assert [r["status"] for r in rows] == ["error", "ok"]
    assert {r["function"] for r in rows} == {"classify"}
    errors = json_lines(invoke(ran, "logs", "--status", "error", "--since", "1h", "--json").stdout)
    assert [r["id"] for r in errors] == [ran["failed_id"]]


def test_limit_bounds_the_list(ran: dict[str, Any]) -> None:
    assert len(json_lines(invoke(ran, "logs", "--limit", "2", "--json").stdout)) == 2
    assert len(invoke(ran, "logs", "--limit", "1").stdout.splitlines()) == 2  # and the header
    assert invoke(ran, "logs", "--limit", "0").exit_code == 2


def test_one_execution_in_full(ran: dict[str, Any]) -> None:
    result = invoke(ran, "logs", "--id", ran["failed_id"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert f"Execution {ran['failed_id']}" in text and "function  classify 1.0.0" in text
    assert "status    error" in text
    assert '"subject": "Charged twice"' in text.split("Input:")[1].split("Output:")[0]
    assert "(none)" in text.split("Output:")[1].split("Error:")[0]
    assert "ProviderError (exit 4): internal answered 500" in text.split("Error:")[1]
    attempts = text.split("Attempts (")[1]
    count = int(attempts.split(")")[0])
    assert count > 1
    lines = [line for line in attempts.splitlines() if line[:5].strip().rstrip(".").isdigit()]
    assert len(lines) == count
    first = lines[0].split()
    assert first[1:4] == ["openai/gpt-4o-mini", "error", first[3]] and first[4] == "ms"
    assert "server_error 500" in lines[0] or "500" in lines[0]
    assert any("groq/llama-3.1-8b-instant" in line for line in lines)
    assert "ProviderError" in attempts


def test_one_execution_as_json(ran: dict[str, Any]) -> None:
    out = json.loads(invoke(ran, "logs", "--id", ran["failed_id"], "--json").stdout)
    assert out["id"] == ran["failed_id"] and out["function"] == "classify"
    assert out["input"] == json.loads(GOOD) and out["output"] is None
    assert out["error"]["type"] == "ProviderError" and out["error"]["exit_code"] == 4
    assert len(out["attempts"]) > 1
    first = out["attempts"][0]
    assert (first["provider"], first["model"], first["status"]) == (
        "openai", "gpt-4o-mini", "error")
    assert first["latency_ms"] >= 0 and first["http_status"] == 500 and first["message"]
    assert "prompt_hash" in out["metadata"]


def test_an_ok_execution_in_full(ran: dict[str, Any]) -> None:
    (row,) = json_lines(invoke(ran, "logs", "triage", "--json").stdout)
    text = invoke(ran, "logs", "--id", row["id"].upper()).stdout  # any spelling of the UUID
    assert '"queue":' in text.split("Output:")[1].split("Error:")[0]
    assert "(none)" in text.split("Error:")[1].split("Attempts")[0]
    assert "Attempts (1):" in text and "openai/gpt-4o-mini  ok" in text


@pytest.mark.parametrize(("args", "code", "message"), [
    (("--id", "not-a-uuid"), 2, "is not a log id"),
    (("--id", "00000000-0000-4000-8000-000000000000"), 1, "no execution has the log id"),
    (("classify", "--id", "00000000-0000-4000-8000-000000000000"), 2, "without NAME"),
    (("clasify",), 1, "did you mean `classify`"),
])
def test_wrong_ids_and_names(ran: dict[str, Any], args: tuple[str, ...], code: int,
                             message: str) -> None:
    result = invoke(ran, "logs", *args)
    assert result.exit_code == code and message in result.stderr
    assert "Traceback" not in result.stderr

