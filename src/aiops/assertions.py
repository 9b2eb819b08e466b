"""Golden-test assertions (the `expect` list, DESIGN §7) as pure functions over one run's result.

`evaluate(assertion, observed)` -> `AssertionResult`: passed or not, and when not, what was
expected, what came, and at which path, in words a reviewer reads in a pull-request comment:

    $.queue: expected equals "billing", got "technical"
    $.entities: expected length between 1 and 5, got 0 (an array)
    $.priority: no such key; the object's keys: queue, reason

Semantics, in one place:
- `equals` compares JSON values (1 == 1.0, but true is not 1).
- `contains`: an array contains an element equal to the value; an object contains an object
  whose keys it has with equal values; anything else is searched as text (a string as is,
  other values as compact JSON) for the value as text.
- `matches`: a search over the value as text, on RE2 (`aiops.patterns`: linear time).
- `length`: of a string, array or object; `range`: of a number; both inclusive.
- A path with `[*]` selects several values; the assertion holds when it holds for each of them.
- `not` holds when the inner assertion does not; over a path, when it holds for none of the
  values the path selects (a missing key satisfies nothing; an invalid path fails).
- `max_latency_ms` and `max_cost_usd` read the run's measured latency and computed cost.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from aiops.errors import shown
from aiops.jsonpath import JsonPathError, Match, Segment, find, format_path, kind_of
from aiops.patterns import compile_linear
from aiops.schemas import CompiledSchema
from aiops.spec import Assertion, Bounds

MAX_SHOWN = 160  # characters of a value shown in a message


@dataclass(frozen=True, kw_only=True)
class Observed:
    """What one run produced, as the assertions see it."""

    output: Any
    output_schema: dict[str, Any]
    latency_ms: float | None = None
    cost_usd: float | None = None


@dataclass(frozen=True, kw_only=True)
class AssertionResult:
    passed: bool
    description: str  # the assertion in words: `$.queue equals "billing"`
    path: str = ""  # where it failed (concrete), empty for whole-output assertions
    expected: str = ""
    actual: str = ""
    message: str = ""  # one line: what was expected, what came, where

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "description": self.description, "path": self.path,
                "expected": self.expected, "actual": self.actual, "message": self.message}


def show(value: Any) -> str:
    """A value as compact JSON text, shortened for messages."""
    return shown(value, MAX_SHOWN)


def as_text(value: Any) -> str:
    """A value as the text `contains` and `matches` search: strings as is, else compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: numbers by value, booleans apart from numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _bounds(bounds: Bounds) -> str:
    lo, hi = bounds.min, bounds.max

    def num(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else str(x)

    if lo is not None and hi is not None:
        return f"between {num(lo)} and {num(hi)}"
    if lo is not None:
        return f"at least {num(lo)}"
    if hi is not None:
        return f"at most {num(hi)}"
    return "any"


def _in_bounds(value: float, bounds: Bounds) -> bool:
    return (bounds.min is None or value >= bounds.min) and (bounds.max is None or value <= bounds.max)


def describe(a: Assertion) -> str:
    """The assertion in words, as the report lists it."""
    kind = a.kind
    where = f"{a.path} " if a.path else "output "
    if kind == "schema_valid":
        return "output is valid against output_schema" if a.schema_valid else \
            "output is invalid against output_schema"
    if kind == "equals":
        return f"{where}equals {show(a.equals)}"
    if kind == "contains":
        return f"{where}contains {show(a.contains)}"
    if kind == "matches":
        return f"{where}matches /{a.matches}/"
    if kind == "length":
        assert a.length is not None
        return f"{where}length {_bounds(a.length)}"
    if kind == "range":
        assert a.range is not None
        return f"{where}in range {_bounds(a.range)}"
    if kind == "max_latency_ms":
        return f"latency ≤ {a.max_latency_ms:g} ms"
    if kind == "max_cost_usd":
        return f"cost ≤ ${a.max_cost_usd:g}"
    assert a.not_ is not None
    return f"not ({describe(a.not_)})"


def evaluate(a: Assertion, observed: Observed) -> AssertionResult:
    """Check one assertion against one run's result."""
    kind = a.kind
    desc = describe(a)
    if kind == "not":
        assert a.not_ is not None
        if a.not_.path is not None:
            return _not_at_path(a.not_, observed.output, desc)
        inner = evaluate(a.not_, observed)
        if not inner.passed:
            return AssertionResult(passed=True, description=desc)
        got = inner.actual or "it does"
        return AssertionResult(
            passed=False, description=desc, path=inner.path, expected=f"not {inner.description}",
            actual=got, message=f"expected not ({inner.description}), but it holds (got {got})")
    if kind == "schema_valid":
        return _schema_valid(a, observed, desc)
    if kind == "max_latency_ms":
        assert a.max_latency_ms is not None
        return _maximum(desc, "latency", observed.latency_ms, a.max_latency_ms, "ms")
    if kind == "max_cost_usd":
        assert a.max_cost_usd is not None
        return _maximum(desc, "cost", observed.cost_usd, a.max_cost_usd, "USD")
    return _value_check(a, kind, observed.output, desc)


def _not_at_path(inner: Assertion, output: Any, desc: str) -> AssertionResult:
    """`not` over a path: no value the path selects satisfies `inner` (with `[*]`: none of
    them, not merely one of them). A key the path does not find satisfies nothing, so `not`
    holds there; a path outside the subset fails, as it does without `not`."""
    assert inner.path is not None
    try:
        resolution = find(inner.path, output)
    except JsonPathError as exc:
        return AssertionResult(passed=False, description=desc, path=inner.path,
                               expected=desc, actual="invalid path", message=str(exc))
    what = describe(inner)
    for target in resolution.matches:
        if _check_value(inner, inner.kind, target.value) is None:
            got = show(target.value)
            return AssertionResult(
                passed=False, description=desc, path=target.path, expected=f"not {what}",
                actual=got, message=f"{target.path}: expected not ({what}), but it holds "
                                    f"(got {got})")
    return AssertionResult(passed=True, description=desc)


def _maximum(desc: str, what: str, value: float | None, limit: float, unit: str) -> AssertionResult:
    if value is None:
        return AssertionResult(passed=False, description=desc, expected=f"≤ {limit:g} {unit}",
                               actual="unknown",
                               message=f"expected {what} ≤ {limit:g} {unit}, but the run did not "
                                       f"report its {what}")
    if value <= limit:
        return AssertionResult(passed=True, description=desc)
    return AssertionResult(passed=False, description=desc, expected=f"≤ {limit:g} {unit}",
                           actual=f"{value:g} {unit}",
                           message=f"expected {what} ≤ {limit:g} {unit}, got {value:g} {unit}")


def _schema_valid(a: Assertion, observed: Observed, desc: str) -> AssertionResult:
    errors = CompiledSchema(observed.output_schema).errors(observed.output)
    valid = not errors
    if valid == a.schema_valid:
        return AssertionResult(passed=True, description=desc)
    if a.schema_valid:
        first = errors[0]
        path = format_path(first.path)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return AssertionResult(
            passed=False, description=desc, path=path, expected="valid against output_schema",
            actual=f"{first.message}{more}",
            message=f"{path}: expected output valid against output_schema, got: "
                    f"{first.message}{more}")
    return AssertionResult(passed=False, description=desc, expected="invalid against output_schema",
                           actual="valid", message="expected output invalid against "
                                                   "output_schema, but it is valid")


def _value_check(a: Assertion, kind: str, output: Any, desc: str) -> AssertionResult:
    if a.path is None:
        targets = [Match(path="output", value=output)]
    else:
        try:
            resolution = find(a.path, output)
        except JsonPathError as exc:
            return AssertionResult(passed=False, description=desc, path=a.path,
                                   expected=desc, actual="invalid path", message=str(exc))
        if resolution.missing:
            miss = resolution.missing[0]
            return AssertionResult(passed=False, description=desc, path=miss.path,
                                   expected=desc, actual="nothing",
                                   message=f"{miss.path}: {miss.reason}")
        targets = list(resolution.matches)
    for target in targets:
        failure = _check_value(a, kind, target.value,
                               "$" if target.path == "output" else target.path)
        if failure is not None:
            expected, actual = failure
            path = "" if target.path == "output" else target.path
            where = f"{path}: " if path else "output: "
            return AssertionResult(passed=False, description=desc, path=path, expected=expected,
                                   actual=actual, message=f"{where}expected {expected}, got {actual}")
    return AssertionResult(passed=True, description=desc,
                           actual=show(targets[0].value) if len(targets) == 1 else "")


def _check_value(a: Assertion, kind: str, value: Any, at: str = "$") -> tuple[str, str] | None:
    """None when `value` (at path `at`) satisfies the assertion, else (expected, actual)."""
    if kind == "equals":
        if json_equal(value, a.equals):
            return None
        return f"equals {show(a.equals)}", show(value) + _first_difference(a.equals, value, at)
    if kind == "contains":
        if isinstance(value, list):
            if any(json_equal(item, a.contains) for item in value):
                return None
            return f"an array containing {show(a.contains)}", show(value)
        if isinstance(value, dict) and isinstance(a.contains, dict):
            absent = [k for k in a.contains
                      if k not in value or not json_equal(value[k], a.contains[k])]
            if not absent:
                return None
            return f"an object containing {show(a.contains)}", show(value)
        needle = as_text(a.contains)
        if needle in as_text(value):
            return None
        return f"text containing {show(needle)}", show(value)
    if kind == "matches":
        assert a.matches is not None
        if compile_linear(a.matches).search(as_text(value)):
            return None
        return f"text matching /{a.matches}/", show(value)
    if kind == "length":
        assert a.length is not None
        if not isinstance(value, str | list | dict):
            return f"length {_bounds(a.length)}", f"{show(value)}, {kind_of(value)} with no length"
        if _in_bounds(len(value), a.length):
            return None
        return f"length {_bounds(a.length)}", f"length {len(value)} ({kind_of(value)}: {show(value)})"
    if kind == "range":
        assert a.range is not None
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                isinstance(value, float) and math.isnan(value)):
            return f"a number {_bounds(a.range)}", f"{show(value)} ({kind_of(value)})"
        if _in_bounds(value, a.range):
            return None
        return f"a number {_bounds(a.range)}", show(value)
    raise AssertionError(f"unhandled assertion kind {kind}")  # pragma: no cover


def _first_difference(expected: Any, actual: Any, at: str) -> str:
    """Where two unequal containers first differ, for values too long to compare by eye:
    ` (first difference at $.b.d: expected "billing", got "technical")`; empty otherwise."""
    if not (isinstance(expected, dict | list) and isinstance(actual, dict | list)):
        return ""
    here: list[Segment] = []
    while True:
        where = at + format_path(here)[1:]
        if isinstance(expected, dict) and isinstance(actual, dict):
            if expected.keys() != actual.keys():
                parts = []
                if missing := [k for k in expected if k not in actual]:
                    parts.append(f"missing key(s) {', '.join(map(str, missing))}")
                if extra := [k for k in actual if k not in expected]:
                    parts.append(f"unexpected key(s) {', '.join(map(str, extra))}")
                return f" (first difference at {where}: {'; '.join(parts)})"
            key = next(k for k in expected if not json_equal(expected[k], actual[k]))
            here.append(key)
            expected, actual = expected[key], actual[key]
        elif isinstance(expected, list) and isinstance(actual, list):
            if len(expected) != len(actual):
                return (f" (first difference at {where}: expected {len(expected)} item(s), "
                        f"got {len(actual)})")
            index = next(i for i, (x, y) in enumerate(zip(expected, actual, strict=True))
                         if not json_equal(x, y))
            here.append(index)
            expected, actual = expected[index], actual[index]
        else:
            return f" (first difference at {where}: expected {show(expected)}, got {show(actual)})"


def evaluate_all(expect: tuple[Assertion, ...], observed: Observed) -> tuple[AssertionResult, ...]:
    return tuple(evaluate(a, observed) for a in expect)
