"""Dotprompt's Picoschema -> JSON Schema (https://google.github.io/dotprompt/reference/picoschema/).

`picoschema(value)` takes what a `.prompt` file's `input.schema` or `output.schema` holds: a
type name (`string, the subject`), a mapping of Picoschema fields (`tags?(array): string`), or a
JSON Schema, passed through with Picoschema type names in its subschema places expanded. Fields
are required unless marked `?`, which also admits null; objects are closed. A schema that cannot
be converted raises SchemaProblem with the path inside the schema. Pure.
"""

from __future__ import annotations

import re
from typing import Any

from aiops.errors import shown
from aiops.yamlsrc import Path

_SCALARS = {"string", "boolean", "null", "number", "integer", "any"}
_PICO_KEY = re.compile(r"^(?P<name>[^?(]+?)(?P<opt>\?)?(?:\((?P<type>\w+)(?:,\s*(?P<desc>.*))?\))?$")


class SchemaProblem(Exception):
    """What cannot be converted, and where in the schema."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def picoschema(value: Any, path: Path = ()) -> dict[str, Any]:
    """Dotprompt's Picoschema (or a JSON Schema, passed through) -> JSON Schema."""
    if isinstance(value, str):
        return _pico_type(value, path)
    if isinstance(value, dict):
        kind = value.get("type")
        if (isinstance(kind, str) and kind in _SCALARS | {"object", "array"}) \
                or isinstance(kind, list):
            return _json_schema(value, path)
        if isinstance(value.get("properties"), dict):
            return _json_schema({**value, "type": "object"}, path)
        return _pico_object(value, path)
    raise SchemaProblem(f"a schema must be a type name or a mapping, not {shown(value)}", path)


def _pico_type(text: str, path: Path) -> dict[str, Any]:
    kind, _, description = (part.strip() for part in text.partition(","))
    if kind.endswith("[]"):
        out: dict[str, Any] = {"type": "array", "items": _pico_type(kind[:-2], path)}
    elif kind == "any":
        out = {}
    elif kind in _SCALARS:
        out = {"type": kind}
    else:
        raise SchemaProblem(f"unknown type `{kind}`: Picoschema types are "
                             f"{', '.join(sorted(_SCALARS))} (named schemas registered in code "
                             "cannot be resolved from the file)", path)
    if description:
        out["description"] = description
    return out


def _pico_object(obj: dict[str, Any], path: Path) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": {}, "required": [],
                              "additionalProperties": False}
    for key, value in obj.items():
        here = (*path, key)
        if key == "(*)":
            schema["additionalProperties"] = picoschema(value, here)
            continue
        m = _PICO_KEY.match(key.strip())
        if not m:
            raise SchemaProblem(f"`{key}` is not a Picoschema field name", here)
        name, optional, kind, description = m["name"].strip(), bool(m["opt"]), m["type"], m["desc"]
        if kind is None:
            prop = picoschema(value, here)
            if optional and isinstance(prop.get("type"), str):
                prop["type"] = [prop["type"], "null"]
        elif kind == "array":
            prop = {"type": ["array", "null"] if optional else "array",
                    "items": picoschema(value, here)}
        elif kind == "object":
            if not isinstance(value, dict):
                raise SchemaProblem(f"`{key}` needs a mapping of fields", here)
            prop = _pico_object(value, here)
            if optional:
                prop["type"] = ["object", "null"]
        elif kind == "enum":
            if not isinstance(value, list) or not value:
                raise SchemaProblem(f"`{key}` needs a list of values", here)
            prop = {"enum": [*value, None] if optional and None not in value else list(value)}
        else:
            raise SchemaProblem(f"`{key}`: a parenthetical type is array, object or enum, "
                                 f"not `{kind}`", here)
        if description:
            prop["description"] = description.strip()
        schema["properties"][name] = prop
        if not optional:
            schema["required"].append(name)
    if not schema["required"]:
        del schema["required"]
    return schema


_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SUBSCHEMA_ONE = ("items", "additionalProperties", "not", "contains", "if", "then", "else")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


def _json_schema(schema: dict[str, Any], path: Path) -> dict[str, Any]:
    """A JSON Schema as written, with Picoschema type strings in subschema places expanded."""
    out = dict(schema)
    for key in _SUBSCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {k: _sub(v, (*path, key, k)) for k, v in out[key].items()}
    for key in _SUBSCHEMA_ONE:
        if key in out and isinstance(out[key], str | dict):
            out[key] = _sub(out[key], (*path, key))
    for key in _SUBSCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [_sub(v, (*path, key, i)) for i, v in enumerate(out[key])]
    return out


def _sub(value: Any, path: Path) -> Any:
    if isinstance(value, str):
        return _pico_type(value, path)
    if isinstance(value, dict):
        return _json_schema(value, path)
    return value
