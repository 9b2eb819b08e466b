"""The safe YAML reader: positions, and every hostile input refused with a place and a fix."""

from __future__ import annotations

import pytest

from aiops.yamlsrc import MAX_FILE_BYTES, YamlProblem, format_path, parse


def test_positions_of_keys_and_values() -> None:
    value, pos = parse(b"a: 1\nprompt:\n  - role: user\n    content: |\n      hi {{ x }}\n")
    assert value == {"a": 1, "prompt": [{"role": "user", "content": "hi {{ x }}\n"}]}
    assert (pos.keys[("prompt",)].line, pos.keys[("prompt",)].column) == (2, 1)
    assert pos.values[("prompt", 0, "role")].line == 3
    assert pos.keys[("prompt", 0, "content")].line == 4
    # A block scalar's text starts on the line after its indicator.
    assert pos.content_line(("prompt", 0, "content")) == 5
    # Unknown deeper paths fall back to the nearest known parent.
    assert pos.find(("prompt", 0, "nope", 3)) == pos.values[("prompt", 0)]


def test_format_path() -> None:
    assert format_path(("prompt", 1, "content")) == "prompt[1].content"
    assert format_path(()) == ""


@pytest.mark.parametrize(
    ("data", "message", "line"),
    [
        (b"a: 1\na: 2\n", "duplicate key `a` (first at line 1)", 2),
        (b"a:\n\tb: 1\n", "tab character in indentation", 2),
        (b"a: 1\nb: \xff\n", "is not valid UTF-8", 2),
        (b"- 1\n- 2\n", "not a mapping", 1),
        (b"", "file is empty", 1),
        (b"a: 1\n---\nb: 2\n", "several YAML documents", 3),
        (b"a:\n  b: .nan\n", "not a finite number", 2),
        (b"a: [1, 2\n", "invalid YAML", 2),
        (b"a: !!python/object:os.system ls\n", "is not allowed", 1),
        (b"1: x\n", "key '1' is read as int", 1),
        (b"a: &x [*x]\n", "refers to itself", 1),
        (b"a: 1\n!!python/name:os.system x: 1\n", "is not allowed", 2),
        (b"!foo x: 1\n", "is not allowed", 1),
    ],
)
def test_refused_inputs(data: bytes, message: str, line: int) -> None:
    with pytest.raises(YamlProblem) as info:
        parse(data)
    assert message in info.value.message
    assert info.value.line == line
    assert info.value.fix


def test_alias_bomb_is_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    with pytest.raises(YamlProblem, match="expand beyond"):
        parse("\n".join(lines).encode())


def test_oversize_file() -> None:
    with pytest.raises(YamlProblem, match="byte bound"):
        parse(b"a: " + b"x" * MAX_FILE_BYTES)


def test_merge_keys_and_dates_become_plain_values() -> None:
    value, _ = parse(b"base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\nwhen: 2024-01-01\n")
    assert value["other"] == {"x": 1, "y": 3}
    assert value["when"] == "2024-01-01"


def test_utf8_bom_and_unicode_are_fine() -> None:
    value, _ = parse("\ufeffmsg: Привет, 世界 ✓\n".encode())
    assert value == {"msg": "Привет, 世界 ✓"}


def test_a_mapping_that_merges_itself_is_refused_not_a_crash() -> None:
    with pytest.raises(YamlProblem, match="refers to itself") as info:
        parse(b"a: 1\nb: &x {c: 1, <<: *x}\n")
    assert info.value.line == 2


def test_merge_bomb_of_empty_mappings_is_bounded() -> None:
    # Empty mappings add no value node: the bound must count the merges themselves.
    lines = ["m0: &m0 {}"]
    for i in range(1, 12):
        lines.append(f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 10)}]}}")
    with pytest.raises(YamlProblem, match="expand beyond"):
        parse("\n".join(lines).encode())


@pytest.mark.parametrize("merge_first", [True, False])
def test_an_explicit_key_over_a_merged_one_is_located_where_it_is_written(
        merge_first: bool) -> None:
    merge, own = "  <<: *d\n", "  t: 9\n"
    body = (merge + own) if merge_first else (own + merge)
    value, pos = parse(("d: &d\n  t: 1\n  u: 2\nc:\n" + body).encode())
    assert value["c"] == {"t": 9, "u": 2}
    line = 5 + (1 if merge_first else 0)
    assert pos.keys[("c", "t")].line == line
    assert pos.values[("c", "t")].line == line
    assert pos.values[("c", "u")].line == 3  # a merged value is where the anchor holds it


def test_tabs_inside_text_are_fine_only_indentation_tabs_are_refused() -> None:
    # A prompt may quote a Makefile or Go code: tabs in a block scalar's text are text.
    value, _ = parse(b"prompt: |\n  Fix this Makefile:\n  all:\n  \techo hi\nx: 1\n")
    assert value == {"prompt": "Fix this Makefile:\nall:\n\techo hi\n", "x": 1}
    value, _ = parse(b'a: "x\n\ty"\nb: [1,\n\t2]\n')
    assert value == {"a": "x y", "b": [1, 2]}
    for data, line in ((b"a:\n  b: 1\n\tc: 2\n", 3), (b"a:\n \tb: 1\n", 2)):
        with pytest.raises(YamlProblem, match="tab character in indentation") as info:
            parse(data)
        assert info.value.line == line


@pytest.mark.parametrize("data", [
    b"a: " + b"[" * 500 + b"]" * 500 + b"\n",
    b"".join(b"  " * i + b"k%d:\n" % i for i in range(400)) + b"  " * 400 + b"v: 1\n",
])
def test_deep_nesting_is_refused_not_a_crash(data: bytes) -> None:
    with pytest.raises(YamlProblem, match="nested deeper than") as info:
        parse(data)
    assert info.value.line is not None and info.value.fix
