"""A recognisable fake key never leaves the provider object: after runs that succeed and fail
(including a 401 whose body echoes the key), it is nowhere in the database, the log rows,
stdout, stderr or the files written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from aiops.providers.mock_server import MockConfig
from aiops.reconcile import apply_project
from tests import fixtures_providers as runner_project

CANARY = {"openai": "sk-CANARY-openai-7f3a9e1b2c4d5e6f", "groq": "gsk_CANARY_groq_0a1b2c3d4e5f",
          "hmac": "CANARY-hmac-secret-9z8y7x"}


def _aiops(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aiops", *args, "-C", str(root)], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_keys_never_leak(tmp_path: Path, mock_provider_factory: Any) -> None:
    server = mock_provider_factory(MockConfig(retry_after_s=0.01, timeout_fault_s=1))
    root = runner_project.write(tmp_path / "proj", runner_project.CLASSIFY,
                                dict(runner_project.CLASSIFY, name="classify-http",
                                     provider="internal", model="house-model", fallbacks=[]))
    db = tmp_path / "proj" / ".aiops" / "aiops.db"
    db.parent.mkdir(parents=True)
    url = f"sqlite:///{db}"
    apply_project(root, url=url, actor="ci <ci@example.com>")
    env = {**os.environ, **runner_project.env_for(server.url, **CANARY),
           "AIOPS_DATABASE_URL": url}
    good = '{"subject": "s", "body": "b"}'
    outputs = []

    outputs.append(_aiops(root, env, "run", "classify", "--input", good))
    assert outputs[-1].returncode == 0, outputs[-1].stderr
    outputs.append(_aiops(root, env, "run", "classify-http", "--input", good))
    assert outputs[-1].returncode == 0, outputs[-1].stderr
    for fault, code in (("auth", 4), ("schema", 5)):
        server.app.force_fault(fault)
        outputs.append(_aiops(root, env, "run", "classify", "--input", good))
        assert outputs[-1].returncode == code, (fault, outputs[-1].stderr)
        outputs.append(_aiops(root, env, "--debug", "run", "classify-http", "--input", good))
        assert outputs[-1].returncode != 0
    server.app.force_fault("auth")
    batch = tmp_path / "proj" / "in.jsonl"
    batch.write_text(good + "\n" + good + "\n", encoding="utf-8")
    outputs.append(_aiops(root, env, "run", "classify", "--input-file", str(batch), "--output",
                          str(tmp_path / "proj" / "out.jsonl")))
    server.app.force_fault(None)
    outputs.append(_aiops(root, env, "logs", "classify", "--json", "--limit", "100"))
    outputs.append(_aiops(root, env, "logs", "classify-http", "--limit", "100"))
    assert outputs[-2].returncode == 0 and outputs[-2].stdout.count("\n") == 5

    for proc in outputs:
        for value in CANARY.values():
            assert value not in proc.stdout and value not in proc.stderr, proc.args
    for path in (tmp_path / "proj").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for value in CANARY.values():
                assert value.encode() not in data, path
    import sqlite3

    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        dump = "\n".join(str(row) for t in tables for row in conn.execute(f'SELECT * FROM "{t}"'))
    # The key was sent (the mock echoed it in its 401 body) and was scrubbed from the attempts.
    assert "classify" in dump and "Incorrect API key provided: [redacted]" in dump
    for value in CANARY.values():
        assert value not in dump
