"""The run verbs over a Workspace, as the CLI and an application call them: the result as
data, the runner closed after, a stopped call logged as cancelled."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from aiops import commands
from aiops.errors import NotFoundError
from aiops.providers.mock_server import MockConfig
from aiops.runner import Execution
from aiops.store import Store
from tests import fixtures_providers as runner_project
from tests.fixtures_db import apply_project

TICKET = {"subject": "Charged twice", "body": "Refund one."}


@pytest.fixture
def workspace(tmp_path: Path, db_url: str, store: Store,
              monkeypatch: pytest.MonkeyPatch) -> Any:
    def at(server_url: str) -> commands.Workspace:
        root = runner_project.write(tmp_path / "proj", runner_project.CLASSIFY)
        apply_project(root, url=db_url, store=store, actor="ci")
        for name, value in runner_project.env_for(server_url).items():
            monkeypatch.setenv(name, value)
        return commands.open_workspace(root, database_url=db_url)

    return at


def test_run_returns_the_execution_as_data_and_closes_the_runner(
        workspace: Any, mock_provider: Any, store: Store) -> None:
    ws = workspace(mock_provider.url)
    result = asyncio.run(commands.run(ws, "classify", TICKET, actor="app"))
    assert result.ok and result.error is None and not result.unrecorded
    assert result.execution is not None and set(result.execution.output) == {"queue",
                                                                             "priority"}
    [row] = store.recent_logs("classify")  # flushed by the close
    assert (row.id, row.status, row.actor) == (result.execution.log_id, "ok", "app")


def test_an_unknown_function_is_an_error_in_the_result_with_no_row(
        workspace: Any, mock_provider: Any, store: Store) -> None:
    ws = workspace(mock_provider.url)
    result = asyncio.run(commands.run(ws, "clasify", TICKET))
    assert isinstance(result.error, NotFoundError) and result.execution is None
    assert "did you mean" in result.error.message
    assert store.recent_logs("classify") == []


def test_stop_cancels_the_call_and_its_log_row_says_so(
        workspace: Any, mock_provider_factory: Any, store: Store) -> None:
    server = mock_provider_factory(MockConfig(latency_ms=30_000))
    ws = workspace(server.url)

    async def go() -> commands.RunResult:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.3, stop.set)
        return await commands.run(ws, "classify", TICKET, stop=stop)

    result = asyncio.run(asyncio.wait_for(go(), 20))
    assert result.stopped and not result.ok and result.execution is None
    [row] = store.recent_logs("classify")
    assert row.status == "error" and "cancelled" in row.error["message"]


def test_run_many_hands_over_each_result_then_closes_the_runner(
        workspace: Any, mock_provider: Any, store: Store) -> None:
    ws = workspace(mock_provider.url)
    seen: dict[int, Any] = {}
    inputs = [dict(TICKET, body=f"#{i}") for i in range(5)]
    result = asyncio.run(commands.run_many(ws, "classify", inputs, concurrency=2,
                                           on_result=seen.__setitem__))
    assert not result.unrecorded
    assert sorted(seen) == [0, 1, 2, 3, 4]
    assert all(isinstance(r, Execution) and r.ok for r in seen.values())
    assert len(store.recent_logs("classify")) == 5
