"""Daily budgets (`limits.daily_calls`, `limits.daily_budget_usd`): exact under concurrency,
and without a database round trip per call (DESIGN §6.4, §10, §11).

A process leases a slice of a function's remaining budget for the day (one transaction),
admits calls against the slice in memory, and settles what they cost in bulk. The quotas of an
API caller's token (daily calls, daily USD: DESIGN §9) are budgets of the same kind, in their
own tables (`TOKENS`, a `Ledger`); a call is admitted against every budget it is claimed
against (`Claim`: the function's, the caller's), or against none:

    database: usage_counters (function, day)    used: calls made, USD spent (settled)
                                                reserved: the sum of the live leases
              budget_leases                     one row per lease: holder, calls, usd, expiry
    process:  an account per (function, day)    held: what its lease holds
                                                admitted: estimates of the calls in flight
                                                          + real costs not yet settled

A call is admitted while admitted + its estimate fits what the lease holds. One transaction
(`LeaseStore.sync_budget_lease`) settles the real costs into `used` and resizes the lease:
- grow, when a call does not fit: to max(the call, SLICE_FRACTION of what is left), capped
  at what is left, so that slices shrink as the budget runs out and several processes share
  its end, down to one call each. When not even the call fits, the lease gives back all that
  its calls in flight do not hold.
- keep, every FLUSH_S while calls are being made: settle, renew the expiry.
- shrink, after FLUSH_S without a call and on close (`Runner.aclose`): settle, give back all
  that calls in flight do not hold.
A lease that is not renewed for LEASE_S (its holder died: SIGKILL, a lost machine) is
released by the sweep that runs in every sync of the same function, on any process.

The database grants a lease only while used + reserved + the grant fits the budget, and a
process admits only what fits its lease, so the estimates of all calls in flight together
never exceed what is left: a call that costs more than its estimate is the only way past a
budget (docs/providers.md, "Budgets", states the bound). No transaction stays open across a
provider call, and nothing here assumes one process (DESIGN §11).

A call that does not fit waits (unless `on_limit: fail`; up to `max_wait_s`) while
reservations that may settle below their estimates are held, here or by other processes; it
is refused at once when what was spent leaves no room for it, or, with `on_limit: fail`,
when what is spent and reserved leaves none.

    sizes (pure): Amount, Limit, Pool, settled, grow_to, keep_held
    the ledger:   Budgets (one per Runner) over a LeaseStore (aiops.store.Store)
    the kinds:    Ledger (FUNCTIONS, TOKENS), Claim
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from aiops.errors import AiopsError, BudgetExceeded, BudgetSettleError, QuotaExceeded

SLICE_FRACTION = 0.125  # of what is left: 8 busy processes together hold about 2/3 of it
FLUSH_S = 1.0  # settle and renew this often while a lease is held
LEASE_S = 60.0  # a lease not renewed for this long is released by the sweep
USD_EPSILON = 1e-9  # float residue of sums of costs: a billionth of a dollar
HELD_RETRY_S = 1.0  # when to try again a call that reservations in flight keep out


# --- sizes (pure) --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Amount:
    """Calls and USD: what is held, used or needed."""

    calls: int = 0
    usd: float = 0.0


ZERO = Amount()


@dataclass(frozen=True, kw_only=True)
class Limit:
    """A function's daily limits; None: no limit of that kind (nothing is held for it)."""

    calls: int | None = None
    usd: float | None = None


@dataclass(frozen=True, kw_only=True)
class Ledger:
    """A kind of daily budget: the tables that hold it (`name`: aiops.store.leases), and how
    refusals name it, its limits and what they raise."""

    name: str
    noun: str
    calls: str
    usd: str
    error: type[BudgetExceeded]


FUNCTIONS = Ledger(name="function", noun="budget", calls="daily_calls", usd="daily_budget_usd",
                   error=BudgetExceeded)
TOKENS = Ledger(name="token", noun="quota", calls="daily_calls", usd="daily_usd",
                error=QuotaExceeded)


@dataclass(frozen=True, kw_only=True)
class Claim:
    """One budget a call is admitted against: whose (`owner_id`, a function's or a token's id,
    of `ledger`), what refusals call it (`name`), its limits, and whether a call without room
    waits for calls in flight to settle (`on_limit: wait`) or is refused."""

    owner_id: str
    name: str
    limit: Limit
    ledger: Ledger = FUNCTIONS
    wait: bool = True


@dataclass(frozen=True, kw_only=True)
class Pool:
    """A function's budget for a day as one lease sees it, after settling what it spent."""

    used: Amount  # settled: calls made, USD spent
    others: Amount  # held by the other live leases
    held: Amount  # held by this lease


@dataclass(frozen=True, kw_only=True)
class LeaseSync:
    """One sync of a lease: settle `settle` into what was used, then resize the lease."""

    lease_id: str
    holder: str
    owner_id: str  # the function's id, or the token's (`ledger`)
    day: date
    settle: Amount
    lease_s: float
    ledger: str = FUNCTIONS.name


def settled(*, used: Amount, others: Amount, held: Amount, settle: Amount) -> Pool:
    """The pool a lease sees once `settle` moves from what it holds (`held`) into what was
    used. A lease holds no less than nothing, even when its calls cost more than their
    estimates."""
    return Pool(
        used=Amount(calls=used.calls + settle.calls, usd=used.usd + settle.usd),
        others=others,
        held=Amount(calls=max(0, held.calls - settle.calls),
                    usd=max(0.0, held.usd - settle.usd)))


def _grow(limit: float | None, used: float, others: float, keep: float, need: float,
          fraction: float, epsilon: float) -> float | None:
    if limit is None:
        return 0.0
    free = limit - used - others
    if keep + need > free + epsilon:
        return None
    return min(free, keep + max(need, fraction * (free - keep)))


def grow_to(limit: Limit, pool: Pool, keep: Amount, need: Amount,
            fraction: float = SLICE_FRACTION) -> Amount | None:
    """The size of a lease that keeps `keep` (calls in flight) and admits `need` (one call):
    `need` or `fraction` of what is left, whichever is larger, capped at what is left. None
    when even `need` does not fit."""
    calls = _grow(limit.calls, pool.used.calls, pool.others.calls, keep.calls, need.calls,
                  fraction, 0)
    usd = _grow(limit.usd, pool.used.usd, pool.others.usd, keep.usd, need.usd, fraction,
                USD_EPSILON)
    if calls is None or usd is None:
        return None
    return Amount(calls=int(calls), usd=usd)


def keep_held(pool: Pool, keep: Amount) -> Amount:
    """What a lease holds after settling, and never less than its calls in flight."""
    return Amount(calls=max(pool.held.calls, keep.calls), usd=max(pool.held.usd, keep.usd))


def resets_in(day: date, now: datetime) -> float:
    """Seconds from `now` until the budgets of `day` reset: the next 00:00 UTC."""
    midnight = datetime.combine(day + timedelta(days=1), time(), UTC)
    return max(1.0, (midnight - now).total_seconds())


def refusal(name: str, limit: Limit, pool: Pool, need: Amount, *, ledger: Ledger = FUNCTIONS,
            day: date | None = None, now: datetime | None = None) -> BudgetExceeded | None:
    """Why a call cannot run on `day` (today) whatever settles (what was spent leaves no
    room), as the ledger's error, or None when reservations that may settle below their
    estimates stand in its way."""
    now = now or datetime.now(UTC)
    retry = resets_in(day or now.date(), now)
    if limit.calls is not None and pool.used.calls + need.calls > limit.calls:
        return ledger.error(
            f"{name}: today's call {ledger.noun} is spent ({ledger.calls} {limit.calls}: "
            f"{pool.used.calls} made); it resets at 00:00 UTC", limit=ledger.calls,
            retry_after_s=retry)
    if limit.usd is not None and pool.used.usd + need.usd > limit.usd + USD_EPSILON:
        return ledger.error(
            f"{name}: today's {ledger.noun} is spent ({ledger.usd} {limit.usd}: "
            f"${pool.used.usd:.6f} spent, this call may cost up to ${need.usd:.6f}); it "
            "resets at 00:00 UTC", limit=ledger.usd, retry_after_s=retry)
    return None


def _held_up(name: str, limit: Limit, pool: Pool, need: Amount, waited_s: float | None,
             ledger: Ledger) -> BudgetExceeded:
    reserved = Amount(calls=pool.others.calls + pool.held.calls,
                      usd=pool.others.usd + pool.held.usd)
    parts = []
    if limit.calls is not None:
        parts.append(f"{ledger.calls} {limit.calls}: {pool.used.calls} made, {reserved.calls} "
                     "reserved")
    if limit.usd is not None:
        parts.append(f"{ledger.usd} {limit.usd}: ${pool.used.usd:.6f} spent, "
                     f"${reserved.usd:.6f} reserved")
    held = "; ".join(parts)
    calls_full = limit.calls is not None and \
        pool.used.calls + reserved.calls + need.calls > limit.calls
    which = ledger.calls if calls_full or limit.usd is None else ledger.usd
    if waited_s is None:
        message = (f"{name}: today's {ledger.noun} has no room for this call while calls in "
                   f"flight hold reservations ({held}); `on_limit: wait` waits for them to "
                   "settle")
    else:
        message = (f"{name}: today's {ledger.noun} stayed reserved by calls in flight for "
                   f"{waited_s:.0f}s ({held}); try again later")
    return ledger.error(message, limit=which, retry_after_s=HELD_RETRY_S)


class LeaseStore(Protocol):
    """Where leases live (the database); `aiops.store.Store` implements it."""

    def sync_budget_lease(self, sync: LeaseSync, size: Callable[[Pool], Amount]) -> Pool:
        """In one transaction: release expired leases of the function, settle `sync.settle`,
        set the lease to `size(pool)` (deleted at zero) with a new expiry; the pool after."""
        ...


# --- the ledger of one process -------------------------------------------------------------


class _Account:
    """One lease: a function's (or a token's) budget for a day, in this process."""

    def __init__(self, claim: Claim, day: date) -> None:
        self.owner_id, self.name, self.day, self.limit = (claim.owner_id, claim.name, day,
                                                          claim.limit)
        self.ledger = claim.ledger
        self.lease_id = str(uuid.uuid4())
        self.held_calls, self.held_usd = 0, 0.0
        self.inflight = 0  # calls in flight (their first calls and retries)
        self.inflight_calls, self.inflight_usd = 0, 0.0  # their estimates
        self.spent_calls, self.spent_usd = 0, 0.0  # finished, not settled yet
        self.syncing: asyncio.Task[Pool] | None = None
        self.resizing = False  # a grow or shrink in progress: admissions wait for it
        self.refused: Pool | None = None  # the last sync was a grow that found no room
        self.active = False  # a call was admitted or finished since the last flush
        self.waiters = 0
        self.freed: asyncio.Future[None] | None = None  # set when a call here finishes

    def fits(self, calls: int, usd: float) -> bool:
        limit = self.limit
        if limit.calls is not None and \
                self.inflight_calls + self.spent_calls + calls > self.held_calls:
            return False
        return limit.usd is None or \
            self.inflight_usd + self.spent_usd + usd <= self.held_usd + USD_EPSILON

    @property
    def idle(self) -> bool:
        return (self.held_calls == 0 and self.held_usd == 0 and self.inflight == 0
                and self.spent_calls == 0 and self.spent_usd == 0 and self.waiters == 0
                and self.syncing is None)


class Budgets:
    """The daily budgets of one process (one per Runner): leases, admissions, settlement."""

    def __init__(self, store: LeaseStore, *, max_wait_s: float = 60.0,
                 lease_s: float = LEASE_S, flush_s: float = FLUSH_S,
                 fraction: float = SLICE_FRACTION) -> None:
        self._store = store
        self._max_wait_s = max_wait_s
        self._lease_s = lease_s
        self._flush_s = min(flush_s, lease_s / 4)  # renewed well before it can expire
        self._fraction = fraction
        self.holder = f"{socket.gethostname()}:{os.getpid()}"[:200]
        self._accounts: dict[tuple[str, str, date], _Account] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop: tasks and futures of the old one are gone
            self._loop, self._flusher = loop, None
            for old in self._accounts.values():
                old.syncing, old.resizing, old.freed = None, False, None

    def _account(self, claim: Claim) -> _Account:
        self._bind_loop()
        key = (claim.ledger.name, claim.owner_id, datetime.now(UTC).date())
        account = self._accounts.get(key)
        if account is None:
            account = self._accounts[key] = _Account(claim, key[2])
        elif account.limit != claim.limit:
            # Limits change in place (apply, a token's quotas): the next call resizes the
            # lease under the new ones (what the database holds for it is read again then).
            account.limit = claim.limit
            account.held_calls, account.held_usd = 0, 0.0
        return account

    @contextlib.asynccontextmanager
    async def reserve(self, *claims: Claim, calls: int,
                      usd: float) -> AsyncIterator[Callable[[float], None]]:
        """Admit one provider call of estimated cost `usd` (and `calls`: 1 for an execution's
        first call, 0 for its retries) against every budget of `claims`, in order, or against
        none: when one refuses, what the others admitted is given back uncounted. Yields
        `settle(real_cost)`. What the call cost (0 if it was never settled) is counted in
        each when the block exits, whatever happened in it."""
        held: list[_Account] = []
        try:
            for claim in claims:
                account = self._account(claim)
                if account.resizing or not account.fits(calls, usd):
                    await self._admit(account, calls, usd, claim.wait)
                account.inflight += 1
                account.inflight_calls += calls
                account.inflight_usd += usd
                account.active = True
                held.append(account)
        except BaseException:
            for account in held:
                self._release(account, calls, usd, None)
            raise
        cost = [0.0]

        def settle(real: float) -> None:
            if not real >= 0:  # NaN too: a cost is never a credit
                raise ValueError(f"a call's cost must be >= 0 USD, not {real}")
            cost[0] = real

        try:
            yield settle
        finally:
            for account in held:
                self._release(account, calls, usd, cost[0])

    def _release(self, account: _Account, calls: int, usd: float, cost: float | None) -> None:
        """A call admitted against `account` ended: it cost `cost` (and its `calls`), or,
        None, it was never made (another budget refused it) and counts nothing."""
        account.inflight -= 1
        account.inflight_calls -= calls
        account.inflight_usd -= usd
        if account.inflight == 0:  # no float residue: an idle lease goes back entirely
            account.inflight_usd = 0.0
        if cost is not None:
            account.spent_calls += calls
            account.spent_usd += cost
        account.active = True
        if account.freed is not None and not account.freed.done():
            account.freed.set_result(None)
        self._ensure_flusher()

    async def _admit(self, account: _Account, calls: int, usd: float, wait: bool) -> None:
        """The slow path: grow the lease, or wait for room, or refuse."""
        loop = asyncio.get_running_loop()
        need = Amount(calls=calls, usd=usd)
        started = loop.time()
        pause = 0.005
        account.waiters += 1
        try:
            while True:
                if account.syncing is not None:  # wait for it, then look again
                    pool = await asyncio.shield(account.syncing)
                    if not account.resizing and account.fits(calls, usd):
                        return
                    if account.refused is None:  # it did not try to grow, or it grew
                        continue
                    pool = account.refused  # no room for its call: none for this one yet
                elif account.fits(calls, usd):
                    return
                else:
                    pool = await self._sync(account, need)
                    if not account.resizing and account.fits(calls, usd):
                        return
                why = refusal(account.name, account.limit, pool, need, ledger=account.ledger,
                              day=account.day)
                if why is not None:
                    raise why
                if not wait:
                    raise _held_up(account.name, account.limit, pool, need, None,
                                   account.ledger)
                waited = loop.time() - started
                if waited >= self._max_wait_s:
                    raise _held_up(account.name, account.limit, pool, need, waited,
                                   account.ledger)
                # Wake when a call here finishes, or poll: other processes settle on their own.
                if account.freed is None or account.freed.done():
                    account.freed = loop.create_future()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(account.freed),
                                           min(pause, self._max_wait_s - waited))
                pause = min(pause * 2, 0.25)
        finally:
            account.waiters -= 1

    def _sync(self, account: _Account, need: Amount | None) -> asyncio.Future[Pool]:
        """Settle, and resize the lease: grow to admit `need`; keep (None while calls are
        being made); or shrink to the calls in flight (`need` ZERO, or idle)."""
        settle = Amount(calls=account.spent_calls, usd=account.spent_usd)
        keep = Amount(calls=account.inflight_calls, usd=account.inflight_usd)
        limit, fraction = account.limit, self._fraction
        refused: list[bool] = []  # set by a grow's size, in the database's thread (each try)
        size: Callable[[Pool], Amount]
        if need is None:
            def size(pool: Pool) -> Amount:
                return keep_held(pool, keep)
        elif need == ZERO:
            def size(pool: Pool) -> Amount:
                return keep
        else:
            def size(pool: Pool) -> Amount:
                grown = grow_to(limit, pool, keep, need, fraction)
                refused.append(grown is None)
                return keep if grown is None else grown
        sync = LeaseSync(lease_id=account.lease_id, holder=self.holder,
                         owner_id=account.owner_id, day=account.day, settle=settle,
                         lease_s=self._lease_s, ledger=account.ledger.name)
        # Admissions made during a keep only take from what the lease already holds, which the
        # keep never shrinks; a grow or shrink sizes the lease for what is in flight now.
        account.resizing = need is not None
        task = asyncio.get_running_loop().create_task(self._run(account, sync, size, refused))
        account.syncing = task
        # Shielded: a caller that is cancelled must not cancel the sync that the database
        # may already have committed (its result is applied here all the same).
        return asyncio.shield(task)

    async def _run(self, account: _Account, sync: LeaseSync, size: Callable[[Pool], Amount],
                   refused: list[bool]) -> Pool:
        try:
            pool = await asyncio.to_thread(self._store.sync_budget_lease, sync, size)
        finally:
            account.syncing, account.resizing = None, False
        account.refused = pool if refused and refused[-1] else None
        account.spent_calls -= sync.settle.calls
        account.spent_usd -= sync.settle.usd
        account.held_calls, account.held_usd = pool.held.calls, pool.held.usd
        self._ensure_flusher()
        return pool

    def _ensure_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        """Every flush_s: settle and renew leases in use, give back idle ones; ends when
        nothing is held."""
        while self._accounts:
            await asyncio.sleep(self._flush_s)
            for key, account in list(self._accounts.items()):
                if account.syncing is None and not account.idle:
                    active, account.active = account.active, False
                    with contextlib.suppress(AiopsError):  # the next flush tries again
                        await self._sync(account, None if active else ZERO)
                if account.idle:
                    del self._accounts[key]

    async def aclose(self) -> None:
        """Settle what was spent and give back every lease (calls still in flight keep
        theirs, until they expire). After trying them all, BudgetSettleError for the first
        that failed: what it left unsettled, and why."""
        self._bind_loop()
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        failures: list[AiopsError] = []
        for key, account in list(self._accounts.items()):
            if account.syncing is not None:
                with contextlib.suppress(AiopsError):
                    await asyncio.shield(account.syncing)
            if not account.idle:
                try:
                    await self._sync(account, ZERO)
                except AiopsError as exc:
                    failures.append(self._unsettled(account, exc))
            if account.idle:
                del self._accounts[key]
        if failures:
            raise failures[0]

    def _unsettled(self, account: _Account, exc: AiopsError) -> BudgetSettleError:
        spent = (f"{account.spent_calls} call(s), ${account.spent_usd:.6f}"
                 if account.spent_calls or account.spent_usd else "no spending")
        return BudgetSettleError(
            f"{account.name}: the daily {account.ledger.noun} could not be settled ({spent} not "
            f"counted in today's usage): {exc.message}; what its lease reserves is released by the "
            f"sweep {self._lease_s:g} s after its last renewal")
