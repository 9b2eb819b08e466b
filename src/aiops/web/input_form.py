"""The test console's form: a function's input schema as the fields a person fills in. Pure.

`fields_of(schema)` reads the schema once, on the server, so that the page's script only
draws what it is given and collects the values back into JSON. One field per property,
labelled with its name:

    {"name": "tier", "kind": "enum", "required": false, "description": "...",
     "default": "free", "options": ["free", "pro"]}

Kinds: `string` (`multiline` when long text is allowed), `integer`, `number`, `boolean` (a
checkbox), `enum` (a select of `options`), `object` (its `fields`), `array` (its `item`, a
field without a name, repeated), and `json` for what a form cannot say (`oneOf`, a type
list, a remote `$ref`): a JSON text area. Local `$ref`s (`#/$defs/...`) are followed, a
nullable type (`[string, "null"]`) is its other type.
"""

from __future__ import annotations

from typing import Any

from aiops.schemas import local_ref

MAX_DEPTH = 12  # a form nests a few levels; a recursive schema ends as JSON text here
LONG_TEXT = 200  # strings that may be longer than this get a text area
SCALARS = ("string", "integer", "number", "boolean")


def fields_of(schema: Any) -> list[dict[str, Any]]:
    """The fields of an object schema's properties (none for any other schema)."""
    root = schema
    node = _resolved(schema, root)
    if not isinstance(node, dict) or not isinstance(node.get("properties"), dict):
        return []
    return _fields(node, root, 0)


def _fields(node: dict[str, Any], root: Any, depth: int) -> list[dict[str, Any]]:
    listed = node.get("required")
    required = listed if isinstance(listed, list) else []
    return [field_of(name, sub, root, depth + 1, required=name in required)
            for name, sub in node["properties"].items()]


def field_of(name: str, schema: Any, root: Any, depth: int = 0, *,
             required: bool = False) -> dict[str, Any]:
    """One property's field (`name` "" for an array's item)."""
    node = _resolved(schema, root)
    out: dict[str, Any] = {"name": name, "required": required, "kind": "json"}
    if not isinstance(node, dict):
        return out
    if isinstance(node.get("description"), str):
        out["description"] = node["description"]
    if "default" in node:
        out["default"] = node["default"]
    kind = _kind(node)
    if depth >= MAX_DEPTH or kind is None:
        return out
    if isinstance(node.get("enum"), list) and node["enum"]:
        out.update(kind="enum", options=node["enum"], type=kind)
    elif kind == "object" and isinstance(node.get("properties"), dict):
        out.update(kind="object", fields=_fields(node, root, depth))
    elif kind == "array":
        items = node.get("items")
        out.update(kind="array", item=field_of("", items if items is not None else {}, root,
                                               depth + 1))
    elif kind in SCALARS:
        out["kind"] = kind
        limit = node.get("maxLength")
        if kind == "string" and not (isinstance(limit, int) and limit <= LONG_TEXT):
            out["multiline"] = True
    return out


def _kind(node: dict[str, Any]) -> str | None:
    """The node's one type, when a form can ask for it (a nullable type is its other)."""
    if any(k in node for k in ("oneOf", "anyOf", "allOf", "not", "if", "$ref")):
        return None
    kind = node.get("type")
    if isinstance(kind, list):
        others = [k for k in kind if k != "null"]
        kind = others[0] if len(others) == 1 else None
    if kind is None and isinstance(node.get("properties"), dict):
        kind = "object"
    if kind is None and isinstance(node.get("enum"), list):
        kinds = {_json_type(v) for v in node["enum"]}
        kind = kinds.pop() if len(kinds) == 1 else "string"
    return kind if kind in (*SCALARS, "object", "array") else None


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string" if isinstance(value, str) else "json"


def _resolved(schema: Any, root: Any, hops: int = 0) -> Any:
    """`schema`, through a local `$ref` with nothing beside it (a few hops at most)."""
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and hops < 8:
        target = local_ref(root, schema["$ref"])
        if target is None or len(schema) > 1:
            return schema
        schema, hops = target, hops + 1
    return schema
