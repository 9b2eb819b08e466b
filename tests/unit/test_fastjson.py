"""aiops.fastjson against the stdlib: the same bytes for what the hashes are made of, the same
values read back, and the stdlib's answer where pydantic-core refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiops.fastjson import (
    Refused,
    dumps,
    dumps_checked,
    dumps_finite,
    loads,
    loads_bounded,
    loads_input,
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.dictionaries(st.text(), st.text(), max_size=3), max_size=4))
def test_string_documents_encode_byte_for_byte_as_the_stdlib(value: Any) -> None:
    try:
        want = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate: checked below
        return
    assert dumps(value) == want


@settings(max_examples=500, deadline=None)
@given(JSON)
def test_what_is_written_reads_back(value: Any) -> None:
    assert loads(dumps(value)) == value
    assert loads(json.dumps(value)) == json.loads(json.dumps(value))


def test_a_lone_surrogate_is_escaped_and_read_back() -> None:
    assert dumps({"x": "\ud800"}) == b'{"x":"\\ud800"}'
    assert loads(b'{"x":"\\ud800"}') == {"x": "\ud800"}


@pytest.mark.parametrize("text", [b"", b"{", b"\xff", b"{'a': 1}", b"[1,]"])
def test_what_is_not_json_is_a_value_error(text: bytes) -> None:
    with pytest.raises(ValueError):
        loads(text)


def test_big_integers_and_nan_read_as_the_stdlib_reads_them() -> None:
    assert loads(b"123456789012345678901234567890") == 123456789012345678901234567890
    assert str(loads(b"[NaN]")[0]) == "nan"


@pytest.mark.parametrize("value", [float("nan"), {"a": [1, float("inf")]}, -float("inf")])
def test_dumps_finite_refuses_what_json_lacks(value: Any) -> None:
    with pytest.raises(ValueError):
        dumps_finite(value)


@pytest.mark.parametrize("value", ["NaN", {"Infinity": "-Infinity NaN"}, 1.5])
def test_dumps_finite_passes_text_that_only_says_so(value: Any) -> None:
    assert dumps_finite(value) == dumps(value)


# --- loads_input: a document from outside, bounded before anything recursive reads it -----


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(JSON, st.integers(min_value=1, max_value=6))
def test_loads_input_reads_what_the_stdlib_reads_within_the_depth(value: Any,
                                                                  bound: int) -> None:
    text = json.dumps(value, indent=1)
    if any(0xD800 <= ord(c) <= 0xDFFF for c in json.dumps(value, ensure_ascii=False)):
        with pytest.raises(Refused, match="lone surrogate"):
            loads_input(text)
    elif _depth(value) > bound:
        with pytest.raises(Refused, match=f"nested deeper than {bound} levels"):
            loads_input(text, bound)
    else:
        assert loads_input(text, bound) == json.loads(text)


@pytest.mark.parametrize("text", [
    '["[[[[[[[[[[", "{{{{{{{{{{{"]',  # brackets inside strings are text
    '["\\"[[[[[[[[[[[[", "\\\\", "]]]]]]]]]"]',  # escaped quotes and backslashes
])
def test_brackets_inside_strings_do_not_nest(text: str) -> None:
    assert loads_input(text, max_depth=2) == json.loads(text)


def test_where_the_bound_is_crossed_and_the_stdlib_message_for_other_errors() -> None:
    with pytest.raises(Refused, match=r"\(line 3 column 3\)"):
        loads_input('{"a":\n [\n [[1]]]}', max_depth=3)
    with pytest.raises(ValueError, match=r"Expecting value: line 1 column 7") as caught:
        loads_input('{"a": }')
    assert not isinstance(caught.value, Refused)


# --- loads_bounded, dumps_checked: a provider's answer, a Python caller's value ------------


@settings(max_examples=300, deadline=None)
@given(JSON, st.integers(min_value=1, max_value=6))
def test_loads_bounded_reads_what_loads_reads_within_the_depth(value: Any, bound: int) -> None:
    text = json.dumps(value)
    if _depth(value) > bound:
        with pytest.raises(Refused, match=f"nested deeper than {bound} levels"):
            loads_bounded(text.encode(), bound)
    else:
        assert loads_bounded(text.encode(), bound) == loads_bounded(text, bound) == loads(text)


def test_loads_bounded_refuses_3000_levels_and_reads_lone_surrogates() -> None:
    """json.loads recursed into a RecursionError past ~1,000 levels; lone surrogates are read
    (the caller checks the value: `dumps_checked`)."""
    with pytest.raises(Refused):
        loads_bounded(b"[" * 3000 + b"]" * 3000, 100)
    assert loads_bounded('["\\ud800"]', 1) == ["\ud800"]
    assert loads_bounded('"\ud800"', 1) == "\ud800"  # in a str itself, which from_json refuses


def _nest(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(("value", "match"), [
    ({"a": ["x", {"b\ud800": 1}]}, r"\$\.a\[1\] \(a key\) holds a lone surrogate \(U\+D800\)"),
    ("\udfff", r"\$ holds a lone surrogate \(U\+DFFF\)"),
    (_nest(101), "nested deeper than 100 levels"),  # within what pydantic-core encodes
    (_nest(3000), "nested deeper than 100 levels"),  # past it: json.dumps would recurse
])
def test_dumps_checked_refuses_what_no_reader_bounded(value: Any, match: str) -> None:
    with pytest.raises(Refused, match=match):
        dumps_checked(value)


def test_dumps_checked_encodes_as_dumps_finite() -> None:
    value = {"a": [1, 2.5, "é", None, _nest(98)]}  # 100 levels
    assert dumps_checked(value) == dumps_finite(value)
    with pytest.raises(ValueError) as caught:
        dumps_checked({"n": float("nan")})
    assert not isinstance(caught.value, Refused)
