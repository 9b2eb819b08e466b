"""The tokens' verbs: create, list, revoke (`aiops token ...`, and the admin API:
`/api/admin/tokens`), and authenticate a token's text into an `aiops.access.Caller` (the
server's gate).

A token's text is returned once, by `create_token`, and stored nowhere: the database holds
the hash of its secret (`aiops.tokens`).
"""

from __future__ import annotations

import threading
import time
import uuid
import weakref
from collections.abc import Callable
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
# How long a server worker trusts a token it has checked before asking the database again
# (`TokenCache`): a token revoked by `aiops token revoke`, or through another worker, is
# refused within this many seconds; through the worker that revoked it, at once.
TOKEN_TRUST_S = 5.0
TOKEN_CACHE_ENTRIES = 10_000


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
    """Revoke the token whose key id or name is `ref`; it is refused from then on (by every
    `TokenCache` of this process at once; by other processes' within their `ttl_s`)."""
    record = (store or ws.open_store()).revoke_token(ref, now or datetime.now(UTC))
    for cache in list(_CACHES):
        cache.forget(record.key_id)
    return record


@dataclass(frozen=True)
class _Trusted:
    caller: Caller
    key_id: str
    expires_at: datetime | None
    checked_at: float  # the cache's clock


class TokenCache:
    """The tokens one server worker checked in the last `ttl_s` seconds, so that a burst of
    requests costs one database read per token, not one each.

    Keyed by the hash of the token's text (the secret itself is not kept). A token is trusted
    for `ttl_s` after a check; its expiry is still checked on every request; a refused token
    is never cached (each attempt asks the database). `revoke_token` makes every cache of its
    process forget the token at once (a revocation through the API's worker); `aiops token
    revoke`, another worker or another replica is heeded within `ttl_s`. At most
    `max_entries` tokens are kept."""

    def __init__(self, ttl_s: float = TOKEN_TRUST_S, *, max_entries: int = TOKEN_CACHE_ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._trusted: dict[str, _Trusted] = {}
        self._lock = threading.Lock()
        self._forgotten = 0  # how many times `forget` ran: a check older than one is not kept
        _CACHES.add(self)

    def __len__(self) -> int:
        return len(self._trusted)

    def lookup(self, text: str, now: datetime | None = None) -> Caller | None:
        """The caller of a token checked lately and not expired since; None: ask
        `authenticate`. No I/O."""
        key = _cache_key(text)
        if key is None:
            return None
        found = self._trusted.get(key)
        if found is None:
            return None
        if self.clock() - found.checked_at >= self.ttl_s or (
                found.expires_at is not None and found.expires_at <= (now or datetime.now(UTC))):
            with self._lock:
                self._trusted.pop(key, None)
            return None
        return found.caller

    def authenticate(self, store: Store, text: str, *, now: datetime | None = None) -> Caller:
        """`lookup`, else `authenticate` (TokenRefused as it raises it), remembered."""
        caller = self.lookup(text, now)
        if caller is not None:
            return caller
        checked, forgotten = self.clock(), self._forgotten
        records: list[TokenRecord] = []
        caller = authenticate(store, text, now=now, accepted=records.append)
        expires_at = records[0].expires_at
        key = _cache_key(text)
        assert key is not None  # authenticate parsed it
        with self._lock:
            if self.ttl_s <= 0 or forgotten != self._forgotten:  # revoked while checking
                return caller
            if len(self._trusted) >= self.max_entries:
                self._evict()
            self._trusted[key] = _Trusted(caller, caller.key_id, expires_at, checked)
        return caller

    def forget(self, key_id: str | None = None) -> None:
        """Stop trusting the token with this key id (None: every token)."""
        with self._lock:
            self._forgotten += 1
            if key_id is None:
                self._trusted.clear()
                return
            for key in [k for k, t in self._trusted.items() if t.key_id == key_id]:
                del self._trusted[key]

    def _evict(self) -> None:
        horizon = self.clock() - self.ttl_s
        for key in [k for k, t in self._trusted.items() if t.checked_at <= horizon]:
            del self._trusted[key]
        if len(self._trusted) >= self.max_entries:
            self._trusted.clear()


_CACHES: weakref.WeakSet[TokenCache] = weakref.WeakSet()


def _cache_key(text: str) -> str | None:
    parsed = parse_token(text)
    return None if parsed is None else secret_hash(*parsed)


def authenticate(store: Store, text: str, *, now: datetime | None = None,
                 accepted: Callable[[TokenRecord], None] | None = None) -> Caller:
    """The caller a token's text names, its last use recorded; TokenRefused otherwise. Why a
    token is refused (expired, revoked) is said only once its secret matched. `accepted` is
    called with the token's record when it is accepted (a server worker asks through its
    `TokenCache`, which keeps the expiry)."""
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
    if accepted is not None:
        accepted(token)
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
        store.touch_token(token.id, now)
    return caller_of(token)


def caller_of(token: TokenRecord) -> Caller:
    """The caller a token makes: the API's gate and the web UI's sessions both ask here, so
    that a session carries exactly its token's role, groups and user."""
    return Caller(token_id=token.id, key_id=token.key_id, token_name=token.name,
                  user_id=token.user_id, role=token.role, groups=token.groups,
                  user_name=token.user, user_email=token.user_email, rpm=token.rpm,
                  daily_calls=token.daily_calls, daily_usd=token.daily_usd)

