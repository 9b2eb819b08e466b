"""aiops: AI functions as code.

The Python API (docs/python.md): `aiops.open(path)` is a `Workspace` whose methods are the
verbs of the command line, and the errors are those of `aiops.errors`.

    import aiops

    with aiops.open("path/to/project") as ws:
        print(ws.run("summarize", {"text": "..."}).output)

Every name below loads on first use (PEP 562), so `import aiops`, and the `aiops` command's
start-up, import no database, HTTP or provider library.
"""

from __future__ import annotations

__version__ = "0.1.0"

TYPE_CHECKING = False  # not typing's: `import aiops` alone imports nothing
if TYPE_CHECKING:
    from typing import Any

    from aiops.api import Workspace, init, open
    from aiops.commands import ApplyResult, InitResult, Status, StatusRow, ValidationReport
    from aiops.errors import (
        AiopsError,
        BudgetExceeded,
        BudgetSettleError,
        Cancelled,
        ConfigError,
        ConflictError,
        DatabaseUnavailable,
        Diagnostic,
        FieldError,
        InputError,
        LimitExceeded,
        LockBusy,
        LogWriteError,
        NameTaken,
        NotFoundError,
        OutputError,
        PermissionDenied,
        PreconditionFailed,
        PreconditionRequired,
        ProviderError,
        QuotaExceeded,
        RuntimeFailure,
        SpecError,
        StalePlanError,
        UsageError,
        UserError,
        WritesDisabled,
    )
    from aiops.golden import GoldenReport
    from aiops.plan import Plan
    from aiops.records import LogRecord
    from aiops.runner import Attempt, Execution
    from aiops.workspace import NotAProject

_EXPORTS = {
    **dict.fromkeys(["Workspace", "init", "open"], "api"),
    **dict.fromkeys(["ApplyResult", "InitResult", "Status", "StatusRow", "ValidationReport"],
                    "commands"),
    **dict.fromkeys(["AiopsError", "UserError", "SpecError", "ConfigError", "UsageError",
                     "NotFoundError", "InputError", "RuntimeFailure", "ProviderError",
                     "OutputError", "LimitExceeded", "BudgetExceeded", "QuotaExceeded", "Cancelled",
                     "LogWriteError", "BudgetSettleError", "StalePlanError", "LockBusy",
                     "ConflictError", "NameTaken", "PreconditionRequired",
                     "PreconditionFailed", "PermissionDenied", "WritesDisabled",
                     "DatabaseUnavailable", "Diagnostic"], "errors"),
    "FieldError": "errors",
    "NotAProject": "workspace",
    "Execution": "runner",
    "Attempt": "runner",
    "Plan": "plan",
    "LogRecord": "records",
    "GoldenReport": "golden",
}

__all__ = [  # noqa: RUF022 (grouped: the entry points, the results, the errors)
    "open", "init", "Workspace",
    "Execution", "Attempt", "ValidationReport", "Diagnostic", "Plan", "ApplyResult",
    "Status", "StatusRow", "LogRecord", "GoldenReport", "InitResult",
    "AiopsError", "UserError", "SpecError", "ConfigError", "UsageError", "NotFoundError",
    "FieldError",
    "NotAProject", "InputError", "RuntimeFailure", "ProviderError", "OutputError",
    "LimitExceeded", "BudgetExceeded", "QuotaExceeded", "Cancelled", "LogWriteError",
    "BudgetSettleError",
    "StalePlanError", "LockBusy", "ConflictError", "NameTaken", "PreconditionRequired",
    "PreconditionFailed", "PermissionDenied", "WritesDisabled", "DatabaseUnavailable",
]


def __getattr__(name: str) -> Any:
    """The public names, imported on first use."""
    from importlib import import_module

    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
