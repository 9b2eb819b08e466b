"""Rate limits shared through Redis (AIOPS_RATE_LIMIT_URL): two limiters, as two processes
would be, share one sliding window."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import pytest

from aiops.errors import LimitExceeded
from aiops.limits import RateLimiter, RateSpec, storage_url


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


REDIS_URL = os.environ.get("AIOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


# CI sets AIOPS_TEST_REDIS_URL and starts Redis: there the test runs or fails, never skips.
@pytest.mark.skipif(not os.environ.get("AIOPS_TEST_REDIS_URL") and not _redis_up(),
                    reason="no Redis on 127.0.0.1:6379")
def test_two_limiters_share_a_redis_window() -> None:
    url = storage_url({"AIOPS_RATE_LIMIT_URL": REDIS_URL})
    scope = (RateSpec(key=f"function:redis-{uuid.uuid4().hex}", rpm=3, tpm=1000),)

    async def go() -> None:
        first, second = RateLimiter(url), RateLimiter(url)
        try:
            await first.acquire_rate(scope, 100, wait=False)
            await second.acquire_rate(scope, 100, wait=False)
            await first.acquire_rate(scope, 100, wait=False)
            with pytest.raises(LimitExceeded):
                await second.acquire_rate(scope, 100, wait=False)
        finally:
            await first.aclose()
            await second.aclose()

    asyncio.run(go())


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_refused_call_consumes_nothing_under_concurrency(backend: str) -> None:
    """Fifty concurrent calls against a provider rpm and a function tpm: the calls that the
    tpm refuses must not keep the rpm they hit first (7 calls ran, 10 rpm were spent)."""
    if backend == "redis" and not os.environ.get("AIOPS_TEST_REDIS_URL") and not _redis_up():
        pytest.skip("no Redis on 127.0.0.1:6379")
    url = "async+memory://" if backend == "memory" else storage_url(
        {"AIOPS_RATE_LIMIT_URL": REDIS_URL})
    tag = uuid.uuid4().hex
    scopes = (RateSpec(key=f"provider:p-{tag}", rpm=10), RateSpec(key=f"function:f-{tag}",
                                                                  tpm=700))

    async def go() -> tuple[int, int]:
        limiter = RateLimiter(url)

        async def one() -> int:
            try:
                await limiter.acquire_rate(scopes, 100, wait=False)
                return 1
            except LimitExceeded:
                return 0

        try:
            ok = sum(await asyncio.gather(*(one() for _ in range(50))))
            stats = await limiter._limiter().get_window_stats(limiter._item(10),
                                                              f"provider:p-{tag}:rpm")
            return ok, stats.remaining
        finally:
            await limiter.aclose()

    ok, rpm_left = asyncio.run(go())
    assert ok == 7 and rpm_left == 3
