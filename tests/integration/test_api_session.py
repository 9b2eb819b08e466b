"""What the Python API's Workspace keeps between calls, and from which threads and event loops
it may be called: one database and one runner for many calls, calls from many threads run
at once, an apply seen by the next run, runners closed with the workspace."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import aiops
from aiops import commands
from aiops.providers.mock_server import MockConfig
from tests import fixtures_providers as project

TICKET = {"subject": "Charged twice", "body": "Refund one."}


@pytest.fixture
def open_project(tmp_path: Path, db_url: str, store: Any,
                 monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """The classify project applied to `db_url`, its providers pointed at the mock at `url`."""

    def at(url: str) -> Path:
        for name, value in project.env_for(url).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AIOPS_DATABASE_URL", db_url)
        root = project.write(tmp_path / "proj", project.CLASSIFY)
        with aiops.open(root) as ws:
            assert ws.apply().wrote
        return root

    return at


def _count_calls(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    calls = [0]
    real = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_many_calls_open_the_database_and_the_runner_once(
        open_project: Any, mock_provider: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    root = open_project(mock_provider.url)
    import aiops.store

    stores = _count_calls(monkeypatch, aiops.store, "open_store")
    runners = _count_calls(monkeypatch, commands, "open_runner")
    with aiops.open(root) as ws:
        for _ in range(30):
            assert ws.run("classify", TICKET).ok
        assert len(ws.run_many("classify", [TICKET] * 10)) == 10
        assert len(ws.logs("classify", limit=100)) == 40
        ws.status()
        ws.plan()
    assert (stores[0], runners[0]) == (1, 1)
    assert mock_provider.app.stats["requests"] == 40


def test_calls_from_many_threads_run_at_once_on_one_runner(
        open_project: Any, mock_provider_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = mock_provider_factory(MockConfig(latency_ms=3000))
    root = open_project(server.url)
    providers = root / "providers.yaml"
    data = yaml.safe_load(providers.read_text(encoding="utf-8"))
    data["providers"]["openai"]["timeout_s"] = 30  # the mock's latency is no timeout
    providers.write_text(yaml.safe_dump(data), encoding="utf-8")
    runners = _count_calls(monkeypatch, commands, "open_runner")
    results: list[Any] = []
    with aiops.open(root) as ws:
        threads = [threading.Thread(target=lambda: results.append(ws.run("classify", TICKET)))
                   for _ in range(6)]
        for thread in threads:
            thread.start()
        # Serialised, one request would be in flight for 3 s; at once, all six arrive.
        deadline = time.monotonic() + 2.5
        while server.app.stats["requests"] < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.app.stats["requests"] == 6
        for thread in threads:
            thread.join()
    assert len(results) == 6 and all(r.ok for r in results) and runners[0] == 1


def test_sync_and_async_calls_share_the_database_each_loop_its_runner(
        open_project: Any, mock_provider: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    root = open_project(mock_provider.url)
    runners = _count_calls(monkeypatch, commands, "open_runner")

    async def main() -> int:
        async with aiops.open(root) as ws:
            await ws.arun("classify", TICKET)
            # The sync form from a coroutine runs on the private loop (it blocks this one).
            ws.run("classify", TICKET)
            await ws.arun_many("classify", [TICKET] * 3)
            return len(await ws.alogs("classify"))

    assert asyncio.run(main()) == 5
    assert runners[0] == 2


def test_the_next_run_after_apply_gets_the_new_version(
        open_project: Any, mock_provider: Any) -> None:
    root = open_project(mock_provider.url)
    path = root / "functions" / "classify" / "function.yaml"
    with aiops.open(root) as ws:
        assert ws.run("classify", TICKET).version == "1.0.0"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data.update(version="1.1.0", description="Routes tickets.")
        data["prompt"][0]["content"] = "Route it. Answer with JSON."
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        assert ws.apply().wrote
        # Without the apply's invalidation the runner would keep 1.0.0 for FLOATING_TTL_S.
        assert ws.run("classify", TICKET).version == "1.1.0"


def test_close_in_a_coroutine_that_ran_executions_points_at_aclose(
        open_project: Any, mock_provider: Any) -> None:
    root = open_project(mock_provider.url)

    async def main() -> None:
        ws = aiops.open(root)
        await ws.arun("classify", TICKET)
        with pytest.raises(aiops.UsageError, match="aclose"):
            ws.close()
        await ws.aclose()

    asyncio.run(main())


@pytest.mark.filterwarnings("ignore::ResourceWarning",
                            "ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_loop_that_ends_before_aclose_is_a_resource_warning(
        open_project: Any, mock_provider: Any) -> None:
    root = open_project(mock_provider.url)
    ws = aiops.open(root)
    asyncio.run(ws.arun("classify", TICKET))
    with pytest.warns(ResourceWarning, match="async with aiops.open"):
        ws.close()
    gc.collect()  # the ended loop's unclosed HTTP clients: their own warnings, ignored here


def test_an_abandoned_workspace_stops_its_thread_and_keeps_its_rows(
        open_project: Any, mock_provider: Any) -> None:
    root = open_project(mock_provider.url)
    ws = aiops.open(root)
    log_id = ws.run("classify", TICKET).log_id
    del ws
    gc.collect()
    assert not [t for t in threading.enumerate() if t.name == "aiops-runner"]
    with aiops.open(root) as again:
        assert [row.id for row in again.logs("classify")] == [log_id]


def test_a_sync_call_from_inside_a_run_is_refused(open_project: Any, mock_provider: Any) -> None:
    root = open_project(mock_provider.url)
    with aiops.open(root) as ws:

        def inputs() -> Any:
            yield TICKET
            ws.run("classify", TICKET)  # on the runner's own thread: it would wait for itself

        with pytest.raises(aiops.UsageError, match="async methods"):
            ws.run_many("classify", inputs())
