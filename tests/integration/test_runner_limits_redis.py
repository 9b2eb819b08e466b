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
