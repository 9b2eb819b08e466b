"""The regular expressions that authors write and callers' text runs through: `deny` filters
and the `matches` assertion of golden tests.

They run on RE2 (google-re2), whose matching time is linear in the text: with Python's
backtracking `re`, a pattern such as `^(a+)+$` takes seconds for a 25-character input and
doubles with each character, so one caller could stall every other call of a batch. RE2's
syntax is close to Python's (`(?i)`, `\\d`, `\\b`, `(?P<name>...)`, `[[:alpha:]]`, `\\pL`);
what needs backtracking (lookarounds `(?=`, `(?!`, `(?<=`, `(?<!`, backreferences `\\1`,
atomic groups, possessive `++`) is refused at `validate`, at the pattern's line, with the
reason. `\\d`, `\\w`, `\\s` and `\\b` are ASCII in RE2; `\\pN`, `\\pL` are their Unicode forms.
`\\Z` is spelled `\\z`.

Schema `pattern`s are compiled by jsonschema-rs on its own linear-time engine
(`aiops.schemas`).
"""

from __future__ import annotations

import functools
from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every refused pattern to stderr
_LOOKS = {"(?=": "a lookahead", "(?!": "a negative lookahead", "(?<=": "a lookbehind",
          "(?<!": "a negative lookbehind", "(?>": "an atomic group"}


def linear_error(pattern: str) -> str | None:
    """Why `pattern` cannot run on the linear-time engine, or None when it can."""
    try:
        compile_linear(pattern)
    except ValueError as exc:
        return str(exc)
    return None


@functools.lru_cache(maxsize=256)
def compile_linear(pattern: str) -> Any:
    """`pattern` compiled for RE2 (a `re`-like object: search, match, finditer, sub).
    Raises ValueError saying why when RE2 cannot run it."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        why = exc.args[0].decode(errors="replace") if exc.args and isinstance(
            exc.args[0], bytes) else str(exc)
    what = _backtracking(why)
    if what:
        raise ValueError(
            f"`{pattern}` uses {what}, which needs backtracking: aiops does not run that on "
            "callers' text, where one crafted input could take exponential time; rewrite it "
            "without (RE2 syntax)")
    hint = "; spell `\\Z` as `\\z`" if why.endswith("\\Z") else ""
    raise ValueError(f"`{pattern}` is not a regular expression RE2 accepts: {why}{hint}")


def _backtracking(why: str) -> str | None:
    """What in a refused pattern needs backtracking, from RE2's reason; None if nothing."""
    operator = why.removeprefix("invalid perl operator: ")
    if operator in _LOOKS:
        return f"{_LOOKS[operator]} `{operator}`"
    escape = why.removeprefix("invalid escape sequence: ")
    if escape != why and escape[1:].isdigit():
        return f"the backreference `{escape}`"
    repeat = why.removeprefix("bad repetition operator: ")
    if repeat in ("++", "*+", "?+"):
        return f"the possessive repeat `{repeat}`"
    return None
