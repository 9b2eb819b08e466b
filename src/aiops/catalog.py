"""What the catalog reads show of functions, versions and logs: plain frozen records, the
pages they come in, and the opaque cursors of those pages. No I/O.

`aiops.store` fills these records; `aiops.commands.catalog` decides what a caller may see of
them (`aiops.access`); the server and the web UI render them as they are.

A page holds at most `limit` items (1 to MAX_LIMIT) and the cursor of the next page (None at
the end). A cursor is opaque to callers: base64url of a small JSON object, checked on the way
back in (a cursor that does not decode is a UsageError, not a crash).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Generic, TypeVar

from aiops.errors import UsageError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_cursor: str | None = None


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"limit must be between 1 and {MAX_LIMIT} (got {limit})")
    return limit


def encode_cursor(kind: str, position: dict[str, Any]) -> str:
    raw = json.dumps({"k": kind, **position}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """The position a cursor of `kind` holds (its `keys`, each a string); a UsageError for a
    cursor that is not one this API gave for this list."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        data = None
    if (not isinstance(data, dict) or data.get("k") != kind
            or any(not isinstance(data.get(k), str) for k in keys)):
        raise bad_cursor()
    return {k: data[k] for k in keys}


def bad_cursor() -> UsageError:
    return UsageError("cursor is not one this list gave; pass the `next_cursor` of the "
                      "previous page unchanged, or leave it out to start again")


# --- functions --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FunctionSummary:
    """A function as lists show it."""

    id: str
    name: str
    description: str
    status: str
    version: str | None  # the current version
    provider: str | None
    model: str | None
    updated_at: datetime
    access: dict[str, Any]
    # `in_sync`: the current version is the one the last apply set; `pointer_moved`: someone
    # moved it since (the next apply puts it back).
    sync: str


@dataclass(frozen=True, kw_only=True)
class VersionSummary:
    id: str
    version: str
    behaviour_hash: str
    provider: str
    model: str
    git_commit: str | None
    created_at: datetime
    created_by: str | None  # the user's name
    current: bool


@dataclass(frozen=True, kw_only=True)
class FileState:
    """The function's file in the server's working tree, against the database.

    `same`: applying would change nothing; `changed`: the file differs (an apply is pending);
    `missing`: no file (a prune would archive it); `invalid`: the file does not load."""

    path: str
    state: str
    version: str | None = None  # what the file says


@dataclass(frozen=True, kw_only=True)
class FunctionDetail:
    """One function: its row, its current spec, its versions (newest first, at most
    `MAX_LIMIT`; the versions list pages through all), its sync state, and what the caller
    may do with it."""

    summary: FunctionSummary
    spec: dict[str, Any] | None  # the current version's content, with the metadata
    versions: tuple[VersionSummary, ...]
    more_versions: bool
    managed_by: str | None
    applied_at: datetime | None
    applied_commit: str | None
    file: FileState | None
    allowed: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class FieldChange:
    """One changed field of a version's content: a unified diff of the prompt (`text`), or
    changed leaves (`paths`: `~ path: old -> new`, `+ path: new`, `- path: old`)."""

    field: str
    kind: str
    lines: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class VersionDetail:
    function: str
    summary: VersionSummary
    content: dict[str, Any]
    against: str | None  # the version the diff compares with (None: the first version)
    diff: tuple[FieldChange, ...]


# --- logs -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LogEntry:
    """One execution. Without the right to read content (`aiops.access.may_read_content`),
    `input` and `output` are None, and `error` and the attempts keep their kinds but not their
    messages (which may quote the output): `content_hidden` says so."""

    id: str
    created_at: datetime
    status: str
    version: str | None
    provider: str | None
    model: str | None
    execution_time_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    actor: str | None
    created_by: str | None  # the id of the user who ran it
    error: dict[str, Any] | None
    attempts: tuple[dict[str, Any], ...]
    input: Any
    output: Any
    content_hidden: bool = False

    def without_content(self) -> LogEntry:
        error = None if self.error is None else {
            k: v for k, v in self.error.items() if k != "message"}
        attempts = tuple({k: v for k, v in a.items() if k != "message"} for a in self.attempts)
        return replace(self, input=None, output=None, error=error, attempts=attempts,
                       content_hidden=True)


@dataclass(frozen=True, kw_only=True)
class LogFilter:
    status: str | None = None
    version: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
