"""Start-up benchmark: a single `aiops run` against the mock <= 0.5 s wall, and it must not
grow with the project (DESIGN §10, issue 11); `aiops --help` <= 0.3 s.

First, baselines measured in the same run: `python -c pass`, and `python -c "import openai,
sqlalchemy"` (the provider SDK and the database library a run against the mock needs: the
floor of any such run). Then, for each project size, a project of N functions is applied to
a temporary SQLite database; then, against a mock provider in its own process:

1. in process, after the imports: opening the runner (finding the project, its database and
   its providers), the part of a run's start-up that could grow with the number of files;
2. as a command: `aiops run fn-00000 --input ...`, a new process each time: wall time, CPU
   time and peak RSS.

Each figure is the median of `--repeat` runs. Bytecode is compiled first (measure.py).

    .venv/bin/python benchmarks/startup.py [--functions 1 1000 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from measure import Measured, compile_bytecode, load_average, median_of
from reconcile import function, make_project  # benchmarks/reconcile.py: the same functions

AIOPS = str(Path(sys.executable).parent / "aiops")
PROVIDERS = {"providers": {"mock": {"type": "openai", "api_key_env": "MOCK_API_KEY", "models": {
    "mock-small": {"input_per_mtok": 0.1, "output_per_mtok": 0.2}}}}}
INPUT = '{"text": "Benchmarks measure."}'


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


def shown(label: str, m: Measured, target: float | None = None, base: Measured | None = None
          ) -> str:
    verdict = "" if target is None else ("  ok" if m.wall_s <= target else "  OVER")
    ratio = f"  {m.wall_s / base.wall_s:4.1f}x the floor" if base else ""
    goal = f" (target <= {target} s)" if target is not None else ""
    return (f"{label:44} {m.wall_s * 1000:6.0f} ms wall, {m.cpu_s * 1000:6.0f} ms CPU, "
            f"{m.peak_mb:5.0f} MB peak{goal}{ratio}{verdict}")


def bench(n: int, url: str, repeat: int, tmp: Path, floor: Measured) -> None:
    root = tmp / f"project-{n}"
    make_project(root, n)
    (root / "providers.yaml").write_text(yaml.safe_dump(PROVIDERS))
    assert function(0)["provider"] == "mock"
    env = {**os.environ, "AIOPS_PROJECT": "bench", "MOCK_API_KEY": "sk-bench",
           "AIOPS_MOCK_BASE_URL": f"{url}/v1"}
    env.pop("AIOPS_DATABASE_URL", None)
    subprocess.run([AIOPS, "apply", "--auto-approve", "-C", str(root)], env=env, check=True,
                   capture_output=True)
    code = ("import time\nfrom pathlib import Path\n"
            "import aiops.store\n"  # the database library's import is not the project's
            "from aiops.commands import open_runner, open_workspace\n"
            "t0 = time.perf_counter()\n"
            f"open_runner(open_workspace(Path({str(root)!r})))\n"
            "print(time.perf_counter() - t0)\n")
    opens = [float(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                  capture_output=True, text=True).stdout)
             for _ in range(repeat)]

    run = median_of([AIOPS, "run", "fn-00000", "--input", INPUT, "-C", str(root)], repeat,
                    env=env)
    print(shown(f"n={n:6}: `aiops run`", run, 0.5, floor))
    print(f"{'':10}open the runner {statistics.median(opens) * 1000:6.1f} ms (in process, "
          "after imports)")



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--functions", type=int, nargs="+", default=[1, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    compile_bytecode()
    print(load_average())
    print(f"medians of {args.repeat} runs")
    print(shown("python -c pass (baseline)", median_of([sys.executable, "-c", "pass"],
                                                        args.repeat)))
    floor = median_of([sys.executable, "-c", "import openai, sqlalchemy"], args.repeat)
    print(shown("import openai, sqlalchemy (floor of a run)", floor))
    print(shown("aiops --help", median_of([AIOPS, "--help"], args.repeat), 0.3))
    with tempfile.TemporaryDirectory() as tmp, mock_provider() as url:
        for n in args.functions:
            bench(n, url, args.repeat, Path(tmp), floor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
