"""The admin API's tokens (`/api/admin/tokens`), on SQLite and PostgreSQL: list (paged, never
a secret), create (the text once, 201), revoke; every status each answers, and that they are
the CLI's tokens (one path: `aiops.commands.tokens`)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures_server import TOKENS, Api

TOKENS_URL = "/api/admin/tokens"
FUNCTIONS = "/api/contributor/ai-functions"


def _all(api: Api, query: str = "", limit: int = 2) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        url = f"{TOKENS_URL}?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")
        page = api.call("GET", url).json()
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_the_list_pages_by_name_and_never_shows_a_secret(api: Api) -> None:
    response = api.call("GET", TOKENS_URL)
    for text in api.tokens.values():
        assert text.split("_", 2)[2] not in response.text
    assert "secret" not in response.text and "hash" not in response.text
    active = _all(api)
    names = [t["name"] for t in active]
    assert names == sorted([*TOKENS, "expired"])  # revoked ones only when asked for
    assert {t["state"] for t in active if t["name"] != "expired"} == {"active"}
    assert next(t for t in active if t["name"] == "expired")["state"] == "expired"
    every = _all(api, "&include_revoked=true", limit=3)
    assert [t["name"] for t in every] == sorted([*TOKENS, "expired", "revoked"])
    finance = next(t for t in every if t["name"] == "editor-finance")
    assert finance["groups"] == ["finance", "finance-admins"] and finance["role"] == "editor"
    assert finance["created_by"] == "Operator" and finance["user"] == "editor-finance"
    api.call("GET", f"{TOKENS_URL}?cursor=bogus", expect=400)
    api.call("GET", f"{TOKENS_URL}?limit=0", expect=422)


def test_create_answers_the_text_once_and_it_works(api: Api) -> None:
    from aiops import commands

    response = api.call("POST", TOKENS_URL, expect=201, json={
        "name": "billing-app", "role": "viewer", "groups": ["finance"], "expires": "90d",
        "user": "Bea <bea@example.com>", "rpm": 60, "daily_calls": 1000, "daily_usd": 2.5})
    made = response.json()
    assert response.headers["cache-control"] == "no-store"
    assert made["token"].startswith(f"aiops_{made['key_id']}_")
    assert made["created_by"] == "admin"  # the admin token's user made it
    assert made["user"] == "Bea" and made["user_email"] == "bea@example.com"
    assert (made["rpm"], made["daily_calls"], made["daily_usd"]) == (60, 1000, 2.5)
    assert made["expires_at"] is not None and made["state"] == "active"
    # The new token authenticates, with its role and groups: it sees the finance function.
    listed = api.call("GET", FUNCTIONS, token=made["token"]).json()["items"]
    assert {f["name"] for f in listed} == {"greet", "ledger"}
    api.call("POST", TOKENS_URL, token=made["token"], expect=403, json={
        "name": "x", "role": "viewer"})
    # The CLI's verbs see it (one store of tokens), and its text is in no later answer.
    ws = commands.open_workspace(api.root, database_url=api.db_url)
    assert "billing-app" in {t.name for t in commands.list_tokens(ws)}
    again = api.call("GET", TOKENS_URL).text
    assert made["token"] not in again and made["token"].split("_", 2)[2] not in again


def test_a_taken_name_is_409_and_free_again_once_revoked(api: Api) -> None:
    body = api.call("POST", TOKENS_URL, expect=409, json={"name": "viewer", "role": "admin"})
    assert body.json()["code"] == "conflict" and "revoke it first" in body.json()["detail"]
    api.call("DELETE", f"{TOKENS_URL}/viewer")
    api.call("POST", TOKENS_URL, expect=201, json={"name": "viewer", "role": "admin"})


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "x", "role": "root"}, "/role"),
    ({"name": "x"}, "/role"),
    ({"name": "x", "role": "viewer", "expires": "3w"}, "/expires"),
    ({"name": "x", "role": "viewer", "expires": "0d"}, "/expires"),
    ({"name": "x", "role": "viewer", "expires": "3651d"}, "/expires"),
    ({"name": "x", "role": "viewer", "expires": "9" * 3000 + "d"}, "/expires"),
    ({"name": "x", "role": "viewer", "groups": ["everyone"]}, "/groups"),
    ({"name": "x", "role": "viewer", "groups": ["Bad Group"]}, "/groups/0"),
    ({"name": "bad name", "role": "viewer"}, "/name"),
    ({"name": "x", "role": "viewer", "rpm": 0}, "/rpm"),
    ({"name": "x", "role": "viewer", "daily_usd": -1}, "/daily_usd"),
    ({"name": "x", "role": "viewer", "secret": "mine"}, "/secret"),
])
def test_a_bad_token_document_is_422_naming_the_field(api: Api, body: dict[str, Any],
                                                      field: str) -> None:
    from aiops import commands

    problem = api.call("POST", TOKENS_URL, expect=422, json=body).json()
    assert problem["code"] == "validation-failed"
    assert field in [e.get("pointer") for e in problem["errors"]], problem
    ws = commands.open_workspace(api.root, database_url=api.db_url)
    assert "x" not in {t.name for t in commands.list_tokens(ws)}  # nothing made


def test_a_body_that_is_not_a_token_document_is_422(api: Api) -> None:
    for content in (b"not json", b"[1, 2]", b'"viewer"'):
        api.call("POST", TOKENS_URL, expect=422, content=content,
                 headers={"Content-Type": "application/json"})


def test_revoke_by_name_or_key_id(api: Api) -> None:
    listed = {t["name"]: t for t in _all(api, limit=50)}
    revoked = api.call("DELETE", f"{TOKENS_URL}/{listed['viewer']['key_id']}").json()
    assert revoked["state"] == "revoked" and revoked["revoked_at"] is not None
    body = api.call("GET", FUNCTIONS, token="viewer", expect=401).json()
    assert "revoked" in body["detail"]
    api.call("DELETE", f"{TOKENS_URL}/invoker")
    api.call("GET", FUNCTIONS, token="invoker", expect=401)
    for ref in ("viewer", "nobody", listed["viewer"]["key_id"]):  # revoked already, unknown
        assert api.call("DELETE", f"{TOKENS_URL}/{ref}", expect=404).json()["code"] == "not-found"
    api.call("DELETE", f"{TOKENS_URL}/{'x' * 101}", expect=422)
    api.call("GET", FUNCTIONS, token="editor")  # the others are untouched


@pytest.mark.parametrize("token", [None, "expired", "revoked", "viewer", "invoker", "editor",
                                   "editor-finance"])
def test_only_admins_reach_the_token_routes(api: Api, token: str | None) -> None:
    expect = 401 if token in (None, "expired", "revoked") else 403
    new = {"name": "sneaky", "role": "admin"}
    for method, url, kw in (("GET", TOKENS_URL, {}), ("POST", TOKENS_URL, {"json": new}),
                            ("DELETE", f"{TOKENS_URL}/admin", {})):
        problem = api.call(method, url, token=token, expect=expect, **kw).json()
        assert problem["code"] == ("unauthenticated" if expect == 401 else "forbidden")
    api.call("GET", FUNCTIONS, token="admin")  # the admin token still stands
    assert "sneaky" not in {t["name"] for t in _all(api, limit=50)}


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)  # SQLite serialises writers: no race to lose
def test_creates_racing_for_one_name_make_one_token(api: Api) -> None:
    import threading

    from aiops import commands
    from aiops.errors import NameTaken

    ws = commands.open_workspace(api.root, database_url=api.db_url)
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def create() -> None:
        barrier.wait()
        try:
            commands.create_token(ws, name="racer", role="viewer", created_by="Op")
            outcomes.append("made")
        except NameTaken:
            outcomes.append("taken")

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["made"] + ["taken"] * 5
    assert [t.name for t in commands.list_tokens(ws)].count("racer") == 1
