"""The records the runner, the store and the verbs share: plain frozen dataclasses, no SQL.

`aiops.store` reads and writes them; the runner (`prepare`, `batch`, `runner`) and the golden
tests only hold them, so running a function in process, or replaying a cassette, loads no
database library.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, kw_only=True)
class DeployedVersion:
    """A runnable version, as the runner gets it."""

    function_id: str
    version_id: str
    name: str
    version: str
    content: dict[str, Any]
    git_commit: str | None
    status: str
    limits: dict[str, Any]
    access: dict[str, Any]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class LogRow:
    """One execution (ai_function_logs); `id` and `created_at` default to new values.
    `created_by` is the user who ran it; None: the user row of `actor` (`aiops.actors`),
    which the store resolves once per process."""

    function_id: str
    version: str  # the executed version's text
    version_id: str | None
    status: str  # "ok" | "error"
    input: Any = None
    output: Any = None
    error: Any = None
    execution_time: float | None = None  # milliseconds
    created_by: str | None = None  # a user id
    actor: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    provider: str | None = None
    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: datetime = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class LogRecord(LogRow):
    """A stored log row with its function's name."""

    name: str


@dataclass(frozen=True, kw_only=True)
class LogWriteReport:
    """What a group insert could not store as given. `stored_alone`: one message per row
    stored without its values (the database refused them); `lost`: one message per row the
    database refused even without them (its function row is gone, say, or a trigger refuses
    it whatever it holds)."""

    stored_alone: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()


# --- what apply writes: aiops.apply decides the rows, aiops.store writes them ---------------


@dataclass(frozen=True, kw_only=True)
class FunctionColumns:
    """The columns of a function row that its metadata sets (`fingerprint.metadata_content`),
    and the hash of that metadata."""

    description: str | None
    status: str
    metadata: dict[str, Any]
    limits: dict[str, Any]
    access: dict[str, Any]
    alerts: Any
    metadata_hash: str

    @classmethod
    def of(cls, metadata: dict[str, Any], metadata_hash: str) -> FunctionColumns:
        return cls(description=metadata["description"], status=metadata["status"],
                   metadata=metadata["metadata"], limits=metadata["limits"],
                   access=metadata["access"], alerts=metadata["alerts"],
                   metadata_hash=metadata_hash)


@dataclass(frozen=True, kw_only=True)
class NewVersion:
    """An immutable version row: its behaviour content (the store copies parts of it into
    columns for SQL readers)."""

    id: str
    function_id: str
    version: str
    behaviour_hash: str
    content: dict[str, Any]
    git_commit: str | None
    created_at: datetime
    created_by: str  # a user id


@dataclass(frozen=True, kw_only=True)
class NewFunction:
    """A function row, pointing at its first version (checked at commit: deferred)."""

    id: str
    name: str
    columns: FunctionColumns
    version_id: str  # current and reconciled
    managed_by: str  # the project
    applied_commit: str | None
    now: datetime
    created_by: str  # a user id (the first updated_by too)


@dataclass(frozen=True, kw_only=True)
class FunctionUpdate:
    """A function's metadata, written again in full."""

    function_id: str
    columns: FunctionColumns
    managed_by: str
    applied_commit: str | None
    now: datetime
    updated_by: str  # a user id


@dataclass(frozen=True, kw_only=True)
class PointerUpdate:
    """A function's current (and reconciled) version moves to `version_id` (the store sets
    the function's copies of that version with it)."""

    function_id: str
    version_id: str
    applied_commit: str | None
    now: datetime
    updated_by: str  # a user id


@dataclass(frozen=True, kw_only=True)
class VersionRestore:
    """A version row edited outside git, given back its content (and the copies of it)."""

    version_id: str
    content: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Archive:
    """A function archived; `metadata_hash` is the hash of the archived row's metadata."""

    function_id: str
    metadata_hash: str | None
    applied_commit: str | None
    now: datetime
    updated_by: str  # a user id


@dataclass(frozen=True, kw_only=True)
class Managed:
    """That `project` manages the function `name` (kept if it exists)."""

    project: str
    name: str
    first_applied_at: datetime


@dataclass(kw_only=True)
class Batch:
    """Rows apply has decided to write; the writer sends each list as one executemany."""

    new_functions: list[NewFunction] = field(default_factory=list)
    new_versions: list[NewVersion] = field(default_factory=list)
    function_updates: list[FunctionUpdate] = field(default_factory=list)
    pointer_updates: list[PointerUpdate] = field(default_factory=list)
    version_restores: list[VersionRestore] = field(default_factory=list)
    archives: list[Archive] = field(default_factory=list)
    managed: list[Managed] = field(default_factory=list)
