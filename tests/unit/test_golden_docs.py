"""docs/testing.md stays true: it records with the answers the example cassettes were recorded
with (mock-responses.yaml), and the assertion keys it documents are the ones the format has."""

from __future__ import annotations

from pathlib import Path

import yaml

from aiops.spec import ASSERTION_KEYS
from tests.fixtures_golden import EXAMPLE_ANSWERS


def test_documented_recording_uses_the_repository_answers(repo_root: Path) -> None:
    text = (repo_root / "docs/testing.md").read_text(encoding="utf-8")
    assert "aiops mock-provider --port 8080 --responses mock-responses.yaml" in text
    assert EXAMPLE_ANSWERS and all({"match", "output"} <= set(a) for a in EXAMPLE_ANSWERS)


def test_every_assertion_key_is_documented(repo_root: Path) -> None:
    text = (repo_root / "docs/testing.md").read_text(encoding="utf-8")
    for key in ASSERTION_KEYS:
        assert f"`{key}:" in text or f"| `{key}" in text, key


def test_example_answers_fit_the_examples(repo_root: Path) -> None:
    """Each answer's `contains` occurs in some example test input, so none is dead."""
    inputs = "\n".join(str(v) for path in sorted(repo_root.glob("functions/*/function.yaml"))
                       for case in yaml.safe_load(path.read_text())["tests"]
                       for v in case["input"].values())
    for answer in EXAMPLE_ANSWERS:
        assert answer["match"]["contains"] in inputs
