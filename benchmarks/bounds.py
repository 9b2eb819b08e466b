"""The input bombs of issue 9, each in its own process: seconds and peak memory (RSS).

1. alias bomb: a 970 KB function file, 90,000 aliases of a 700 KB text (`validate`, `plan`);
2. cassette bomb: a 2.5 KB cassette of nine levels of ten aliases (`aiops test`);
3. template bombs: a 60 KB input looped by a template, and nested `range(100000)`, rendered
   the way the runner renders a prompt.

Each process runs with its address space capped (default 3 GiB) and a time limit (default
120 s), so that the figures before the bounds (the issue saw 281 s and 8 GB, 6 GB, SIGABRT,
79 s and 7.7 GB) are reached without taking the machine: such a run reads "MemoryError at the
cap" or "killed at the time limit", with what it had used by then. Run it on a commit with and
without the bounds to compare:

    .venv/bin/python benchmarks/bounds.py [--cap-mib 3072] [--timeout 120]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
AIOPS = str(Path(sys.executable).parent / "aiops")

FUNCTION = """apiVersion: aiops/v1
name: greet
version: 1.0.0
provider: openai
model: gpt-4o-mini
prompt:
  - role: user
    content: "Hello {{ who }}"
input_schema:
  type: object
  properties:
    who: {type: string}
"""

RENDER = """
import sys
from aiops.prompts import compile_prompt
template = sys.argv[1]
prompt = compile_prompt([{"role": "user", "content": template}], ["text"])
try:
    out = prompt.render({"text": "y" * 60_000})
    print("rendered", len(out[0]["content"]), "characters")
except Exception as exc:
    print(type(exc).__name__ + ":", str(exc)[:160])
"""


def run(cmd: list[str], cwd: Path, cap: int, timeout: float) -> tuple[float, float, str]:
    """Seconds, peak RSS in MiB (the child's own, from wait4; at the kill, its high-water
    mark so far), and the outcome's last line."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=limit)
        outcome = ""
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                peak = usage.ru_maxrss / 1024
                break
            if time.perf_counter() - start > timeout:
                peak = _high_water_mib(proc.pid)
                proc.kill()
                _, status, _ = os.wait4(proc.pid, 0)
                outcome = f"killed at the {timeout:.0f} s limit"
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        text = out.read().decode(errors="replace")
    if not outcome:
        lines = [x for x in text.strip().splitlines() if x.strip()]
        outcome = "MemoryError at the cap" if "MemoryError" in text else (
            lines[-1] if lines else f"exit {proc.returncode}")[:110]
    return seconds, peak, outcome


def _high_water_mib(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    line = next((x for x in status.splitlines() if x.startswith("VmHWM:")), "VmHWM: nan kB")
    return float(line.split()[1]) / 1024


def alias_project(root: Path) -> None:
    shutil.copy(REPO / "providers.yaml", root)
    (root / "functions/greet").mkdir(parents=True)
    copies = ",".join(["*a"] * 90_000)
    (root / "functions/greet/function.yaml").write_text(
        FUNCTION + f"metadata:\n  big: &a {'x' * 700_000}\n  copies: [{copies}]\n")


def cassette_project(root: Path) -> None:
    shutil.copy(REPO / "providers.yaml", root)
    shutil.copytree(REPO / "functions", root / "functions")
    path = root / "functions/summarize/cassettes/groq/short-article.yaml"
    bomb = "".join(f"  l{i}: &a{i} [{', '.join([f'*a{i - 1}' if i else 'lol'] * 10)}]\n"
                   for i in range(9))
    text = path.read_text().replace("interactions:\n", "anchors:\n" + bomb + "interactions:\n", 1)
    path.write_text(text.replace("    json:\n", "    json:\n      bomb: *a8\n", 1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cap-mib", type=int, default=3072)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    cap, limit = args.cap_mib << 20, args.timeout
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        aliases, cassettes = Path(tmp) / "aliases", Path(tmp) / "cassettes"
        aliases.mkdir()
        cassettes.mkdir()
        alias_project(aliases)
        cassette_project(cassettes)
        size = (aliases / "functions/greet/function.yaml").stat().st_size
        rows.append((f"alias bomb ({size // 1000} KB): validate",
                     *run([AIOPS, "validate"], aliases, cap, limit)))
        rows.append(("alias bomb: plan", *run([AIOPS, "plan"], aliases, cap, limit)))
        rows.append(("cassette bomb (2.5 KB): aiops test",
                     *run([AIOPS, "test", "summarize", "--provider", "groq"], cassettes, cap,
                          limit)))
        for label, template in (
                ("60 KB input looped by a template",
                 "{% for a in text %}{% for b in text %}{{ text }}{% endfor %}{% endfor %}"),
                ("nested range(100000)",
                 "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}"
                 "{% endfor %}")):
            rows.append((label, *run([sys.executable, "-c", RENDER, template], Path(tmp), cap,
                                     limit)))
    print(f"cap {args.cap_mib} MiB, time limit {limit:.0f} s")
    print(f"{'bomb':40} {'seconds':>8} {'peak MiB':>9}  outcome")
    for label, seconds, peak, outcome in rows:
        print(f"{label:40} {seconds:8.2f} {peak:9.0f}  {outcome}")


if __name__ == "__main__":
    main()
