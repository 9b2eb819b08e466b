"""The web UI's flows in Chromium (tests/browser/conftest.py): sign in and out, the functions
list to a function and a diff of two of its versions, the logs explorer, tokens, what a
viewer may not see or do, CSRF, the phone layout and the themes."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.browser.conftest import REPO, Ui

pytestmark = pytest.mark.postgres
DOCS_SHOT = REPO / "docs" / "img" / "functions.png"


def test_sign_in_refuses_a_bad_token_then_takes_a_good_one(ui: Ui) -> None:
    ui.goto("/ui/functions", shot="redirected")
    assert "/ui/signin" in ui.page.url  # no session: the sign-in page, then back
    ui.allow_console("401")
    ui.page.get_by_label("Token").fill("aiops_0123456789abcdef_" + "x" * 43)
    ui.page.get_by_role("button", name="Sign in").click()
    error = ui.page.get_by_role("alert")
    assert "not recognised" in error.inner_text()
    ui.shot("refused")
    ui.page.get_by_label("Token").fill(ui.server.tokens["editor-finance"])
    ui.page.get_by_role("button", name="Sign in").click()
    ui.page.wait_for_url(re.compile(r".*/ui/functions$"))
    names = ui.page.locator("#functions tbody th a").all_inner_texts()
    assert names == ["digest", "greet", "ledger"]  # its group finance may view ledger
    ui.shot("list")
    ui.page.screenshot(path=str(DOCS_SHOT))  # the README's picture of the list


def test_the_list_shows_each_function_with_its_day_and_filters(ui: Ui) -> None:
    ui.sign_in("viewer")
    rows = ui.page.locator("#functions tbody tr")
    assert rows.locator("th a").all_inner_texts() == ["digest", "greet"]  # ledger: finance only
    greet = ui.page.locator('#functions tr[data-name="greet"]')
    cells = greet.locator("td").all_inner_texts()
    assert cells[0] == "active" and cells[1] == "1.2.0" and cells[2] == "mock · mock-small"
    assert cells[3] == "in sync"
    assert cells[4] == "3"  # three runs through the API in the last 24 hours
    assert greet.locator("svg.spark polyline").count() == 1
    ui.page.get_by_label("Search").fill("digest")
    ui.page.get_by_role("button", name="Filter").click()
    ui.page.wait_for_url(re.compile(r".*q=digest.*"))
    assert rows.locator("th a").all_inner_texts() == ["digest"]
    ui.shot("searched")
    ui.goto("/ui/functions?status=draft")
    assert ui.page.locator("#no-functions").is_visible()


def test_a_file_changed_but_not_applied_shows_as_not_applied(ui: Ui) -> None:
    path = ui.server.root / "functions" / "digest" / "function.yaml"
    original = path.read_text(encoding="utf-8")
    ui.sign_in("viewer")
    try:
        path.write_text(original.replace("Digests a news item.", "Digests news."),
                        encoding="utf-8")
        ui.goto("/ui/functions?sync=not_applied")
        rows = ui.page.locator("#functions tbody tr")
        assert rows.locator("th a").all_inner_texts() == ["digest"]
        assert "not applied" in rows.first.inner_text()
        ui.goto("/ui/functions/digest")
        assert "differs from what is applied" in ui.page.locator("#sync-state").inner_text()
    finally:
        path.write_text(original, encoding="utf-8")
    ui.goto("/ui/functions?sync=not_applied")
    assert ui.page.locator("#no-functions").is_visible()


def test_list_to_detail_to_a_diff_of_two_versions(ui: Ui) -> None:
    ui.sign_in("editor")
    ui.page.get_by_role("link", name="greet", exact=True).click()
    ui.page.wait_for_url(re.compile(r".*/ui/functions/greet$"))
    ui.shot("detail")
    assert ui.page.get_by_role("heading", level=1).inner_text().startswith("greet")
    versions = ui.page.locator("#versions tbody th").all_inner_texts()
    assert [v.split()[0] for v in versions] == ["1.2.0", "1.1.0", "1.0.0"]
    applied_by = ui.page.locator("#versions tbody tr td:nth-child(4)").all_inner_texts()
    assert set(applied_by) == {"Ann"}
    # The schemas as tables: the enum and its default.
    tone = ui.page.locator("#input_schema tr", has_text="tone")
    assert "one of \"warm\", \"formal\"" in tone.inner_text() and "default" in tone.inner_text()
    # By default the newest version against the one before: schemas and settings changed.
    assert ui.page.locator("#diff-schemas-input_schema").is_visible()
    assert ui.page.locator("#diff-settings-configuration").is_visible()
    # Any two versions: 1.0.0 -> 1.1.0 changed the prompt only.
    ui.page.get_by_label("From version").select_option("1.0.0")
    ui.page.get_by_label("To version").select_option("1.1.0")
    ui.page.get_by_role("button", name="Compare").click()
    ui.page.wait_for_url(re.compile(r".*a=1\.0\.0&b=1\.1\.0.*"))
    ui.shot("diff")
    prompt = ui.page.locator("#diff-prompt-prompt").inner_text()
    assert "-    You are terse." in prompt and "+    You are terse and kind." in prompt
    assert ui.page.locator("#diff-schemas-input_schema").count() == 0
    # An editor (role and access) sees Edit and Test.
    assert ui.page.locator("#edit-link").is_visible() and ui.page.locator("#test-link").is_visible()


def test_the_logs_explorer_filters_and_shows_a_row(ui: Ui) -> None:
    ui.sign_in("admin")
    ui.goto("/ui/logs")
    ui.page.get_by_label("Function").select_option("greet")
    ui.page.get_by_role("button", name="Show").click()
    ui.page.wait_for_url(re.compile(r".*function=greet.*"))
    rows = ui.page.locator("table.logs tbody tr")
    assert rows.count() == 9  # six old rows, three fresh runs
    ui.page.get_by_label("Status").select_option("error")
    ui.page.get_by_role("button", name="Show").click()
    ui.page.wait_for_url(re.compile(r".*status=error.*"))
    assert rows.count() == 2  # rows 0 and 3 of add_logs failed
    ui.shot("errors")
    ui.page.get_by_label("Actor").fill("app")
    ui.page.get_by_role("button", name="Show").click()
    ui.page.wait_for_url(re.compile(r".*actor=app.*"))
    assert rows.count() == 1  # row 0: even rows are the app's
    ui.page.get_by_label("Status").select_option("")
    ui.page.get_by_label("Actor").fill("")
    ui.page.get_by_label("Since (UTC)").fill("2026-01-01T00:00:03")
    ui.page.get_by_label("Until (UTC)").fill("2026-01-01T00:00:05")
    ui.page.get_by_role("button", name="Show").click()
    ui.page.wait_for_url(re.compile(r".*since=.*"))
    assert rows.count() == 2  # seconds 3 and 4, newest first
    rows.last.locator("a").click()
    ui.page.wait_for_url(re.compile(r".*/ui/logs/greet/[0-9a-f-]{36}$"))
    ui.shot("row")
    assert "OutputError" in ui.page.locator("#log-error").inner_text()  # row 3
    assert "said 3" in ui.page.locator("#log-error").inner_text()
    assert ui.page.locator("#attempts tbody tr").count() == 1
    assert "person 3" in ui.page.locator("#log-input").inner_text()


def test_a_viewer_sees_no_content_no_edit_and_no_run(ui: Ui) -> None:
    ui.sign_in("viewer")
    ui.goto("/ui/functions/greet")
    assert ui.page.locator("#edit-link").count() == 0
    assert ui.page.locator("#test-link").count() == 0
    ui.goto("/ui/logs?function=greet&status=error")
    ui.page.locator("table.logs tbody tr a").first.click()
    ui.page.wait_for_url(re.compile(r".*/ui/logs/greet/.*"))
    assert ui.page.locator("#content-hidden").is_visible()
    assert ui.page.locator("#log-input").count() == 0
    assert "said" not in ui.page.locator("main").inner_text()  # the message may quote output
    # Pages and writes above its role are refused, even by their URL.
    ui.allow_console("403")
    ui.allow_console("404")
    response = ui.goto("/ui/tokens", shot="tokens-refused")
    assert response.status == 403
    assert "role admin" in ui.page.get_by_role("alert").inner_text()
    assert ui.page.get_by_role("link", name="Tokens").count() == 0
    answer = ui.page.request.post(ui.url("/ui/tokens"), form={
        "csrf": ui.csrf(), "name": "sneaky", "role": "admin"})
    assert answer.status == 403
    response = ui.goto("/ui/functions/ledger", shot="ledger-hidden")
    assert response.status == 404  # a function it may not view does not exist for it


def test_an_admin_makes_a_token_shown_once_and_revokes_it(ui: Ui) -> None:
    ui.sign_in("admin")
    ui.page.get_by_role("link", name="Tokens").click()
    ui.page.wait_for_url(re.compile(r".*/ui/tokens$"))
    ui.page.get_by_label("Name").fill("ui-made")
    ui.page.get_by_label("Role").select_option("invoker")
    ui.page.get_by_label("Groups (comma separated)").fill("finance, ops")
    ui.page.get_by_role("button", name="Make token").click()
    text = ui.page.locator("#token-text").inner_text().strip()
    ui.shot("made")
    assert re.fullmatch(r"aiops_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", text)
    api = httpx.get(ui.url("/api/contributor/ai-functions"),
                    headers={"Authorization": f"Bearer {text}"}, timeout=10)
    assert api.status_code == 200 and "ledger" in api.text  # the token works, with its groups
    ui.goto("/ui/tokens", shot="listed")
    assert text not in ui.page.content()  # shown once: never in the list
    row = ui.page.locator('#tokens tr[data-token="ui-made"]')
    assert row.get_attribute("data-state") == "active"
    row.get_by_role("button", name="Revoke ui-made").click()  # confirms (the dialog accepted)
    ui.page.wait_for_url(re.compile(r".*/ui/tokens$"))
    ui.shot("revoked")
    assert ui.page.locator('#tokens tr[data-token="ui-made"]').get_attribute(
        "data-state") == "revoked"
    api = httpx.get(ui.url("/api/contributor/ai-functions"),
                    headers={"Authorization": f"Bearer {text}"}, timeout=10)
    assert api.status_code == 401


def test_a_write_without_the_csrf_token_is_refused(ui: Ui) -> None:
    ui.sign_in("admin")
    ui.goto("/ui/tokens")
    for form in ({"name": "no-csrf", "role": "viewer"},
                 {"name": "bad-csrf", "role": "viewer", "csrf": "x" * 43}):
        answer = ui.page.request.post(ui.url("/ui/tokens"), form=form)
        assert answer.status == 403 and "CSRF" in answer.text()
    other_site = ui.page.request.post(ui.url("/ui/tokens"), form={
        "name": "cross", "role": "viewer", "csrf": ui.csrf()},
        headers={"Origin": "http://evil.example"})
    assert other_site.status == 403
    ui.goto("/ui/tokens")
    listed = ui.page.locator("#tokens tbody th").all_inner_texts()
    assert not {"no-csrf", "bad-csrf", "cross"} & set(listed)
    assert ui.page.request.post(ui.url("/ui/tokens"), form={
        "name": "with-csrf", "role": "viewer", "csrf": ui.csrf()}).status == 200


def test_signing_out_ends_the_session(ui: Ui) -> None:
    ui.sign_in("editor")
    cookies = ui.page.context.cookies()
    session = next(c for c in cookies if c["name"] == "aiops_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/ui"
    ui.page.get_by_role("button", name="Sign out").click()
    ui.page.wait_for_url(re.compile(r".*/ui/signin$"))
    ui.shot("signed-out")
    # The old cookie, sent again, opens nothing: the session is gone from the server.
    again = httpx.get(ui.url("/ui/functions"), cookies={"aiops_session": session["value"]},
                      follow_redirects=False, timeout=10)
    assert again.status_code == 303 and "/ui/signin" in again.headers["location"]


def test_pages_are_guarded_by_a_strict_content_security_policy(ui: Ui) -> None:
    response = ui.goto("/ui/signin")
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert ui.page.locator("script:not([src])").count() == 0
    for path in ("/", "/ui/"):
        home = httpx.get(ui.url(path), follow_redirects=False, timeout=10)
        assert home.status_code == 307 and home.headers["location"] == "/ui/functions"
    css = httpx.get(ui.url("/ui/static/aiops.css"), timeout=10)
    assert css.status_code == 200 and css.headers["content-security-policy"] == csp
    assert "no-store" not in css.headers.get("cache-control", "")  # files may be cached


def _overflows(page: Any) -> bool:
    return bool(page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"))


def test_a_phone_reads_every_page_without_scrolling_sideways(phone: Ui) -> None:
    phone.sign_in("admin")
    for path in ("/ui/functions", "/ui/functions/greet", "/ui/logs?function=greet",
                 "/ui/tokens"):
        phone.goto(path)
        assert not _overflows(phone.page), path


def test_the_theme_follows_the_system_and_the_toggle(ui: Ui) -> None:
    ui.page.emulate_media(color_scheme="dark")
    ui.sign_in("viewer")
    background = "getComputedStyle(document.body).backgroundColor"
    dark = ui.page.evaluate(background)
    ui.shot("dark")
    ui.page.get_by_role("button", name="Switch between light and dark theme").click()
    assert ui.page.evaluate(background) != dark
    assert ui.page.evaluate("document.documentElement.dataset.theme") == "light"
    ui.goto("/ui/functions", shot="light-kept")  # the choice is kept across pages
    assert ui.page.evaluate("document.documentElement.dataset.theme") == "light"


def test_the_keyboard_reaches_the_content_first(ui: Ui) -> None:
    ui.sign_in("viewer")
    ui.page.keyboard.press("Tab")
    focused = ui.page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to content"
    ui.page.keyboard.press("Enter")
    assert ui.page.evaluate("location.hash") == "#main"
