"""The monitoring and alerts pages of the web UI, through the server's app, on SQLite and
PostgreSQL: the numbers are the stats verb's (what `aiops stats` prints) for the page's own
window, the time range is picked by the URL, a function the caller may not view is neither
counted nor reachable, and the alerts page lists rules with their states."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

from aiops import commands
from aiops.commands.monitoring import stats
from aiops.records import LogRow
from aiops.store import open_store
from tests.fixtures_db import apply_project, spec_data, write_project
from tests.fixtures_server import SECRET_ACCESS, Api


def sign_in(api: Api, token: str) -> None:
    """Sign the test client in as the UI's form does (its nonce cookie, then the token)."""
    api.client.cookies.clear()
    form = api.client.get("/ui/signin")
    nonce = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert nonce, form.text
    done = api.client.post("/ui/signin", data={"csrf": nonce[1], "token": api.tokens[token],
                                               "next": "/ui/monitoring"},
                           follow_redirects=False)
    assert done.status_code == 303, done.text


def add_recent(api: Api, name: str, outcomes: list[str], *, minutes_ago: int = 5) -> None:
    """Log rows of `name` a few minutes ago: 'ok', or an error of that type."""
    store = open_store(api.db_url)
    row = store.find_function(name)
    assert row is not None
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    rows = [LogRow(function_id=row.summary.id, version_id=row.current_version_id,
                   version=row.summary.version or "0.0.0",
                   status="ok" if o == "ok" else "error", input={"who": "x"},
                   output="hi" if o == "ok" else None,
                   error=None if o == "ok" else {"type": o, "message": "no", "exit_code": 5},
                   execution_time=100.0 + 50 * i, actor="app",
                   metadata={"model": "mock-small"}, provider="mock" if o == "ok" else None,
                   cost_usd=0.001 if o == "ok" else None, input_tokens=10, output_tokens=5,
                   created_at=at + timedelta(seconds=i)) for i, o in enumerate(outcomes)]
    assert not store.insert_logs(rows).lost


def attrs(page: str, element_id: str) -> dict[str, str]:
    """The data- attributes of the element with this id."""
    tag = re.search(rf'<[a-z]+ [^>]*id="{element_id}"[^>]*>', page, re.S)
    assert tag, element_id
    return {k: html.unescape(v) for k, v in re.findall(r'data-([a-z0-9-]+)="([^"]*)"', tag[0])}


def window(page: str) -> tuple[datetime, datetime]:
    w = attrs(page, "window")
    return datetime.fromisoformat(w["since"]), datetime.fromisoformat(w["until"])


def test_the_totals_are_the_stats_verbs_for_the_pages_window(api: Api) -> None:
    add_recent(api, "greet", ["ok"] * 7 + ["ProviderError", "OutputError", "ProviderError"])
    add_recent(api, "ledger", ["ok", "ok", "ProviderError"])
    store = open_store(api.db_url)

    sign_in(api, "admin")
    page = api.client.get("/ui/monitoring").text
    since, until = window(page)
    # Whole hours: from the one 24 hours ago to the end of the running one.
    assert {(t.minute, t.second, t.microsecond) for t in (since, until)} == {(0, 0, 0)}
    assert until - since == timedelta(hours=25)
    total = stats(store, since=since, until=until).total.as_dict()
    shown = attrs(page, "totals")
    assert (int(shown["calls"]), int(shown["errors"])) == (total["calls"], total["errors"]) \
        == (13, 4)
    assert float(shown["error-rate"]) == total["error_rate"]
    assert float(shown["cost-usd"]) == total["cost_usd"]
    assert float(shown["p95-ms"]) == total["p95_ms"]
    assert 'id="top-errors"' in page and 'data-label="greet" data-calls="10" data-errors="3"' \
        in page
    assert 'data-label="(none)"' in page  # the failed calls reached no provider
    for by in ("provider", "model"):  # each breakdown: the verb's groups of every function
        table = re.search(rf'<table id="by-{by}">.*?</table>', page, re.S)
        assert table
        rows = re.findall(r'data-label="([^"]*)" data-calls="(\d+)" data-errors="(\d+)"',
                          table[0])
        expected: dict[str, tuple[int, int]] = {}
        for f in stats(store, since=since, until=until, by=by).functions:
            for g in f.groups:
                calls, errors = expected.get(g.key or "(none)", (0, 0))
                expected[g.key or "(none)"] = (calls + g.stats.calls, errors + g.stats.errors)
        assert {label: (int(c), int(e)) for label, c, e in rows} == expected
        assert sum(c for c, _ in expected.values()) == 13
    assert page.count('role="img"') == 6  # four time charts, by provider and by model

    # A viewer outside the ledger's groups: neither counted nor reachable.
    sign_in(api, "viewer")
    page = api.client.get("/ui/monitoring").text
    assert int(attrs(page, "totals")["calls"]) == 10
    assert "ledger" not in page
    assert api.client.get("/ui/monitoring/ledger").status_code == 404
    one = api.client.get("/ui/monitoring/greet?range=1h")
    assert one.status_code == 200
    assert one.text.count('role="img"') == 7  # and by version: a function's own
    assert 'id="by-version"' in one.text and 'data-label="1.0.0" data-calls="10"' in one.text
    assert attrs(one.text, "window")["range"] == "1h"
    assert 'aria-current="true">1 hour' in one.text
    calls_table = re.search(r'<table data-chart="chart-calls">.*?</table>', one.text, re.S)
    assert calls_table
    steps = re.findall(r'<th scope="row">([0-9: -]+)</th>', calls_table[0])
    since, until = window(one.text)
    # A point a minute, from `since` to the running minute, which `until` ends.
    last = until - timedelta(minutes=1)
    assert (steps[0], steps[-1]) == (f"{since:%Y-%m-%d %H:%M}", f"{last:%Y-%m-%d %H:%M}")
    assert len(steps) == len(set(steps)) == 61


def test_a_range_that_is_not_offered_is_a_clear_error(api: Api) -> None:
    sign_in(api, "viewer")
    bad = api.client.get("/ui/monitoring?range=2w")
    assert bad.status_code == 400
    assert "use one of 1h, 24h, 7d, 30d" in bad.text
    assert "Traceback" not in bad.text
    api.client.cookies.clear()
    away = api.client.get("/ui/monitoring", follow_redirects=False)
    assert away.status_code == 303 and "/ui/signin" in away.headers["location"]


def test_the_alerts_page_lists_rules_with_their_states(api: Api) -> None:
    quiet = {"metric": "calls", "over": "1h", "below": 1000}  # fires at once: no traffic
    write_project(api.root, [spec_data("greet", alerts=[{**quiet, "name": "quiet"}]),
                             spec_data("ledger", description="Books entries.",
                                       access=SECRET_ACCESS, alerts=[quiet])])
    apply_project(api.root, url=api.db_url, actor="Ann <ann@example.com>")
    ws = commands.open_workspace(api.root, database_url=api.db_url)
    assert len(commands.check_alerts(ws).firing) == 2

    sign_in(api, "viewer")
    page = api.client.get("/ui/alerts")
    assert page.status_code == 200
    rows = re.findall(r'<tr data-function="([^"]+)" data-rule="([^"]+)" data-state="([^"]+)"',
                      page.text)
    assert rows == [("greet", "quiet", "firing")]
    assert "calls &lt; 1000 over 1h" in page.text
    assert re.findall(r'<tr data-event="([^"]+)" data-rule="([^"]+)"', page.text) == [
        ("firing", "quiet")]

    sign_in(api, "viewer-finance")
    page = api.client.get("/ui/alerts")
    assert len(re.findall(r'data-state="firing"', page.text)) == 2
    assert api.client.get("/ui/alerts?cursor=nonsense").status_code == 400


def test_budget_and_quota_use_are_shown(api: Api) -> None:
    write_project(api.root, [spec_data("greet", limits={"daily_calls": 100,
                                                        "daily_budget_usd": 2.0}),
                             spec_data("ledger", description="Books entries.",
                                       access=SECRET_ACCESS)])
    apply_project(api.root, url=api.db_url, actor="Ann <ann@example.com>")
    ws = commands.open_workspace(api.root, database_url=api.db_url)
    api.tokens["quota"] = commands.create_token(ws, name="quota", role="viewer", daily_calls=50,
                                                daily_usd=0.5, created_by="Op").text

    sign_in(api, "quota")
    page = api.client.get("/ui/monitoring").text
    budgets = re.search(r'<table id="budgets">.*?</table>', page, re.S)
    assert budgets and 'data-function="greet"' in budgets[0]
    assert "0 of 100 (0.0 %)" in budgets[0] and "$0 of $2.00 (0.0 %)" in budgets[0]
    quota = re.search(r'<dl class="meta" id="quota">.*?</dl>', page, re.S)
    assert quota and "0 of 50 (0.0 %)" in quota[0] and "$0 of $0.5 (0.0 %)" in quota[0]

    sign_in(api, "viewer")  # no quotas; ledger's page is not its to see
    page = api.client.get("/ui/monitoring/greet").text
    assert "Your token has no daily quotas." in page and 'data-function="greet"' in page
