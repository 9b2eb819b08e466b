"""Values that fit a JSON Schema, for the mock provider: deterministic from a seed, quick for
the plain schemas benchmarks send, and never silently wrong.

`generate(schema, seed)` walks the schema (draft 2020-12, and the draft 4-7 spellings that
models are still sent):

- `$ref` and `$dynamicRef` inside the document (`#`, JSON pointers, `$anchor`s, `$id`s) and
  `allOf` are merged into the schema that holds them: types intersect, bounds tighten,
  `properties` and `required` add up, `additionalProperties: false` keeps each part's names;
- `anyOf` / `oneOf` try their branches in an order drawn from the seed (`null` last near the
  top, first deep down, so that recursive schemas end); a `oneOf` branch counts only when no
  other branch matches the value too; `if`/`then`/`else` and `not` are checked the same way;
- `const`, `enum` (its values that fit the rest of the schema), objects (`properties`,
  `required`, `patternProperties`, `additionalProperties`, `min/maxProperties`,
  `dependentRequired`), arrays (`items`, `prefixItems`, `min/maxItems`, `uniqueItems`,
  `contains`), numbers (bounds, exclusive bounds, `multipleOf`), strings (`min/maxLength`,
  `format`, `pattern`).

Numbers, formats and strings for a `pattern` come from `aiops.providers.mock_scalars`. A
schema is compiled by jsonschema-rs first (one that is not valid JSON Schema, or refers
outside itself, goes no further); whatever cannot be generated raises `CannotGenerate`, which
says where and why; and every value is checked against the whole schema, formats included,
before it is returned.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
from functools import lru_cache
from typing import Any

from aiops import fastjson
from aiops.assertions import json_equal
from aiops.providers.mock_scalars import FORMATS, Unfit, matches, number, string_for
from aiops.schemas import local_ref

MAX_DEPTH = 32  # nesting of values: a schema that recurses without end stops here
FULL_DEPTH = 4  # deeper than this, optional properties and optional items are left out
MAX_VALUES = 100_000  # values in one answer
MAX_TEXT = 1 << 20  # characters in one string

_WORDS = ("alpha", "bravo", "delta", "echo", "gamma", "kilo", "lima", "nova", "omega", "sigma")
_COMPOSITE = frozenset({"$ref", "$dynamicRef", "allOf", "anyOf", "oneOf", "not", "if"})
_MINS = frozenset({"minLength", "minItems", "minProperties", "minContains"})
_MAXS = frozenset({"maxLength", "maxItems", "maxProperties", "maxContains"})
_SUBSCHEMA = frozenset({"items", "additionalProperties", "propertyNames", "additionalItems",
                        "unevaluatedItems", "unevaluatedProperties", "contains"})
_NUMERIC = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_OBJECT_WORDS = ("properties", "required", "additionalProperties", "patternProperties",
                 "minProperties", "maxProperties", "dependentRequired", "propertyNames")
_ARRAY_WORDS = ("items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains")
# Annotations and keywords a value never has to satisfy here.
_INERT = frozenset({"title", "description", "default", "examples", "$comment", "$schema",
                    "$id", "$anchor", "$dynamicAnchor", "$defs", "definitions", "deprecated",
                    "readOnly", "writeOnly", "discriminator", "strict", "nullable",
                    "contentEncoding", "contentMediaType", "$vocabulary", "then", "else"})


class CannotGenerate(ValueError):
    """No value was found for the schema at `where` (a JSON path of the answer)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


def generate(schema: Any, seed: str, key: str = "value") -> Any:
    """A value valid against `schema` (formats included), the same for the same seed.
    CannotGenerate when the schema is beyond the generator or no value can satisfy it.
    Values are remembered (the same request again costs a lookup): never change one."""
    text = fastjson.dumps(schema)
    remembered = _GENERATED.get((text, seed, key), _GENERATED)
    if remembered is not _GENERATED:
        return remembered
    value = _generate(schema, text, seed, key)
    if len(_GENERATED) >= MAX_REMEMBERED:
        _GENERATED.clear()
    _GENERATED[text, seed, key] = value
    return value


_GENERATED: dict[tuple[bytes, str, str], Any] = {}
MAX_REMEMBERED = 4096


def _generate(schema: Any, text: bytes, seed: str, key: str) -> Any:
    try:
        validator = _validator(text)
    except (TypeError, ValueError) as exc:  # jsonschema_rs.ValidationError is a ValueError
        where = "".join(f"/{p}" for p in getattr(exc, "instance_path", ()))
        raise CannotGenerate("$", f"the schema does not compile{f' at {where}' if where else ''}"
                                  f": {str(exc).splitlines()[0]}") from None
    value = _Generator(schema, seed).value(schema, "$", 0, key, 0)
    if not validator.is_valid(value):
        error = next(iter(validator.iter_errors(value)))
        where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                              for p in error.instance_path)
        raise CannotGenerate(where, f"the value the mock made fails the schema "
                                    f"({error.message})")
    return value


@lru_cache(maxsize=256)
def _validator(text: bytes) -> Any:
    """The schema compiled, formats checked; offline: a reference outside the document is an
    error, never a request."""
    import jsonschema_rs

    return jsonschema_rs.validator_for(fastjson.loads(text), validate_formats=True, offline=True)


def _types(value: Any) -> set[str] | None:
    if value is None:
        return None
    return {value} if isinstance(value, str) else {v for v in value if isinstance(v, str)}


class _Generator:
    def __init__(self, root: Any, seed: str) -> None:
        self.root = root
        self.seed = seed
        self.count = 0
        self._index: dict[str, Any] | None = None
        self._check: Any = None

    # --- choices ----------------------------------------------------------------------

    def pick(self, n: int, path: str, variant: int = 0) -> int:
        if n <= 1:
            return 0
        digest = hashlib.md5(f"{self.seed}|{path}".encode()).digest()
        return (int.from_bytes(digest[:8], "big") + variant) % n

    def valid(self, value: Any, schema: Any, where: str) -> bool:
        """Whether `value` fits a subschema, references resolved against the root."""
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError
        from jsonschema.validators import validator_for
        from referencing.exceptions import Unresolvable

        try:
            if self._check is None:
                root = self.root if isinstance(self.root, dict | bool) else {}
                cls = validator_for(root, default=Draft202012Validator)
                self._check = cls(root, format_checker=cls.FORMAT_CHECKER)
            return bool(self._check.evolve(schema=schema).is_valid(value))
        except (Unresolvable, SchemaError, re.error, TypeError, ValueError) as exc:
            raise CannotGenerate(where, f"the schema cannot be checked here: {exc}"
                                 .splitlines()[0]) from None

    # --- references and merging ---------------------------------------------------------

    def resolve(self, ref: Any, where: str) -> Any:
        if not isinstance(ref, str):
            raise CannotGenerate(where, f"$ref {json.dumps(ref)} is not a string")
        base, _, fragment = ref.partition("#")
        node = self.root
        if base:
            node = self.index().get(base, self.index().get(base.rsplit("/", 1)[-1]))
            if node is None:
                raise CannotGenerate(where, f"$ref {ref!r} points outside the schema; the mock "
                                            "follows references inside it only (#/$defs/...)")
        if fragment and not fragment.startswith("/"):
            found = self.index().get("#" + fragment)
            if found is None:
                raise CannotGenerate(where, f"$ref {ref!r} names an anchor the schema lacks")
            return found
        target = local_ref(node, "#" + fragment)
        if target is None:
            raise CannotGenerate(where, f"$ref {ref!r} points at nothing in the schema")
        return target

    def index(self) -> dict[str, Any]:
        """`$id`s (whole and last segment) and `#anchor`s of the document."""
        if self._index is None:
            self._index = {}
            stack = [self.root]
            while stack:
                node = stack.pop()
                if isinstance(node, dict):
                    for word in ("$anchor", "$dynamicAnchor"):
                        if isinstance(node.get(word), str):
                            self._index.setdefault("#" + node[word], node)
                    if isinstance(node.get("$id"), str):
                        ident = node["$id"].partition("#")[0]
                        self._index.setdefault(ident, node)
                        self._index.setdefault(ident.rstrip("/").rsplit("/", 1)[-1], node)
                    stack.extend(node.values())
                elif isinstance(node, list):
                    stack.extend(node)
        return self._index

    def flat(self, schema: dict[str, Any], where: str) -> dict[str, Any]:
        """`schema` with its references and `allOf` merged in (see the module docstring)."""
        if _COMPOSITE.isdisjoint(schema):
            return schema
        out: dict[str, Any] = {"_parts": []}
        self.absorb(out, schema, where, 0)
        return out

    def absorb(self, out: dict[str, Any], schema: Any, where: str, hops: int) -> None:
        """Merge `schema` into `out`, which is only ever replaced key by key, never changed
        in place (branches share what they were copied from)."""
        if hops > 64:
            raise CannotGenerate(where, "$ref or allOf loops back on itself")
        if schema is True:
            return
        if schema is False or not isinstance(schema, dict):
            out["_false"] = "the schema is `false`: no value fits" if schema is False else \
                f"{json.dumps(schema)[:60]} is not a schema"
            return
        out["_parts"] = [*out.get("_parts", ()), schema]
        if schema.get("additionalProperties") is False:
            out["_closed"] = [*out.get("_closed", ()), (
                frozenset(schema.get("properties") or ()),
                tuple(schema.get("patternProperties") or ()))]
        for word, value in schema.items():
            if word in ("$ref", "$dynamicRef"):
                self.absorb(out, self.resolve(value, where), where, hops + 1)
            elif word == "allOf":
                for part in value:
                    self.absorb(out, part, where, hops + 1)
            elif word in ("anyOf", "oneOf"):
                out["_groups"] = [*out.get("_groups", ()), (word, tuple(value))]
            elif word == "if":
                branches = (schema.get("then", True), schema.get("else", True))
                out["_groups"] = [*out.get("_groups", ()), ("if", (value, *branches))]
            elif word == "not":
                out["_nots"] = [*out.get("_nots", ()), value]
            elif word not in _INERT:
                _merge(out, word, value)

    # --- values -------------------------------------------------------------------------

    def value(self, schema: Any, path: str, depth: int, key: str, variant: int) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise CannotGenerate(path, f"the schema asks for more than {MAX_VALUES} values")
        if depth > MAX_DEPTH:
            raise CannotGenerate(path, f"the schema nests deeper than {MAX_DEPTH} levels "
                                       "(a recursion that no branch ends)")
        if schema is True:
            schema = {}
        if not isinstance(schema, dict):
            raise CannotGenerate(path, "the schema is `false`: no value fits" if schema is False
                                 else f"{json.dumps(schema)[:60]} is not a schema")
        if _COMPOSITE.isdisjoint(schema):  # the plain case, most of every schema
            return self.bare(schema, path, depth, key, variant)
        return self.flat_value(self.flat(schema, path), path, depth, key, variant)

    def flat_value(self, s: dict[str, Any], path: str, depth: int, key: str,
                   variant: int) -> Any:
        if "_false" in s:
            raise CannotGenerate(path, s["_false"])
        groups = s.get("_groups")
        if groups:
            return self.choose(s, groups, path, depth, key, variant)
        nots = s.get("_nots", ())
        if not nots:
            return self.bare(s, path, depth, key, variant)
        for attempt in range(4):
            value = self.bare(s, path, depth, key, variant + attempt * 7)
            if not any(self.valid(value, n, path) for n in nots):
                return value
        raise CannotGenerate(path, "`not` refuses every value the mock tried")

    def choose(self, s: dict[str, Any], groups: list[tuple[str, tuple[Any, ...]]], path: str,
               depth: int, key: str, variant: int) -> Any:
        kind, branches = groups[0]
        rest = {k: v for k, v in s.items() if k != "_groups"}
        if len(groups) > 1:
            rest["_groups"] = groups[1:]
        if kind == "if":
            condition, then, otherwise = branches
            options: list[tuple[Any, Any]] = [(then, True), (otherwise, False)]
        else:
            options = [(branches[i], i) for i in self.order(branches, path, depth, variant)]
        failure: CannotGenerate | None = None
        for branch, tag in options:
            merged = dict(rest)
            try:
                self.absorb(merged, branch, path, 0)
                value = self.flat_value(merged, path, depth, key, variant)
            except CannotGenerate as exc:
                failure = failure or exc
                continue
            if kind == "if" and self.valid(value, condition, path) is not tag:
                continue
            if kind == "oneOf" and any(self.valid(value, other, path)
                                       for j, other in enumerate(branches) if j != tag):
                continue
            return value
        if failure is not None and kind != "oneOf":
            raise failure
        what = {"anyOf": "no branch of anyOf", "oneOf": "no branch of oneOf",
                "if": "neither `then` nor `else`"}[kind]
        raise CannotGenerate(path, f"{what} gave a value" + (
            f" (first problem: {failure.where}: {failure.reason})" if failure else
            " that matches exactly one branch" if kind == "oneOf" else ""))

    def order(self, branches: tuple[Any, ...], path: str, depth: int,
              variant: int) -> list[int]:
        """Branches from one drawn from the seed; `null` last near the top (answers show
        something), first deep down (where recursion has to end)."""
        n = len(branches)
        start = self.pick(n, path + "|branch", variant)
        rotated = [(start + i) % n for i in range(n)]

        def plain(i: int) -> int:
            branch = branches[i]
            if not isinstance(branch, dict):
                return 1
            kinds = _types(branch.get("type"))
            if kinds == {"null"}:
                return 0
            return 1 if kinds and kinds <= {"string", "integer", "number", "boolean"} else 2

        if depth < FULL_DEPTH:
            return sorted(rotated, key=lambda i: plain(i) == 0)
        return sorted(rotated, key=plain)

    def bare(self, s: dict[str, Any], path: str, depth: int, key: str, variant: int) -> Any:
        if "const" in s:
            return s["const"]
        if "enum" in s:
            return self.enum(s, path, variant)
        kind = s.get("type")
        if isinstance(kind, str):
            return self.typed(kind, s, path, depth, key, variant)
        kinds = _types(kind)
        if kinds is None:
            kinds = _implied(s)
        order = [k for k in ("object", "array", "string", "integer", "number", "boolean", "null")
                 if k in kinds]
        if not order:
            raise CannotGenerate(path, "no type is left: the parts of the schema allow "
                                       "different types")
        failure: CannotGenerate | None = None
        for kind in order:
            try:
                return self.typed(kind, s, path, depth, key, variant)
            except CannotGenerate as exc:
                failure = failure or exc
        assert failure is not None
        raise failure

    def enum(self, s: dict[str, Any], path: str, variant: int) -> Any:
        options = s["enum"]
        if not isinstance(options, list) or not options:
            raise CannotGenerate(path, "the enum is empty (or the enums of allOf share no value)")
        rest = [k for k in s if k != "enum" and k not in _INERT and not k.startswith("_")]
        parts = s.get("_parts") or ([s] if rest and rest != ["type"] else [])
        if parts:
            options = [o for o in options if all(self.valid(o, p, path) for p in parts)]
            if not options:
                raise CannotGenerate(path, "no value of the enum fits the rest of the schema")
        elif rest:
            kinds = _types(s["type"]) or set()
            if "number" in kinds:
                kinds.add("integer")
            options = [o for o in options if _json_type(o) in kinds]
            if not options:
                raise CannotGenerate(path, f"no value of the enum is of type {s['type']}")
        return options[self.pick(len(options), path, variant)]

    def typed(self, kind: str, s: dict[str, Any], path: str, depth: int, key: str,
              variant: int) -> Any:
        if kind == "object":
            return self.object(s, path, depth, variant)
        if kind == "array":
            return self.array(s, path, depth, key, variant)
        if kind == "string":
            return self.string(s, path, key, variant)
        if kind in ("integer", "number"):
            try:
                return number(s, kind == "integer", variant)
            except Unfit as exc:
                raise CannotGenerate(path, str(exc)) from None
        if kind == "boolean":
            return variant % 2 == 0
        return None

    def object(self, s: dict[str, Any], path: str, depth: int, variant: int) -> dict[str, Any]:
        props: dict[str, Any] = s.get("properties") or {}
        required = [n for n in s.get("required") or () if isinstance(n, str)]
        closed = s.get("_closed") or ([(frozenset(props), tuple(s.get("patternProperties")
                                                                  or ()))]
                                      if s.get("additionalProperties") is False else [])
        out: dict[str, Any] = {}
        for name in list(dict.fromkeys([*props, *required])) if depth < FULL_DEPTH \
                else required:
            try:
                self.add(out, s, name, closed, path, depth, variant)
            except CannotGenerate:
                if name in required:
                    raise
        needs = s.get("dependentRequired") or {}
        for name in [n for n in out if n in needs]:
            for other in needs[name]:
                if other not in out:
                    self.add(out, s, other, closed, path, depth, variant)
        least = s.get("minProperties", 0)
        if len(out) < least:
            extra = [] if s.get("additionalProperties") is False else \
                [f"extra_{i}" for i in range(least)]
            for name in [n for n in props if n not in out] + extra:
                if len(out) >= least:
                    break
                with contextlib.suppress(CannotGenerate):
                    self.add(out, s, name, closed, path, depth, variant)
        most = s.get("maxProperties")
        if most is not None:
            for name in [n for n in reversed(list(out)) if n not in required]:
                if len(out) <= most:
                    break
                del out[name]
        if len(out) < least or (most is not None and len(out) > most):
            raise CannotGenerate(path, f"cannot make an object of {least} to {most} properties")
        return out

    def add(self, out: dict[str, Any], s: dict[str, Any], name: str, closed: list[Any],
            path: str, depth: int, variant: int) -> None:
        """Property `name` of an object, if the object's parts allow it."""
        where = f"{path}.{name}" if name.isidentifier() else f"{path}[{json.dumps(name)}]"
        for names, patterns in closed:
            if name not in names and not any(matches(p, name) for p in patterns):
                raise CannotGenerate(where, "is required, but additionalProperties: false "
                                            "leaves it out")
        props = s.get("properties") or {}
        by_pattern = s.get("patternProperties")
        if by_pattern:
            own = [props[name]] if name in props else []
            own += [v for p, v in by_pattern.items() if matches(p, name)]
            sub = own[0] if len(own) == 1 else {"allOf": own} if own else \
                s.get("additionalProperties", True)
        else:
            sub = props[name] if name in props else s.get("additionalProperties", True)
        out[name] = self.value(sub, where, depth + 1, name, variant)

    def array(self, s: dict[str, Any], path: str, depth: int, key: str,
              variant: int) -> list[Any]:
        prefix = s.get("prefixItems") or []
        items = s.get("items", True)
        if isinstance(items, list):  # draft 4-7 tuples
            prefix, items = items, s.get("additionalItems", True)
        least = s.get("minItems", 0)
        most = s.get("maxItems")
        if items is False:
            most = len(prefix) if most is None else min(most, len(prefix))
        contains = s.get("contains")
        wanted = 0 if contains is None else s.get("minContains", 1)
        count = max(least, wanted, *((1, len(prefix)) if depth < FULL_DEPTH else ()))
        if most is not None:
            if max(least, wanted) > most:
                raise CannotGenerate(path, f"{max(least, wanted)} items are needed, over "
                                           f"maxItems {most}")
            count = min(count, most)
        unique = s.get("uniqueItems") is True
        out: list[Any] = []
        seen: set[str] = set()
        for i in range(count):
            sub = prefix[i] if i < len(prefix) else items
            if i < wanted:
                sub = {"allOf": [sub, contains]}
            for attempt in range(12 if unique else 1):
                value = self.value(sub, f"{path}[{i}]", depth + 1, f"{key}{i}",
                                   variant + i + attempt * count)
                text = json.dumps(value, sort_keys=True)
                if text not in seen:
                    break
            else:
                raise CannotGenerate(path, f"uniqueItems: no {i + 1} different items found")
            if unique:
                seen.add(text)
            out.append(value)
        return out

    def string(self, s: dict[str, Any], path: str, key: str, variant: int) -> str:
        least: int = s.get("minLength", 0)
        most: int | None = s.get("maxLength")
        if least > MAX_TEXT:
            raise CannotGenerate(path, f"minLength {least} is over the mock's {MAX_TEXT}")
        if most is not None and least > most:
            raise CannotGenerate(path, f"minLength {least} is over maxLength {most}")
        patterns = s.get("_patterns") or ([s["pattern"]] if "pattern" in s else [])
        if patterns:
            return _from_patterns(patterns, least, most, path, self.pick(1 << 30, path, variant))
        fmt = s.get("format")
        if fmt in FORMATS:
            text = FORMATS[fmt](variant)
            if len(text) < least or (most is not None and len(text) > most):
                raise CannotGenerate(path, f"a {fmt} does not fit in {least} to {most} "
                                           "characters")
            return text
        first = self.pick(len(_WORDS), path, variant)
        second = self.pick(len(_WORDS), path + "|2", variant)
        text = f"{key} {_WORDS[first]} {_WORDS[second]}"
        if len(text) < least:
            text += "x" * (least - len(text))
        return text if most is None else text[:most]


_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", list: "array", dict: "object",
               type(None): "null"}


def _json_type(value: Any) -> str:
    kind = _JSON_TYPES.get(type(value))
    if kind is None and isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    return kind or "unknown"


def _implied(s: dict[str, Any]) -> set[str]:
    """The type a schema without `type` speaks of, from its keywords."""
    if any(k in s for k in _OBJECT_WORDS):
        return {"object"}
    if any(k in s for k in _ARRAY_WORDS):
        return {"array"}
    if any(k in s for k in _NUMERIC):
        return {"number"}
    return {"string"}


def _merge(out: dict[str, Any], word: str, value: Any) -> None:
    """One keyword of an `allOf` part into the merged schema `out`."""
    if word == "pattern":
        out["_patterns"] = [*out.get("_patterns", ()), value]
    if word not in out:
        out[word] = value
        return
    old = out[word]
    if word == "type":
        a, b = _types(old) or set(), _types(value) or set()
        both = (a & b) | ({"integer"} if ("integer" in a and "number" in b)
                          or ("number" in a and "integer" in b) else set())
        out[word] = sorted(both)
    elif word in ("properties", "patternProperties", "dependentSchemas"):
        merged = dict(old)
        for name, sub in value.items():
            merged[name] = {"allOf": [merged[name], sub]} if name in merged else sub
        out[word] = merged
    elif word in ("required",):
        out[word] = list(dict.fromkeys([*old, *value]))
    elif word == "dependentRequired":
        out[word] = {n: list(dict.fromkeys([*old.get(n, ()), *value.get(n, ())]))
                     for n in {*old, *value}}
    elif word in _SUBSCHEMA:
        out[word] = {"allOf": [old, value]}
    elif word == "prefixItems":
        longer, shorter = (old, value) if len(old) >= len(value) else (value, old)
        out[word] = [{"allOf": [a, shorter[i]]} if i < len(shorter) else a
                     for i, a in enumerate(longer)]
    elif word in _MINS or (word in ("minimum", "exclusiveMinimum") and not isinstance(old, bool)):
        out[word] = max(old, value)
    elif word in _MAXS or (word in ("maximum", "exclusiveMaximum") and not isinstance(old, bool)):
        out[word] = min(old, value)
    elif word == "enum":
        out[word] = [v for v in old if any(json_equal(v, w) for w in value)]
    elif word == "const" and not json_equal(old, value):
        out["_false"] = f"two consts: {json.dumps(old)[:40]} and {json.dumps(value)[:40]}"
    elif word == "uniqueItems":
        out[word] = bool(old or value)
    elif word == "multipleOf":
        out[word] = _lcm(old, value)


def _lcm(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int):
        return a * b // math.gcd(a, b)
    big, small = max(a, b), min(a, b)
    return big if (big / small).is_integer() else a * b


def _from_patterns(patterns: list[Any], least: int, most: int | None, path: str,
                   seed: int) -> str:
    try:
        text = string_for(patterns[0], least, most, seed)
    except Unfit as exc:
        raise CannotGenerate(path, str(exc)) from None
    for other in patterns[1:]:
        if not isinstance(other, str) or not matches(other, text):
            raise CannotGenerate(path, f"the string made for pattern {patterns[0]!r} does not "
                                       f"match {other!r} too; the mock writes strings for one "
                                       "pattern")
    return text
