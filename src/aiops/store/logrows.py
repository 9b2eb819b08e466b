"""Log rows as both databases can store them, written so that no row depends on another.

- `storable(row)`: every value either database refuses is normalised first, the same way on
  both, and listed in the row's `metadata._normalised`: U+0000 and lone surrogates in text
  and keys become U+FFFD; NaN and Infinity inside JSON become null; the integer columns hold
  PostgreSQL's `integer` range (a value outside it is stored as null; the attempts in
  metadata keep what the provider reported); the float columns hold finite numbers; the text
  columns are cut to their declared length; what JSON cannot represent is replaced by a note.
  Integers inside JSON are kept exactly: both databases store them (PostgreSQL up to 131,072
  digits; Python's JSON parser refuses more than 4,300).
- `LogSink(engine, url, patience_s)(rows)`: one idempotent group insert
  (`ON CONFLICT (id) DO NOTHING`: ids are uuids known before the write, so a retry after an
  unknown outcome, such as a connection lost at COMMIT, adds no duplicate). When the database
  refuses the group, whatever its reason (a constraint, a trigger, row-level security), it is
  split in halves until the refused row is alone; that row is stored with its input, output
  and metadata replaced by an `_omitted` marker that says what the database said, and, when
  it is refused even so, reported lost by its id: no other row waits on it. When the database is locked or unreachable, the insert is retried with
  backoff for at most `patience_s` (LOG_WRITE_PATIENCE_S); after an outage that long, later
  groups are tried once each until one succeeds, so a dead database does not stall a batch
  group after group.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from aiops import fastjson
from aiops.errors import LockBusy, RuntimeFailure
from aiops.store.engine import (
    as_utc,
    db_errors,
    driver_detail,
    is_lock_timeout,
    is_missing_schema,
    is_transient,
    is_untranslatable_text,
    redact,
    refused_text,
)
from aiops.store.tables import L

LOG_WRITE_PATIENCE_S = 120.0  # how long log writes wait for a locked or unreachable database
LOG_SOURCE = "the execution's input or output"
INT_RANGE = (-(2**31), 2**31 - 1)  # `integer` on PostgreSQL (SQLite's is wider)
_JSON_COLUMNS = ("input", "output", "error", "metadata")
_TEXT_COLUMNS: dict[str, int] = {name: getattr(L.c[name].type, "length", None) or 10**9
                                 for name in ("status", "actor", "provider")}
_STATUS_LEN, _ACTOR_LEN, _PROVIDER_LEN = _TEXT_COLUMNS.values()
_REFUSED_TEXT = re.compile("[\x00\ud800-\udfff]")
_MAX_DEPTH = 500  # deeper JSON is not walked: it is replaced by a note


@dataclass(frozen=True, kw_only=True)
class LogWriteReport:
    """What a group insert could not store as given. `stored_alone`: one message per row
    stored without its values (the database refused them); `lost`: one message per row the
    database refused even without them (its function row is gone, say, or a trigger refuses
    it whatever it holds)."""

    stored_alone: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()


# --- normalising ----------------------------------------------------------------------------


def storable(row: Any) -> Any:
    """`row` (a LogRow) with what either database refuses replaced (see the module docstring);
    the row itself when nothing needs it."""
    return row if _fine(row) else _normalise(row)


def _fine(row: Any) -> bool:
    """Nothing to normalise: the common case, decided without walking the values in Python
    (the fast serializer encodes the JSON columns; one look at the bytes)."""
    low, high = INT_RANGE
    return (_plain((row.input, row.output, row.error, row.metadata))
            and _short_text(row.status, _STATUS_LEN) and _short_text(row.actor, _ACTOR_LEN)
            and _short_text(row.provider, _PROVIDER_LEN)
            and (row.input_tokens is None or low <= row.input_tokens <= high)
            and (row.output_tokens is None or low <= row.output_tokens <= high)
            and (row.execution_time is None or math.isfinite(row.execution_time))
            and (row.cost_usd is None or math.isfinite(row.cost_usd)))


def _short_text(value: str | None, length: int) -> bool:
    return value is None or (len(value) <= length and value.isascii() and "\x00" not in value)


def _normalise(row: Any) -> Any:
    notes: dict[str, None] = {}  # ordered, without repeats
    changes: dict[str, Any] = {}
    for name in _JSON_COLUMNS:
        value = getattr(row, name)
        if value is not None and not _plain(value):
            changes[name] = _clean_top(value, name, notes)
    for name, length in _TEXT_COLUMNS.items():
        value = getattr(row, name)
        if value is not None:
            clean = _clean_text(value, name, notes)
            if len(clean) > length:
                clean = clean[:length]
                notes[f"{name}: cut to {length} characters"] = None
            if clean != value:
                changes[name] = clean
    for name in ("input_tokens", "output_tokens"):
        value = getattr(row, name)
        if value is not None and not INT_RANGE[0] <= value <= INT_RANGE[1]:
            changes[name] = None
            notes[f"{name}: {_short_int(value)} is out of the column's range; stored as null"] \
                = None
    for name in ("execution_time", "cost_usd"):
        value = getattr(row, name)
        if value is not None and not math.isfinite(value):
            changes[name] = None
            notes[f"{name}: {value} is not a finite number; stored as null"] = None
    if not notes:
        return row
    metadata = dict(changes.get("metadata", row.metadata) or {})
    metadata["_normalised"] = list(notes)
    changes["metadata"] = metadata
    return replace(row, **changes)


def _plain(value: Any) -> bool:
    """Whether the value's JSON holds nothing to normalise. In the compact JSON, `\\u` (the
    fast serializer escapes only control characters, U+0000 among them; its stdlib fallback
    writes lone surrogates so), `NaN` and `Infinity` may be a refused value; a false alarm
    (the same letters in a string) only costs a closer look."""
    try:
        encoded = fastjson.dumps(value)
    except (ValueError, TypeError, RecursionError):
        return False
    return b"\\u" not in encoded and b"NaN" not in encoded and b"Infinity" not in encoded


def _clean_top(value: Any, where: str, notes: dict[str, None]) -> Any:
    try:
        return _clean(value, where, notes, 0)
    except RecursionError:
        notes[f"{where}: nested too deeply to store; replaced by a note"] = None
        return {"_omitted": "nested too deeply to store"}


def _clean(value: Any, where: str, notes: dict[str, None], depth: int) -> Any:
    if isinstance(value, str):
        return _clean_text(value, where, notes)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        notes[f"{where}: NaN or Infinity (not JSON) stored as null"] = None
        return None
    if depth >= _MAX_DEPTH:
        raise RecursionError
    if isinstance(value, dict):
        return {_clean_text(str(k), where, notes): _clean(v, where, notes, depth + 1)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v, where, notes, depth + 1) for v in value]
    try:  # what the serializer maps to JSON (a set, a date): as it maps it
        return _clean(fastjson.loads(fastjson.dumps(value)), where, notes, depth + 1)
    except (ValueError, TypeError):
        notes[f"{where}: a {type(value).__name__} is not JSON; replaced by its name"] = None
        return f"<{type(value).__name__}>"


def _clean_text(value: str, where: str, notes: dict[str, None]) -> str:
    if "\x00" not in value and value.isascii():
        return value
    clean = _REFUSED_TEXT.sub("\ufffd", value)
    if clean != value:
        notes[f"{where}: U+0000 or lone surrogates replaced by U+FFFD"] = None
    return clean


def _short_int(value: int) -> str:
    digits = len(str(abs(value))) if abs(value) < 10**4000 else 4000
    return str(value) if digits <= 24 else f"an integer of {digits} digits"


def alone(row: Any, reason: str) -> Any:
    """The row as stored when the database refuses its values: the scalar columns and the
    error kept (its message ASCII-escaped), input, output and metadata replaced by a marker
    saying why, and no version reference."""
    marker = {"_omitted": f"the database refused this row's values: {reason}"}
    metadata: dict[str, Any] = dict(marker)
    for key in ("version", "git_commit", "prompt_hash", "model"):
        if isinstance((row.metadata or {}).get(key), str):
            metadata[key] = row.metadata[key]
    error = row.error
    if error is not None:
        error = {"type": str(error.get("type", "AiopsError")) if isinstance(error, dict)
                 else "AiopsError",
                 "message": ascii(error.get("message") if isinstance(error, dict) else error)
                 [:2000],
                 "exit_code": error.get("exit_code") if isinstance(error, dict) else None}
    # version_id goes too (it may name a version that is gone); function_id is required.
    return storable(replace(row, input=marker, output=marker if row.output is not None else None,
                            metadata=metadata, error=error, version_id=None))


# --- writing --------------------------------------------------------------------------------


def _values(row: Any) -> dict[str, Any]:
    return {"id": uuid.UUID(row.id), "function_id": uuid.UUID(row.function_id),
            "version_id": uuid.UUID(row.version_id) if row.version_id else None,
            "input": row.input, "output": row.output, "error": row.error,
            "execution_time": row.execution_time, "status": row.status,
            "user_id": uuid.UUID(row.user_id) if row.user_id else None, "actor": row.actor,
            "created_at": as_utc(row.created_at), "metadata": row.metadata,
            "provider": row.provider, "cost_usd": row.cost_usd,
            "input_tokens": row.input_tokens, "output_tokens": row.output_tokens}


@dataclass
class _Report:
    alone: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)


class LogSink:
    """Writes groups of log rows to one database (see the module docstring)."""

    def __init__(self, engine: Engine, url: str,
                 patience_s: float = LOG_WRITE_PATIENCE_S) -> None:
        self.engine = engine
        self.url = url
        self.patience_s = patience_s
        self._outage_since: float | None = None  # when the database last started failing
        mod = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._statement = mod.insert(L).on_conflict_do_nothing(index_elements=["id"])

    def __call__(self, rows: Sequence[Any]) -> LogWriteReport:
        if not rows:
            return LogWriteReport()
        ready = [storable(r) for r in rows]
        delay = 0.05
        while True:
            report = _Report()
            try:
                self._split(ready, report)
            except Exception as exc:
                if not is_transient(exc):
                    raise self._translate(exc) from None
                now = time.monotonic()
                if self._outage_since is None:
                    self._outage_since = now
                left = self._outage_since + self.patience_s - now
                if left <= 0:
                    raise self._translate(exc) from None
                time.sleep(min(delay, left))
                delay = min(delay * 2, 2.0)
                continue
            self._outage_since = None
            return LogWriteReport(stored_alone=tuple(report.alone), lost=tuple(report.lost))

    def _insert(self, rows: Sequence[Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(self._statement, [_values(r) for r in rows])

    def _split(self, rows: Sequence[Any], report: _Report) -> None:
        """Insert `rows`; on a refusal, each half on its own, down to the refused row."""
        try:
            self._insert(rows)
            return
        except Exception as exc:
            if not _about_rows(exc):
                raise
            if len(rows) > 1:
                mid = len(rows) // 2
                self._split(rows[:mid], report)
                self._split(rows[mid:], report)
                return
            refused = exc
        self._store_alone(rows[0], refused, report)

    def _store_alone(self, row: Any, refused: Exception, report: _Report) -> None:
        """The refused row without its values, saying why in the database's words, or, when
        the database refuses those words too (a trigger that quotes the input), in its
        error code; when it refuses even that, the row is lost, and named."""
        reason = (refused_text(refused, LOG_SOURCE) if is_untranslatable_text(refused)
                  else driver_detail(refused))[:500]
        for why in (reason, _code(refused)):
            try:
                self._insert([alone(row, why)])
            except Exception as exc:
                if not _about_rows(exc):
                    raise
                continue
            report.alone.append(f"log row {row.id} was stored without its input, output and "
                                f"metadata: the database refused them ({reason})")
            return
        report.lost.append(f"log row {row.id}: the database refused it ({reason})")

    def _translate(self, exc: Exception) -> Exception:
        if is_lock_timeout(exc):
            return LockBusy(f"the database {redact(self.url)} stayed locked by another writer "
                            f"(an `aiops apply` in progress?) for {self.patience_s:g} s")
        if is_transient(exc):
            return RuntimeFailure(f"the database {redact(self.url)} stayed unreachable for "
                                  f"{self.patience_s:g} s: {driver_detail(exc)}")
        try:
            with db_errors(self.url, LOG_SOURCE):
                raise exc
        except Exception as translated:
            return translated
        raise AssertionError("unreachable")  # pragma: no cover


def _about_rows(exc: Exception) -> bool:
    """The database refused the rows' values (as opposed to being busy, or missing the
    table, which no split can help)."""
    return (isinstance(exc, sa_exc.DBAPIError) and not is_transient(exc)
            and not is_missing_schema(exc))


def _code(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None)
    return f"SQLSTATE {state}" if state else type(orig or exc).__name__
