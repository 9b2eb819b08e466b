"""The test console in Chromium, on a server of this module's own (its runs are log rows no
other module should count): the form drawn from `digest`'s nested input schema (an object, an
array of objects, an integer), the raw-JSON toggle, the provider picker, Run, and the output,
latency, tokens, cost, attempts and the link to the log row; a viewer gets no Run."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browser.conftest import DIGEST, Ui, UiServer, own_server
from tests.fixtures_db import spec_data

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory,
              mock_provider_package: Any) -> Iterator[UiServer]:
    yield from own_server(tmp_path_factory, mock_provider_package,
                          [[spec_data("greet"), DIGEST]])


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def test_fill_the_generated_form_run_and_follow_the_log(ui: Ui) -> None:
    ui.sign_in("invoker")
    ui.goto("/ui/functions/digest")
    ui.page.locator("#test-link").click()
    ui.page.wait_for_url(re.compile(r".*/ui/functions/digest/test$"))
    page = ui.page
    form = page.locator("#input-form")
    assert form.locator("legend").all_inner_texts()[:2] == ["Input", "item"]
    form.get_by_label("title").fill("Rates rise")
    form.get_by_label("level").fill("3")
    form.get_by_role("button", name="Add to tags").click()
    form.get_by_label("label").fill("economy")
    assert page.get_by_label("Provider").locator("option").all_inner_texts()[1:] == ["mock"]
    page.get_by_label("Provider").select_option("mock")
    ui.shot("filled")

    page.get_by_label("Raw JSON").check()
    raw = page.get_by_label("Input as JSON")
    wanted = {"item": {"title": "Rates rise", "tags": [{"label": "economy"}]}, "level": 3}
    assert json.loads(raw.input_value()) == wanted
    ui.shot("raw")
    page.get_by_label("Raw JSON").uncheck()
    assert form.get_by_label("title").input_value() == "Rates rise"  # drawn back from it

    page.get_by_role("button", name="Run").click()
    output = page.locator("#output")
    expect()(output).to_be_visible()
    ui.shot("ran")
    assert output.inner_text().strip()
    assert re.fullmatch(r"\$\d+\.\d{6}", page.locator("#run-cost").inner_text())
    assert page.locator("#run-latency").inner_text().endswith(" ms")
    assert re.fullmatch(r"\d+ in, \d+ out", page.locator("#run-tokens").inner_text())
    assert page.locator("#attempts tbody tr").count() >= 1
    link = page.locator("#log-link")
    log_id = link.inner_text()
    assert link.get_attribute("href") == f"/ui/logs/digest/{log_id}"
    row = httpx.get(f"{ui.server.base}/api/contributor/ai-functions/digest/logs",
                    headers={"Authorization": f"Bearer {ui.server.tokens['admin']}"},
                    timeout=10).json()["items"][0]
    assert row["id"] == log_id and row["input"] == wanted and row["actor"] == "token:invoker"
    link.click()
    page.wait_for_url(re.compile(rf".*/ui/logs/digest/{log_id}$"))
    ui.shot("log-row")


def test_an_input_the_schema_refuses_shows_the_executions_error(ui: Ui) -> None:
    ui.sign_in("invoker")
    ui.goto("/ui/functions/digest/test")
    ui.page.get_by_label("Raw JSON").check()
    ui.page.get_by_label("Input as JSON").fill('{"level": 9}')
    ui.page.get_by_role("button", name="Run").click()
    error = ui.page.locator("#run-error")
    expect()(error).to_contain_text("InputError")
    assert ui.page.locator("#log-link").count() == 1  # it ran as far as the input check
    ui.shot("refused")


def test_a_viewer_sees_no_run_and_the_console_refuses_it(ui: Ui) -> None:
    ui.sign_in("viewer")
    ui.goto("/ui/functions/digest")
    assert ui.page.locator("#test-link").count() == 0
    ui.allow_console("403")
    assert ui.goto("/ui/functions/digest/test").status == 403
    answer = ui.page.request.post(ui.url("/ui/functions/digest/run"),
                                  data=json.dumps({"input": {"level": 1}}),
                                  headers={"X-CSRF-Token": ui.csrf(),
                                           "Content-Type": "application/json"})
    assert answer.status == 403
