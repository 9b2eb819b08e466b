"""Edge-case bounds (issue 9): what a hostile provider or a hostile input costs.

1. trickle: a provider that sends its headers, then its (valid) body one byte at a time; the
   time each provider type takes to give up (or to succeed) with `timeout_s` set;
2. oversized body: a provider that answers 200 with a body of `--body-mb` MB; the peak memory
   the client process gains over its resident size before the call, and how the call ends;
3. ReDoS: a pathological `pattern` in an input schema, and the same regex as a `deny` filter,
   against inputs of growing length; the time to answer (each measure stops the series once it
   passes `--redos-cap-s`).

Every provider call goes through the real SDKs (openai, groq) or aiohttp (http) against a
local server of this script; each oversized-body call runs in a fresh process.

    .venv/bin/python benchmarks/edges.py [--trickle-bytes 60] [--interval 0.25] [--timeout 2]
        [--body-mb 512] [--redos-cap-s 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from aiops.errors import AiopsError
from aiops.filters import FilterChain
from aiops.providers import CompletionRequest, make_provider
from aiops.schemas import CompiledSchema
from aiops.spec import ProviderSpec

REQUEST = CompletionRequest(messages=({"role": "user", "content": "hi"},), model="m",
                            function="f", version="1.0.0")
PATHS = {"openai": "/v1", "groq": "", "http": "/aiops"}
EVIL = r"^(a+)+$"


def answer(path: str) -> bytes:
    """A valid success body of the wire format that `path` belongs to."""
    if path.endswith("/v1/complete"):
        return json.dumps({"output": "hi", "usage": {"input_tokens": 1, "output_tokens": 1}})\
            .encode()
    return json.dumps({"id": "c", "model": "m", "choices": [{
        "index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).encode()


class Hostile(BaseHTTPRequestHandler):
    """`trickle`: the body one byte per `interval`; `huge`: a body of `size` bytes, its
    length declared (`declared`) or not (the body ends with the connection)."""

    mode = "trickle"
    interval = 0.25
    pad = 60
    size = 0
    declared = True

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        body = answer(self.path)
        if self.mode == "trickle":
            body = body[:-1] + b" " * self.pad + body[-1:]
        size = len(body) if self.mode == "trickle" else self.size
        self.send_response(200)
        self.send_header("content-type", "application/json")
        if self.mode == "trickle" or self.declared:
            self.send_header("content-length", str(size))
        else:
            self.close_connection = True
            self.send_header("connection", "close")
        self.end_headers()
        try:
            if self.mode == "trickle":
                for i in range(len(body)):
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    time.sleep(self.interval)
            else:
                chunk = b" " * (1 << 20)
                self.wfile.write(body[:-1])
                sent = len(body) - 1
                while sent < size - 1:
                    n = min(len(chunk), size - 1 - sent)
                    self.wfile.write(chunk[:n])
                    sent += n
                self.wfile.write(body[-1:])
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: Any) -> None:
        pass


def serve() -> Any:
    """The hostile server on a free loopback port, in a thread (the tests' helper)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.fixtures_providers import serve_http

    return serve_http(Hostile)


def provider(kind: str, url: str, timeout_s: float) -> Any:
    spec = ProviderSpec.model_validate({"type": kind, "timeout_s": timeout_s,
                                        "api_key_env": "K", "base_url": url + PATHS[kind]}
                                       if kind != "http" else
                                       {"type": kind, "timeout_s": timeout_s,
                                        "base_url": url + PATHS[kind]})
    return make_provider(kind, spec, {"K": "sk-bench"})


async def one_call(kind: str, url: str, timeout_s: float) -> tuple[float, str]:
    """(seconds, outcome) of one call; the provider (and its SDK's import) is made first."""
    p = provider(kind, url, timeout_s)
    start = time.perf_counter()
    try:
        completion = await p.complete(REQUEST)
        outcome = f"ok ({len(completion.text)} chars)"
    except AiopsError as exc:
        outcome = f"{getattr(exc, 'kind', '')}: {exc.message[:60]}"
    finally:
        await p.aclose()
    return time.perf_counter() - start, outcome


def trickle(args: argparse.Namespace) -> None:
    Hostile.mode, Hostile.interval, Hostile.pad = "trickle", args.interval, args.trickle_bytes
    print(f"Trickle: a valid body of ~{args.trickle_bytes + 150} bytes, one byte per "
          f"{args.interval} s; timeout_s {args.timeout}:")
    with serve() as url:
        for kind in ("openai", "groq", "http"):
            took, outcome = asyncio.run(one_call(kind, url, args.timeout))
            print(f"  {kind:7} {took:7.2f} s  {outcome}")


def rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def child(kind: str, url: str, timeout_s: float) -> None:
    asyncio.run(one_call(kind, "http://127.0.0.1:9", 0.01))  # warm imports and the loop
    before = rss_kb("VmRSS")
    took, outcome = asyncio.run(one_call(kind, url, timeout_s))
    print(json.dumps({"gain_mb": (rss_kb("VmHWM") - before) / 1024, "s": took,
                      "outcome": outcome}))


def oversized(args: argparse.Namespace) -> None:
    Hostile.mode, Hostile.size = "huge", args.body_mb << 20
    print(f"Oversized body: 200 with a {args.body_mb} MB body (peak RSS gained by the call, "
          "in a fresh process whose SDK is already imported):")
    with serve() as url:
        for declared in (True, False):
            Hostile.declared = declared
            for kind in ("openai", "groq", "http"):
                out = subprocess.run([sys.executable, __file__, "--child", kind, url],
                                     capture_output=True, text=True, check=False)
                label = f"{kind:7} {'declared' if declared else 'streamed':9}"
                if out.returncode != 0:
                    print(f"  {label} failed: {out.stderr.strip().splitlines()[-1:]}")
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"  {label} +{r['gain_mb']:8.1f} MB  {r['s']:6.2f} s  {r['outcome']}")


def timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def redos(args: argparse.Namespace) -> None:
    schema = CompiledSchema({"type": "object", "properties": {"x": {"type": "string",
                                                                     "pattern": EVIL}}})
    try:
        chain = FilterChain.from_rules([{"deny": EVIL}])
    except ValueError as exc:  # a linear-time engine may refuse a pattern: not this one
        print(f"  deny `{EVIL}` refused: {exc}")
        chain = None
    print(f"ReDoS: `{EVIL}` against 'a' * n + '!' (seconds; series stop past "
          f"{args.redos_cap_s} s):")
    print(f"  {'n':>7} {'schema pattern':>15} {'deny filter':>12}")
    stopped = {"schema": False, "deny": False}
    for n in (16, 18, 20, 22, 24, 26, 29, 1000, 100_000):
        value = {"x": "a" * n + "!"}
        cells = []
        for name, fn in (("schema", lambda v=value: schema.first_error(v)),
                         ("deny", lambda v=value: chain.apply(v) if chain else None)):
            if stopped[name]:
                cells.append("-")
                continue
            took = timed(fn)
            stopped[name] = took > args.redos_cap_s
            cells.append(f"{took:.6f}")
        print(f"  {n:7} {cells[0]:>15} {cells[1]:>12}")
        if all(stopped.values()):
            break


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], 60.0)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trickle-bytes", type=int, default=60)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--body-mb", type=int, default=512)
    parser.add_argument("--redos-cap-s", type=float, default=10.0)
    parser.add_argument("--only", choices=["trickle", "oversized", "redos"])
    args = parser.parse_args()
    os.environ.pop("HTTP_PROXY", None)
    for name, fn in (("trickle", trickle), ("oversized", oversized), ("redos", redos)):
        if args.only in (None, name):
            fn(args)


if __name__ == "__main__":
    main()
