"""Prompt templates: one sandboxed, strict Jinja environment for checking and rendering.

The sandbox keeps a template from reaching Python internals (`{{ x.__class__ }}` fails);
StrictUndefined turns a misspelt variable into an error instead of an empty string. Autoescape
is off: prompts are text, not HTML. `checks` parses templates with the same environment, so a
template that validates is one that renders.

Rendering is bounded, so that neither an input nor a template can take the process's memory
or time (a 60 KB input looped by a template aborted the process; nested `range(100000)` took
79 s and 7.7 GB). One render (all the messages of one call) has a `RenderBudget`:

- the rendered text is counted while Jinja streams it (`Template.generate`), and the render
  stops as soon as it passes `max_bytes` (`limits.max_prompt_bytes`);
- a value made while rendering (`*`, `+`, `~`, `%`, `**`, a growing filter or string method,
  a `{% filter %}`/`{% set %}` block or macro body) is sized before it is made: none may pass
  `max_bytes`, and together they may not pass WORK_FACTOR times it;
- loop iterations, `range()` elements and list growth share MAX_RENDER_STEPS.

Crossing a bound is an InputError (exit 3) that names it. Constant folding is off: it would
run filters while compiling, outside any budget.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.runtime import Context, Macro
from jinja2.sandbox import MAX_RANGE, SandboxedEnvironment
from jinja2.visitor import NodeTransformer

from aiops import fastjson
from aiops.errors import InputError
from aiops.files import describe_size
from aiops.spec import DEFAULT_MAX_PROMPT_BYTES

MAX_RENDER_STEPS = 1_000_000  # loop iterations + range() elements + list growth, one render
WORK_FACTOR = 8  # values made while rendering: at most 8 times the prompt bound, together


class RenderBoundExceeded(Exception):
    """Raised inside Jinja when a render crosses a bound; `render` makes it an InputError."""


@dataclass(slots=True)
class RenderBudget:
    """What one render may still produce and do."""

    max_bytes: int
    output: int = 0  # characters the messages may still take; set from max_bytes
    work: int = 0  # characters (or items) of values the render may still make
    steps: int = MAX_RENDER_STEPS

    def __post_init__(self) -> None:
        self.output = self.max_bytes
        self.work = WORK_FACTOR * self.max_bytes

    def emit(self, size: int) -> None:
        """`size` characters of prompt were rendered."""
        self.output -= size
        if self.output < 0:
            raise RenderBoundExceeded(
                f"the rendered prompt grows past the {describe_size(self.max_bytes)} bound "
                "(limits.max_prompt_bytes)")

    def make(self, size: int) -> None:
        """A value of `size` characters (or items) is about to be made."""
        if size > self.max_bytes:
            raise RenderBoundExceeded(
                f"the template makes a value of {size:,} characters, over the "
                f"{describe_size(self.max_bytes)} bound of a rendered prompt "
                "(limits.max_prompt_bytes)")
        self.work -= size
        if self.work < 0:
            raise RenderBoundExceeded(
                f"the template makes more than {describe_size(WORK_FACTOR * self.max_bytes)} "
                f"of values while rendering ({WORK_FACTOR} times the bound of a rendered "
                "prompt, limits.max_prompt_bytes)")

    def step(self, n: int = 1) -> None:
        self.steps -= n
        if self.steps < 0:
            raise RenderBoundExceeded(
                f"the template iterates more than {MAX_RENDER_STEPS:,} times in one render "
                "(loops, range() and growing lists together)")


_BUDGET: ContextVar[RenderBudget | None] = ContextVar("aiops_render_budget", default=None)


def _budget() -> RenderBudget:
    """The budget of the render in progress. A template rendered outside `render` (a test, a
    tool) still has each value bounded, by a budget of its own for each operation."""
    return _BUDGET.get() or RenderBudget(max_bytes=DEFAULT_MAX_PROMPT_BYTES)


def _size(value: Any) -> int | None:
    if isinstance(value, str | list | tuple | dict | set | frozenset | bytes):
        return len(value)
    return None


SMALL = 1024  # a text shorter than this is not charged: loops of small values are bounded
# by their steps, and this keeps a filter call in a loop as cheap as it was


def _charge(value: Any) -> Any:
    if type(value) is str and len(value) < SMALL:
        return value
    size = _size(value)
    if size is not None:
        _budget().make(size)
    return value


# --- sizes of growing operations, known before they run ------------------------------------

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*:([^{}]*)\}")
_DIGITS = re.compile(r"\d+")
_ARGUMENT_WIDTH = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*\.?\*|\{[^{}]*:[^{}]*\{")


def _format_size(fmt: str, args: Iterable[Any]) -> int:
    """An upper bound on `fmt % args` or `fmt.format(*args)`: each field at most the longest
    argument, padded to the widest width or precision the format (or a `*`) asks for."""
    values = list(args)
    widths = [int(d) for m in _PERCENT_SPEC.finditer(fmt) for d in m.groups() if d and d != "*"]
    widths += [int(d) for m in _BRACE_SPEC.finditer(fmt) for d in _DIGITS.findall(m[1])]
    if _ARGUMENT_WIDTH.search(fmt):  # `%*d`, `{:>{}}`: a width taken from the arguments
        widths += [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    longest = max((len(str(v)) for v in values), default=0)
    fields = fmt.count("%") + fmt.count("{")
    return len(fmt) + fields * (longest + max(widths, default=0))


def _format_args(right: Any) -> list[Any]:
    if isinstance(right, tuple):
        return list(right)
    if isinstance(right, Mapping):
        return list(right.values())
    return [right]


def _join_size(items: Sequence[Any], sep: str) -> int:
    return sum(len(str(x)) for x in items) + len(sep) * max(len(items) - 1, 0)


def _replace_size(s: str, old: str, new: str, count: int | None = None) -> int:
    hits = s.count(old) if old else len(s) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    return len(s) + hits * max(len(new) - len(old), 0)


def _lines(s: str) -> int:
    return s.count("\n") + 1


def _json_size(value: Any, indent: Any) -> int:
    """`tojson`: the compact text, plus one indented line per item (depth ignored: this is a
    guard against a huge `indent`, the result itself is charged after)."""
    compact = fastjson.dumps(value)
    items = compact.count(b",") + compact.count(b"{") + compact.count(b"[") + 1
    return len(compact) + items * (1 + (len(indent) if isinstance(indent, str) else
                                        int(indent or 0)))


# Filters that can make a value much larger than their input: the size they will make.
_FILTER_SIZES: dict[str, Callable[..., int]] = {
    "center": lambda value, width=80: max(len(str(value)), int(width)),
    "indent": lambda s, width=4, first=False, blank=False: len(str(s)) + _lines(str(s)) * (
        len(width) if isinstance(width, str) else int(width)),
    "format": lambda value, *args, **kwargs: _format_size(str(value), [*args, *kwargs.values()]),
    "replace": lambda s, old, new, count=None: _replace_size(str(s), str(old), str(new), count),
    "wordwrap": lambda s, width=79, break_long_words=True, wrapstring=None, **_: len(str(s)) + (
        2 * len(wrapstring or "\n") * (len(str(s)) // max(int(width), 1) + _lines(str(s)))),
    "batch": lambda value, linecount, fill_with=None: int(linecount),
    "slice": lambda value, slices, fill_with=None: int(slices),
    "tojson": lambda value, indent=None: _json_size(value, indent),
}
# String methods likewise (`"x".ljust(10**9)`).
_METHOD_SIZES: dict[str, Callable[..., int]] = {
    "ljust": lambda s, width, fill=" ": max(len(s), int(width)),
    "rjust": lambda s, width, fill=" ": max(len(s), int(width)),
    "center": lambda s, width, fill=" ": max(len(s), int(width)),
    "zfill": lambda s, width: max(len(s), int(width)),
    "expandtabs": lambda s, tabsize=8: len(s) + s.count("\t") * int(tabsize),
    "replace": lambda s, old, new, count=-1: _replace_size(s, str(old), str(new), count),
    "format": lambda s, *args, **kwargs: _format_size(s, [*args, *kwargs.values()]),
    "format_map": lambda s, mapping: _format_size(s, _format_args(mapping)),
}


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func`, sized before it runs (when it can grow) and charged after."""
    size_of = _FILTER_SIZES.get(name)
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0  # env or eval_ctx
    if name == "join":
        @functools.wraps(func)
        def join(*args: Any, **kwargs: Any) -> Any:
            bound = inspect.signature(func).bind(*args, **kwargs)
            items = list(bound.arguments["value"])  # a generator is consumed once, here
            _budget().step(len(items))
            _budget().make(_join_size(items, str(bound.arguments.get("d", ""))))
            bound.arguments["value"] = items
            return func(*bound.args, **bound.kwargs)
        return join

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        if size_of is not None:
            _budget().make(size_of(*args[skip:], **kwargs))
        return _charge(func(*args, **kwargs))

    return bounded


class _Bounded(NodeTransformer):
    """Route every loop's iterable through the step counter, and `~` through a sized join:
    calls to two globals that an author does not see (no filter or test is added)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _call(_STEPS, node.iter, node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _call(_CONCAT, nodes.List(node.nodes, lineno=node.lineno), node.lineno)


_STEPS, _CONCAT = "_aiops_steps", "_aiops_concat"


def _call(name: str, arg: nodes.Node, lineno: int) -> nodes.Call:
    return nodes.Call(nodes.Name(name, "load", lineno=lineno), [arg], [], None, None,
                      lineno=lineno)


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = _budget()
    for item in iterable:
        budget.steps -= 1  # `step()`, inlined: this runs once per loop iteration
        if budget.steps < 0:
            budget.step(0)
        yield item


def _concat(parts: list[Any]) -> str:
    texts = [str(p) for p in parts]
    _budget().make(sum(map(len, texts)))
    return "".join(texts)


def bounded_range(*args: int) -> range:
    """`range`, within the sandbox's MAX_RANGE per call and the render's steps in total."""
    values = range(*args)
    if len(values) > MAX_RANGE:
        raise RenderBoundExceeded(f"range() of {len(values):,} numbers is over the "
                                  f"{MAX_RANGE:,} a call may make")
    _budget().step(len(values))
    return values


class BoundedEnvironment(SandboxedEnvironment):
    """The sandbox, with every way of making a large value sized first (see the module)."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(optimized=False, **kwargs)
        self.globals.update({"range": bounded_range, _STEPS: _counted, _CONCAT: _concat})
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None,
                  defer_init: bool = False) -> str:
        return super()._generate(_Bounded().visit(source), name, filename,
                                 defer_init=defer_init)

    def concat(self, parts: Iterable[str]) -> str:
        """Buffers (filter and set blocks, macro bodies) are joined here: sized first."""
        parts = parts if isinstance(parts, list) else list(parts)
        _budget().make(sum(map(len, parts)))
        return "".join(parts)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = _budget()
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                size = _size(seq)
                if size is not None and isinstance(times, int):
                    budget.make(size * max(times, 0))
        elif operator == "+":
            a, b = _size(left), _size(right)
            if a is not None and b is not None:
                budget.make(a + b)
        elif operator == "%" and isinstance(left, str):
            budget.make(_format_size(left, _format_args(right)))
        elif (operator == "**" and isinstance(left, int) and isinstance(right, int)
              and right > 0 and abs(left) > 1):
            budget.make(abs(left).bit_length() * right // 3)  # decimal digits, about
        return self.binop_table[operator](left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any,
             **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        if owner is None and hasattr(__obj, "__wrapped__"):  # str.format comes wrapped
            owner = getattr(__obj.__wrapped__, "__self__", None)
        name = getattr(__obj, "__name__", "")
        budget = _budget()
        if isinstance(owner, str) and name in _METHOD_SIZES:
            budget.make(_METHOD_SIZES[name](owner, *args, **kwargs))
        elif isinstance(owner, str) and name == "join" and args:
            items = list(args[0])
            budget.step(len(items))
            budget.make(_join_size(items, owner))
            args = (items, *args[1:])
        elif isinstance(owner, list) and name in ("extend", "__iadd__") and args:
            budget.step(_size(args[0]) or 0)
        elif isinstance(owner, list) and name in ("append", "insert"):
            budget.step()
        result = SandboxedEnvironment.call(__self, __context, __obj, *args, **kwargs)
        if __obj is _concat or isinstance(__obj, Macro):  # already sized, by them or `concat`
            return result
        return _charge(result)


@lru_cache(maxsize=1)
def make_environment() -> BoundedEnvironment:
    """The shared environment (created once): sandboxed, StrictUndefined, no autoescape."""
    return BoundedEnvironment(undefined=StrictUndefined, autoescape=False,
                              keep_trailing_newline=True)


# A message's renderer: the values, and the budget of the render it is part of.
Render = Callable[[Mapping[str, Any], RenderBudget], str]


@dataclass(frozen=True, kw_only=True)
class CompiledPrompt:
    """A version's messages with their templates compiled once."""

    roles: tuple[str, ...]
    renderers: tuple[Render, ...]
    variables: tuple[str, ...]  # declared inputs, passed as None when absent

    def render(self, values: Mapping[str, Any], *,
               max_bytes: int = DEFAULT_MAX_PROMPT_BYTES) -> tuple[dict[str, str], ...]:
        """The messages, or InputError; together they are at most `max_bytes` of UTF-8."""
        context = dict.fromkeys(self.variables)
        context.update(values)
        budget = RenderBudget(max_bytes=max_bytes)
        token = _BUDGET.set(budget)
        try:
            messages = tuple({"role": role, "content": render(context, budget)}
                             for role, render in zip(self.roles, self.renderers, strict=True))
        except RenderBoundExceeded as exc:
            raise InputError(f"the prompt does not render with this input: {exc}") from None
        except TemplateError as exc:
            raise InputError(f"the prompt does not render with this input: {exc}") from None
        except RecursionError:
            raise InputError("the prompt does not render with this input: the template "
                             "recurses too deeply") from None
        except (ArithmeticError, TypeError, ValueError, LookupError) as exc:
            # `{{ x + 1 }}` on a string, `// 0`, a sandbox range limit: the input's doing
            raise InputError(f"the prompt does not render with this input: "
                             f"{type(exc).__name__}: {exc}") from None
        finally:
            _BUDGET.reset(token)
        # Characters were counted while rendering (a lower bound on bytes); bytes are exact
        # here (`isascii` is O(1): most prompts are not encoded).
        size = sum(len(m["content"]) if m["content"].isascii() else
                   len(m["content"].encode("utf-8", "surrogatepass")) for m in messages)
        if size > max_bytes:
            raise InputError(f"the prompt does not render with this input: the rendered prompt "
                             f"is {size:,} bytes of UTF-8, over the {describe_size(max_bytes)} "
                             "bound (limits.max_prompt_bytes)")
        return messages


def compile_prompt(messages: Sequence[Mapping[str, str]], variables: Sequence[str] = ()
                   ) -> CompiledPrompt:
    env = make_environment()
    return CompiledPrompt(roles=tuple(m["role"] for m in messages),
                          renderers=tuple(_renderer(env, m["content"]) for m in messages),
                          variables=tuple(variables))


def _streamed(template: Any) -> Render:
    """Jinja's streaming render, stopped as soon as the output passes the budget."""

    def render(values: Mapping[str, Any], budget: RenderBudget) -> str:
        parts: list[str] = []
        size, left = 0, budget.output  # counted here: a method call a chunk costs 20%
        for chunk in template.generate(values):
            size += len(chunk)
            if size > left:
                budget.emit(size)  # raises
            parts.append(chunk)
        budget.emit(size)
        return "".join(parts)

    return render


def _renderer(env: SandboxedEnvironment, source: str) -> Render:
    """How one message renders.

    Jinja's `render` costs ~10 µs a call, most of it setting up a context. A template that is
    only text and bare `{{ name }}`s (most prompts) renders the same by joining the text with
    `str()` of each value, which is what Jinja outputs when autoescape is off; a text without
    any is rendered once, here. Anything else, a name that the values lack (a Jinja global
    such as `range`, or an undefined name to report) and `self` (Jinja's reference to the
    template) are rendered by Jinja, streamed.
    """
    template = env.from_string(source)
    streamed = _streamed(template)
    body = env.parse(source).body
    if not body:  # an empty text
        children: list[nodes.Expr] = []
    elif len(body) == 1 and isinstance(body[0], nodes.Output):
        children = body[0].nodes
    else:  # control flow
        return streamed
    parts: list[tuple[str, bool]] = []  # (text, is a name)
    for node in children:
        if isinstance(node, nodes.TemplateData):
            parts.append((node.data, False))
        elif isinstance(node, nodes.Name) and node.ctx == "load" and node.name != "self":
            parts.append((node.name, True))
        else:
            return streamed
    if not any(is_name for _, is_name in parts):
        text = "".join(data for data, _ in parts)

        def constant(values: Mapping[str, Any], budget: RenderBudget) -> str:
            budget.emit(len(text))
            return text

        return constant

    def substitute(values: Mapping[str, Any], budget: RenderBudget) -> str:
        try:
            texts = [str(values[part]) if is_name else part for part, is_name in parts]
        except KeyError:
            return streamed(values, budget)
        budget.emit(sum(map(len, texts)))  # `{{ text }}` a thousand times: sized, not made
        return "".join(texts)

    return substitute


def prompt_hash(messages: Sequence[Mapping[str, str]]) -> str:
    """sha256 of the rendered messages as canonical JSON (keys sorted, compact, UTF-8): the
    same prompt, the same hash."""
    canonical = [{k: m[k] for k in sorted(m)} for m in messages]
    return hashlib.sha256(fastjson.dumps(canonical)).hexdigest()
