"""What many executions in one process need: log rows written by group commit off the event
loop (`LogWriter`), and the cyclic GC tuned while a batch runs (`batch_gc`)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from aiops.errors import RuntimeFailure
from aiops.store import LogRow


class LogWriter:
    """Group commit: rows queue up while a write is in flight and go in the next batch."""

    def __init__(self, sink: Callable[[list[LogRow]], None], max_batch: int = 1000) -> None:
        self._sink = sink
        self._pending: list[LogRow] = []
        self._task: asyncio.Task[None] | None = None
        self._max_batch = max_batch
        self.failures: list[BaseException] = []
        self.written = 0

    def submit(self, row: LogRow) -> None:
        self._pending.append(row)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = (self._pending[:self._max_batch],
                                    self._pending[self._max_batch:])
            try:
                await asyncio.to_thread(self._sink, batch)
                self.written += len(batch)
            except Exception as exc:  # kept and raised by flush(): no row is lost silently
                self.failures.append(exc)
                self._pending[:0] = batch
                return
        self.failures.clear()  # everything that failed before has been written since

    async def flush(self) -> None:
        while self._task is not None and not self._task.done():
            await self._task
        if self._pending:  # what is left, or what failed: one more try before giving up
            await self._drain()
        if self.failures:
            exc = self.failures[0]
            lost = len(self._pending)
            raise RuntimeFailure(f"{lost} log row(s) could not be written: {exc}") from exc


GC_BATCH_THRESHOLD = 50_000
_gc_batches = 0  # run_many calls in progress (they may overlap in one process)
_gc_saved = gc.get_threshold()  # the thresholds to restore when the last one ends
_gc_froze = False  # whether this module froze the heap (and so must unfreeze it)


@contextmanager
def batch_gc() -> Iterator[None]:
    """Fewer and cheaper cyclic-GC passes while a batch runs.

    An execution allocates a few hundred objects (tasks, futures, dicts), so the default
    generation-0 threshold of 700 starts a collection every few executions, and each older
    pass walks every object the process holds (~150,000 after the SDKs, SQLAlchemy and
    pydantic are imported): about a tenth of a batch's CPU (benchmarks/runner.py). While a
    batch runs, what existed before it is frozen out of the collector's sight and
    generation 0 is collected every 50,000 allocations; both are undone when the last
    batch in the process ends. A process that tunes the GC itself keeps its choices: a heap
    it froze stays frozen, and a threshold of 0 (automatic collection off) stays 0.
    """
    global _gc_batches, _gc_saved, _gc_froze
    if _gc_batches == 0:
        _gc_saved = gc.get_threshold()
        _gc_froze = gc.get_freeze_count() == 0
        if _gc_froze:
            gc.freeze()
        if _gc_saved[0] != 0:
            gc.set_threshold(max(_gc_saved[0], GC_BATCH_THRESHOLD), *_gc_saved[1:])
    _gc_batches += 1
    try:
        yield
    finally:
        _gc_batches -= 1
        if _gc_batches == 0:
            gc.set_threshold(*_gc_saved)
            if _gc_froze:
                gc.unfreeze()
