"""docs/providers.md lists every error kind an attempt can have, with its exit code, whether
it is retried and what it counts against budgets ("Error kinds"). The kinds the code can
produce are the two Literal types of aiops.errors (mypy holds every `kind=` to them); this
test holds the table to those types, and the types to the source, so the doc cannot drift."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import get_args

from aiops.errors import AttemptKind, ConfigError, OutputError, ProviderError, ProviderErrorKind
from aiops.providers import STATUS_KINDS

REPO = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| `(?P<kind>[a-z_]+)` \| (?P<exit>\d+) \| (?P<retried>[^|]+) \| "
                 r"(?P<budget>[^|]+) \| (?P<when>[^|]+) \|$")


def documented() -> dict[str, dict[str, str]]:
    text = (REPO / "docs" / "providers.md").read_text(encoding="utf-8")
    section = text.split("### Error kinds", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        found = ROW.match(line)
        if found:
            assert found["kind"] not in rows, f"{found['kind']} is listed twice"
            rows[found["kind"]] = {k: v.strip() for k, v in found.groupdict().items()}
    return rows


def _strings(node: ast.AST) -> set[str]:
    return {c.value for c in ast.walk(node) if isinstance(c, ast.Constant)
            and isinstance(c.value, str)}


def produced_in_source() -> set[str]:
    """Every kind the source spells out: the `kind=` of ProviderError and Attempt calls, and
    what is assigned to a variable `kind` in the modules that make them."""
    found: set[str] = set(STATUS_KINDS.values())
    for path in [*(REPO / "src" / "aiops" / "providers").glob("*.py"),
                 REPO / "src" / "aiops" / "runner.py"]:
        if path.name.startswith("mock_"):  # the mock server's own faults and JSON types
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
                    "ProviderError", "Attempt"):
                found |= {s for kw in node.keywords if kw.arg == "kind"
                          for s in _strings(kw.value)}
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(getattr(t, "id", None) == "kind" for t in targets) and node.value:
                    found |= _strings(node.value)
    return found


def test_every_kind_is_in_the_table_and_nothing_else() -> None:
    rows = documented()
    assert set(rows) == set(get_args(AttemptKind))
    assert produced_in_source() == set(get_args(AttemptKind))  # none unused, none unlisted
    assert {"truncated", "no_content", "refusal", "content_filter", "bad_usage"} <= set(rows)


def test_the_table_gives_each_kind_its_exit_code_and_policy() -> None:
    exits = {kind: ProviderError.exit_code for kind in get_args(ProviderErrorKind)}
    exits.update(invalid_output=OutputError.exit_code, config=ConfigError.exit_code)
    for kind, row in documented().items():
        assert int(row["exit"]) == exits[kind], kind
        assert row["retried"] and row["budget"] and row["when"], kind
    # What an answer that is no result costs: its tokens, billed; bad usage, the estimate.
    rows = documented()
    for kind in ("refusal", "content_filter", "truncated", "no_content", "invalid_output"):
        assert rows[kind]["budget"] == "its tokens", kind
    assert rows["bad_usage"]["budget"] == "the call's estimate"
    for kind in ("refusal", "content_filter", "truncated", "no_content", "bad_usage"):
        assert rows[kind]["retried"] == "no", kind
