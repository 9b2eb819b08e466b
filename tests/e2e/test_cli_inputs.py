"""`aiops run`'s inputs: whatever arrives (a lone surrogate, JSON nested 100,000 deep, bytes
that are not UTF-8, a text over the bound) is an input error (exit 3) that says where, on
every path: `--input JSON`, `--input @file`, `--input -`, and each line of `--input-file`,
where the batch goes on. Never "internal error"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aiops.cli import run as cli_run
from aiops.fastjson import MAX_DEPTH
from aiops.providers.mock_server import MockServer
from tests import fixtures_providers as runner_project
from tests.e2e.test_cli_run import GOOD, invoke
from tests.fixtures_db import apply_project

SURROGATE = '{"subject": "\\ud800", "body": "b"}'
DEEP = "[" * 100_000 + "]" * 100_000
# These are refused before the runner, with these words.
HOSTILE = [
    (SURROGATE, r"$.subject holds a lone surrogate (U+D800)"),
    ('{"subject": "s", "body": "b", "\\udc00": 1}', "$ (a key) holds a lone surrogate (U+DC00)"),
    (DEEP, f"nested deeper than {MAX_DEPTH} levels (line 1 column {MAX_DEPTH + 1})"),
    ('{"subject": "s", "body": ' + "[" * 5000 + "]" * 5000 + "}",
     f"nested deeper than {MAX_DEPTH} levels"),
    ("[" * 50_000, f"nested deeper than {MAX_DEPTH} levels"),  # unbalanced, too
]


@pytest.fixture
def project(tmp_path: Path, mock_provider: MockServer) -> tuple[Path, dict[str, str]]:
    """`classify` applied to a SQLite database, its providers pointed at the mock."""
    root = runner_project.write(tmp_path / "proj", runner_project.CLASSIFY)
    url = f"sqlite:///{tmp_path / 'aiops.db'}"
    apply_project(root, url=url, actor="ci")
    return root, {**runner_project.env_for(mock_provider.url), "AIOPS_DATABASE_URL": url}


def _single(project: Any, tmp_path: Path, how: str, text: str) -> Any:
    if how == "argument":
        return invoke(project, "run", "classify", "--input", text)
    if how == "file":
        path = tmp_path / "in.json"
        path.write_text(text, encoding="utf-8")
        return invoke(project, "run", "classify", "--input", f"@{path}")
    return invoke(project, "run", "classify", "--input", "-", input=text)


@pytest.mark.parametrize("how", ["argument", "file", "stdin"])
@pytest.mark.parametrize(("text", "message"), HOSTILE)
def test_hostile_single_input_is_an_input_error(project: Any, tmp_path: Path, how: str,
                                                text: str, message: str) -> None:
    result = _single(project, tmp_path, how, text)
    assert result.exit_code == 3, result.output
    assert message in result.stderr, result.stderr
    assert "internal error" not in result.stderr and result.stdout == ""
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(("text", "message"), HOSTILE)
def test_hostile_batch_line_is_an_input_error_and_the_batch_goes_on(
        project: Any, tmp_path: Path, text: str, message: str) -> None:
    batch = tmp_path / "in.jsonl"
    batch.write_text(f"{GOOD}\n{text}\n{GOOD}\n", encoding="utf-8")
    result = invoke(project, "run", "classify", "--input-file", str(batch))
    assert result.exit_code == 3, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["line"] for e in lines] == [1, 2, 3]
    assert lines[0]["error"] is None and lines[2]["error"] is None
    assert lines[1]["error"]["type"] == "InputError" and lines[1]["log_id"] is None
    assert lines[1]["error"]["message"].startswith("line 2")
    assert message in lines[1]["error"]["message"]


def test_nesting_at_the_bound_is_read(project: Any) -> None:
    """MAX_DEPTH levels, the outermost object included, parse: the schema judges the rest."""
    nested = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    result = invoke(project, "run", "classify", "--input",
                    '{"subject": "s", "body": ' + nested + "}")
    assert result.exit_code == 3 and "does not match input_schema" in result.stderr


def test_a_surrogate_pair_is_a_character(project: Any) -> None:
    result = invoke(project, "run", "classify", "--input",
                    '{"subject": "\\ud83d\\ude00", "body": "b"}')
    assert result.exit_code == 0, result.output


def test_shell_bytes_that_are_not_utf8(project: Any) -> None:
    """Python hands invalid UTF-8 in argv over as lone surrogates (surrogateescape)."""
    result = invoke(project, "run", "classify", "--input", '{"subject": "caf\udce9", "body": 1}')
    assert result.exit_code == 3
    assert "--input is not UTF-8 text" in result.stderr, result.stderr


def test_text_over_the_bound(project: Any, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Read within the bound: `@/dev/zero` or an endless stdin cannot exhaust memory, and a
    batch line over it is refused without reading it whole (the next line still runs)."""
    monkeypatch.setattr(cli_run, "MAX_INPUT_TEXT", len(GOOD) + 10)
    long = '{"subject": "' + "x" * 100 + '", "body": "b"}'
    for how in ("file", "stdin"):
        result = _single(project, tmp_path, how, long)
        assert result.exit_code == 3 and "the bound on an input's text" in result.stderr
    result = invoke(project, "run", "classify", "--input", "@/dev/zero")
    assert result.exit_code == 3 and "the bound on an input's text" in result.stderr
    batch = tmp_path / "in.jsonl"
    batch.write_text(f"{long}\n{GOOD}\n{long}", encoding="utf-8")
    result = invoke(project, "run", "classify", "--input-file", str(batch))
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["line"] for e in lines] == [1, 2, 3]
    assert "line 1 is over" in lines[0]["error"]["message"]
    assert lines[1]["error"] is None and lines[2]["error"]["type"] == "InputError"
