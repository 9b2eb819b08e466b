"""Rate limits, budgets and cost (DESIGN §6.4).

- Rate limits (rpm, tpm) per provider and per function use the `limits` library's
  sliding-window-counter strategy (constant space; a refused hit consumes nothing), in memory by
  default and in Redis when `AIOPS_RATE_LIMIT_URL` is set, so several processes share a limit.
  Tokens are charged before the call, as providers do: estimated prompt tokens + `max_tokens`.
  A limited call waits (up to `max_wait_s`) or fails, as the function's `on_limit` says.
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
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from limits import RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from aiops.errors import AiopsError, ConfigError, LimitExceeded, RuntimeFailure
from aiops.spec import Price

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
                raise LimitExceeded(f"concurrency limit of {key} ({limit}) stayed full; "
                                    "lower the call rate or raise max_concurrency")
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

    def __init__(self, url: str = "async+memory://", *, max_wait_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 window_s: int = 60) -> None:
        self.url = url
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._sleep = sleep
        # What `rpm` and `tpm` count over: a minute. Tests shorten it (a limit of N per second).
        self.window_s = window_s
        self._strategy: SlidingWindowCounterRateLimiter | None = None
        self._items: dict[tuple[str, int], Any] = {}
        self._semaphores: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._redis_url = _redis_url(url)
        self._slots: RedisSlots | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RateLimiter:
        return cls(storage_url(env))

    def _limiter(self) -> SlidingWindowCounterRateLimiter:
        if self._strategy is None:
            # redis-py's asyncio client (a dependency already), not the coredis default.
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
            item = self._items[("m", amount)] = (
                RateLimitItemPerMinute(amount) if self.window_s == 60
                else RateLimitItemPerSecond(amount, self.window_s))
        return item

    async def _try(self, scopes: tuple[RateSpec, ...], tokens: int) -> float | None:
        """Hit every limit or none; None when allowed, else seconds until a retry may pass."""
        limiter = self._limiter()
        checks = []
        for scope in scopes:
            if scope.rpm is not None:
                checks.append((self._item(scope.rpm), scope.key + ":rpm", 1))
            if scope.tpm is not None:
                if tokens > scope.tpm:
                    raise LimitExceeded(f"{scope.key}: a call of ~{tokens} tokens can never fit "
                                        f"its tpm limit of {scope.tpm}; raise `tpm` or lower "
                                        "`max_tokens`")
                checks.append((self._item(scope.tpm), scope.key + ":tpm", tokens))
        for item, key, cost in checks:
            if not await limiter.test(item, key, cost=cost):
                stats = await limiter.get_window_stats(item, key)
                return max(0.01, stats.reset_time - time.time())
        taken: list[tuple[Any, str, int]] = []
        for item, key, cost in checks:
            if not await limiter.hit(item, key, cost=cost):  # lost a race: try again soon
                # All or none: give back what this try took (a negative hit decrements the
                # current window), or a refused call would keep the rpm it hit first.
                for t_item, t_key, t_cost in taken:
                    await limiter.hit(t_item, t_key, cost=-t_cost)
                return 0.05
            taken.append((item, key, cost))
        return None

    async def acquire_rate(self, scopes: tuple[RateSpec, ...], tokens: int, *,
                           wait: bool) -> float:
        """Charge one request and `tokens`; returns the seconds waited."""
        if not any(s.rpm is not None or s.tpm is not None for s in scopes):
            return 0.0
        start = self._clock()
        while True:
            with self._storage_errors():
                retry_in = await self._try(scopes, tokens)
            if retry_in is None:
                return self._clock() - start
            waited = self._clock() - start
            names = ", ".join(s.key for s in scopes)
            if not wait:
                raise LimitExceeded(f"rate limit of {names} reached; retry in {retry_in:.1f}s "
                                    "(or set `on_limit: wait`)")
            if waited + retry_in > self.max_wait_s:
                raise LimitExceeded(f"rate limit of {names} still reached after waiting "
                                    f"{waited:.1f}s; lower the call rate or raise the limit")
            await self._sleep(retry_in)

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
        deadline = time.monotonic() + self.max_wait_s
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
