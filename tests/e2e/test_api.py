"""The REST API through its ASGI app, on SQLite and PostgreSQL: every route and the statuses
it answers, the gate (401/403/404 for each role and function), problem documents, the body
bound, pagination, ETags and diffs. `api.call` also checks that the OpenAPI document declares
each status seen."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from aiops.access import Permission
from tests.fixtures_db import apply_project, spec_data, write_project
from tests.fixtures_server import Api, add_logs, functions

BASE = "/api/contributor/ai-functions"


def _id(api: Api, name: str) -> str:
    body = api.call("GET", f"{BASE}/{name}").json()
    return str(body["summary"]["id"])


# --- health, description, reference -----------------------------------------------------------


def test_health_and_readiness_need_no_token(api: Api) -> None:
    assert api.call("GET", "/healthz", token=None).json() == {"status": "ok"}
    ready = api.call("GET", "/readyz", token=None).json()
    assert ready["status"] == "ready" and ready["database"] == "ok"


def test_readiness_is_503_when_the_schema_is_behind(api: Api) -> None:
    from sqlalchemy import text

    from aiops.store import open_store

    api.call("GET", "/readyz", token=None)  # the worker's store is open (SQLite: migrated)
    store = open_store(api.db_url)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        body = api.call("GET", "/readyz", token=None, expect=503).json()
        assert body["code"] == "not-ready" and "aiops db upgrade" in body["detail"]
    finally:
        from aiops.store.engine import SCHEMA_HEAD

        with store.engine.begin() as conn:
            conn.execute(text(f"UPDATE alembic_version SET version_num = '{SCHEMA_HEAD}'"))


def test_the_reference_page_is_offline_and_lists_every_operation(api: Api) -> None:
    page = api.call("GET", "/docs", token=None).text
    assert "http://" not in page and "https://" not in page  # nothing loads from elsewhere
    assert "<script" not in page
    doc = api.call("GET", "/openapi.json", token=None).json()
    for path, operations in doc["paths"].items():
        assert path in page
        for op in operations.values():
            assert op["operationId"] in page
    assert 'id="error-not-found"' in page


def test_every_route_declares_its_permission(api: Api) -> None:
    from fastapi.routing import APIRoute

    from aiops.web.app import ui_routes

    permissions = api.client.app.state.aiops.permissions
    ui = ui_routes(api.client.app)
    assert len(ui) == 2  # /ui (the web UI, its own session guard) and / (a redirect there)
    for route in api.client.app.routes:
        if route in ui:
            continue
        assert isinstance(route, APIRoute), route  # no route outside the gate's sight
        assert permissions.get(route.endpoint) is not None, route.path
        public = permissions[route.endpoint] is Permission.PUBLIC
        assert public == (route.path in {"/healthz", "/readyz", "/openapi.json", "/docs"})


def test_an_operation_added_around_the_registry_answers_nobody(api: Api) -> None:
    app = api.client.app
    app.add_api_route("/sneaky", lambda: {"data": "secret"}, methods=["GET"])
    app.openapi_schema = None
    response = api.client.get("/sneaky", headers=api.headers("admin"))
    body = response.json()
    assert response.status_code == 500 and body["code"] == "internal-error"
    assert "declares no permission" in body["detail"] and "secret" not in str(body)


def test_an_operation_cannot_be_declared_without_a_permission() -> None:
    from aiops.server.api.guard import Operations

    ops = Operations("x")
    with pytest.raises(TypeError):
        ops.get("/x")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        ops.get("/x", permission="view")  # type: ignore[arg-type]


def test_every_authenticated_operation_declares_401_403_and_its_security(api: Api) -> None:
    doc = api.client.app.openapi()
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, operations in doc["paths"].items():
        for op in operations.values():
            if op["x-permission"] == "public":
                continue
            assert {"401", "403", "413", "500"} <= set(op["responses"]), path
            assert op["security"] == [{"bearer": []}]
            if "{" in path:
                assert {"404", "422"} <= set(op["responses"]), path
            for status, answer in op["responses"].items():
                if status.startswith(("4", "5")):
                    assert "application/problem+json" in answer["content"], (path, status)


# --- authentication and roles -------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "aiops_nope", "Basic abc", "expired", "revoked",
                                   "aiops_0123456789abcdef_" + "x" * 43])
def test_without_a_valid_token_every_route_is_401(api: Api, token: str | None) -> None:
    headers = {"Authorization": token} if token and token.startswith("Basic") else {}
    for url in (BASE, f"{BASE}/greet", f"{BASE}/greet/versions", f"{BASE}/greet/versions/1.0.0",
                f"{BASE}/greet/logs", f"{BASE}/no-such-fn"):
        body = api.call("GET", url, token=None if headers else token, expect=401,
                        headers=headers).json()
        assert body["code"] == "unauthenticated"


def test_a_refused_token_never_appears_in_the_answer(api: Api) -> None:
    for name in ("expired", "revoked"):
        text = api.tokens[name]
        response = api.call("GET", BASE, token=name, expect=401)
        assert text not in response.text
        assert text.split("_", 2)[2] not in response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert "expired at" in api.call("GET", BASE, token="expired", expect=401).json()["detail"]
    assert "revoked" in api.call("GET", BASE, token="revoked", expect=401).json()["detail"]


def test_secrets_are_stored_only_as_hashes(api: Api) -> None:
    from sqlalchemy import text

    from aiops.store import open_store

    with open_store(api.db_url).engine.connect() as conn:
        rows = [" ".join(map(str, r)) for r in conn.execute(text("SELECT * FROM api_tokens"))]
    for token in api.tokens.values():
        secret = token.split("_", 2)[2]
        assert not any(secret in row for row in rows)


def test_last_use_is_recorded(api: Api) -> None:
    from aiops import commands

    ws = commands.open_workspace(api.root, database_url=api.db_url)
    before = {t.name: t.last_used_at for t in commands.list_tokens(ws)}
    assert before["viewer"] is None
    api.call("GET", BASE, token="viewer")
    after = {t.name: t.last_used_at for t in commands.list_tokens(ws)}
    assert after["viewer"] is not None and after["editor"] is None


# The role x function matrix: what each token gets from each read route of each function.
# greet: access everyone; ledger: view/invoke finance, edit finance-admins.
READS = ["{base}/{fn}", "{base}/{fn}/versions", "{base}/{fn}/versions/1.0.0", "{base}/{fn}/logs",
         "{base}/{fn}/stats"]
VISIBLE = {  # token -> functions it may view
    "viewer": {"greet"}, "viewer-finance": {"greet", "ledger"}, "invoker": {"greet"},
    "editor": {"greet"}, "editor-finance": {"greet", "ledger"}, "admin": {"greet", "ledger"},
}


@pytest.mark.parametrize("token", list(VISIBLE))
def test_role_by_function_matrix(api: Api, token: str) -> None:
    for fn, route in itertools.product(["greet", "ledger"], READS):
        url = route.format(base=BASE, fn=fn)
        if fn in VISIBLE[token]:
            api.call("GET", url, token=token)
        else:  # never 403: to this token the function does not exist
            assert api.call("GET", url, token=token, expect=404).json()["code"] == "not-found"
    listed = {f["name"] for f in api.call("GET", BASE, token=token).json()["items"]}
    assert listed == VISIBLE[token]


def test_a_hidden_function_and_an_unknown_one_answer_alike(api: Api) -> None:
    hidden = api.call("GET", f"{BASE}/ledger", token="viewer", expect=404).json()
    unknown = api.call("GET", f"{BASE}/nothing", token="viewer", expect=404).json()
    assert hidden["detail"].replace("ledger", "X") == unknown["detail"].replace("nothing", "X")
    by_id = _id(api, "ledger")
    api.call("GET", f"{BASE}/{by_id}", token="viewer", expect=404)


def test_role_gates_the_kind_of_action(api: Api) -> None:
    # No write route exists yet: the gate is checked on an operation that needs more.
    from fastapi import FastAPI

    from aiops.server.api.guard import Operations, install

    ops = Operations("test")

    @ops.operation("POST", "/admin-only", permission=Permission.ADMIN)
    def admin_only() -> dict[str, str]:
        return {"ok": "yes"}

    app: FastAPI = api.client.app
    app.state.aiops.permissions.update(install(app, [ops]))
    app.openapi_schema = None
    for token in ("viewer", "invoker", "editor"):
        body = api.call("POST", "/admin-only", token=token, expect=403).json()
        assert body["code"] == "forbidden" and "admin" in body["detail"]
    assert api.call("POST", "/admin-only", token="admin").json() == {"ok": "yes"}


# --- problems ---------------------------------------------------------------------------------


def test_unknown_path_and_wrong_method_are_problems(api: Api) -> None:
    body = api.call("GET", "/api/nothing-here", expect=404).json()
    assert body["code"] == "not-found" and body["instance"] == "/api/nothing-here"
    response = api.call("DELETE", "/healthz", expect=405)
    assert response.json()["code"] == "method-not-allowed"
    assert "GET" in response.headers["allow"]


def test_validation_errors_name_each_parameter(api: Api) -> None:
    body = api.call("GET", f"{BASE}?limit=0&status=gone", expect=422).json()
    assert body["code"] == "validation-failed"
    assert {e.get("parameter") for e in body["errors"]} == {"limit", "status"}
    api.call("GET", f"{BASE}?limit=201", expect=422)
    api.call("GET", f"{BASE}/greet/versions/not-a-version", expect=422)
    api.call("GET", f"{BASE}/greet/logs?since=yesterday", expect=422)


def test_a_cursor_that_was_not_given_is_400(api: Api) -> None:
    for url in (f"{BASE}?cursor=bogus", f"{BASE}/greet/versions?cursor=eyJrIjoibG9ncyJ9",
                f"{BASE}/greet/logs?cursor=bogus"):
        assert api.call("GET", url, expect=400).json()["code"] == "bad-request"


def test_a_body_over_the_bound_is_413_before_authentication(api: Api) -> None:
    body = api.call("GET", BASE, token=None, content=b"x" * 5000, expect=413).json()
    assert body["code"] == "payload-too-large"
    # streamed without a length: counted as it arrives
    chunks = iter([b"x" * 3000, b"x" * 3000])
    api.call("GET", BASE, token=None, content=chunks, expect=413)
    api.call("GET", BASE, content=b"x" * 100)  # under the bound: read and ignored


def test_an_unhandled_error_is_500_without_details(api: Api, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    from aiops.commands import catalog

    def broken(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("connection to secret-host:5432 with password hunter2 failed")

    monkeypatch.setattr(catalog, "list_functions", broken)
    response = api.call("GET", BASE, expect=500)
    body = response.json()
    assert body["code"] == "internal-error" and body["instance"].startswith("urn:uuid:")
    assert "hunter2" not in response.text and "secret-host" not in response.text
    assert "Traceback" not in response.text
    assert body["instance"] in caplog.text  # the log has it, under the id the answer names


def test_a_database_error_behind_a_route_says_nothing_of_the_database(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from aiops.commands import catalog
    from aiops.errors import ConfigError

    def misconfigured(*args: Any, **kw: Any) -> Any:
        raise ConfigError("database postgresql://u:***@db.internal/x: permission denied")

    monkeypatch.setattr(catalog, "get_function", misconfigured)
    response = api.call("GET", f"{BASE}/greet", expect=503)
    assert response.json()["code"] == "misconfigured" and "db.internal" not in response.text


# --- the reads --------------------------------------------------------------------------------


def test_list_filters_and_pages(api: Api, tmp_path: Any) -> None:
    names = [f"fn-{i:02d}" for i in range(7)]
    write_project(api.root, [*functions(), *(spec_data(n, description=f"number {n}")
                                             for n in names)])
    apply_project(api.root, url=api.db_url, actor="Ann <ann@example.com>")
    seen, cursor = [], None
    while True:
        url = f"{BASE}?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = api.call("GET", url, token="viewer").json()
        seen += [f["name"] for f in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(["greet", *names])  # ledger is hidden from a viewer
    found = api.call("GET", f"{BASE}?search=NUMBER%20fn-0", token="viewer").json()["items"]
    assert len(found) == 7
    assert api.call("GET", f"{BASE}?search=%25", token="viewer").json()["items"] == []
    assert api.call("GET", f"{BASE}?status=archived").json()["items"] == []
    item = api.call("GET", f"{BASE}?search=greet").json()["items"][0]
    assert item["version"] == "1.0.0" and item["sync"] == "in_sync"
    assert item["provider"] == "mock" and item["status"] == "active"


def test_one_function_with_etag_and_file_state(api: Api) -> None:
    response = api.call("GET", f"{BASE}/greet", token="viewer")
    body = response.json()
    assert body["spec"]["prompt"][1]["content"] == "Say hello to {{ who }}."
    assert [v["version"] for v in body["versions"]] == ["1.0.0"]
    assert body["file"]["state"] == "same" and body["allowed"] == ["view"]
    tag = response.headers["etag"]
    same = api.call("GET", f"{BASE}/greet", token="viewer", expect=304,
                    headers={"If-None-Match": tag})
    assert same.content == b"" and same.headers["etag"] == tag
    api.call("GET", f"{BASE}/greet", token="viewer", headers={"If-None-Match": '"other"'})
    by_id = api.call("GET", f"{BASE}/{body['summary']['id']}", token="viewer").json()
    assert by_id["summary"]["name"] == "greet"
    write_project(api.root, [spec_data("greet", version="1.1.0", model="mock-large"),
                             functions()[1]])
    moved = api.call("GET", f"{BASE}/greet", token="viewer",
                     headers={"If-None-Match": tag})  # the file changed: a new ETag
    assert moved.json()["file"] == {"path": "functions/greet/function.yaml",
                                    "state": "changed", "version": "1.1.0"}
    assert api.call("GET", f"{BASE}/ledger", token="editor-finance").json()["allowed"] == [
        "view", "invoke", "edit"]


def test_the_etag_is_the_one_writes_check(api: Api) -> None:
    from aiops import commands
    from tests.e2e.helpers import git

    git(api.root, "init", "-q", "-b", "main")
    git(api.root, "add", "-A")
    git(api.root, "commit", "-qm", "functions")
    ws = commands.open_workspace(api.root, database_url=api.db_url)
    tag = api.call("GET", f"{BASE}/greet").headers["etag"]
    assert tag == commands.function_etag(ws, "greet")
    api.call("GET", f"{BASE}/greet", expect=304, headers={"If-None-Match": f'W/"x", {tag}'})


def test_versions_and_diffs(api: Api) -> None:
    for version, model in (("1.1.0", "mock-large"), ("1.2.0", "mock-small"),
                           ("1.10.0", "mock-large")):
        write_project(api.root, [spec_data("greet", version=version, model=model,
                                           prompt=[{"role": "user",
                                                    "content": f"Hi {{{{ who }}}} {version}"}]),
                                 functions()[1]])
        apply_project(api.root, url=api.db_url, actor="Ann <ann@example.com>")
    page = api.call("GET", f"{BASE}/greet/versions?limit=3").json()
    assert [v["version"] for v in page["items"]] == ["1.10.0", "1.2.0", "1.1.0"]
    assert page["items"][0]["current"] and page["items"][0]["created_by"] == "Ann"
    rest = api.call("GET", f"{BASE}/greet/versions?cursor={page['next_cursor']}").json()
    assert [v["version"] for v in rest["items"]] == ["1.0.0"] and rest["next_cursor"] is None
    one = api.call("GET", f"{BASE}/greet/versions/1.10.0").json()
    assert one["against"] == "1.2.0" and one["content"]["model"] == "mock-large"
    fields = {d["field"]: d for d in one["diff"]}
    assert set(fields) == {"model", "prompt"}
    assert "~ model: \"mock-small\" -> \"mock-large\"" in fields["model"]["lines"]
    assert any(line.startswith("+") and "1.10.0" in line for line in fields["prompt"]["lines"])
    first = api.call("GET", f"{BASE}/greet/versions/1.0.0").json()
    assert first["against"] is None and first["diff"] == []
    chosen = api.call("GET", f"{BASE}/greet/versions/1.2.0?against=1.0.0").json()
    assert chosen["against"] == "1.0.0"
    body = api.call("GET", f"{BASE}/greet/versions/9.9.9", expect=404).json()
    assert "1.10.0" in body["detail"]
    api.call("GET", f"{BASE}/greet/versions/1.2.0?against=0.0.1", expect=404)


def test_logs_filter_page_and_hide_content(api: Api) -> None:
    ids = add_logs(api.db_url, "greet", 7)
    page = api.call("GET", f"{BASE}/greet/logs?limit=4", token="editor").json()
    assert [e["id"] for e in page["items"]] == ids[::-1][:4]
    assert page["items"][0]["input"] == {"who": "person 6"}
    rest = api.call("GET", f"{BASE}/greet/logs?limit=4&cursor={page['next_cursor']}",
                    token="editor").json()
    assert [e["id"] for e in rest["items"]] == ids[::-1][4:] and rest["next_cursor"] is None
    errors = api.call("GET", f"{BASE}/greet/logs?status=error", token="editor").json()["items"]
    assert {e["id"] for e in errors} == {ids[0], ids[3], ids[6]}
    assert errors[0]["error"]["message"] == "said 6"
    by_actor = api.call("GET", f"{BASE}/greet/logs?actor=app", token="editor").json()["items"]
    assert len(by_actor) == 4
    window = api.call("GET", f"{BASE}/greet/logs?since=2026-01-01T00:00:02&"
                      "until=2026-01-01T00:00:04Z", token="editor").json()["items"]
    assert [e["id"] for e in window] == [ids[3], ids[2]]
    assert api.call("GET", f"{BASE}/greet/logs?version=1.0.0", token="editor").json()["items"]
    assert api.call("GET", f"{BASE}/greet/logs?version=2.0.0", token="editor").json()[
        "items"] == []
    hidden = api.call("GET", f"{BASE}/greet/logs", token="viewer").json()["items"][0]
    assert hidden["content_hidden"] is True
    assert hidden["input"] is None and hidden["output"] is None
    assert "message" not in hidden["error"] and hidden["error"]["type"] == "OutputError"
    assert all("message" not in a for a in hidden["attempts"])
    assert hidden["cost_usd"] == 0.001 and hidden["model"] == "mock-small"


def test_a_token_reads_the_content_of_its_own_calls(api: Api) -> None:
    from aiops import commands

    ws = commands.open_workspace(api.root, database_url=api.db_url)
    viewer = next(t for t in commands.list_tokens(ws) if t.name == "viewer-finance")
    add_logs(api.db_url, "ledger", 2, created_by=viewer.user_id)
    add_logs(api.db_url, "ledger", 1, first_second=60)
    items = api.call("GET", f"{BASE}/ledger/logs", token="viewer-finance").json()["items"]
    assert [e["content_hidden"] for e in items] == [True, False, False]
    items = api.call("GET", f"{BASE}/ledger/logs", token="editor-finance").json()["items"]
    assert not any(e["content_hidden"] for e in items)


def test_a_query_parameter_the_operation_does_not_take_is_422(api: Api) -> None:
    body = api.call("GET", f"{BASE}?stauts=error&limit=2", expect=422).json()
    assert body["code"] == "validation-failed" and "`status`" in body["detail"]
    assert [e["parameter"] for e in body["errors"]] == ["stauts"]
    api.call("GET", "/healthz?verbose=1", token=None, expect=422)
    api.call("GET", f"{BASE}?stauts=error", token=None, expect=401)  # the token first
    api.call("GET", f"{BASE}?status=active&limit=2")
