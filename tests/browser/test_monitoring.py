"""The monitoring and alerts pages in a real browser (issue 14): after a batch through the mock
provider with injected faults, the numbers the page shows are those `aiops stats` prints for
the page's own window; the time-range picker changes the window; the alerts page lists a rule
with its state. The monitoring page's screenshot is also docs/img/monitoring.png (the README
shows it).

The batch runs `digest` (and the alert rules are `ledger`'s, metadata only: no new version),
so that the other browser tests' counts of `greet` stay theirs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.browser.conftest import REPO, Ui, UiServer
from tests.e2e.helpers import aiops, git

DOCS_SHOT = REPO / "docs" / "img" / "monitoring.png"
OK_ITEMS, FAILED_ITEMS = 12, 4


def cli(server: UiServer, *args: str | Path, env: dict[str, str] | None = None) -> Any:
    """`aiops ARGS -C <project>` on the server's database, in a subprocess."""
    return aiops(*args, "-C", server.root, env={
        "AIOPS_PROJECT": "test-project", "AIOPS_DATABASE_URL": server.db_url, **(env or {})})


def run_batch(server: UiServer, mock: Any, tmp_path: Path) -> None:
    """`aiops run digest --input-file`: OK_ITEMS answered, then FAILED_ITEMS refused by the
    provider (a forced 400: not retried, so each is one failed execution)."""
    env = {"MOCK_API_KEY": "sk-test", "AIOPS_MOCK_BASE_URL": mock.url + "/v1"}

    def batch(name: str, count: int) -> Any:
        items = tmp_path / f"{name}.jsonl"
        items.write_text("".join(json.dumps({"item": {"title": f"news {i}"}, "level": 3}) + "\n"
                                 for i in range(count)), encoding="utf-8")
        return cli(server, "run", "digest", "--input-file", items, "--output",
                   tmp_path / f"{name}.out.jsonl", "--concurrency", "4", env=env)

    done = batch("good", OK_ITEMS)
    assert done.returncode == 0, done.stderr
    mock.app.force_fault("bad_request")
    try:
        failed = batch("faulty", FAILED_ITEMS)
    finally:
        mock.app.force_fault(None)
    assert failed.returncode == 4, failed.stderr  # provider errors


def cli_stats(server: UiServer, since: str, name: str | None = None) -> dict[str, Any]:
    done = cli(server, "stats", *([name] if name else []), "--since", since, "--json")
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def shown_totals(ui: Ui) -> dict[str, str]:
    totals = ui.page.locator("#totals")
    return {k: totals.get_attribute(f"data-{k}") or "" for k in (
        "calls", "errors", "error-rate", "cost-usd", "p50-ms", "p95-ms", "p99-ms")}


def assert_same_numbers(ui: Ui, stats: dict[str, Any]) -> None:
    """The page's totals are the CLI's: in its data- attributes and as the cards show them."""
    shown = shown_totals(ui)
    assert int(shown["calls"]) == stats["calls"]
    assert int(shown["errors"]) == stats["errors"]
    assert float(shown["error-rate"]) == stats["error_rate"]
    assert float(shown["cost-usd"]) == stats["cost_usd"]
    for q in ("p50", "p95", "p99"):
        assert float(shown[f"{q}-ms"]) == stats[f"{q}_ms"]
    cards = ui.page.locator("#totals")
    assert cards.locator('[data-metric="calls"]').inner_text() == str(stats["calls"])
    assert cards.locator('[data-metric="errors"]').inner_text() == str(stats["errors"])
    assert cards.locator('[data-metric="error_rate"]').inner_text() == \
        f"{stats['error_rate'] * 100:.1f} %"
    # The calls chart's data table adds up to the total.
    table = ui.page.locator('table[data-chart="chart-calls"] tbody tr')
    per_step = [int(c) for c in table.locator("td:nth-child(2)").all_text_contents()]
    assert sum(per_step) == stats["calls"]


def window_since(ui: Ui) -> str:
    since = ui.page.locator("#window").get_attribute("data-since")
    assert since
    return since


def test_monitoring_after_a_batch_with_faults_shows_what_aiops_stats_prints(
        ui: Ui, ui_server: UiServer, mock_provider_package: Any, tmp_path: Path) -> None:
    run_batch(ui_server, mock_provider_package, tmp_path)
    ui.sign_in("admin")
    ui.page.get_by_role("link", name="Monitoring").first.click()
    ui.page.wait_for_url(re.compile(r".*/ui/monitoring$"))
    assert ui.page.locator('.ranges a[aria-current="true"]').inner_text() == "24 hours"
    report = cli_stats(ui_server, window_since(ui))
    assert_same_numbers(ui, report["total"])
    digest = next(f for f in report["functions"] if f["name"] == "digest")
    assert digest["calls"] >= OK_ITEMS + FAILED_ITEMS and digest["errors"] >= FAILED_ITEMS
    errors_row = ui.page.locator('#top-errors tr[data-label="digest"]')
    assert errors_row.get_attribute("data-errors") == str(digest["errors"])
    assert ui.page.locator('#by-provider tr[data-label="(none)"]').count() == 1  # failed: none
    assert ui.page.locator("svg.chart").count() == 6  # versions: on a function's own page
    ui.shot("monitoring")
    ui.page.screenshot(path=str(DOCS_SHOT))  # the README's picture: the first screenful

    # One function, from the top list, with the same range.
    errors_row.get_by_role("link", name="digest").click()
    ui.page.wait_for_url(re.compile(r".*/ui/monitoring/digest\?range=24h$"))
    one = cli_stats(ui_server, window_since(ui), "digest")["functions"][0]
    assert_same_numbers(ui, one)
    assert ui.page.locator("svg.chart").count() == 7
    assert ui.page.locator('#by-version tr[data-label="1.0.0"]').get_attribute("data-calls") \
        == str(one["calls"])
    ui.shot("monitoring-digest")

    # The time-range picker: 1 hour, then 7 days; each its own window, the same numbers.
    for label, key, steps in (("1 hour", "1h", 61), ("7 days", "7d", 57)):
        ui.page.locator(".ranges").get_by_role("link", name=label).click()
        ui.page.wait_for_url(re.compile(rf".*/ui/monitoring/digest\?range={key}$"))
        assert ui.page.locator('.ranges a[aria-current="true"]').inner_text() == label
        assert ui.page.locator("#window").get_attribute("data-range") == key
        rows = ui.page.locator('table[data-chart="chart-calls"] tbody tr').count()
        assert rows in (steps - 1, steps)  # the step `since` falls in, to the one of `until`
        assert_same_numbers(ui, cli_stats(ui_server, window_since(ui), "digest")
                            ["functions"][0])
        ui.shot(f"monitoring-{key}")


def test_the_alerts_page_lists_a_rule_with_its_state(ui: Ui, ui_server: UiServer) -> None:
    path = ui_server.root / "functions" / "ledger" / "function.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec["alerts"] = [{"name": "quiet", "metric": "calls", "over": "1h", "below": 1000},
                      {"name": "errors", "metric": "error_rate", "over": "1h", "above": 0.5,
                       "min_calls": 1}]
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    git(ui_server.root, "commit", "-qam", "Watch the ledger")
    applied = cli(ui_server, "apply", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    checked = cli(ui_server, "alerts", "check", "--quiet")
    assert checked.returncode == 2, checked.stdout + checked.stderr  # a rule fires

    ui.sign_in("viewer-finance")
    ui.page.get_by_role("link", name="Alerts").first.click()
    ui.page.wait_for_url(re.compile(r".*/ui/alerts$"))
    rules = ui.page.locator("#rules tbody tr")
    states = {(r.get_attribute("data-rule"), r.get_attribute("data-state"))
              for r in rules.all()}
    assert states == {("quiet", "firing"), ("errors", "ok")}
    quiet = ui.page.locator('#rules tr[data-rule="quiet"]')
    assert "calls < 1000 over 1h" in quiet.inner_text()
    assert quiet.locator(".badge").inner_text() == "firing"
    assert ui.page.locator("#firing-count").get_attribute("data-firing") == "1"
    history = ui.page.locator('#history tr[data-rule="quiet"]')
    assert history.first.get_attribute("data-event") == "firing"
    ui.shot("alerts")

    ui.page.get_by_role("button", name="Sign out").click()
    ui.sign_in("viewer")  # ledger is the finance group's: its rules are not shown
    ui.goto("/ui/alerts", shot="alerts-viewer")
    assert ui.page.locator("#rules tbody tr").count() == 0


def test_a_phone_reads_monitoring_and_alerts_without_scrolling_sideways(phone: Ui) -> None:
    phone.sign_in("admin")
    for path in ("/ui/monitoring", "/ui/monitoring/digest?range=1h", "/ui/alerts"):
        phone.goto(path)
        assert not phone.page.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth"), path
