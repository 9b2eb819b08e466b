"""`aiops test`: the project's golden tests, replayed from their cassettes (or recorded)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aiops.errors import RuntimeFailure
from aiops.golden import GoldenReport, run_golden
from aiops.workspace import Workspace


def golden_tests(ws: Workspace, *, names: Sequence[str] = (), provider: str | None = None,
                 record: bool = False, env: Mapping[str, str] | None = None) -> GoldenReport:
    """Every golden test of every function (or of `names`) on each provider of its matrix
    (or only `provider`); replayed offline unless `record`."""
    return run_golden(ws.root, ws.project, names=names, provider=provider, record=record,
                      env=env)


GOLDEN_TIMEOUT_S = 120.0  # a replay of one function's tests, in a child process
MAX_REPORT_BYTES = 16 << 20


def golden_replay_isolated(root: Path, name: str, *, provider: str | None = None,
                           timeout_s: float = GOLDEN_TIMEOUT_S) -> dict[str, Any]:
    """The golden tests of function `name` replayed from the cassettes of the project at
    `root`, in a child process: replay patches HTTP process-wide (vcrpy), which must not
    reach the executions a server runs meanwhile. The report as `aiops test --json` prints
    it. A RuntimeFailure when the child fails, or runs past `timeout_s` (it is killed)."""
    command = [sys.executable, "-m", "aiops.commands.golden", str(root), name]
    if provider is not None:
        command.append(provider)
    env = {k: v for k, v in os.environ.items() if k != "AIOPS_RATE_LIMIT_URL"}
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout_s, env=env,
                              cwd=root, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeFailure(f"the golden tests of {name} ran past {timeout_s:g} s and were "
                             "stopped") from None
    if done.returncode == 0 and len(done.stdout) <= MAX_REPORT_BYTES:
        try:
            report: dict[str, Any] = json.loads(done.stdout)
            return report
        except ValueError:
            pass
    tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
    raise RuntimeFailure(f"the golden tests of {name} failed to run (exit "
                         f"{done.returncode}): {tail[0][:500]}")


def _main(argv: Sequence[str]) -> int:
    """`python -m aiops.commands.golden ROOT NAME [PROVIDER]`: the report as JSON on stdout."""
    from aiops.errors import AiopsError
    from aiops.workspace import open_workspace

    root, name, *rest = argv
    try:
        report = golden_tests(open_workspace(Path(root)), names=(name,),
                              provider=rest[0] if rest else None)
    except AiopsError as exc:
        sys.stderr.write(" ".join(str(exc).split()) + "\n")
        return 2
    sys.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
