"""Rendering is bounded while it runs (issue 9): neither an input nor an author's template can
take the process's memory or time. Each bomb below took seconds to minutes and gigabytes (a
60 KB input looped by a template aborted the process; nested range(100000): 79 s, 7.7 GB);
each is now refused at once, with an InputError that names the bound."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
import yaml

from aiops.errors import InputError
from aiops.prompts import compile_prompt
from aiops.runner import Runner
from aiops.spec import ProvidersFile
from tests.fixtures_db import PROVIDERS_YAML, make_spec
from tests.fixtures_providers import FakeStore

TEXT = "y" * 60_000  # the 60 KB input
MiB = 1 << 20


def render(template: str) -> str:
    """With the default bound (1 MiB), as a function that does not set max_prompt_bytes."""
    prompt = compile_prompt([{"role": "user", "content": template}], ["text"])
    return prompt.render({"text": TEXT})[0]["content"]


@pytest.mark.parametrize(("template", "message"), [
    # The two: an input looped, and an author's nested range.
    ("{% for a in text %}{% for b in text %}{{ text }}{% endfor %}{% endfor %}",
     "the rendered prompt grows past the 1 MiB bound (limits.max_prompt_bytes)"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
     "iterates more than 1,000,000 times"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
     "iterates more than 1,000,000 times"),
    ("{% for a in text %}{% for b in text %}{% endfor %}{% endfor %}",
     "iterates more than 1,000,000 times"),
    ("{% for i in range(99999) %}{% set r = range(99999) %}{% endfor %}",
     "iterates more than 1,000,000 times"),
    # One expression, one huge value: sized before it is made.
    ("{{ text * 100000 }}", "makes a value of 6,000,000,000 characters"),
    ("{{ [text] * 100000000 }}", "makes a value of 100,000,000 characters"),
    ("{{ 'x'.ljust(1000000000) }}", "makes a value of 1,000,000,000 characters"),
    ("{{ 'x' | center(1000000000) }}", "makes a value of 1,000,000,000 characters"),
    ("{{ ('a\\n' * 1000) | indent(100000) }}", "makes a value of"),
    ("{{ text | replace('y', text) }}", "makes a value of 3,600,000,000 characters"),
    ("{{ text.replace('y', text) }}", "makes a value of"),
    ("{{ range(100000) | join(text) }}", "makes a value of"),
    ("{{ text.join(range(100000)) }}", "makes a value of"),
    ("{{ '%999999999s' % 'x' }}", "makes a value of"),
    ("{{ '%*d' % (999999999, 1) }}", "makes a value of"),
    ("{{ '%s' | format(text) * 1000 }}", "makes a value of"),
    ("{{ '{:>999999999}'.format(1) }}", "makes a value of"),
    ("{{ '{:>{}}'.format(1, 999999999) }}", "makes a value of"),
    ("{{ 2 ** 1000000000 }}", "makes a value of"),
    ("{{ text | wordwrap(1, wrapstring=text) }}", "makes a value of"),
    ("{{ [1] | batch(1000000000, 0) | list }}", "makes a value of"),
    ("{{ text | tojson(indent=100000000) }}", "makes a value of"),
    # Growth by doubling: each step small, the total not.
    ("{% set ns = namespace(t=text) %}{% for i in range(40) %}{% set ns.t = ns.t ~ ns.t %}"
     "{% endfor %}", "over the 1 MiB bound"),
    ("{% set ns = namespace(t=text) %}{% for i in range(40) %}{% set ns.t = ns.t + ns.t %}"
     "{% endfor %}", "over the 1 MiB bound"),
    ("{% set l = [text] %}{% for i in range(60) %}{{ l.extend(l) or '' }}{% endfor %}",
     "iterates more than 1,000,000 times"),
    # Text gathered out of sight of the output: block sets, filter blocks, macros.
    ("{% set x %}{% for i in range(100000) %}{{ text }}{% endfor %}{% endset %}",
     "over the 1 MiB bound"),
    ("{% filter upper %}{% for i in range(100000) %}{{ text }}{% endfor %}{% endfilter %}",
     "over the 1 MiB bound"),
    ("{% macro m() %}{% for i in range(100000) %}{{ text }}{% endfor %}{% endmacro %}"
     "{{ m() | length }}", "over the 1 MiB bound"),
    # Many small values, each within the bound, together past the work bound.
    ("{% for i in range(100000) %}{% set x = text.upper() %}{% endfor %}",
     "makes more than 8 MiB of values"),
    ("{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}", "recurses too deeply"),
    # Plain substitution (the fast path) is bounded too.
    ("{{ text }}" * 20, "grows past the 1 MiB bound"),
])
def test_a_template_that_grows_without_bound_is_an_input_error(template: str,
                                                               message: str) -> None:
    with pytest.raises(InputError, match="the prompt does not render with this input") as info:
        render(template)
    assert message in info.value.message and info.value.exit_code == 3


def test_templates_within_the_bounds_render_as_before() -> None:
    items = [{"name": f"item {i}", "tags": ["a", "b"]} for i in range(2000)]
    prompt = compile_prompt([{"role": "system", "content": "You sort items."},
                             {"role": "user", "content":
                              "{% for it in items %}{{ loop.index }}. {{ it.name | upper }}"
                              " [{{ it.tags | join(', ') }}]{% if not loop.last %}\n"
                              "{% endif %}{% endfor %}\n{{ '%-6s|' % 'ok' }}{{ '{:>4}'.format(7) }}"
                              "{{ text | truncate(10) }}{{ ('ab' * 3) ~ ('c' + 'd') }}"
                              "{{ text | wordwrap(20000) | length }}"
                              "|{{ 'Order {} of {}'.format(12345678, 99999999) }}"
                              "|{{ '%d%%' % 3000000 }}|{{ '%.2f' | format(2.5) }}"}],
                           ["items", "text"])
    content = prompt.render({"items": items, "text": TEXT})[1]["content"]
    assert content.startswith("1. ITEM 0 [a, b]\n2. ITEM 1 [a, b]")
    assert content.endswith("ok    |   7yyyyyyy...abababcd60002|Order 12345678 of 99999999"
                            "|3000000%|2.50")


def test_the_bound_is_on_utf8_bytes_over_every_message() -> None:
    prompt = compile_prompt([{"role": "system", "content": "{{ a }}"},
                             {"role": "user", "content": "{% if a %}{{ b }}{% endif %}"}],
                            ["a", "b"])
    assert prompt.render({"a": "x" * 600, "b": "y" * 400}, max_bytes=1000)
    with pytest.raises(InputError, match="grows past the 1000 bytes bound"):
        prompt.render({"a": "x" * 600, "b": "y" * 401}, max_bytes=1000)
    # 700 characters, 1,400 bytes: counted as characters while rendering, then as bytes.
    with pytest.raises(InputError, match="is 1,400 bytes of UTF-8, over the 1000 bytes bound"):
        prompt.render({"a": "é" * 350, "b": "é" * 350}, max_bytes=1000)


def test_the_runner_refuses_an_oversized_prompt_with_a_log_row() -> None:
    spec = make_spec("greet", limits={"max_input_bytes": 1024, "max_prompt_bytes": 2048},
                     prompt=[{"role": "user",
                              "content": "{% for i in range(3) %}{{ who }}{% endfor %}"}])
    store = FakeStore([spec])
    calls: list[Any] = []

    def make(name: str, pspec: Any, env: Any) -> Any:
        calls.append(name)
        raise AssertionError("no provider is called")

    providers = ProvidersFile.model_validate(yaml.safe_load(PROVIDERS_YAML))
    runner = Runner(store=store, providers=providers, env={}, make=make, rng=random.Random(1))

    async def go() -> Any:
        try:
            return await runner.run("greet", {"who": "w" * 700})
        finally:
            await runner.aclose()

    execution = asyncio.run(go())
    assert isinstance(execution.error, InputError) and execution.error.exit_code == 3
    assert "2 KiB bound (limits.max_prompt_bytes)" in execution.error.message
    (row,) = store.logs
    assert row.status == "error" and row.error["type"] == "InputError" and not calls


def test_max_prompt_bytes_is_checked_and_left_out_of_hashes_while_unset() -> None:
    from pydantic import ValidationError

    from aiops.fingerprint import metadata_content

    spec = make_spec()
    # Functions that do not set it keep the metadata hash they had (no update planned).
    assert "max_prompt_bytes" not in metadata_content(spec)["limits"]
    assert spec.limits.prompt_bytes == MiB
    assert make_spec(limits={"max_input_bytes": MiB}).limits.prompt_bytes == 2 * MiB
    assert metadata_content(make_spec(limits={"max_prompt_bytes": 65536}))["limits"][
        "max_prompt_bytes"] == 65536
    with pytest.raises(ValidationError, match=r"below max_input_bytes \(65536\): an input at"):
        make_spec(limits={"max_prompt_bytes": 4096})
    with pytest.raises(ValidationError, match="less than or equal to 67108864"):
        make_spec(limits={"max_prompt_bytes": 1 << 30})
