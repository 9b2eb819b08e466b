"""GET /api/contributor/alerts: rules, states and history, on SQLite and PostgreSQL; a
function the token may not view is absent from all of it. And `aiops serve`'s evaluator: two
workers, one notification."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from aiops import commands
from tests.fixtures_alerts import Receiver
from tests.fixtures_db import apply_project, spec_data, write_project
from tests.fixtures_server import SECRET_ACCESS, Api

QUIET = {"metric": "calls", "over": "1h", "below": 1000}  # fires at once: no traffic


def test_rules_states_and_history_of_the_functions_a_token_may_view(api: Api) -> None:
    write_project(api.root, [spec_data("greet", alerts=[{**QUIET, "name": "quiet"}]),
                             spec_data("ledger", description="Books entries.",
                                       access=SECRET_ACCESS, alerts=[QUIET])])
    apply_project(api.root, url=api.db_url, actor="Ann <ann@example.com>")
    ws = commands.open_workspace(api.root, database_url=api.db_url)
    now = datetime.now(UTC)
    assert len(commands.check_alerts(ws, now=now).firing) == 2

    body = api.call("GET", "/api/contributor/alerts", token="viewer").json()
    assert [(r["function"], r["rule"], r["state"]) for r in body["rules"]] == [
        ("greet", "quiet", "firing")]
    assert body["rules"][0]["condition"] == "calls < 1000 over 1h"
    assert [(h["rule"], h["event"]) for h in body["history"]] == [("quiet", "firing")]
    assert body["history"][0]["deliveries"] == []

    every = api.call("GET", "/api/contributor/alerts", token="viewer-finance").json()
    assert sorted(r["function"] for r in every["rules"]) == ["greet", "ledger"]
    assert len(every["history"]) == 2

    commands.check_alerts(ws, now=now + timedelta(minutes=1))  # still firing: no new event
    page = api.call("GET", "/api/contributor/alerts?limit=1", token="admin").json()
    assert len(page["history"]) == 1 and page["next_cursor"]
    rest = api.call("GET", f"/api/contributor/alerts?limit=1&cursor={page['next_cursor']}",
                    token="admin").json()
    assert len(rest["history"]) == 1 and rest["next_cursor"] is None
    assert rest["history"][0]["id"] != page["history"][0]["id"]

    api.call("GET", "/api/contributor/alerts", token=None, expect=401)
    api.call("GET", "/api/contributor/alerts?cursor=nonsense", token="admin", expect=400)


def test_the_server_evaluates_every_interval_and_notifies(
        tmp_path: Path, db_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.testclient import TestClient

    from aiops.server.app import ServerConfig, create_app
    from aiops.store import open_store

    store = open_store(db_url, migrate=True)
    monkeypatch.setenv("AIOPS_PROJECT", "test-project")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", receiver.url)
    root = write_project(tmp_path / "proj", [spec_data("greet", alerts=[
        {**QUIET, "notify": ["chat"]}])])
    (root / "aiops.yaml").write_text(yaml.safe_dump({"alerting": {
        "interval": "1s", "allow_private_addresses": True,
        "receivers": {"chat": {"type": "slack", "url_env": "SLACK_WEBHOOK_URL"}}}}))
    apply_project(root, url=db_url, actor="Ann <ann@example.com>")
    config = ServerConfig(project_dir=str(root), database_url=db_url)
    with TestClient(create_app(config)), TestClient(create_app(config)):  # two workers
        deadline = time.monotonic() + 30
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2.5)  # more intervals pass: nothing more is sent
    assert len(receiver.received) == 1
    assert json.loads(receiver.received[0][1])["text"].startswith(":rotating_light:")
    [event] = store.alert_history(function_ids=None, limit=10)
    assert event.deliveries[0]["status"] == "sent"
