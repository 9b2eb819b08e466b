"""Rate limits, budgets and cost (DESIGN §6.4).

- Rate limits (rpm, tpm) per provider and per function use the `limits` library's
  sliding-window-counter strategy (constant space; a refused hit consumes nothing), in memory by
  default and in Redis when `AIOPS_RATE_LIMIT_URL` is set, so several processes share a limit.
  Tokens are charged before the call, as providers do: estimated prompt tokens + `max_tokens`.
  A call without room waits until the window has room for it (waiting is not an error; only
  an explicit `max_wait_s`, `aiops run --max-wait`, bounds it), fails, or gives way so that
  the runner passes it to a fallback (`NoRoom`), as the function's `on_limit` says. `Waits`
  tells what waits, for a progress bar.
- Concurrency limits (max_concurrency) are semaphores of this process by default; with a Redis
  `AIOPS_RATE_LIMIT_URL` they are slots shared by every process using that Redis: leases in a
  sorted set per scope, taken and released atomically, and expiring on their own if a holder
  dies mid-call.
- Budgets (daily calls, daily USD per function) live in `aiops.budgets`; what a call may cost
  before it runs (`estimate_cost`) is here.
- Cost = tokens × the price pinned in providers.yaml; cached input and reasoning tokens are
  priced as the provider reports them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Container, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

from aiops.errors import AiopsError, ConfigError, LimitExceeded, RuntimeFailure
from aiops.extras import require_extra
from aiops.spec import Price

if TYPE_CHECKING:  # the library is imported when a limit is first checked: a run of a
    # function without rate limits does without it (some 30 ms of a run's start-up)
    from limits.aio.storage import SlidingWindowCounterSupport
    from limits.aio.strategies import SlidingWindowCounterRateLimiter

RATE_LIMIT_URL_ENV = "AIOPS_RATE_LIMIT_URL"
# A function without max_tokens: what tpm is charged, and, with a USD budget, what is sent
# (so that a call's estimate bounds its cost; docs/providers.md, "Budgets").
DEFAULT_MAX_TOKENS = 1024


# --- cost ---------------------------------------------------------------------------------


def cost_usd(price: Price | None, input_tokens: int, output_tokens: int,
             cached_input_tokens: int = 0, reasoning_tokens: int = 0) -> float:
    """USD for one call. Cached tokens are part of input; reasoning tokens part of output.
    A negative count is refused (ValueError): a call is never a credit."""
    if min(input_tokens, output_tokens, cached_input_tokens, reasoning_tokens) < 0:
        raise ValueError(f"token counts cannot be negative (input {input_tokens}, output "
                         f"{output_tokens}, cached {cached_input_tokens}, reasoning "
                         f"{reasoning_tokens})")
    if price is None:
        return 0.0
    cached = min(cached_input_tokens, input_tokens)
    cached_price = price.cached_input_per_mtok if price.cached_input_per_mtok is not None \
        else price.input_per_mtok
    reasoning = min(reasoning_tokens, output_tokens)
    reasoning_price = price.reasoning_per_mtok if price.reasoning_per_mtok is not None \
        else price.output_per_mtok
    total = ((input_tokens - cached) * price.input_per_mtok + cached * cached_price
             + (output_tokens - reasoning) * price.output_per_mtok + reasoning * reasoning_price)
    return total / 1_000_000


def estimate_prompt_tokens(messages: Any, extra_chars: int = 0) -> int:
    """A provider-independent estimate: ~4 characters a token, plus per-message overhead;
    `extra_chars` for what else the request sends as input (an output schema)."""
    chars = sum(len(m.get("content", "")) for m in messages) + extra_chars
    return chars // 4 + 4 * len(messages) + 3


def estimate_cost(price: Price | None, prompt_tokens: int, max_tokens: int) -> float:
    """What a call may cost: its prompt tokens and `max_tokens`, each at the dearer of the
    prices that can apply to it (cached input, reasoning output)."""
    if price is None:
        return 0.0
    input_price = max(price.input_per_mtok, price.cached_input_per_mtok or 0.0)
    output_price = max(price.output_per_mtok, price.reasoning_per_mtok or 0.0)
    return (prompt_tokens * input_price + max_tokens * output_price) / 1_000_000


# --- rate limits ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RateSpec:
    """The limits of one scope (a provider or a function)."""

    key: str  # "provider:groq" | "function:summarize"
    rpm: int | None = None
    tpm: int | None = None
    max_concurrency: int | None = None

    @property
    def empty(self) -> bool:
        return self.rpm is None and self.tpm is None and self.max_concurrency is None


def room_in(window: tuple[int, float, int, float], amount: int, cost: int,
            expiry: float) -> float:
    """Seconds until `cost` more fits a sliding-window-counter limit of `amount` per
    `expiry` seconds, from the storage's window (previous count, previous window's TTL,
    current count, current window's TTL); 0 when it fits now.

    The library admits a hit while floor(previous × previous TTL / expiry) + current + cost
    <= amount; the previous window's weight falls linearly to 0 as the current one runs out,
    then the current count becomes the previous one. (The library's own reset time is when
    one unit frees: for a tpm limit, a hundredth of a second, however many tokens the call
    needs; waiting for that polls the storage a hundred times a second.)"""
    previous, previous_ttl, current, current_ttl = window
    allowed = amount - cost  # what the weighted count may be for the hit to pass
    if current <= allowed:
        if not previous or math.floor(previous * previous_ttl / expiry) + current <= allowed:
            return 0.0
        # previous × (previous_ttl − t) / expiry < allowed − current + 1
        return max(0.01, previous_ttl - (allowed - current + 1) * expiry / previous + 0.001)
    # Only after the current window ends: then its count decays over a whole window.
    ends_in = current_ttl - expiry if current_ttl > expiry else current_ttl
    return max(0.01, ends_in + max(0.0, expiry - (allowed + 1) * expiry / current) + 0.001)


class NoRoom(LimitExceeded):
    """A rate limit without room for a call: which one, and in how long it may have some
    (`math.inf` when the call is larger than the limit itself)."""

    def __init__(self, *, scope: str, limit: str, amount: int, retry_in: float,
                 tokens: int) -> None:
        self.scope, self.limit, self.amount, self.retry_in = scope, limit, amount, retry_in
        if self.never:
            message = (f"{scope}: a call of ~{tokens} tokens can never fit its tpm limit of "
                       f"{amount}; raise `tpm` or lower `max_tokens`")
        else:
            message = f"{scope} {limit} {amount} has no room for ~{retry_in:.1f}s"
        super().__init__(message)

    @property
    def never(self) -> bool:
        return self.retry_in == math.inf

    def what(self, label: str = "") -> str:
        """What has no room: `groq/llama-3.1-8b-instant tpm 6000` for a provider's limit
        (`label` naming the provider and model), `function:summarize rpm 120` for the
        function's own."""
        who = label if label and self.scope.startswith("provider:") else self.scope
        return f"{who} {self.limit} {self.amount}"


@dataclass(frozen=True)
class Waiting:
    what: str  # `groq/llama-3.1-8b-instant tpm 6000`
    calls: int  # how many calls wait for it
    next_in: float  # seconds until the soonest of them tries again


class Waits:
    """The calls of this process that wait for room in a rate limit now, by what they wait
    for, and how many calls went elsewhere for a lack of room: what a progress bar shows."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[int, tuple[str, float]] = {}
        self._ids = itertools.count()
        self.passed_over: dict[str, int] = {}

    @contextlib.contextmanager
    def waiting(self, what: str, until: float) -> Iterator[None]:
        key = next(self._ids)
        self._entries[key] = (what, until)
        try:
            yield
        finally:
            del self._entries[key]

    def passed(self, what: str) -> None:
        """A call went to a fallback because `what` had no room."""
        self.passed_over[what] = self.passed_over.get(what, 0) + 1

    def now(self) -> list[Waiting]:
        """What is waited for, the most waited for first."""
        calls: dict[str, int] = {}
        soonest: dict[str, float] = {}
        for what, until in self._entries.values():
            calls[what] = calls.get(what, 0) + 1
            soonest[what] = min(soonest.get(what, math.inf), until)
        now = self._clock()
        return [Waiting(what, n, max(0.0, soonest[what] - now))
                for what, n in sorted(calls.items(), key=lambda kv: (-kv[1], kv[0]))]

    def longest(self) -> float:
        """Seconds until the last of the waiting calls tries again (0 when none waits): no
        batch ends before that."""
        if not self._entries:
            return 0.0
        return max(0.0, max(until for _, until in self._entries.values()) - self._clock())

    def describe(self) -> str:
        """One line: `waiting for groq/llama-3.1-8b-instant tpm 6000: 12 calls, next in 4s;
        212 went to a fallback`, or "" when nothing waits and nothing went elsewhere."""
        parts = []
        waiting = self.now()
        if waiting:
            first = waiting[0]
            calls = f"{first.calls} call{'s' if first.calls != 1 else ''}"
            parts.append(f"waiting for {first.what}: {calls}, next in {first.next_in:.0f}s"
                         + (f" (and {len(waiting) - 1} other limit(s))"
                            if len(waiting) > 1 else ""))
        passed = sum(self.passed_over.values())
        if passed:
            parts.append(f"{passed} went to a fallback")
        return "; ".join(parts)


def storage_url(env: Mapping[str, str]) -> str:
    url = env.get(RATE_LIMIT_URL_ENV) or "memory://"
    return url if url.startswith("async+") else "async+" + url


# Take a slot of KEYS[1] (ARGV: limit, lease ms, lease id) if fewer than `limit` unexpired
# leases are held. Redis's clock, so that machines with skewed clocks agree on expiry.
_TAKE_SLOT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[3])
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then  -- the key outlives every lease
    redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  end
  return 1
end
return 0
"""


class RedisSlots:
    """Concurrency slots shared by every process that uses one Redis: per scope, a sorted set
    of lease ids scored by their expiry. A lease outlives the longest call it can cover
    (`lease_s`); one whose holder died is dropped when it expires."""

    def __init__(self, url: str, *, poll_s: float = 0.005, max_poll_s: float = 0.1) -> None:
        require_extra("redis", "redis", f"{RATE_LIMIT_URL_ENV}={shown_url(url)}")
        import redis.asyncio

        self._client = redis.asyncio.from_url(url)
        self._take = self._client.register_script(_TAKE_SLOT)
        self._poll_s, self._max_poll_s = poll_s, max_poll_s

    async def acquire(self, key: str, limit: int, lease_s: float, deadline: float) -> str:
        """A lease id once a slot is free; LimitExceeded if none frees up by `deadline`."""
        lease = uuid.uuid4().hex
        pause = self._poll_s
        while not await self._take(keys=[f"aiops:slots:{key}"],
                                   args=[limit, int(lease_s * 1000), lease]):
            if time.monotonic() + pause > deadline:
                raise LimitExceeded(f"concurrency limit of {key} ({limit}) stayed full for "
                                    "the bound on waiting (--max-wait); lower the call rate "
                                    "or raise max_concurrency")
            await asyncio.sleep(pause)
            pause = min(pause * 2, self._max_poll_s)
        return lease

    async def release(self, key: str, lease: str) -> None:
        await self._client.zrem(f"aiops:slots:{key}", lease)

    async def aclose(self) -> None:
        await self._client.aclose()


def shown_url(url: str) -> str:
    """A storage URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _redis_url(url: str) -> str | None:
    """The redis-py URL behind a `limits` storage URL, if it names a single Redis server."""
    scheme, sep, rest = url.removeprefix("async+").partition("://")
    if not sep:
        return None
    return {"redis": f"redis://{rest}", "rediss": f"rediss://{rest}",
            "redis+unix": f"unix://{rest}"}.get(scheme)


class RateLimiter:
    """Sliding-window-counter rpm/tpm limits and concurrency slots, by scope key."""

    def __init__(self, url: str = "async+memory://", *, max_wait_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 window_s: int = 60) -> None:
        self.url = url
        # None: wait for room as long as it takes (a window always frees within two of its
        # lengths); a number bounds every wait, for a rate limit or a concurrency slot.
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._sleep = sleep
        self.waits = Waits(clock)
        # What `rpm` and `tpm` count over: a minute. Tests shorten it (a limit of N per second).
        self.window_s = window_s
        self._strategy: SlidingWindowCounterRateLimiter | None = None
        self._items: dict[tuple[str, int], Any] = {}
        self._semaphores: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._redis_url = _redis_url(url)
        self._slots: RedisSlots | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, max_wait_s: float | None = None
                 ) -> RateLimiter:
        return cls(storage_url(env), max_wait_s=max_wait_s)

    def _limiter(self) -> SlidingWindowCounterRateLimiter:
        if self._strategy is None:
            from limits.aio.strategies import SlidingWindowCounterRateLimiter
            from limits.storage import storage_from_string

            if "redis" in self.url.split("://", 1)[0]:
                require_extra("redis", "redis", f"{RATE_LIMIT_URL_ENV}="
                              f"{shown_url(self.url.removeprefix('async+'))}")
            # redis-py's asyncio client (the `redis` extra), not the coredis default.
            options: dict[str, Any] = {"implementation": "redispy", "key_prefix": "aiops"} \
                if "redis" in self.url.split("://", 1)[0] else {}
            try:
                storage = storage_from_string(self.url, **options)
            except Exception as exc:  # the limits library raises several kinds here
                raise ConfigError(f"{RATE_LIMIT_URL_ENV} is not a usable rate-limit storage "
                                  f"URL: {type(exc).__name__}: {exc}") from None
            self._strategy = SlidingWindowCounterRateLimiter(storage)
        return self._strategy

    def _item(self, amount: int) -> Any:
        item = self._items.get(("m", amount))
        if item is None:
            from limits import RateLimitItemPerMinute, RateLimitItemPerSecond

            item = self._items[("m", amount)] = (
                RateLimitItemPerMinute(amount) if self.window_s == 60
                else RateLimitItemPerSecond(amount, self.window_s))
        return item

    async def try_rate(self, scopes: tuple[RateSpec, ...], tokens: int) -> NoRoom | None:
        """Charge one request and `tokens` to every limit of `scopes`, or to none: None when
        charged, else the first limit without room (`NoRoom.never` when it never can have)."""
        limiter = self._limiter()
        # The strategy checked that its storage supports sliding windows.
        storage = cast("SlidingWindowCounterSupport", limiter.storage)
        checks = []
        for scope in scopes:
            if scope.rpm is not None:
                checks.append((scope, "rpm", scope.rpm, 1))
            if scope.tpm is not None:
                if tokens > scope.tpm:
                    return NoRoom(scope=scope.key, limit="tpm", amount=scope.tpm,
                                  retry_in=math.inf, tokens=tokens)
                checks.append((scope, "tpm", scope.tpm, tokens))
        for scope, name, amount, cost in checks:
            item = self._item(amount)
            with self._storage_errors():
                window = await storage.get_sliding_window(item.key_for(f"{scope.key}:{name}"),
                                                          item.get_expiry())
            retry_in = room_in(window, amount, cost, item.get_expiry())
            if retry_in > 0:
                return NoRoom(scope=scope.key, limit=name, amount=amount, retry_in=retry_in,
                              tokens=tokens)
        taken: list[tuple[Any, str, int]] = []
        for scope, name, amount, cost in checks:
            item, key = self._item(amount), f"{scope.key}:{name}"
            with self._storage_errors():
                if not await limiter.hit(item, key, cost=cost):  # lost a race: try again soon
                    # All or none: give back what this try took (a negative hit decrements
                    # the current window), or a refused call would keep the rpm it hit first.
                    for t_item, t_key, t_cost in taken:
                        await limiter.hit(t_item, t_key, cost=-t_cost)
                    return NoRoom(scope=scope.key, limit=name, amount=amount, retry_in=0.05,
                                  tokens=tokens)
            taken.append((item, key, cost))
        return None

    async def acquire_rate(self, scopes: tuple[RateSpec, ...], tokens: int, *, wait: bool,
                           label: str = "", give_way: Container[str] = ()) -> float:
        """Charge one request and `tokens`, waiting for room as long as it takes (or up to
        `max_wait_s` when set); the seconds waited. Without room: LimitExceeded when not
        `wait`; NoRoom at once when the limit is of a scope in `give_way` (the caller has
        somewhere else to go) or can never have room. `label` names what waits (the
        provider/model) in `waits`."""
        if not any(s.rpm is not None or s.tpm is not None for s in scopes):
            return 0.0
        start = self._clock()
        while True:
            no_room = await self.try_rate(scopes, tokens)
            if no_room is None:
                return self._clock() - start
            if no_room.never or no_room.scope in give_way:
                raise no_room
            if not wait:
                raise LimitExceeded(f"rate limit reached: {no_room.what(label)} has no room "
                                    f"for ~{no_room.retry_in:.1f}s (or set `on_limit: wait`)")
            await self.pause(no_room, label=label, waited=self._clock() - start)

    async def pause(self, no_room: NoRoom, *, label: str = "", waited: float = 0.0) -> float:
        """Sleep until the limit of `no_room` may have room, shown in `waits` meanwhile; the
        seconds slept. LimitExceeded instead when that would take the wait (`waited` so far)
        past `max_wait_s`."""
        what = no_room.what(label)
        if self.max_wait_s is not None and waited + no_room.retry_in > self.max_wait_s:
            raise LimitExceeded(f"rate limit reached: {what} had no room for {waited:.1f}s "
                                f"(next in ~{no_room.retry_in:.1f}s), and the wait is bounded "
                                f"to {self.max_wait_s:g}s (--max-wait)")
        start = self._clock()
        with self.waits.waiting(what, start + no_room.retry_in):
            await self._sleep(no_room.retry_in)
        return self._clock() - start

    @contextlib.contextmanager
    def _storage_errors(self) -> Iterator[None]:
        """The one place where the storage's own errors (Redis unreachable, ...) become ours."""
        try:
            yield
        except AiopsError:
            raise
        except Exception as exc:
            raise RuntimeFailure(
                f"the rate-limit storage {shown_url(self.url.removeprefix('async+'))} "
                f"({RATE_LIMIT_URL_ENV}) failed, so limits cannot be checked: "
                f"{type(exc).__name__}: {exc}") from None

    async def aclose(self) -> None:
        """Close the storage's connections (Redis); memory storage needs nothing."""
        storage = self._strategy.storage if self._strategy is not None else None
        self._strategy = None
        client = getattr(getattr(storage, "bridge", None), "storage", None)
        close = getattr(client, "aclose", None) or getattr(client, "close", None)
        if close is not None:
            result = close()
            if asyncio.iscoroutine(result):
                await result
        if self._slots is not None:
            slots, self._slots = self._slots, None
            await slots.aclose()

    @contextlib.asynccontextmanager
    async def concurrency(self, scopes: tuple[RateSpec, ...], *,
                          lease_s: float = 600.0) -> AsyncIterator[None]:
        """Hold one slot of each scope's concurrency limit for the duration of a call: of this
        process, or of every process sharing the Redis of `AIOPS_RATE_LIMIT_URL`. `lease_s`
        bounds how long a shared slot outlives a holder that died."""
        limited = [s for s in scopes if s.max_concurrency is not None]
        if not limited:
            yield
            return
        if self._redis_url is not None:
            async with self._shared(limited, lease_s):
                yield
            return
        held: list[asyncio.Semaphore] = []
        try:
            for scope in limited:
                assert scope.max_concurrency is not None
                # Keyed by the limit too: a limit changed in place takes effect at once.
                slot = (scope.key, scope.max_concurrency)
                sem = self._semaphores.get(slot)
                if sem is None:
                    sem = self._semaphores[slot] = asyncio.Semaphore(scope.max_concurrency)
                await sem.acquire()
                held.append(sem)
            yield
        finally:
            for sem in held:
                sem.release()

    @contextlib.asynccontextmanager
    async def _shared(self, scopes: list[RateSpec], lease_s: float) -> AsyncIterator[None]:
        if self._slots is None:
            assert self._redis_url is not None
            with self._storage_errors():
                self._slots = RedisSlots(self._redis_url)
        slots = self._slots
        deadline = time.monotonic() + (math.inf if self.max_wait_s is None else self.max_wait_s)
        held: list[tuple[str, str]] = []
        try:
            for scope in scopes:
                assert scope.max_concurrency is not None
                with self._storage_errors():
                    lease = await slots.acquire(scope.key, scope.max_concurrency, lease_s,
                                                deadline)
                held.append((scope.key, lease))
            yield
        finally:
            if held:  # shielded: a cancelled call still frees its slots; a failed release
                # leaves a lease that expires on its own
                await asyncio.shield(asyncio.gather(
                    *(slots.release(key, lease) for key, lease in held), return_exceptions=True))
