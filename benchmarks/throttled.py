"""A throttled batch (issue 10): Groq's free-tier limits on the primary, 30% injected faults.

`aiops run NAME --input-file in.jsonl --output out.jsonl` (the command a user runs, progress
bar and all) over a function whose primary provider has Groq's free-tier limits (rpm 30, tpm
6000) and whose two fallbacks have no tight limits, against the mock provider (in its own
process) injecting faults into 30% of the requests. Prints the share of lines that succeeded,
the log rows written (and how many belong to an output line), the wall time, and which
provider answered how many lines.

    .venv/bin/python benchmarks/throttled.py [--items 300] [--concurrency 32]
        [--fault-rate 0.3] [--on-limit fallback|wait|fail]   # default: the format's default
        [--seed N] [--max-attempts N] [--max-wait S] [--slowest N]

Targets: >= 99% ok, exactly one log row per line, seconds not minutes. A line whose fallbacks
all fail (every attempt of both hits a fault) waits for the primary it passed over, up to
about a minute: `--slowest 3` shows its attempts, `--max-wait 5` trades that wait for a
failure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

PRICE = {"input_per_mtok": 0.05, "output_per_mtok": 0.08}
PROVIDERS = {"providers": {
    # Groq's free tier. Short timeouts: a `timeout` fault holds its request far longer.
    "groq": {"type": "groq", "api_key_env": "BENCH_KEY", "timeout_s": 1,
             "limits": {"rpm": 30, "tpm": 6000},
             "models": {"llama-3.1-8b-instant": PRICE}},
    "openai": {"type": "openai", "api_key_env": "BENCH_KEY", "timeout_s": 1,
               "limits": {"rpm": 10_000, "tpm": 10_000_000},
               "models": {"gpt-4o-mini": PRICE}},
    "internal": {"type": "http", "base_url": "http://127.0.0.1:9/aiops", "timeout_s": 1,
                 "models": {"house": PRICE}},
}}
FUNCTION: dict[str, Any] = {
    "apiVersion": "aiops/v1", "name": "summarize", "version": "1.0.0",
    "provider": "groq", "model": "llama-3.1-8b-instant",
    "configuration": {"temperature": 0.2, "max_tokens": 150},
    "prompt": [{"role": "system", "content": "You are a concise editor. Answer with JSON."},
               {"role": "user", "content": "Summarize in at most 3 bullets:\n{{ text }}"}],
    "input_schema": {"type": "object", "required": ["text"], "properties": {
        "text": {"type": "string", "minLength": 1}}, "additionalProperties": False},
    "output_schema": {"type": "object", "required": ["bullets"], "properties": {
        "bullets": {"type": "array", "minItems": 1, "maxItems": 3,
                    "items": {"type": "string", "minLength": 1}}},
        "additionalProperties": False},
    "fallbacks": [{"provider": "openai", "model": "gpt-4o-mini"},
                  {"provider": "internal", "model": "house"}],
    "retry": {"max_attempts": 3, "backoff_s": 0.05, "max_backoff_s": 2, "repair_attempts": 2},
}


def start_mock(fault_rate: float, seed: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "aiops", "mock-provider", "--port", "0",
                             "--fault-rate", str(fault_rate), "--seed", str(seed)],
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    url = proc.stderr.readline().split()[-1]
    time.sleep(0.3)
    return proc, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument("--on-limit", choices=["fallback", "wait", "fail"],
                        help="the function's `limits.on_limit` (default: not set)")
    parser.add_argument("--seed", type=int, default=0, help="the mock's fault sequence")
    parser.add_argument("--max-attempts", type=int, default=FUNCTION["retry"]["max_attempts"],
                        help="the function's `retry.max_attempts`")
    parser.add_argument("--max-wait", type=float, help="`aiops run --max-wait` (default: none)")
    parser.add_argument("--slowest", type=int, default=0,
                        help="print the attempts of the N slowest executions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "providers.yaml").write_text(yaml.safe_dump(PROVIDERS))
        function = dict(FUNCTION, retry=dict(FUNCTION["retry"], max_attempts=args.max_attempts))
        if args.on_limit:
            function["limits"] = {"on_limit": args.on_limit}
        (root / "functions" / "summarize").mkdir(parents=True)
        (root / "functions" / "summarize" / "function.yaml").write_text(
            yaml.safe_dump(function, sort_keys=False))
        db = f"sqlite:///{root / 'bench.db'}"
        from aiops import commands
        from aiops.store import open_store

        store = open_store(db, migrate=True)
        commands.apply(commands.open_workspace(root, database_url=db), store=store,
                       actor="bench <bench@example.com>")
        inputs = root / "in.jsonl"
        with inputs.open("w", encoding="utf-8") as handle:
            for i in range(args.items):
                handle.write(json.dumps({"text": f"Article {i}: the quick brown fox jumps "
                                         "over the lazy dog. " * 4}) + "\n")
        mock, url = start_mock(args.fault_rate, args.seed)
        env = dict(os.environ, BENCH_KEY="sk-bench", AIOPS_DATABASE_URL=db,
                   AIOPS_GROQ_BASE_URL=url, AIOPS_OPENAI_BASE_URL=url + "/v1",
                   AIOPS_INTERNAL_BASE_URL=url + "/aiops")
        out = root / "out.jsonl"
        try:
            start = time.perf_counter()
            bound = ["--max-wait", str(args.max_wait)] if args.max_wait is not None else []
            done = subprocess.run([sys.executable, "-m", "aiops", "run", "summarize",
                                   "--input-file", str(inputs), "--output", str(out),
                                   "--concurrency", str(args.concurrency), "-C", str(root),
                                   *bound], env=env, capture_output=True, text=True)
            elapsed = time.perf_counter() - start
        finally:
            mock.terminate()
            mock.wait()
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        ok = sum(1 for line in lines if line["error"] is None)
        errors = Counter(line["error"]["type"] for line in lines if line["error"] is not None)
        rows = store.recent_logs("summarize", limit=10 * args.items)
        ids = {line["log_id"] for line in lines}
        matching = sum(1 for row in rows if row.id in ids)
        by = Counter(row.provider or "-" for row in rows)
        summary = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
        print(f"Throttled batch: {args.items} items, {args.fault_rate:.0%} injected faults "
              f"(seed {args.seed}), groq rpm 30 / tpm 6000, fallbacks openai and internal, "
              f"retry.max_attempts {args.max_attempts}, concurrency {args.concurrency}, "
              f"on_limit {args.on_limit or '(default)'}, --max-wait {args.max_wait or '-'}:")
        print(f"  ok {ok / args.items:.1%} ({ok}/{args.items}; target >= 99%), "
              f"{len(rows)} log rows ({matching} matching an output line; target: one per "
              f"item), wall {elapsed:.1f} s, exit {done.returncode}")
        print(f"  answered by: {', '.join(f'{k} {v}' for k, v in by.most_common())}"
              + (f"; errors: {dict(errors)}" if errors else ""))
        waits = [sum(a.get("limit_wait_ms") or 0 for a in row.metadata["attempts"]) / 1000
                 for row in rows]
        waited = [w for w in waits if w > 0]
        passed = sum(1 for row in rows if any(a.get("kind") == "rate_limit" and a["status"] ==
                                              "skipped" for a in row.metadata["attempts"]))
        print(f"  {passed} passed over the primary for a lack of room; {len(waited)} waited "
              f"for room, the longest {max(waited, default=0):.1f} s")
        print(f"  aiops: {summary}")
        if args.slowest:
            for row in sorted(rows, key=lambda r: -(r.execution_time or 0))[:args.slowest]:
                print(f"  {row.execution_time:9.1f} ms {row.status}:")
                for a in row.metadata["attempts"]:
                    print("     ", {k: a.get(k) for k in ("provider", "status", "kind",
                                                           "latency_ms", "limit_wait_ms")})


if __name__ == "__main__":
    main()
