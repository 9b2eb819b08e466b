"""An API caller's quotas (DESIGN §6.4, §9): the admission that the API's routes which run a
function put around the run.

    rpm            runs a minute, in the `limits` library's sliding window (the runner's
                   RateLimiter: this process's memory, or the Redis of AIOPS_RATE_LIMIT_URL
                   that every worker and replica shares), charged once a run, before it
    daily_calls,   reserved before each provider call and settled after it, in the database,
    daily_usd      with the function's own budget (`aiops.budgets`, ledger TOKENS): exact
                   across workers and replicas, no transaction open across a call, and what
                   a killed worker held released once its lease expires

A refusal is a QuotaExceeded naming the quota (`limit`) and when to try again
(`retry_after_s`: the rpm window's room, or the next 00:00 UTC for a day that is spent), which
the API answers with 429 `quota-exceeded` and a Retry-After header.
"""

from __future__ import annotations

import math

from aiops.access import Caller
from aiops.budgets import TOKENS, Claim, Limit
from aiops.errors import QuotaExceeded
from aiops.limits import RateSpec
from aiops.runner import Runner


def quota_claim(caller: Caller) -> Claim | None:
    """The claim a run makes on the caller's daily quotas (None: it has none)."""
    if caller.daily_calls is None and caller.daily_usd is None:
        return None
    return Claim(owner_id=caller.token_id, name=f"token {caller.token_name}",
                 limit=Limit(calls=caller.daily_calls, usd=caller.daily_usd), ledger=TOKENS)


async def admit(runner: Runner, caller: Caller | None) -> Claim | None:
    """Charge one run to `caller`'s rpm quota, or raise QuotaExceeded when its window has no
    room; the claim to pass to `Runner.run(quota=...)` for its daily quotas. None (the
    operator, through the CLI) has no quotas."""
    if caller is None:
        return None
    if caller.rpm is not None:
        scope = RateSpec(key=f"token:{caller.token_id}", rpm=caller.rpm)
        no_room = await runner.limiter.try_rate((scope,), 0)
        if no_room is not None:
            wait = max(1, math.ceil(no_room.retry_in))
            raise QuotaExceeded(f"token {caller.token_name}: its rpm quota ({caller.rpm} runs "
                                f"a minute) has no room; try again in {wait} s", limit="rpm",
                                retry_after_s=no_room.retry_in)
    return quota_claim(caller)
