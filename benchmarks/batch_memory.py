"""Peak memory of a batch as its input grows (issue 9: a 1,000,000-line batch must run in the
memory of a 10,000-line one).

Each size runs `aiops run NAME --input-file in.jsonl --output out.jsonl` in its own process
against the mock provider at 0 ms latency (in its own process too), and reports that
process's peak RSS (`os.wait4`'s `ru_maxrss`, from a small launcher), next to a bare client
in the same run: aiohttp
posting the same requests from the same file, streamed, with the same concurrency, writing
each answer to a file (no runner, no database, no SDK).

    .venv/bin/python benchmarks/batch_memory.py [--sizes 10000 100000 1000000]
        [--provider http|openai] [--concurrency 32] [--line-bytes N]

The 1,000,000-line run takes several minutes (it is a benchmark, not a test). `--line-bytes`
pads each input to about N bytes and runs `bench-big` (inputs up to 4 MiB) over the http
provider: big lines, where a bound counted in lines is not a bound on memory
(`--sizes 2000 --line-bytes 2000000`: 2,000 lines of 2 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from measure import measure
from runner import INPUT, SDK_BODY, bench_env, make_project, start_mock

FUNCTIONS = {"http": "bench-http", "openai": "bench"}

BARE_CLIENT = """
import asyncio, json, sys
import aiohttp

async def main(path, out, url, concurrency):
    body = json.loads(sys.argv[5])
    gate = asyncio.Semaphore(concurrency)
    running = set()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        with open(path, "rb") as source, open(out, "w") as sink:
            async def one(line):
                try:
                    request = dict(body, messages=[{"role": "user", "content": line}])
                    async with session.post(url + "/v1/chat/completions", json=request,
                                            headers={"authorization": "Bearer x"}) as reply:
                        sink.write(json.dumps(await reply.json()) + "\\n")
                finally:
                    gate.release()

            for raw in source:
                await gate.acquire()
                task = asyncio.ensure_future(one(raw.decode()))
                running.add(task)
                task.add_done_callback(running.discard)
            await asyncio.gather(*running)

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


def write_input(path: Path, n: int, line_bytes: int = 0) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            body = f"{INPUT['body']} #{i}"
            body += "x" * max(0, line_bytes - len(body) - 60)
            handle.write(json.dumps(dict(INPUT, body=body)) + "\n")


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--provider", choices=sorted(FUNCTIONS), default="http")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--line-bytes", type=int, default=0,
                        help="pad each input line to about this many bytes (runs bench-big)")
    args = parser.parse_args()
    function = "bench-big" if args.line_bytes else FUNCTIONS[args.provider]
    aiops = [sys.executable, "-m", "aiops"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        db = make_project(root)
        mock, url = start_mock(0)
        env = {**os.environ, **bench_env(url), "AIOPS_DATABASE_URL": db,
               "AIOPS_RATE_LIMIT_URL": ""}
        lines = f", lines of {args.line_bytes:,} bytes" if args.line_bytes else ""
        provider = "http" if args.line_bytes else args.provider
        print(f"Peak RSS of a batch ({provider} provider, concurrency {args.concurrency}"
              f"{lines}, mock at 0 ms in its own process):")
        print(f"  {'lines':>9}  {'client':24} {'peak RSS MB':>11} {'seconds':>8} {'lines/s':>8}"
              "  output lines")
        try:
            first: float | None = None
            for n in args.sizes:
                source, out = root / "in.jsonl", root / "out.jsonl"
                write_input(source, n, args.line_bytes)
                runs = [("bare aiohttp client", [sys.executable, "-c", BARE_CLIENT, str(source),
                                                 str(out), url, str(args.concurrency),
                                                 json.dumps(SDK_BODY)]),
                        ("aiops run (batch)", [*aiops, "run", function,
                                               "--input-file", str(source), "--output", str(out),
                                               "--concurrency", str(args.concurrency), "-C",
                                               str(root)])]
                for label, command in runs:
                    m = measure(command, env)
                    seconds, rss, code = m.wall_s, m.peak_mb, m.status
                    written = count_lines(out)
                    note = "" if code == 0 else f"  (exit {code})"
                    if label.startswith("aiops"):
                        first = first or rss
                        note += f"  ({rss / first:.2f}x the first size)"
                    print(f"  {n:>9,}  {label:24} {rss:11.1f} {seconds:8.1f} {n / seconds:8.0f}"
                          f"  {written:,}{note}", flush=True)
                    out.unlink()
        finally:
            mock.terminate()
            mock.wait()


if __name__ == "__main__":
    main()
