"""What the command-line benchmarks share: one child process measured (wall time, CPU time,
peak RSS), medians of several, the machine's load, and bytecode compiled first.

Bytecode: an installed aiops has its modules compiled (pip does it at install), but a
source checkout run with PYTHONDONTWRITEBYTECODE=1 compiles every aiops module again in
each process, some 100-150 ms that no user pays. `compile_bytecode()` writes the .pyc files
of the aiops package (ignored by git) so that a figure is the installed program's.
"""

from __future__ import annotations

import compileall
import os
import re
import statistics
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiops

# A child's peak RSS counts what it shared with its parent before exec: measured from a
# large process, every child would weigh at least as much as it. A small launcher starts the
# command and reports its wall time, CPU time, peak RSS (os.wait4's ru_maxrss, KB on Linux)
# and exit status.
LAUNCHER = """
import os, subprocess, sys, time
started = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = proc.stderr.read()
_, status, usage = os.wait4(proc.pid, 0)
print(time.perf_counter() - started, usage.ru_utime + usage.ru_stime, usage.ru_maxrss,
      os.waitstatus_to_exitcode(status))
sys.stderr.buffer.write(err[-2000:])
"""


@dataclass(frozen=True)
class Measured:
    wall_s: float
    cpu_s: float
    peak_mb: float
    status: int


def measure(command: Sequence[str], env: Mapping[str, str] | None = None,
            cwd: Path | None = None) -> Measured:
    """One run of `command` in its own process; its stderr is shown when it fails."""
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *command], env=env, cwd=cwd,
                          check=True, capture_output=True, text=True)
    wall, cpu, kb, status = done.stdout.split()
    if int(status) != 0:
        print(f"{' '.join(command[:3])} ... exited {status}: {done.stderr}", file=sys.stderr)
    return Measured(float(wall), float(cpu), int(kb) / 1024, int(status))


def median_of(command: Sequence[str], repeat: int, env: Mapping[str, str] | None = None,
              cwd: Path | None = None, ok: bool = True) -> Measured:
    """The medians of `repeat` runs (each figure on its own); `ok`: every run must exit 0."""
    runs = [measure(command, env, cwd) for _ in range(repeat)]
    if ok:
        assert all(r.status == 0 for r in runs), f"{command}: {[r.status for r in runs]}"
    return Measured(statistics.median(r.wall_s for r in runs),
                    statistics.median(r.cpu_s for r in runs),
                    statistics.median(r.peak_mb for r in runs), runs[-1].status)


def compile_bytecode() -> None:
    """Compile the aiops package's modules, as an install does (see the module)."""
    compileall.compile_dir(Path(aiops.__file__).parent, quiet=1)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return (f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores "
            "(figures are noisy on a shared machine: compare those of one run)")


AIOPS = str(Path(sys.executable).parent / "aiops")  # this environment's command


@contextmanager
def mock_provider() -> Iterator[str]:
    """`aiops mock-provider` on a free port, in its own process: its root URL."""
    proc = subprocess.Popen([AIOPS, "mock-provider", "--port", "0"], stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"http://\S+", line)
        assert match, line
        yield match[0]
    finally:
        proc.terminate()
        proc.wait()


@contextmanager
def pg_schema(database: str, prefix: str) -> Iterator[str]:
    """A new schema on the PostgreSQL server of `database`, as a URL whose search_path points
    at it; dropped at the end (with the engines that used it)."""
    import uuid

    import psycopg

    from aiops.store.engine import dispose_engines

    plain = database.replace("postgresql+psycopg://", "postgresql://")
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(plain, autocommit=True) as c:
        c.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in database else "?"
    try:
        yield f"{database}{sep}options=-csearch_path%3D{schema}"
    finally:
        dispose_engines()
        with psycopg.connect(plain, autocommit=True) as c:
            c.execute(f'DROP SCHEMA "{schema}" CASCADE')
