"""A caller's text cannot make a pattern backtrack: schema `pattern`s, `patternProperties`,
`deny` filters and `matches` assertions run on linear-time engines, and `validate` refuses,
at the pattern's line and saying why, a pattern those engines cannot run.

`^(a+)+$` against 'a' * n + '!' took 19 s at n = 29 on Python's `re` (in the wording step of
schema errors, and in deny filters), doubling with each character; the inputs here (n = 28)
took about 10 s each. The bound asserted (2 s) is generous: they now take well under 1 ms.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from aiops.assertions import Observed, evaluate
from aiops.checks import check_project
from aiops.errors import InputError
from aiops.filters import FilterChain
from aiops.runner import Runner
from aiops.schemas import CompiledSchema
from aiops.spec import Assertion, ProvidersFile
from tests.factories import make_function, make_project
from tests.fixtures_db import make_spec
from tests.fixtures_providers import FakeStore, run_all

EVIL = r"^(a+)+$"
SLOW = "a" * 28 + "!"
BOUND_S = 2.0


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def test_a_pattern_in_a_schema_answers_at_once() -> None:
    schema = CompiledSchema({"type": "object", "properties": {
        "x": {"type": "string", "pattern": EVIL}}})
    error, took = timed(lambda: schema.first_error({"x": SLOW}))
    assert error is not None and error.render() == f'$.x: "{SLOW}" does not match "{EVIL}"'
    assert took < BOUND_S, took
    errors, took = timed(lambda: schema.errors({"x": SLOW}))
    assert [e.path for e in errors] == [("x",)] and took < BOUND_S, took


def test_pattern_properties_answer_at_once() -> None:
    schema = CompiledSchema({"type": "object", "additionalProperties": False,
                             "patternProperties": {EVIL: {"type": "integer"}}})
    error, took = timed(lambda: schema.first_error({SLOW: 1}))
    assert error is not None and "not allowed" in error.message and took < BOUND_S, took


def test_a_deny_filter_answers_at_once() -> None:
    chain = FilterChain.from_rules([{"deny": EVIL}])
    (_, denied), took = timed(lambda: chain.apply({"x": SLOW}))
    assert denied is None and took < BOUND_S, took
    assert chain.apply({"x": "aaaa"})[1] == EVIL


def test_a_matches_assertion_answers_at_once() -> None:
    assertion = Assertion.model_validate({"path": "$.x", "matches": EVIL})
    observed = Observed(output={"x": SLOW}, output_schema={"type": "object"})
    result, took = timed(lambda: evaluate(assertion, observed))
    assert not result.passed and took < BOUND_S, took


def test_one_slow_input_does_not_stall_a_batch() -> None:
    spec = make_spec("pick", provider="pp", model="m", output_schema={"type": "string"},
                     input_schema={"type": "object", "required": ["who"], "properties": {
                         "who": {"type": "string", "pattern": "^[a-z]+$"},
                         "tag": {"type": "string", "pattern": EVIL}}},
                     filters={"input": [{"deny": EVIL}]},
                     prompt=[{"role": "user", "content": "Hi {{ who }}"}])

    class Echo:
        name = "pp"

        async def complete(self, request: Any) -> Any:
            from aiops.providers import Completion

            return Completion(text=request.messages[-1]["content"])

        async def aclose(self) -> None:
            pass

    providers = ProvidersFile.model_validate({"providers": {"pp": {"type": "http",
                                                                  "base_url": "http://x"}}})
    runner = Runner(store=FakeStore([spec]), providers=providers, env={},
                    make=lambda *_: Echo())
    inputs = [{"who": "ada"}, {"who": "bob", "tag": SLOW}, {"who": "cy", "note": SLOW},
              {"who": "dee", "note": "aaa"}, {"who": "ed"}]

    async def go() -> list[Any]:
        try:
            return await run_all(runner, "pick", inputs, 2)
        finally:
            await runner.aclose()

    results, took = timed(lambda: asyncio.run(go()))
    assert [r.output for r in results] == ["Hi ada", None, "Hi cy", None, "Hi ed"]
    assert isinstance(results[1].error, InputError) and "does not match" in str(results[1].error)
    assert isinstance(results[3].error, InputError) and "deny pattern" in str(results[3].error)
    assert took < BOUND_S, took


def _findings(data: dict[str, Any]) -> dict[str, Any]:
    project = make_project(data)
    found = {d.path: d for d in project.diagnostics}
    if project.ok:
        found.update({d.path: d for d in check_project(project)})
    return found


@pytest.mark.parametrize(("where", "pattern"), [
    ("input_schema.properties.text.pattern", r"^(?=.*\d)\w+$"),
    ("output_schema.properties.bullets.items.pattern", r"^(a)\1$"),
])
def test_validate_refuses_a_schema_pattern_that_needs_backtracking(where: str,
                                                                   pattern: str) -> None:
    data = make_function()
    if where.startswith("input"):
        data["input_schema"]["properties"]["text"]["pattern"] = pattern
    else:
        data["output_schema"]["properties"]["bullets"]["items"]["pattern"] = pattern
    diag = _findings(data)[where]
    assert diag.is_error and diag.code == "schema-pattern" and diag.line is not None
    assert "needs backtracking" in diag.message and pattern in diag.message


def test_validate_refuses_pattern_properties_and_invalid_patterns_where_they_are() -> None:
    data = make_function()
    data["input_schema"]["patternProperties"] = {"^(?!x)": {"type": "string"}}
    data["input_schema"]["properties"]["text"]["pattern"] = "(?<=a"
    data["input_schema"]["properties"]["text"]["default"] = {"pattern": "(?=not a schema)"}
    found = _findings(data)
    assert "needs backtracking" in found["input_schema.patternProperties.^(?!x)"].message
    assert "not a valid regular expression" in found[
        "input_schema.properties.text.pattern"].message
    assert not any("default" in path for path in found)


@pytest.mark.parametrize(("filters", "where"), [
    ({"input": [{"deny": "(?<!not )secret"}]}, "filters.input[0]"),
    ({"output": ["pii_redact", {"deny": r"(\w+) \1"}]}, "filters.output[1]"),
])
def test_validate_refuses_a_deny_pattern_that_needs_backtracking(filters: dict[str, Any],
                                                                 where: str) -> None:
    diag = _findings(make_function(filters=filters))[where]
    assert diag.is_error and diag.line is not None
    assert "`deny`:" in diag.message and "needs backtracking" in diag.message


def test_validate_refuses_a_matches_assertion_that_needs_backtracking() -> None:
    data = make_function()
    data["tests"][0]["expect"] = [{"path": "$.bullets[0]", "matches": "fox(?= jumps)"}]
    diag = _findings(data)["tests[0].expect[0]"]
    assert "`matches`:" in diag.message and "needs backtracking" in diag.message


def test_the_patterns_authors_write_today_still_run() -> None:
    chain = FilterChain.from_rules([{"deny": r"(?i)api[_-]?key"}, {"deny": r"\bpw=\S+"},
                                    {"deny": r"(?P<card>\d{4}(?:[ -]?\d{4}){3})"}])
    assert chain.apply("my API-KEY")[1] == r"(?i)api[_-]?key"
    assert chain.apply("x pw=hunter2")[1] == r"\bpw=\S+"
    assert chain.apply("4111 1111 1111 1111")[1] is not None
    assert chain.apply("nothing here")[1] is None
    schema = CompiledSchema({"type": "string", "pattern": r"^\p{L}[\p{L} ]*$"})
    assert schema.is_valid("héllo wörld") and not schema.is_valid("x1")
