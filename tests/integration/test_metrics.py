"""/metrics through the app, on SQLite and PostgreSQL: every execution of the process counted
once (by the runner's observer, whatever ran it), the budget gauges read from the database,
firing alerts read from their table when it exists, what a caller may view, 401 without a
token. The exposition is read with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aiops import commands, latency
from aiops.store import Store
from tests import fixtures_providers as runner_project
from tests.fixtures_db import apply_project
from tests.fixtures_server import SECRET_ACCESS, make_tokens

TICKET = {"subject": "Charged twice", "body": "Refund one."}
LIMITS = {"daily_calls": 50, "daily_budget_usd": 2.0}


@dataclass
class Served:
    client: Any
    ws: Any
    store: Store
    tokens: dict[str, str]

    def scrape(self, token: str | None = "admin", expect: int = 200) -> Any:
        headers = {} if token is None else {"Authorization": f"Bearer {self.tokens[token]}"}
        response = self.client.get("/metrics", headers=headers)
        assert response.status_code == expect, response.text
        return response

    def samples(self, token: str = "admin") -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        response = self.scrape(token)
        assert response.headers["content-type"].startswith("text/plain")
        return {(s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(response.text)
                for s in family.samples}


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


@pytest.fixture
def served(tmp_path: Path, db_url: str, store: Store, mock_provider: Any,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    from starlette.testclient import TestClient

    from aiops.server.app import ServerConfig, create_app

    monkeypatch.setenv("AIOPS_PROJECT", "test-project")
    for name, env_value in runner_project.env_for(mock_provider.url).items():
        monkeypatch.setenv(name, env_value)
    hidden = dict(runner_project.CLASSIFY, name="ledger", access=SECRET_ACCESS, limits=LIMITS,
                  alerts=[{"metric": "error_rate", "over": "5m", "above": 0.5}])
    root = runner_project.write(tmp_path / "proj", dict(runner_project.CLASSIFY, limits=LIMITS),
                                hidden)
    apply_project(root, url=db_url, store=store, actor="ci")
    tokens = make_tokens(root, db_url)
    app = create_app(ServerConfig(project_dir=str(root), database_url=db_url))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Served(client=client, ws=commands.open_workspace(root, database_url=db_url),
                     store=store, tokens=tokens)


def run(served: Served, target: str, inputs: list[Any]) -> list[Any]:
    """Each input run by its own runner (as separate requests would), closed after."""
    results = [asyncio.run(commands.run(served.ws, target, v, actor="app")) for v in inputs]
    return [r.execution for r in results]


def test_every_execution_of_the_process_is_counted_once(served: Served) -> None:
    before = served.samples()
    done = run(served, "classify", [dict(TICKET, body=f"#{i}") for i in range(3)]
               + [{"subject": ""}])
    after = served.samples()
    ok, bad = done[:3], done[3]
    assert all(e.ok for e in ok) and bad.error is not None
    assert len(served.store.recent_logs("classify")) == 4  # one row each, one count each

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    e = ok[0]
    assert delta("aiops_executions_total", function="classify", version=e.version,
                 provider=e.provider, model=e.model, outcome="ok", error_type="") == 3
    assert delta("aiops_executions_total", function="classify", provider="", model="",
                 outcome="error", error_type="InputError") == 1
    assert delta("aiops_executions_total", function="classify") == 4
    assert delta("aiops_execution_duration_seconds_count", function="classify",
                 outcome="ok") == 3
    assert delta("aiops_execution_duration_seconds_sum", function="classify", outcome="ok") \
        == pytest.approx(sum(x.latency_ms for x in ok) / 1000)
    assert delta("aiops_tokens_total", function="classify", type="input") \
        == sum(x.input_tokens for x in ok) > 0
    assert delta("aiops_tokens_total", function="classify", type="output") \
        == sum(x.output_tokens for x in ok) > 0
    assert delta("aiops_cost_usd_total", function="classify") \
        == pytest.approx(sum(x.cost_usd for x in ok)) and sum(x.cost_usd for x in ok) > 0


def test_the_latency_histogram_has_the_shared_buckets(served: Served) -> None:
    run(served, "classify", [TICKET])
    samples = served.samples()
    bounds = sorted({float(dict(ls)["le"]) for (n, ls) in samples
                     if n == "aiops_execution_duration_seconds_bucket"
                     and ("function", "classify") in ls})
    assert bounds == [*latency.BOUNDS_S, float("inf")]


def test_budget_gauges_are_todays_use_of_the_daily_limits(served: Served) -> None:
    run(served, "classify", [dict(TICKET, body=f"#{i}") for i in range(2)])
    row = served.store.find_function("classify")
    assert row is not None
    usage = served.store.usage(row.summary.id, datetime.now(UTC).date())
    assert usage is not None and usage["calls_used"] == 2 and usage["usd_spent"] > 0
    samples = served.samples()
    assert value(samples, "aiops_budget_used_ratio", function="classify", limit="calls") \
        == pytest.approx(2 / LIMITS["daily_calls"])
    assert value(samples, "aiops_budget_used_ratio", function="classify", limit="usd") \
        == pytest.approx(usage["usd_spent"] / LIMITS["daily_budget_usd"])
    # Nothing run today: a budget untouched is 0, not absent.
    assert ("aiops_budget_used_ratio", frozenset({("function", "ledger"), ("limit", "calls")})) \
        in samples
    assert value(samples, "aiops_budget_used_ratio", function="ledger") == 0


def test_firing_alerts_are_read_from_their_table_when_it_exists(served: Served) -> None:
    from sqlalchemy import Column, MetaData, String, Table, Uuid, insert, inspect

    samples = served.samples()
    # A function with rules shows how many fire (none yet); one without rules shows nothing.
    assert ("aiops_alerts_firing", frozenset({("function", "ledger")})) in samples
    assert value(samples, "aiops_alerts_firing", function="ledger") == 0
    assert not any(n == "aiops_alerts_firing" and ("function", "classify") in ls
                   for n, ls in samples)
    engine = served.store.engine
    states = Table("alert_states", MetaData(), Column("function_id", Uuid()),
                   Column("rule", String(63)), Column("state", String(10)))
    if not inspect(engine).has_table("alert_states"):  # before the alerts migration
        states.create(engine)
    row = served.store.find_function("ledger")
    assert row is not None
    with engine.begin() as conn:
        conn.execute(insert(states), [
            {"function_id": uuid.UUID(row.summary.id), "rule": rule, "state": state}
            for rule, state in (("errors", "firing"), ("slow", "firing"), ("cost", "ok"))])
    assert value(served.samples(), "aiops_alerts_firing", function="ledger") == 2


def test_metrics_need_a_token_and_show_only_what_it_may_view(served: Served) -> None:
    body = served.scrape(None, expect=401).json()
    assert body["code"] == "unauthenticated"
    assert served.scrape("revoked", expect=401).json()["code"] == "unauthenticated"
    admin = served.samples("admin")
    assert value(admin, "aiops_budget_used_ratio", function="ledger", limit="calls") == 0
    assert any(("function", "ledger") in ls for _, ls in admin)
    viewer = served.samples("viewer")  # no group on ledger's view list: ledger does not exist
    assert not any(("function", "ledger") in ls for _, ls in viewer)
    assert any(("function", "classify") in ls for _, ls in viewer)
    assert any(("function", "ledger") in ls for _, ls in served.samples("viewer-finance"))
