"""The runner's policy over a scripted provider and an in-memory store: validation, rendering,
retries with backoff and Retry-After, repairs, fallbacks, filters, budgets, one log row."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Callable
from typing import Any

import pytest

from aiops.errors import (
    BudgetExceeded,
    ConfigError,
    InputError,
    NotFoundError,
    OutputError,
    ProviderError,
)
from aiops.prepare import fill_defaults
from aiops.providers import Completion, CompletionRequest, Usage
from aiops.runner import Runner, backoff_delay
from aiops.spec import FunctionSpec, ProvidersFile, Retry
from tests.fixtures_db import make_spec
from tests.fixtures_providers import FakeStore

PROVIDERS = ProvidersFile.model_validate({"providers": {
    "p1": {"type": "openai", "api_key_env": "P1_KEY", "limits": {"rpm": 1000},
           "models": {"m1": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}},
    "p2": {"type": "groq", "api_key_env": "P2_KEY",
           "models": {"m2": {"input_per_mtok": 0.5, "output_per_mtok": 1.0}}},
    "nokey": {"type": "openai", "api_key_env": "UNSET_KEY"},
}})
OBJECT_OUT = {"type": "object", "required": ["answer"],
              "properties": {"answer": {"type": "string"}}, "additionalProperties": False}
Step = Callable[[CompletionRequest], Completion] | Exception | str


class Scripted:
    """A provider that plays a script: each step is text, an exception, or a function."""

    def __init__(self, name: str, script: list[Step]) -> None:
        self.name = name
        self.script = list(script)
        self.requests: list[CompletionRequest] = []

    async def complete(self, request: CompletionRequest) -> Completion:
        self.requests.append(request)
        step = self.script.pop(0) if self.script else '{"answer": "default"}'
        if isinstance(step, Exception):
            raise step
        if callable(step):
            return step(request)
        return Completion(text=step, usage=Usage(input_tokens=100, output_tokens=10),
                          request_id=f"r{len(self.requests)}")

    async def aclose(self) -> None:
        pass


def spec(**overrides: Any) -> FunctionSpec:
    values: dict[str, Any] = {
        "provider": "p1", "model": "m1", "output_schema": OBJECT_OUT,
        "retry": {"max_attempts": 3, "backoff_s": 0.1, "max_backoff_s": 1, "repair_attempts": 1},
        "fallbacks": [{"provider": "p2", "model": "m2"}],
        "input_schema": {"type": "object", "required": ["who"], "properties": {
            "who": {"type": "string", "minLength": 1},
            "tone": {"type": "string", "default": "warm"},
            "extra": {"type": "string"}}, "additionalProperties": False},
        "prompt": [{"role": "user", "content": "Greet {{ who }} ({{ tone }})"
                    "{% if extra %} {{ extra }}{% endif %}"}],
    }
    values.update(overrides)
    return make_spec("greet", **values)


def transient(status: int = 503, after: float | None = None) -> ProviderError:
    return ProviderError(f"p answered {status}", provider="p", status=status, transient=True,
                         retry_after_s=after, kind="server_error")


class Harness:
    def __init__(self, fn_spec: FunctionSpec, scripts: dict[str, list[Step]], *,
                 providers: ProvidersFile = PROVIDERS, **store_overrides: Any) -> None:
        self.store = FakeStore()
        self.store.add(fn_spec, **store_overrides)
        self.providers = {name: Scripted(name, steps) for name, steps in scripts.items()}
        self.sleeps: list[float] = []

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        def make(name: str, pspec: Any, env: Any) -> Scripted:
            if name not in self.providers:
                raise ConfigError(f"provider `{name}` needs its API key: set `X`")
            return self.providers[name]

        self.runner = Runner(store=self.store, providers=providers, env={"P1_KEY": "k1"},
                             make=make, sleep=sleep, rng=random.Random(1))

    def run(self, value: Any, target: str = "greet") -> Any:
        async def go() -> Any:
            try:
                return await self.runner.run(target, value, actor="tester")
            finally:
                await self.runner.aclose()

        return asyncio.run(go())


def test_success_renders_with_defaults_and_logs_one_row() -> None:
    h = Harness(spec(), {"p1": ['{"answer": "hi"}']})
    ex = h.run({"who": "Ada"})
    assert ex.ok and ex.output == {"answer": "hi"}
    request = h.providers["p1"].requests[0]
    assert request.messages == ({"role": "user", "content": "Greet Ada (warm)"},)
    assert request.output_schema == OBJECT_OUT and request.function == "greet"
    (row,) = h.store.logs
    assert row.id == ex.log_id and row.status == "ok" and row.actor == "tester"
    assert row.input == {"who": "Ada", "tone": "warm"}
    assert row.metadata["git_commit"] == "0" * 40 and len(row.metadata["prompt_hash"]) == 64
    assert row.metadata["attempts"][0]["provider"] == "p1"
    assert row.cost_usd == pytest.approx((100 * 1.0 + 10 * 2.0) / 1e6)
    assert (row.input_tokens, row.output_tokens, row.provider) == (100, 10, "p1")


def test_same_input_same_prompt_hash() -> None:
    h = Harness(spec(), {"p1": ['{"answer": "a"}'] * 3})

    async def go() -> list[Any]:
        out = [await h.runner.run("greet", v) for v in ({"who": "A"}, {"who": "A"}, {"who": "B"})]
        await h.runner.aclose()
        return out

    asyncio.run(go())
    hashes = [r.metadata["prompt_hash"] for r in h.store.logs]
    assert hashes[0] == hashes[1] != hashes[2]


@pytest.mark.parametrize(("value", "match"), [
    ({}, '"who" is a required property'),
    ({"who": ""}, r"\$\.who"),
    ({"who": "x", "nope": 1}, "Additional properties"),
    ([1], "must be a JSON object"),
    ({"who": "x" * 70000}, "over the function's bound"),
])
def test_invalid_input_is_an_input_error_with_a_log_row(value: Any, match: str) -> None:
    h = Harness(spec(), {"p1": []})
    ex = h.run(value)
    assert isinstance(ex.error, InputError) and ex.error.exit_code == 3
    assert pytest.approx(0) == ex.cost_usd
    assert h.providers["p1"].requests == []
    assert ex.error.log_id == ex.log_id and ex.log_id in str(ex.error)
    assert re.search(match, ex.error.message)
    (row,) = h.store.logs
    assert row.status == "error" and row.error["type"] == "InputError"
    if isinstance(value, dict) and len(json.dumps(value)) > 65536:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        assert row.input == {"_omitted": "over max_input_bytes", "bytes": size}


def test_transient_errors_retry_with_backoff_then_succeed() -> None:
    h = Harness(spec(), {"p1": [transient(), transient(500), '{"answer": "ok"}']})
    ex = h.run({"who": "x"})
    assert ex.ok and [a.status for a in ex.attempts] == ["error", "error", "ok"]
    assert len(h.sleeps) == 2
    assert 0.05 <= h.sleeps[0] <= 0.1 and 0.1 <= h.sleeps[1] <= 0.2  # equal jitter


def test_retry_after_is_honoured() -> None:
    h = Harness(spec(), {"p1": [transient(429, after=0.7), '{"answer": "ok"}']})
    assert h.run({"who": "x"}).ok
    assert h.sleeps == [0.7]


def test_long_retry_after_moves_to_the_fallback_and_says_so() -> None:
    h = Harness(spec(), {"p1": [transient(429, after=30)], "p2": ['{"answer": "fb"}']})
    ex = h.run({"who": "x"})
    assert ex.output == {"answer": "fb"} and ex.provider == "p2" and h.sleeps == []
    assert ex.attempts[0].message == (
        "p answered 429; moved on to the next fallback: p1 asked to wait 30 s (Retry-After), "
        "over retry.max_backoff_s (1 s)")


def test_a_retry_after_over_the_cap_fails_saying_why() -> None:
    long_message = "p answered 429: " + "slow down " * 40
    busy = ProviderError(long_message, provider="p1", status=429, transient=True,
                         retry_after_s=120, kind="rate_limit")
    h = Harness(spec(fallbacks=[]), {"p1": [busy]})
    ex = h.run({"who": "x"})
    assert isinstance(ex.error, ProviderError) and h.sleeps == []
    why = ("gave up: p1 asked to wait 120 s (Retry-After), over the runner's cap of 60 s; run "
           "it again after that wait, or add a fallback provider to the function")
    assert ex.error.message.startswith("p answered 429: slow down") and why in ex.error.message
    # The attempt record keeps the reason, however long the provider's own message.
    (attempt,) = ex.attempts
    assert attempt.message is not None and attempt.message.endswith(why)
    assert len(attempt.message) <= 300


def test_retries_exhausted_then_fallback_in_order() -> None:
    h = Harness(spec(), {"p1": [transient()] * 3, "p2": ['{"answer": "fb"}']})
    ex = h.run({"who": "x"})
    assert ex.ok and [a.provider for a in ex.attempts] == ["p1", "p1", "p1", "p2"]
    assert h.providers["p2"].requests[0].model == "m2"


def test_non_transient_error_skips_retries() -> None:
    bad = ProviderError("p answered 404", provider="p1", status=404, kind="not_found")
    h = Harness(spec(), {"p1": [bad], "p2": [bad]})
    ex = h.run({"who": "x"})
    assert isinstance(ex.error, ProviderError) and ex.error.exit_code == 4
    assert len(ex.attempts) == 2 and h.sleeps == []
    assert "after 2 attempt(s) over 2 providers" in ex.error.message


def test_invalid_output_is_repaired_with_the_validation_error() -> None:
    h = Harness(spec(), {"p1": ['{"answer": 5}', '{"answer": "five"}']})
    ex = h.run({"who": "x"})
    assert ex.ok and ex.output == {"answer": "five"}
    second = h.providers["p1"].requests[1].messages
    assert second[-2] == {"role": "assistant", "content": '{"answer": 5}'}
    assert '$.answer: 5 is not of type "string"' in second[-1]["content"]
    assert ex.attempts[1].repair and ex.attempts[0].status == "invalid"


def test_unparsable_output_then_fallback_then_output_error() -> None:
    h = Harness(spec(), {"p1": ["not json", "still not"], "p2": ['{"x": 1}', '{"y": 2}']})
    ex = h.run({"who": "x"})
    assert isinstance(ex.error, OutputError) and ex.error.exit_code == 5
    assert [a.status for a in ex.attempts] == ["invalid"] * 4
    assert "not valid JSON" in ex.attempts[0].message


def test_fenced_json_is_accepted() -> None:
    h = Harness(spec(), {"p1": ['```json\n{"answer": "a"}\n```']})
    assert h.run({"who": "x"}).output == {"answer": "a"}


def test_text_output() -> None:
    h = Harness(spec(output_schema={"type": "string", "minLength": 3}),
                {"p1": ["no", "hello"]})
    ex = h.run({"who": "x"})
    assert ex.output == "hello" and h.providers["p1"].requests[0].output_schema is None


def test_missing_key_of_primary_falls_back_and_is_recorded() -> None:
    h = Harness(spec(fallbacks=[{"provider": "p2", "model": "m2"}]), {"p2": ['{"answer": "b"}']})
    ex = h.run({"who": "x"})
    assert ex.ok and ex.attempts[0].status == "skipped" and ex.attempts[0].kind == "config"


def test_missing_keys_everywhere_is_a_config_error() -> None:
    h = Harness(spec(), {})
    ex = h.run({"who": "x"})
    assert isinstance(ex.error, ConfigError) and "set `X`" in ex.error.message


def test_filters_redact_input_and_deny_output() -> None:
    filters = {"input": ["pii_redact"], "output": [{"deny": "(?i)secret"}]}
    h = Harness(spec(filters=filters), {"p1": ['{"answer": "the SECRET is 42"}']})
    ex = h.run({"who": "bob@example.com"})
    assert h.providers["p1"].requests[0].messages[0]["content"].startswith("Greet [EMAIL]")
    assert isinstance(ex.error, OutputError) and "deny pattern" in ex.error.message
    assert ex.output is None and h.store.logs[0].output is None
    assert h.store.logs[0].input["who"] == "[EMAIL]"


def test_daily_calls_budget_refuses_and_settles() -> None:
    h = Harness(spec(), {"p1": ['{"answer": "a"}'] * 3},
                limits={"daily_calls": 2, "max_input_bytes": 65536})

    async def go() -> list[Any]:
        out = [await h.runner.run("greet", {"who": "x"}) for _ in range(3)]
        await h.runner.aclose()
        return out

    results = asyncio.run(go())
    assert [r.ok for r in results] == [True, True, False]
    assert isinstance(results[2].error, BudgetExceeded) and results[2].error.exit_code == 7
    (usage,) = h.store.usage.values()
    assert usage["calls_used"] == 2 and usage["calls_reserved"] == 0
    assert usage["usd_reserved"] == pytest.approx(0)
    assert usage["usd_spent"] == pytest.approx(2 * (100 + 20) / 1e6)


def test_usd_budget_reserves_the_estimate() -> None:
    h = Harness(spec(configuration={"max_tokens": 1000}), {"p1": ['{"answer": "a"}']},
                limits={"daily_budget_usd": 0.001})  # one call's estimate is ~0.002
    ex = h.run({"who": "x"})
    assert isinstance(ex.error, BudgetExceeded) and h.providers["p1"].requests == []


@pytest.mark.parametrize(("configuration", "limits", "sent"), [
    ({"temperature": 0}, {"daily_budget_usd": 1.0}, 1024),  # the estimate's max_tokens, sent
    ({"max_tokens": 300}, {"daily_budget_usd": 1.0}, 300),
    ({"temperature": 0}, {"daily_calls": 5}, None),  # no cost to bound
    ({"temperature": 0}, {}, None),
])
def test_a_usd_budget_sends_max_tokens_so_that_the_estimate_bounds_the_call(
        configuration: dict[str, Any], limits: dict[str, Any], sent: int | None) -> None:
    """A call estimated at 1024 output tokens but sent without max_tokens could cost any
    amount ($1.80 spent on a $1.00 budget)."""
    h = Harness(spec(configuration=configuration), {"p1": ['{"answer": "a"}']}, limits=limits)
    assert h.run({"who": "x"}).ok
    assert h.providers["p1"].requests[0].settings.get("max_tokens") == sent


def test_unknown_function_raises() -> None:
    h = Harness(spec(), {})
    with pytest.raises(NotFoundError):
        h.run({"who": "x"}, target="nope")


def test_resolution_is_cached() -> None:
    h = Harness(spec(), {"p1": ['{"answer": "a"}'] * 5})

    async def go() -> None:
        await asyncio.gather(*(h.runner.run("greet", {"who": "x"}) for _ in range(5)))
        await h.runner.aclose()

    asyncio.run(go())
    assert h.store.resolves == 1 and len(h.store.logs) == 5


def test_run_many_hands_each_result_over_once_with_its_position() -> None:
    h = Harness(spec(), {"p1": [lambda r: Completion(
        text=json.dumps({"answer": r.messages[0]["content"]}))] * 20})

    async def go() -> list[Any]:
        seen: dict[int, Any] = {}
        returned = await h.runner.run_many(
            "greet", [{"who": str(i)} if i != 3 else {} for i in range(20)], concurrency=4,
            on_result=seen.__setitem__)
        await h.runner.aclose()
        assert returned is None and sorted(seen) == list(range(20))  # each result once
        return [seen[i] for i in range(20)]

    results = asyncio.run(go())
    assert [r.output["answer"].split()[1] for r in results if r.ok] == [
        str(i) for i in range(20) if i != 3]
    assert isinstance(results[3].error, InputError)
    assert len(h.store.logs) == 20


def test_batches_tune_the_gc_while_any_runs_and_restore_it_after() -> None:
    """Overlapping batches (a server running two) restore the thresholds once, when the last
    ends; a batch that fails restores them too."""
    import gc

    from aiops.batch import GC_BATCH_THRESHOLD, batch_gc

    before = gc.get_threshold()
    h = Harness(spec(), {"p1": ['{"answer": "a"}'] * 10})
    seen: list[tuple[int, int, int]] = []

    async def go() -> None:
        slow = asyncio.Event()

        async def first() -> None:
            with batch_gc():
                await slow.wait()

        task = asyncio.create_task(first())
        await asyncio.sleep(0)
        await h.runner.run_many("greet", [{"who": "x"}] * 3, concurrency=2,
                                on_result=lambda i, r: seen.append(gc.get_threshold()))
        seen.append(gc.get_threshold())  # the second batch ended; the first still runs
        slow.set()
        await task
        await h.runner.aclose()

    asyncio.run(go())
    assert all(t[0] == GC_BATCH_THRESHOLD for t in seen) and len(seen) == 4
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), batch_gc():
        raise RuntimeError("boom")
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_a_process_that_tunes_its_gc_keeps_its_choices() -> None:
    """A heap the application froze (gunicorn's preload pattern) stays frozen after a batch,
    and a threshold of 0 (automatic collection off) is not turned on by one."""
    import gc

    from aiops.batch import batch_gc

    before = gc.get_threshold()
    gc.freeze()
    try:
        gc.set_threshold(0)
        with batch_gc():
            assert gc.get_threshold()[0] == 0
        assert gc.get_threshold()[0] == 0 and gc.get_freeze_count() > 0
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def test_backoff_grows_and_is_capped() -> None:
    retry = Retry(max_attempts=10, backoff_s=0.5, max_backoff_s=2)
    rng = random.Random(0)
    delays = [backoff_delay(n, retry, rng) for n in range(1, 7)]
    assert 0.25 <= delays[0] <= 0.5 and all(1 <= d <= 2 for d in delays[2:])


def test_fill_defaults_is_recursive_and_does_not_mutate() -> None:
    schema = {"properties": {"a": {"default": [1]}, "o": {"type": "object", "properties": {
        "b": {"default": 2}}}}}
    value = {"o": {}}
    assert fill_defaults(schema, value) == {"a": [1], "o": {"b": 2}}
    assert value == {"o": {}}


def test_a_wait_for_a_rate_limit_is_recorded() -> None:
    from aiops.limits import RateLimiter

    class SlowLimiter(RateLimiter):
        async def acquire_rate(self, scopes: Any, tokens: int, *, wait: bool, label: str,
                               give_way: Any) -> float:
            assert wait and tokens > 100  # prompt estimate + max_tokens
            assert label == "p1/m1" and give_way == ("provider:p1",)  # p2 is a fallback
            return 0.25

    h = Harness(spec(), {"p1": ['{"answer": "a"}']})
    h.runner.limiter = SlowLimiter()
    ex = h.run({"who": "x"})
    assert ex.attempts[0].limit_wait_ms == 250.0
    assert h.store.logs[0].metadata["attempts"][0]["limit_wait_ms"] == 250.0


def test_limit_refusal_is_a_limit_error() -> None:
    h = Harness(spec(), {"p1": []}, limits={"rpm": 1, "on_limit": "fail"})

    async def go() -> list[Any]:
        out = [await h.runner.run("greet", {"who": "x"}) for _ in range(2)]
        await h.runner.aclose()
        return out

    first, second = asyncio.run(go())
    assert first.ok and second.error is not None and second.error.exit_code == 6
    assert "function:greet" in second.error.message and h.store.logs[1].status == "error"
