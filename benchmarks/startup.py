"""Start-up benchmark: `aiops run` must not grow with the project (issue 11).

For each project size, a project of N functions is applied to a temporary SQLite database;
then, against a mock provider in its own process:

1. in process, after the imports: opening the runner (finding the project, its database and
   its providers), the part of a run's start-up that could grow with the number of files;
2. as a command: the wall time of `aiops run fn-00000 --input ...`, a new process each time.

Each figure is the median of `--repeat` runs.

    .venv/bin/python benchmarks/startup.py [--functions 1 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
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


def median_s(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(n: int, url: str, repeat: int, tmp: Path) -> None:
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

    def one_run() -> None:
        done = subprocess.run([AIOPS, "run", "fn-00000", "--input", INPUT, "-C", str(root)],
                              env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr

    wall = median_s(one_run, repeat)
    print(f"n={n:6}: open the runner {statistics.median(opens) * 1000:6.0f} ms (in process, "
          f"after imports); `aiops run` {wall * 1000:6.0f} ms wall (median of {repeat})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--functions", type=int, nargs="+", default=[1, 1000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, mock_provider() as url:
        for n in args.functions:
            bench(n, url, args.repeat, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
