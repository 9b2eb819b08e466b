"""Roles, permissions and access lists (aiops.access), and tokens as values (aiops.tokens):
pure decisions, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiops.access import Caller, Permission, allowed_actions, may, may_read_content, role_allows
from aiops.errors import UsageError
from aiops.tokens import (
    TokenRecord,
    check_groups,
    new_secret,
    parse_duration,
    parse_token,
    secret_hash,
    secret_matches,
    token_text,
)


def caller(role: str = "viewer", *groups: str, user: str = "u1") -> Caller:
    return Caller(token_id="t", key_id="k", token_name="n", user_id=user,
                  role=role, groups=groups)  # type: ignore[arg-type]


def test_roles_are_ordered() -> None:
    assert role_allows("viewer", Permission.VIEW) and not role_allows("viewer", Permission.INVOKE)
    assert role_allows("invoker", Permission.INVOKE) and not role_allows("invoker", Permission.EDIT)
    assert role_allows("editor", Permission.EDIT) and not role_allows("editor", Permission.ADMIN)
    assert role_allows("admin", Permission.ADMIN)
    assert not role_allows("root", Permission.VIEW)


LISTS = {"view": ["finance", "ops"], "invoke": ["finance"], "edit": ["finance-admins"]}


@pytest.mark.parametrize(("who", "expected"), [
    (caller("viewer"), ()),
    (caller("viewer", "ops"), ("view",)),
    (caller("invoker", "ops"), ("view",)),
    (caller("invoker", "finance"), ("view", "invoke")),
    (caller("viewer", "finance"), ("view",)),  # on the invoke list, but its role cannot
    (caller("editor", "finance", "finance-admins"), ("view", "invoke", "edit")),
    (caller("editor", "finance-admins"), ("edit",)),  # the API answers 404: it cannot view
    (caller("admin"), ("view", "invoke", "edit")),  # admins pass every list
    (None, ("view", "invoke", "edit")),  # the operator at the CLI
])
def test_access_lists_and_roles(who: Caller | None, expected: tuple[str, ...]) -> None:
    assert allowed_actions(who, LISTS) == expected


def test_defaults_are_everyone_and_edit_may_be_absent() -> None:
    assert may(caller("editor"), "edit", {"view": ["everyone"], "invoke": ["everyone"]})
    assert may(caller("viewer"), "view", {})
    assert not may(caller("viewer"), "edit", {})


def test_content_is_for_editors_and_for_ones_own_calls() -> None:
    assert may_read_content(caller("editor", "finance-admins"), LISTS, None)
    assert not may_read_content(caller("viewer", "finance"), LISTS, "someone else")
    assert may_read_content(caller("viewer", "finance", user="me"), LISTS, "me")
    assert not may_read_content(caller("viewer", "finance"), LISTS, None)


def test_token_text_round_trips_and_only_its_hash_matches() -> None:
    key_id, secret = new_secret()
    text = token_text(key_id, secret)
    assert text.startswith("aiops_") and parse_token(text) == (key_id, secret)
    stored = secret_hash(key_id, secret)
    assert secret not in stored and len(stored) == 64
    assert secret_matches(key_id, secret, stored)
    assert not secret_matches(key_id, secret[:-1] + ("A" if secret[-1] != "A" else "B"), stored)
    assert not secret_matches(new_secret()[0], secret, stored)  # bound to its key id
    for bad in ("", "aiops_", text + "x", text.replace("aiops_", "aiop_"), f"aiops_XYZ_{secret}"):
        assert parse_token(bad) is None
    assert len({new_secret() for _ in range(50)}) == 50


def test_durations_and_groups() -> None:
    assert parse_duration("90d", "--expires") == timedelta(days=90)
    assert parse_duration("30m", "--expires") == timedelta(minutes=30)
    for bad in ("0d", "1w", "-1d", "d", "1.5h"):
        with pytest.raises(UsageError, match="--expires"):
            parse_duration(bad, "--expires")
    assert check_groups(("a", "b", "a")) == ("a", "b")
    for bad in ("everyone", "Upper", "with space", ""):
        with pytest.raises(UsageError):
            check_groups((bad,))


def test_token_state() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    base = TokenRecord(id="i", key_id="k", name="n", role="viewer", groups=(), user_id="u",
                       user="u", created_by="c", created_at=now, expires_at=None,
                       revoked_at=None, last_used_at=None, rpm=None, daily_calls=None,
                       daily_usd=None)
    from dataclasses import replace

    assert base.state(now) == "active"
    assert replace(base, expires_at=now).state(now) == "expired"
    assert replace(base, expires_at=now + timedelta(seconds=1)).state(now) == "active"
    assert replace(base, revoked_at=now).state(now) == "revoked"
