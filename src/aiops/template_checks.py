"""What `validate` finds in one prompt template, before any run: the variables it reads, and
what makes it fail whatever the input.

A template that can never render would otherwise pass `validate`, and every run would then
report it as "the prompt does not render with this input". Jinja reports some of these only
when the line runs (an unknown test anywhere, an unknown filter inside `{% if %}`, a filter
named as `map('...')`'s argument), and others only when it compiles the template (a block
defined twice, a loop variable assigned): `analyse` looks for the first kind in the parsed
tree, and runs Jinja's code generator (as `jinja2.meta` does to find the variables) for the
second, without compiling Python bytecode.
Pure: a template text and the declared input names in, located problems out.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

from aiops.prompts import MAX_RENDER_STEPS, make_environment

# Filters whose arguments name a filter or a test: (filter, index of the name's argument,
# what it names). `map(attribute=...)` names no filter.
_NAMED_BY_ARGUMENT = {"map": (0, "filter"), "select": (0, "test"), "reject": (0, "test"),
                      "selectattr": (1, "test"), "rejectattr": (1, "test")}


@dataclass(frozen=True, kw_only=True)
class TemplateProblem:
    """A reason a template fails on every input: where (template line, and a word of it that
    locates the line in the file) and what."""

    line: int
    word: str | None
    message: str
    fix: str
    code: str


@dataclass(frozen=True, kw_only=True)
class Analysis:
    # root variables the template reads -> line of first use; None when Jinja's compiler
    # refuses the template (then nothing is known of what it reads)
    variables: dict[str, int] | None
    problems: tuple[TemplateProblem, ...]


def template_variables(source: str, inputs: Iterable[str] = ()) -> dict[str, int]:
    """The root variables a template reads, each with the template line of its first use.
    Jinja globals (`range`, `namespace`, ...) are not variables, unless they are among
    `inputs`: a declared input shadows the global of its name when rendering.

    Raises jinja2.TemplateSyntaxError.
    """
    env = _environment(set(inputs))
    return _variables(env, env.parse(source))


def analyse(source: str, inputs: Iterable[str]) -> Analysis:
    """The template's variables and its problems. Raises jinja2.TemplateSyntaxError when it
    does not parse."""
    from jinja2 import TemplateSyntaxError

    declared = set(inputs)
    plain = _plain_variables(source, declared)
    if plain is not None:
        return Analysis(variables=plain, problems=())
    env = _environment(declared)
    tree = env.parse(source)
    problems = [*_unknown_names(env, tree), *_refused_attributes(tree),
                *_unconditional_loops(tree.body, 1)]
    # Jinja's code generator (which also finds the variables) stops at an unknown filter:
    # those already reported are stood in for, so that each problem is reported once.
    unknown = {p.word for p in problems if p.word and p.code in ("template-filter",
                                                                  "template-test")}
    if unknown:
        env = env.overlay()
        env.filters = {**env.filters, **dict.fromkeys(unknown, _never)}
        env.tests = {**env.tests, **dict.fromkeys(unknown, _never)}
        tree = env.parse(source)  # the generator reads the environment the tree holds
    variables: dict[str, int] | None = None
    try:  # finding the variables runs Jinja's code generator (no bytecode): its checks too
        variables = _variables(env, tree)
    except TemplateSyntaxError as exc:  # TemplateAssertionError is one
        problems.append(TemplateProblem(
            line=exc.lineno or 1, word=None, code="template-compile",
            message=f"Jinja refuses this template: {exc.message}",
            fix="the template cannot render with any input; change it as the message says"))
    if variables is not None:
        problems += _calls(tree, variables, declared)
    return Analysis(variables=variables, problems=tuple(sorted(problems, key=lambda p: p.line)))


# Most prompts are text with `{{ name }}` substitutions: nothing in them can fail on every
# input, and their variables are the names. They skip Jinja's parser and code generator,
# which are most of what `validate` and `plan` spend on a project.
_SUBSTITUTION = re.compile(r"\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*)\s*-?\}\}")
_NOT_NAMES = frozenset({"true", "false", "none", "True", "False", "None", "and", "or", "not",
                        "in", "is", "if", "else", "recursive", "loop", "caller", "self",
                        "super", "varargs", "kwargs"})  # keywords, and names Jinja may bind


def _plain_variables(source: str, declared: set[str]) -> dict[str, int] | None:
    """The variables of a template made only of text and `{{ name }}` substitutions, as
    `_variables` would find them; None for any other template."""
    if "{%" in source or "{#" in source:
        return None
    variables: dict[str, int] = {}
    rest = _SUBSTITUTION.sub("", source)
    if "{{" in rest or "}}" in rest:  # `}}` alone is text to Jinja, but stay exact: parse
        return None
    if "{{" not in source:
        return variables
    globals_ = make_environment().globals
    line, counted = 1, 0
    for match in _SUBSTITUTION.finditer(source):
        name = match.group(1)
        if name in _NOT_NAMES:
            return None
        line += source.count("\n", counted, match.start())
        counted = match.start()
        if name not in globals_ or name in declared:
            variables.setdefault(name, line)
    return variables


def _environment(inputs: set[str]) -> SandboxedEnvironment:
    env = make_environment()
    shadowed = inputs & set(env.globals)
    if shadowed:  # jinja's analysis skips globals: parse with an overlay that lacks them
        env = env.overlay()
        env.globals = {k: v for k, v in env.globals.items() if k not in shadowed}
    return env


def _variables(env: SandboxedEnvironment, tree: nodes.Template) -> dict[str, int]:
    from jinja2 import meta

    names = meta.find_undeclared_variables(tree) - set(env.globals)
    first: dict[str, int] = {}
    for node in tree.find_all(nodes.Name):
        if node.name in names and node.ctx == "load":
            first[node.name] = min(first.get(node.name, node.lineno), node.lineno)
    return {name: first.get(name, 1) for name in names}


def _unknown(kind: str, name: str, known: Iterable[str], line: int) -> TemplateProblem:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return TemplateProblem(
        line=line, word=name, code=f"template-{kind}",
        message=f"unknown {kind} `{name}`: Jinja has no such {kind}, so every render fails",
        fix=f"did you mean `{close[0]}`?" if close else
        f"use one of Jinja's built-in {kind}s (https://jinja.palletsprojects.com/"
        "en/stable/templates/#list-of-builtin-filters)")


def _unknown_names(env: SandboxedEnvironment, tree: nodes.Template) -> list[TemplateProblem]:
    """Filters and tests Jinja does not have, used directly (`x | f`, `x is t`) or named as
    the argument of map / select / reject / selectattr / rejectattr."""
    out = []
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        kind, known = ("filter", env.filters) if isinstance(node, nodes.Filter) else (
            "test", env.tests)
        if node.name not in known:
            out.append(_unknown(kind, node.name, known, node.lineno))
        named = _NAMED_BY_ARGUMENT.get(node.name) if kind == "filter" else None
        if named is None or any(kw.key == "attribute" for kw in node.kwargs):
            continue
        index, what = named
        arg = node.args[index] if len(node.args) > index else None
        if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
            table = env.filters if what == "filter" else env.tests
            if arg.value not in table:
                out.append(_unknown(what, arg.value, table, node.lineno))
    return out


def _calls(tree: nodes.Template, variables: dict[str, int],
           declared: set[str]) -> list[TemplateProblem]:
    """`x()` where `x` is a root variable: an input is a JSON value and never callable; any
    other name is undefined (macros, `caller`, `loop.cycle` and globals are not variables)."""
    out = []
    for node in tree.find_all(nodes.Call):
        callee = node.node
        if not isinstance(callee, nodes.Name) or callee.name not in variables:
            continue
        name = callee.name
        if name in declared:
            message = f"`{name}()` calls the input `{name}`, a JSON value, not a function"
            fix = f"write {{{{ {name} }}}} without the parentheses"
        else:
            message = (f"`{name}()` calls `{name}`, which is neither an input nor a Jinja "
                       "global (range, dict, lipsum, cycler, joiner, namespace) nor a macro "
                       "of this message")
            fix = "define it with {% macro %} in this message, or use a filter"
        out.append(TemplateProblem(line=node.lineno, word=name, message=message, fix=fix,
                                   code="template-call"))
    return out


def _refused_attributes(tree: nodes.Template) -> list[TemplateProblem]:
    """`x.__class__`: every value has the attribute, and the sandbox refuses every name that
    starts with `_`, whatever the input."""
    out = []
    for node in tree.find_all(nodes.Getattr):
        if node.attr.startswith("__") and hasattr(object, node.attr):
            out.append(TemplateProblem(
                line=node.lineno, word=node.attr, code="template-sandbox",
                message=f"`.{node.attr}` is refused by the sandbox (no `_` attributes), so "
                        "every render fails", fix="remove it"))
    return out


def _constant_range(node: nodes.Node) -> int | None:
    """The length of `range(...)` called with constant integers, else None."""
    if not (isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name)
            and node.node.name == "range" and not node.kwargs and 1 <= len(node.args) <= 3
            and all(isinstance(a, nodes.Const) and type(a.value) is int for a in node.args)):
        return None
    try:
        return len(range(*(a.value for a in node.args)))  # type: ignore[attr-defined]
    except (ValueError, OverflowError):
        return None


def _unconditional_loops(body: list[nodes.Node], times: int) -> list[TemplateProblem]:
    """Loops over constant ranges that run on every render, nested `times` deep, whose
    iterations alone exceed the render's steps. Only loops outside any condition are counted
    (a loop inside `{% if %}`, a macro or a filtered loop may never run), so this never
    refuses a template that some input renders."""
    for node in body:
        if not isinstance(node, nodes.For):
            continue
        length = _constant_range(node.iter)
        if length is None:
            continue
        total = times * length
        if total > MAX_RENDER_STEPS:
            return [TemplateProblem(
                line=node.lineno, word="for", code="template-loop",
                message=f"these loops iterate {total:,} times on every render, over the "
                        f"{MAX_RENDER_STEPS:,} a render may take, so every render fails",
                fix="iterate over fewer items, or over an input")]
        if node.test is None:
            found = _unconditional_loops(node.body, total)
            if found:
                return found
    return []


def _never(*args: object, **kwargs: object) -> None:  # pragma: no cover - never called
    """A stand-in for an unknown filter or test, so that compiling can go on."""
