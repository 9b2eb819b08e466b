"""The repository's recorded cassettes: one per test and provider of the matrix, readable,
and holding no secret, no local address and no header but content-type."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from aiops.golden import cassette_path, matrix
from aiops.spec import FunctionSpec

SECRETISH = re.compile(r"(?i)(sk-[a-z0-9]|bearer\s|api[_-]?key\"?\s*[:=]|hmac|signature)")


def test_every_example_test_has_its_cassettes_and_no_stray_ones(repo_root: Path) -> None:
    expected = set()
    for path in repo_root.glob("functions/*/function.yaml"):
        spec = FunctionSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        expected |= {cassette_path(spec.name, p, t.name) for p in matrix(spec) for t in spec.tests}
    found = {p.relative_to(repo_root).as_posix()
             for p in repo_root.glob("functions/*/cassettes/**/*") if p.is_file()}
    assert found == expected


def test_example_cassettes_hold_no_secret(repo_root: Path) -> None:
    files = sorted(repo_root.glob("functions/*/cassettes/*/*.yaml"))
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not SECRETISH.search(text), path
        data = yaml.safe_load(text)
        for item in data["interactions"]:
            assert set(item["request"]["headers"]) == {"content-type"}, path
            assert set(item["response"]["headers"]) <= {"content-type"}, path
            assert item["request"]["uri"].startswith((
                "https://api.openai.com/v1/", "https://api.groq.com/openai/v1/",
                "https://ml.example.internal/aiops/")), path
            assert item["response"]["status"]["code"] == 200
