"""How `aiops run` ends, single or batch: signals, closing the runner, and the exit code when
several things went wrong.

- **Signals** (`Signals`): the first SIGINT or SIGTERM calls `on_first` (a batch stops taking
  lines; a single run cancels its call, whose log row then says so), the second sets
  `cancel`, a third restores the default handlers and re-raises (exit at once).
- **Closing** (`Runner.close`): every step is tried whatever fails before it: log rows
  flushed, budget leases settled and given back, clients closed. What failed is reported
  (`report`) after the results and the summary, never instead of them.
- **The exit code** (`exit_code`): every failure is reported, each on its own `Error:` line;
  the code is that of the first of these that applies:
  1. interrupted by a signal: 128 + its number (130 SIGINT, 143 SIGTERM); stdout closed by
     its reader: 141 (no message, like other Unix tools);
  2. the output could not be written (disk full, an I/O error): 1, results are missing;
  3. an execution failed: its code (3 to 7, or 1), in a batch the first failed line's, in
     file order;
  4. the results were all delivered, but their log rows or what they cost could not be
     recorded (`LogWriteError`, `BudgetSettleError`): 8.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence

from aiops.cli import EXIT_BROKEN_PIPE, say, say_error
from aiops.errors import AiopsError


class Signals:
    """SIGINT and SIGTERM while a run goes on (see the module docstring)."""

    def __init__(self, on_first: Callable[[int], None]) -> None:
        self.cancel = asyncio.Event()
        self.received: int | None = None
        self._count = 0
        self._on_first = on_first
        self._installed: list[int] = []

    def __enter__(self) -> Signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._handle, sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                continue
            self._installed.append(sig)
        return self

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed.clear()

    @property
    def name(self) -> str | None:
        return None if self.received is None else signal.Signals(self.received).name

    def _handle(self, sig: int) -> None:
        self._count += 1
        if self._count == 1:
            self.received = sig
            self._on_first(sig)
        elif self._count == 2:
            self.cancel.set()
        else:
            self.__exit__()
            signal.raise_signal(sig)


def report(log_warnings: Sequence[str], failures: Sequence[AiopsError]) -> None:
    """After the results: the log rows stored without their values, then every failure."""
    for warning in log_warnings:
        say(f"Warning: {warning}", err=True, one_line=True)
    for failure in failures:
        say_error(failure)


def exit_code(*, received: int | None, output: Exception | None, failed: int,
              records: Sequence[AiopsError]) -> int:
    """The exit code of a run (the order of the module docstring). `received`: the signal
    that interrupted it; `output`: why the output could not be written; `failed`: the code
    of the (first) failed execution, 0 if none; `records`: what closing the runner could not
    record."""
    if received is not None:
        return 128 + received
    if isinstance(output, BrokenPipeError):
        return EXIT_BROKEN_PIPE
    if output is not None:
        return 1
    if failed:
        return failed
    return records[0].exit_code if records else 0
