"""Web UI sessions in the database (SQLite and PostgreSQL): a token starts one, the cookie's
secret finds it and the token's caller, and revoking the token, the session's expiry or a
sign-out ends it. The table holds the secret's hash, never the secret."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from aiops import commands
from aiops.commands.sessions import SessionRefused, session_of, sign_in, sign_out
from aiops.commands.tokens import TokenRefused
from aiops.sessions import SESSION_TTL, session_hash
from aiops.store.tables import UI
from tests.fixtures_db import write_project

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


@pytest.fixture
def made(tmp_path: Path, store: Any) -> Any:
    ws = commands.open_workspace(write_project(tmp_path / "proj"), database_url=store.url)

    def make(name: str, **kw: Any) -> str:
        text: str = commands.create_token(ws, name=name, created_by="Op", store=store,
                                          now=NOW, **kw).text
        return text

    return ws, make


def test_a_token_starts_a_session_whose_caller_is_the_tokens(store: Any, made: Any) -> None:
    _, make = made
    text = make("ed", role="editor", groups=("finance",))
    session = sign_in(store, text, now=NOW)
    found = session_of(store, session.secret, now=NOW + timedelta(hours=1))
    assert found.caller == commands.authenticate(store, text, now=NOW)
    assert found.caller.role == "editor" and found.caller.groups == ("finance",)
    assert found.record.csrf == session.csrf
    with store.engine.connect() as conn:
        rows = conn.execute(select(UI)).all()
    assert [r.id for r in rows] == [session_hash(session.secret)]
    assert session.secret not in str(rows)


def test_a_bad_token_starts_nothing(store: Any, made: Any) -> None:
    _, make = made
    make("ed", role="editor")
    for text in ("", "nope", "aiops_0123456789abcdef_" + "x" * 43):
        with pytest.raises(TokenRefused):
            sign_in(store, text, now=NOW)
    with store.engine.connect() as conn:
        assert conn.execute(select(UI)).all() == []


def test_revoking_the_token_ends_its_sessions(store: Any, made: Any) -> None:
    ws, make = made
    text = make("ed", role="editor")
    session = sign_in(store, text, now=NOW)
    commands.revoke_token(ws, "ed", store=store, now=NOW + timedelta(minutes=1))
    with pytest.raises(SessionRefused, match="revoked"):
        session_of(store, session.secret, now=NOW + timedelta(minutes=2))


def test_a_session_ends_at_its_expiry_or_its_tokens(store: Any, made: Any) -> None:
    _, make = made
    session = sign_in(store, make("long", role="viewer"), now=NOW)
    assert session.expires_at == NOW + SESSION_TTL
    with pytest.raises(SessionRefused, match="expired"):
        session_of(store, session.secret, now=NOW + SESSION_TTL)
    short = sign_in(store, make("short", role="viewer", expires="1h"), now=NOW)
    assert short.expires_at == NOW + timedelta(hours=1)
    with pytest.raises(SessionRefused, match="expired"):
        session_of(store, short.secret, now=NOW + timedelta(hours=1))


def test_signing_out_ends_the_session_and_a_new_sign_in_sweeps_expired_ones(
        store: Any, made: Any) -> None:
    _, make = made
    text = make("ed", role="editor")
    first = sign_in(store, text, now=NOW)
    second = sign_in(store, text, now=NOW)
    sign_out(store, first.secret)
    with pytest.raises(SessionRefused, match="ended"):
        session_of(store, first.secret, now=NOW)
    assert session_of(store, second.secret, now=NOW).caller.token_name == "ed"
    sign_out(store, "not a secret")  # nothing to end: no error
    sign_in(store, text, now=NOW + SESSION_TTL + timedelta(seconds=1))
    with store.engine.connect() as conn:
        ids = {r.id for r in conn.execute(select(UI))}
    assert session_hash(second.secret) not in ids and len(ids) == 1


def test_a_cookie_that_is_no_secret_is_no_session(store: Any) -> None:
    for cookie in (None, "", "x" * 43, "../../etc"):
        with pytest.raises(SessionRefused):
            session_of(store, cookie, now=NOW)
