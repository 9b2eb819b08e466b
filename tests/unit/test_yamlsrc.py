"""The safe YAML reader: positions, and every hostile input refused with a place and a fix."""

from __future__ import annotations

import re

import pytest

from aiops import yamlsrc
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
        (b"1: x\n", 'key "1" is read as a number', 1),
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
    with pytest.raises(YamlProblem, match="expands to more than 100,000 values"):
        parse("\n".join(lines).encode())


def test_oversize_file() -> None:
    with pytest.raises(YamlProblem, match="over the 1 MiB bound"):
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
    with pytest.raises(YamlProblem, match="expands to more than"):
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


# --- expansion by size, not only by count ---------------------------------------------------


def test_aliases_of_a_long_text_are_bounded_by_the_text_they_expand_to() -> None:
    """The issue's bomb, scaled: a long anchored scalar and many aliases of it pass the node
    bound (few nodes) and the file bound (small file) but expand to gigabytes; refused at the
    first alias that crosses the bound, on its own line."""
    big = "x" * 700_000
    data = f"big: &a {big}\ncopies: [{','.join(['*a'] * 90_000)}]\n".encode()
    assert len(data) < MAX_FILE_BYTES
    with pytest.raises(YamlProblem, match="more than 2,097,152 characters") as info:
        parse(data)
    # 700,000 (the anchor) + 700,000 + 700,000 crosses 2 MiB at the alias `copies[1]`.
    assert (info.value.line, info.value.column) == (2, 13)
    assert format_path(info.value.path) == "copies[1]" and info.value.fix


def test_a_bound_crossed_deep_inside_aliases_is_placed_at_the_outermost_alias() -> None:
    text = ("a: &a {k: " + "y" * 600_000 + "}\n"
            "b: &b [*a, *a]\n"
            "c:\n  d: *b\n")
    with pytest.raises(YamlProblem, match="characters of text") as info:
        parse(text.encode())
    # b's own aliases stay within the bound; c.d's expansion of b crosses it.
    assert format_path(info.value.path) == "c.d" and info.value.line == 4


def test_without_aliases_a_file_within_its_size_is_within_the_expansion_bound() -> None:
    from aiops.yamlsrc import MAX_EXPANDED_CHARS

    value, _ = parse(b"k: " + b"z" * (MAX_FILE_BYTES - 10) + b"\n")
    assert len(value["k"]) == MAX_FILE_BYTES - 10 < MAX_EXPANDED_CHARS


def test_alias_marks_follow_merges_sequences_and_nesting() -> None:
    from aiops.yamlsrc import alias_marks

    text = ("base: &b {x: 1}\nitems: [*b, 2, *b]\nm:\n  <<: *b\n  n: {o: *b}\n"
            "p:\n  <<: [*b, {q: *b}]\n")
    marks = alias_marks(text)
    assert marks[("items", 0)] == (2, 9) and marks[("items", 2)] == (2, 16)
    assert marks[("m",)] == (4, 7)  # a merge builds at its mapping's path
    assert marks[("m", "n", "o")] == (5, 10)
    assert marks[("p",)] == (7, 8) and marks[("p", "q")] == (7, 16)


# --- values a database, JSON or a provider cannot take ---------------------------------------


@pytest.mark.parametrize(("data", "message", "path"), [
    (b'description: "a\\0b"\n', "U+0000 (NUL)", "description"),
    (b'metadata:\n  "k\\0": 1\n', "U+0000 (NUL)", "metadata.k\x00"),
    (b"limits:\n  daily_calls: 99999999999999999999999\n", "beyond 64 bits",
     "limits.daily_calls"),
    (b"x: -9223372036854775809\n", "beyond 64 bits", "x"),
    (b"x: 1.0e+16\n", "PostgreSQL reads it back as an integer", "x"),
    (b"x: [-1.5e+300]\n", "PostgreSQL reads it back as an integer", "x[0]"),
    (b"x: 0x10\n", "YAML 1.1 number form", "x"),
    (b"x: 010\n", "YAML 1.1 number form", "x"),  # octal 8 here, 10 in YAML 1.2
    (b"x: 0b101\n", "YAML 1.1 number form", "x"),
    (b"x: 1_000\n", "YAML 1.1 number form", "x"),
    (b"x: 1:30\n", "YAML 1.1 number form", "x"),  # 90 here, text in YAML 1.2
    (b"x: !!int '0x10'\n", "YAML 1.1 number form", "x"),
    (b"x: 1.5e3\n", "a number to YAML 1.2", "x"),  # text here, 1500.0 in YAML 1.2
    (b"x: [2e-1]\n", "a number to YAML 1.2", "x[0]"),
    (b"x: 0o17\n", "a number to YAML 1.2", "x"),
])
def test_values_that_cannot_be_stored_are_refused_where_they_are_written(
        data: bytes, message: str, path: str) -> None:
    with pytest.raises(YamlProblem, match=re.escape(message)) as info:
        parse(data)
    assert format_path(info.value.path) == path
    assert info.value.line == data.count(b"\n") and info.value.fix


def test_the_64_bit_range_and_decimal_forms_are_accepted() -> None:
    value, _ = parse(b"a: 9223372036854775807\nb: -9223372036854775808\nc: 0\nd: -12\n"
                     b"e: '0x10'\nf: 1.5e+3\ng: 0.5\nh: '1e3'\ni: 1.2.3\nj: 1e3x\n")
    assert value == {"a": (1 << 63) - 1, "b": -(1 << 63), "c": 0, "d": -12, "e": "0x10",
                     "f": 1500.0, "g": 0.5, "h": "1e3", "i": "1.2.3", "j": "1e3x"}


def test_a_lone_surrogate_is_refused_by_the_pure_python_reader_too(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # libyaml refuses the escape itself; PyYAML's pure-Python reader (the fallback when
    # libyaml is not installed) builds it.
    import yaml

    monkeypatch.setattr(yamlsrc, "_Loader", yaml.SafeLoader)
    with pytest.raises(YamlProblem, match="lone surrogate") as info:
        parse(b'a: 1\nb: "x\\ud800"\n')
    assert info.value.line == 2


def test_recordings_may_hold_what_a_database_may_not() -> None:
    from aiops.yamlsrc import Bounds, parse_any

    recording = Bounds(storable=False)
    value = parse_any(b'- {body: "a\\0b", n: 99999999999999999999999, h: 0x10}\n', recording)
    assert value == [{"body": "a\x00b", "n": 99999999999999999999999, "h": 16}]
    with pytest.raises(YamlProblem, match="more than 10 characters"):
        parse_any(b"a: &a 12345\nb: [*a, *a]\n", Bounds(expanded_chars=10))
