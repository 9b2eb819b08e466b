"""Budget leases in real SQLite and PostgreSQL (`aiops.store.leases`): one transaction grows,
settles and gives back a lease, never grants past the budget, sweeps what dead holders
left, and waits for a locked database within the store's patience."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from aiops.budgets import ZERO, Amount, LeaseSync, Limit, Pool, grow_to, keep_held
from aiops.errors import LockBusy
from aiops.store import open_store
from tests.fixtures_db import apply_project, budget_leases, held_lock, spec_data, write_project

DAY = date(2026, 1, 2)


@pytest.fixture
def fid(project: Path, db_url: str) -> str:
    write_project(project, [spec_data()])
    apply_project(project, actor="tester")
    return open_store(db_url).resolve("greet").function_id


def sync(st: Any, fid: str, lease: str, size: Any, *, settle: Amount = ZERO,
         day: date = DAY, lease_s: float = 60.0) -> Pool:
    pool: Pool = st.sync_budget_lease(
        LeaseSync(lease_id=lease, holder="test:1", owner_id=fid, day=day, settle=settle,
                  lease_s=lease_s), size)
    return pool


def grow(limit: Limit, need: Amount, fraction: float = 0.125) -> Any:
    return lambda pool: grow_to(limit, pool, Amount(), need, fraction) or Amount()


def usage(st: Any, fid: str, day: date = DAY) -> dict[str, Any]:
    found = st.usage(fid, day)
    assert found is not None
    return dict(found)


def test_a_lease_grows_settles_and_is_given_back(fid: str, db_url: str) -> None:
    st = open_store(db_url)
    limit = Limit(calls=100, usd=1.0)
    a = str(uuid.uuid4())
    pool = sync(st, fid, a, grow(limit, Amount(calls=1, usd=0.01)))
    # A slice of an eighth of what is left, not just the call.
    assert pool.held == Amount(calls=12, usd=0.125)
    u = usage(st, fid)
    assert (u["calls_reserved"], u["usd_reserved"], u["calls_used"], u["usd_spent"]) == (
        12, 0.125, 0, 0.0)
    (row,) = budget_leases(st)
    assert (row.calls, row.usd, row.holder, row.day) == (12, 0.125, "test:1", DAY)
    # Settling moves what was spent out of the lease into what was used.
    pool = sync(st, fid, a, lambda p: keep_held(p, Amount()),
                settle=Amount(calls=5, usd=0.02))
    assert (pool.held.calls, pool.held.usd) == (7, pytest.approx(0.105))
    u = usage(st, fid)
    assert (u["calls_used"], u["calls_reserved"]) == (5, 7)
    assert (u["usd_spent"], u["usd_reserved"]) == (pytest.approx(0.02), pytest.approx(0.105))
    # Given back: the row goes, nothing stays reserved.
    sync(st, fid, a, lambda p: Amount(), settle=Amount(calls=1, usd=0.5))
    u = usage(st, fid)
    assert (u["calls_used"], u["calls_reserved"], u["usd_reserved"]) == (6, 0, 0.0)
    assert u["usd_spent"] == pytest.approx(0.52)
    assert budget_leases(st) == []


def test_a_second_lease_gets_a_slice_of_what_the_first_left(fid: str, db_url: str) -> None:
    st = open_store(db_url)
    limit = Limit(usd=1.0)
    first = sync(st, fid, str(uuid.uuid4()), grow(limit, Amount(usd=0.01), 0.5))
    second = sync(st, fid, str(uuid.uuid4()), grow(limit, Amount(usd=0.01), 0.5))
    assert (first.held.usd, second.others.usd, second.held.usd) == (0.5, 0.5, 0.25)
    # Near the end, a lease is one call: the last one that fits.
    third = sync(st, fid, str(uuid.uuid4()), grow(limit, Amount(usd=0.25), 0.5))
    assert third.held.usd == 0.25
    refused = sync(st, fid, str(uuid.uuid4()), lambda p: grow_to(limit, p, Amount(),
                                                                  Amount(usd=0.01)) or Amount())
    assert refused.held == Amount() and refused.others.usd == pytest.approx(1.0)
    assert usage(st, fid)["usd_reserved"] == pytest.approx(1.0)


def test_concurrent_leases_never_grant_more_than_the_budget(fid: str, db_url: str) -> None:
    """Threads (each its own connection) take one call at a time and spend it at once: all
    together make exactly the 25 calls of the quota, never one more."""
    st = open_store(db_url)
    limit = Limit(calls=25)
    made: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        lease, spent = str(uuid.uuid4()), Amount()
        for _ in range(10):
            pool = sync(st, fid, lease, lambda p: grow_to(limit, p, Amount(), Amount(calls=1),
                                                          0.0) or Amount(), settle=spent)
            spent = Amount(calls=pool.held.calls)
            with lock:
                made.append(pool.held.calls)
        sync(st, fid, lease, lambda p: Amount(), settle=spent)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(made) == 25
    u = usage(st, fid)
    assert (u["calls_used"], u["calls_reserved"]) == (25, 0)
    assert budget_leases(st) == []


def test_the_sweep_releases_the_leases_of_dead_holders(fid: str, db_url: str) -> None:
    """A holder that never comes back (SIGKILL) leaves its lease: once it expires, the next
    sync of the function, by any holder, releases it, on its day and on earlier days."""
    st = open_store(db_url)
    limit = Limit(calls=10, usd=1.0)
    yesterday = DAY - timedelta(days=1)
    sync(st, fid, str(uuid.uuid4()), grow(limit, Amount(calls=1, usd=0.1), 1.0), lease_s=-1)
    sync(st, fid, str(uuid.uuid4()), grow(limit, Amount(calls=1, usd=0.1), 1.0),
         day=yesterday, lease_s=-1)
    assert usage(st, fid)["calls_reserved"] == 10
    assert usage(st, fid, yesterday)["calls_reserved"] == 10
    live = str(uuid.uuid4())
    pool = sync(st, fid, live, grow(limit, Amount(calls=1, usd=0.1), 0.5))
    assert pool.others == Amount() and pool.held == Amount(calls=5, usd=0.5)
    (row,) = budget_leases(st)
    assert str(row.id) == live
    assert usage(st, fid)["calls_reserved"] == 5
    assert usage(st, fid, yesterday)["calls_reserved"] == 0
    assert usage(st, fid, yesterday)["usd_reserved"] == 0


def test_a_lease_swept_from_a_live_holder_settles_without_releasing_twice(
        fid: str, db_url: str) -> None:
    """A holder that stalled past its expiry finds its lease gone: what it spent is still
    settled, the others' reservations are untouched, and it leases anew."""
    st = open_store(db_url)
    limit = Limit(calls=10)
    stalled, other = str(uuid.uuid4()), str(uuid.uuid4())
    sync(st, fid, stalled, grow(limit, Amount(calls=1), 0.5), lease_s=-1)  # holds 5
    sync(st, fid, other, grow(limit, Amount(calls=1), 0.5))  # sweeps it, then holds 5
    pool = sync(st, fid, stalled, lambda p: keep_held(p, Amount(calls=1)),
                settle=Amount(calls=3))
    assert pool.used.calls == 3 and pool.others.calls == 5 and pool.held.calls == 1
    u = usage(st, fid)
    assert (u["calls_used"], u["calls_reserved"]) == (3, 6)


# --- a locked database -------------------------------------------------------------------------


def test_a_lease_waits_for_a_lock_held_past_the_busy_timeout(fid: str, db_url: str) -> None:
    """Lease syncs wait and retry within the store's patience, as log writes do: 20 budgeted
    runs in parallel on SQLite used to exit 75 (LockBusy) at their first busy timeout."""
    st = open_store(db_url, lock_timeout_s=0.2)
    lease = str(uuid.uuid4())
    with held_lock(db_url, "usage_counters", most_s=1.0):
        started = time.monotonic()
        pool = sync(st, fid, lease, grow(Limit(calls=100), Amount(calls=1)))
        assert time.monotonic() - started >= 0.5
    assert pool.held.calls == 12
    sync(st, fid, lease, lambda pool: ZERO, settle=Amount(calls=1))  # settle and give back
    assert usage(st, fid)["calls_used"] == 1 and not budget_leases(st)


def test_a_lease_gives_up_when_the_patience_runs_out(fid: str, db_url: str) -> None:
    """Bounded like log writes (PostgreSQL used to wait without a bound), and the message
    names no option: `aiops run` has no --lock-timeout."""
    st = open_store(db_url, patience_s=0.5)
    with held_lock(db_url, "usage_counters", most_s=4.0):
        started = time.monotonic()
        with pytest.raises(LockBusy) as info:
            sync(st, fid, str(uuid.uuid4()), grow(Limit(calls=100), Amount(calls=1)))
        assert 0.4 <= time.monotonic() - started < 1.5
    assert "stayed locked by another writer" in str(info.value)
    assert "--" not in str(info.value)
    assert not budget_leases(st)
