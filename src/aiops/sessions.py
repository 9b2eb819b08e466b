"""Web UI sessions as values: the cookie's secret, its hash, the CSRF token. No I/O.

A person signs in to the web UI with an API token once; the server then keeps a session row
(`aiops.store.sessions`) and hands the browser only a random secret in an HttpOnly cookie. As
with tokens, the database holds the secret's sha256, never the secret: a copy of the table
opens no session. The session names its token, so revoking the token, or its expiry, ends
every session signed in with it, and the caller is the token's (role, groups, user), exactly
as the API sees it.

Each session has its own CSRF token (random, stored): every write from the UI must echo it,
in the form field `csrf` or the header `X-CSRF-Token`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

# How long a session lasts from sign-in (never past its token's expiry).
SESSION_TTL = timedelta(hours=12)
COOKIE = "aiops_session"
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, kw_only=True)
class NewSession:
    """A session to store, and the cookie's value (`secret`: its only copy)."""

    secret: str
    id_hash: str
    csrf: str
    token_id: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, kw_only=True)
class SessionRecord:
    id_hash: str
    token_id: str
    csrf: str
    created_at: datetime
    expires_at: datetime


def session_hash(secret: str) -> str:
    return hashlib.sha256(f"session:{secret}".encode()).hexdigest()


def parse_secret(text: str | None) -> str | None:
    """The cookie's value when it is shaped like a session secret; None otherwise."""
    return text if text is not None and _SECRET.fullmatch(text) else None


def new_session(token_id: str, now: datetime, token_expires: datetime | None) -> NewSession:
    secret = secrets.token_urlsafe(32)
    expires = now + SESSION_TTL
    if token_expires is not None:
        expires = min(expires, token_expires)
    return NewSession(secret=secret, id_hash=session_hash(secret),
                      csrf=secrets.token_urlsafe(32), token_id=token_id, created_at=now,
                      expires_at=expires)


def csrf_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of the session's CSRF token with the one a write sent."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())
