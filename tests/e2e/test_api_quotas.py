"""A token's quotas through the API (`aiops serve`'s app, over HTTP with httpx against the ASGI
app), on SQLite and PostgreSQL, against the mock provider through the OpenAI SDK: 50 parallel
test calls against a daily quota of 20 run exactly 20; rpm refuses before anything runs;
both answer 429 `quota-exceeded` with Retry-After, as the OpenAPI document declares."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from aiops.providers.mock_server import MockConfig, MockServer
from tests.fixtures_db import apply_project
from tests.fixtures_providers import CLASSIFY, env_for, write
from tests.fixtures_server import declared_statuses

BASE = "/api/contributor/ai-functions"


def item(i: int) -> dict[str, str]:
    return {"subject": f"ticket {i}", "body": "I was charged twice."}


def serve(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, mock: MockServer,
          **quotas: Any) -> tuple[Any, str]:
    """The app of a project with one function, and an invoker token with `quotas`."""
    from aiops import commands
    from aiops.server.app import ServerConfig, create_app
    from aiops.store import open_store

    open_store(db_url, migrate=True)
    monkeypatch.setenv("AIOPS_PROJECT", "test-project")
    for name, value in env_for(mock.url).items():
        monkeypatch.setenv(name, value)
    root = write(tmp_path / "proj", {**CLASSIFY, "name": "plain", "fallbacks": []})
    apply_project(root, url=db_url, actor="Ann <ann@example.com>")
    ws = commands.open_workspace(root, database_url=db_url)
    token = commands.create_token(ws, name="app", role="invoker", created_by="Op",
                                  **quotas).text
    app = create_app(ServerConfig(project_dir=str(root), database_url=db_url))
    return app, token


async def post_all(app: Any, token: str, paths: list[str]) -> list[httpx.Response]:
    """`paths` POSTed at once (each with its own input), then the worker shut down as at
    the end of `aiops serve` (its budget leases given back)."""
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://aiops.test") as client:
            return list(await asyncio.gather(*(
                client.post(path, json={"input": item(i)},
                            headers={"Authorization": f"Bearer {token}"})
                for i, path in enumerate(paths))))
    finally:
        await app.state.aiops.close()


def check_declared(app: Any, path: str, status: int) -> None:
    declared = declared_statuses(app, "POST", path)
    assert declared is not None and str(status) in declared, (path, status, declared)


def test_fifty_parallel_test_calls_against_a_quota_of_20_run_exactly_20(
        tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch,
        mock_provider_factory: Any) -> None:
    mock = mock_provider_factory(MockConfig(latency_ms=20))
    app, token = serve(tmp_path, db_url, monkeypatch, mock, daily_calls=20)
    before = mock.app.stats["requests"]
    responses = asyncio.run(post_all(app, token, [f"{BASE}/plain/test"] * 50))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 20 + [429] * 30, statuses
    assert mock.app.stats["requests"] - before == 20
    refused = [r for r in responses if r.status_code == 429]
    for r in refused:
        body = r.json()
        assert r.headers["content-type"].startswith("application/problem+json")
        assert body["code"] == "quota-exceeded"
        assert body["detail"].startswith("token app: today's call quota is spent "
                                         "(daily_calls 20: 20 made); it resets at 00:00 UTC")
        assert 0 < int(r.headers["retry-after"]) <= 86400
    check_declared(app, f"{BASE}/plain/test", 429)
    check_declared(app, f"{BASE}/plain/test", 200)

    from aiops import commands
    from aiops.store import open_store

    ws = commands.open_workspace(Path(app.state.aiops.config.project_dir), database_url=db_url)
    (listed,) = commands.list_tokens(ws, store=open_store(db_url))
    assert listed.calls_today == 20
    rows = open_store(db_url).recent_logs("plain", limit=100)
    assert sum(r.status == "ok" for r in rows) == 20


def test_rpm_refuses_before_anything_runs_on_both_routes(
        tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch,
        mock_provider: MockServer) -> None:
    app, token = serve(tmp_path, db_url, monkeypatch, mock_provider, rpm=2)
    paths = [f"{BASE}/plain/test", "/api/functions/plain/run", "/api/functions/plain/run"]
    responses = asyncio.run(post_all(app, token, paths))
    assert sorted(r.status_code for r in responses) == [200, 200, 429]
    (refused,) = [r for r in responses if r.status_code == 429]
    body = refused.json()
    assert body["code"] == "quota-exceeded" and "execution" not in body
    assert "its rpm quota (2 runs a minute) has no room" in body["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    for path in paths[:2]:
        check_declared(app, path, 429)
    from aiops.store import open_store

    assert len(open_store(db_url).recent_logs("plain", limit=10)) == 2
