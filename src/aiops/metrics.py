"""Prometheus metrics of `aiops serve` (DESIGN §8): what the server's executions did, counted
by an observer of the runner (`aiops.observe`), and what the database says at scrape time.

    aiops_executions_total{function,version,provider,model,outcome,error_type}
    aiops_execution_duration_seconds{function,provider,model,outcome}   latency.BOUNDS_S
    aiops_tokens_total{function,provider,model,type}      type: input | output, per attempt
    aiops_cost_usd_total{function,provider,model}         per attempt
    aiops_budget_used_ratio{function,limit}               limit: calls | usd; today (UTC)
    aiops_alerts_firing{function}                         its rules firing now

Labels are bounded: function names and versions come from the catalog, providers and models
from providers.yaml and the function files, outcome is ok or error, error_type an aiops
error class. No input, output or user id is a label. An execution that failed before any
provider answered has provider and model "" (as its log row: the provider that answered);
tokens and cost are counted per attempt, under the attempt's provider and model, failed
attempts included (they were billed).

Several worker processes: `aiops serve` sets PROMETHEUS_MULTIPROC_DIR to a fresh private
folder before any worker starts (prometheus_client reads it when first imported), each worker
writes its counters there, and a scrape answered by any worker sums the folder
(`MultiProcessCollector`). The two gauges are not kept by processes at all: the worker that
answers the scrape reads them from the database, so no multiprocess gauge mode is needed and
a dead worker leaves no stale gauge behind (its counters stay: a counter only grows).

Importing this module imports prometheus_client: only `aiops serve` does (through
`aiops.commands.metrics`), never `aiops run` or `aiops --help`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from aiops import latency

if TYPE_CHECKING:
    from aiops.providers import CompletionRequest
    from aiops.runner import Execution
    from aiops.store.gauges import FunctionGauges

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The mode prometheus_client chose when it was first imported (it reads MULTIPROC_ENV then):
# values in files shared by the processes, or in this process's memory.
MULTIPROCESS = values.ValueClass is not values.MutexValue
CONTENT_TYPE = CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=False)  # this module's own; never the default one
EXECUTIONS = Counter(
    "aiops_executions", "Executions run by this server, by how they ended.",
    ["function", "version", "provider", "model", "outcome", "error_type"], registry=REGISTRY)
DURATION = Histogram(
    "aiops_execution_duration_seconds",
    "The execution's own time (latency): everything but building provider clients.",
    ["function", "provider", "model", "outcome"], buckets=latency.BOUNDS_S, registry=REGISTRY)
TOKENS = Counter(
    "aiops_tokens", "Tokens the providers reported (or the runner estimated), per attempt.",
    ["function", "provider", "model", "type"], registry=REGISTRY)
COST = Counter(
    "aiops_cost_usd", "What the providers' calls cost, in USD, per attempt.",
    ["function", "provider", "model"], registry=REGISTRY)


class Counting:
    """The observer (`aiops.observe.Observer`) that counts every execution of the process.
    Its watch is itself: it needs nothing but the finished execution."""

    def execution(self, function: str, version: str, log_id: str) -> Counting:
        return self

    def attempt(self, provider: str, model: str, request: CompletionRequest) -> None:
        return None

    def done(self, execution: Execution) -> None:
        count(execution)


OBSERVER = Counting()


def count(ex: Execution) -> None:
    """Count one finished execution."""
    outcome = "ok" if ex.error is None else "error"
    provider, model = ex.provider or "", ex.model or ""
    EXECUTIONS.labels(ex.function, ex.version, provider, model, outcome,
                      "" if ex.error is None else type(ex.error).__name__).inc()
    DURATION.labels(ex.function, provider, model, outcome).observe(ex.latency_ms / 1000)
    for a in ex.attempts:
        if a.input_tokens:
            TOKENS.labels(ex.function, a.provider, a.model, "input").inc(a.input_tokens)
        if a.output_tokens:
            TOKENS.labels(ex.function, a.provider, a.model, "output").inc(a.output_tokens)
        if a.cost_usd:
            COST.labels(ex.function, a.provider, a.model).inc(a.cost_usd)


def exposition(gauges: Sequence[FunctionGauges],
               visible: Callable[[str], bool] | None = None) -> bytes:
    """The text exposition of every metric: the counters of every worker process, and the
    gauges of `gauges`. `visible`: the function names to show (None: all)."""
    registry = CollectorRegistry(auto_describe=False)
    source: Collector = (_MULTIPROCESS(None, os.environ[MULTIPROC_ENV]) if MULTIPROCESS
                         else REGISTRY)
    registry.register(_Only(source, visible))
    registry.register(_Gauges([g for g in gauges if visible is None or visible(g.name)]))
    return generate_latest(registry)


# Typed here: older prometheus_client releases leave its constructor unannotated.
_MULTIPROCESS: Callable[..., Any] = MultiProcessCollector


class _Only(Collector):
    """The samples of `source` whose function is visible."""

    def __init__(self, source: Collector, visible: Callable[[str], bool] | None) -> None:
        self.source, self.visible = source, visible

    def collect(self) -> Iterator[Metric]:
        for metric in self.source.collect():
            if self.visible is not None:
                seen = self.visible
                metric.samples = [s for s in metric.samples if seen(s.labels.get("function", ""))]
            yield metric


class _Gauges(Collector):
    def __init__(self, gauges: list[FunctionGauges]) -> None:
        self.gauges = gauges

    def collect(self) -> Iterator[Metric]:
        budget = GaugeMetricFamily(
            "aiops_budget_used_ratio", "Today's (UTC) use of the function's daily budget: "
            "calls made over daily_calls, USD spent over daily_budget_usd.",
            labels=["function", "limit"])
        firing = GaugeMetricFamily(
            "aiops_alerts_firing", "The function's alert rules that are firing now.",
            labels=["function"])
        for g in self.gauges:
            if g.daily_calls is not None:
                budget.add_metric([g.name, "calls"], g.calls_used / g.daily_calls)
            if g.daily_budget_usd is not None:
                budget.add_metric([g.name, "usd"], g.usd_spent / g.daily_budget_usd)
            if g.has_alerts or g.alerts_firing:
                firing.add_metric([g.name], g.alerts_firing)
        yield budget
        yield firing
