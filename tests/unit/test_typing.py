"""The package type-checks: mypy strict with the pydantic plugin, as pyproject.toml configures it.

Runs mypy from the test's own interpreter (the venv's), in the repository root, so it reads
`[tool.mypy]` and keeps its incremental cache in .mypy_cache.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_mypy_strict_passes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml")],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, (
        f"mypy exited {result.returncode}:\n{result.stdout}{result.stderr}")
