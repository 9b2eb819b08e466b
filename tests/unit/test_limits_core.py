"""Cost, estimates and the rate limiter (in memory)."""

from __future__ import annotations

import asyncio

import pytest

from aiops.errors import LimitExceeded
from aiops.limits import (
    RateLimiter,
    RateSpec,
    cost_usd,
    estimate_cost,
    estimate_prompt_tokens,
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


def test_waiting_gives_up_after_max_wait() -> None:
    async def go() -> None:
        limiter = RateLimiter(max_wait_s=0.05)
        scope = (RateSpec(key="function:w", rpm=1),)
        await limiter.acquire_rate(scope, 1, wait=True)
        with pytest.raises(LimitExceeded, match="after waiting"):
            await limiter.acquire_rate(scope, 1, wait=True)

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
