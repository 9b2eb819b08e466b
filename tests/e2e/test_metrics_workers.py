"""/metrics of a real `aiops serve --workers 2`: whichever worker answers a scrape, it counts
the executions of every process that shares the server's metrics folder, and only those of
this run (the folder is emptied at start); the folder the server makes for itself is private
and removed when it stops. `aiops run` loads neither Prometheus nor OpenTelemetry."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import fixtures_providers as runner_project
from tests.e2e.helpers import AIOPS, stop
from tests.fixtures_db import apply_project
from tests.fixtures_server import make_tokens

# What a worker does with every execution it runs: count it in the shared folder.
WORKER = """
import asyncio, sys
from pathlib import Path
from aiops import commands
from aiops.commands.metrics import enable_metrics
enable_metrics()
ws = commands.open_workspace(Path(sys.argv[1]), database_url=sys.argv[2])
for i in range(int(sys.argv[3])):
    result = asyncio.run(commands.run(ws, "classify", {"subject": "s", "body": str(i)}))
    assert result.ok, result.error
"""


@pytest.fixture
def project(tmp_path: Path, mock_provider: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    url = f"sqlite:///{tmp_path / 'aiops.db'}"
    monkeypatch.setenv("AIOPS_PROJECT", "test-project")
    for name, value in runner_project.env_for(mock_provider.url).items():
        monkeypatch.setenv(name, value)
    root = runner_project.write(tmp_path / "proj", runner_project.CLASSIFY)
    apply_project(root, url=url, actor="ci")
    tokens = make_tokens(root, url)
    return root, url, tokens["viewer"], tokens["invoker"]


def count_in(folder: Path, root: Path, url: str, executions: int) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    done = subprocess.run([sys.executable, "-c", WORKER, str(root), url, str(executions)], env=env,
                   check=False, timeout=120, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture
def serve(unused_port: int, tmp_path: Path) -> Iterator[Any]:
    started: list[subprocess.Popen[str]] = []
    log = tmp_path / "serve.log"

    def start(root: Path, url: str, env: dict[str, str]) -> tuple[str, subprocess.Popen[str]]:
        with log.open("w") as out:
            process = subprocess.Popen(
                [AIOPS, "serve", "-C", str(root), "--database-url", url, "--port",
                 str(unused_port), "--workers", "2"], env={**os.environ, **env},
                stdout=out, stderr=subprocess.STDOUT, text=True)
        started.append(process)
        base = f"http://127.0.0.1:{unused_port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    return base, process
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("aiops serve did not answer within 60 s")

    yield start
    for process in started:
        stop(process)


def executions(base: str, token: str) -> float:
    response = httpx.get(base + "/metrics", headers={"Authorization": f"Bearer {token}"},
                         timeout=10)
    assert response.status_code == 200, response.text
    return sum(s.value for family in text_string_to_metric_families(response.text)
               for s in family.samples
               if s.name == "aiops_executions_total" and s.labels["function"] == "classify")


def test_every_worker_answers_with_the_sum_of_all_processes(
        project: Any, serve: Any, tmp_path: Path) -> None:
    root, url, token, _ = project
    folder = tmp_path / "prom"
    folder.mkdir()
    count_in(folder, root, url, 2)  # a run before this server's: not counted by it
    assert list(folder.glob("counter_*.db"))
    base, _ = serve(root, url, {"PROMETHEUS_MULTIPROC_DIR": str(folder)})
    assert not list(folder.glob("*.db"))
    assert executions(base, token) == 0
    count_in(folder, root, url, 3)
    count_in(folder, root, url, 2)
    # Connections are spread over both workers: every answer is the sum.
    assert {executions(base, token) for _ in range(12)} == {5}
    assert httpx.get(base + "/metrics", timeout=10).status_code == 401


def test_executions_through_the_api_are_counted_once_whichever_worker_ran_them(
        project: Any, serve: Any, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    root, url, token, invoker = project
    base, _ = serve(root, url, {"TMPDIR": str(tmp_path)})

    def run(i: int) -> int:
        body = {"input": {"subject": "s", "body": str(i)}} if i % 4 else {"input": {"x": 1}}
        return httpx.post(f"{base}/api/functions/classify/run", json=body, timeout=60,
                          headers={"Authorization": f"Bearer {invoker}"}).status_code

    with ThreadPoolExecutor(8) as pool:  # new connections, at once: both workers take some
        statuses = list(pool.map(run, range(16)))
    assert statuses.count(200) == 12 and len(statuses) == 16, statuses

    def by_outcome() -> dict[str, float]:
        response = httpx.get(base + "/metrics", headers={"Authorization": f"Bearer {token}"},
                             timeout=10)
        counts: dict[str, float] = {}
        for family in text_string_to_metric_families(response.text):
            for s in family.samples:
                if s.name == "aiops_executions_total":
                    key = s.labels["outcome"] + "/" + s.labels["error_type"]
                    counts[key] = counts.get(key, 0) + s.value
        return counts

    assert all(by_outcome() == {"ok/": 12, "error/InputError": 4} for _ in range(12))


def test_the_servers_own_folder_is_private_and_removed_when_it_stops(
        project: Any, serve: Any, tmp_path: Path) -> None:
    root, url, token, _ = project
    temp = tmp_path / "tmp"
    temp.mkdir()
    base, process = serve(root, url, {"TMPDIR": str(temp)})
    [folder] = temp.glob("aiops-metrics-*")
    assert folder.stat().st_mode & 0o777 == 0o700
    assert executions(base, token) == 0
    count_in(folder, root, url, 1)
    assert executions(base, token) == 1
    stop(process)  # SIGINT: uvicorn stops its workers, then `aiops serve` removes the folder
    assert process.returncode == 0
    assert not folder.exists()


def test_a_metrics_folder_that_is_a_file_is_refused_in_one_line(tmp_path: Path) -> None:
    from tests.e2e.helpers import aiops

    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    result = aiops("serve", "-C", tmp_path, "--port", "0",
                   env={"PROMETHEUS_MULTIPROC_DIR": str(taken)})
    assert result.returncode == 1, result.stderr
    assert f"PROMETHEUS_MULTIPROC_DIR={taken}: not a folder" in result.stderr
    assert "Traceback" not in result.stderr
    assert taken.read_text() == "not a folder"


def test_run_loads_neither_prometheus_nor_opentelemetry() -> None:
    code = ("import sys\n"
            "import aiops.cli.run, aiops.commands.execution, aiops.runner\n"
            "print(sorted({'prometheus_client', 'opentelemetry'} & {m.split('.')[0] "
            "for m in sys.modules}))\n")
    env = {k: v for k, v in os.environ.items() if k != "AIOPS_OTEL"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env=env)
    assert result.stdout.strip() == "[]"
