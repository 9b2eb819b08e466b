"""Fixtures for the API: a project with applied functions, log rows and tokens of every
role, its app (`aiops.server.app.create_app`) behind Starlette's TestClient, on SQLite and
PostgreSQL (`db_url`).

`api.call(method, url, token=..., expect=STATUS)` asserts the status, and that the OpenAPI
document declares it for the operation the URL reaches: every status a test sees is one the
document promises. `live_api` is `api` with its project committed in git (writes work) and
its provider pointed at the mock provider (runs work).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures_db import apply_project, spec_data, write_project

SECRET_ACCESS = {"view": ["finance"], "invoke": ["finance"], "edit": ["finance-admins"]}
# token name -> (role, groups)
TOKENS: dict[str, tuple[str, tuple[str, ...]]] = {
    "viewer": ("viewer", ()),
    "viewer-finance": ("viewer", ("finance",)),
    "invoker": ("invoker", ()),
    "editor": ("editor", ()),
    "editor-finance": ("editor", ("finance", "finance-admins")),
    "admin": ("admin", ()),
}


def functions() -> list[dict[str, Any]]:
    return [spec_data("greet"),
            spec_data("ledger", description="Books entries.", access=SECRET_ACCESS)]


@dataclass
class Api:
    client: Any
    db_url: str
    root: Path
    tokens: dict[str, str] = field(default_factory=dict)  # name -> token text
    log_ids: dict[str, list[str]] = field(default_factory=dict)

    def headers(self, token: str | None) -> dict[str, str]:
        if token is None:
            return {}
        text = self.tokens.get(token, token)
        return {"Authorization": f"Bearer {text}"}

    def call(self, method: str, url: str, *, token: str | None = "admin", expect: int = 200,
             **kw: Any) -> Any:
        headers = {**self.headers(token), **kw.pop("headers", {})}
        response = self.client.request(method, url, headers=headers, **kw)
        assert response.status_code == expect, (method, url, response.text)
        declared = declared_statuses(self.client.app, method, url)
        if declared is not None:  # None: no operation (404 for an unknown path, 405)
            assert str(expect) in declared, (method, url, expect, sorted(declared))
        if expect >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")
            body = response.json()
            assert body["status"] == expect
            assert {"type", "title", "detail", "instance", "code"} <= set(body)
        return response


def declared_statuses(app: Any, method: str, url: str) -> set[str] | None:
    """The statuses the OpenAPI document declares for the operation `url` reaches."""
    path = url.split("?")[0]
    for template, operations in app.openapi()["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            return set(operations[method.lower()]["responses"])
    return None


def make_tokens(root: Path, db_url: str) -> dict[str, str]:
    from aiops import commands

    ws = commands.open_workspace(root, database_url=db_url)
    made = {name: commands.create_token(ws, name=name, role=role, groups=groups,
                                        created_by="Operator <op@example.com>").text
            for name, (role, groups) in TOKENS.items()}
    past = datetime.now(UTC) - timedelta(days=2)
    made["expired"] = commands.create_token(ws, name="expired", role="admin", expires="1d",
                                            created_by="Op", now=past).text
    made["revoked"] = commands.create_token(ws, name="revoked", role="admin",
                                            created_by="Op").text
    commands.revoke_token(ws, "revoked")
    return made


def add_logs(db_url: str, name: str, count: int, *, created_by: str | None = None,
             first_second: int = 0) -> list[str]:
    """`count` log rows of function `name`, a second apart from 2026-01-01T00:00:00 plus
    `first_second`, newest last; their ids."""
    from aiops.store import LogRow, open_store

    store = open_store(db_url)
    row = store.find_function(name)
    assert row is not None
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=first_second)
    rows = [LogRow(function_id=row.summary.id, version_id=row.current_version_id,
                   version=row.summary.version or "0.0.0",
                   status="ok" if i % 3 else "error", input={"who": f"person {i}"},
                   output=f"hello {i}", error=None if i % 3 else {
                       "type": "OutputError", "message": f"said {i}", "exit_code": 5},
                   execution_time=12.5, actor="cli" if i % 2 else "app", created_by=created_by,
                   metadata={"model": "mock-small", "attempts": [
                       {"provider": "mock", "status": "ok", "message": f"quoted {i}"}]},
                   provider="mock", cost_usd=0.001, input_tokens=10, output_tokens=5,
                   created_at=start + timedelta(seconds=i))
            for i in range(count)]
    report = store.insert_logs(rows)
    assert not report.lost
    return [r.id for r in rows]


@pytest.fixture
def api(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    from starlette.testclient import TestClient

    from aiops.server.app import ServerConfig, create_app
    from aiops.store import open_store

    open_store(db_url, migrate=True)
    monkeypatch.setenv("AIOPS_PROJECT", "test-project")
    root = write_project(tmp_path / "proj", functions())
    apply_project(root, url=db_url, actor="Ann <ann@example.com>")
    tokens = make_tokens(root, db_url)
    app = create_app(ServerConfig(project_dir=str(root), database_url=db_url,
                                  max_body_bytes=4096, evaluate_alerts=False))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client=client, db_url=db_url, root=root, tokens=tokens)


@pytest.fixture
def live_api(api: Api, monkeypatch: pytest.MonkeyPatch, mock_provider: Any) -> Api:
    """`api` with its project a git repository (its files committed by the operator) and its
    provider the mock provider."""
    from tests.e2e.helpers import git

    git(api.root, "init", "-q", "-b", "main")
    git(api.root, "config", "user.name", "aiops server")
    git(api.root, "config", "user.email", "server@example.org")
    git(api.root, "add", "-A")
    git(api.root, "commit", "-qm", "Start")
    monkeypatch.setenv("MOCK_API_KEY", "sk-test")
    monkeypatch.setenv("AIOPS_MOCK_BASE_URL", mock_provider.url + "/v1")
    return api
