"""Values that `validate` accepts can be planned, applied and run on SQLite and PostgreSQL
alike; the others are refused by validate, at their file, line and key, before anything is
written (issue 9: a long `version` or `model`, a NUL, a huge integer, a hex literal)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from aiops import commands
from aiops.errors import SpecError
from aiops.loader import load_sources
from aiops.providers.mock_server import MockConfig
from aiops.sources import read_tree
from aiops.store import open_store
from aiops.store.tables import F
from tests import fixtures_providers as runner_project
from tests.fixtures_db import (
    apply_project,
    count,
    plan_project,
    spec_data,
    write_function,
    write_project,
)
from tests.fixtures_providers import open_runner

FILE = "functions/greet/function.yaml"
# The bounds, as docs/format.md states them (and the columns of store/tables.py hold).
INT32_MAX = 2**31 - 1
INT64 = (-(2**63), 2**63 - 1)
VERSION_CHARS, MODEL_CHARS = 100, 200


def apply(root: Path) -> commands.ApplyResult:
    return apply_project(root, actor="Tess <tess@example.org>")


# (what, the function's data, YAML appended to its file, the key the error names)
REFUSED: list[tuple[str, dict[str, Any], str, str]] = [
    ("a version longer than its column", spec_data(version="1.0.0-" + "a" * VERSION_CHARS),
     "", "version"),
    ("a model longer than its column", spec_data(model="m" * (MODEL_CHARS + 1)), "", "model"),
    ("a NUL in the description", spec_data(description="a\x00b"), "", "description"),
    ("a NUL in metadata", spec_data(), "metadata:\n  owner: \"a\\0\"\n", "metadata.owner"),
    ("a NUL in a prompt", spec_data(prompt=[{"role": "user", "content": "hi\x00"}]), "",
     "prompt[0].content"),
    ("a NUL in a schema", spec_data(output_schema={"type": "string", "description": "\x00"}),
     "", "output_schema.description"),
    ("a NUL in a test input", spec_data(tests=[{"name": "t", "input": {"who": "\x00"}}]), "",
     "tests[0].input.who"),
    ("a huge daily_calls", spec_data(limits={"daily_calls": 10**23}), "",
     "limits.daily_calls"),
    ("a daily_calls beyond the counter column", spec_data(limits={"daily_calls": 2**31}), "",
     "limits.daily_calls"),
    ("an rpm beyond what limits count", spec_data(limits={"rpm": 2**40}), "", "limits.rpm"),
    ("a seed beyond 64 bits", spec_data(configuration={"seed": 2**64}), "",
     "configuration.seed"),
    ("a huge integer in metadata", spec_data(metadata={"n": 10**30}), "", "metadata.n"),
    ("a float that jsonb reads back as an integer", spec_data(metadata={"x": 1e16}), "",
     "metadata.x"),
    ("a hex literal", spec_data(), "limits:\n  daily_calls: 0x10\n", "limits.daily_calls"),
    ("an octal literal", spec_data(), "metadata:\n  n: 010\n", "metadata.n"),
    ("a window past a year", spec_data(alerts=[{"metric": "calls", "over": "10000000000d",
                                                "above": 1}]), "", "alerts[0].over"),
]


@pytest.mark.parametrize(("data", "extra", "key"), [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])
def test_what_cannot_be_stored_or_run_is_refused_at_its_key(
        project: Path, db_url: str, data: dict[str, Any], extra: str, key: str) -> None:
    path = write_function(project, data)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(extra)
    with pytest.raises(SpecError) as info:
        apply(project)
    [diag] = [d for d in info.value.diagnostics if d.path == key]
    assert diag.file == FILE and diag.line is not None and diag.message
    assert count(db_url, F) == 0


def test_the_largest_accepted_values_plan_apply_and_run(project: Path, db_url: str,
                                                        mock_provider_factory: Any) -> None:
    """The bounds are the columns' and the code's: values at them are stored and run,
    the daily-calls counters included (PostgreSQL's INTEGER is where 2**31 failed)."""
    server = mock_provider_factory(MockConfig())
    data = dict(runner_project.CLASSIFY, name="edge", fallbacks=[],
                version="1.0.0-" + "a" * (VERSION_CHARS - 6), model="gpt-4o-mini",
                description="tab\t, bell\x07, emoji 🙂, U+FFFF \uffff",
                configuration={"temperature": 0, "max_tokens": 100, "seed": INT64[1]},
                limits={"daily_calls": INT32_MAX, "rpm": INT32_MAX, "tpm": INT32_MAX,
                        "daily_budget_usd": 1e9},
                metadata={"lo": INT64[0], "hi": INT64[1], "big": 9.99e15, "tiny": 5e-324,
                          "small": -1.5e-7},
                alerts=[{"metric": "calls", "over": "366d", "above": -9.99e15}])
    root = runner_project.write(project, data)
    assert apply(root).wrote
    assert plan_project(root).verdict() == "No changes."
    store = open_store(db_url)
    runner = open_runner(root, env=runner_project.env_for(server.url), store=store, actor="ci")

    async def once() -> Any:
        try:
            return await runner.run("edge", {"subject": "s", "body": "b"})
        finally:
            await runner.aclose()

    execution = asyncio.run(once())
    assert execution.error is None, execution.error
    usage = store.usage(store.resolve("edge").function_id, datetime.now(UTC).date())
    assert usage is not None and usage["calls_used"] == 1


_examples = itertools.count()
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=6)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(description=st.text(), metadata=_json, model=st.text(min_size=1, max_size=260),
       suffix=st.text("abc.-", max_size=120), daily_calls=st.integers(min_value=0),
       seed=st.integers())
def test_whatever_validate_accepts_applies_on_both_databases(
        project: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, description: str,
        metadata: Any, model: str, suffix: str, daily_calls: int, seed: int) -> None:
    root = project / f"ex{next(_examples)}"
    monkeypatch.setenv("AIOPS_PROJECT", root.name)  # examples share the database
    data = spec_data(f"f{root.name}", description=description, metadata={"v": metadata},
                     model=model, version=f"1.0.0-x{suffix}" if suffix else "1.0.0",
                     limits={"daily_calls": daily_calls},
                     configuration={"max_tokens": 10, "seed": seed})
    write_project(root)
    try:
        write_function(root, data)
    except yaml.representer.RepresenterError:  # not writable as YAML: nothing to check
        return
    project_ = load_sources(read_tree(root))
    errors = [d for d in project_.diagnostics if d.is_error]
    event("refused" if errors else "accepted")
    if errors:  # refused: at a place, never by the database
        assert all(d.file.endswith("function.yaml") and d.line and d.path for d in errors)
        return
    assert apply(root).wrote
    assert plan_project(root).verdict() == "No changes."
