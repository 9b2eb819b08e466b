"""`aiops alerts check|list` through the CLI: exit 0 while nothing fires, 2 once a rule
fires (with one Slack-compatible message to a real local receiver), list shows the state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from aiops.cli import cli
from aiops.store import LogRow, open_store
from tests.fixtures_alerts import Receiver
from tests.fixtures_db import apply_project, spec_data, write_function


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_check_exits_2_while_a_rule_fires_and_list_shows_it(
        project: Path, db_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    write_function(project, spec_data("greet", alerts=[
        {"metric": "error_rate", "over": "15m", "above": 0.2, "notify": ["chat"]},
        {"metric": "calls", "over": "1h", "above": 1000}]))
    (project / "aiops.yaml").write_text(yaml.safe_dump({"alerting": {
        "allow_private_addresses": True,
        "receivers": {"chat": {"type": "slack", "url_env": "SLACK_WEBHOOK_URL"}}}}))
    monkeypatch.setenv("SLACK_WEBHOOK_URL", receiver.url)
    code, out, _ = _run("validate", str(project))
    assert code == 0 and "calls_1h notifies nobody" in out
    apply_project(project)

    code, out, err = _run("alerts", "check", "-C", str(project))
    assert code == 0, err
    assert "2 rule(s), 0 firing" in out

    store = open_store(db_url)
    dv = store.resolve("greet")
    store.insert_logs([LogRow(function_id=dv.function_id, version=dv.version,
                              version_id=dv.version_id, status="error", input={},
                              created_at=datetime.now(UTC) - timedelta(minutes=2))] * 1)
    code, out, err = _run("alerts", "check", "-C", str(project), "--json")
    assert code == 2, err
    report = json.loads(out)
    assert report["firing"] == 1 and report["delivery"]["sent"] == 1
    [(_, body)] = receiver.received
    assert json.loads(body)["text"].startswith(":rotating_light: [FIRING] greet/error_rate_15m")

    code, out, _ = _run("alerts", "list", "-C", str(project), "--json")
    states = {r["rule"]: r["state"] for r in json.loads(out)["rules"]}
    assert code == 0 and states == {"error_rate_15m": "firing", "calls_1h": "ok"}
    code, out, _ = _run("alerts", "list", "-C", str(project))
    assert "firing" in out and "error_rate > 0.2 over 15m" in out
