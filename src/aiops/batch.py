"""What many executions in one process need: log rows written by group commit off the event
loop (`LogWriter`), inputs shared by the workers of a batch (`taker`), and the cyclic GC
tuned while a batch runs (`batch_gc`)."""

from __future__ import annotations

import asyncio
import gc
import itertools
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from aiops import fastjson
from aiops.collector import heap_frozen
from aiops.errors import AiopsError, LogWriteError
from aiops.records import LogRow, LogWriteReport

MAX_BATCH_ROWS = 1000  # rows per group insert
MAX_BATCH_BYTES = 16 << 20  # and bytes of their values (a group is serialised whole)
MAX_PENDING_ROWS = 2_000  # rows waiting for the writer before executions wait for room
MAX_PENDING_BYTES = 64 << 20  # or bytes of their values: 2,000 rows of 2 MB inputs are 4 GB
ROW_BYTES = 1024  # what a row weighs besides its input, output and error
MAX_MESSAGES = 20  # messages kept about rows stored alone or lost (the counts are exact)


def row_bytes(row: LogRow) -> int:
    """About what a row weighs: the JSON of its input, output and error, and ROW_BYTES."""
    try:
        return ROW_BYTES + len(fastjson.dumps((row.input, row.output, row.error)))
    except (TypeError, ValueError):  # not JSON: storing it replaces it by a note
        return ROW_BYTES


class LogWriter:
    """Group commit: rows queue up while a write is in flight and go in the next group.

    Memory stays bounded when the database is slower than the executions: `room()` waits
    while `MAX_PENDING_ROWS` rows, or `MAX_PENDING_BYTES` of their values (`row_bytes`), are
    queued, and callers wait for it before they start an execution (backpressure), while
    `submit()` itself never refuses a row (an execution that ran, even one being cancelled,
    always has its row queued). A group insert takes at most `MAX_BATCH_ROWS` rows and
    `MAX_BATCH_BYTES` (and at least one row). Waiting for a locked or unreachable database,
    storing a refused row alone, and spooling rows the database did not take, are the sink's
    job (`Store.insert_logs`); a group the sink raises on is counted as not written, and
    `flush()` then raises LogWriteError (exit 8) with the count and the first reason (which
    says where spooled rows wait)."""

    def __init__(self, sink: Callable[[list[LogRow]], LogWriteReport | None], *,
                 max_batch: int = MAX_BATCH_ROWS, max_batch_bytes: int = MAX_BATCH_BYTES,
                 max_pending: int = MAX_PENDING_ROWS,
                 max_pending_bytes: int = MAX_PENDING_BYTES) -> None:
        self._sink = sink
        self._pending: deque[tuple[LogRow, int]] = deque()  # each row with its weight
        self.pending_bytes = 0
        self._task: asyncio.Task[None] | None = None
        self._max_batch = max_batch
        self._max_batch_bytes = max_batch_bytes
        self._max_pending = max_pending
        self._max_pending_bytes = max_pending_bytes
        self._waiters: list[asyncio.Future[None]] = []
        # Rows submitted, and rows written or given up (groups go in submission order): a
        # flush waits for the rows submitted before it, not for those that come while it
        # waits, which under a steady load would keep it waiting group after group.
        self._submitted = 0
        self._finished = 0
        self._flushers: list[tuple[int, asyncio.Future[None]]] = []
        self.written = 0
        self.lost = 0
        self.lost_reasons: list[str] = []  # the first MAX_MESSAGES
        self.stored_alone = 0
        self.warnings: list[str] = []  # the first MAX_MESSAGES rows stored without values

    @property
    def full(self) -> bool:
        return (len(self._pending) >= self._max_pending
                or self.pending_bytes >= self._max_pending_bytes)

    def submit(self, row: LogRow) -> None:
        weight = row_bytes(row)
        self._pending.append((row, weight))
        self.pending_bytes += weight
        self._submitted += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def room(self) -> None:
        """Wait until fewer than `max_pending` rows and `max_pending_bytes` are queued."""
        while self.full:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    async def _drain(self) -> None:
        try:
            await self._drain_groups()
        finally:  # a writer that stops, however, leaves no flush waiting
            self._wake_flushers(all_=True)

    async def _drain_groups(self) -> None:
        while self._pending:
            batch: list[LogRow] = []
            size = 0
            while self._pending and len(batch) < self._max_batch and (
                    not batch or size + self._pending[0][1] <= self._max_batch_bytes):
                row, weight = self._pending.popleft()
                batch.append(row)
                size += weight
            self.pending_bytes -= size
            try:
                report = await asyncio.to_thread(self._sink, batch)
            except Exception as exc:  # counted and raised by flush(): no row is lost silently
                reason = str(exc) if isinstance(exc, AiopsError) else f"{type(exc).__name__}: {exc}"
                self._lose(len(batch), reason)
            else:
                lost = report.lost if report is not None else ()
                alone = report.stored_alone if report is not None else ()
                self.written += len(batch) - len(lost)
                for reason in lost:
                    self._lose(1, reason)
                self.stored_alone += len(alone)
                self.warnings.extend(alone[:MAX_MESSAGES - len(self.warnings)])
            finally:
                self._finished += len(batch)
                waiters, self._waiters = self._waiters, []
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
                self._wake_flushers()

    def _wake_flushers(self, *, all_: bool = False) -> None:
        waiting = []
        for target, waiter in self._flushers:
            if all_ or target <= self._finished:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                waiting.append((target, waiter))
        self._flushers = waiting

    def _lose(self, count: int, reason: str) -> None:
        self.lost += count
        if len(self.lost_reasons) < MAX_MESSAGES and reason not in self.lost_reasons:
            self.lost_reasons.append(reason)

    async def flush(self) -> None:
        """Wait until every row submitted before the call is written or given up (in its
        group: not for rows submitted while it waits); LogWriteError if any row was given up
        (each is reported once)."""
        target = self._submitted
        while self._finished < target:
            task = self._task
            assert task is not None  # a row was submitted, so a writer was started
            if task.done():
                task.result()  # what stopped the writer (cancelled: CancelledError)
                break
            waiter = asyncio.get_running_loop().create_future()
            self._flushers.append((target, waiter))
            await waiter
        if self.lost:
            lost, reasons = self.lost, self.lost_reasons
            self.lost, self.lost_reasons = 0, []
            raise LogWriteError(f"{lost} log row(s) could not be written: {reasons[0]}"
                                + (f" (and {len(reasons) - 1} other reason(s))"
                                   if len(reasons) > 1 else ""))

    def take_warnings(self) -> list[str]:
        """Messages about rows stored without their values since the last call."""
        warnings, self.warnings = self.warnings, []
        if self.stored_alone > len(warnings):
            warnings.append(f"... {self.stored_alone - len(warnings)} more row(s) stored "
                            "without their values")
        self.stored_alone = 0
        return warnings


def taker(inputs: Iterable[Any] | AsyncIterable[Any]
           ) -> Callable[[], Awaitable[tuple[int, Any] | None]]:
    """`take()`: the next (position, input), or None at the end; safe for many workers."""
    if isinstance(inputs, AsyncIterable):
        source = aiter(inputs)
        lock = asyncio.Lock()  # an async generator cannot be advanced by two tasks at once
        positions = itertools.count()

        async def take_async() -> tuple[int, Any] | None:
            async with lock:
                try:
                    value = await anext(source)
                except StopAsyncIteration:
                    return None
            return next(positions), value

        return take_async
    pairs = enumerate(inputs)

    async def take() -> tuple[int, Any] | None:
        return next(pairs, None)

    return take


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
        _gc_froze = not heap_frozen()
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
