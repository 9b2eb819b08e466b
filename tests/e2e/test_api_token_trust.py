"""A server worker trusts a token it checked for a few seconds (`TokenCache`), so that a burst
of requests reads the token once: what that may and may not change. A revocation in the
worker's own process is heeded at once; one from elsewhere (`aiops token revoke`, another
worker) within the trust window and not later; an expiry at its instant; a refused token is
never trusted. The clock is the cache's own, advanced by the test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiops import commands
from aiops.commands.tokens import TokenCache, TokenRefused
from aiops.store import open_store
from tests.fixtures_server import Api

BASE = "/api/contributor/ai-functions"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def trusting(api: Api, ttl_s: float = 5.0) -> Clock:
    clock = Clock()
    api.client.app.state.aiops.tokens = TokenCache(ttl_s, clock=clock)
    return clock


def revoke_elsewhere(api: Api, name: str) -> None:
    """What `aiops token revoke` in another process does: the row, and no cache of ours."""
    open_store(api.db_url).revoke_token(name, datetime.now(UTC))


def test_a_token_revoked_elsewhere_is_refused_once_the_trust_window_ends(api: Api) -> None:
    clock = trusting(api)
    api.call("GET", BASE, token="viewer")
    revoke_elsewhere(api, "viewer")
    clock.now += 4.9
    api.call("GET", BASE, token="viewer")  # within the documented window
    clock.now += 0.1
    body = api.call("GET", BASE, token="viewer", expect=401).json()
    assert body["code"] == "unauthenticated" and "revoked" in body["detail"]
    clock.now -= 5.0  # a refused token was not trusted: earlier is no better
    api.call("GET", BASE, token="viewer", expect=401)


def test_a_revocation_in_the_workers_process_is_heeded_at_once(api: Api) -> None:
    trusting(api, ttl_s=3600)
    api.call("GET", BASE, token="editor")
    commands.revoke_token(commands.open_workspace(api.root, database_url=api.db_url), "editor")
    assert "revoked" in api.call("GET", BASE, token="editor", expect=401).json()["detail"]


def test_without_trust_every_request_reads_the_token(api: Api) -> None:
    trusting(api, ttl_s=0)
    api.call("GET", BASE, token="invoker")
    revoke_elsewhere(api, "invoker")
    api.call("GET", BASE, token="invoker", expect=401)


def test_a_trusted_token_still_expires_at_its_instant(api: Api) -> None:
    ws = commands.open_workspace(api.root, database_url=api.db_url)
    made = commands.create_token(ws, name="brief", role="viewer", expires="1h",
                                 now=datetime.now(UTC) - timedelta(minutes=59, seconds=59))
    cache = TokenCache(3600, clock=Clock())
    store = open_store(api.db_url)
    cache.authenticate(store, made.text)
    assert cache.lookup(made.text) is not None
    later = datetime.now(UTC) + timedelta(seconds=2)
    assert cache.lookup(made.text, now=later) is None
    with pytest.raises(TokenRefused, match="expired at"):
        cache.authenticate(store, made.text, now=later)


def test_the_cache_keeps_no_secret_and_is_bounded(api: Api) -> None:
    cache = TokenCache(3600, max_entries=2, clock=Clock())
    store = open_store(api.db_url)
    for name in ("viewer", "editor", "admin"):
        cache.authenticate(store, api.tokens[name])
    assert len(cache) <= 2
    kept = repr(vars(cache))
    for text in api.tokens.values():
        assert text.split("_", 2)[2] not in kept
    # A wrong secret for a trusted key id is checked, and refused.
    key_id = api.tokens["admin"].split("_", 2)[1]
    with pytest.raises(TokenRefused, match="not recognised"):
        cache.authenticate(store, f"aiops_{key_id}_" + "x" * 43)
    assert cache.lookup(f"aiops_{key_id}_" + "x" * 43) is None
