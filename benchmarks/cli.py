"""Start-up of the command line: `aiops --help` must stay within 0.3 s (issue 11).

`aiops --help` lists every command's summary from `aiops.cli.SUMMARIES` without importing a
command (each would bring pydantic, the loader and more). Printed next to it, measured in the
same run on the same machine: a bare `python -c pass`, `aiops --version` (the floor: Python,
click and aiops.cli) and a command's own help, `aiops plan --help` (which imports that
command). Each figure is the median wall time of `--repeat` new processes; the CPU time
(user + system) is printed too, since a loaded machine stretches wall time and not CPU time.

    .venv/bin/python benchmarks/cli.py [--repeat 11]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

AIOPS = str(Path(sys.executable).parent / "aiops")
TARGET_S = 0.3


def measure(cmd: list[str], repeat: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system of the child), in seconds."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = os.times()
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
        after = os.times()
        cpus.append((after.children_user - before.children_user)
                    + (after.children_system - before.children_system))
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=11)
    args = parser.parse_args()
    rows = [("python -c pass", [sys.executable, "-c", "pass"]),
            ("aiops --version", [AIOPS, "--version"]),
            ("aiops --help", [AIOPS, "--help"]),
            ("aiops plan --help", [AIOPS, "plan", "--help"])]
    help_wall = 0.0
    for label, cmd in rows:
        wall, cpu = measure(cmd, args.repeat)
        if label == "aiops --help":
            help_wall = wall
        print(f"{label:20} {wall * 1000:6.0f} ms wall  {cpu * 1000:6.0f} ms CPU  "
              f"(median of {args.repeat})")
    verdict = "within" if help_wall <= TARGET_S else "OVER"
    print(f"aiops --help: {help_wall:.3f} s, {verdict} the {TARGET_S} s target")
    return 0 if help_wall <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
