"""Prompt templates: one sandboxed, strict Jinja environment for checking and rendering.

The sandbox keeps a template from reaching Python internals (`{{ x.__class__ }}` fails);
StrictUndefined turns a misspelt variable into an error instead of an empty string. Autoescape
is off: prompts are text, not HTML. `checks` parses templates with the same environment, so a
template that validates is one that renders.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from aiops.errors import InputError


@lru_cache(maxsize=1)
def make_environment() -> SandboxedEnvironment:
    """The shared environment (created once): sandboxed, StrictUndefined, no autoescape."""
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                keep_trailing_newline=True)


@dataclass(frozen=True, kw_only=True)
class CompiledPrompt:
    """A version's messages with their templates compiled once."""

    roles: tuple[str, ...]
    templates: tuple[Template, ...]
    variables: tuple[str, ...]  # declared inputs, passed as None when absent

    def render(self, values: Mapping[str, Any]) -> tuple[dict[str, str], ...]:
        context = dict.fromkeys(self.variables)
        context.update(values)
        try:
            return tuple({"role": role, "content": template.render(context)}
                         for role, template in zip(self.roles, self.templates, strict=True))
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
                          templates=tuple(env.from_string(m["content"]) for m in messages),
                          variables=tuple(variables))


def prompt_hash(messages: Sequence[Mapping[str, str]]) -> str:
    """sha256 of the rendered messages (canonical JSON): the same prompt, the same hash."""
    text = json.dumps(list(messages), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()
