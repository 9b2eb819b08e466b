"""The runner: one execution of a function version, and many (DESIGN §6.1, §6.5).

    resolve (cached) -> input bound, filters, defaults, validation -> render (sandboxed)
    -> for each candidate (the provider, then the fallbacks in order):
         rate limits, budget reservation -> call -> parse, validate
         -> repair re-ask with the validation error | retry transient errors with backoff,
            jitter and Retry-After | next candidate
    -> output filters -> one log row (every attempt, tokens, cost, prompt hash, actor, commit)

No provider-specific code: providers are reached through `aiops.providers.Provider`. One
asyncio code path serves one call (`run`) and many (`run_many`). The database is reached
through a small `Store` protocol (resolve, insert_logs, budget leases), so tests inject
fakes. A version is compiled once (`aiops.prepare`); log rows are written in batches by a
background writer and flushed by `aclose()` (`aiops.batch`); daily budgets are leased and
settled in bulk (`aiops.budgets`), and `aclose()` gives back what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
import uuid
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from aiops import fastjson, observe, tracing
from aiops.batch import LogWriter, batch_gc, taker
from aiops.budgets import LEASE_S, Budgets, Claim, LeaseStore, Limit
from aiops.errors import (
    AiopsError,
    AttemptKind,
    Cancelled,
    ConfigError,
    InputError,
    OutputError,
    ProviderError,
)
from aiops.keyscrub import scrubber
from aiops.limits import (
    NoRoom,
    RateLimiter,
    RateSpec,
    cost_usd,
    estimate_cost,
    estimate_prompt_tokens,
)
from aiops.prepare import (
    Candidate,
    Prepared,
    fill_defaults,
    only_provider,
    prepare,
    schema_problem,
)
from aiops.prompts import prompt_hash
from aiops.providers import (
    MAX_OUTPUT_DEPTH,
    CompletionRequest,
    Provider,
    Usage,
    make_provider,
    parse_json_text,
    scrub,
    secret_env_names,
)
from aiops.records import DeployedVersion, LogRow, LogWriteReport
from aiops.spec import Limits, ProvidersFile, Retry

if TYPE_CHECKING:
    from aiops.observe import Observer, Watch

FLOATING_TTL_S = 5.0  # how long `name` / `name@1` stay resolved in process
REPAIR_PROMPT = ("Your previous answer was invalid: {problem}. Answer again with only the "
                 "corrected answer{json}, nothing else.")


class RunnerStore(LeaseStore, Protocol):
    def resolve(self, name: str, selector: str | None = None) -> DeployedVersion: ...

    def insert_logs(self, rows: list[LogRow]) -> LogWriteReport | None: ...


@dataclass(frozen=True, kw_only=True)
class Attempt:
    provider: str
    model: str
    status: str  # ok | error | invalid | skipped
    latency_ms: float
    error: str | None = None  # the error class, e.g. ProviderError
    kind: AttemptKind | None = None  # timeout, rate_limit, invalid_output, ...
    http_status: int | None = None
    message: str | None = None
    repair: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    request_id: str | None = None
    limit_wait_ms: float | None = None  # time spent waiting for a rate limit first

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v not in (None, False)}


@dataclass(frozen=True, kw_only=True)
class Execution:
    """The result of one execution; `error` is None when it succeeded."""

    log_id: str
    function: str
    version: str
    output: Any = None
    error: AiopsError | None = None
    attempts: tuple[Attempt, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    provider: str | None = None
    model: str | None = None
    deprecated: bool = False  # the version that ran is deprecated (`status: deprecated`)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, kw_only=True)
class Origin:
    """Who asked for an execution and why, for its log row: `actor` (the text it names them
    by), `created_by` (their user id; None: the user row of the actor), `metadata` added to
    the row's (`{"test": true}`: a test run), and `log_id`, the execution's id when the caller
    chose it before the call (an API request records it first)."""

    actor: str | None = None
    created_by: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    log_id: str | None = None


def parse_target(target: str) -> tuple[str, str | None]:
    name, _, selector = target.partition("@")
    return name, selector or None


def backoff_delay(attempt: int, retry: Retry, rng: random.Random) -> float:
    """Exponential backoff with equal jitter: half fixed, half random."""
    delay: float = min(retry.max_backoff_s, retry.backoff_s * (2 ** (attempt - 1)))
    return delay / 2 + rng.random() * delay / 2


class Runner:
    """Runs functions. One per process (or per event loop); `aclose()` flushes the logs."""

    def __init__(self, *, store: RunnerStore, providers: ProvidersFile,
                 env: Mapping[str, str], limiter: RateLimiter | None = None,
                 make: Callable[..., Provider] = make_provider,
                 sleep: Callable[[float], Any] = asyncio.sleep,
                 rng: random.Random | None = None, actor: str | None = None,
                 max_retry_after_s: float = 60.0, budget_lease_s: float = LEASE_S,
                 observers: Iterable[Observer] = ()) -> None:
        self.store = store
        self.providers_file = providers
        self.env = env
        self.limiter = limiter or RateLimiter.from_env(env)
        self.actor = actor
        self._make = make
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._max_retry_after_s = max_retry_after_s
        self._providers: dict[str, Provider] = {}
        self._resolved: dict[tuple[str, str | None], tuple[float, Prepared]] = {}
        self._inflight: dict[tuple[str, str | None], asyncio.Future[Prepared]] = {}
        self._prepared: dict[str, Prepared] = {}
        self._logs = LogWriter(store.insert_logs)
        self._budgets = Budgets(store, lease_s=budget_lease_s)
        self._secrets = self._secret_values()
        self._scrubber = scrubber(self._secrets)
        # Told about every execution (aiops.observe), with those added process-wide: the
        # given ones, and the OpenTelemetry tracer when the environment switches it on.
        self._observers: tuple[Observer, ...] = (
            *observers, *tracing.from_env(env, providers, self._scrubber.text))
        self._provider_scopes = {
            name: RateSpec(key=f"provider:{name}", rpm=p.limits.rpm, tpm=p.limits.tpm,
                           max_concurrency=p.limits.max_concurrency)
            for name, p in providers.providers.items()}
        # How long a shared concurrency slot outlives a holder that died mid-call: longer than
        # any attempt can last (its timeout, twice over, and a margin).
        self._leases_s = {name: 2 * p.timeout_s + 30 for name, p in providers.providers.items()}

    def _secret_values(self) -> tuple[str, ...]:
        values = [self.env.get(name) for p in self.providers_file.providers.values()
                  for name in secret_env_names(p)]
        return tuple(v for v in values if v)

    # -- resolution ----------------------------------------------------------------------

    def invalidate(self) -> None:
        """Forget resolved versions (after an apply in this process)."""
        self._resolved.clear()

    async def resolve(self, target: str) -> Prepared:
        key = parse_target(target)
        hit = self._resolved.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        pending = self._inflight.get(key)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if (task is not None and task.cancelling()) or not pending.cancelled():
                    raise
                # The caller that was resolving was cancelled, not this one: resolve anew.
                return await self.resolve(target)
        future: asyncio.Future[Prepared] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            dv = await asyncio.to_thread(self.store.resolve, key[0], key[1])
            prepared = self._prepared.get(dv.version_id)
            if prepared is None:
                prepared = self._prepared[dv.version_id] = prepare(dv, self.providers_file)
            elif prepared.dv != dv:  # limits or access changed in place: keep the compiled parts
                limits = Limits.model_validate(dv.limits or {})
                prepared = self._prepared[dv.version_id] = replace(
                    prepared, dv=dv, limits=limits, scope=replace(
                        prepared.scope, rpm=limits.rpm, tpm=limits.tpm,
                        max_concurrency=limits.max_concurrency))
            exact = key[1] is not None and key[1].count(".") == 2
            ttl = 3600.0 if exact else FLOATING_TTL_S
            self._resolved[key] = (time.monotonic() + ttl, prepared)
            future.set_result(prepared)
            return prepared
        except asyncio.CancelledError:
            future.cancel()  # the callers sharing this resolution start their own
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            del self._inflight[key]

    def _provider(self, name: str, state: _State | None = None) -> Provider:
        """The provider `name`, built on first use. Building it (importing its SDK: half a
        second for OpenAI's) is the process's cost, not the execution's: `state.setup_s`
        takes it out of the execution's time."""
        provider = self._providers.get(name)
        if provider is None:
            spec = self.providers_file.providers.get(name)
            if spec is None:
                known = ", ".join(sorted(self.providers_file.providers)) or "none"
                raise ConfigError(f"provider `{name}` is not in providers.yaml (known: {known})")
            built = time.perf_counter()
            provider = self._providers[name] = self._make(name, spec, self.env)
            if state is not None:
                state.setup_s += time.perf_counter() - built
        return provider

    # -- one execution -------------------------------------------------------------------

    async def run(self, target: str, input: Any, *, actor: str | None = None,
                  origin: Origin | None = None, provider: str | None = None,
                  quota: Claim | None = None) -> Execution:
        """Run `name[@version]` on `input`. Resolution errors raise; the rest is logged and
        returned in `Execution.error` (its `log_id` names the row). `origin`: who asked, for
        the log row. `provider`: run on that provider of the version's matrix alone (its
        provider and its fallbacks'), without fallbacks; one outside it is a FieldError.
        `quota`: the caller's daily quotas (an API token's, `aiops.budgets.TOKENS`), which
        every provider call is admitted against with the function's own budget, and settled
        into."""
        prepared = await self.resolve(target)
        if provider is not None:
            prepared = only_provider(prepared, provider)
        return await self._execute(prepared, input, actor or self.actor, origin, quota)

    async def _execute(self, p: Prepared, raw: Any, actor: str | None,
                       origin: Origin | None = None, quota: Claim | None = None) -> Execution:
        execution, cancelled = await self._execute_logged(p, raw, actor, origin, quota)
        if cancelled:
            raise asyncio.CancelledError
        return execution

    async def _execute_logged(self, p: Prepared, raw: Any, actor: str | None,
                              origin: Origin | None = None,
                              quota: Claim | None = None) -> tuple[Execution, bool]:
        """One execution and its log row; True when it was cancelled (its row says so)."""
        if self._logs.full:  # the database is behind: wait before starting more work
            await self._logs.room()
        start = time.perf_counter()
        log_id = origin.log_id if origin is not None and origin.log_id else str(uuid.uuid4())
        state = _State(quota=quota)
        if self._observers or observe.process_observers():
            state.watch = observe.watch((*self._observers, *observe.process_observers()),
                                        p.dv.name, p.dv.version, log_id)
        output: Any = None
        error: AiopsError | None = None
        cancelled = False
        try:
            value = self._check_input(p, raw, state)
            messages = p.prompt.render(value, max_bytes=p.limits.prompt_bytes)
            state.prompt_hash = prompt_hash(messages)
            output = await self._call_chain(p, messages, state)
            output, denied = p.output_filters.apply(output)
            if denied is not None:
                output = None
                raise OutputError(f"{p.dv.name}: the output matches the deny pattern "
                                  f"`{denied}` and was withheld")
        except AiopsError as exc:
            error = exc
            output = None
        except Exception as exc:  # a bug must still leave its log row
            error = AiopsError(f"internal error: {type(exc).__name__}: {exc}")
        except asyncio.CancelledError:  # Ctrl-C, a timeout: the call may have cost money
            cancelled = True
            error = Cancelled(f"{p.dv.name}: the execution was cancelled")
            output = None
        if error is not None:
            error.message = scrub(error.message, self._secrets)
            error.log_id = log_id
        # A provider or a model may echo a key into an answer, and a caller into an input:
        # neither reaches stdout, the log row or --output.
        output = self._scrubber.value(output)
        state.logged_input = self._scrubber.value(state.logged_input)
        elapsed = (time.perf_counter() - start - state.setup_s) * 1000
        execution = Execution(
            log_id=log_id, function=p.dv.name, version=p.dv.version, output=output, error=error,
            attempts=tuple(state.attempts), input_tokens=state.input_tokens,
            output_tokens=state.output_tokens, cost_usd=state.cost, latency_ms=elapsed,
            provider=state.provider, model=state.model, deprecated=p.dv.status == "deprecated")
        self._logs.submit(self._log_row(p, execution, state, actor, origin))
        if state.watch is not None:
            state.watch.done(execution)
        return execution, cancelled

    def _check_input(self, p: Prepared, raw: Any, state: _State) -> Any:
        """Bound, filter, default and validate the input; what gets logged is set here."""
        name = p.dv.name
        if not isinstance(raw, dict):
            state.logged_input = {"_omitted": f"not a JSON object ({type(raw).__name__})"}
            raise InputError(f"{name}: the input must be a JSON object, not "
                             f"{type(raw).__name__}")
        try:
            size = len(fastjson.dumps_checked(raw))
        except fastjson.Refused as exc:  # a Python caller's value: no JSON reader bounded it
            state.logged_input = {"_omitted": str(exc)[:200]}
            fix = "send the character itself" if "surrogate" in str(exc) else "flatten it"
            raise InputError(f"{name}: the input is refused: {exc}; {fix}") from None
        except ValueError:  # json.loads reads NaN and Infinity; JSON columns refuse them
            state.logged_input = {"_omitted": "holds NaN or Infinity"}
            raise InputError(f"{name}: the input holds NaN or Infinity, which JSON does not "
                             "allow; send a number or null") from None
        if size > p.limits.max_input_bytes:
            state.logged_input = {"_omitted": "over max_input_bytes", "bytes": size}
            raise InputError(f"{name}: the input is {size} bytes, over the function's bound of "
                             f"{p.limits.max_input_bytes} (limits.max_input_bytes)")
        value = raw
        if not p.input_filters.empty:
            value, denied = p.input_filters.apply(value)
            if denied is not None:
                state.logged_input = {"_omitted": "matched a deny pattern"}
                raise InputError(f"{name}: the input matches the deny pattern `{denied}`")
        state.logged_input = value
        value = fill_defaults(p.input_schema, value)
        problem = p.input_validator.first_error(value)
        if problem is not None:
            raise InputError(f"{name}: the input does not match input_schema: "
                             f"{problem.render()[:500]}", pointer=problem.pointer)
        state.logged_input = value
        return value

    async def _call_chain(self, p: Prepared, messages: tuple[dict[str, str], ...],
                          state: _State) -> Any:
        """The provider, then the fallbacks in order, until one answers. With `on_limit:
        fallback`, a candidate whose provider-wide rate limit has no room now is passed over
        for the next; when none of those left has room, the call waits for the one that has
        room first (preferring the earlier ones), and tries them in order again."""
        errors: list[AiopsError] = []
        pending = list(range(len(p.candidates)))
        waited = 0.0
        while True:
            no_room: list[tuple[int, NoRoom]] = []
            for position, index in enumerate(pending):
                cand = p.candidates[index]
                try:
                    provider = self._provider(cand.provider, state)
                except ConfigError as exc:
                    state.attempts.append(Attempt(provider=cand.provider, model=cand.model,
                                                  status="skipped", latency_ms=0.0,
                                                  error="ConfigError", kind="config",
                                                  message=exc.message))
                    errors.append(exc)
                    continue
                # Passing over makes sense only while there is another candidate to go to.
                give_way = p.limits.on_limit == "fallback" and len(pending) > 1
                try:
                    return await self._try_candidate(p, index, provider, messages, state,
                                                     more=position + 1 < len(pending),
                                                     give_way=give_way)
                except NoRoom as exc:
                    self._passed_over(cand, exc, state)
                    if exc.never:  # larger than the limit itself: no wait can help
                        errors.append(exc)
                    else:
                        no_room.append((index, exc))
                except (ProviderError, OutputError) as exc:
                    errors.append(exc)
            if not no_room:
                break
            pending = [index for index, _ in no_room]
            index, soonest = min(no_room, key=lambda entry: entry[1].retry_in)
            cand = p.candidates[index]
            slept = await self.limiter.pause(soonest, label=f"{cand.provider}/{cand.model}",
                                             waited=waited)
            waited += slept
            state.limit_wait += slept
        if all(isinstance(e, ConfigError) for e in errors):
            raise errors[0]
        last = next(e for e in reversed(errors) if not isinstance(e, ConfigError))
        tried = len(state.attempts)
        if len(p.candidates) > 1:
            last.message += f" (after {tried} attempt(s) over {len(p.candidates)} providers)"
        raise last

    def _passed_over(self, cand: Candidate, exc: NoRoom, state: _State) -> None:
        """An attempt saying why a candidate was not called: once per candidate."""
        if (cand.provider, cand.model) in state.passed_over:
            return
        state.passed_over.add((cand.provider, cand.model))
        what = exc.what(f"{cand.provider}/{cand.model}")
        self.limiter.waits.passed(what)
        message = (exc.message if exc.never else
                   f"{what} had no room for ~{exc.retry_in:.1f}s: tried the other providers "
                   "first")
        state.attempts.append(Attempt(provider=cand.provider, model=cand.model,
                                      status="skipped", latency_ms=0.0, error="LimitExceeded",
                                      kind="rate_limit", message=message))

    async def _try_candidate(self, p: Prepared, index: int, provider: Provider,
                             messages: tuple[dict[str, str], ...], state: _State, *,
                             more: bool, give_way: bool) -> Any:
        """Call one candidate, with its retries and repairs; NoRoom when `give_way` and its
        provider's rate limit has no room. A candidate tried again after waiting for room
        keeps the count of its retries and repairs."""
        cand = p.candidates[index]
        retry = p.retry
        provider_scope = self._provider_scopes.get(cand.provider) or RateSpec(key="")
        scopes = tuple(s for s in (provider_scope, p.scope) if not s.empty)
        passable = (provider_scope.key,) if give_way else ()
        label = f"{cand.provider}/{cand.model}"
        convo = list(messages)
        transient, repairs = state.tries.get(index, (0, 0))
        # A USD budget (the function's, the caller's) sends max_tokens: the estimate bounds
        # what the call can cost.
        usd_bound = p.limits.daily_budget_usd is not None or (
            state.quota is not None and state.quota.limit.usd is not None)
        settings = cand.budget_settings if usd_bound else cand.settings
        while True:
            request = CompletionRequest(messages=tuple(convo), model=cand.model,
                                        settings=settings, output_schema=p.request_schema,
                                        function=p.dv.name, version=p.dv.version)
            prompt_tokens = estimate_prompt_tokens(convo, p.request_schema_chars)
            waited = None
            if scopes:
                state.tries[index] = (transient, repairs)
                wait_s = state.limit_wait + await self.limiter.acquire_rate(
                    scopes, prompt_tokens + cand.max_tokens, wait=p.limits.on_limit != "fail",
                    label=label, give_way=passable)
                state.limit_wait = 0.0
                waited = round(wait_s * 1000, 3) if wait_s > 0.001 else None
            async with self._budget(p, cand, prompt_tokens, state) as settle:
                call = None if state.watch is None else state.watch.attempt(
                    cand.provider, cand.model, request)
                started = time.perf_counter()
                try:
                    if scopes:
                        async with self.limiter.concurrency(
                                scopes, lease_s=self._leases_s.get(cand.provider, 600.0)):
                            completion = await provider.complete(request)
                    else:
                        completion = await provider.complete(request)
                except ProviderError as exc:
                    latency = (time.perf_counter() - started) * 1000
                    transient += 1
                    retrying = exc.transient and transient < retry.max_attempts
                    wait = backoff_delay(transient, retry, self._rng)
                    after = exc.retry_after_s
                    note = ""
                    if retrying and after is not None:
                        if more and after > retry.max_backoff_s:  # a fallback, not a long wait
                            note = (f"; moved on to the next fallback: {cand.provider} asked "
                                    f"to wait {after:g} s (Retry-After), over "
                                    f"retry.max_backoff_s ({retry.max_backoff_s:g} s)")
                        elif after > self._max_retry_after_s:
                            note = (f"; gave up: {cand.provider} asked to wait {after:g} s "
                                    f"(Retry-After), over the runner's cap of "
                                    f"{self._max_retry_after_s:g} s; run it again after that "
                                    "wait, or add a fallback provider to the function")
                        wait = max(wait, after)
                    billed, charged = self._charge(cand, exc, prompt_tokens)
                    settle(charged)
                    state.add_usage(billed.input_tokens, billed.output_tokens, charged,
                                    billed.cached_input_tokens, billed.reasoning_tokens)
                    message = scrub(exc.message, self._secrets)
                    state.attempts.append(Attempt(
                        provider=cand.provider, model=cand.model, status="error",
                        latency_ms=round(latency, 3), error=type(exc).__name__, kind=exc.kind,
                        http_status=exc.status, message=message[:300 - len(note)] + note,
                        repair=repairs > 0, input_tokens=billed.input_tokens,
                        output_tokens=billed.output_tokens, cost_usd=charged,
                        request_id=exc.answer.request_id if exc.answer else None,
                        limit_wait_ms=waited))
                    if call is not None:
                        call.done(state.attempts[-1], exc.answer)
                    if not retrying or note:
                        exc.message += note
                        raise
                    await self._sleep(wait)
                    continue
                latency = (time.perf_counter() - started) * 1000
                usage = completion.usage
                cost = self._cost(cand, usage)
                settle(cost)
            state.add_usage(usage.input_tokens, usage.output_tokens, cost,
                            usage.cached_input_tokens, usage.reasoning_tokens)
            output, problem = self._parse(p, completion.text, completion.parsed)
            state.attempts.append(Attempt(
                provider=cand.provider, model=cand.model,
                status="ok" if problem is None else "invalid", latency_ms=round(latency, 3),
                error=None if problem is None else "OutputError",
                kind=None if problem is None else "invalid_output", message=problem,
                repair=repairs > 0, input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens, cost_usd=cost,
                request_id=completion.request_id, limit_wait_ms=waited))
            if call is not None:
                call.done(state.attempts[-1], completion)
            if problem is None:
                state.provider, state.model = cand.provider, cand.model
                return output
            if repairs >= retry.repair_attempts:
                raise OutputError(f"{p.dv.name}: {cand.provider}/{cand.model} returned output "
                                  f"that does not match output_schema: {problem}")
            repairs += 1
            convo += [{"role": "assistant", "content": _unicode(completion.text[:20000])},
                      {"role": "user", "content": REPAIR_PROMPT.format(
                          problem=problem, json=" as JSON" if p.request_schema else "")}]

    @staticmethod
    def _cost(cand: Candidate, usage: Usage) -> float:
        return cost_usd(cand.price, usage.input_tokens, usage.output_tokens,
                        usage.cached_input_tokens, usage.reasoning_tokens)

    def _charge(self, cand: Candidate, exc: ProviderError,
                prompt_tokens: int) -> tuple[Usage, float]:
        """What a failed call is logged and charged: the usage of an answer that is no result
        (refused, cut off, ...: billed all the same); the call's estimate when the answer's
        usage cannot be trusted (`bad_usage`); nothing when no answer came."""
        if exc.answer is not None:
            return exc.answer.usage, self._cost(cand, exc.answer.usage)
        if exc.billed:
            return Usage(), estimate_cost(cand.price, prompt_tokens, cand.max_tokens)
        return Usage(), 0.0

    def _parse(self, p: Prepared, text: str, parsed: Any) -> tuple[Any, str | None]:
        if p.request_schema is None:
            value: Any = text
        elif parsed is not None:
            value = parsed
        else:
            try:
                value = parse_json_text(text)
            except fastjson.Refused as exc:
                return None, f"not valid output ({exc})"
            except ValueError as exc:
                return None, f"not valid JSON ({exc})"
        try:
            fastjson.dumps_checked(value, MAX_OUTPUT_DEPTH)
        except fastjson.Refused as exc:  # a lone surrogate, or nested too deep
            return None, f"not valid output ({exc})"
        except ValueError:  # NaN or Infinity: not JSON, and no JSON column stores it
            return None, "not valid JSON (NaN or Infinity is not a JSON number)"
        problem = schema_problem(p.output_validator, value)
        # The message may quote the output, which has not been through the output filters.
        return value, None if problem is None else self._scrubber.text(
            p.output_filters.redact_message(problem))

    def _budget(self, p: Prepared, cand: Candidate, prompt_tokens: int,
                state: _State) -> AbstractAsyncContextManager[Callable[[float], None]]:
        """Admit one provider call against the caller's daily quotas (when it has some), then
        the function's daily budget (`aiops.budgets`): its estimated cost, and one call for an
        execution's first attempt; the block settles the real cost in both."""
        limits = p.limits
        claims = [] if state.quota is None else [state.quota]
        if limits.daily_calls is not None or limits.daily_budget_usd is not None:
            claims.append(Claim(owner_id=p.dv.function_id, name=p.dv.name,
                                limit=Limit(calls=limits.daily_calls,
                                            usd=limits.daily_budget_usd),
                                wait=limits.on_limit != "fail"))
        if not claims:
            return _UNBUDGETED
        calls = 0 if state.reserved_call else 1
        # A refused call ends the execution, so the call is counted once whatever follows.
        state.reserved_call = True
        return self._budgets.reserve(
            *claims, calls=calls, usd=estimate_cost(cand.price, prompt_tokens, cand.max_tokens))

    def _log_row(self, p: Prepared, ex: Execution, state: _State, actor: str | None,
                 origin: Origin | None = None) -> LogRow:
        error = None
        if ex.error is not None:
            error = {"type": type(ex.error).__name__, "message": ex.error.message,
                     "exit_code": ex.error.exit_code}
        metadata = {"version": p.dv.version, "git_commit": p.dv.git_commit,
                    "prompt_hash": state.prompt_hash, "model": ex.model,
                    "attempts": [a.as_dict() for a in ex.attempts],
                    "cached_input_tokens": state.cached, "reasoning_tokens": state.reasoning}
        created_by = None
        if origin is not None:
            metadata = {**origin.metadata, **metadata}
            created_by = origin.created_by
            actor = origin.actor or actor
        return LogRow(id=ex.log_id, function_id=p.dv.function_id, version=p.dv.version,
                      version_id=p.dv.version_id,
                      status="ok" if ex.ok else "error", input=state.logged_input, output=ex.output,
                      error=error, execution_time=round(ex.latency_ms, 3), actor=actor,
                      metadata=metadata, provider=ex.provider, cost_usd=ex.cost_usd,
                      input_tokens=ex.input_tokens, output_tokens=ex.output_tokens,
                      created_by=created_by)

    # -- many executions ---------------------------------------------------------------

    async def run_many(self, target: str, inputs: Iterable[Any] | AsyncIterable[Any], *,
                       on_result: Callable[[int, Execution | AiopsError], object],
                       concurrency: int = 32, actor: str | None = None) -> None:
        """Run every input, at most `concurrency` at once, handing each result to
        `on_result(index, result)` as soon as it is known: in completion order, `index` being
        the input's position. A line whose function cannot be resolved gets the resolution
        error instead of an Execution.

        Nothing is kept here, so memory does not grow with the inputs: `inputs` is read only
        as executions start (an async iterable may wait, which holds the intake back), and
        each result is dropped once handed over. Cancelled, it cancels the executions in
        flight: each still gets its log row and goes to `on_result` (its error says it was
        cancelled) before CancelledError propagates."""
        take = taker(inputs)
        run_actor = actor or self.actor

        async def worker() -> None:
            while (item := await take()) is not None:
                index, value = item
                try:
                    prepared = await self.resolve(target)
                except AiopsError as exc:
                    on_result(index, exc)
                    continue
                execution, cancelled = await self._execute_logged(prepared, value, run_actor)
                on_result(index, execution)
                if cancelled:
                    raise asyncio.CancelledError

        with batch_gc():
            try:
                async with asyncio.TaskGroup() as group:
                    for _ in range(max(1, concurrency)):
                        group.create_task(worker())
            except BaseExceptionGroup as failed:  # a worker failed: the others were cancelled
                raise failed.exceptions[0] from None

    def log_warnings(self) -> list[str]:
        """Rows stored without their values (the database refused them) since the last call."""
        return self._logs.take_warnings()

    async def flush(self) -> None:
        await self._logs.flush()

    async def close(self) -> list[AiopsError]:
        """Flush the log rows, settle and give back the budget leases, then close the
        providers' clients and the limiter: every step, even when one before it failed.
        What failed, in that order: LogWriteError when rows could not be written,
        BudgetSettleError when spending could not be settled (both exit 8). Anything else
        (a bug) is raised, after every step was tried."""
        failures: list[Exception] = []
        for step in (self._logs.flush, self._budgets.aclose, self._close_clients):
            try:
                await step()
            except Exception as exc:
                failures.append(exc)
        bugs = [f for f in failures if not isinstance(f, AiopsError)]
        if bugs:
            raise bugs[0]
        return [f for f in failures if isinstance(f, AiopsError)]

    async def aclose(self) -> None:
        """`close()`, raising the first failure."""
        failures = await self.close()
        if failures:
            raise failures[0]

    async def _close_clients(self) -> None:
        try:
            for provider in self._providers.values():
                await provider.aclose()
        finally:
            self._providers.clear()
            await self.limiter.aclose()


_SURROGATES = re.compile("[\ud800-\udfff]")


def _unicode(text: str) -> str:
    """`text` with its lone surrogates (an invalid answer may hold some) as U+FFFD, so that it
    can be sent back in a repair request (UTF-8 has no encoding for them)."""
    return text if text.isascii() else _SURROGATES.sub("\ufffd", text)


def _ignore(cost: float) -> None:
    return None


# The budget of a function without one: nothing to reserve or settle (one shared instance,
# not a new context manager for every attempt).
_UNBUDGETED = contextlib.nullcontext(_ignore)
@dataclass
class _State:
    """What one execution accumulates over its attempts."""

    attempts: list[Attempt] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cached: int = 0
    reasoning: int = 0
    cost: float = 0.0
    prompt_hash: str | None = None
    provider: str | None = None
    model: str | None = None
    reserved_call: bool = False
    quota: Claim | None = None  # the caller's quotas, claimed with the function's budget
    logged_input: Any = None
    setup_s: float = 0.0  # building provider clients on first use: not the execution's time
    limit_wait: float = 0.0  # seconds waited for room and not yet told by an attempt
    # (transient errors, repairs) of each candidate tried, by its position
    tries: dict[int, tuple[int, int]] = field(default_factory=dict)
    passed_over: set[tuple[str, str]] = field(default_factory=set)  # for a lack of room
    watch: Watch | None = None  # the observers' (aiops.observe)

    def add_usage(self, inp: int, out: int, cost: float, cached: int, reasoning: int) -> None:
        self.input_tokens += inp
        self.output_tokens += out
        self.cost += cost
        self.cached += cached
        self.reasoning += reasoning

