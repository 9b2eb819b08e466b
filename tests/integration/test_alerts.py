"""Alerts end to end, on real SQLite and PostgreSQL, with a real HTTP receiver on 127.0.0.1
(issue 13): an error burst fires exactly one signed notification, recovery resolves it
exactly once, further evaluations send nothing, a receiver that was down gets the
notification once it is up, two evaluators at once still send one, and the SSRF guard refuses
a loopback receiver unless private addresses are allowed.

Log rows are written through the store's real log path; signatures are checked here with
hmac and base64 as Standard Webhooks specifies, not with aiops's own code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiops import commands
from aiops.commands.alerts import deliver, evaluate_rules
from aiops.store import LogRow, Store
from aiops.workspace import Workspace, open_workspace
from tests.fixtures_alerts import Receiver
from tests.fixtures_db import apply_project, spec_data, write_project

KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()


def verified(headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks: v1,<base64 HMAC-SHA256 of "id.timestamp.body">, key from whsec_."""
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(sig.removeprefix("v1,"), expected)
               for sig in headers["webhook-signature"].split() if sig.startswith("v1,"))


RULE = {"name": "errors", "metric": "error_rate", "over": "15m", "above": 0.5, "min_calls": 5,
        "severity": "critical", "notify": ["ops"]}


def project_with(root: Path, store: Store, *, allow_private: bool = True,
                 rules: list[dict[str, Any]] | None = None) -> None:
    write_project(root, [spec_data("greet", alerts=rules or [RULE])])
    (root / "aiops.yaml").write_text(yaml.safe_dump({"alerting": {
        "interval": "30s", "allow_private_addresses": allow_private, "repeat_interval": None,
        "receivers": {"ops": {"type": "webhook", "url_env": "AIOPS_ALERT_URL",
                              "secret_env": "AIOPS_ALERT_SECRET"}}}}), encoding="utf-8")
    apply_project(root, url=store.url, store=store, actor="ci <ci@example.com>")


def workspace(root: Path, store: Store, url: str) -> Workspace:
    return open_workspace(root, database_url=store.url,
                          environ={"AIOPS_ALERT_URL": url, "AIOPS_ALERT_SECRET": SECRET})


def burst(store: Store, at: datetime, *, errors: int, ok: int = 0) -> None:
    dv = store.resolve("greet")
    rows = [LogRow(function_id=dv.function_id, version=dv.version, version_id=dv.version_id,
                   status=status, input={"who": "x"}, error="boom" if status == "error" else None,
                   execution_time=120.0, actor="test", created_at=at)
            for status in ["error"] * errors + ["ok"] * ok]
    report = store.insert_logs(rows)
    assert not report.lost and not report.stored_alone


def test_a_burst_fires_once_signed_and_recovery_resolves_once(
        tmp_path: Path, store: Store, receiver: Receiver) -> None:
    root = tmp_path / "proj"
    project_with(root, store)
    ws = workspace(root, store, receiver.url)
    now = datetime.now(UTC)
    assert commands.check_alerts(ws, store=store, now=now).firing == []

    burst(store, now - timedelta(minutes=1), errors=8, ok=2)
    now += timedelta(seconds=30)
    report = commands.check_alerts(ws, store=store, now=now)
    assert [r.rule.rule.rule_name for r in report.firing] == ["errors"]
    assert report.delivery.sent == 1
    [(headers, body)] = receiver.received
    assert verified(headers, body)
    assert not verified({**headers, "webhook-timestamp": "1"}, body)
    event = json.loads(body)
    assert event["type"] == "alert.firing"
    assert event["data"]["function"] == "greet" and event["data"]["rule"] == "errors"
    assert event["data"]["value"] == pytest.approx(0.8)
    assert event["data"]["severity"] == "critical"
    assert SECRET not in body.decode() and receiver.url not in body.decode()

    for _ in range(10):  # still firing: nothing more is sent
        now += timedelta(seconds=30)
        assert len(commands.check_alerts(ws, store=store, now=now).firing) == 1
    assert len(receiver.received) == 1

    burst(store, now - timedelta(minutes=1), errors=0, ok=30)  # 8 errors in 40 calls
    now += timedelta(seconds=30)
    report = commands.check_alerts(ws, store=store, now=now)
    assert report.firing == []
    assert [e["type"] for e in receiver.events()] == ["alert.firing", "alert.resolved"]
    assert verified(*receiver.received[1])
    assert receiver.events()[1]["data"]["value"] == pytest.approx(0.2)
    ids = {h["webhook-id"] for h, _ in receiver.received}
    assert len(ids) == 2  # one message id per notification

    for _ in range(10):
        now += timedelta(seconds=30)
        commands.check_alerts(ws, store=store, now=now)
    assert len(receiver.received) == 2
    states = {v.rule: v.state for v in commands.list_alerts(ws, store=store)}
    assert states == {"errors": "ok"}
    history = store.alert_history(function_ids=None, limit=10)
    assert [h.event for h in history] == ["resolved", "firing"]
    assert all(d["status"] == "sent" for h in history for d in h.deliveries)


def test_a_receiver_that_was_down_gets_the_notification_once_it_is_up(
        tmp_path: Path, store: Store, unused_port: int) -> None:
    root = tmp_path / "proj"
    project_with(root, store)
    down = Receiver(port=unused_port)
    ws = workspace(root, store, down.url)
    now = datetime.now(UTC)
    burst(store, now - timedelta(minutes=1), errors=6)
    report = commands.check_alerts(ws, store=store, now=now)
    assert len(report.firing) == 1
    assert report.delivery.sent == 0 and report.delivery.retrying == 1
    assert "ConnectError" in report.delivery.errors[0]
    # Before its backoff is over, the notification is not tried again.
    assert deliver(store, ws.settings.alerting, ws.environ,
                   now=now + timedelta(seconds=1)).retrying == 0

    down.start()
    try:
        later = now + timedelta(seconds=10)
        d = deliver(store, ws.settings.alerting, ws.environ, now=later)
        assert (d.sent, d.retrying) == (1, 0)
        assert len(down.received) == 1 and verified(*down.received[0])
        assert deliver(store, ws.settings.alerting, ws.environ,
                       now=later + timedelta(hours=1)).sent == 0
        assert len(down.received) == 1
    finally:
        down.stop()


def test_two_evaluators_at_once_send_one(tmp_path: Path, store: Store,
                                         receiver: Receiver) -> None:
    root = tmp_path / "proj"
    project_with(root, store)
    ws = workspace(root, store, receiver.url)
    now = datetime.now(UTC)
    burst(store, now - timedelta(minutes=1), errors=6)
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def evaluator() -> None:
        try:
            start.wait()
            evaluate_rules(store, ws.settings.alerting, now=now, force=True)
            deliver(store, ws.settings.alerting, ws.environ, now=now)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=evaluator) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(receiver.received) == 1 and verified(*receiver.received[0])
    assert [h.event for h in store.alert_history(function_ids=None, limit=10)] == ["firing"]


def test_the_guard_refuses_a_loopback_receiver_unless_allowed(
        tmp_path: Path, store: Store, receiver: Receiver) -> None:
    root = tmp_path / "proj"
    project_with(root, store, allow_private=False)
    ws = workspace(root, store, receiver.url)
    now = datetime.now(UTC)
    burst(store, now - timedelta(minutes=1), errors=6)
    report = commands.check_alerts(ws, store=store, now=now)
    assert len(report.firing) == 1
    assert report.delivery.sent == 0 and receiver.received == []
    [error] = report.delivery.errors
    assert "127.0.0.1" in error and "allow_private_addresses" in error
    [h] = store.alert_history(function_ids=None, limit=10)
    assert h.deliveries[0]["status"] == "pending"
    assert "127.0.0.1" in h.deliveries[0]["last_error"]


def test_a_rule_removed_takes_its_state_with_it(tmp_path: Path, store: Store,
                                                receiver: Receiver) -> None:
    root = tmp_path / "proj"
    project_with(root, store, rules=[RULE, {"metric": "calls", "over": "1h", "below": 5}])
    ws = workspace(root, store, receiver.url)
    now = datetime.now(UTC)
    assert len(commands.check_alerts(ws, store=store, now=now).firing) == 1
    assert set(store.alert_states()) >= {(store.resolve("greet").function_id, "calls_1h")}
    project_with(root, store)  # calls_1h is gone from the file, and applied
    commands.check_alerts(ws, store=store, now=now + timedelta(seconds=30))
    assert [rule for _, rule in store.alert_states()] == ["errors"]
