"""Sandboxed, strict prompt rendering."""

from __future__ import annotations

import pytest
from jinja2.sandbox import SandboxedEnvironment

from aiops.errors import InputError
from aiops.render_template import compile_prompt, make_environment, prompt_hash


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
