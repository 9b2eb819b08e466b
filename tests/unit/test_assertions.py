"""Assertions of golden tests: each kind, passing and failing, and how failures read."""

from __future__ import annotations

from typing import Any

import pytest

from aiops.assertions import Observed, evaluate, json_equal
from aiops.spec import Assertion

SCHEMA = {"type": "object", "required": ["queue", "priority"],
          "properties": {"queue": {"enum": ["billing", "technical"]},
                         "priority": {"type": "integer", "maximum": 4}}}
OUT = {"queue": "billing", "priority": 2, "tags": ["refund", "card"], "reason": "Charged twice"}


def check(raw: dict[str, Any], output: Any = OUT, **kw: Any):
    observed = Observed(output=output, output_schema=kw.pop("schema", SCHEMA), **kw)
    return evaluate(Assertion.model_validate(raw), observed)


@pytest.mark.parametrize("raw", [
    {"schema_valid": True},
    {"equals": OUT},
    {"equals": {**OUT, "priority": 2.0}},
    {"contains": "twice"},
    {"contains": {"queue": "billing"}},  # an object containing these keys and values
    {"matches": '"queue":"bill'},
    {"path": "$.queue", "equals": "billing"},
    {"path": "$.tags", "contains": "card"},
    {"path": "$.reason", "contains": "twice"},
    {"path": "$.reason", "matches": "^Charged"},
    {"path": "$.tags", "length": {"min": 1, "max": 2}},
    {"path": "$.reason", "length": {"max": 20}},
    {"path": "$.priority", "range": {"min": 1, "max": 4}},
    {"path": "$.tags[*]", "matches": "^[a-z]+$"},
    {"max_latency_ms": 100},
    {"max_cost_usd": 0.01},
    {"not": {"path": "$.queue", "equals": "other"}},
    {"not": {"path": "$.missing", "equals": 1}},
])
def test_passing(raw: dict[str, Any]) -> None:
    result = check(raw, latency_ms=12.0, cost_usd=0.0001)
    assert result.passed, result.message


@pytest.mark.parametrize(("raw", "message"), [
    ({"path": "$.queue", "equals": "technical"},
     '$.queue: expected equals "technical", got "billing"'),
    ({"equals": "billing"}, 'output: expected equals "billing", got {"priority": 2,'),
    ({"path": "$.priority", "equals": True}, "$.priority: expected equals true, got 2"),
    ({"contains": {"queue": "billing", "priority": 1}},
     'output: expected an object containing {"priority": 1, "queue": "billing"}, got'),
    ({"contains": "refund please"}, 'output: expected text containing "refund please", got'),
    ({"path": "$.tags", "contains": "cash"},
     '$.tags: expected an array containing "cash", got ["refund", "card"]'),
    ({"path": "$.reason", "matches": "^charged"},
     '$.reason: expected text matching /^charged/, got "Charged twice"'),
    ({"path": "$.tags", "length": {"min": 3}},
     '$.tags: expected length at least 3, got length 2 (an array: ["refund", "card"])'),
    ({"path": "$.priority", "length": {"min": 1}},
     "$.priority: expected length at least 1, got 2, a number with no length"),
    ({"path": "$.priority", "range": {"min": 3, "max": 4}},
     "$.priority: expected a number between 3 and 4, got 2"),
    ({"path": "$.queue", "range": {"max": 4}},
     '$.queue: expected a number at most 4, got "billing" (a string)'),
    ({"path": "$.tags[*]", "matches": "^r"},
     '$.tags[1]: expected text matching /^r/, got "card"'),
    ({"path": "$.tags[5]", "equals": "x"},
     "$.tags[5]: index 5 is out of range; the array has 2 item(s)"),
    ({"path": "$.priorty", "range": {"min": 1}},
     "$.priorty: no such key; the object's keys: priority, queue, reason, tags"),
    ({"path": "$..x", "equals": 1}, "recursive descent `..` is not supported"),
    ({"max_latency_ms": 10}, "expected latency ≤ 10 ms, got 12 ms"),
    ({"max_cost_usd": 0.00001}, "expected cost ≤ 1e-05 USD, got 0.0001 USD"),
    ({"not": {"path": "$.queue", "equals": "billing"}},
     'expected not ($.queue equals "billing"), but it holds'),
])
def test_failing_says_expected_actual_and_where(raw: dict[str, Any], message: str) -> None:
    result = check(raw, latency_ms=12.0, cost_usd=0.0001)
    assert not result.passed
    assert message in result.message


def test_schema_valid_names_the_failing_path() -> None:
    result = check({"schema_valid": True}, output={"queue": "sales", "priority": 9})
    assert not result.passed
    assert result.path == "$.priority"
    assert "9 is greater than the maximum of 4" in result.message
    assert "(and 1 more)" in result.message


def test_schema_valid_false_expects_invalid_output() -> None:
    assert check({"schema_valid": False}, output={"queue": "x"}).passed
    assert not check({"schema_valid": False}).passed


def test_text_output() -> None:
    schema = {"type": "string", "minLength": 1}
    assert check({"contains": "jour"}, output="Bonjour", schema=schema).passed
    assert check({"schema_valid": True}, output="Bonjour", schema=schema).passed
    assert not check({"schema_valid": True}, output="", schema=schema).passed
    assert check({"matches": "(?i)^bon"}, output="Bonjour", schema=schema).passed


def test_unknown_cost_or_latency_fails_with_a_reason() -> None:
    result = check({"max_cost_usd": 1})
    assert not result.passed
    assert "did not report its cost" in result.message


def test_json_equal_is_json_semantics() -> None:
    assert json_equal(1, 1.0)
    assert not json_equal(True, 1)
    assert not json_equal([1, 2], [2, 1])
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert not json_equal({"a": 1}, {"a": 1, "b": 2})
    assert not json_equal("1", 1)


def test_not_over_every_selected_value_holds_only_when_none_matches() -> None:
    # `not` with [*]: no selected value may satisfy the inner assertion.
    assert check({"not": {"path": "$.tags[*]", "equals": "cash"}}).passed
    result = check({"not": {"path": "$.tags[*]", "equals": "card"}})
    assert not result.passed
    assert result.path == "$.tags[1]"
    assert '$.tags[1]: expected not ($.tags[*] equals "card"), but it holds (got "card")' \
        in result.message
    assert not check({"not": {"path": "$.tags[*]", "matches": "^r"}}).passed


def test_not_with_an_invalid_path_fails_rather_than_passing() -> None:
    result = check({"not": {"path": "$..queue", "equals": "other"}})
    assert not result.passed
    assert "recursive descent `..` is not supported" in result.message


@pytest.mark.parametrize(("raw", "message"), [
    ({"length": {"min": 3, "max": 1}}, "min 3 is above max 1"),
    ({"range": {"min": 0.5, "max": 0.1}}, "min 0.5 is above max 0.1"),
])
def test_bounds_that_nothing_satisfies_are_refused(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Assertion.model_validate({"path": "$.tags", **raw})


@pytest.mark.parametrize(("raw", "output", "passed"), [
    ({"equals": 0.1 + 0.2}, 0.30000000000000004, True),
    ({"equals": 3}, 3.0, True),
    ({"equals": [1, 2]}, [1.0, 2], True),
    ({"contains": {"a": 1}}, [{"a": 1, "b": 2}], False),  # array: an element *equal* to it
    ({"contains": {"a": 1}}, [{"a": 1}], True),
    ({"contains": [1]}, [[1], 2], True),
    ({"contains": 2}, "priority 2", True),
    ({"length": {"max": 3}}, "día", True),  # characters, not bytes
    ({"length": {"min": 1}}, {}, False),
    ({"range": {"min": 0}}, True, False),  # a boolean is not a number
    ({"range": {"min": 0}}, "5", False),
])
def test_value_edge_cases(raw: dict[str, Any], output: Any, passed: bool) -> None:
    assert check(raw, output=output).passed is passed


def test_an_equals_failure_on_a_large_value_names_the_first_difference() -> None:
    long = "x" * 200
    expected = {"a": long, "b": {"c": [1, 2, 3], "d": "billing"}}
    got = {"a": long, "b": {"c": [1, 2, 3], "d": "technical"}}
    result = check({"equals": expected}, output=got)
    assert not result.passed
    assert 'first difference at $.b.d: expected "billing", got "technical"' in result.message
    result = check({"path": "$.b", "equals": {"c": [1, 2], "d": "technical"}}, output=got)
    assert "first difference at $.b.c: expected 2 item(s), got 3" in result.message
    result = check({"equals": {"a": long, "z": 1}}, output={"a": long, "y": 1})
    assert "first difference at $: missing key(s) z; unexpected key(s) y" in result.message
