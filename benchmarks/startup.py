"""Start-up benchmark: a single `aiops run` against the mock <= 0.5 s wall, and it must not
grow with the project (DESIGN §10, issue 11); `aiops --help` <= 0.3 s.

First, floors measured in the same run: `python -c pass`, and for each provider type the
libraries its run cannot do without, imported in a bare process (the official SDK of
`openai` or `groq`, aiohttp for the custom `http` protocol; SQLAlchemy for the database).
`aiops run` ends without the interpreter's teardown once it has closed everything
(aiops.cli.end_now), so each is shown both ways: with the teardown a bare `python -c
"import ..."` pays, and without it (`os._exit`). The floor each run is compared with is
more than the import: one call of the same model on the same mock through the bare client
(the SDK's chat completion, which loads its chat resources and HTTP stack; a bare aiohttp
POST for `http`), with SQLAlchemy imported (a run writes its log row with it), ended
without teardown: what any program making that call and keeping a row of it pays. Then,
for each project size, a project of N functions is applied to a temporary SQLite database;
then, against a mock provider in its own process:

1. in process, after the imports: opening the runner (finding the project, its database and
   its providers), the part of a run's start-up that could grow with the number of files;
2. as a command: `aiops run fn-00000 --input ...`, a new process each time: wall time, CPU
   time and peak RSS; with the function's provider of type openai (the SDK) at every size,
   and of type groq and http as well at the first size.

`--baseline PATH/TO/aiops`: another install's `aiops` (say main before a change, in its own
worktree and venv) is measured in the same run, interleaved with this one run for run so
that both see the same load, and each figure is printed before -> after. It runs against
the same projects and database, so it must be of the same schema revision.

Each figure is the median of `--repeat` runs. Bytecode is compiled first (measure.py; the
baseline's own package too, when it is a source checkout).

    .venv/bin/python benchmarks/startup.py [--functions 1 1000 10000] [--repeat 5]
                                           [--baseline ../before/.venv/bin/aiops]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml
from measure import (
    AIOPS,
    Measured,
    compile_bytecode,
    load_average,
    measure,
    median_of,
    mock_provider,
)
from reconcile import function, make_project  # benchmarks/reconcile.py: the same functions

PRICES = {"mock-small": {"input_per_mtok": 0.1, "output_per_mtok": 0.2}}
PROVIDERS = {"providers": {"mock": {"type": "openai", "api_key_env": "MOCK_API_KEY",
                                   "models": PRICES}}}
INPUT = '{"text": "Benchmarks measure."}'
# provider type -> (the libraries its run imports, where its wire API is under the mock)
TYPES = {"openai": ("openai, sqlalchemy", "/v1"), "groq": ("groq, sqlalchemy", ""),
         "http": ("aiohttp, sqlalchemy", "/aiops")}
# One call of each type through its bare client, to the mock at $AIOPS_MOCK_BASE_URL (the
# wire API's URL), with the database library imported: the floor of a run (module docstring).
_SDK_CALL = """
import asyncio, os, sqlalchemy, {module}
async def call():
    client = {module}.{client}(api_key="sk-bench", base_url=os.environ["AIOPS_MOCK_BASE_URL"],
                               max_retries=0)
    answer = await client.chat.completions.create(model="mock-small", messages=MESSAGES)
    print(answer.choices[0].message.content)
asyncio.run(call())
os._exit(0)
"""
_HTTP_CALL = """
import asyncio, os, sqlalchemy, aiohttp
async def call():
    async with aiohttp.ClientSession() as session, session.post(
            os.environ["AIOPS_MOCK_BASE_URL"] + "/v1/complete", json={
                "function": "fn-00000", "version": "1.0.0", "model": "mock-small",
                "messages": MESSAGES, "settings": {}, "output_schema": SCHEMA}) as answer:
        answer.raise_for_status()
        print(await answer.text())
asyncio.run(call())
os._exit(0)
"""
_MESSAGES = [{"role": "user", "content": "Task 0: summarise Benchmarks measure. in 3 bullets."}]
BARE_CALLS = {kind: f"MESSAGES = {_MESSAGES!r}\nSCHEMA = {function(0)['output_schema']!r}\n"
              + (_HTTP_CALL if kind == "http" else _SDK_CALL.format(
                  module=kind, client="AsyncOpenAI" if kind == "openai" else "AsyncGroq"))
              for kind in TYPES}


def shown(label: str, m: Measured, target: float | None = None, base: Measured | None = None,
          before: Measured | None = None) -> str:
    verdict = "" if target is None else ("  ok" if m.wall_s <= target else "  OVER")
    ratio = (f"  {m.wall_s / base.wall_s:4.2f}x the floor's wall, {m.cpu_s / base.cpu_s:4.2f}x "
             "its CPU") if base else ""
    goal = f" (target <= {target} s)" if target is not None else ""
    if before is None:
        return (f"{label:46} {m.wall_s * 1000:6.0f} ms wall, {m.cpu_s * 1000:6.0f} ms CPU, "
                f"{m.peak_mb:5.0f} MB peak{goal}{ratio}{verdict}")
    return (f"{label:46} {before.wall_s * 1000:6.0f} -> {m.wall_s * 1000:4.0f} ms wall "
            f"({m.wall_s / before.wall_s:4.2f}x), {before.cpu_s * 1000:5.0f} -> "
            f"{m.cpu_s * 1000:4.0f} ms CPU, {before.peak_mb:4.0f} -> {m.peak_mb:3.0f} MB"
            f"{goal}{ratio}{verdict}")


def interleaved(commands: Sequence[Sequence[str]], repeat: int,
                env: Mapping[str, str] | None = None) -> list[Measured]:
    """The medians of `repeat` runs of each command, run in turn (a, b, a, b, ...): on a
    noisy machine both see the same load. Every run must exit 0."""
    runs: list[list[Measured]] = [[] for _ in commands]
    for _ in range(repeat):
        for command, seen in zip(commands, runs, strict=True):
            seen.append(measure(command, env))
    for command, seen in zip(commands, runs, strict=True):
        assert all(r.status == 0 for r in seen), f"{command}: {[r.status for r in seen]}"
    return [Measured(statistics.median(r.wall_s for r in seen),
                     statistics.median(r.cpu_s for r in seen),
                     statistics.median(r.peak_mb for r in seen), 0) for seen in runs]


def compared(args: Sequence[str], repeat: int, baseline: str | None,
             env: Mapping[str, str] | None = None, floor: str | None = None
             ) -> tuple[Measured, Measured | None, Measured | None]:
    """`aiops ARGS` (this install's), the baseline's when there is one, and the program
    `floor` (Python source), in the same runs: (after, before, floor)."""
    commands = [[AIOPS, *args]]
    if baseline is not None:
        commands.append([baseline, *args])
    if floor is not None:
        commands.append([sys.executable, "-c", floor])
    got = iter(interleaved(commands, repeat, env))
    after = next(got)
    return (after, next(got) if baseline is not None else None,
            next(got) if floor is not None else None)


def floors(repeat: int) -> None:
    """What the interpreter's teardown costs a bare import of each provider type's
    libraries (the floors of the runs are measured with them, `bench`)."""
    for modules, _ in TYPES.values():
        whole, ended = interleaved([[sys.executable, "-c", f"import {modules}"],
                                    [sys.executable, "-c", f"import os, {modules}; "
                                     "os._exit(0)"]], repeat)
        print(shown(f"import {modules}", whole))
        print(shown("  the same, without teardown", ended))


def bench(n: int, url: str, repeat: int, tmp: Path, baseline: str | None,
          kinds: Sequence[str]) -> None:
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

    for kind in kinds:
        project = root
        if kind != "openai":  # the same project and database, another type of provider
            project = tmp / f"project-{n}-{kind}"
            if not project.exists():
                shutil.copytree(root, project)
            spec = {"type": kind, "models": PRICES}
            if kind == "http":
                spec["base_url"] = f"{url}/aiops"
            else:
                spec["api_key_env"] = "MOCK_API_KEY"
            (project / "providers.yaml").write_text(yaml.safe_dump(
                {"providers": {"mock": spec}}))
        run, before, floor = compared(
            ["run", "fn-00000", "--input", INPUT, "-C", str(project)], repeat, baseline,
            env={**env, "AIOPS_MOCK_BASE_URL": url + TYPES[kind][1]}, floor=BARE_CALLS[kind])
        assert floor is not None
        print(shown(f"n={n:6}: `aiops run`, provider type {kind}", run, 0.5, floor, before))
        print(shown(f"{'':10}its floor: one call, bare {TYPES[kind][0]}", floor))
    print(f"{'':10}open the runner {statistics.median(opens) * 1000:6.1f} ms (in process, "
          "after imports)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--functions", type=int, nargs="+", default=[1, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline", metavar="AIOPS",
                        help="another install's `aiops` executable, measured in the same run")
    args = parser.parse_args()
    compile_bytecode()
    if args.baseline:
        base_python = Path(args.baseline).parent / "python"
        subprocess.run([str(base_python), "-c", "import aiops, compileall, pathlib; "
                        "compileall.compile_dir(pathlib.Path(aiops.__file__).parent, quiet=1)"],
                       check=True)
    print(load_average())
    print(f"medians of {args.repeat} runs"
          + (f"; before: {args.baseline}, after: {AIOPS}" if args.baseline else ""))
    print(shown("python -c pass (baseline)", median_of([sys.executable, "-c", "pass"],
                                                        args.repeat)))
    floors(args.repeat)
    help_, before, _ = compared(["--help"], args.repeat, args.baseline)
    print(shown("aiops --help", help_, 0.3, None, before))
    with tempfile.TemporaryDirectory() as tmp, mock_provider() as url:
        for i, n in enumerate(args.functions):
            bench(n, url, args.repeat, Path(tmp), args.baseline,
                  list(TYPES) if i == 0 else ["openai"])
    print(load_average())
    return 0


if __name__ == "__main__":
    sys.exit(main())
