"""The web UI's editor and test console behind a real sign-in, on SQLite and PostgreSQL: the
pages and their JSON routes, the roles and `access` lists (refused as the API refuses), the
writes modes, and a test run logged as the API's test endpoint logs it. The browser flows are
in tests/browser; these hold the routes to their contract without one."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from aiops import commands
from tests.e2e.helpers import git
from tests.fixtures_db import current_versions
from tests.fixtures_server import Api

YAML = {"Content-Type": "application/yaml"}


@pytest.fixture
def repo(live_api: Api) -> Api:
    return live_api


def signed_in(api: Api, token: str, client: Any = None) -> Any:
    """The API's client (or `client`), signed in to the UI with `token` (its session cookie
    replaces any other) and sending the session's CSRF token. One client, whose lifespan the
    fixture holds: the server's runner lives on its event loop."""
    client = client or api.client
    client.cookies.clear()
    client.headers.pop("X-CSRF-Token", None)
    page = client.get("/ui/signin")
    nonce = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert nonce is not None
    done = client.post("/ui/signin", data={"token": api.tokens[token], "csrf": nonce[1],
                                           "next": "/ui/functions"}, follow_redirects=False)
    assert done.status_code == 303, done.text
    meta = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/ui/functions").text)
    assert meta is not None
    client.headers["X-CSRF-Token"] = meta[1]
    return client


def source(api: Api, name: str) -> tuple[str, str]:
    found = commands.function_source(commands.open_workspace(api.root), name)
    assert found is not None
    return found


def head(api: Api) -> str:
    return git(api.root, "rev-parse", "HEAD").strip()


# --- the editor ---------------------------------------------------------------------------------


def test_the_editor_opens_the_file_at_head_for_an_editor(repo: Api) -> None:
    ui = signed_in(repo, "editor")
    page = ui.get("/ui/functions/greet/edit")
    assert page.status_code == 200
    text, etag = source(repo, "greet")
    assert "name: greet" in text and f'data-etag="{etag.replace(chr(34), "&#34;")}"' in page.text
    assert "<textarea id=\"yaml\"" in page.text and "Schema builder" in page.text
    assert ui.get("/ui/functions/new").status_code == 200


@pytest.mark.parametrize(("token", "url", "status"), [
    ("viewer", "/ui/functions/greet/edit", 403),
    ("invoker", "/ui/functions/new", 403),
    ("editor", "/ui/functions/ledger/edit", 404),  # it may not view ledger: no such function
    ("viewer-finance", "/ui/functions/ledger/edit", 403),
])
def test_who_may_not_edit_is_refused(repo: Api, token: str, url: str, status: int) -> None:
    ui = signed_in(repo, token)
    assert ui.get(url).status_code == status
    name = url.split("/")[3]
    if name == "new":
        text = source(repo, "greet")[0].replace("name: greet", "name: hello")
        assert ui.post("/ui/functions", content=text, headers=YAML).status_code == 403
        return
    text, etag = source(repo, name)
    answer = ui.put(f"/ui/functions/{name}", content=text, headers={**YAML, "If-Match": etag})
    assert answer.status_code == status


def test_a_finance_editor_may_edit_what_its_groups_may(repo: Api) -> None:
    ui = signed_in(repo, "editor-finance")
    assert ui.get("/ui/functions/ledger/edit").status_code == 200


def test_the_check_finds_errors_at_their_line_then_the_plan(repo: Api) -> None:
    ui = signed_in(repo, "editor")
    text = source(repo, "greet")[0]
    broken = text.replace("You are terse.", "You are terse.\n  bad: [")
    answer = ui.post("/ui/editor/check", json={"name": "greet", "text": broken}).json()
    assert not answer["ok"] and answer["change"] is None
    line = broken.splitlines().index("  bad: [") + 1
    assert answer["diagnostics"][0]["line"] in (line, line + 1)
    changed = text.replace("You are terse.", "You are brief.")
    answer = ui.post("/ui/editor/check", json={"name": "greet", "text": changed}).json()
    [error] = answer["diagnostics"]
    assert error["code"] == "version-not-bumped" and error["line"] == 3
    assert answer["behaviour_changed"] and not answer["version_bumped"]
    fixed = changed.replace("version: 1.0.0", "version: 1.1.0")
    answer = ui.post("/ui/editor/check", json={"name": "greet", "text": fixed}).json()
    assert answer["ok"] and answer["version_bumped"] and answer["breaking"] == []
    assert answer["change"]["action"] == "new_version" and answer["change"]["label"] == "new version"
    assert (answer["change"]["from_version"], answer["change"]["to_version"]) == ("1.0.0", "1.1.0")


def test_save_is_a_put_with_if_match_that_commits_and_applies(repo: Api) -> None:
    ui = signed_in(repo, "editor")
    text, etag = source(repo, "greet")
    text = text.replace("You are terse.", "You are brief.").replace("version: 1.0.0",
                                                                      "version: 1.1.0")
    assert ui.put("/ui/functions/greet", content=text, headers=YAML).status_code == 428
    stale = ui.put("/ui/functions/greet", content=text, headers={**YAML, "If-Match": '"x"'})
    assert stale.status_code == 412 and stale.json()["code"] == "precondition-failed"
    no_csrf = ui.put("/ui/functions/greet", content=text,
                     headers={**YAML, "If-Match": etag, "X-CSRF-Token": "forged"})
    assert no_csrf.status_code == 403
    before = head(repo)
    saved = ui.put("/ui/functions/greet", content=text, headers={**YAML, "If-Match": etag})
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["applied"] and body["version"] == "1.1.0" and body["commit"] == head(repo)
    assert body["etag"] == source(repo, "greet")[1] and "new version" in body["plan"]
    assert git(repo.root, "rev-parse", "HEAD~1").strip() == before
    assert current_versions(repo.db_url)["greet"] == ("active", "1.1.0")
    author = git(repo.root, "log", "-1", "--format=%an")
    assert author.strip()  # the token's user


def test_an_invalid_save_answers_its_errors_with_lines(repo: Api) -> None:
    ui = signed_in(repo, "editor")
    text, etag = source(repo, "greet")
    bad = ui.put("/ui/functions/greet", content=text.replace("model: mock-small", "model: [x"),
                 headers={**YAML, "If-Match": etag})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["line"] is not None


def test_create_and_archive(repo: Api) -> None:
    ui = signed_in(repo, "editor")
    text = source(repo, "greet")[0].replace("name: greet", "name: hello")
    answer = ui.post("/ui/editor/check", json={"name": None, "text": text}).json()
    assert answer["ok"] and answer["change"]["action"] == "create"
    created = ui.post("/ui/functions", content=text, headers=YAML)
    assert created.status_code == 200 and created.json()["action"] == "create"
    assert current_versions(repo.db_url)["hello"] == ("active", "1.0.0")
    again = ui.post("/ui/functions", content=text, headers=YAML)
    assert again.status_code == 409
    etag = source(repo, "hello")[1]
    archived = ui.delete("/ui/functions/hello", headers={"If-Match": etag})
    assert archived.status_code == 200 and archived.json()["action"] == "delete"
    assert current_versions(repo.db_url)["hello"][0] == "archived"


def test_the_schema_builder_round_trip_through_the_routes(repo: Api) -> None:
    ui = signed_in(repo, "editor")
    text = source(repo, "greet")[0]
    forms = ui.post("/ui/editor/schema-form", json={"text": text}).json()["forms"]
    form = forms["input_schema"]
    assert [p["name"] for p in form["properties"]] == ["who"]
    form["properties"].append({"name": "tone", "required": False, "schema": {
        "type": "string", "enum": "warm\ncool", "keys": [], "extra": {}}})
    written = ui.post("/ui/editor/schema", json={"text": text, "key": "input_schema",
                                                 "form": form}).json()["text"]
    assert "    tone:\n      type: string\n      enum: [warm, cool]\n" in written
    head_, tail = text.split("input_schema:")[0], text.split("output_schema:")[1]
    assert written.startswith(head_) and written.endswith("output_schema:" + tail)
    assert ui.post("/ui/editor/check", json={"name": "greet", "text": written}).json()[
        "behaviour_changed"]
    bad = ui.post("/ui/editor/schema", json={"text": text, "key": "input_schema",
                                             "form": {"type": "nope"}})
    assert bad.status_code == 200 and "not one of" in bad.json()["problem"]
    unparsable = ui.post("/ui/editor/schema-form", json={"text": "a: ["})
    assert unparsable.status_code == 200 and "does not parse" in unparsable.json()["problem"]
    assert ui.post("/ui/editor/schema-form", json={}).status_code == 400


@pytest.fixture
def mode_ui(repo: Api, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A signed-in editor on the same project served with `--writes` the test's parameter."""
    from starlette.testclient import TestClient

    from aiops.server.app import ServerConfig, create_app

    app = create_app(ServerConfig(project_dir=str(repo.root), database_url=repo.db_url,
                                  writes=request.param))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield signed_in(repo, "editor", client)


@pytest.mark.parametrize("mode_ui", ["branch"], indirect=True)
def test_branch_mode_saves_on_a_branch(mode_ui: Any, repo: Api) -> None:
    text, etag = source(repo, "greet")
    page = mode_ui.get("/ui/functions/greet/edit").text
    assert 'id="writes-branch"' in page
    before = head(repo)
    saved = mode_ui.put("/ui/functions/greet", headers={**YAML, "If-Match": etag},
                        content=text.replace("version: 1.0.0", "version: 1.0.1").replace(
                            "You are terse.", "Be terse."))
    assert saved.status_code == 202
    body = saved.json()
    assert body["mode"] == "branch" and body["branch"].startswith("aiops/greet-")
    assert not body["applied"] and head(repo) == before
    assert current_versions(repo.db_url)["greet"] == ("active", "1.0.0")


@pytest.mark.parametrize("mode_ui", ["off"], indirect=True)
def test_writes_off_shows_and_answers_the_refusal(mode_ui: Any, repo: Api) -> None:
    text, etag = source(repo, "greet")
    assert 'id="writes-off"' in mode_ui.get("/ui/functions/greet/edit").text
    refused = mode_ui.put("/ui/functions/greet", content=text,
                          headers={**YAML, "If-Match": etag})
    assert refused.status_code == 403 and refused.json()["code"] == "writes-off"
    assert "--writes off" in refused.json()["detail"]


# --- the test console ---------------------------------------------------------------------------


def test_the_console_draws_the_input_schema_and_runs_as_a_test(repo: Api) -> None:
    ui = signed_in(repo, "invoker")
    page = ui.get("/ui/functions/greet/test")
    assert page.status_code == 200
    fields = re.search(r"data-fields='([^']*)'", page.text)
    assert fields is not None
    assert json.loads(html.unescape(fields[1])) == [{"kind": "string", "multiline": True,
                                                     "name": "who", "required": True}]
    assert '<option value="mock">mock</option>' in page.text
    ran = ui.post("/ui/functions/greet/run", json={"input": {"who": "Ann"}, "version": None,
                                                   "provider": "mock"})
    assert ran.status_code == 200, ran.text
    body = ran.json()
    assert body["ok"] and body["output"] is not None and body["cost_usd"] >= 0
    assert body["log_url"] == f"/ui/logs/greet/{body['log_id']}" and body["attempts"]
    logs = repo.call("GET", "/api/contributor/ai-functions/greet/logs", token="admin").json()
    row = next(r for r in logs["items"] if r["id"] == body["log_id"])
    assert row["status"] == "ok" and row["actor"] == "token:invoker"
    assert row["input"] == {"who": "Ann"}


def test_a_failed_input_answers_the_execution_error(repo: Api) -> None:
    ui = signed_in(repo, "invoker")
    body = ui.post("/ui/functions/greet/run", json={"input": {}}).json()
    assert body["ok"] is False and body["error"]["type"] == "InputError"
    assert body["log_id"]


def test_a_viewer_gets_no_console_and_no_run(repo: Api) -> None:
    ui = signed_in(repo, "viewer")
    assert ui.get("/ui/functions/greet/test").status_code == 403
    assert ui.post("/ui/functions/greet/run", json={"input": {"who": "x"}}).status_code == 403
    detail = ui.get("/ui/functions/greet").text
    assert 'id="edit-link"' not in detail and 'id="test-link"' not in detail
    hidden = signed_in(repo, "invoker")
    assert hidden.get("/ui/functions/ledger/test").status_code == 404
    assert hidden.post("/ui/functions/ledger/run", json={"input": {}}).status_code == 404
