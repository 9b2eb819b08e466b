"""The Python API as an application sees it: only `aiops.<name>` for the names of
`aiops.__all__` (test_only_public_names_are_used holds this module to it), against the mock
provider. Runs, pinned runs, batches, the async forms, an invalid input, and the log rows of
what ran."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import aiops
from tests import fixtures_providers as project

TICKET = {"subject": "Charged twice", "body": "Refund one."}
ROUTES = {"billing", "technical", "other"}


def _write_version(root: Path, version: str, system: str) -> None:
    """functions/classify/function.yaml at `version`, its system prompt `system`."""
    path = root / "functions" / "classify" / "function.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["version"] = version
    data["prompt"][0]["content"] = system
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@pytest.fixture
def root(tmp_path: Path, db_url: str, mock_provider: Any,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project whose classify function has versions 1.0.0, 1.1.0 and 2.0.0 applied
    (2.0.0 current), its providers pointed at the mock, its database `db_url`."""
    for name, value in project.env_for(mock_provider.url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIOPS_DATABASE_URL", db_url)
    root = project.write(tmp_path / "proj", project.CLASSIFY)
    with aiops.open(root) as ws:
        assert ws.upgrade_database().split(":")[0] in ("sqlite", "postgresql+psycopg")
        for version, system in (("1.0.0", None), ("1.1.0", "Route it. Answer with JSON."),
                                ("2.0.0", "Route the ticket now. Answer with JSON.")):
            if system is not None:
                _write_version(root, version, system)
            assert ws.validate().ok
            plan = ws.plan()
            assert plan.has_changes and not plan.errors
            result = ws.apply(expected=plan, actor="Test <t@example.com>")
            assert isinstance(result, aiops.ApplyResult) and result.wrote
    yield root


def test_run_pinned_runs_and_the_execution_as_data(root: Path) -> None:
    with aiops.open(root, actor="app") as ws:
        current = ws.run("classify", TICKET)
        newest_1 = ws.run("classify@1", TICKET)
        exact = ws.run("classify@1.0.0", TICKET)
        status = ws.status()
    assert (current.version, newest_1.version, exact.version) == ("2.0.0", "1.1.0", "1.0.0")
    for execution in (current, newest_1, exact):
        assert isinstance(execution, aiops.Execution) and execution.ok
        assert execution.error is None and execution.function == "classify"
        assert execution.output["queue"] in ROUTES and 1 <= execution.output["priority"] <= 4
        assert execution.latency_ms > 0 and execution.input_tokens > 0
        assert execution.output_tokens > 0 and execution.cost_usd > 0
        assert (execution.provider, execution.model) == ("openai", "gpt-4o-mini")
        [attempt] = execution.attempts
        assert isinstance(attempt, aiops.Attempt) and attempt.status == "ok"
    assert [row.sync for row in status.functions] == ["in sync"]
    assert all(isinstance(row, aiops.StatusRow) for row in status.functions)


def test_run_many_keeps_the_order_of_the_inputs_and_logs_each(root: Path) -> None:
    inputs = [dict(TICKET, body=f"ticket #{i}") for i in range(7)]
    with aiops.open(root) as ws:
        results = ws.run_many("classify@1.1.0", inputs, concurrency=3)
        rows = {row.id: row for row in ws.logs("classify", limit=50)}
    assert len(results) == 7 and all(r.ok and r.version == "1.1.0" for r in results)
    assert [rows[r.log_id].input for r in results] == inputs


def test_an_invalid_input_raises_input_error_and_its_log_row_says_why(root: Path) -> None:
    with aiops.open(root) as ws:
        with pytest.raises(aiops.InputError) as raised:
            ws.run("classify", {"subject": ""})
        assert isinstance(raised.value, aiops.UserError)
        [row] = ws.logs("classify", status="error")
    assert row.id == raised.value.log_id and row.status == "error"
    assert row.error["type"] == "InputError" and "input_schema" in row.error["message"]
    assert isinstance(row, aiops.LogRecord) and row.version == "2.0.0"


def test_a_function_that_cannot_run_raises_and_logs_nothing(root: Path) -> None:
    with aiops.open(root) as ws:
        with pytest.raises(aiops.NotFoundError, match="did you mean"):
            ws.run("clasify", TICKET)
        with pytest.raises(aiops.NotFoundError, match=r"1\.0\.0, 1\.1\.0, 2\.0\.0"):
            ws.run_many("classify@3", [TICKET, TICKET])
        assert ws.logs("classify") == []


def test_a_failed_execution_in_a_batch_is_a_result_not_an_exception(root: Path) -> None:
    with aiops.open(root) as ws:
        good, bad = ws.run_many("classify", [TICKET, {"subject": "no body"}])
    assert good.ok and not bad.ok and isinstance(bad.error, aiops.InputError)
    assert bad.output is None and bad.error.log_id == bad.log_id


def test_the_async_forms(root: Path) -> None:
    async def tickets() -> AsyncIterator[dict[str, str]]:
        for i in range(4):
            await asyncio.sleep(0)
            yield dict(TICKET, body=f"async #{i}")

    async def main() -> tuple[Any, list[Any], Any, list[Any]]:
        async with aiops.open(root) as ws:
            one = await ws.arun("classify@1", TICKET)
            many = await ws.arun_many("classify", tickets(), concurrency=2)
            with pytest.raises(aiops.InputError) as raised:
                await ws.arun("classify", {"body": "no subject"})
            rows = await ws.alogs("classify", limit=50)
        return one, many, raised.value, rows

    one, many, error, rows = asyncio.run(main())
    assert one.ok and one.version == "1.1.0"
    assert [r.version for r in many] == ["2.0.0"] * 4
    by_id = {row.id: row for row in rows}
    assert [by_id[r.log_id].input["body"] for r in many] == [f"async #{i}" for i in range(4)]
    assert by_id[error.log_id].status == "error" and len(rows) == 6


def test_a_closed_workspace_refuses_work(root: Path) -> None:
    ws = aiops.open(root)
    with ws:
        ws.run("classify", TICKET)
    ws.close()  # again: nothing left to do
    with pytest.raises(aiops.UsageError, match="closed"):
        ws.run("classify", TICKET)


def test_outside_a_project_open_says_so(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()  # the search stops at the repository's top
    with pytest.raises(aiops.NotAProject) as raised:
        aiops.open(tmp_path)
    assert isinstance(raised.value, aiops.ConfigError) and "aiops init" in str(raised.value)


def test_validate_reports_problems_as_data(root: Path) -> None:
    (root / "functions" / "classify" / "function.yaml").write_text(
        "apiVersion: aiops/v1\nname: classify\nversoin: 1.0.0\n", encoding="utf-8")
    with aiops.open(root) as ws:
        report = ws.validate()
        with pytest.raises(aiops.SpecError):
            ws.apply()
    assert isinstance(report, aiops.ValidationReport) and not report.ok
    assert all(isinstance(d, aiops.Diagnostic) for d in report.errors)
    assert any("versoin" in d.render() for d in report.errors)


def test_only_public_names_are_used() -> None:
    # This module reaches aiops only as `aiops.<name>`, `<name>` in aiops.__all__.
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names] + [
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert [m for m in imported if m.split(".")[0] == "aiops"] == ["aiops"]
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name) and node.value.id == "aiops"}
    assert used - {"__all__"} <= set(aiops.__all__)
    assert {"open", "Execution", "InputError"} <= used


def test_logs_of_every_function_and_one_execution_by_its_id(root: Path) -> None:
    import uuid

    project.write(root, dict(project.CLASSIFY, name="triage"))
    with aiops.open(root) as ws:
        ws.apply(expected=ws.plan(), actor="Test <t@example.com>")
        first = ws.run("classify", TICKET)
        second = ws.run("triage", TICKET)
        every = ws.logs()
        assert [row.id for row in every] == [second.log_id, first.log_id]
        assert [row.name for row in every] == ["triage", "classify"]
        assert [row.id for row in ws.logs(limit=1)] == [second.log_id]
        assert [row.id for row in ws.logs("classify")] == [first.log_id]
        one = ws.log(first.log_id)
        assert isinstance(one, aiops.LogRecord) and one == every[1]
        assert one.input == TICKET and one.output == first.output
        with pytest.raises(aiops.UsageError, match="not a log id"):
            ws.log("nope")
        with pytest.raises(aiops.NotFoundError, match="no execution"):
            ws.log(str(uuid.uuid4()))

    async def main() -> tuple[Any, list[Any]]:
        async with aiops.open(root) as ws:
            ran = await ws.arun("triage", TICKET)  # its row is written before the reads
            return (await ws.alog(ran.log_id)), await ws.alogs(limit=3)

    row, newest = asyncio.run(main())
    assert row.name == "triage" and newest[0] == row and len(newest) == 3
