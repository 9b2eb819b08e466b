"""Sandboxed, strict prompt rendering."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2.sandbox import SandboxedEnvironment

from aiops.errors import InputError
from aiops.prompts import compile_prompt, make_environment, prompt_hash


def test_one_shared_environment() -> None:
    env = make_environment()
    assert env is make_environment() and isinstance(env, SandboxedEnvironment)
    assert env.autoescape is False
    assert env.from_string("{{ x }}").render(x="<b>&") == "<b>&"


def test_declared_but_absent_inputs_render_as_none() -> None:
    prompt = compile_prompt([{"role": "user", "content": "Hi {{ who }}{% if tone %} ({{ tone }})"
                              "{% endif %}"}], ["who", "tone"])
    assert prompt.render({"who": "Ada"})[0]["content"] == "Hi Ada"
    assert prompt.render({"who": "Ada", "tone": "warm"})[0]["content"] == "Hi Ada (warm)"


def test_undeclared_variables_fail_loudly() -> None:
    prompt = compile_prompt([{"role": "user", "content": "Hi {{ whom }}"}], ["who"])
    with pytest.raises(InputError, match="whom"):
        prompt.render({"who": "Ada"})


@pytest.mark.parametrize("template", [
    "{{ x.__class__.__mro__ }}",
    "{{ x.__init__.__globals__ }}",
    "{{ ''.__class__.__subclasses__() }}",
])
def test_the_sandbox_refuses_python_internals(template: str) -> None:
    prompt = compile_prompt([{"role": "user", "content": template}], ["x"])
    with pytest.raises(InputError):
        prompt.render({"x": "text"})


def test_prompt_hash_is_stable_and_content_sensitive() -> None:
    a = ({"role": "user", "content": "hi"},)
    assert prompt_hash(a) == prompt_hash([{"content": "hi", "role": "user"}])
    assert prompt_hash(a) != prompt_hash(({"role": "user", "content": "hi "},))


def test_prompt_hash_is_the_documented_canonical_json() -> None:
    """Log rows written before and after keep comparable hashes: sha256 of the messages as
    `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)` in UTF-8."""
    import hashlib
    import json

    messages = ({"role": "system", "content": "Réponds en JSON.\n\t\u2028 \x00 ✓ 🙂"},
                {"role": "user", "content": 'Say "hi" \\ there'})
    text = json.dumps(list(messages), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert prompt_hash(messages) == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(("template", "value"), [
    ("{{ x + 1 }}", "text"),  # TypeError
    ("{{ (x | int) // 0 }}", "3"),  # ZeroDivisionError
    ("{{ x | join(',') }}", 5),  # TypeError: not iterable
    ("{{ range(10 ** 9) | list | length }}", 1),  # OverflowError from the sandbox
])
def test_a_template_that_fails_on_this_input_is_an_input_error(template: str,
                                                                 value: object) -> None:
    """Not an "internal error, report it": the input (of a permissive schema) is what fails."""
    prompt = compile_prompt([{"role": "user", "content": template}], ["x"])
    with pytest.raises(InputError, match="does not render with this input"):
        prompt.render({"x": value})


@pytest.mark.parametrize("text", ["Plain text.", "a\r\nb\rc\n", "ends with newline\n", "{ x }",
                                  "}} and %} and #}", "", "{", "50% {off}"])
def test_text_without_template_syntax_renders_as_jinja_would(text: str) -> None:
    rendered = compile_prompt([{"role": "system", "content": text}]).render({"x": 1})
    assert rendered[0]["content"] == make_environment().from_string(text).render(x=1)


VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(),
                   st.lists(st.integers(), max_size=3),
                   st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(alphabet=st.characters(blacklist_characters="{}%#")),
                          st.sampled_from(["{{ a }}", "{{b}}", "{{- a -}}", "{{ a}}"])),
                max_size=6),
       VALUES, VALUES)
def test_text_and_names_render_as_jinja_renders_them(pieces: list[str], a: Any, b: Any) -> None:
    """The fast path for `text {{ name }} text` prompts against Jinja itself."""
    source = "".join(pieces)
    rendered = compile_prompt([{"role": "user", "content": source}], ["a", "b"]).render(
        {"a": a, "b": b})
    assert rendered[0]["content"] == make_environment().from_string(source).render(a=a, b=b)


@pytest.mark.parametrize(("source", "a", "want"), [
    ("{{ range }}", 1, "<function bounded_range"),  # a (bounded) Jinja global, not an input
    ("{{ self }}", 1, "<TemplateReference"),  # Jinja's own, even when an input has the name
    ("n={{ a }}{% if a %}!{% endif %}", 1, "n=1!"),  # control flow
    ("{{ a.b }}", {"b": 2}, "2"),  # attribute access, through the sandbox
    ("{{ a | upper }}", "x", "X"),  # a filter
])
def test_what_is_not_plain_substitution_goes_to_jinja(source: str, a: Any, want: str) -> None:
    got = compile_prompt([{"role": "user", "content": source}], ["a", "self"]).render(
        {"a": a, "self": "input"})
    assert got[0]["content"].startswith(want)


def test_an_undeclared_name_is_still_an_input_error() -> None:
    prompt = compile_prompt([{"role": "user", "content": "Hi {{ who }}"}], [])
    with pytest.raises(InputError, match="who"):
        prompt.render({})
