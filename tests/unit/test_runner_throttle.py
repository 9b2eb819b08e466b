"""Rate limits in the runner (issue 10): waiting is not an error, and a call whose provider has
no room goes to a fallback that has some (`on_limit: fallback`, the default) or waits for it
(`on_limit: wait`). Time is faked: a sleep moves the clock and empties the windows."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aiops.limits import RateLimiter, RateSpec
from aiops.spec import ProvidersFile
from tests.fixtures_providers import run_all
from tests.unit.test_runner_core import Harness, spec, transient


def providers(p1: dict[str, int] | None = None, p2: dict[str, int] | None = None
              ) -> ProvidersFile:
    return ProvidersFile.model_validate({"providers": {
        "p1": {"type": "openai", "api_key_env": "P1_KEY", "limits": p1 or {},
               "models": {"m1": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}},
        "p2": {"type": "groq", "api_key_env": "P2_KEY", "limits": p2 or {},
               "models": {"m2": {"input_per_mtok": 0.5, "output_per_mtok": 1.0}}}}})


class Throttled(Harness):
    """A harness whose limiter sleeps in fake time: each sleep is recorded, moves the clock
    on by its length, and lets the windows go by (empties them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.now = 1000.0
        self.slept: list[float] = []
        self.shown: list[str] = []  # what a progress bar showed while each sleep lasted

        async def sleep(seconds: float) -> None:
            self.slept.append(seconds)
            self.shown.append(limiter.waits.describe())
            self.now += seconds
            await limiter._limiter().storage.reset()

        limiter = RateLimiter(clock=lambda: self.now, sleep=sleep)
        self.runner.limiter = limiter

    def fill(self, key: str, rpm: int) -> None:
        """Use up a provider's rpm, as calls of other processes sharing it would."""
        async def go() -> None:
            for _ in range(rpm):
                await self.runner.limiter.acquire_rate((RateSpec(key=key, rpm=rpm),), 1,
                                                       wait=False)
        asyncio.run(go())

    def run_all(self, values: list[Any]) -> list[Any]:
        async def go() -> list[Any]:
            try:
                return [await self.runner.run("greet", v, actor="tester") for v in values]
            finally:
                await self.runner.aclose()

        return asyncio.run(go())


def test_a_call_goes_to_a_fallback_with_room_instead_of_waiting() -> None:
    """The default (`on_limit: fallback`): p1's rpm is used up, so the second call goes to
    p2 at once; it used to wait for p1's window (and fail after 60 s of waiting)."""
    h = Throttled(spec(), {"p1": ['{"answer": "one"}'], "p2": ['{"answer": "two"}']},
                  providers=providers(p1={"rpm": 1}))
    first, second = h.run_all([{"who": "a"}, {"who": "b"}])
    assert first.ok and first.provider == "p1"
    assert second.ok and second.output == {"answer": "two"} and second.provider == "p2"
    skipped, answered = second.attempts
    assert (skipped.provider, skipped.status, skipped.kind, skipped.error) == (
        "p1", "skipped", "rate_limit", "LimitExceeded")
    assert skipped.message is not None and skipped.message.startswith(
        "p1/m1 rpm 1 had no room for ~")
    assert answered.provider == "p2" and answered.status == "ok"
    assert h.slept == [] and len(h.providers["p1"].requests) == 1
    assert len(h.store.logs) == 2  # one row per execution, the passing over in its attempts
    assert [a["status"] for a in h.store.logs[1].metadata["attempts"]] == ["skipped", "ok"]


def test_with_on_limit_wait_the_call_waits_for_its_provider() -> None:
    h = Throttled(spec(), {"p1": ['{"answer": "one"}', '{"answer": "again"}'], "p2": []},
                  providers=providers(p1={"rpm": 1}), limits={"on_limit": "wait"})
    first, second = h.run_all([{"who": "a"}, {"who": "b"}])
    assert first.ok and second.ok and second.provider == "p1"
    assert [a.status for a in second.attempts] == ["ok"]
    assert len(h.slept) == 1 and 0 < h.slept[0] <= 120
    assert second.attempts[0].limit_wait_ms == pytest.approx(h.slept[0] * 1000, abs=1)
    assert h.providers["p2"].requests == []
    assert h.shown == [f"waiting for p1/m1 rpm 1: 1 call, next in {h.slept[0]:.0f}s"]


def test_when_no_provider_has_room_the_call_waits_then_takes_the_first_with_room() -> None:
    h = Throttled(spec(), {"p1": ['{"answer": "one"}'], "p2": []},
                  providers=providers(p1={"rpm": 1}, p2={"rpm": 1}))
    h.fill("provider:p1", 1)
    h.fill("provider:p2", 1)
    (ex,) = h.run_all([{"who": "a"}])
    assert ex.ok and ex.provider == "p1"
    assert [(a.provider, a.status) for a in ex.attempts] == [
        ("p1", "skipped"), ("p2", "skipped"), ("p1", "ok")]
    assert len(h.slept) == 1  # one wait, for whichever had room first
    assert h.shown[0].startswith("waiting for p") and h.shown[0].endswith(
        "rpm 1: 1 call, next in " f"{h.slept[0]:.0f}s; 2 went to a fallback")
    assert ex.attempts[-1].limit_wait_ms == pytest.approx(h.slept[0] * 1000, abs=1)


def test_the_functions_own_limit_is_waited_for_not_passed_over() -> None:
    """Every provider shares the function's own rpm: going to a fallback would not help."""
    h = Throttled(spec(), {"p1": ['{"answer": "one"}', '{"answer": "two"}'], "p2": []},
                  providers=providers(), limits={"rpm": 1})
    first, second = h.run_all([{"who": "a"}, {"who": "b"}])
    assert first.ok and second.ok
    assert [(a.provider, a.status) for a in second.attempts] == [("p1", "ok")]
    assert len(h.slept) == 1


@pytest.mark.parametrize("on_limit", ["fallback", "wait", "fail"])
def test_a_call_larger_than_the_primarys_tpm_goes_to_the_fallback(on_limit: str) -> None:
    """No wait can make a call fit a tpm smaller than itself: the fallback takes it."""
    h = Throttled(spec(), {"p1": [], "p2": ['{"answer": "big"}']},
                  providers=providers(p1={"tpm": 50}), limits={"on_limit": on_limit})
    (ex,) = h.run_all([{"who": "a"}])
    assert ex.ok and ex.provider == "p2" and h.slept == []
    assert ex.attempts[0].status == "skipped" and "can never fit" in str(ex.attempts[0].message)


def test_waiting_for_room_does_not_restart_a_providers_retries() -> None:
    """p1 fails once (its rpm is then used up), p2 has no room either: after the wait p1 gets
    the one retry left of `max_attempts: 2`, not two more, before p2 answers."""
    h = Throttled(spec(retry={"max_attempts": 2, "backoff_s": 0.01, "max_backoff_s": 0.01}),
                  {"p1": [transient(), transient(), '{"answer": "p1"}'],
                   "p2": ['{"answer": "p2"}']},
                  providers=providers(p1={"rpm": 1}, p2={"rpm": 1}))
    h.fill("provider:p2", 1)
    (ex,) = h.run_all([{"who": "a"}])
    assert ex.ok and ex.provider == "p2"
    assert len(h.providers["p1"].requests) == 2
    assert [(a.provider, a.status) for a in ex.attempts] == [
        ("p1", "error"), ("p1", "skipped"), ("p2", "skipped"), ("p1", "error"), ("p2", "ok")]


def test_a_batch_spills_over_to_the_fallback_without_waiting() -> None:
    """Twenty executions, p1 allows five a minute: five go to p1, fifteen to p2 at once,
    each with exactly one log row."""
    h = Throttled(spec(), {"p1": [], "p2": []}, providers=providers(p1={"rpm": 5}))

    async def go() -> list[Any]:
        try:
            return await run_all(h.runner, "greet", [{"who": str(i)} for i in range(20)], 8)
        finally:
            await h.runner.aclose()

    results = asyncio.run(go())
    assert all(r.ok for r in results) and h.slept == []
    assert sum(r.provider == "p1" for r in results) == 5
    assert len(h.store.logs) == 20 and {row.id for row in h.store.logs} == {
        r.log_id for r in results}
