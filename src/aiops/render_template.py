"""Prompt templates: one sandboxed, strict Jinja environment for checking and rendering.

The sandbox keeps a template from reaching Python internals (`{{ x.__class__ }}` fails);
StrictUndefined turns a misspelt variable into an error instead of an empty string. Autoescape
is off: prompts are text, not HTML. `checks` parses templates with the same environment, so a
template that validates is one that renders.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.sandbox import SandboxedEnvironment

from aiops import fastjson
from aiops.errors import InputError


@lru_cache(maxsize=1)
def make_environment() -> SandboxedEnvironment:
    """The shared environment (created once): sandboxed, StrictUndefined, no autoescape."""
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                keep_trailing_newline=True)


Render = Callable[[Mapping[str, Any]], str]


@dataclass(frozen=True, kw_only=True)
class CompiledPrompt:
    """A version's messages with their templates compiled once."""

    roles: tuple[str, ...]
    renderers: tuple[Render, ...]
    variables: tuple[str, ...]  # declared inputs, passed as None when absent

    def render(self, values: Mapping[str, Any]) -> tuple[dict[str, str], ...]:
        context = dict.fromkeys(self.variables)
        context.update(values)
        try:
            return tuple({"role": role, "content": render(context)}
                         for role, render in zip(self.roles, self.renderers, strict=True))
        except TemplateError as exc:
            raise InputError(f"the prompt does not render with this input: {exc}") from None
        except (ArithmeticError, TypeError, ValueError, LookupError) as exc:
            # `{{ x + 1 }}` on a string, `// 0`, a sandbox range limit: the input's doing
            raise InputError(f"the prompt does not render with this input: "
                             f"{type(exc).__name__}: {exc}") from None


def compile_prompt(messages: Sequence[Mapping[str, str]], variables: Sequence[str] = ()
                   ) -> CompiledPrompt:
    env = make_environment()
    return CompiledPrompt(roles=tuple(m["role"] for m in messages),
                          renderers=tuple(_renderer(env, m["content"]) for m in messages),
                          variables=tuple(variables))


def _renderer(env: SandboxedEnvironment, source: str) -> Render:
    """How one message renders.

    Jinja's `render` costs ~10 µs a call, most of it setting up a context. A template that is
    only text and bare `{{ name }}`s (most prompts) renders the same by joining the text with
    `str()` of each value, which is what Jinja outputs when autoescape is off; a text without
    any is rendered once, here. Anything else, a name that the values lack (a Jinja global
    such as `range`, or an undefined name to report) and `self` (Jinja's reference to the
    template) are rendered by Jinja.
    """
    template = env.from_string(source)
    body = env.parse(source).body
    if not body:  # an empty text
        children: list[nodes.Expr] = []
    elif len(body) == 1 and isinstance(body[0], nodes.Output):
        children = body[0].nodes
    else:  # control flow
        return template.render
    parts: list[tuple[str, bool]] = []  # (text, is a name)
    for node in children:
        if isinstance(node, nodes.TemplateData):
            parts.append((node.data, False))
        elif isinstance(node, nodes.Name) and node.ctx == "load" and node.name != "self":
            parts.append((node.name, True))
        else:
            return template.render
    if not any(is_name for _, is_name in parts):
        text = "".join(data for data, _ in parts)
        return lambda values: text

    def substitute(values: Mapping[str, Any]) -> str:
        try:
            return "".join([str(values[part]) if is_name else part for part, is_name in parts])
        except KeyError:
            return template.render(values)

    return substitute


def prompt_hash(messages: Sequence[Mapping[str, str]]) -> str:
    """sha256 of the rendered messages as canonical JSON (keys sorted, compact, UTF-8): the
    same prompt, the same hash."""
    canonical = [{k: m[k] for k in sorted(m)} for m in messages]
    return hashlib.sha256(fastjson.dumps(canonical)).hexdigest()
