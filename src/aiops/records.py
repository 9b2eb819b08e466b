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
    """One execution (ai_function_logs); `id` and `created_at` default to new values."""

    function_id: str
    version_id: str | None
    status: str  # "ok" | "error"
    input: Any = None
    output: Any = None
    error: Any = None
    execution_time: float | None = None  # milliseconds
    user_id: str | None = None
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
    """A stored log row with its function's name and version."""

    name: str
    version: str | None


@dataclass(frozen=True, kw_only=True)
class LogWriteReport:
    """What a group insert could not store as given. `stored_alone`: one message per row
    stored without its values (the database refused them); `lost`: one message per row the
    database refused even without them (its function row is gone, say, or a trigger refuses
    it whatever it holds)."""

    stored_alone: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()
