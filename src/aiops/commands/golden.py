"""`aiops test`: the project's golden tests, replayed from their cassettes (or recorded)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiops.golden import GoldenReport, run_golden
from aiops.workspace import Workspace


def golden_tests(ws: Workspace, *, names: Sequence[str] = (), provider: str | None = None,
                 record: bool = False, env: Mapping[str, str] | None = None) -> GoldenReport:
    """Every golden test of every function (or of `names`) on each provider of its matrix
    (or only `provider`); replayed offline unless `record`."""
    return run_golden(ws.root, ws.project, names=names, provider=provider, record=record,
                      env=env)
