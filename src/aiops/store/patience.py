"""Waiting for a locked or unreachable database, within one bound: the retry loop of every
write that must not fail at the first busy moment (log rows, budget leases).

`Patience(engine, url, seconds, lock_timeout_s)(work)` runs `work(deadline)` until it
succeeds, or until the database has been failing for `seconds` (PATIENCE_S) in all:
- each transaction `work` opens with `transaction(deadline)` waits for a lock at most
  min(`lock_timeout_s`, what is left of the patience): SQLite's busy timeout, PostgreSQL's
  lock_timeout, set for that transaction (a statement sent alone is bounded by its
  connection's own, the store's lock timeout);
- a try that fails because the database was locked or unreachable is repeated after a pause
  (50 ms doubling to 2 s), never past the deadline;
so the whole wait stays within `seconds` (plus the time the last statement takes to fail).
Then it raises LockBusy (locked) or DatabaseUnavailable (unreachable). After an outage that long,
later calls wait at most AFTER_OUTAGE_S each until one succeeds, so that a dead database does
not stall a batch call after call (and a short lock, as when the database answers again and
other writers queue, does not fail them). An error that is not about the database
being busy (a refused value, a missing table) is raised at once, as it is. One Patience per
Store: its log rows and its budget leases see the same outage.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from sqlalchemy.engine import Connection, Engine

from aiops.errors import AiopsError, DatabaseUnavailable, LockBusy
from aiops.store.engine import (
    UNPINGED,
    driver_detail,
    is_lock_timeout,
    is_transient,
    pg_lock_ms,
    redact,
)

PATIENCE_S = 120.0  # how long writes wait for a locked or unreachable database, in all
AFTER_OUTAGE_S = 1.0  # how long each call waits once an outage has outlasted the patience
_FIRST_PAUSE_S, _MAX_PAUSE_S = 0.05, 2.0

T = TypeVar("T")


class Patience:
    """Bounded retries of one database's writes (see the module docstring)."""

    def __init__(self, engine: Engine, url: str, seconds: float = PATIENCE_S,
                 lock_timeout_s: float = 30.0) -> None:
        self.engine = engine
        self.url = url
        self.seconds = seconds
        self.lock_timeout_s = lock_timeout_s
        self._outage_since: float | None = None  # when the database last started failing

    def __call__(self, work: Callable[[float], T]) -> T:
        """`work(deadline)` (a time.monotonic() value), retried while the database is busy
        or unreachable and the patience lasts."""
        now = time.monotonic()
        since = now if self._outage_since is None else self._outage_since
        deadline = max(since + self.seconds, now + min(self.seconds, AFTER_OUTAGE_S))
        pause = _FIRST_PAUSE_S
        while True:
            started = time.monotonic()
            try:
                result = work(deadline)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                if self._outage_since is None:
                    self._outage_since = started
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self.gave_up(exc) from None
                time.sleep(min(pause, left))
                pause = min(pause * 2, _MAX_PAUSE_S)
                continue
            self._outage_since = None
            return result

    @contextlib.contextmanager
    def transaction(self, deadline: float, *, alone: bool = False) -> Iterator[Connection]:
        """A connection in a write transaction whose lock waits end by `deadline` and last at
        most `lock_timeout_s` (SQLite: BEGIN IMMEDIATE, the write lock taken up front).

        `alone`: the caller sends one statement. On PostgreSQL, when the connection's own
        lock timeout is the wait (`aiops.store.engine`: it is the engine's, and the patience
        is not running out), the statement is its own transaction: no BEGIN and no COMMIT,
        one round trip where a transaction takes three."""
        wait_s = max(0.0, min(self.lock_timeout_s, deadline - time.monotonic()))
        # No ping before the write: a dead connection is retried as any lost one (UNPINGED).
        unpinged = UNPINGED.set(True)
        try:
            connection = self.engine.connect()
        finally:
            UNPINGED.reset(unpinged)
        with connection as conn:
            if conn.dialect.name == "sqlite":
                conn = conn.execution_options(sqlite_begin="IMMEDIATE", sqlite_busy_s=wait_s)
                with conn.begin():
                    yield conn
                return
            # PostgreSQL: BEGIN and the transaction's lock_timeout in one round trip (the
            # driver would send its own BEGIN first, a round trip of its own on every log
            # write): the connection in autocommit mode, the transaction begun here; the
            # driver's commit and rollback end it as usual (they act on the server's
            # transaction status), and the pool gives the connection back as it was.
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            wait_ms = pg_lock_ms(wait_s)
            if alone and conn.info.get("lock_timeout_ms") == wait_ms:
                yield conn
                return
            with conn.begin():
                conn.exec_driver_sql(f"BEGIN; SET LOCAL lock_timeout = '{wait_ms}ms'")
                yield conn

    def gave_up(self, exc: BaseException) -> AiopsError:
        """What to tell the user when the patience ran out on `exc`."""
        if is_lock_timeout(exc):
            return LockBusy(f"the database {redact(self.url)} stayed locked by another writer "
                            f"(an `aiops apply` in progress?) for {self.seconds:g} s")
        return DatabaseUnavailable(f"the database {redact(self.url)} stayed unreachable for "
                              f"{self.seconds:g} s: {driver_detail(exc)}")
