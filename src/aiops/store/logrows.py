"""Log rows as both databases can store them, written so that no row depends on another and
no row is dropped.

- `LogRow`: one execution's row (ai_function_logs).
- `storable(row)`: every value either database refuses is normalised first, the same way on
  both, and listed in the row's `metadata._normalised`: U+0000 and lone surrogates in text
  and keys become U+FFFD; NaN and Infinity inside JSON become null; the integer columns hold
  PostgreSQL's `integer` range (a value outside it is stored as null; the attempts in
  metadata keep what the provider reported); the float columns hold finite numbers; the text
  columns are cut to their declared length; what JSON cannot represent is replaced by a note.
  Integers inside JSON are kept exactly: both databases store them (PostgreSQL up to 131,072
  digits; Python's JSON parser refuses more than 4,300).
- `LogSink(patience, spool)(rows)`: one idempotent group insert (`ON CONFLICT (id) DO
  NOTHING`: ids are uuids known before the write, so a retry after an unknown outcome, such
  as a connection lost at COMMIT, adds no duplicate). When the database refuses the group,
  whatever its reason (a constraint, a trigger, row-level security), it is split in halves
  until the refused row is alone; that row is stored with its input, output and metadata
  replaced by an `_omitted` marker that says what the database said, and, when it is refused
  even so, reported lost by its id: no other row waits on it. The rows a statement inserts
  (its RETURNING: not those already there) are added to their minute and hour rollups in the
  same transaction (`aiops.store.rollups`), so each execution is counted once; on
  PostgreSQL a group of up to FOLDED_ROWS rows is one statement with its rollups, which it
  adds only when it inserted every row (otherwise a second statement adds those it did), and
  one row (a server's run) is that statement alone, its own transaction: one round trip. A
  locked or unreachable database is waited for within the store's patience
  (`aiops.store.patience`); a group still not written then goes to the `Spool`, a file the
  next command's first write (or apply) writes to the database.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy import exc as sa_exc

from aiops import fastjson
from aiops.errors import AiopsError
from aiops.files import FileRefused, read_bounded
from aiops.records import LogRow, LogWriteReport
from aiops.store.engine import (
    as_utc,
    driver_detail,
    is_missing_schema,
    is_transient,
    is_untranslatable_text,
    redact,
    refused_text,
    translate,
    upsert,
)
from aiops.store.patience import Patience
from aiops.store.rollups import add as add_rollups
from aiops.store.rollups import execution_of_row, pg_with_rollups
from aiops.store.rollups import pg_params as rollup_params
from aiops.store.tables import L
from aiops.store.users import ensure_user

LOG_SOURCE = "the execution's input or output"
INT_RANGE = (-(2**31), 2**31 - 1)  # `integer` on PostgreSQL (SQLite's is wider)
_JSON_COLUMNS = ("input", "output", "error", "metadata")
_TEXT_COLUMNS: dict[str, int] = {name: getattr(L.c[name].type, "length", None) or 10**9
                                 for name in ("status", "actor", "provider")}
_STATUS_LEN, _ACTOR_LEN, _PROVIDER_LEN = _TEXT_COLUMNS.values()
_REFUSED_TEXT = re.compile("[\x00\ud800-\udfff]")
_MAX_DEPTH = 500  # deeper JSON is not walked: it is replaced by a note


# --- normalising ----------------------------------------------------------------------------


def storable(row: LogRow) -> LogRow:
    """`row` (a LogRow) with what either database refuses replaced (see the module docstring);
    the row itself when nothing needs it."""
    return row if _fine(row) else _normalise(row)


def _fine(row: LogRow) -> bool:
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


def _normalise(row: LogRow) -> LogRow:
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


def alone(row: LogRow, reason: str) -> LogRow:
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


def _values(row: LogRow, users: dict[str | None, uuid.UUID]) -> dict[str, Any]:
    """The row's columns; `users`: the user ids of the actors of rows without `created_by`."""
    return {"id": uuid.UUID(row.id), "function_id": uuid.UUID(row.function_id),
            "version": row.version,
            "version_id": uuid.UUID(row.version_id) if row.version_id else None,
            "input": row.input, "output": row.output, "error": row.error,
            "execution_time": row.execution_time, "status": row.status,
            "created_by": uuid.UUID(row.created_by) if row.created_by else users[row.actor],
            "actor": row.actor,
            "created_at": as_utc(row.created_at), "metadata": row.metadata,
            "provider": row.provider, "cost_usd": row.cost_usd,
            "input_tokens": row.input_tokens, "output_tokens": row.output_tokens}


# A group of at most this many rows is written on PostgreSQL in one statement with its
# rollups (`_folded`): one round trip instead of two, for the few rows of a server's runs
# (and no BEGIN and COMMIT around one row's: `Patience.transaction(alone=True)`).
FOLDED_ROWS = 16
_COLUMNS = ("id", "function_id", "version", "version_id", "input", "output", "error",
            "execution_time", "status", "created_by", "actor", "created_at", "metadata",
            "provider", "cost_usd", "input_tokens", "output_tokens")  # `_values`'
_FOLDED: dict[int, Any] = {}


def _folded(n: int) -> Any:
    """PostgreSQL's insert of `n` rows (`{column}_{i}`) and, when it inserted them all (a
    retry may find some there), their rollups (`aiops.store.rollups.pg_with_rollups`), in
    one statement; it answers the ids it inserted, as the group insert does."""
    found = _FOLDED.get(n)
    if found is None:
        rows = ", ".join("(" + ", ".join(f":{c}_{i}" for c in _COLUMNS) + ")"
                         for i in range(n))
        insert = (f"inserted AS (INSERT INTO {L.name} ({', '.join(_COLUMNS)}) VALUES {rows} "
                  "ON CONFLICT (id) DO NOTHING RETURNING id)")
        sql = pg_with_rollups(insert, "(SELECT count(*) FROM inserted) = :rows")
        found = _FOLDED[n] = text(f"{sql} SELECT id FROM inserted").bindparams(
            *(bindparam(f"{c}_{i}", type_=L.c[c].type) for i in range(n) for c in _COLUMNS))
    return found


@dataclass
class _Report:
    alone: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)


class LogSink:
    """Writes groups of log rows to one database (see the module docstring); `spool`: where
    rows go that the database did not take (None: they are reported lost)."""

    def __init__(self, patience: Patience, spool: Spool | None = None) -> None:
        self.patience = patience
        self.url = patience.url
        self.spool = spool
        self._replayed = spool is None
        self._statement = upsert(patience.engine.dialect.name, L).on_conflict_do_nothing(
            index_elements=["id"]).returning(L.c.id)
        self._users: dict[str | None, uuid.UUID] = {}  # actor -> its user row, once known

    def __call__(self, rows: Sequence[LogRow]) -> LogWriteReport:
        report = _Report()
        if not self._replayed:  # the first write of this process writes earlier ones too
            self._replayed = True
            self.replay(report)
        if rows:
            ready = [storable(r) for r in rows]
            try:
                self._write(ready, report)
            except Exception as exc:
                raise self._not_written(ready, exc) from None
        return LogWriteReport(stored_alone=tuple(report.alone), lost=tuple(report.lost))

    def replay(self, report: _Report) -> None:
        """Write the rows spooled by earlier commands (one stat when there are none); a file
        is deleted once its rows are in, and kept when the database still does not answer."""
        assert self.spool is not None
        for path in self.spool.files():
            try:
                rows = self.spool.load(path)
            except ValueError as exc:
                report.lost.append(str(exc))
                continue
            try:
                self._write(rows, report)
            except Exception:  # still unwritable: kept for the next command
                return
            path.unlink(missing_ok=True)

    def _write(self, rows: Sequence[LogRow], report: _Report) -> None:
        def attempt(deadline: float) -> _Report:
            self._resolve_users(rows, deadline)
            tried = _Report()  # a try cut short by a lock starts its report again
            self._split(rows, tried, deadline)
            return tried

        tried = self.patience(attempt)
        report.alone += tried.alone
        report.lost += tried.lost

    def _resolve_users(self, rows: Sequence[LogRow], deadline: float) -> None:
        """The user rows of the actors of `rows` that name none, found or created once per
        process (in a transaction of their own: an id is kept once its row is committed),
        so that logging adds no round trip per execution."""
        missing = {r.actor for r in rows if r.created_by is None} - self._users.keys()
        if not missing:
            return
        with self.patience.transaction(deadline) as conn:
            found = {actor: ensure_user(conn, actor) for actor in missing}
        self._users.update(found)

    def _insert(self, rows: Sequence[LogRow], deadline: float) -> None:
        """Insert `rows` and add those it inserted (not those a retry finds already there)
        to their rollups, in one transaction (`aiops.store.rollups`)."""
        folded = self.patience.engine.dialect.name == "postgresql" and len(rows) <= FOLDED_ROWS
        # One row in one statement is all or nothing: that statement is the transaction.
        with self.patience.transaction(deadline, alone=folded and len(rows) == 1) as conn:
            if folded:
                params: dict[str, Any] = {f"{c}_{i}": v for i, r in enumerate(rows)
                                          for c, v in _values(r, self._users).items()}
                params.update(rollup_params([execution_of_row(r) for r in rows]),
                              rows=len(rows))
                inserted = conn.execute(_folded(len(rows)), params).scalars().all()
                if 0 < len(inserted) < len(rows):  # some were there: it added no rollups
                    add_rollups(conn, rows, inserted)
                return
            # Read whole before anything else runs: SQLite cannot commit with a statement
            # still open.
            inserted = conn.execute(self._statement,
                                    [_values(r, self._users) for r in rows]).scalars().all()
            add_rollups(conn, rows, inserted)

    def _split(self, rows: Sequence[LogRow], report: _Report, deadline: float) -> None:
        """Insert `rows`; on a refusal, each half on its own, down to the refused row."""
        try:
            self._insert(rows, deadline)
            return
        except Exception as exc:
            if not _about_rows(exc):
                raise
            if len(rows) > 1:
                mid = len(rows) // 2
                self._split(rows[:mid], report, deadline)
                self._split(rows[mid:], report, deadline)
                return
            refused = exc
        self._store_alone(rows[0], refused, report, deadline)

    def _store_alone(self, row: LogRow, refused: Exception, report: _Report,
                     deadline: float) -> None:
        """The refused row without its values, saying why in the database's words, or, when
        the database refuses those words too (a trigger that quotes the input), in its
        error code; when it refuses even that, the row is lost, and named."""
        reason = (refused_text(refused, LOG_SOURCE) if is_untranslatable_text(refused)
                  else driver_detail(refused))[:500]
        for why in (reason, _code(refused)):
            try:
                self._insert([alone(row, why)], deadline)
            except Exception as exc:
                if not _about_rows(exc):
                    raise
                continue
            report.alone.append(f"log row {row.id} was stored without its input, output and "
                                f"metadata: the database refused them ({reason})")
            return
        report.lost.append(f"log row {row.id}: the database refused it ({reason})")

    def _not_written(self, rows: Sequence[LogRow], exc: Exception) -> Exception:
        """The error to raise for a group the database did not take, once its rows are in the
        spool (if there is one)."""
        if isinstance(exc, sa_exc.DBAPIError):
            exc = translate(exc, self.url, LOG_SOURCE)
        if self.spool is None or not isinstance(exc, AiopsError):
            return exc
        try:
            self.spool.save(rows)
        except OSError as failed:
            return type(exc)(f"{exc}; they could not be saved to {self.spool.folder} either "
                             f"({failed.strerror or failed})")
        return type(exc)(f"{exc}; they were saved to {self.spool.folder}, and the next "
                         "`aiops run` or `aiops apply` of this project writes them")


def _about_rows(exc: Exception) -> bool:
    """The database refused the rows' values (as opposed to being busy, or missing the
    table, which no split can help)."""
    return (isinstance(exc, sa_exc.DBAPIError) and not is_transient(exc)
            and not is_missing_schema(exc))


def _code(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None)
    return f"SQLSTATE {state}" if state else type(orig or exc).__name__


# --- the spool ------------------------------------------------------------------------------


# The largest spool file read back: a group holds at most 16 MiB of values in 1,000 rows
# (aiops.batch), and one row alone at most an input of 10 MiB and its output; a file past
# this bound was not written by a spool.
SPOOL_FILE_BYTES = 256 << 20


class Spool:
    """Log rows the database did not take within the patience, kept on disk until a later
    command writes them: one file per group, `<uuid>.jsonl`, the normalised rows as JSON lines
    (what the row holds, nothing more), written to a temporary name and renamed (a reader never
    sees half a file), readable by the owner only. `folder` is per database
    (`spool_folder`), so rows go back only where they were meant to go."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save(self, rows: Sequence[LogRow]) -> Path:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{uuid.uuid4()}.jsonl"
        tmp = self.folder / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                for row in rows:
                    out.write(fastjson.dumps(asdict(row)) + b"\n")
                out.flush()
                os.fsync(out.fileno())
            return tmp.replace(self.folder / name)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def files(self) -> list[Path]:
        if not self.folder.is_dir():  # the common case: one stat
            return []
        return sorted(self.folder.glob("*.jsonl"))

    def load(self, path: Path) -> list[LogRow]:
        """The rows of one file; ValueError naming it when it does not hold log rows (it is
        then renamed `.unreadable`, so that it is reported once)."""
        rows = []
        try:
            # Bounded, a regular file, inside the spool: a FIFO named `x.jsonl` would hang
            # every later command, and a huge or linked file is not what the spool writes.
            data = read_bounded(path, SPOOL_FILE_BYTES, within=self.folder)
            for line in data.splitlines():
                rows.append(_spooled(fastjson.loads(line)))
        except FileRefused as exc:
            if exc.missing:  # another command wrote them meanwhile
                return []
            problem: str = exc.reason
        except (OSError, ValueError, TypeError, KeyError) as exc:
            problem = str(exc)
        else:
            return rows
        with contextlib.suppress(OSError):
            path.replace(path.with_suffix(".unreadable"))
        raise ValueError(f"{path} does not hold log rows ({problem}); it was renamed "
                         f"{path.with_suffix('.unreadable').name}")


def _spooled(values: dict[str, Any]) -> LogRow:
    """A spooled row; one spooled before revision 0003 of the schema named its user
    `user_id` and held its version's text only in its metadata."""
    values["created_at"] = datetime.fromisoformat(values["created_at"])
    if "user_id" in values:
        values["created_by"] = values.pop("user_id")
    if "version" not in values:
        values["version"] = str((values.get("metadata") or {}).get("version") or "unknown")
    return LogRow(**values)


def spool_folder(pending_logs: Path, url: str) -> Path:
    """The spool of one database under a project's `.aiops/pending-logs`: named by a hash of
    its URL without the password."""
    return pending_logs / hashlib.sha256(redact(url).encode()).hexdigest()[:16]
