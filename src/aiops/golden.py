"""Golden tests (DESIGN §7): every test case of the selected functions, on every provider of
each function's matrix, through the real runner, with the provider HTTP replayed from
`functions/<name>/cassettes/<provider>/<test>.yaml`.

The plan is pure (`select_cases`: project -> cases); `run_golden` is the edge: it patches HTTP
with a cassette around each case (`aiops.cassettes`), calls the runner in process with the
working tree's spec (not a database version), and checks the result with `aiops.assertions`.
The runner is reached through one `Executor` callable, so the engine is tested without it and
the runner is tested without cassettes.

On one provider, a function runs as that provider alone: the provider's model and
configuration (from the fallback entry that names it), no fallbacks, so that each cassette is
one provider's answer. In replay, one attempt (cassettes hold successful answers only), and no
rate limits (nothing is sent).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aiops.assertions import AssertionResult, Observed, evaluate_all
from aiops.errors import AiopsError, ConfigError, SpecError, UsageError
from aiops.files import FileRefused, read_bounded
from aiops.loader import FUNCTIONS_DIR, Project
from aiops.spec import FunctionSpec, Limits, ProviderLimits, ProvidersFile, TestCase
from aiops.yamlsrc import MAX_RECORDING_BYTES

CASSETTES_DIR = "cassettes"
REPLAY_KEY = "aiops-replay-placeholder-key"  # what a missing key is set to in replay: never sent

Status = Literal["passed", "failed", "error", "miss", "no-cassette"]
REPORT_FORMAT_VERSION = 1


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CaseResult:
    """One test case of one function on one provider."""

    function: str
    provider: str
    model: str
    test: str
    status: Status
    cassette: str  # relative to the project root
    assertions: tuple[AssertionResult, ...] = ()
    message: str = ""  # why it did not pass (error, miss, no cassette)
    diff: str = ""  # a miss: the request rendered now against the nearest recording
    fix: str = ""  # the command that fixes it, when there is one
    output: Any = None
    latency_ms: float | None = None
    cost_usd: float | None = None
    recorded: int = 0  # interactions written to the cassette (--record)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def id(self) -> str:
        return f"{self.function}[{self.provider}]::{self.test}"

    @property
    def failures(self) -> tuple[AssertionResult, ...]:
        return tuple(a for a in self.assertions if not a.passed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "function": self.function, "provider": self.provider, "model": self.model,
            "test": self.test, "status": self.status, "cassette": self.cassette,
            "message": self.message, "diff": self.diff, "fix": self.fix,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 10),
            "recorded": self.recorded,
            "output": self.output, "assertions": [a.as_dict() for a in self.assertions],
        }


@dataclass(frozen=True, kw_only=True)
class GoldenReport:
    mode: Literal["replay", "record"]
    results: tuple[CaseResult, ...]
    duration_s: float = 0.0
    skipped: tuple[str, ...] = ()  # why selected functions ran no case

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.results)

    def counts(self) -> dict[str, int]:
        c = Counter(r.status for r in self.results)
        return {s: c.get(s, 0) for s in ("passed", "failed", "error", "miss", "no-cassette")}

    def summary(self) -> str:
        """`4 passed, 1 failed of 5 in 0.31s (replay)`."""
        if not self.results:
            return "No golden tests ran."
        parts = [f"{n} {status}" for status, n in self.counts().items() if n]
        return (f"{', '.join(parts)} of {len(self.results)} in {self.duration_s:.2f}s "
                f"({self.mode})")

    def as_dict(self) -> dict[str, Any]:
        return {"format_version": REPORT_FORMAT_VERSION, "mode": self.mode, "ok": self.ok,
                "counts": self.counts(), "duration_s": round(self.duration_s, 3),
                "skipped": list(self.skipped), "results": [r.as_dict() for r in self.results]}


# --- the plan (pure) -------------------------------------------------------------------------


def matrix(spec: FunctionSpec) -> tuple[str, ...]:
    """The providers a function is tested on: `test_providers`, else its provider and its
    fallbacks' providers, in order, each once."""
    if spec.test_providers:
        return tuple(dict.fromkeys(spec.test_providers))
    return tuple(dict.fromkeys([spec.provider, *(f.provider for f in spec.fallbacks)]))


def variant_for(spec: FunctionSpec, provider: str, *, replay: bool) -> FunctionSpec:
    """`spec` as it runs on `provider` alone (see the module docstring)."""
    update: dict[str, Any] = {"fallbacks": ()}
    if provider != spec.provider:
        fallback = next((f for f in spec.fallbacks if f.provider == provider), None)
        update["provider"] = provider
        if fallback is not None:
            update["model"] = fallback.model
            # as the runner does: a fallback that sets nothing runs with the function's settings
            own = fallback.configuration
            update["configuration"] = own if own is not None and own.model_dump(
                exclude_none=True) else spec.configuration
    if replay:
        update["retry"] = spec.retry.model_copy(update={"max_attempts": 1})
        update["limits"] = Limits(max_input_bytes=spec.limits.max_input_bytes,
                                  max_prompt_bytes=spec.limits.max_prompt_bytes)
    return spec.model_copy(update=update)


def cassette_path(function: str, provider: str, test: str) -> str:
    """`functions/<name>/cassettes/<provider>/<test>.yaml`, relative to the project root."""
    return f"{FUNCTIONS_DIR}/{function}/{CASSETTES_DIR}/{provider}/{test}.yaml"


@dataclass(frozen=True, kw_only=True)
class Case:
    function: str
    provider: str
    spec: FunctionSpec  # the variant that runs (see `variant_for`)
    test: TestCase
    cassette: str

    def record_command(self) -> str:
        return f"aiops test {self.function} --provider {self.provider} --record"


def select_cases(project: Project, names: Sequence[str] = (), provider: str | None = None,
                 *, replay: bool = True) -> tuple[list[Case], list[str]]:
    """The cases to run, and a note for every selected function that runs none."""
    if not project.ok:
        raise SpecError([d for d in project.diagnostics if d.is_error])
    unknown = [n for n in names if n not in project.functions]
    if unknown:
        known = ", ".join(sorted(project.functions)) or "none"
        raise UsageError(f"no function named {', '.join(unknown)} (functions: {known})")
    chosen = list(names) if names else sorted(project.functions)
    if provider is not None and not any(
            provider in matrix(project.functions[n].spec) for n in chosen):
        raise UsageError(f"no selected function is tested on provider `{provider}`; "
                         "a function's matrix is its provider, its fallbacks' providers, "
                         "or `test_providers`")
    cases: list[Case] = []
    skipped: list[str] = []
    for name in chosen:
        spec = project.functions[name].spec
        if not spec.tests:
            skipped.append(f"{name}: no tests")
            continue
        twice = sorted(t for t, n in Counter(t.name for t in spec.tests).items() if n > 1)
        if twice:  # a test's name is its cassette's: recording one would drop the other's
            raise UsageError(f"{name}: two tests are named `{twice[0]}`, and a test's name "
                             "names its cassette; rename one (`aiops validate` lists them)")
        for p in matrix(spec):
            if provider is not None and p != provider:
                continue
            variant = variant_for(spec, p, replay=replay)
            cases.extend(Case(function=name, provider=p, spec=variant, test=t,
                              cassette=cassette_path(name, p, t.name)) for t in spec.tests)
    return cases, skipped


# --- running ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What the runner returned for one case: an output, or an error."""

    output: Any = None
    error: str | None = None
    latency_ms: float | None = None
    cost_usd: float | None = None


Executor = Callable[[FunctionSpec, dict[str, Any]], Awaitable[Outcome]]
ExecutorFactory = Callable[[ProvidersFile, Mapping[str, str]], Executor]


def _key_vars(providers: ProvidersFile, used: set[str]) -> dict[str, list[str]]:
    """The environment variables holding each used provider's secrets."""
    from aiops.providers import secret_env_names

    return {name: secret_env_names(providers.providers[name]) for name in sorted(used)
            if name in providers.providers}


def _require_keys(env: Mapping[str, str], providers: ProvidersFile, used: set[str]) -> None:
    missing = [f"{var} ({name})" for name, names in _key_vars(providers, used).items()
               for var in names if not env.get(var)]
    if missing:
        raise ConfigError(
            f"--record calls the providers and needs their keys: set {', '.join(missing)} "
            "(or point AIOPS_<PROVIDER>_BASE_URL at a mock provider and set dummy keys); "
            "without --record, tests replay their cassettes and need no key")


def _replay_env(env: Mapping[str, str], providers: ProvidersFile, used: set[str]) -> dict[str, str]:
    """The environment for replay: a placeholder for each missing key (never sent anywhere,
    because nothing is sent), so that replay needs no secret."""
    out = dict(env)
    for names in _key_vars(providers, used).values():
        for var in names:
            if not out.get(var):
                out[var] = REPLAY_KEY
    return out


def _rewrite(providers: ProvidersFile, provider: str, env: Mapping[str, str]) -> Any:
    from aiops.cassettes import Rewrite
    from aiops.providers import DEFAULT_BASE_URLS, resolve_base_url

    spec = providers.providers.get(provider)
    if spec is None:
        return None
    canonical = (spec.base_url or DEFAULT_BASE_URLS.get(spec.type, "")).rstrip("/")
    used = resolve_base_url(provider, spec, env) or canonical
    if not canonical or used == canonical:
        return None
    return Rewrite(used=used, canonical=canonical)


def run_golden(root: Path, project: Project, *, names: Sequence[str] = (),
               provider: str | None = None, record: bool = False,
               env: Mapping[str, str] | None = None,
               executor_factory: ExecutorFactory | None = None) -> GoldenReport:
    """Run the selected golden tests; replay unless `record`."""
    started = time.perf_counter()
    cases, skipped = select_cases(project, names, provider, replay=not record)
    if project.providers is None:
        raise UsageError("providers.yaml is missing; golden tests run through its providers")
    providers = project.providers
    if not record:  # nothing is sent: provider-wide rate limits would only slow replay down
        providers = ProvidersFile(providers={
            name: p.model_copy(update={"limits": ProviderLimits()})
            for name, p in providers.providers.items()})
    base_env = dict(os.environ if env is None else env)
    used = {c.provider for c in cases}
    if record:
        _require_keys(base_env, providers, used)
    else:
        base_env = _replay_env(base_env, providers, used)
    factory = executor_factory or default_executor_factory
    results = asyncio.run(_run_cases(root, cases, providers, base_env, record, factory))
    return GoldenReport(mode="record" if record else "replay", results=tuple(results),
                        duration_s=time.perf_counter() - started, skipped=tuple(skipped))


async def _run_cases(root: Path, cases: list[Case], providers: ProvidersFile,
                     env: dict[str, str], record: bool,
                     factory: ExecutorFactory) -> list[CaseResult]:
    execute = factory(providers, env)
    results = []
    try:
        for case in cases:  # one at a time: vcrpy patches HTTP process-wide
            results.append(await _run_case(root, case, providers, env, record, execute))
    finally:
        close = getattr(execute, "aclose", None)
        if close is not None:
            await close()
    return results


async def _run_case(root: Path, case: Case, providers: ProvidersFile, env: Mapping[str, str],
                    record: bool, execute: Executor) -> CaseResult:
    from vcr.errors import CannotOverwriteExistingCassetteException

    from aiops.cassettes import (
        HEADER_COMMENT,
        CassetteFormatError,
        ForeignCassette,
        explain_miss,
        use_cassette,
    )

    path = root / case.cassette
    common: dict[str, Any] = {"function": case.function, "provider": case.provider,
                              "model": case.spec.model, "test": case.test.name,
                              "cassette": case.cassette}
    if not record and not os.path.lexists(path):  # anything else is read, or refused, below
        return CaseResult(**common, status="no-cassette",
                          message=f"no cassette recorded for this test on `{case.provider}` "
                                  f"({case.cassette})",
                          fix=f"record it: {case.record_command()} (needs the provider's key)")
    before: bytes | None = None
    if record and os.path.lexists(path):  # restored if the recording fails
        try:
            before = read_bounded(path, MAX_RECORDING_BYTES, within=root)
        except FileRefused as exc:
            return CaseResult(**common, status="error", message=f"{case.cassette}: {exc.reason}",
                              fix=exc.fix)
    comment = HEADER_COMMENT.format(function=case.function, provider=case.provider)
    started = time.perf_counter()
    try:
        secrets = tuple(env[var] for names in _key_vars(providers, {case.provider}).values()
                        for var in names if env.get(var))
        with use_cassette(path, record=record, rewrite=_rewrite(providers, case.provider, env),
                          comment=comment, secrets=secrets, within=root) as session:
            try:
                outcome = await execute(case.spec, dict(case.test.input))
            except AiopsError as exc:
                outcome = Outcome(error=str(exc))
            except CannotOverwriteExistingCassetteException:  # a miss: see `session.misses`
                outcome = Outcome(error="the request is not in the cassette")
    except CassetteFormatError as exc:
        fix = f"delete it and record it again: {case.record_command()}"
        message = f"{case.cassette}{exc.where}: {exc}"
        if isinstance(exc, ForeignCassette):  # one line that says what to do, as well
            message += f"; {fix}"
        return CaseResult(**common, status="error", message=message, fix=fix)
    latency_ms = outcome.latency_ms if outcome.latency_ms is not None else (
        (time.perf_counter() - started) * 1000)
    if record and outcome.error is not None:
        _restore(path, before)  # a failed recording leaves the cassette as it was
    if session.misses:
        miss = session.misses[0]
        return CaseResult(
            **common, status="miss",
            message=("the request rendered now is not in the cassette: the prompt, model, "
                     "settings or schema changed since it was recorded"),
            diff=explain_miss(miss, session.loaded),
            fix=f"if the change is intended, re-record: {case.record_command()}")
    if outcome.error is not None:
        return CaseResult(**common, status="error", message=outcome.error,
                          latency_ms=latency_ms, recorded=0)
    observed = Observed(output=outcome.output, output_schema=case.spec.output_schema,
                        latency_ms=latency_ms, cost_usd=outcome.cost_usd)
    checks = evaluate_all(case.test.expect, observed)
    return CaseResult(**common, status="passed" if all(c.passed for c in checks) else "failed",
                      assertions=checks, output=outcome.output, latency_ms=latency_ms,
                      cost_usd=outcome.cost_usd, recorded=len(session.recorded))


def _restore(path: Path, before: bytes | None) -> None:
    if before is None:
        if path.is_file():
            path.unlink()
    else:
        path.write_bytes(before)


class _SpecStore:
    """The runner's store over the working tree's spec: no database, logs dropped, budgets
    never spent (golden tests check behaviour, not quotas)."""

    def __init__(self, spec: FunctionSpec) -> None:
        from aiops.fingerprint import behaviour_content
        from aiops.records import DeployedVersion

        self.version = DeployedVersion(
            function_id=f"golden:{spec.name}", version_id=f"golden:{spec.name}@{spec.version}",
            name=spec.name, version=spec.version, content=behaviour_content(spec),
            git_commit=None, status=spec.status, limits=spec.limits.model_dump(mode="json"),
            access=spec.access.model_dump(mode="json"))

    def resolve(self, name: str, selector: str | None = None) -> Any:
        return self.version

    def insert_logs(self, rows: list[Any]) -> None:
        pass

    def sync_budget_lease(self, sync: Any, size: Any) -> Any:
        """Every lease finds the day's budget untouched: quotas never run out here, and a
        call that could never fit the budget is refused as it would be when deployed."""
        from aiops.budgets import Amount, Pool

        pool = Pool(used=Amount(), others=Amount(), held=Amount())
        return Pool(used=pool.used, others=pool.others, held=size(pool))


def default_executor_factory(providers: ProvidersFile, env: Mapping[str, str]) -> Executor:
    """The real runner (`aiops.runner.Runner`), in process, over the working tree's spec.

    A runner per case: each case is its own spec variant, with fresh provider clients and
    in-memory rate limits (never a shared limiter: AIOPS_RATE_LIMIT_URL is ignored here)."""
    from aiops.runner import Runner

    run_env = {k: v for k, v in env.items() if k != "AIOPS_RATE_LIMIT_URL"}

    async def execute(spec: FunctionSpec, values: dict[str, Any]) -> Outcome:
        runner = Runner(store=_SpecStore(spec), providers=providers, env=run_env,
                        actor="aiops-test")
        try:
            execution = await runner.run(f"{spec.name}@{spec.version}", values)
        finally:
            await runner.aclose()
        if execution.error is not None:
            return Outcome(error=execution.error.message, latency_ms=execution.latency_ms,
                           cost_usd=execution.cost_usd)
        return Outcome(output=execution.output, latency_ms=execution.latency_ms,
                       cost_usd=execution.cost_usd)

    return execute
