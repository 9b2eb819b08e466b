"""Schema compatibility: whether a new pair of input and output schemas keeps working for the
callers of the old one (DESIGN §4).

Inputs may widen and outputs may narrow; the reverse breaks callers: a new required input, an
input removed while extra properties are refused, a narrowed input type or enum, an output
property removed or no longer required, a widened output type or enum. `compare` walks both
schemas together through local `$ref`s (recursive schemas included) and lists every break as a
readable item, plus the changes it cannot judge (combinators, remote references). Pure over
plain values: `checks` (validate --base) and `plan` both ask it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from aiops.errors import shown
from aiops.schemas import local_ref

MAX_LISTED = 200  # characters of a list of enum values in a breaking-change item


class HasSchemas(Protocol):
    """What `compare` reads: a function's input and output schemas."""

    @property
    def input_schema(self) -> dict[str, Any]: ...
    @property
    def output_schema(self) -> dict[str, Any]: ...


@dataclass(frozen=True, kw_only=True)
class Compatibility:
    """What changed between two versions' schemas, for their callers.

    `breaks`: every change that breaks existing callers, as readable items
    (`input.n: new required input`). `unchecked`: changed parts this module cannot judge.
    """

    breaks: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()


def compare(old: HasSchemas, new: HasSchemas) -> Compatibility:
    """Whether `new` keeps working for the callers of `old` (DESIGN §4).

    Compared: `type`, `enum`/`const`, `properties`, `required`, `additionalProperties: false`
    on inputs, and `items`, recursively, through local `$ref`s (`#/$defs/...`, `#`). Not
    compared: `anyOf`/`oneOf`/`allOf`/`not`/`if`, remote `$ref`s and value constraints
    (`maxLength`, `minimum`, `pattern`, ...). A changed combinator or unresolvable `$ref` is
    listed in `unchecked`; a tightened value constraint is not reported at all.
    """
    walk = _Walk(old.input_schema, new.input_schema)
    _visit(old.input_schema, new.input_schema, "input", walk, _input_here)
    out = _Walk(old.output_schema, new.output_schema)
    _visit(old.output_schema, new.output_schema, "output", out, _output_here)
    return Compatibility(breaks=(*walk.breaks, *out.breaks),
                         unchecked=(*walk.unchecked, *out.unchecked))


def breaking_changes(old: HasSchemas, new: HasSchemas) -> list[str]:
    """Every change that breaks existing callers, as readable items (see `compare`)."""
    return list(compare(old, new).breaks)


def properties_of(schema: Any) -> dict[str, Any]:
    """A schema node's `properties` (empty when it has none or they are malformed)."""
    p = schema.get("properties") if isinstance(schema, dict) else None
    return p if isinstance(p, dict) else {}


def required_of(schema: Any) -> set[str]:
    """The names a schema node's `required` lists (empty when it has none)."""
    r = schema.get("required") if isinstance(schema, dict) else None
    return {x for x in r if isinstance(x, str)} if isinstance(r, list) else set()


_COMBINATORS = ("anyOf", "oneOf", "allOf", "not", "if", "then", "else")


_Judge = Callable[[Any, Any, str, "_Walk"], None]


class _Walk:
    """One comparison of an old and a new schema: their roots (for `$ref`), the pairs of
    references already compared (recursive schemas), and what was found."""

    def __init__(self, old_root: Any, new_root: Any) -> None:
        self.roots = (old_root, new_root)
        self.active: set[tuple[str, str]] = set()  # reference pairs being compared
        self.budget = 10_000  # nodes compared at most (references can fan out)
        self.breaks: list[str] = []
        self.unchecked: list[str] = []
        self.filled = _filled(new_root, "input")


def _filled(schema: Any, where: str) -> set[str]:
    """Where the runner fills a default in (`aiops.prepare.fill_defaults`): properties with a
    `default`, through nested `properties` only (not array items, not a `$ref`)."""
    out: set[str] = set()
    for name, sub in properties_of(schema).items():
        if isinstance(sub, dict):
            if "default" in sub:
                out.add(f"{where}.{name}")
            out |= _filled(sub, f"{where}.{name}")
    return out




def _deref(schema: Any, root: Any, hops: int = 0) -> Any:
    """`schema` with a local `$ref` resolved (its sibling keywords kept over the target's)."""
    if not isinstance(schema, dict) or not isinstance(schema.get("$ref"), str) or hops > 32:
        return schema
    target = local_ref(root, schema["$ref"])
    if not isinstance(target, dict):
        return schema
    siblings = {k: v for k, v in schema.items() if k != "$ref"}
    return {**_deref(target, root, hops + 1), **siblings}


def _enter(old: Any, new: Any, where: str,
           walk: _Walk) -> tuple[Any, Any, tuple[str, str] | None] | None:
    """Both schemas with `$ref`s resolved, and the reference pair now being compared; None
    when that pair is already being compared further up (a recursive schema). Notes the
    parts that are not compared."""
    walk.budget -= 1
    if walk.budget < 0:
        if walk.budget == -1:
            walk.unchecked.append(f"{where}: the schemas are too large to compare further")
        return None
    refs = tuple(s.get("$ref") if isinstance(s, dict) else None for s in (old, new))
    key = None
    if any(isinstance(r, str) for r in refs):
        key = (str(refs[0]), str(refs[1]))
        if key in walk.active:
            return None
        walk.active.add(key)
    old, new = _deref(old, walk.roots[0]), _deref(new, walk.roots[1])
    if isinstance(old, dict) and isinstance(new, dict):
        changed = [k for k in ("$ref", *_COMBINATORS) if old.get(k) != new.get(k)]
        if changed:  # a `$ref` left here is one that does not resolve locally
            walk.unchecked.append(f"{where}: {'/'.join(changed)} changed")
    return old, new, key


def _types(schema: Any) -> set[str] | None:
    if not isinstance(schema, dict):
        return None
    t = schema.get("type")
    if t is None:
        return None
    return {t} if isinstance(t, str) else {x for x in t if isinstance(x, str)}


def _covers(wide: set[str] | None, narrow: set[str] | None) -> bool:
    """Whether every type in `narrow` is accepted by `wide` (None: any type)."""
    if wide is None:
        return True
    if narrow is None:
        return False
    expanded = wide | ({"integer"} if "number" in wide else set())
    return narrow <= expanded


def _fmt_types(types: set[str] | None) -> str:
    return "any" if types is None else "|".join(sorted(types))


def _enum(schema: Any) -> list[Any] | None:
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return [schema["const"]]
    e = schema.get("enum")
    return e if isinstance(e, list) else None


def _missing(values: Iterable[Any], within: list[Any]) -> list[Any]:
    return [v for v in values if v not in within]


def _visit(old: Any, new: Any, where: str, walk: _Walk, judge: _Judge) -> None:
    """Judge one pair of nodes (`_input_here` or `_output_here`), unless already being judged
    further up (a recursive schema) or the walk is over budget."""
    entered = _enter(old, new, where, walk)
    if entered is None:
        return
    old, new, key = entered
    try:
        judge(old, new, where, walk)
    finally:
        if key is not None:
            walk.active.discard(key)


def _input_here(old: Any, new: Any, where: str, walk: _Walk) -> None:
    items = walk.breaks
    ot, nt = _types(old), _types(new)
    if not _covers(nt, ot):
        items.append(f"{where}: type narrowed from {_fmt_types(ot)} to {_fmt_types(nt)}")
    oe, ne = _enum(old), _enum(new)
    if ne is not None:
        if oe is None:
            items.append(f"{where}: now restricted to {shown(ne, MAX_LISTED)}")
        elif dropped := _missing(oe, ne):
            items.append(f"{where}: enum no longer accepts {shown(dropped, MAX_LISTED)}")
    oprops, nprops = properties_of(old), properties_of(new)
    for name in sorted(required_of(new) - required_of(old)):
        if f"{where}.{name}" in walk.filled:
            continue  # the runner fills its default in for callers that do not send it
        items.append(f"{where}.{name}: new required input")
    if isinstance(new, dict) and new.get("additionalProperties") is False:
        if isinstance(old, dict) and old.get("additionalProperties") is not False and (
                "object" in (ot or {"object"})):
            items.append(f"{where}: extra properties now refused")
        for name in sorted(set(oprops) - set(nprops)):
            items.append(f"{where}.{name}: input removed while extra properties are refused")
    for name in sorted(set(oprops) & set(nprops)):
        _visit(oprops[name], nprops[name], f"{where}.{name}", walk, _input_here)
    if isinstance(old, dict) and isinstance(new, dict) and "items" in new:
        _visit(old.get("items", {}), new["items"], f"{where}[]", walk, _input_here)


def _output_here(old: Any, new: Any, where: str, walk: _Walk) -> None:
    items = walk.breaks
    ot, nt = _types(old), _types(new)
    if not _covers(ot, nt):
        items.append(f"{where}: type changed from {_fmt_types(ot)} to {_fmt_types(nt)}")
    oe, ne = _enum(old), _enum(new)
    if oe is not None:
        if ne is None:
            items.append(f"{where}: enum removed; any value may now come")
        elif added := _missing(ne, oe):
            items.append(f"{where}: enum widened with {shown(added, MAX_LISTED)}")
    oprops, nprops = properties_of(old), properties_of(new)
    for name in sorted(set(oprops) - set(nprops)):
        items.append(f"{where}.{name}: output property removed")
    for name in sorted((required_of(old) - required_of(new)) & set(nprops)):
        items.append(f"{where}.{name}: no longer required")
    for name in sorted(set(oprops) & set(nprops)):
        _visit(oprops[name], nprops[name], f"{where}.{name}", walk, _output_here)
    if isinstance(old, dict) and isinstance(new, dict) and "items" in old:
        _visit(old["items"], new.get("items", {}), f"{where}[]", walk, _output_here)
