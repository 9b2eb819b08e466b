"""The JSON path subset: parsing, resolving, and saying where a path stopped matching."""

from __future__ import annotations

import pytest

from aiops.jsonpath import WILDCARD, JsonPathError, find, format_path, parse

DOC = {"entities": [{"name": "Macron", "kind": "person"}, {"name": "Airbus", "kind": "org"}],
       "a key": {"it's": 1}, "n": 3}


@pytest.mark.parametrize(("text", "segments"), [
    ("$", ()),
    ("$.entities", ("entities",)),
    ("$.entities[0].kind", ("entities", 0, "kind")),
    ("$.entities[-1]", ("entities", -1)),
    ("$.entities[*].kind", ("entities", WILDCARD, "kind")),
    ("$.entities.*", ("entities", WILDCARD)),
    ("$['a key']", ("a key",)),
    ('$["a key"]["it\'s"]', ("a key", "it's")),
    ("$['it\\'s']", ("it's",)),
    ("$.snake_case-key", ("snake_case-key",)),
])
def test_parse(text: str, segments: tuple[object, ...]) -> None:
    assert parse(text) == segments


@pytest.mark.parametrize(("text", "position", "words"), [
    ("entities", 0, "starts with `$`"),
    ("$..kind", 1, "recursive descent"),
    ("$.entities[?(@.kind)]", 10, "unsupported selector"),
    ("$.entities[0:2]", 10, "unsupported selector"),
    ("$.", 2, "key name"),
    ("$entities", 1, "unexpected `e`"),
])
def test_parse_refuses_outside_the_subset(text: str, position: int, words: str) -> None:
    with pytest.raises(JsonPathError) as info:
        parse(text)
    assert info.value.position == position
    assert words in str(info.value)


def test_format_round_trips() -> None:
    for text in ("$.entities[0].kind", "$['a key']['it\\'s']", "$.x[*].y"):
        assert format_path(parse(text)) == text


def test_resolve_values_with_concrete_paths() -> None:
    r = find("$.entities[*].kind", DOC)
    assert r.found
    assert [(m.path, m.value) for m in r.matches] == [
        ("$.entities[0].kind", "person"), ("$.entities[1].kind", "org")]
    assert find("$.entities[-1].name", DOC).matches[0].path == "$.entities[1].name"
    assert find("$['a key']['it\\'s']", DOC).matches[0].value == 1
    assert find("$", DOC).matches[0].value is DOC


@pytest.mark.parametrize(("path", "where", "reason"), [
    ("$.entities[5]", "$.entities[5]", "index 5 is out of range; the array has 2 item(s)"),
    ("$.entity", "$.entity", "no such key; the object's keys: a key, entities, n"),
    ("$.n.x", "$.n", "is a number, not an object"),
    ("$.n[0]", "$.n", "is a number, not an array"),
    ("$.entities[*].age", "$.entities[0].age", "no such key; the object's keys: kind, name"),
])
def test_resolve_says_where_it_stopped(path: str, where: str, reason: str) -> None:
    r = find(path, DOC)
    assert not r.found
    assert (r.missing[0].path, r.missing[0].reason) == (where, reason)


def test_wildcard_over_an_empty_array_is_missing_not_vacuously_true() -> None:
    r = find("$.items[*]", {"items": []})
    assert not r.found
    assert r.missing[0].reason == "is an empty array"


def test_keys_in_other_alphabets_are_names() -> None:
    # Outputs in French, Japanese...: `$.priorité` reads as it is written.
    assert parse("$.priorité.名前") == ("priorité", "名前")
    assert find("$.priorité", {"priorité": 2}).matches[0].path == "$.priorité"
