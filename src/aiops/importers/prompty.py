"""Prompty (`.prompty`) -> a draft function: v1 and v2 front matter (`model`, `inputs`,
`inputSchema`, `outputs`, `sample`, `${file:...}` references) and a Jinja body split into
messages at its role lines."""

from __future__ import annotations

import json
import re
from typing import Any

from aiops.files import FileRefused
from aiops.importers.draft import Draft, Source, carry_metadata, configuration, dict_or_empty
from aiops.importers.handlebars import Problems, tidy
from aiops.yamlsrc import Path, format_path

_PROMPTY_ROLE = re.compile(r"^\s*#?\s*(system|user|assistant|developer|function|tool)"
                           r"(\[[^\]]*\])?\s*:\s*$", re.IGNORECASE)
# A role line whose role is a Jinja expression (`{{item.role}}:`): the role comes from the data.
_MADE_ROLE = re.compile(r"^\s*#?\s*\{\{[^{}]*\}\}\s*(\[[^\]]*\])?\s*:\s*$")
_JINJA_TAG = re.compile(r"\{%[-+]?\s*(\w+)")
_JINJA_BLOCKS = {"for", "if", "macro", "call", "filter", "block", "with", "raw", "autoescape",
                 "trans"}


def _track_blocks(line: str, here: int, blocks: list[tuple[str, int]]) -> None:
    """Open and close the Jinja blocks that `line` opens and closes (`{% set x %}` without
    `=` is a block too)."""
    line = re.sub(r"\{#.*?#\}", "", line)  # a comment opens nothing
    for m in _JINJA_TAG.finditer(line):
        tag = m[1]
        if tag in _JINJA_BLOCKS or (tag == "set" and "=" not in line[m.end():].split("%}")[0]):
            blocks.append((tag, here))
        elif tag.startswith("end") and blocks and blocks[-1][0] == tag[3:]:
            blocks.pop()


_KINDS = {"string": "string", "str": "string", "integer": "integer", "int": "integer",
          "float": "number", "number": "number", "double": "number", "boolean": "boolean",
          "bool": "boolean", "array": "array", "list": "array", "object": "object",
          "dict": "object"}
_MEDIA_KINDS = {"image", "audio", "file", "thread", "video"}


_PROMPTY_KEYS = {"name", "description", "model", "tools", "template", "metadata", "authors",
                 "tags", "inputs", "inputSchema", "outputs", "outputSchema", "sample", "$schema"}


def prompty(src: Source, problems: Problems) -> Draft:
    meta = src.meta
    model = meta.get("model")
    draft = Draft(name=meta.get("name") if isinstance(meta.get("name"), str) else None,
                   description=meta.get("description") or "")
    for key in meta:
        if key not in _PROMPTY_KEYS:
            problems.warn(f"front matter key `{key}` has no aiops equivalent and was ignored",
                          line=src.line_of(key))
    if isinstance(model, str):
        draft.model = model
    elif isinstance(model, dict):
        _prompty_model(model, src, problems, draft)
    tools = meta.get("tools")
    if tools:
        names = ", ".join(str(t.get("name", "?")) if isinstance(t, dict) else str(t)
                          for t in tools) if isinstance(tools, list) else str(tools)
        problems.warn(f"tools ({names}) are not supported by aiops functions and were "
                      "dropped; the model answers without calling them",
                      line=src.line_of("tools"))
    template = meta.get("template")
    kind = template if isinstance(template, str) else (
        template.get("format", template.get("type")) if isinstance(template, dict) else None)
    kind = kind.get("kind") if isinstance(kind, dict) else kind
    if kind not in (None, "jinja2"):
        problems.error(f"template format `{kind}` is not supported; aiops templates are "
                       "Jinja2", line=src.line_of("template"))
    for key in ("authors", "tags"):  # v1 keeps them at the root
        value = meta.get(key)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            draft.metadata[key] = value
    carry_metadata(meta, src, problems, draft)
    inputs, where = _prompty_inputs(meta)
    media: dict[str, tuple[str, int | None]] = {}
    props: dict[str, Any] = {}
    required: list[str] = []
    for name, spec, path in inputs:
        if not isinstance(spec, dict):
            spec = {"default": spec}
        kind = str(spec.get("kind", spec.get("type", "string")))
        if kind in _MEDIA_KINDS:
            media[name] = (kind, src.line_of(*path))
            continue
        prop = _prompty_property(spec, src, path, problems)
        props[name] = prop
        if spec.get("required") is True:
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    if where and props:
        schema["additionalProperties"] = False
    draft.input_schema = schema
    outputs = meta.get("outputs", (meta.get("outputSchema") or {}).get("properties")
                       if isinstance(meta.get("outputSchema"), dict) else None)
    if outputs and draft.output_from:
        key, line = draft.output_from
        problems.warn(f"`outputs` is left out: `{key}` (line {line}) decides the output",
                      line=src.line_of("outputs"))
    elif outputs:
        draft.output_schema = _prompty_object(outputs, ("outputs",), src, problems)
    draft.prompt, draft.variables = _prompty_body(src, problems)
    for name, (kind, line) in media.items():
        if draft.variables.pop(name, None) is not None:
            problems.error(f"input `{name}` has kind `{kind}`, which aiops prompts cannot "
                           "carry (they are text; a thread is a conversation history)",
                           line=line, fix="remove it, or pass a text description as a "
                           "string input")
        else:
            problems.warn(f"input `{name}` of kind `{kind}` is not used by the template and "
                          "was dropped", line=line)
    sample = _resolve(meta.get("sample"), ("sample",), src, problems, needed=False)
    if isinstance(sample, dict):
        _prompty_sample(sample, set(media), src, problems, draft)
    elif sample is not None and sample is not _UNREAD:
        problems.warn("`sample` is not a mapping of values and was not imported",
                      line=src.line_of("sample"))
    return draft


def _prompty_sample(sample: dict[str, Any], media: set[str], src: Source, problems: Problems,
                    draft: Draft) -> None:
    """Prompty v1's `sample:` -> the golden test `sample`, with its inputs declared.

    Prompty fills the inputs a call leaves out from the sample; aiops does not, so an input
    the template uses that the sample gives and no default fills is required: a call
    without it is refused rather than rendered differently.
    """
    schema = draft.input_schema
    props = schema.setdefault("properties", {})
    required: list[str] = schema.get("required", [])
    values: dict[str, Any] = {}
    made: list[str] = []
    for raw_key, value in sample.items():
        key = str(raw_key)
        if key in media:  # dropped or refused above, with its own message
            continue
        values[key] = value
        if key not in props:
            props[key] = {**_json_type_of(value), "description": "Not declared by the prompt "
                          "file; typed from its `sample`."}
        props[key].setdefault("examples", [value])
        if key in draft.variables and props[key].get("default") is None and key not in required:
            required.append(key)
            made.append(key)
    if required:
        schema["required"] = required
    if made:
        problems.warn("Prompty fills the inputs a call leaves out from `sample`, aiops does "
                      f"not: {', '.join(made)} are required; the sample is the golden test "
                      "`sample`", code="import-sample", line=src.line_of("sample"),
                      fix="record it with `aiops test --record`; give an input a `default` "
                      "to keep it optional")
    draft.tests.append({"name": "sample", "input": values, "expect": [{"schema_valid": True}]})


def _json_type_of(value: Any) -> dict[str, Any]:
    """The JSON type of a sample value, as a schema ({} for null: any value)."""
    for kind, types in (("boolean", bool), ("integer", int), ("number", float),
                        ("string", str), ("array", list), ("object", dict)):
        if isinstance(value, types):  # bool before int: True is an int too
            return {"type": kind}
    return {}


def _prompty_model(model: dict[str, Any], src: Source, problems: Problems,
                   draft: Draft) -> None:
    config = dict_or_empty(model.get("configuration"))
    draft.model = model.get("id") or config.get("azure_deployment") or config.get("name") \
        or config.get("model")
    provider: Any = model.get("provider") or config.get("type")  # whatever the file holds
    draft.original_provider = {"azure_openai": "azure"}.get(provider, provider)
    api = model.get("apiType", model.get("api", "chat"))
    if api != "chat":
        problems.error(f"model api `{api}` is not supported; aiops functions are chat "
                       "completions", line=src.line_of("model", "apiType" if "apiType" in model
                                                       else "api"))
    if model.get("connection") or config:
        problems.warn("model connection settings (endpoint, keys) are not imported: aiops "
                      "reads them from providers.yaml and the environment",
                      code="import-connection",
                      line=src.line_of("model", "connection" if "connection" in model
                                       else "configuration"))
    options_key = "options" if "options" in model else "parameters"
    options = model.get(options_key)
    if isinstance(options, dict) and options.get("tools"):
        problems.warn("model.parameters.tools are not supported by aiops functions and were "
                      "dropped", line=src.line_of("model", options_key, "tools"))
        options = {k: v for k, v in options.items() if k != "tools"}
    for key in ("response_format", "responseFormat"):
        if isinstance(options, dict) and key in options:
            _response_format(options[key], ("model", options_key, key), src, problems, draft)
            options = {k: v for k, v in options.items() if k != key}
    draft.configuration = configuration(options, ("model", options_key), src, problems)


_FILE_REF = re.compile(r"^\$\{file:(?P<path>[^}]+)\}$")
_UNREAD = object()  # a `${file:...}` reference that could not be read (already reported)


def _resolve(value: Any, at: Path, src: Source, problems: Problems, *,
             needed: bool) -> Any:
    """`value`, or the JSON of the file a `${file:path}` value names (relative to the prompt
    file, as Prompty reads it). A file that cannot be read is an error when the function
    needs it (`needed`), else a warning; either way the result is `_UNREAD`."""
    m = _FILE_REF.match(value.strip()) if isinstance(value, str) else None
    if m is None:
        return value
    ref = m["path"].strip()
    report = problems.error if needed else problems.warn
    where = f"`{format_path(at)}` refers to `{ref}`, which"
    fix = ("paths in `${file:...}` are relative to the .prompty file: put the file there, or "
           "write its content in place of the reference")
    if src.read_file is None:
        report(f"{where} cannot be read: the prompt file's directory is not known",
               line=src.line_of(*at), code="import-file", fix=fix)
        return _UNREAD
    try:
        data = src.read_file(ref)
    except FileRefused as exc:
        report(f"{where} {exc.reason}", line=src.line_of(*at), code="import-file",
               fix=exc.fix or fix)
        return _UNREAD
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        why = "is not UTF-8 text"
    except json.JSONDecodeError as exc:
        why = f"is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    except RecursionError:
        why = "is not JSON aiops reads: it nests too deeply"
    report(f"{where} {why}", line=src.line_of(*at), code="import-file",
           fix="Prompty reads `${file:...}` references as JSON")
    return _UNREAD


def _response_format(raw: Any, at: Path, src: Source, problems: Problems,
                     draft: Draft) -> None:
    """OpenAI's `response_format` (or a JSON Schema in its place) -> the output schema."""
    value = _resolve(raw, at, src, problems, needed=True)
    if value is _UNREAD:
        return
    kind = value.get("type") if isinstance(value, dict) else None
    schema: Any = None
    if kind == "text":
        schema = {"type": "string"}
    elif kind == "json_object":
        schema = {"type": "object"}
    elif kind == "json_schema":
        inner = value.get("json_schema", value)
        schema = inner.get("schema") if isinstance(inner, dict) else None
    elif isinstance(value, dict) and (kind is not None or "properties" in value):
        schema = value
    if not isinstance(schema, dict):
        problems.error(f"`{format_path(at)}` has no schema aiops can use", code="import-schema",
                       line=src.line_of(*at), fix="use {type: json_schema, json_schema: "
                       "{schema: ...}}, {type: json_object}, {type: text} or a JSON Schema")
        return
    draft.output_schema = schema
    draft.output_from = (format_path(at), src.line_of(*at))


def _prompty_inputs(meta: dict[str, Any]) -> tuple[list[tuple[str, Any, Path]], str]:
    """(name, spec, key path) of each input, from any of Prompty's shapes."""
    base: Path
    if isinstance(meta.get("inputSchema"), dict):
        raw, base = meta["inputSchema"].get("properties"), ("inputSchema", "properties")
    else:
        raw, base = meta.get("inputs"), ("inputs",)
    out: list[tuple[str, Any, Path]] = []
    if isinstance(raw, list):
        for i, spec in enumerate(raw):
            if isinstance(spec, dict) and isinstance(spec.get("name"), str):
                out.append((spec["name"], spec, (*base, i)))
    elif isinstance(raw, dict):
        out = [(str(k), v, (*base, k)) for k, v in raw.items()]
    return out, base[0] if raw else ""


def _prompty_property(spec: dict[str, Any], src: Source, path: Path,
                      problems: Problems) -> dict[str, Any]:
    kind = str(spec.get("kind", spec.get("type", "string")))
    prop: dict[str, Any] = {}
    if kind in _KINDS:
        prop["type"] = _KINDS[kind]
    else:
        problems.warn(f"kind `{kind}` is not a JSON type; the input accepts any value",
                      line=src.line_of(*path))
    if isinstance(spec.get("description"), str):
        prop["description"] = spec["description"]
    enum = spec.get("enumValues", spec.get("enum"))
    if isinstance(enum, list):
        prop["enum"] = enum
    if "default" in spec or "sample" in spec:  # Prompty reads a v1 input's sample as default
        prop["default"] = spec.get("default", spec.get("sample"))
    if "example" in spec:
        prop["examples"] = [spec["example"]]
    if prop.get("type") == "object" and spec.get("properties"):
        prop.update(_prompty_object(spec["properties"], (*path, "properties"), src, problems))
    if prop.get("type") == "array" and isinstance(spec.get("items"), dict):
        prop["items"] = _prompty_property(spec["items"], src, (*path, "items"), problems)
    return prop


def _prompty_object(raw: Any, path: Path, src: Source, problems: Problems) -> dict[str, Any]:
    items = raw.items() if isinstance(raw, dict) else (
        (p.get("name"), p) for p in raw if isinstance(p, dict)) if isinstance(raw, list) else ()
    props: dict[str, Any] = {}
    required: list[str] = []
    for i, (name, spec) in enumerate(items):
        if not isinstance(name, str):
            continue
        spec = spec if isinstance(spec, dict) else {"kind": spec}
        props[name] = _prompty_property(spec, src, (*path, i), problems)
        if spec.get("required") is True:
            required.append(name)
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    out["additionalProperties"] = False
    return out


def _prompty_body(src: Source, problems: Problems) -> tuple[list[tuple[str, str, int]],
                                                              dict[str, int]]:
    from jinja2 import TemplateSyntaxError

    from aiops.template_checks import template_variables

    segments: list[tuple[str, list[str], int]] = [("system", [], src.body_line)]
    blocks: list[tuple[str, int]] = []  # the Jinja blocks open at this line: (tag, line)
    for i, line in enumerate(src.body.split("\n")):
        here = src.body_line + i
        m = _PROMPTY_ROLE.match(line)
        made = _MADE_ROLE.match(line) if not m else None
        if made:
            problems.error(f"`{line.strip()}` makes a role line while rendering (Prompty "
                           "splits the messages after rendering); aiops messages are fixed, "
                           "not chosen at render time", line=here,
                           fix="keep the turns as text in one message: put the role and the "
                           "text on one line (`{{item.role}}: {{item.content}}`, which Prompty "
                           "also renders as text), or write each message out")
        elif m and blocks:
            tag, opened = blocks[-1]
            problems.error(f"role line `{line.strip()}` is inside `{{% {tag} %}}` (line "
                           f"{opened}): Prompty splits the messages after rendering, so the "
                           "block would choose them; aiops messages are fixed", line=here,
                           fix="move the role line out of the block, or keep the turns as "
                           "text in one message")
        _track_blocks(line, here, blocks)
        if not m or blocks:
            segments[-1][1].append(line)
            continue
        role = m[1].lower()
        if role in ("function", "tool"):
            problems.error(f"a `{role}:` message has no aiops equivalent", line=here)
        if m[2]:
            problems.warn(f"role attributes {m[2]} are not supported and were dropped",
                          line=here)
        segments.append(({"developer": "system"}.get(role, role), [], here + 1))
    messages: list[tuple[str, str, int]] = []
    variables: dict[str, int] = {}
    for role, lines, first in segments:
        content = tidy("\n".join(lines))
        if not content:
            continue
        offset = len(lines) - len("\n".join(lines).lstrip("\n").split("\n"))
        try:
            found = template_variables(content)
        except TemplateSyntaxError as exc:
            problems.error(f"template syntax error: {exc.message}", code="import-syntax",
                           line=first + offset + (exc.lineno or 1) - 1,
                           fix="check the {{ }} and {% %} tags; a role line inside a "
                           "{% %} block cannot be translated")
            found = {}
        for var in found:
            at = found[var] if isinstance(found, dict) else 1
            variables.setdefault(var, first + offset + at - 1)
        messages.append((role, content, first))
    return messages, variables
