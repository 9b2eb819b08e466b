"""JSON Schema validation (draft 2020-12) of callers' values, on jsonschema-rs alone.

jsonschema-rs answers "is this valid" in microseconds and lists the errors with their paths
and messages in JSON terms (`null`, `true`, `"a"`). Its `pattern` and `patternProperties`
regexes run on a linear-time engine (`RegexOptions`: the Rust `regex` crate), so no input
can make validation backtrack: with Python's `re`, `^(a+)+$` against a 29-character input
took 19 s. A schema whose pattern needs backtracking (a lookaround, a backreference) is an
error at `validate`, at the pattern's line (`pattern_problems`).

The most relevant error (`first_error`) is chosen as the `jsonschema` library's `best_match`
chooses it: the shallowest error, with `anyOf`/`oneOf` weak, descending into their branches
to the deepest error of the branch that matches the value's type. An author's schema
is checked against the draft's metaschema on jsonschema-rs too (`metaschema_errors`).
"""

from __future__ import annotations

import difflib
import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import quote, unquote

import jsonschema_rs

from aiops.errors import shown, shown_all

Path = tuple[str | int, ...]

_LINEAR = jsonschema_rs.RegexOptions()
_WEAK = frozenset({"anyOf", "oneOf"})
# Keywords whose value holds subschemas: as one schema, a list, or a map of them.
_ONE = frozenset({"additionalProperties", "items", "contains", "not", "if", "then", "else",
                  "propertyNames", "unevaluatedItems", "unevaluatedProperties", "contentSchema"})
_MANY = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_MAP = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
_JSON_TYPES: dict[str, type] = {"object": dict, "array": list, "string": str,
                                 "null": type(None), "boolean": bool}


def local_ref(root: Any, ref: str) -> Any:
    """The target of a `$ref` inside the document (`#`, `#/$defs/a`), or None."""
    if not ref.startswith("#"):
        return None
    node = root
    for raw in ref[1:].split("/")[1:]:
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


@dataclass(frozen=True)
class SchemaError:
    path: Path  # where in the value (or in the schema, for metaschema errors)
    message: str

    def render(self) -> str:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path)
        return f"${where}: {self.message}"

    @property
    def pointer(self) -> str:
        """Where, as a JSON pointer (RFC 6901) into the value."""
        return json_pointer(str(p) for p in self.path)


def json_pointer(parts: Iterable[str]) -> str:
    """RFC 6901: `/a/0/b`, with `~` and `/` escaped."""
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


class CompiledSchema:
    """One schema, compiled once, validating many values. Raises ValueError when the schema
    cannot be compiled (a pattern the linear-time engine refuses among them)."""

    __slots__ = ("_validator", "schema")

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        self._validator = jsonschema_rs.Draft202012Validator(schema, pattern_options=_LINEAR)

    def is_valid(self, value: Any) -> bool:
        return bool(self._validator.is_valid(value))

    def errors(self, value: Any) -> list[SchemaError]:
        """Every error, sorted by path; [] when valid."""
        if self._validator.is_valid(value):
            return []
        found = [SchemaError(tuple(e.instance_path), json_message(e))
                 for e in self._validator.iter_errors(value)]
        return sorted(found, key=lambda e: list(map(str, e.path)))

    def first_error(self, value: Any) -> SchemaError | None:
        """The most relevant error (as `jsonschema.best_match` picks it), or None when valid."""
        if self._validator.is_valid(value):
            return None
        best = _best_match(self.schema, list(self._validator.iter_errors(value)))
        return SchemaError(tuple(best.instance_path), json_message(best))


def json_message(error: Any) -> str:
    """jsonschema-rs's message with the words it borrows from Python made JSON: the names in
    `('a', 'b' were unexpected)`, `'anyOf'`, `None of [1]`, `False schema`."""
    message = str(error.message)
    kind = error.kind.name
    if kind in ("anyOf", "oneOf"):
        return message.replace(f"in the '{kind}' keyword", f"in `{kind}`")
    if kind == "contains" and message.startswith("None of "):
        return f"no item of {shown(error.instance)} is valid under the `contains` schema"
    if kind == "falseSchema":
        where = list(error.schema_path)[-1:]
        if where in (["additionalProperties"], ["unevaluatedProperties"]):
            return (f"Additional properties are not allowed (one with the value "
                    f"{shown(error.instance)} was unexpected)")
        return f"{shown(error.instance)} is not allowed here (the schema is `false`)"
    if kind in ("additionalProperties", "unevaluatedProperties"):
        names = list(error.kind.unexpected)
        verb = "was" if len(names) == 1 else "were"
        return (f"{kind[0].upper()}{kind[1:-10]} properties are not allowed "
                f"({', '.join(shown(n) for n in names)} {verb} unexpected)")
    return message


def _best_match(schema: Any, errors: list[Any]) -> Any:
    def key(error: Any) -> tuple[Any, ...]:
        path = tuple(error.instance_path)
        return (-len(path), [(0, p, "") if isinstance(p, int) else (1, 0, p) for p in path],
                error.kind.name not in _WEAK, not _matches_type(schema, error))

    best = max(errors, key=key)
    while best.kind.name in _WEAK:
        branches = [e for branch in best.kind.context for e in branch]
        smallest = heapq.nsmallest(2, branches, key=key)
        if not smallest or (len(smallest) == 2 and key(smallest[0]) == key(smallest[1])):
            return best
        best = smallest[0]
    return best


def _matches_type(schema: Any, error: Any) -> bool:
    """Whether the value at the error has the `type` of the subschema that refused it (an
    error from the branch meant for this kind of value is the relevant one)."""
    if error.kind.name == "falseSchema":
        return False
    node = schema
    for part in list(error.schema_path)[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    expected = node.get("type") if isinstance(node, dict) else None
    if expected is None:
        return False
    types = [expected] if isinstance(expected, str) else expected
    return any(_is_type(error.instance, t) for t in types if isinstance(t, str))


def _is_type(value: Any, name: str) -> bool:
    """JSON Schema's `type` test: booleans are not numbers, 1.0 is an integer."""
    if isinstance(value, bool):
        return name == "boolean"
    if name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, int | float)
    python = _JSON_TYPES.get(name)
    return python is not None and isinstance(value, python)


# --- patterns ----------------------------------------------------------------------------


def _subschemas(schema: Any, path: Path = (),
                out: list[tuple[Path, dict[str, Any]]] | None = None
                ) -> list[tuple[Path, dict[str, Any]]]:
    """Every (sub)schema that is an object, with its path, in keyword positions only (a
    `default` or an `enum` value that looks like a schema is not one), in document order."""
    out = [] if out is None else out
    if not isinstance(schema, dict):
        return out
    out.append((path, schema))
    for key, sub in schema.items():  # a schema has a few keys: cheaper than asking for each
        if key in _ONE:
            _subschemas(sub, (*path, key), out)
        elif key in _MANY and isinstance(sub, list):
            for i, item in enumerate(sub):
                _subschemas(item, (*path, key, i), out)
        elif key in _MAP and isinstance(sub, dict):
            for name, item in sub.items():
                _subschemas(item, (*path, key, name), out)
    return out


@cache
def _pattern_problem(pattern: str) -> str | None:
    try:
        jsonschema_rs.Draft202012Validator({"pattern": pattern}, pattern_options=_LINEAR)
    except ValueError:
        pass
    else:
        return None
    try:  # the full ECMA-262 dialect: is it a regex at all?
        jsonschema_rs.Draft202012Validator({"pattern": pattern})
    except ValueError:
        return f"`{pattern}` is not a valid regular expression"
    return (f"`{pattern}` needs backtracking (a lookaround such as `(?=` or `(?<!`, or a "
            "backreference such as `\\1`), which aiops does not run on callers' values: one "
            "crafted input could take exponential time")


def pattern_problems(schema: Any) -> list[tuple[Path, str]]:
    """(path in the schema, why) of every `pattern` and `patternProperties` key that the
    linear-time engine cannot run."""
    found: list[tuple[Path, str]] = []
    for path, node in _subschemas(schema):
        pattern = node.get("pattern")
        if isinstance(pattern, str) and (why := _pattern_problem(pattern)):
            found.append(((*path, "pattern"), why))
        props = node.get("patternProperties")
        for key in props if isinstance(props, dict) else ():
            if why := _pattern_problem(key):
                found.append(((*path, "patternProperties", key), why))
    return found


# --- values that can never pass ------------------------------------------------------------

_ROOT_URI = "urn:aiops:schema"  # where the schema under check is registered: nothing is fetched
_VALUE_KEYWORDS = ("enum", "const", "default", "examples")  # values, not schemas
_ANNOTATIONS = frozenset({"title", "description", "$comment", "examples", "default",
                          "deprecated", "readOnly", "writeOnly", "$anchor", "$id"})


@dataclass(frozen=True)
class ValueProblem:
    path: Path  # in the schema: where the `default`, the `enum` (or one of its values) is
    keyword: str  # default | enum | const
    message: str


def value_problems(schema: Any) -> list[ValueProblem]:
    """Each `default` that its own subschema refuses (the runner fills it in, and every call
    that omits the input would then be refused), and each `enum` or `const` value that the
    rest of its subschema refuses (no input can ever carry it; when no value of an `enum`
    passes, nothing at all can pass there). Every subschema is walked: `properties`,
    `items`, `$defs`, `anyOf`, ...; a local `$ref` is followed as the runner follows it."""
    judge = _Judge(schema)
    found: list[ValueProblem] = []
    for path, node in _subschemas(schema):
        if "default" in node:
            at_node = {"$ref": _ROOT_URI + "#" + "".join(f"/{_escape(p)}" for p in path)}
            why = judge.refusal(node, node["default"], at_node)
            if why:
                found.append(ValueProblem((*path, "default"), "default",
                                          f"default {shown(node['default'])} does not pass "
                                          f"its own schema: {why}"))
        if "const" in node:
            why = judge.refusal(_rest(node, "const"), node["const"])
            if why:
                found.append(ValueProblem((*path, "const"), "const",
                                          f"const {shown(node['const'])} can never pass the "
                                          f"rest of its schema ({why}): no value can pass here"))
        if isinstance(node.get("enum"), list) and node["enum"]:
            found += _enum_problems(path, node, judge)
    return found


def _enum_problems(path: Path, node: dict[str, Any], judge: _Judge) -> list[ValueProblem]:
    rest = _rest(node, "enum")
    refused = [(i, v, why) for i, v in enumerate(node["enum"])
               if (why := judge.refusal(rest, v))]
    if len(refused) == len(node["enum"]) and len(refused) > 1:
        first = refused[0][2]
        return [ValueProblem((*path, "enum"), "enum",
                             f"none of the {len(refused)} enum values passes the rest of its "
                             f"schema (first: {first}): no value can pass here")]
    return [ValueProblem((*path, "enum", i), "enum",
                         f"enum value {shown(v)} can never pass the rest of its schema "
                         f"({why})" + (": no value can pass here" if len(node["enum"]) == 1
                                       else ""))
            for i, v, why in refused]


def _escape(part: str | int) -> str:
    return quote(str(part).replace("~", "~0").replace("/", "~1"), safe="")


def _rest(node: dict[str, Any], keyword: str) -> dict[str, Any] | None:
    """`node` without `keyword`; None when what is left validates nothing."""
    rest = {k: v for k, v in node.items() if k != keyword}
    return rest if set(rest) - _ANNOTATIONS else None


def _rebased(node: Any) -> Any:
    """`node` with its local references pointing into the schema registered as _ROOT_URI."""
    if isinstance(node, list):
        return [_rebased(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k in ("$ref", "$dynamicRef") and isinstance(v, str) and v.startswith("#"):
            out[k] = _ROOT_URI + v
        else:
            out[k] = v if k in _VALUE_KEYWORDS else _rebased(v)
    return out


_SIMPLE = frozenset({"type", "enum", "const"}) | _ANNOTATIONS
_SCALARS = (str, int, float, bool, type(None))


class _Judge:
    """Whether subschemas of one schema accept values. The schema is registered (for the
    validators of subschemas that refer into it) only when a simple test cannot say yes."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        self._registry: Any = None

    def refusal(self, node: dict[str, Any] | None, value: Any,
                compiled_as: dict[str, Any] | None = None) -> str | None:
        """Why `node` refuses `value` (its most relevant error), or None when it accepts it or
        cannot be compiled (the other checks report that). `compiled_as`: a schema to compile
        in its place (a `$ref` to where it sits)."""
        if node is None or _plainly_accepts(node, value):
            return None
        schema = compiled_as or _rebased(node)
        try:
            if self._registry is None:
                self._registry = jsonschema_rs.Registry([(_ROOT_URI, self.schema)])
            validator = jsonschema_rs.Draft202012Validator(
                schema, registry=self._registry, pattern_options=_LINEAR, offline=True)
            if validator.is_valid(value):
                return None
            error = _best_match(schema, list(validator.iter_errors(value)))
        except (ValueError, jsonschema_rs.ReferencingError):
            return None
        why = SchemaError(tuple(error.instance_path), json_message(error)).render()
        return why.removeprefix("$: ")


def _plainly_accepts(node: dict[str, Any], value: Any) -> bool:
    """A quick yes for a scalar against a schema of `type`, `enum` and `const` alone (most
    defaults and enums); False: ask the validator."""
    if not isinstance(value, _SCALARS) or not node.keys() <= _SIMPLE:
        return False
    kind = node.get("type")
    kinds = [kind] if isinstance(kind, str) else kind
    if kinds is not None and not (isinstance(kinds, list) and any(
            isinstance(k, str) and _is_type(value, k) for k in kinds)):
        return False
    groups = [[node["const"]]] if "const" in node else []
    if "enum" in node:
        if not isinstance(node["enum"], list):
            return False
        groups.append(node["enum"])
    # The same Python type and equal: `true` is not `1` in JSON Schema, though it is in Python.
    return all(any(type(c) is type(value) and c == value for c in group) for group in groups)


# --- the metaschema ------------------------------------------------------------------------


DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
_TYPE_NAMES = ("array", "boolean", "integer", "null", "number", "object", "string")


@cache
def _meta_validator() -> Any:
    # jsonschema-rs carries the draft's metaschema: nothing is fetched.
    return jsonschema_rs.Draft202012Validator({"$ref": DRAFT_2020_12}, offline=True)


def metaschema_errors(schema: Any) -> list[SchemaError]:
    """Every draft 2020-12 metaschema violation of `schema`, with its path inside it, in JSON
    terms (`"strin" is not a type ...`, `5 is not of type "string"`)."""
    if jsonschema_rs.meta.is_valid(schema):
        return []
    found: dict[tuple[Path, str], None] = {}
    for error in _meta_validator().iter_errors(schema):
        path = tuple(error.instance_path)
        found[path, _meta_message(path, error)] = None
    return [SchemaError(path, message) for path, message in
            sorted(found, key=lambda pm: (list(map(str, pm[0])), pm[1]))]


def _meta_message(path: Path, error: Any) -> str:
    """The metaschema's complaint in the words of a schema's author."""
    value = error.instance
    if path and path[-1] == "type" and error.kind.name == "anyOf":
        close = difflib.get_close_matches(value, _TYPE_NAMES, n=1) if isinstance(
            value, str) else []
        hint = f" (did you mean {shown(close[0])}?)" if close else ""
        return (f"{shown(value)} is not a type{hint}: use one of {shown_all(_TYPE_NAMES)}, "
                "or a list of distinct ones")
    if error.kind.name == "type" and sorted(getattr(error.kind, "types", ())) == [
            "boolean", "object"]:
        return f"{shown(value)} is not a schema: a schema is a mapping, true or false"
    return str(error.message)
