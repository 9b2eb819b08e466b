"""The tokens' verbs: create, list, revoke (`aiops token ...`, and the admin API:
`/api/admin/tokens`), and authenticate a token's text into an `aiops.access.Caller` (the
server's gate).

A token's text is returned once, by `create_token`, and stored nowhere: the database holds
the hash of its secret (`aiops.tokens`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from aiops.access import Caller
from aiops.catalog import DEFAULT_LIMIT, Page, check_limit, decode_cursor, encode_cursor
from aiops.errors import UsageError, UserError
from aiops.store import Store
from aiops.store.tokens import TOUCH_EVERY
from aiops.tokens import (
    NewToken,
    TokenRecord,
    check_groups,
    check_lifetime,
    check_name,
    check_role,
    new_secret,
    parse_token,
    secret_hash,
    secret_matches,
    token_text,
)
from aiops.workspace import Workspace

MAX_QUOTA = (1 << 31) - 1


class TokenRefused(UserError):
    """A token's text that does not authenticate (malformed, unknown, wrong secret, expired,
    revoked): the API answers 401 with this message, which never holds the token."""


@dataclass(frozen=True, kw_only=True)
class CreatedToken:
    """A new token: `text` is its only copy (show it once)."""

    text: str
    record: TokenRecord


def create_token(ws: Workspace, *, name: str, role: str, groups: tuple[str, ...] = (),
                 expires: str | None = None, rpm: int | None = None,
                 daily_calls: int | None = None, daily_usd: float | None = None,
                 user: str | None = None, created_by: str | None = None,
                 store: Store | None = None, now: datetime | None = None) -> CreatedToken:
    """A new token named `name` for `user` ("Name <email>"; default: a user named like the
    token), made by `created_by` (default: the git user, or the OS user)."""
    from aiops.commands.reconcile import git_actor

    now = now or datetime.now(UTC)
    for what, value in (("--rpm", rpm), ("--daily-calls", daily_calls)):
        if value is not None and not 1 <= value <= MAX_QUOTA:
            raise UsageError(f"{what} must be between 1 and {MAX_QUOTA} (got {value})")
    if daily_usd is not None and not 0 < daily_usd <= 1e9:
        raise UsageError(f"--daily-usd must be above 0 and at most 1e9 (got {daily_usd})")
    key_id, secret = new_secret()
    token = NewToken(id=str(uuid.uuid4()), key_id=key_id, secret_hash=secret_hash(key_id, secret),
                     name=check_name(name), role=check_role(role), groups=check_groups(groups),
                     created_at=now,
                     expires_at=now + check_lifetime(expires) if expires else None,
                     rpm=rpm, daily_calls=daily_calls, daily_usd=daily_usd)
    st = store or ws.open_store()
    record = st.create_token(token, user=user or name,
                             creator=created_by or git_actor(ws.root))
    return CreatedToken(text=token_text(key_id, secret), record=record)


def list_tokens(ws: Workspace, *, include_revoked: bool = False,
                store: Store | None = None) -> list[TokenRecord]:
    """The tokens (not revoked, unless `include_revoked`), by name."""
    return (store or ws.open_store()).tokens(include_revoked=include_revoked)


def token_page(store: Store, *, include_revoked: bool = False, cursor: str | None = None,
               limit: int = DEFAULT_LIMIT) -> Page[TokenRecord]:
    """The tokens as `list_tokens` orders them, `limit` at a time (the API's list)."""
    check_limit(limit)
    after = None
    if cursor:
        pos = decode_cursor("tokens", cursor, ("name", "key_id"))
        after = (pos["name"], pos["key_id"])
    found = store.tokens(include_revoked=include_revoked, after=after, limit=limit + 1)
    items = tuple(found[:limit])
    more = len(found) > limit
    return Page(items=items, next_cursor=encode_cursor(
        "tokens", {"name": items[-1].name, "key_id": items[-1].key_id}) if more else None)


def revoke_token(ws: Workspace, ref: str, *, store: Store | None = None,
                 now: datetime | None = None) -> TokenRecord:
    """Revoke the token whose key id or name is `ref`; it is refused from then on."""
    return (store or ws.open_store()).revoke_token(ref, now or datetime.now(UTC))


def authenticate(store: Store, text: str, *, now: datetime | None = None) -> Caller:
    """The caller a token's text names, its last use recorded; TokenRefused otherwise. Why a
    token is refused (expired, revoked) is said only once its secret matched."""
    now = now or datetime.now(UTC)
    parsed = parse_token(text)
    if parsed is None:
        raise TokenRefused("this is not an aiops API token (they read aiops_<key id>_<secret>)")
    key_id, secret = parsed
    found = store.token_for_check(key_id)
    if found is None or not secret_matches(key_id, secret, found[1]):
        raise TokenRefused("this token is not recognised")
    token = found[0]
    state = token.state(now)
    if state == "revoked":
        raise TokenRefused(f"token {token.name} ({token.key_id}) was revoked")
    if state == "expired":
        assert token.expires_at is not None
        raise TokenRefused(f"token {token.name} ({token.key_id}) expired at "
                           f"{token.expires_at.isoformat(timespec='seconds')}")
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
        store.touch_token(token.id, now)
    return Caller(token_id=token.id, key_id=token.key_id, token_name=token.name,
                  user_id=token.user_id, role=token.role, groups=token.groups,
                  user_name=token.user, user_email=token.user_email, rpm=token.rpm,
                  daily_calls=token.daily_calls, daily_usd=token.daily_usd)

