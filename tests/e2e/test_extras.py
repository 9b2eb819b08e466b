"""The PostgreSQL and Redis drivers are extras: the default path (SQLite, limits in process)
works without them, and a URL that needs one says which extra to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Runs the CLI in a fresh interpreter where the drivers cannot be imported, as in an install
# without the extras.
WITHOUT_DRIVERS = textwrap.dedent("""\
    import sys
    sys.modules["psycopg"] = sys.modules["redis"] = None
    from aiops.cli import main
    sys.argv = ["aiops", *sys.argv[1:]]
    main()
""")


def aiops_without_drivers(*args: str | Path, cwd: Path,
                          env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WITHOUT_DRIVERS, *map(str, args)], cwd=cwd,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), **env},
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_default_path_needs_neither_driver(tmp_path: Path) -> None:
    root = tmp_path / "p"
    for args in (["init", root], ["validate", root], ["plan", "-C", root],
                 ["apply", "-C", root, "--auto-approve"], ["test", "-C", root],
                 ["status", "-C", root]):
        result = aiops_without_drivers(*args, cwd=tmp_path, env={})
        assert result.returncode == 0, (args, result.stdout + result.stderr)


@pytest.mark.parametrize("url", ["postgresql://u@127.0.0.1:1/db",
                                 "postgresql+psycopg://u:hunter2@127.0.0.1:1/db"])
def test_a_postgres_url_without_the_extra_names_it(tmp_path: Path, url: str) -> None:
    root = tmp_path / "p"
    assert aiops_without_drivers("init", root, cwd=tmp_path, env={}).returncode == 0
    result = aiops_without_drivers("plan", "-C", root, cwd=tmp_path,
                                   env={"AIOPS_DATABASE_URL": url})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "needs the `psycopg` package, which is not installed: pip install " \
        "'aiops-kit[postgres]'" in result.stderr
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr


def test_a_redis_rate_limit_url_without_the_extra_names_it(tmp_path: Path) -> None:
    root = tmp_path / "p"
    assert aiops_without_drivers("init", root, cwd=tmp_path, env={}).returncode == 0
    providers = root / "providers.yaml"
    assert "limits: {rpm: 30, tpm: 6000}" in providers.read_text()
    env = {"AIOPS_RATE_LIMIT_URL": "redis://:hunter2@127.0.0.1:1/0", "GROQ_API_KEY": "k",
           "AIOPS_GROQ_BASE_URL": "http://127.0.0.1:1"}
    assert aiops_without_drivers("apply", "-C", root, "--auto-approve", cwd=tmp_path,
                                 env=env).returncode == 0
    result = aiops_without_drivers("run", "hello", "-C", root, "--input", '{"text": "hi"}',
                                   cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "AIOPS_RATE_LIMIT_URL=redis://:***@127.0.0.1:1/0 needs the `redis` package, which " \
        "is not installed: pip install 'aiops-kit[redis]'" in result.stderr
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr
