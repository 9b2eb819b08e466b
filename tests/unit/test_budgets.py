"""Daily budgets (`aiops.budgets`): how large a lease is (pure), and the ledger of one process
over an in-memory store: admission in memory, waiting for calls in flight, refusals, bulk
settlement, leases given back when idle and on close."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from aiops.budgets import (
    TOKENS,
    ZERO,
    Amount,
    Budgets,
    Claim,
    Limit,
    Pool,
    grow_to,
    keep_held,
    refusal,
    settled,
)
from aiops.errors import BudgetExceeded, QuotaExceeded
from tests.fixtures_providers import FakeStore

FID = "00000000-0000-0000-0000-000000000001"


def pool(used: Amount = ZERO, others: Amount = ZERO, held: Amount = ZERO) -> Pool:
    return Pool(used=used, others=others, held=held)


# --- sizes ---------------------------------------------------------------------------------


def test_a_slice_is_a_fraction_of_what_is_left_and_at_least_the_call() -> None:
    limit = Limit(calls=1000, usd=10.0)
    one = Amount(calls=1, usd=0.01)
    assert grow_to(limit, pool(), ZERO, one) == Amount(calls=125, usd=1.25)
    # What others hold and what was used is not left; calls in flight are kept on top.
    assert grow_to(limit, pool(used=Amount(calls=200, usd=2.0), others=Amount(calls=400,
                                                                           usd=4.0)),
                   Amount(calls=8, usd=0.08), one) == Amount(calls=57, usd=0.57)
    # Near the end: the call itself, then all that is left, then nothing.
    end = pool(used=Amount(calls=990, usd=9.9))
    assert grow_to(limit, end, ZERO, Amount(calls=1, usd=0.05)) == Amount(calls=1, usd=0.05)
    assert grow_to(limit, end, ZERO, one) == Amount(calls=1, usd=pytest.approx(0.0125))
    last = pool(used=Amount(calls=999, usd=9.995))
    assert grow_to(limit, last, ZERO, Amount(calls=1, usd=0.004)) == Amount(
        calls=1, usd=pytest.approx(0.004))
    assert grow_to(limit, last, ZERO, one) is None
    assert grow_to(Limit(usd=1.0), pool(others=Amount(usd=0.995)), ZERO, one) is None
    # A retry needs no call of the quota, only its cost.
    assert grow_to(limit, pool(used=Amount(calls=1000)), ZERO, Amount(usd=0.01)) == Amount(
        calls=0, usd=1.25)


def test_settling_never_holds_less_than_nothing() -> None:
    after = settled(used=Amount(calls=3, usd=0.3), others=Amount(calls=6, usd=0.6),
                    held=Amount(calls=4, usd=0.4), settle=Amount(calls=5, usd=0.5))
    assert after == Pool(used=Amount(calls=8, usd=0.8), others=Amount(calls=6, usd=0.6),
                         held=ZERO)
    assert keep_held(after, Amount(calls=2, usd=0.1)) == Amount(calls=2, usd=0.1)


def test_a_refusal_says_which_budget_and_none_while_reservations_may_settle() -> None:
    limit = Limit(calls=10, usd=1.0)
    need = Amount(calls=1, usd=0.1)
    assert refusal("f", limit, pool(used=Amount(calls=9, usd=0.5),
                                    others=Amount(calls=1, usd=0.5)), need) is None
    now = datetime(2026, 3, 4, 23, 0, tzinfo=UTC)
    calls = refusal("f", limit, pool(used=Amount(calls=10)), need, now=now)
    assert type(calls) is BudgetExceeded and calls.message == (
        "f: today's call budget is spent (daily_calls 10: 10 made); it resets at 00:00 UTC")
    assert (calls.limit, calls.retry_after_s) == ("daily_calls", 3600.0)
    usd = refusal("f", limit, pool(used=Amount(usd=0.95)), need, now=now)
    assert usd is not None and usd.message.startswith(
        "f: today's budget is spent (daily_budget_usd 1.0: $0.950000 spent, this call may "
        "cost up to")
    assert usd.limit == "daily_budget_usd"
    # A token's quota: its own words and error, the same arithmetic.
    quota = refusal("token ci", Limit(calls=10, usd=1.0), pool(used=Amount(usd=0.95)), need,
                    ledger=TOKENS, now=now)
    assert isinstance(quota, QuotaExceeded) and quota.limit == "daily_usd"
    assert quota.message.startswith("token ci: today's quota is spent (daily_usd 1.0: ")


# --- the ledger ----------------------------------------------------------------------------


class Counting(FakeStore):
    def __init__(self) -> None:
        super().__init__()
        self.syncs = 0

    def sync_budget_lease(self, sync: Any, size: Any) -> Pool:
        self.syncs += 1
        return super().sync_budget_lease(sync, size)


def counters(store: FakeStore) -> dict[str, float]:
    (found,) = store.usage.values()
    return found


async def call(budgets: Budgets, limit: Limit, usd: float, cost: float, *,
               seconds: float = 0.0, wait: bool = True, calls: int = 1) -> None:
    async with budgets.reserve(Claim(owner_id=FID, name="f", limit=limit, wait=wait),
                               calls=calls, usd=usd) as settle:
        await asyncio.sleep(seconds)
        settle(cost)


def test_calls_are_admitted_in_memory_one_lease_a_slice() -> None:
    store = Counting()
    budgets = Budgets(store)

    async def go() -> None:
        for _ in range(100):
            await call(budgets, Limit(calls=10_000, usd=10.0), 0.01, 0.002)
        await budgets.aclose()

    asyncio.run(go())
    assert store.syncs == 2  # the lease, then settled and given back on close
    assert counters(store) == {"calls_reserved": 0, "calls_used": 100, "usd_reserved": 0.0,
                               "usd_spent": pytest.approx(0.2)}
    assert store.leases == {}


def test_a_call_waits_for_calls_in_flight_instead_of_being_refused() -> None:
    """Only two estimates of 0.4 fit a budget of 1.0; the calls cost 0.1 each, so once the
    first ones settle the others fit too: all run, none is refused."""
    store = FakeStore()
    budgets = Budgets(store)
    limit = Limit(usd=1.0)

    async def go() -> None:
        await asyncio.gather(*(call(budgets, limit, 0.4, 0.1, seconds=0.02) for _ in range(6)))
        await budgets.aclose()

    asyncio.run(go())
    assert counters(store)["usd_spent"] == pytest.approx(0.6)
    assert counters(store)["usd_reserved"] == 0


def test_with_on_limit_fail_a_call_is_refused_when_reservations_hold_the_budget() -> None:
    store = FakeStore()
    budgets = Budgets(store)
    limit = Limit(usd=1.0)

    async def go() -> list[Any]:
        results = await asyncio.gather(
            *(call(budgets, limit, 0.4, 0.1, seconds=0.02, wait=False) for _ in range(3)),
            return_exceptions=True)
        await budgets.aclose()
        return results

    first, second, third = asyncio.run(go())
    assert first is None and second is None
    assert isinstance(third, BudgetExceeded)
    assert third.message == (
        "f: today's budget has no room for this call while calls in flight hold reservations "
        "(daily_budget_usd 1.0: $0.000000 spent, $0.800000 reserved); `on_limit: wait` waits "
        "for them to settle")


def test_waiting_ends_after_max_wait_when_nothing_settles() -> None:
    """Another process holds the rest of the budget and does not give it back."""
    store = FakeStore()
    other, mine = Budgets(store), Budgets(store, max_wait_s=0.05)
    limit = Limit(usd=1.0)

    async def go() -> None:
        async with other.reserve(Claim(owner_id=FID, name="f", limit=limit), calls=1,
                                 usd=0.9):
            with pytest.raises(BudgetExceeded, match=r"stayed reserved by calls in flight for "
                                                     r"0s \(daily_budget_usd 1.0: \$0.000000 "
                                                     r"spent, \$0.900000 reserved\)"):
                await call(mine, limit, 0.2, 0.1)
        await other.aclose()
        await mine.aclose()

    asyncio.run(go())
    assert counters(store)["usd_reserved"] == 0


def test_what_was_spent_refuses_at_once() -> None:
    store = FakeStore()
    budgets = Budgets(store)
    limit = Limit(calls=3)

    async def go() -> None:
        for _ in range(3):
            await call(budgets, limit, 0.0, 0.0)
        with pytest.raises(BudgetExceeded, match="today's call budget is spent"):
            await call(budgets, limit, 0.0, 0.0)
        await call(budgets, limit, 0.0, 0.0, calls=0)  # a retry of an admitted execution
        await budgets.aclose()

    asyncio.run(go())
    assert counters(store)["calls_used"] == 3


def test_an_idle_lease_is_settled_and_given_back_without_close() -> None:
    store = FakeStore()
    budgets = Budgets(store, flush_s=0.01)

    async def go() -> None:
        await call(budgets, Limit(usd=1.0), 0.01, 0.004)
        assert counters(store)["usd_reserved"] > 0
        for _ in range(100):
            if not store.leases:
                break
            await asyncio.sleep(0.01)

    asyncio.run(go())
    assert store.leases == {}
    assert counters(store)["usd_spent"] == pytest.approx(0.004)
    assert counters(store)["usd_reserved"] == 0


def test_a_call_cannot_settle_a_credit() -> None:
    budgets = Budgets(FakeStore())

    async def go() -> None:
        with pytest.raises(ValueError, match="cost must be >= 0"):
            await call(budgets, Limit(usd=1.0), 0.01, -1_000_000.0)
        await budgets.aclose()

    asyncio.run(go())


def test_a_cancelled_waiter_leaves_nothing_behind() -> None:
    store = FakeStore()
    budgets = Budgets(store)
    limit = Limit(usd=1.0)

    async def go() -> None:
        holder = asyncio.ensure_future(call(budgets, limit, 0.9, 0.1, seconds=0.2))
        await asyncio.sleep(0.01)
        waiter = asyncio.ensure_future(call(budgets, limit, 0.5, 0.1))
        await asyncio.sleep(0.02)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await holder
        await budgets.aclose()

    asyncio.run(go())
    assert counters(store) == {"calls_reserved": 0, "calls_used": 1, "usd_reserved": 0.0,
                               "usd_spent": pytest.approx(0.1)}
    assert store.leases == {}


def test_a_limit_lowered_in_place_takes_effect_at_the_next_call() -> None:
    """An apply lowers daily_calls while this process holds a slice of the old quota."""
    store = FakeStore()
    budgets = Budgets(store)

    async def go() -> None:
        for _ in range(2):
            await call(budgets, Limit(calls=100), 0.0, 0.0)
        with pytest.raises(BudgetExceeded, match=r"daily_calls 2: 2 made"):
            await call(budgets, Limit(calls=2), 0.0, 0.0)
        await budgets.aclose()

    asyncio.run(go())
    assert counters(store)["calls_used"] == 2 and counters(store)["calls_reserved"] == 0
