"""The web UI's sessions: sign in with an API token, find the caller of a session cookie,
sign out (`aiops.sessions` holds the values, `aiops.store.sessions` the rows).

A token is checked exactly as the API's gate checks it (`aiops.commands.tokens.authenticate`);
a session then stands for that token: each request re-reads the token with the session (one
query), so a revoked or expired token ends its sessions at once, and the caller is built by
the same `caller_of` as the API's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiops.access import Caller
from aiops.commands.tokens import TokenRefused, authenticate, caller_of
from aiops.sessions import NewSession, SessionRecord, new_session, parse_secret, session_hash
from aiops.store import Store
from aiops.tokens import TokenRecord


class SessionRefused(TokenRefused):
    """No session: none was started, it expired, was ended, or its token is no longer valid.
    The UI answers by asking to sign in again."""


@dataclass(frozen=True, kw_only=True)
class Session:
    caller: Caller
    record: SessionRecord


def sign_in(store: Store, text: str, *, now: datetime | None = None) -> NewSession:
    """A new session for the token `text` (TokenRefused when the API would refuse it)."""
    now = now or datetime.now(UTC)
    accepted: list[TokenRecord] = []
    caller = authenticate(store, text.strip(), now=now, accepted=accepted.append)
    session = new_session(caller.token_id, now, accepted[0].expires_at)
    store.create_session(session)
    return session


def session_of(store: Store, secret: str | None, *, now: datetime | None = None) -> Session:
    """The caller of a session cookie's value; SessionRefused when it names no live session
    of a valid token."""
    parsed = parse_secret(secret)
    if parsed is None:
        raise SessionRefused("sign in to continue")
    now = now or datetime.now(UTC)
    found = store.session(session_hash(parsed))
    if found is None:
        raise SessionRefused("your session ended; sign in again")
    record, token = found
    if record.expires_at <= now:
        raise SessionRefused("your session expired; sign in again")
    if token.state(now) != "active":
        raise SessionRefused(f"the token this session was signed in with is {token.state(now)}; "
                             "sign in with another")
    return Session(caller=caller_of(token), record=record)


def sign_out(store: Store, secret: str | None) -> None:
    """End the session (nothing to do when there is none)."""
    parsed = parse_secret(secret)
    if parsed is not None:
        store.end_session(session_hash(parsed))
