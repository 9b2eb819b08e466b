"""API tokens as values: their text, their hash, their record. No I/O.

A token reads `aiops_<key id>_<secret>`: the key id (16 hex digits) finds its row; the secret
(256 random bits, base64url) proves it. Only sha256(key id, secret) is stored: a secret of 256
random bits needs no slow hash (nothing to guess), and it is compared in constant time. The
token's text is shown once, when it is made, and never again: not in a list, a log line, an
error or a row.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from aiops.access import ROLES, Role
from aiops.errors import UsageError, shown
from aiops.spec import DURATION_PATTERN

PREFIX = "aiops"
_TOKEN = re.compile(r"aiops_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
GROUP_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_LIFETIME = timedelta(days=3650)  # a token's `expires`: ten years at most


def new_secret() -> tuple[str, str]:
    """A new (key id, secret)."""
    return secrets.token_hex(8), secrets.token_urlsafe(32)


def token_text(key_id: str, secret: str) -> str:
    return f"{PREFIX}_{key_id}_{secret}"


def parse_token(text: str) -> tuple[str, str] | None:
    """(key id, secret) of a token's text; None when it is not shaped like one."""
    m = _TOKEN.fullmatch(text)
    return (m[1], m[2]) if m else None


def secret_hash(key_id: str, secret: str) -> str:
    return hashlib.sha256(f"{key_id}:{secret}".encode()).hexdigest()


def secret_matches(key_id: str, secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(secret_hash(key_id, secret), stored_hash)


def parse_duration(text: str, what: str) -> timedelta:
    """`90d`, `12h`, `30m`, `45s`."""
    if not re.match(DURATION_PATTERN, text):
        raise UsageError(f"{what} {shown(text)} is not a duration; write a number and a unit: "
                         "90d, 12h, 30m or 45s")
    return timedelta(seconds=int(text[:-1]) * _UNITS[text[-1]])


def check_lifetime(text: str, what: str = "--expires") -> timedelta:
    """A token's lifetime (`90d`), at most MAX_LIFETIME (checked before anything converts
    the number: a thousand digits are refused, not a crash)."""
    if re.match(DURATION_PATTERN, text) and (
            len(text) > 12 or int(text[:-1]) * _UNITS[text[-1]] > MAX_LIFETIME.total_seconds()):
        raise UsageError(f"{what} {shown(text)} is longer than the {MAX_LIFETIME.days}d a "
                         "token may live")
    return parse_duration(text, what)


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise UsageError(f"role {shown(role)} is not one of {', '.join(ROLES)}")
    return role


def check_groups(groups: tuple[str, ...]) -> tuple[str, ...]:
    for g in groups:
        if not re.match(GROUP_PATTERN, g) or g == "everyone":
            raise UsageError(f"group {shown(g)} is not a group name: lowercase letters, digits, "
                             "`.`, `_` and `-`, starting with a letter or digit (`everyone` is "
                             "every token already)")
    return tuple(dict.fromkeys(groups))


def check_name(name: str) -> str:
    if not re.match(NAME_PATTERN, name):
        raise UsageError(f"token name {shown(name)} is not a name: letters, digits, `.`, `_` "
                         "and `-`, up to 100, starting with a letter or digit")
    return name


@dataclass(frozen=True, kw_only=True)
class TokenRecord:
    """A token as stored (without its secret)."""

    id: str
    key_id: str
    name: str
    role: Role
    groups: tuple[str, ...]
    user_id: str
    user: str  # the user's name
    created_by: str  # the creator's name
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    rpm: int | None
    daily_calls: int | None
    daily_usd: float | None
    user_email: str | None = None  # the user's e-mail, when it has one
    # What its calls used of its daily quotas today (UTC), settled; filled in by listings.
    calls_today: int = 0
    usd_today: float = 0.0

    def state(self, now: datetime) -> Literal["active", "expired", "revoked"]:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True, kw_only=True)
class NewToken:
    """A token to store: its record's fields and the hash of its secret."""

    id: str
    key_id: str
    secret_hash: str
    name: str
    role: Role
    groups: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    rpm: int | None
    daily_calls: int | None
    daily_usd: float | None
