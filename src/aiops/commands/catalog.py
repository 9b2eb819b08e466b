"""The catalog's verbs: list functions, show one, its versions (with diffs) and its logs, and
whether the database is ready. What the API and the web UI read.

Each takes the `Store` to read (the server keeps one per process) and the `caller`
(`aiops.access.Caller`; None is the operator at the CLI, who sees everything). A function the
caller may not view is, to it, a function that does not exist: `NotFoundError`, as for a name
nobody applied. Log content is hidden from callers without the right to read it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from aiops.access import EVERYONE, Caller, allowed_actions, may, may_read_content
from aiops.catalog import (
    MAX_LIMIT,
    FieldChange,
    FileState,
    FunctionDetail,
    FunctionSummary,
    LogEntry,
    LogFilter,
    Page,
    VersionDetail,
    VersionSummary,
    bad_cursor,
    check_limit,
    decode_cursor,
    encode_cursor,
)
from aiops.errors import AiopsError, NotFoundError, shown
from aiops.spec import SEMVER_PATTERN, Semver
from aiops.store import Store
from aiops.store.catalog import FunctionRow
from aiops.workspace import Workspace

# At most this many functions are read per query while filling a page with those the caller
# may view (when the database's pre-selection by `access.view` leaves some it may not).
_SCAN = 500


def list_functions(store: Store, *, caller: Caller | None = None, status: str | None = None,
                   search: str | None = None, cursor: str | None = None,
                   limit: int = 50) -> Page[FunctionSummary]:
    """Functions by name that `caller` may view, `limit` at a time.

    The database selects the functions whose `access.view` list names one of the caller's
    groups or everyone, one page and one more row (whether there is a next page); `may`
    decides on those. Should it refuse some, the next query reads as many as the share seen
    so far predicts are missing (at most `_SCAN`). A page costs rows in proportion to the
    page, not to the catalog nor to what the caller may not see."""
    check_limit(limit)
    after = decode_cursor("functions", cursor, ("after",))["after"] if cursor else None
    groups = None if caller is None or caller.is_admin else (*caller.groups, EVERYONE)
    want = limit + 1  # one more than the page: whether there is a next one
    found: list[FunctionSummary] = []
    size, read = want, 0
    while len(found) < want:
        batch = store.function_summaries(after=after, limit=size, status=status, search=search,
                                         view_groups=groups)
        found += [f for f in batch if may(caller, "view", f.access)]
        read += len(batch)
        if len(batch) < size:
            break
        after = batch[-1].name
        missing = want - len(found)
        size = _SCAN if not found else min(_SCAN, max(want, -(-missing * read // len(found))))
    items = tuple(found[:limit])
    more = len(found) > limit
    return Page(items=items,
                next_cursor=encode_cursor("functions", {"after": items[-1].name}) if more
                else None)


def visible_function(store: Store, ref: str, caller: Caller | None) -> FunctionRow:
    row = store.find_function(ref)
    if row is None or not may(caller, "view", row.summary.access):
        raise not_visible(ref)
    return row


def not_visible(ref: str) -> NotFoundError:
    """The one answer for a function that is missing and one the caller may not view."""
    return NotFoundError(f"no function {shown(ref)}: no function has that name or id, or "
                         "your token may not view it")


def _by_version(versions: list[VersionSummary]) -> list[VersionSummary]:
    """Newest version first (semantic version order)."""
    return sorted(versions, key=lambda v: Semver(v.version), reverse=True)


def get_function(store: Store, ref: str, *, caller: Caller | None = None,
                 ws: Workspace | None = None) -> FunctionDetail:
    """One function by id or name: its current spec, newest versions, sync state (against
    the file in `ws`'s working tree, when given), and what `caller` may do with it."""
    row = visible_function(store, ref, caller)
    versions = _by_version(store.version_summaries(row.summary.id, row.current_version_id))
    spec = None
    if row.content is not None:
        s = row.summary
        spec = {"name": s.name, "version": s.version, "description": s.description,
                "status": s.status, **row.content, "limits": row.limits, "access": s.access,
                "alerts": row.alerts, "metadata": row.metadata}
    return FunctionDetail(summary=row.summary, spec=spec, versions=tuple(versions[:MAX_LIMIT]),
                          more_versions=len(versions) > MAX_LIMIT, managed_by=row.managed_by,
                          applied_at=row.applied_at, applied_commit=row.applied_commit,
                          file=None if ws is None else file_state(ws, row, versions),
                          allowed=allowed_actions(caller, row.summary.access))


def file_state(ws: Workspace, row: FunctionRow,
               versions: list[VersionSummary]) -> FileState:
    """The function's file in the working tree against what the database holds: `same` when
    its hashes and version are those of the current version and the row."""
    current = next((v for v in versions if v.current), None)
    return _file_state(ws, row.summary.name, current.version if current else None,
                       current.behaviour_hash if current else None, row.metadata_hash)


def file_states(ws: Workspace, store: Store,
                functions: Sequence[FunctionSummary]) -> dict[str, FileState]:
    """`file_state` of each of `functions` (a page of the web UI's list), with one query; a
    file's hashes are computed again only when its size or modification time changed."""
    applied = store.applied_hashes([f.id for f in functions])
    return {f.name: _file_state(ws, f.name, *applied.get(f.id, (None, None, "")))
            for f in functions}


# A file's (version, behaviour hash, metadata hash), or None when it does not load, by its
# absolute path, with the (size, mtime) it was read at.
_PRINTS: dict[str, tuple[tuple[int, int], tuple[str, str, str] | None]] = {}
_MAX_PRINTS = 10_000


def _file_state(ws: Workspace, name: str, version: str | None, behaviour: str | None,
                metadata_hash: str) -> FileState:
    from aiops.loader import function_file

    rel = function_file(name)
    found = _file_print(ws, rel)
    if isinstance(found, str):
        return FileState(path=rel, state=found)
    same = found[0] == version and found[1] == behaviour and found[2] == metadata_hash
    return FileState(path=rel, state="same" if same else "changed", version=found[0])


def _file_print(ws: Workspace, rel: str) -> tuple[str, str, str] | str:
    """The file's (version, behaviour hash, metadata hash), or its state: missing, invalid."""
    from aiops.fingerprint import fingerprint
    from aiops.loader import load_one
    from aiops.sources import read_project_file
    from aiops.spec import FunctionSpec

    path = ws.root / rel
    try:
        st = path.stat()
        key: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
    except OSError:
        key = None
    cached = _PRINTS.get(str(path)) if key is not None else None
    if cached is not None and cached[0] == key:
        return cached[1] or "invalid"
    data = read_project_file(ws.root, rel)
    if not isinstance(data, bytes):
        return "missing" if data.missing else "invalid"
    spec, _, _ = load_one(rel, data, FunctionSpec)
    found = None
    if spec is not None:
        fp = fingerprint(spec)
        found = (spec.version, fp.behaviour, fp.metadata)
    if key is not None:
        if len(_PRINTS) >= _MAX_PRINTS:
            _PRINTS.clear()
        _PRINTS[str(path)] = (key, found)
    return found or "invalid"


def list_versions(store: Store, ref: str, *, caller: Caller | None = None,
                  cursor: str | None = None, limit: int = 50) -> Page[VersionSummary]:
    """A function's versions, newest first (semantic version order)."""
    check_limit(limit)
    row = visible_function(store, ref, caller)
    versions = _by_version(store.version_summaries(row.summary.id, row.current_version_id))
    if cursor:
        after = Semver(_cursor_version(cursor))
        versions = [v for v in versions if Semver(v.version) < after]
    items = tuple(versions[:limit])
    more = len(versions) > limit
    return Page(items=items, next_cursor=encode_cursor("versions", {"after": items[-1].version})
                if more else None)


def _cursor_version(cursor: str) -> str:
    after: str = decode_cursor("versions", cursor, ("after",))["after"]
    if not re.match(SEMVER_PATTERN, after):
        raise bad_cursor()
    return after


def get_version(store: Store, ref: str, version: str, *, caller: Caller | None = None,
                against: str | None = None) -> VersionDetail:
    """One version's content and its diff against `against`, or else the version before it
    (none for the first)."""
    from aiops.plan import version_diff

    row = visible_function(store, ref, caller)
    versions = _by_version(store.version_summaries(row.summary.id, row.current_version_id))
    name = row.summary.name

    def named(v: str) -> VersionSummary:
        found = next((x for x in versions if x.version == v), None)
        if found is None:
            listed = ", ".join(x.version for x in versions) or "none"
            raise NotFoundError(f"{name} has no version {shown(v)}; its versions: {listed}")
        return found

    this = named(version)
    if against is not None:
        base: VersionSummary | None = named(against)
    else:
        older = [v for v in versions if Semver(v.version) < Semver(this.version)]
        base = older[0] if older else None
    content = store.version_content(this.id)
    diff: tuple[FieldChange, ...] = ()
    if base is not None:
        diff = tuple(FieldChange(field=d.field, kind=d.kind, lines=d.lines) for d in
                     version_diff(store.version_content(base.id), content,
                                  old_label=base.version, new_label=this.version))
    return VersionDetail(function=name, summary=this, content=content,
                         against=base.version if base else None, diff=diff)


def function_logs(store: Store, ref: str, *, caller: Caller | None = None,
                  where: LogFilter | None = None, cursor: str | None = None,
                  limit: int = 50) -> Page[LogEntry]:
    """A function's executions, newest first; their content only where `caller` may read it
    (`aiops.access.may_read_content`)."""
    check_limit(limit)
    row = visible_function(store, ref, caller)
    before = None
    if cursor:
        pos = decode_cursor("logs", cursor, ("at", "id"))
        before = (_cursor_time(pos["at"]), _cursor_uuid(pos["id"]))
    entries = store.log_entries(row.summary.id, where=where or LogFilter(), before=before, limit=limit + 1)
    access = row.summary.access
    items = tuple(e if may_read_content(caller, access, e.created_by) else e.without_content()
                  for e in entries[:limit])
    more = len(entries) > limit
    last = items[-1] if items else None
    return Page(items=items, next_cursor=encode_cursor(
        "logs", {"at": last.created_at.isoformat(), "id": last.id}) if more and last else None)


def function_log(store: Store, ref: str, log_id: str, *,
                 caller: Caller | None = None) -> LogEntry:
    """One execution of a function (the web UI's row view), its content only where `caller`
    may read it, as in `function_logs`."""
    row = visible_function(store, ref, caller)
    entry = store.log_entry(row.summary.id, _log_uuid(log_id))
    if entry is None:
        raise NotFoundError(f"{row.summary.name} has no execution with the log id "
                            f"{shown(log_id)}")
    return entry if may_read_content(caller, row.summary.access, entry.created_by) \
        else entry.without_content()


def _log_uuid(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise NotFoundError(f"{shown(text)} is not a log id (a UUID)") from None


def _cursor_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise bad_cursor() from None


def _cursor_uuid(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise bad_cursor() from None


# --- readiness ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Readiness:
    """Whether the database answers and its schema is this aiops's."""

    ready: bool
    database: str  # "ok" | "unreachable" | "behind" | "ahead"
    detail: str
    revision: str | None = None
    expected: str | None = None


def readiness(open_store: Callable[[], Store]) -> Readiness:
    """Ask the database now: `open_store()` gives the store (it may fail: unreachable)."""
    from aiops.store.engine import SCHEMA_HEAD

    try:
        store = open_store()
        revision = store.schema_revision()
    except AiopsError as exc:
        behind = "aiops db upgrade" in str(exc)
        return Readiness(ready=False, database="behind" if behind else "unreachable",
                         detail="the database's schema is not this aiops's: run `aiops db "
                         "upgrade`" if behind else "the database does not answer",
                         expected=SCHEMA_HEAD)
    if revision == SCHEMA_HEAD:
        return Readiness(ready=True, database="ok", detail="the database answers and its "
                         "schema is current", revision=revision, expected=SCHEMA_HEAD)
    return Readiness(ready=False, database="behind", revision=revision, expected=SCHEMA_HEAD,
                     detail=f"the database is at schema revision {revision or 'none'}, not "
                     f"{SCHEMA_HEAD}: run `aiops db upgrade`")
