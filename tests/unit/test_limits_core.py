"""Cost, estimates and the rate limiter (in memory)."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import pytest

from aiops.errors import LimitExceeded
from aiops.limits import (
    NoRoom,
    RateLimiter,
    RateSpec,
    cost_usd,
    estimate_cost,
    estimate_prompt_tokens,
    room_in,
    storage_url,
)
from aiops.spec import Price


def test_cost_prices_cached_and_reasoning_tokens() -> None:
    price = Price(input_per_mtok=0.15, cached_input_per_mtok=0.075, output_per_mtok=0.60)
    assert cost_usd(price, 1_000_000, 0) == pytest.approx(0.15)
    assert cost_usd(price, 1_000_000, 1_000_000, cached_input_tokens=500_000) == pytest.approx(
        0.075 + 0.0375 + 0.60)
    reasoning = Price(input_per_mtok=1, output_per_mtok=4, reasoning_per_mtok=2)
    assert cost_usd(reasoning, 0, 100, reasoning_tokens=40) == pytest.approx((60 * 4 + 40 * 2) / 1e6)
    assert cost_usd(None, 10, 10) == 0.0


def test_estimate_prompt_tokens_grows_with_text() -> None:
    small = estimate_prompt_tokens([{"role": "user", "content": "hi"}])
    large = estimate_prompt_tokens([{"role": "user", "content": "hi " * 400}])
    assert 0 < small < large and large >= 300
    # What else the request sends as input (an output schema) is counted too.
    assert estimate_prompt_tokens([{"role": "user", "content": "hi"}], 400) == small + 100


def test_negative_token_counts_cost_nothing_they_are_refused() -> None:
    price = Price(input_per_mtok=1, output_per_mtok=1)
    for counts in ((-1, 0), (0, -1), (5, 5, -1), (5, 5, 0, -1)):
        with pytest.raises(ValueError, match="cannot be negative"):
            cost_usd(price, *counts)


def test_the_estimate_is_what_a_call_can_cost_at_most() -> None:
    """Prompt tokens and max_tokens, each at the dearer price that may apply to them."""
    plain = Price(input_per_mtok=1, output_per_mtok=4)
    assert estimate_cost(plain, 100, 50) == pytest.approx((100 * 1 + 50 * 4) / 1e6)
    assert estimate_cost(plain, 100, 50) >= cost_usd(plain, 100, 50)
    dear = Price(input_per_mtok=1, output_per_mtok=4, cached_input_per_mtok=3,
                 reasoning_per_mtok=10)
    assert estimate_cost(dear, 100, 50) == pytest.approx((100 * 3 + 50 * 10) / 1e6)
    assert estimate_cost(dear, 100, 50) >= cost_usd(dear, 100, 50, 100, 50)
    assert estimate_cost(None, 100, 50) == 0


def test_storage_url_from_environment() -> None:
    assert storage_url({}) == "async+memory://"
    assert storage_url({"AIOPS_RATE_LIMIT_URL": "redis://h:6379"}) == "async+redis://h:6379"


def test_rpm_refuses_when_failing_and_charges_nothing_when_refused() -> None:
    async def go() -> None:
        limiter = RateLimiter()
        scope = (RateSpec(key="function:t1", rpm=2),)
        await limiter.acquire_rate(scope, 10, wait=False)
        await limiter.acquire_rate(scope, 10, wait=False)
        with pytest.raises(LimitExceeded, match="function:t1"):
            await limiter.acquire_rate(scope, 10, wait=False)

    asyncio.run(go())


def test_tpm_counts_tokens_and_both_scopes_or_neither() -> None:
    async def go() -> None:
        limiter = RateLimiter()
        provider = RateSpec(key="provider:p", tpm=1000)
        function = RateSpec(key="function:f", rpm=100)
        await limiter.acquire_rate((provider, function), 600, wait=False)
        with pytest.raises(LimitExceeded):
            await limiter.acquire_rate((provider, function), 600, wait=False)
        # the refused call charged neither scope: 399 more tokens still fit
        await limiter.acquire_rate((provider, function), 399, wait=False)
        with pytest.raises(LimitExceeded, match="can never fit"):
            await limiter.acquire_rate((provider,), 5000, wait=True)

    asyncio.run(go())


def test_an_explicit_bound_on_waiting_fails_a_call_that_would_wait_longer() -> None:
    async def go() -> None:
        limiter = RateLimiter(max_wait_s=0.05)
        scope = (RateSpec(key="function:w", rpm=1),)
        await limiter.acquire_rate(scope, 1, wait=True)
        with pytest.raises(LimitExceeded, match=r"function:w rpm 1 had no room .* bounded to "
                           r"0.05s \(--max-wait\)"):
            await limiter.acquire_rate(scope, 1, wait=True)

    asyncio.run(go())


def test_a_call_waits_for_room_however_long_it_takes() -> None:
    """Issue 10: waiting for a window is not an error. Each reading of this clock says 61 s
    more went by; the call used to fail "after waiting 60.0s" at its first look."""
    ticks = itertools.count(0, 61)

    async def go() -> float:
        limiter = RateLimiter(window_s=1, clock=lambda: float(next(ticks)))
        scope = (RateSpec(key=f"function:{uuid.uuid4().hex}", rpm=1),)
        await limiter.acquire_rate(scope, 1, wait=True)
        return await limiter.acquire_rate(scope, 1, wait=True)

    assert asyncio.run(go()) >= 61


def test_a_wait_lasts_until_the_call_fits_not_until_one_token_frees() -> None:
    """A tpm window holding 6,000 tokens: a call of 500 fits once the weighted count has
    fallen by 500, not when the first token frees (the library's reset time, which made a
    waiting call poll the storage every 10 ms)."""
    window = 60.0
    # Half-way through the current window, 6,000 tokens in the previous one, none yet here:
    # the weighted count is 3,000, so 500 more fit now.
    assert room_in((6000, 30.0, 0, 90.0), 6000, 500, window) == 0
    # 58 s before the previous window stops weighing, it weighs 5,800: 2.99 s until 5,500.
    assert room_in((6000, 58.0, 0, 118.0), 6000, 500, window) == pytest.approx(2.99, abs=0.01)
    # The current window is full: wait for it to end (20 s), then for 500 of its 6,000
    # tokens to decay (5 s).
    assert room_in((0, 0.0, 6000, 80.0), 6000, 500, window) == pytest.approx(25, abs=0.02)
    # rpm 30 full in the current window: at its end the 30 weigh 29.99, counted as 29.
    assert room_in((0, 0.0, 30, 70.0), 30, 1, window) == pytest.approx(10, abs=0.02)
    assert room_in((0, 0.0, 29, 70.0), 30, 1, window) == 0


def test_a_waiting_call_is_shown_with_what_it_waits_for_until_it_ends() -> None:
    seen: list[Any] = []

    async def go() -> None:
        limiter = RateLimiter(window_s=1)

        async def sleep(seconds: float) -> None:
            seen.extend(limiter.waits.now())
            await limiter._limiter().storage.reset()  # the window went by

        limiter._sleep = sleep
        scope = (RateSpec(key="provider:groq", tpm=1000),)
        await limiter.acquire_rate(scope, 800, wait=True, label="groq/llama")
        await limiter.acquire_rate(scope, 800, wait=True, label="groq/llama")
        assert limiter.waits.now() == []

    asyncio.run(go())
    assert [(w.what, w.calls) for w in seen] == [("groq/llama tpm 1000", 1)]
    assert 0 < seen[0].next_in <= 2


def test_a_limit_of_a_scope_that_may_give_way_raises_no_room_at_once() -> None:
    async def go() -> None:
        limiter = RateLimiter()
        provider = RateSpec(key="provider:p", rpm=1)
        function = RateSpec(key="function:f", rpm=100)
        await limiter.acquire_rate((provider, function), 10, wait=True)
        with pytest.raises(NoRoom) as caught:
            await limiter.acquire_rate((provider, function), 10, wait=True,
                                       give_way={"provider:p"}, label="p/m")
        assert caught.value.what("p/m") == "p/m rpm 1" and 0 < caught.value.retry_in <= 120
        assert not caught.value.never and limiter.waits.now() == []
        # A call larger than a limit can never fit it: NoRoom at once, whatever the mode.
        with pytest.raises(NoRoom, match="can never fit") as never:
            await limiter.acquire_rate((RateSpec(key="provider:q", tpm=100),), 500, wait=True)
        assert never.value.never

    asyncio.run(go())


def test_concurrency_slots() -> None:
    async def go() -> int:
        limiter = RateLimiter()
        scope = (RateSpec(key="function:c", max_concurrency=2),)
        active = peak = 0

        async def call() -> None:
            nonlocal active, peak
            async with limiter.concurrency(scope):
                active += 1
                peak = max(peak, active)
                await asyncio.sleep(0.01)
                active -= 1

        await asyncio.gather(*(call() for _ in range(8)))
        return peak

    assert asyncio.run(go()) == 2


def test_a_concurrency_limit_raised_in_place_takes_effect_at_once() -> None:
    """`aiops apply` may raise max_concurrency on a running version; the old semaphore must
    not keep the old limit for the life of the process."""
    async def go() -> None:
        limiter = RateLimiter()
        async with limiter.concurrency((RateSpec(key="function:c", max_concurrency=1),)):
            wider = (RateSpec(key="function:c", max_concurrency=2),)
            async with asyncio.timeout(1), limiter.concurrency(wider):
                pass

    asyncio.run(go())


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
    ("redis://user:pw@h/0", "redis://user:***@h/0"),
    ("redis://h:6379/0", "redis://h:6379/0"),
    ("memory://", "memory://"),
])
def test_storage_urls_are_shown_without_their_password(url: str, shown: str) -> None:
    from aiops.limits import shown_url

    assert shown_url(url) == shown
