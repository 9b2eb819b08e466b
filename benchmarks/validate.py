"""Times `aiops validate` on 1,000 generated functions, and the CLI's start-up.

Targets (DESIGN §10, issue 2): validate 1,000 functions <= 2 s; `aiops --version` <= 0.2 s;
`aiops validate` of the examples <= 0.6 s. Each figure is printed next to a baseline measured
in the same run (a bare `python -c pass`, and a plain yaml.safe_load of the same files), since
machines are noisy. Run: .venv/bin/python benchmarks/validate.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
AIOPS = str(Path(sys.executable).parent / "aiops")
N = 1000


def best_of(cmd: list[str], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=False, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def generate(root: Path) -> None:
    shutil.copy(REPO / "providers.yaml", root)
    examples = sorted((REPO / "functions").glob("*/function.yaml"))
    for i in range(N):
        source = examples[i % len(examples)]
        old = source.parent.name
        name = f"{old}-{i:04d}"
        text = source.read_text().replace(f"name: {old}\n", f"name: {name}\n", 1)
        (root / "functions" / name).mkdir(parents=True)
        (root / "functions" / name / "function.yaml").write_text(text)


def main() -> None:
    python = best_of([sys.executable, "-c", "pass"])
    version = best_of([AIOPS, "--version"])
    examples = best_of([AIOPS, "validate", str(REPO)])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root)
        check = subprocess.run([AIOPS, "validate", str(root)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout[-2000:]
        big = best_of([AIOPS, "validate", str(root)], runs=3)
        yaml_only = best_of([sys.executable, "-c", (
            "import yaml,pathlib,sys; L=getattr(yaml,'CSafeLoader',yaml.SafeLoader); "
            f"[yaml.load(p.read_bytes(), Loader=L) for p in pathlib.Path({tmp!r}).glob("
            "'functions/*/function.yaml')]")], runs=3)
    rows = [
        ("python -c pass (baseline)", python, None, None),
        ("aiops --version", version, 0.2, version / python),
        ("aiops validate (4 examples)", examples, 0.6, examples / python),
        (f"yaml.safe_load x{N} (baseline)", yaml_only, None, None),
        (f"aiops validate x{N} functions", big, 2.0, big / yaml_only),
    ]
    print(f"{'measure':36} {'seconds':>8} {'target':>7} {'x baseline':>10}")
    for label, secs, target, ratio in rows:
        t = f"{target:.1f}" if target else ""
        r = f"{ratio:.1f}" if ratio else ""
        ok = "" if target is None else ("  ok" if secs <= target else "  OVER")
        print(f"{label:36} {secs:8.3f} {t:>7} {r:>10}{ok}")
    print(f"per function: {big / N * 1000:.2f} ms (best of 3 runs)")


if __name__ == "__main__":
    main()
