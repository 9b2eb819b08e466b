"""What the runner tells monitoring about each execution (DESIGN §8): an observer is told
when an execution starts, when each of its provider calls starts and ends, and when it ends.

    Observer.execution(function, version, log_id) -> Watch | None   at the start
    Watch.attempt(provider, model, request)       -> Call | None    before a provider call
    Call.done(attempt, completion)                                  after it (its Attempt)
    Watch.done(execution)                                           at the end, once

Two kinds of observers:
- process-wide ones, `add()`ed once (the Prometheus counters of `aiops serve`,
  `aiops.metrics`): every Runner of the process tells them, so an execution is counted once
  whichever route or verb ran it;
- a Runner's own (`Runner(observers=...)`; the OpenTelemetry tracer its environment switches
  on, `aiops.tracing`).

With no observer the runner makes no call here past one check of an empty tuple. An observer
must not raise and must not block: it runs inside the execution, on the event loop. A call
that was started and never ended (the execution was cancelled mid-call) is left to the
Watch's `done`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from aiops.providers import Completion, CompletionRequest
    from aiops.runner import Attempt, Execution


class Call(Protocol):
    def done(self, attempt: Attempt, completion: Completion | None) -> None: ...


class Watch(Protocol):
    def attempt(self, provider: str, model: str, request: CompletionRequest) -> Call | None: ...

    def done(self, execution: Execution) -> None: ...


class Observer(Protocol):
    def execution(self, function: str, version: str, log_id: str) -> Watch | None: ...


_process: tuple[Observer, ...] = ()


def add(observer: Observer) -> None:
    """Tell `observer` about every execution of this process from now on (once, however
    often it is added)."""
    global _process
    if observer not in _process:
        _process = (*_process, observer)


def remove(observer: Observer) -> None:
    global _process
    _process = tuple(o for o in _process if o is not observer)


def process_observers() -> tuple[Observer, ...]:
    return _process


def watch(observers: Sequence[Observer], function: str, version: str,
          log_id: str) -> Watch | None:
    """The watch of one execution over `observers` (None: none of them watches it)."""
    watches = [w for o in observers if (w := o.execution(function, version, log_id))
               is not None]
    if not watches:
        return None
    return watches[0] if len(watches) == 1 else _Watches(tuple(watches))


class _Watches:
    """Several observers' watches of one execution, told in order."""

    def __init__(self, watches: tuple[Watch, ...]) -> None:
        self.watches = watches

    def attempt(self, provider: str, model: str, request: CompletionRequest) -> Call | None:
        calls = [c for w in self.watches if (c := w.attempt(provider, model, request))
                 is not None]
        if not calls:
            return None
        return calls[0] if len(calls) == 1 else _Calls(tuple(calls))

    def done(self, execution: Execution) -> None:
        for w in self.watches:
            w.done(execution)


class _Calls:
    def __init__(self, calls: tuple[Call, ...]) -> None:
        self.calls = calls

    def done(self, attempt: Attempt, completion: Completion | None) -> None:
        for c in self.calls:
            c.done(attempt, completion)
