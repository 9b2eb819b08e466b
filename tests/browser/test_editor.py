"""The editor and the schema builder in Chromium, on a server of this module's own (its saves
make versions, functions and commits no other module should see): an edit whose error
appears at its line, is fixed, shows its plan and is saved (a new version and a commit); a
schema built with the builder (a nested object and an enum), written into the YAML, checked,
created and archived; and what a viewer may not see or open."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from tests.browser.conftest import Ui, UiServer, own_server
from tests.fixtures_db import spec_data
from tests.fixtures_server import SECRET_ACCESS

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory,
              mock_provider_package: Any) -> Iterator[UiServer]:
    yield from own_server(tmp_path_factory, mock_provider_package, [[
        spec_data("greet"), spec_data("ledger", description="Books entries.",
                                      access=SECRET_ACCESS)]])


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def api(server: UiServer, path: str) -> Any:
    answer = httpx.get(server.base + "/api/contributor/ai-functions" + path,
                       headers={"Authorization": f"Bearer {server.tokens['admin']}"}, timeout=10)
    return answer


def git(server: UiServer, *args: str) -> str:
    return subprocess.run(["git", "-C", str(server.root), *args], check=True,
                          capture_output=True, text=True).stdout


def checked(ui: Ui, state: str) -> None:
    """Wait for the editor's check of the text as it is now to come back `ok` or `error`."""
    expect()(ui.page.locator("#editor")).to_have_attribute("data-checked", state)


def test_edit_an_error_at_its_line_then_the_plan_then_save(ui: Ui) -> None:
    ui.sign_in("editor")
    ui.goto("/ui/functions/greet")
    ui.page.locator("#edit-link").click()
    ui.page.wait_for_url(re.compile(r".*/ui/functions/greet/edit$"))
    checked(ui, "ok")
    ui.shot("opened")
    area = ui.page.get_by_label("YAML of greet")
    text = area.input_value()
    broken = text.replace("model: mock-small", "model: [mock-small")
    line = broken.splitlines().index("model: [mock-small") + 1
    area.fill(broken)
    checked(ui, "error")
    problem = ui.page.locator("#problems li.error").first
    assert problem.get_attribute("data-line") in (str(line), str(line + 1))
    assert problem.inner_text().startswith(f"Line {problem.get_attribute('data-line')}, column")
    expect()(ui.page.locator("#save")).to_be_disabled()
    ui.shot("error-at-line")
    problem.get_by_role("button").click()  # to the place in the text
    assert ui.page.locator("#cursor").inner_text().startswith("Line ")

    area.fill(text.replace("You are terse.", "You are brief."))
    checked(ui, "error")  # a behaviour change without a bump
    assert ui.page.locator('#problems li[data-code="version-not-bumped"]').count() == 1
    area.fill(text.replace("You are terse.", "You are brief.").replace("version: 1.0.0",
                                                                       "version: 1.1.0"))
    checked(ui, "ok")
    assert "new version" in ui.page.locator("#plan-action").inner_text()
    assert "1.0.0 → 1.1.0" in ui.page.locator("#plan-action").inner_text()
    assert "must be bumped" in ui.page.locator("#plan-bump").inner_text()
    assert ui.page.locator("#plan-breaking").inner_text() == "Not breaking for callers."
    assert "brief" in ui.page.locator("#plan pre.diff").first.inner_text()
    ui.shot("plan")

    before = git(ui.server, "rev-parse", "HEAD").strip()
    ui.page.get_by_role("button", name="Save").click()
    saved = ui.page.locator("#saved-commit")
    expect()(saved).to_contain_text("Saved greet 1.1.0")
    expect()(saved).to_contain_text("applied")
    ui.shot("saved")
    head = git(ui.server, "rev-parse", "HEAD").strip()
    assert head != before and head[:12] in saved.inner_text()
    assert "version: 1.1.0" in git(ui.server, "show", "HEAD:functions/greet/function.yaml")
    assert git(ui.server, "log", "-1", "--format=%s").strip() == "Update greet 1.1.0"
    detail = api(ui.server, "/greet").json()
    assert detail["summary"]["version"] == "1.1.0"
    assert [v["version"] for v in detail["versions"]] == ["1.1.0", "1.0.0"]


def test_build_a_schema_with_the_builder_then_create_and_archive(ui: Ui) -> None:
    ui.sign_in("editor")
    ui.goto("/ui/functions/new")
    checked(ui, "ok")
    area = ui.page.get_by_label("YAML of the new function")
    area.fill(area.input_value().replace("name: my-function", "name: triage"))
    checked(ui, "ok")
    page = ui.page
    expect()(page.locator("#sb-root-add")).to_be_visible()
    page.locator("#sb-root-add").click()
    name = page.locator('[id="sb-field2-name"]')
    name.fill("address")
    name.press("Tab")
    page.locator("#sb-address-type").select_option("object")
    page.locator("#sb-address-description").fill("Where to send it")
    page.locator("#sb-address-description").press("Tab")
    page.locator("#sb-address-add").click()
    city = page.locator('[id="sb-address.field1-name"]')
    city.fill("city")
    city.press("Tab")
    page.locator('[id="sb-address.city-required"]').check()
    page.locator('[id="sb-address.city-maxLength"]').fill("80")
    page.locator('[id="sb-address.city-maxLength"]').press("Tab")
    page.locator("#sb-root-add").click()
    tier = page.locator('[id="sb-field3-name"]')
    tier.fill("tier")
    tier.press("Tab")
    page.locator("#sb-tier-enum").fill("free\npro")
    page.locator("#sb-tier-default").fill("free")
    page.locator("#sb-tier-default").press("Tab")
    expect()(area).to_have_value(re.compile(r"default: free"))
    checked(ui, "ok")
    ui.shot("built")
    schema = yaml.safe_load(area.input_value())["input_schema"]
    assert schema == {
        "type": "object", "required": ["text"],
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": 20000},
            "address": {"type": "object", "description": "Where to send it",
                        "properties": {"city": {"type": "string", "maxLength": 80}},
                        "required": ["city"]},
            "tier": {"type": "string", "enum": ["free", "pro"], "default": "free"}},
        "additionalProperties": False}
    assert "# yaml-language-server" in area.input_value()  # the rest kept as it was
    warnings = page.locator("#problems li.warn").all_inner_texts()
    assert any("address" in w for w in warnings)  # unused optional inputs: warnings only

    page.get_by_role("button", name="Create").click()
    expect()(page.locator("#saved-commit")).to_contain_text("Saved triage 0.1.0")
    ui.shot("created")
    assert api(ui.server, "/triage").json()["spec"]["input_schema"] == schema

    ui.goto("/ui/functions/triage/edit")
    checked(ui, "ok")
    forms = page.locator("#builder-form")
    expect()(forms.locator('[id="sb-address.city-name"]')).to_have_value("city")
    page.get_by_role("button", name="Archive").click()  # the confirmation is accepted
    expect()(page.locator("#saved-commit")).to_contain_text("Archived")
    ui.shot("archived")
    assert api(ui.server, "/triage").json()["summary"]["status"] == "archived"


def test_a_viewer_sees_no_edit_and_the_editor_refuses_it(ui: Ui) -> None:
    ui.sign_in("viewer")
    ui.goto("/ui/functions/greet")
    assert ui.page.locator("#edit-link").count() == 0
    assert ui.page.locator("#test-link").count() == 0
    ui.allow_console("403")
    for path in ("/ui/functions/greet/edit", "/ui/functions/new", "/ui/functions/greet/test"):
        assert ui.goto(path).status == 403
    answer = ui.page.request.put(ui.url("/ui/functions/greet"), data="name: greet\n",
                                 headers={"X-CSRF-Token": ui.csrf(), "If-Match": "*",
                                          "Content-Type": "application/yaml"})
    assert answer.status == 403


def test_an_editor_off_a_functions_edit_list_is_refused(ui: Ui) -> None:
    ui.sign_in("viewer-finance")  # may view ledger, not edit it
    ui.goto("/ui/functions/ledger")
    assert ui.page.locator("#edit-link").count() == 0
    ui.sign_in("editor-finance")
    ui.goto("/ui/functions/ledger")
    assert ui.page.locator("#edit-link").count() == 1


def test_a_phone_reads_the_editor_and_the_console(phone: Ui) -> None:
    phone.sign_in("admin")
    for path in ("/ui/functions/greet/edit", "/ui/functions/new", "/ui/functions/greet/test"):
        phone.goto(path)
        wide = phone.page.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth")
        assert not wide, path
