"""Run the real `aiops` console script in a subprocess."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

AIOPS = str(Path(sys.executable).parent / "aiops")


def aiops(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
          input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("AIOPS_DEBUG", None)
    return subprocess.run([AIOPS, *map(str, args)], cwd=cwd, env=full_env, input=input,
                          capture_output=True, text=True, timeout=timeout, check=False)


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout


def copy_examples(dest: Path, repo_root: Path) -> Path:
    """A copy of this repository's example project (without cassettes) at `dest`."""
    dest.mkdir()
    shutil.copytree(repo_root / "functions", dest / "functions",
                    ignore=shutil.ignore_patterns("cassettes"))
    shutil.copy(repo_root / "providers.yaml", dest)
    return dest


def stop(process: subprocess.Popen[str]) -> None:
    """Stop a server started with Popen as Ctrl-C would (SIGINT), killed after 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
