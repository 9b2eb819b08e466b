"""Idempotency keys in the database (aiops.store.idempotency through the verbs of
aiops.commands.invoke), on SQLite and PostgreSQL: a claim, a stored answer replayed, another
request under the key refused, a claim whose holder died taken over under the same execution
id, expiry, and claims racing from threads (as from several workers)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from aiops.access import Caller
from aiops.commands import invoke
from aiops.commands.invoke import IdempotencyKeyReused, RequestInProgress
from aiops.tokens import NewToken


def _caller(store: Any, name: str = "app") -> Caller:
    record = store.create_token(NewToken(
        id=str(uuid.uuid4()), key_id=uuid.uuid4().hex[:16], secret_hash="0" * 64, name=name,
        role="invoker", groups=(), created_at=datetime.now(UTC), expires_at=None, rpm=None,
        daily_calls=None, daily_usd=None), user="App <app@example.com>", creator="Op")
    return Caller(token_id=record.id, key_id=record.key_id, token_name=name,
                  user_id=record.user_id, role="invoker")


def _claim(store: Any, caller: Caller, key: str, fp: str = "a", **kw: Any) -> Any:
    row = store.claim_idempotency_key(token_id=caller.token_id, key=key, fingerprint=fp,
                                      log_id=str(uuid.uuid4()), lease_s=kw.get("lease_s", 600),
                                      ttl_s=kw.get("ttl_s", 3600))
    return row


def test_a_claim_then_its_answer_is_replayed(store: Any) -> None:
    caller = _caller(store)
    claim = invoke.claim_key(store, caller, "k1", "fp")
    assert claim.stored is None
    with pytest.raises(RequestInProgress):
        invoke.claim_key(store, caller, "k1", "fp")
    with pytest.raises(IdempotencyKeyReused):
        invoke.claim_key(store, caller, "k1", "another")
    answer = invoke.Stored(status_code=502, content_type="application/problem+json",
                           body=b'{"x": "\xc3\xa9"}')
    invoke.finish_key(store, claim, answer)
    again = invoke.claim_key(store, caller, "k1", "fp")
    assert again.stored == answer and again.log_id == claim.log_id
    with pytest.raises(IdempotencyKeyReused):
        invoke.claim_key(store, caller, "k1", "another")
    # Keys are per token.
    assert invoke.claim_key(store, _caller(store, "other"), "k1", "another").stored is None


def test_a_released_claim_frees_the_key(store: Any) -> None:
    caller = _caller(store)
    claim = invoke.claim_key(store, caller, "k", "fp")
    invoke.release_key(store, claim)
    fresh = invoke.claim_key(store, caller, "k", "another")
    assert fresh.stored is None and fresh.log_id != claim.log_id


def test_a_claim_whose_holder_died_is_taken_over_under_its_execution_id(store: Any) -> None:
    caller = _caller(store)
    first = _claim(store, caller, "k", lease_s=-1)  # its lease is over at once
    second = _claim(store, caller, "k")
    assert second.state == "new" and second.log_id == first.log_id
    assert _claim(store, caller, "k").state == "running"  # the new holder's lease holds


def test_an_expired_key_is_swept_and_free_again(store: Any) -> None:
    caller = _caller(store)
    _claim(store, caller, "old", ttl_s=-1)
    _claim(store, caller, "young")
    assert _claim(store, caller, "other").state == "new"  # its claim swept "old"
    from sqlalchemy import text

    with store.engine.connect() as conn:
        keys = set(conn.execute(text("SELECT key FROM idempotency_keys")).scalars())
    assert keys == {"young", "other"}
    assert _claim(store, caller, "old", fp="different").state == "new"


def test_racing_claims_of_one_key_make_one_holder(store: Any) -> None:
    caller = _caller(store)

    def claim(_: int) -> str:
        try:
            invoke.claim_key(store, caller, "race", "fp")
            return "new"
        except RequestInProgress:
            return "running"

    with ThreadPoolExecutor(8) as pool:
        states = list(pool.map(claim, range(16)))
    assert states.count("new") == 1 and states.count("running") == 15
