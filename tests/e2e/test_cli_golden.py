"""`aiops test` through the real console script: replay with sockets blocked in the process,
reports on disk, misses with their difference, recording against the mock provider."""

from __future__ import annotations

import json
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from aiops.providers.mock_server import MockConfig, MockServer, serve_in_thread
from tests.e2e.helpers import aiops
from tests.fixtures_golden import CANARY, EXAMPLE_ANSWERS, mock_env

SITECUSTOMIZE = '''
import os, socket
def _refuse(self, address):
    raise OSError(f"aiops test replay must not connect (tried {address!r})")
socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
open(os.environ["SOCKET_BLOCK_MARKER"], "w").write("blocked")
'''
KEY_VARS = ("OPENAI_API_KEY", "GROQ_API_KEY", "INTERNAL_AIOPS_SECRET")


@pytest.fixture
def offline_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment whose Python processes cannot open any socket, and hold no key."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)
    return {"PYTHONPATH": str(site), "SOCKET_BLOCK_MARKER": str(tmp_path / "marker")}


def test_replay_passes_offline_and_writes_reports(repo_root: Path, tmp_path: Path,
                                                  offline_env: dict[str, str]) -> None:
    junit, markdown = tmp_path / "out/junit.xml", tmp_path / "out/golden.md"
    result = aiops("test", "--junit-xml", junit, "--markdown-out", markdown, cwd=repo_root,
                   env=offline_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "marker").read_text() == "blocked"  # the block was in force
    assert "14 passed of 14" in result.stdout
    assert "classify-ticket::double-charge  groq      llama-3.3-70b-versatile  ok" in \
        result.stdout
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("14", "0", "0")
    assert markdown.read_text().startswith("<!-- aiops-golden-tests -->")


def test_json_format_and_selection(repo_root: Path, offline_env: dict[str, str]) -> None:
    result = aiops("test", "classify-ticket", "--provider", "groq", "--format", "json",
                   cwd=repo_root, env=offline_env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["format_version"] == 1 and data["ok"]
    assert [(r["provider"], r["test"]) for r in data["results"]] == [
        ("groq", "double-charge"), ("groq", "login-broken")]
    assert data["results"][0]["output"]["queue"] == "billing"


def test_a_prompt_change_fails_with_the_difference_and_the_fix(
        golden_project: Path, offline_env: dict[str, str]) -> None:
    spec = golden_project / "functions/translate/function.yaml"
    spec.write_text(spec.read_text().replace("Keep names, numbers and formatting.",
                                             "Keep names and numbers."))
    result = aiops("test", "translate", "-C", golden_project, env=offline_env)
    assert result.returncode == 1
    out = result.stdout
    assert "MISS translate[internal]::hello-french" in out
    assert ("  -- content: Translate faithfully. Keep names, numbers and formatting. Reply with "
            "the translation only.\n  +- content: Translate faithfully. Keep names and numbers. "
            "Reply with the translation only.\n") in out
    assert "fix: if the change is intended, re-record: aiops test translate --provider " \
           "internal --record" in out
    assert "4 miss of 4" in out


def test_record_against_the_mock_then_replay(golden_project: Path, example_mock: MockServer,
                                             offline_env: dict[str, str]) -> None:
    for path in golden_project.glob("functions/summarize/cassettes/*/*.yaml"):
        path.unlink()
    missing = aiops("test", "summarize", "-C", golden_project, env=offline_env)
    assert missing.returncode == 1 and "NO CASSETTE" in missing.stdout
    recorded = aiops("test", "summarize", "--record", "-C", golden_project,
                     env=mock_env(example_mock) | {"PATH": "/usr/bin:/bin"})
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert recorded.stdout.count("[recorded 1]") == 4
    files = sorted(golden_project.glob("functions/summarize/cassettes/*/*.yaml"))
    assert [f.relative_to(golden_project / "functions/summarize/cassettes").as_posix()
            for f in files] == ["groq/default-bullets.yaml", "groq/short-article.yaml",
                                "openai/default-bullets.yaml", "openai/short-article.yaml"]
    assert not any(CANARY in f.read_text() for f in files)
    replayed = aiops("test", "summarize", "-C", golden_project, env=offline_env)
    assert replayed.returncode == 0, replayed.stdout


def test_record_without_keys_says_what_to_set(golden_project: Path,
                                              offline_env: dict[str, str]) -> None:
    result = aiops("test", "summarize", "--record", "-C", golden_project, env=offline_env)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: --record calls the providers and needs their keys: "
                                    "set GROQ_API_KEY (groq), OPENAI_API_KEY (openai)")
    assert "Traceback" not in result.stderr


def test_unknown_function_is_a_usage_error(repo_root: Path) -> None:
    result = aiops("test", "summarise", cwd=repo_root)
    assert result.returncode == 2
    assert "no function named summarise" in result.stderr


def test_a_cassette_from_another_project_is_one_line_and_the_others_still_run(
        golden_project: Path, realdata: Path, offline_env: dict[str, str]) -> None:
    """A plain vcrpy cassette (openinference's, read from the shared recordings) where an
    aiops cassette belongs. Before: every test aborted with `internal error:
    AttributeError`."""
    cassette = "functions/classify-ticket/cassettes/openai/double-charge.yaml"
    (golden_project / cassette).write_bytes(
        (realdata / "openai/openinference__cached_tokens.yaml").read_bytes())
    result = aiops("test", "-C", golden_project, env=offline_env)
    assert result.returncode == 1
    assert "internal error" not in result.stdout + result.stderr and not result.stderr
    said = [line.strip() for line in result.stdout.splitlines() if "not an aiops" in line]
    assert said == [
        f"{cassette}: not an aiops cassette: `interactions[0].response.body` is a mapping, as "
        "in vcrpy's own layout (`body: {string: ...}`): a cassette written by another tool; "
        "delete it and record it again: aiops test classify-ticket --provider openai "
        "--record"]
    assert "13 passed, 1 error of 14" in result.stdout


def test_latency_is_the_executions_not_the_sdks_first_use(golden_project: Path) -> None:
    """A fresh process records against a mock that answers in 50 ms. Before: the first
    OpenAI case measured 445-828 ms (its SDK imported and built inside the clock), the
    others 55 ms, so `max_latency_ms` failed the first case alone."""
    for path in golden_project.glob("functions/*/cassettes/*/*.yaml"):
        path.unlink()
    with serve_in_thread(MockConfig(latency_ms=50, responses=EXAMPLE_ANSWERS)) as server:
        result = aiops("test", "classify-ticket", "summarize", "--record", "--format", "json",
                       "-C", golden_project, env=mock_env(server) | {"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr
    cases = json.loads(result.stdout)["results"]
    assert (cases[0]["provider"], len(cases)) == ("openai", 8)
    latencies = [c["latency_ms"] for c in cases]
    median = statistics.median(latencies[1:])
    assert min(latencies) >= 50  # the mock's own latency is in every one
    assert latencies[0] < 3 * median + 25, latencies
