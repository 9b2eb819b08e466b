"""A recognisable fake key never leaves the provider object: after runs that succeed and fail
(including a 401 whose body echoes the key), it is nowhere in the database, the log rows,
stdout, stderr or the files written. A backend that echoes the key in every form (upper-case,
URL-encoded, JSON-escaped, base64) into successful answers and errors leaks it nowhere either:
not in outputs, --output files, log rows, golden-test cassettes."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiops.providers.mock_server import MockConfig
from tests import fixtures_providers as runner_project
from tests.factories import spec_data
from tests.fixtures_db import apply_project
from tests.fixtures_providers import send_json, serve_http

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


# --- a backend that echoes the key it was sent, in every form, in answers that succeed ------

ECHO_KEYS = {"openai": "sk-CANARY-echo-openai-4d3c2b1a0f9e",
             "groq": "gsk_CANARY_echo_groq_8h7g6f5e", "hmac": "CANARY-echo-hmac-secret-7q6p5o"}


def echoed(key: str) -> str:
    """The key as a careless backend might repeat it: as is, upper- and lower-cased,
    URL-encoded, JSON-escaped, and base64-encoded inside a Basic credential."""
    return " | ".join([key, key.upper(), key.lower(), quote(key, safe=""),
                       json.dumps({"k": key})[6:-1],
                       base64.b64encode(f"user:{key}".encode()).decode()])


def forms(key: str) -> list[str]:
    """What must appear nowhere (compared case-insensitively)."""
    return [key, quote(key, safe=""), base64.b64encode(f"user:{key}".encode()).decode()[8:-4]]


class Echo(BaseHTTPRequestHandler):
    """An OpenAI-, Groq- and aiops-protocol backend whose answers, good or bad, echo the key."""

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if self.path.endswith("/v1/complete"):
            key = ECHO_KEYS["hmac"]  # never sent: a backend that knows it and repeats it
        else:
            key = (self.headers.get("authorization") or "").removeprefix("Bearer ")
        text = echoed(key)
        if "fail" in json.dumps(request):
            send_json(self, 401, {"error": {"message": f"bad key {text}",
                                            "code": "invalid_api_key"}})
            return
        schema = request.get("output_schema") or (request.get("response_format") or {}).get(
            "json_schema", {}).get("schema")
        content = json.dumps({"answer": text}) if schema else text
        if self.path.endswith("/v1/complete"):
            send_json(self, 200, {"output": json.loads(content) if schema else content,
                             "usage": {"input_tokens": 3, "output_tokens": 4}})
            return
        send_json(self, 200, {"id": "c1", "model": request["model"], "choices": [{
            "index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4}})

    def log_message(self, *args: Any) -> None:
        pass


def _echo_function(name: str, provider: str, model: str, output: dict[str, Any]) -> dict[str, Any]:
    return spec_data(name, description=None, configuration=None, provider=provider, model=model,
                     prompt=[{"role": "user", "content": "Echo {{ text }}"}],
                     input_schema={"type": "object", "required": ["text"],
                                   "properties": {"text": {"type": "string"}}},
                     output_schema=output, retry={"max_attempts": 1},
                     tests=[{"name": "echo", "input": {"text": "hello"},
                             "expect": [{"schema_valid": True}]}])


def test_keys_echoed_in_any_form_never_leak(tmp_path: Path) -> None:
    answer = {"type": "object", "required": ["answer"],
              "properties": {"answer": {"type": "string"}}}
    root = runner_project.write(
        tmp_path / "proj", _echo_function("echo", "openai", "gpt-4o-mini", answer),
        _echo_function("echo-text", "groq", "llama-3.1-8b-instant", {"type": "string"}),
        _echo_function("echo-http", "internal", "house-model", answer))
    db = tmp_path / "proj" / ".aiops" / "aiops.db"
    db.parent.mkdir(parents=True)
    url = f"sqlite:///{db}"
    apply_project(root, url=url, actor="ci")
    good, bad = '{"text": "hi"}', '{"text": "please fail"}'
    batch = tmp_path / "proj" / "in.jsonl"
    batch.write_text(f"{good}\n{bad}\n{good}\n", encoding="utf-8")
    outputs = []
    with serve_http(Echo) as backend:
        env = {**os.environ, **runner_project.env_for(backend, **ECHO_KEYS),
               "AIOPS_DATABASE_URL": url}
        for name in ("echo", "echo-text", "echo-http"):
            outputs.append(_aiops(root, env, "run", name, "--input", good))
            assert outputs[-1].returncode == 0, outputs[-1].stderr
            assert "[redacted]" in outputs[-1].stdout  # the answer is there, the key is not
            if name == "echo":  # an error on stderr (the batches put theirs in --output)
                outputs.append(_aiops(root, env, "run", name, "--input", bad))
                assert outputs[-1].returncode == 4, outputs[-1].stderr
            outputs.append(_aiops(root, env, "run", name, "--input-file", str(batch),
                                  "--output", str(tmp_path / "proj" / f"{name}.jsonl")))
            outputs.append(_aiops(root, env, "test", name, "--record"))
            assert outputs[-1].returncode == 0, outputs[-1].stdout + outputs[-1].stderr
        outputs.append(_aiops(root, env, "logs", "echo", "--json", "--limit", "100"))
    for name in ("echo", "echo-text", "echo-http"):
        lines = (tmp_path / "proj" / f"{name}.jsonl").read_text().splitlines()
        assert len(lines) == 3 and all("[redacted]" in line for line in lines), lines
    assert len(list((tmp_path / "proj" / "functions").rglob("cassettes/*/*.yaml"))) == 3

    texts = [p.stdout + p.stderr for p in outputs]
    texts += [p.read_bytes().decode(errors="replace") for p in (tmp_path / "proj").rglob("*")
              if p.is_file() and p.suffix != ".db"]
    import sqlite3

    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        texts.append("\n".join(str(row) for t in tables for row in conn.execute(
            f'SELECT * FROM "{t}"')))
    assert "[redacted]" in texts[-1]
    for key in ECHO_KEYS.values():
        for form in forms(key):
            for text in texts:
                assert form.lower() not in text.lower(), (form, text[:300])
