"""Dotprompt (`.prompt`) -> a draft function: YAML front matter (Picoschema schemas, `config`)
and a Handlebars body, translated by `aiops.importers.handlebars`."""

from __future__ import annotations

from aiops.importers.draft import (
    Draft,
    Source,
    carry_metadata,
    configuration,
    convert_schema,
    dict_or_empty,
)
from aiops.importers.handlebars import Problems, translate_handlebars

_DOTPROMPT_KEYS = {"name", "variant", "version", "description", "model", "config", "input",
                   "output", "tools", "metadata", "raw", "ext", "default"}


def dotprompt(src: Source, problems: Problems) -> Draft:
    meta = src.meta
    draft = Draft(name=meta.get("name") if isinstance(meta.get("name"), str) else None,
                   description=meta.get("description") or "", model=meta.get("model"))
    for key in meta:
        if key not in _DOTPROMPT_KEYS and "." not in key:
            problems.warn(f"front matter key `{key}` is not Dotprompt's and was ignored",
                          line=src.line_of(key))
    if meta.get("tools"):
        names = ", ".join(str(t) for t in meta["tools"]) if isinstance(meta["tools"], list) \
            else str(meta["tools"])
        problems.warn(f"tools ({names}) are not supported by aiops functions and were dropped; "
                      "the model answers without calling them", line=src.line_of("tools"))
    draft.configuration = configuration(meta.get("config"), ("config",), src, problems)
    carry_metadata(meta, src, problems, draft)
    inp = dict_or_empty(meta.get("input"))
    if inp.get("schema") is not None:
        schema = convert_schema(inp["schema"], ("input", "schema"), src, problems)
        if schema is not None and schema.get("type") != "object":
            problems.error("input.schema must describe an object (named inputs)",
                           line=src.line_of("input", "schema"), code="import-schema",
                           fix="declare the inputs as fields: `name: string`")
            schema = None
        draft.input_schema = schema or draft.input_schema
    defaults = inp.get("default")
    if isinstance(defaults, dict):
        props = draft.input_schema.setdefault("properties", {})
        for key, value in defaults.items():
            if key not in props:
                problems.warn(f"input.default sets `{key}`, which input.schema does not "
                              "declare; declared it without a type", code="import-undeclared",
                              line=src.line_of("input", "default", key))
                props[key] = {}
            props[key]["default"] = value
    out = dict_or_empty(meta.get("output"))
    fmt = out.get("format", "json" if out.get("schema") is not None else "text")
    if fmt == "text":
        draft.output_schema = {"type": "string"}
    elif fmt in ("json", "array", "enum"):
        schema = convert_schema(out["schema"], ("output", "schema"), src, problems) \
            if out.get("schema") is not None else {"type": "object"}
        draft.output_schema = schema or {"type": "object"}
    else:
        problems.error(f"output format `{fmt}` has no aiops equivalent (json, text, array, "
                       "enum)", line=src.line_of("output", "format"))
    messages, roots = translate_handlebars(src.body, body_line=src.body_line,
                                           input_schema=draft.input_schema, problems=problems)
    draft.prompt = messages
    draft.variables = roots
    return draft
