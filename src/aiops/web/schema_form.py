"""The schema builder's model: a JSON Schema as the form the web UI's schema builder shows, and
back. Pure: no files, no HTTP.

The builder shows, on every node, `type` (one of TYPES), `description`, `enum`, `default`
and the bounds of its type; an object's properties (name, required, and their own node); an
array's `items`. Everything else on a node (`$ref`, `oneOf`, `pattern`, a `type` list, ...)
is carried in the node's `extra` and written back as it was, and the node's `keys` keep the
order its author wrote them in: a schema read into the form and written back unchanged is the
same schema, key for key, and a builder edit changes only what it edits.

A node, as JSON (what the page's script edits):

    {"type": "object" | "array" | "string" | "number" | "integer" | "boolean" | "",
     "description": "...", "enum": "one value per line", "default": "text",
     "minimum": "", "maximum": "", "minLength": "", ..., (text: "" is none)
     "properties": [{"name": "...", "required": true, "schema": node}, ...],
     "required_more": ["names required but not among properties"],
     "items": node | null, "extra": {keyword: value}, "keys": ["as written"]}

A schema that is not an object (`true`, `false`) is `{"literal": value}`. Values (`enum`
lines, `default`) are text: for a string node the text itself (JSON-quoted when it would
read otherwise: empty, or starting with a quote), for other nodes JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

from aiops.document import with_key
from aiops.yamlsrc import MAX_DEPTH, parse

TYPES = ("string", "number", "integer", "boolean", "object", "array")
BOUNDS = ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems")
# The bounds shown for each type (the others a node has are kept, and shown as set).
TYPE_BOUNDS = {"string": ("minLength", "maxLength"), "number": ("minimum", "maximum"),
               "integer": ("minimum", "maximum"), "array": ("minItems", "maxItems")}
SHOWN = ("type", "description", "enum", "default", *BOUNDS, "properties", "required",
         "items")
SCHEMA_KEYS = ("input_schema", "output_schema")


class FormError(ValueError):
    """A value in the builder's form that makes no schema: where (`at`, a path of property
    names) and what."""

    def __init__(self, at: str, message: str) -> None:
        self.at = at
        self.message = message
        super().__init__(f"{at or 'the schema'}: {message}")


# --- schema -> form -------------------------------------------------------------------------


def builder_state(text: str) -> dict[str, Any]:
    """The builder's form of both schemas of a function file (None for one it lacks).
    Raises YamlProblem when the text does not parse."""
    value = parse(text.encode())[0]
    return {key: form_of(value[key]) if key in value else None for key in SCHEMA_KEYS}


def form_of(schema: Any, depth: int = 0) -> dict[str, Any]:
    """The builder's node for `schema`."""
    if not isinstance(schema, dict) or depth >= MAX_DEPTH:
        return {"literal": schema}
    node: dict[str, Any] = {"keys": list(schema), "extra": {}}
    kind = schema.get("type")
    node["type"] = kind if kind in TYPES else ""
    shown = {"type"} if node["type"] else set()
    if isinstance(schema.get("description"), str):
        node["description"] = schema["description"]
        shown.add("description")
    if isinstance(schema.get("enum"), list):
        node["enum"] = "\n".join(value_text(v, node["type"]) for v in schema["enum"])
        shown.add("enum")
    if "default" in schema:
        node["default"] = value_text(schema["default"], node["type"])
        shown.add("default")
    for bound in BOUNDS:
        if _is_number(schema.get(bound)):
            node[bound] = json.dumps(schema[bound])
            shown.add(bound)
    props = schema.get("properties")
    required = schema.get("required")
    names = required if isinstance(required, list) and all(
        isinstance(n, str) for n in required) else None
    if isinstance(props, dict):
        node["properties"] = [{"name": name, "required": name in (names or ()),
                               "schema": form_of(sub, depth + 1)} for name, sub in props.items()]
        shown.add("properties")
    if names is not None:  # required names that are not properties are kept too
        node["required_more"] = [n for n in names if not isinstance(props, dict) or n not in props]
        shown.add("required")
    items = schema.get("items")
    if isinstance(items, dict | bool):
        node["items"] = form_of(items, depth + 1)
        shown.add("items")
    node["extra"] = {k: v for k, v in schema.items() if k not in shown}
    return node


def value_text(value: Any, kind: str) -> str:
    """A value as the builder's text field shows it (see the module's docstring)."""
    if kind == "string" and isinstance(value, str) and value and not value.startswith('"'):
        return value
    return json.dumps(value, ensure_ascii=False)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- form -> schema -------------------------------------------------------------------------


def with_form(text: str, key: str, form: Any) -> str:
    """The function file `text` with its schema `key` written from the builder's `form`,
    every other line as it was. Raises FormError (the form), YamlProblem (the text) or
    ValueError (a file the rewrite cannot follow)."""
    if key not in SCHEMA_KEYS:
        raise FormError("", f"the builder writes {' or '.join(SCHEMA_KEYS)}, not {key!r}")
    return with_key(text, key, schema_of(form))


def schema_of(form: Any, at: str = "", depth: int = 0) -> Any:
    """The JSON Schema of a builder node; FormError at a value that makes none."""
    if not isinstance(form, dict):
        raise FormError(at, "a schema node is a JSON object")
    if depth >= MAX_DEPTH:
        raise FormError(at, f"the schema nests deeper than {MAX_DEPTH} levels")
    if "literal" in form:
        return form["literal"]
    kind = _text(form, "type", at)
    if kind and kind not in TYPES:
        raise FormError(at, f"type {kind!r} is not one of {', '.join(TYPES)}")
    known: dict[str, Any] = {}
    if kind:
        known["type"] = kind
    if _text(form, "description", at):
        known["description"] = form["description"]
    if "enum" in form and _text(form, "enum", at).strip():
        known["enum"] = [parse_value(line, kind, f"{at} enum")
                         for line in form["enum"].splitlines() if line.strip()]
    if "default" in form and _text(form, "default", at).strip():
        known["default"] = parse_value(form["default"], kind, f"{at} default")
    for bound in BOUNDS:
        number = _bound(form.get(bound), f"{at} {bound}".strip())
        if number is not None:
            known[bound] = number
    known.update(_object_part(form, at, depth))
    items = form.get("items")
    if items is not None:
        known["items"] = schema_of(items, f"{at}[]", depth + 1)
    extra = form.get("extra") or {}
    keys = form.get("keys") or []
    if not isinstance(extra, dict) or not isinstance(keys, list):
        raise FormError(at, "`extra` is an object and `keys` a list")
    out: dict[str, Any] = {}
    for k in [*keys, *SHOWN, *extra]:
        if k in out:
            continue
        if k in known:  # what the form sets, else what it could not show
            out[k] = known[k]
        elif k in extra:
            out[k] = extra[k]
    return out


def _object_part(form: dict[str, Any], at: str, depth: int) -> dict[str, Any]:
    """`properties` and `required` from the form's property rows."""
    props = form.get("properties") or []
    more = form.get("required_more") or []
    if not isinstance(props, list) or not isinstance(more, list):
        raise FormError(at, "`properties` and `required_more` are lists")
    out: dict[str, Any] = {}
    required: list[str] = []
    for row in props:
        if not isinstance(row, dict):
            raise FormError(at, "a property is a JSON object")
        name = _text(row, "name", at).strip()
        if not name:
            raise FormError(at, "a property has no name: name it, or remove it")
        where = f"{at}.{name}" if at else name
        if name in out:
            raise FormError(where, "two properties have this name")
        out[name] = schema_of(row.get("schema", {}), where, depth + 1)
        if row.get("required") is True:
            required.append(name)
    required += [n for n in more if isinstance(n, str) and n not in required]
    written: dict[str, Any] = {}
    if out or "properties" in form:
        written["properties"] = out
    if required or "required_more" in form:
        written["required"] = required
    return written


def parse_value(text: str, kind: str, at: str) -> Any:
    """A value typed in the builder: JSON, or for a string node the text itself."""
    stripped = text.strip()
    try:
        value = json.loads(stripped)
    except ValueError:
        if kind == "string":
            return text
        raise FormError(at, f"{stripped!r} is not a JSON value (quote text: \"...\")") from None
    if kind == "string" and not isinstance(value, str):
        return text
    if isinstance(value, float) and not math.isfinite(value):
        raise FormError(at, f"{stripped!r} is not a finite number")
    return value


def _bound(value: Any, at: str) -> int | float | None:
    if value is None or value == "":
        return None
    if _is_number(value):
        number: int | float = value
    elif isinstance(value, str):
        try:
            number = json.loads(value.strip())
        except ValueError:
            raise FormError(at, f"{value!r} is not a number") from None
        if not _is_number(number):
            raise FormError(at, f"{value!r} is not a number")
    else:
        raise FormError(at, f"{value!r} is not a number")
    if isinstance(number, float) and not math.isfinite(number):
        raise FormError(at, f"{value!r} is not a finite number")
    return number


def _text(form: dict[str, Any], key: str, at: str) -> str:
    value = form.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FormError(at, f"`{key}` is text")
    return value
