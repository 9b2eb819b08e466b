"""The errors of aiops: one root, a shallow tree, messages built from fields.

    AiopsError                       exit_code
    ├── UserError                    your input is wrong; nothing was changed
    │   ├── SpecError          1     files failed to load or check (carries Diagnostics)
    │   ├── ConfigError        1     providers.yaml / aiops.yaml / environment (a missing key)
    │   ├── UsageError         2     a command line that cannot work
    │   │   └── FieldError     2     one field of a request is wrong (`pointer` says which)
    │   ├── NotFoundError      1     a function or version that does not exist
    │   ├── InputError         3     a run's input is invalid
    │   ├── ConflictError      1     a write that the repository refuses as it is (the function
    │   │                            exists already, or has uncommitted edits)
    │   ├── PreconditionRequired 1   a write without the ETag it replaces (If-Match)
    │   ├── PreconditionFailed 1     a write whose ETag is stale: the function changed since
    │   ├── PermissionDenied   1     the caller may see the function, not change it
    │   └── WritesDisabled     1     writes through git are turned off (`--writes off`)
    └── RuntimeFailure               something failed while running
        ├── ProviderError      4     the provider failed (transient ones are retried)
        ├── OutputError        5     the output did not validate, even after repairs
        ├── LimitExceeded      6     a rate limit refused the call
        ├── BudgetExceeded     7     a daily call or cost budget refused the call
        │   └── QuotaExceeded  7     a quota of the API caller's token refused the call
        ├── LogWriteError      8     log rows could not be written (the results were delivered)
        ├── BudgetSettleError  8     what calls cost could not be settled into a daily budget
        ├── StalePlanError     1     a saved plan no longer matches the database
        └── LockBusy          75     the database stayed locked (another apply holds it)

Foreign errors (SDKs, httpx, SQLAlchemy) are translated into these at the module that meets
them and nowhere else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the type only: the providers import this module
    from aiops.providers import Completion

_SURROGATE = re.compile("[\ud800-\udfff]")

# What went wrong in one attempt: a ProviderError's `kind`, and each attempt's `kind` in a log
# row. docs/providers.md ("Error kinds") lists each with its exit code, whether it is retried
# and what it counts against budgets; tests/unit/test_error_kinds_doc.py holds the table to
# these two types, which mypy holds the code to.
ProviderErrorKind = Literal[
    "timeout", "connection", "rate_limit", "server_error", "bad_response", "provider_error",
    "auth", "permission", "not_found", "bad_request", "too_large", "quota",
    "response_too_large", "bad_usage", "refusal", "content_filter", "truncated", "no_content"]
AttemptKind = Literal[ProviderErrorKind, "invalid_output", "config"]


def shown(value: Any, max_chars: int = 80) -> str:
    """A value as a message quotes it: compact JSON (`null`, `true`, `"text"`, `[1, 2]`), keys
    sorted, one line, shortened to `max_chars` with `…`. Every message that names a value an
    author or a caller wrote goes through here, so that none speaks Python (`None`, `'a'`)."""
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):  # not a JSON value: tuples and numbers are, sets are not
        text = json.dumps(str(value), ensure_ascii=False)
    if not text.isprintable() or _SURROGATE.search(text):  # one line, printable as UTF-8
        text = json.dumps(value, ensure_ascii=True, sort_keys=True, default=str)
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    return text


def shown_all(values: Any, max_chars: int = 80) -> str:
    """Values as a readable list: `"a"`, `"a" or "b"`, `"a", "b" or "c"`."""
    items = [shown(v, max_chars) for v in values]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


@dataclass(frozen=True, kw_only=True)
class Diagnostic:
    """One problem found in a file: where, what, and how to fix it."""

    file: str
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    path: str = ""  # key path inside the file, e.g. prompt[1].content
    message: str
    fix: str = ""
    severity: Literal["error", "warning"] = "error"
    code: str = "invalid"
    # Where in a JSON document it is (RFC 6901, `/prompt/1/content`): set for documents
    # written through the API (aiops.commands.writes), which have no file lines of their own.
    pointer: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def location(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where

    def render(self) -> str:
        text = f"{self.location()}: {self.severity}: "
        if self.path:
            text += f"{self.path}: "
        text += self.message
        if self.fix:
            text += f" (fix: {self.fix})"
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "fix": self.fix,
            **({"pointer": self.pointer} if self.pointer is not None else {}),
        }


class AiopsError(Exception):
    """Root of every error aiops raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, log_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.log_id = log_id

    def __str__(self) -> str:
        if self.log_id:
            return f"{self.message} (log {self.log_id})"
        return self.message


class UserError(AiopsError):
    """The input is wrong: a file, a setting, a command line, a run's input."""


class SpecError(UserError):
    """Files failed to load or check; `diagnostics` lists every problem."""

    def __init__(self, diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]) -> None:
        self.diagnostics = tuple(diagnostics)
        errors = [d for d in self.diagnostics if d.is_error]
        lines = [d.render() for d in errors]
        super().__init__(f"{len(errors)} error(s):\n" + "\n".join(lines))


class ConfigError(UserError):
    """providers.yaml, aiops.yaml or the environment is not usable."""


class UsageError(UserError):
    exit_code = 2


class NotFoundError(UserError):
    """A function, version or file that does not exist."""


class InputError(UserError):
    """A run's input is refused. `pointer` (RFC 6901, into the input) says where, when one
    place is at fault (a schema error's path)."""

    exit_code = 3

    def __init__(self, message: str, *, log_id: str | None = None,
                 pointer: str | None = None) -> None:
        super().__init__(message, log_id=log_id)
        self.pointer = pointer


class FieldError(UsageError):
    """One field of a request is wrong (an API body's `provider`, say): `pointer` (RFC 6901,
    into the request's body) names it."""

    def __init__(self, message: str, *, pointer: str) -> None:
        super().__init__(message)
        self.pointer = pointer


class ConflictError(UserError):
    """A write the repository refuses as it stands: a function created under a name that
    exists, a file with uncommitted edits, a branch that moved during the write."""


class NameTaken(ConflictError, UsageError):
    """A name already in use where it must be unique (a token's, among those not revoked): a
    command line that cannot work as it stands (exit 2), a conflict to the API (409)."""


class PreconditionRequired(UserError):
    """A write that must name the version it replaces (If-Match: the ETag it read) did not."""


class PreconditionFailed(UserError):
    """A write whose If-Match is stale: the function changed since the caller read it."""


class PermissionDenied(UserError):
    """An API caller may see the function but not do this with it (its `access` lists)."""


class WritesDisabled(UserError):
    """Writes through git are turned off here (`aiops serve --writes off`)."""


class RuntimeFailure(AiopsError):
    """Something failed while running."""


class ProviderError(RuntimeFailure):
    """The provider failed. `transient` errors (429, 5xx, timeouts, connection) are retried.

    The provider may have answered all the same, and billed the call: `answer` is what came
    back when it is no result (refused, cut off, filtered, without content), with the usage
    that is logged and charged; `billed` without an answer is an answer whose usage cannot be
    read or trusted, charged the call's estimate: `bad_usage`, and every `bad_response` (a 200
    whose body is not JSON, cut short or of another shape: the provider ran the call, and a
    body that cannot be read must not make it free)."""

    exit_code = 4

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        transient: bool = False,
        retry_after_s: float | None = None,
        kind: ProviderErrorKind = "provider_error",
        billed: bool = False,
        answer: Completion | None = None,
        log_id: str | None = None,
    ) -> None:
        super().__init__(message, log_id=log_id)
        self.provider = provider
        self.status = status
        self.transient = transient
        self.retry_after_s = retry_after_s
        self.kind: ProviderErrorKind = kind
        self.answer = answer
        self.billed = billed or answer is not None or kind == "bad_response"


class OutputError(RuntimeFailure):
    exit_code = 5


class LimitExceeded(RuntimeFailure):
    exit_code = 6


class BudgetExceeded(RuntimeFailure):
    """A daily budget refused a call. `limit` names it (`daily_calls`, `daily_budget_usd`;
    for a token's quota `rpm`, `daily_calls`, `daily_usd`); `retry_after_s` is when trying
    again can succeed: the next 00:00 UTC for a day that is spent, a moment for one whose
    room calls in flight hold, None when unknown."""

    exit_code = 7

    def __init__(self, message: str, *, limit: str | None = None,
                 retry_after_s: float | None = None, log_id: str | None = None) -> None:
        super().__init__(message, log_id=log_id)
        self.limit = limit
        self.retry_after_s = retry_after_s


class QuotaExceeded(BudgetExceeded):
    """A quota of the API caller's token (rpm, daily calls, daily USD) refused the call."""


class Cancelled(RuntimeFailure):
    """The execution was cancelled before it ended: a signal (Ctrl-C, SIGTERM), a batch
    stopping, a caller's timeout. Its log row records exit code 130, the code of an
    interrupted command; the CLI itself exits 128 + the signal's number (130, 143)."""

    exit_code = 130


class LogWriteError(RuntimeFailure):
    """Executions ran and their results were delivered, but some of their log rows could not
    be written (the database refused them, or stayed unreachable or locked past the store's
    patience: then they wait in the project's pending-logs for the next command)."""

    exit_code = 8


class BudgetSettleError(RuntimeFailure):
    """Calls ran and their results were delivered, but what they cost could not be settled
    into the function's daily budget (the database stayed locked or unreachable)."""

    exit_code = 8


class StalePlanError(RuntimeFailure):
    pass


class LockBusy(RuntimeFailure):
    exit_code = 75


class DatabaseUnavailable(RuntimeFailure):
    """The database did not answer (refused or lost the connection, or is shutting down):
    nothing was written, and trying again later can succeed (the API: 503 `not-ready`)."""
