"""Times `aiops validate` on 1,000 generated functions, and the CLI's start-up.

Targets (DESIGN §10, issues 2 and 11): validate 1,000 functions <= 2 s; `aiops --version`
<= 0.2 s; `aiops validate` of the examples <= 0.6 s; and the peak memory of validating N
functions (issue 11: 527 MB at 10,000). Each figure is printed next to a baseline measured
in the same run (a bare `python -c pass`, and a plain yaml.safe_load of the same files), since
machines are noisy. Bytecode is compiled first (measure.py).

    .venv/bin/python benchmarks/validate.py [--functions 1000 10000]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import compile_bytecode, load_average, measure

REPO = Path(__file__).resolve().parent.parent
AIOPS = str(Path(sys.executable).parent / "aiops")


def median_s(cmd: list[str], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=False, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def generate(root: Path, n: int) -> None:
    shutil.copy(REPO / "providers.yaml", root)
    examples = sorted((REPO / "functions").glob("*/function.yaml"))
    for i in range(n):
        source = examples[i % len(examples)]
        old = source.parent.name
        name = f"{old}-{i:04d}"
        text = source.read_text().replace(f"name: {old}\n", f"name: {name}\n", 1)
        (root / "functions" / name).mkdir(parents=True)
        (root / "functions" / name / "function.yaml").write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--functions", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    compile_bytecode()
    print(load_average())
    python = median_s([sys.executable, "-c", "pass"], args.repeat)
    version = median_s([AIOPS, "--version"], args.repeat)
    examples = median_s([AIOPS, "validate", str(REPO)], args.repeat)
    rows = [
        ("python -c pass (baseline)", python, None, None, None),
        ("aiops --version", version, 0.2, version / python, None),
        ("aiops validate (4 examples)", examples, 0.6, examples / python, None),
    ]
    for n in args.functions:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            generate(root, n)
            check = subprocess.run([AIOPS, "validate", str(root)], capture_output=True,
                                   text=True)
            assert check.returncode == 0, check.stdout[-2000:]
            runs = [measure([AIOPS, "validate", str(root)]) for _ in range(args.repeat)]
            big = statistics.median(r.wall_s for r in runs)
            peak = statistics.median(r.peak_mb for r in runs)
            yaml_only = median_s([sys.executable, "-c", (
                "import yaml,pathlib,sys; L=getattr(yaml,'CSafeLoader',yaml.SafeLoader); "
                f"[yaml.load(p.read_bytes(), Loader=L) for p in pathlib.Path({tmp!r}).glob("
                "'functions/*/function.yaml')]")], args.repeat)
        rows += [
            (f"yaml.safe_load x{n} (baseline)", yaml_only, None, None, None),
            (f"aiops validate x{n} functions", big, 2.0 if n == 1000 else None,
             big / yaml_only, peak),
        ]
    print(f"medians of {args.repeat} runs")
    print(f"{'measure':36} {'seconds':>8} {'target':>7} {'x baseline':>10} {'peak MB':>8}")
    for label, secs, target, ratio, mb in rows:
        t = f"{target:.1f}" if target else ""
        r = f"{ratio:.1f}" if ratio else ""
        m = f"{mb:.0f}" if mb else ""
        ok = "" if target is None else ("  ok" if secs <= target else "  OVER")
        print(f"{label:36} {secs:8.3f} {t:>7} {r:>10} {m:>8}{ok}")


if __name__ == "__main__":
    main()
