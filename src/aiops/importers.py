"""Prompt files -> aiops functions: Dotprompt (`.prompt`) and Prompty (`.prompty`).

`import_prompt(text, source, ...)` is pure: the text of one prompt file in, the data of a
`function.yaml` and located diagnostics out. `prepare_import` adds the project's side (which
providers exist, where the file goes) and proves the result loads and checks before anything
is written; the CLI only reads and writes files.

Dotprompt bodies (Handlebars) are translated by `aiops.handlebars`; Prompty bodies are Jinja
already. A construct with a faithful aiops translation is translated; one without (media parts,
conversation history, partials, tools, custom helpers) is an error naming the file, the line
and the construct, or, when it can be left out and the rest still says what it said (a tool
list, an unused image input, a role attribute), a warning. docs/import.md lists each decision.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import yaml

from aiops.errors import Diagnostic
from aiops.files import FileRefused
from aiops.handlebars import Problems, tidy, translate_handlebars
from aiops.picoschema import SchemaProblem, picoschema
from aiops.yamlsrc import Path, Positions, YamlProblem, format_path, parse

Format = Literal["dotprompt", "prompty"]
# Reads a file named relative to the prompt file, or raises FileRefused.
Reader = Callable[[str], bytes]
FORMATS: dict[str, Format] = {".prompt": "dotprompt", ".prompty": "prompty"}
SCHEMA_URL = "https://aiops.dev/schemas/function.schema.json"


@dataclass(frozen=True, kw_only=True)
class ImportResult:
    """The translated function (None when an error stops it) and every problem found."""

    data: dict[str, Any] | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return self.data is not None and not any(d.is_error for d in self.diagnostics)


# --- the file: front matter and body ----------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Source:
    meta: dict[str, Any]
    positions: Positions
    meta_line: int  # file line of the front matter's first line
    body: str
    body_line: int  # file line of the body's first line
    read_file: Reader | None = None  # the files a `${file:...}` reference names

    def line_of(self, *path: str | int) -> int | None:
        mark = self.positions.find(tuple(path), prefer_key=True)
        return mark.line + self.meta_line - 1 if mark else None


_FENCE = re.compile(r"^---[ \t]*$")


def _split(text: str, problems: Problems) -> _Source | None:
    """Front matter between `---` fences (after optional `#` comment lines), then the body."""
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").split("\n")
    start = 0
    while start < len(lines) and (not lines[start].strip() or lines[start].lstrip().startswith("#")):
        start += 1
    if start >= len(lines) or not _FENCE.match(lines[start]):
        return _Source(meta={}, positions=Positions(), meta_line=1, body="\n".join(lines),
                       body_line=1)
    end = next((i for i in range(start + 1, len(lines)) if _FENCE.match(lines[i])), None)
    if end is None:
        problems.error("the front matter opened by `---` is never closed", line=start + 1,
                       code="import-syntax", fix="end the front matter with a `---` line")
        return None
    meta_text = "\n".join(lines[start + 1:end])
    meta: dict[str, Any] = {}
    positions = Positions()
    if meta_text.strip():
        try:
            meta, positions = parse(meta_text.encode("utf-8"))
        except YamlProblem as exc:
            message = re.sub(r"at line (\d+)", lambda m: f"at line {int(m[1]) + start + 1}",
                             exc.message)  # lines in the file, not in the front matter
            problems.error(f"front matter is not valid YAML: {message}",
                           line=exc.line + start + 1 if exc.line else None,
                           fix=exc.fix or "check the indentation, quotes and colons",
                           code="import-yaml")
            return None
    return _Source(meta=meta, positions=positions, meta_line=start + 2,
                   body="\n".join(lines[end + 1:]), body_line=end + 2)


# --- names, providers, configuration ------------------------------------------------------


def function_name(text: str) -> str:
    """A valid aiops function name from a prompt's name or file stem ('' when none fits)."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", text)
    name = re.sub(r"[^a-z0-9]+", "-", spaced.lower()).strip("-")
    name = re.sub(r"^[^a-z]+", "", name)[:63].rstrip("-")
    return name if len(name) >= 2 else ""


# The provider type that serves a model family. Groq first: it serves `openai/gpt-oss-*`.
_FAMILIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("groq", re.compile(r"llama|mixtral|gemma|qwen|qwq|deepseek|gpt-oss|kimi|whisper|allam|"
                        r"compound", re.IGNORECASE)),
    ("openai", re.compile(r"^(openai/)?(gpt-|chatgpt-|o[134]($|-))", re.IGNORECASE)),
)
_FAMILY_NAMES = "gpt-*, o1*, o3*, o4*: openai; llama, mixtral, gemma, qwen, deepseek, ...: groq"


def model_family(model: str) -> str | None:
    """The provider type that serves `model` (`openai`, `groq`), or None when unknown."""
    return next((kind for kind, pattern in _FAMILIES if pattern.search(model)), None)


def pick_provider(model: str, providers: Mapping[str, str], named: str | None,
                  problems: Problems) -> str | None:
    """The project's provider for `model`: one of the type its family needs (the one the file
    names, if it is of that type, else the first); without a family, the one the file names;
    else the first provider, with a warning that says what to pass instead.

    `providers` maps names, in providers.yaml order, to types; `named` is the file's own
    provider name (Prompty's `model.provider`), if any.
    """
    if not providers:
        return None
    family = model_family(model)
    if family is not None:
        if named is not None and providers.get(named) == family:
            return named
        typed = next((n for n, kind in providers.items() if kind == family), None)
        if typed is not None:
            return typed
        why = (f"model `{model}` is an {family} model, and providers.yaml has no provider of "
               f"type `{family}`")
        extra = f"; or add an `{family}` provider to providers.yaml"
    elif named in providers:
        return named
    else:
        why = f"model `{model}` is of no model family aiops knows ({_FAMILY_NAMES})"
        extra = ""
    first = next(iter(providers))
    problems.warn(f"{why}; picked `{first}`, the first provider of providers.yaml",
                  code="import-provider",
                  fix=f"pass --provider NAME, one of {', '.join(providers)}, and --model, a "
                  f"model that provider serves{extra}")
    return first


# Dotprompt `config` / Prompty `options` / Prompty v1 `parameters` -> aiops configuration.
_SETTINGS = {
    "temperature": "temperature", "maxOutputTokens": "max_tokens", "max_tokens": "max_tokens",
    "topP": "top_p", "top_p": "top_p", "stopSequences": "stop", "stop": "stop",
    "seed": "seed", "presencePenalty": "presence_penalty",
    "presence_penalty": "presence_penalty", "frequencyPenalty": "frequency_penalty",
    "frequency_penalty": "frequency_penalty",
}


def _configuration(raw: Any, where: tuple[str, ...], src: _Source,
                   problems: Problems) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if raw is None:
        return out
    if not isinstance(raw, dict):
        problems.error(f"`{'.'.join(where)}` must be a mapping of settings",
                       line=src.line_of(*where), code="import-syntax")
        return out
    for key, value in raw.items():
        target = _SETTINGS.get(key)
        if target is None:
            problems.warn(f"setting `{'.'.join((*where, key))}` has no aiops equivalent and "
                          "was dropped", line=src.line_of(*where, key),
                          fix="aiops configuration keys: temperature, max_tokens, top_p, "
                          "stop, seed, presence_penalty, frequency_penalty")
            continue
        out[target] = value
    return out


_RESERVED_METADATA = ("imported_from", "original_model")


def _carry_metadata(meta: dict[str, Any], src: _Source, problems: Problems,
                    draft: _Draft) -> None:
    """The file's `metadata` mapping, into the function's (free-form there too)."""
    raw = meta.get("metadata")
    if raw is None:
        return
    if not isinstance(raw, dict):
        problems.warn("`metadata` is not a mapping and was dropped", line=src.line_of("metadata"))
        return
    for key, value in raw.items():
        if key in _RESERVED_METADATA:
            problems.warn(f"`metadata.{key}` is set by the import; the file's value was dropped",
                          line=src.line_of("metadata", key))
        else:
            draft.metadata[str(key)] = value


# --- schemas ------------------------------------------------------------------------------

def _convert_schema(value: Any, where: tuple[str, ...], src: _Source,
                    problems: Problems) -> dict[str, Any] | None:
    try:
        return picoschema(value)
    except SchemaProblem as exc:
        full = (*where, *exc.path)
        problems.error(f"`{format_path(full)}`: {exc.message}", line=src.line_of(*full),
                       code="import-schema", fix="see https://google.github.io/dotprompt/"
                       "reference/picoschema/")
        return None


# --- Dotprompt ------------------------------------------------------------------------------

_DOTPROMPT_KEYS = {"name", "variant", "version", "description", "model", "config", "input",
                   "output", "tools", "metadata", "raw", "ext", "default"}


def _dict_or_empty(value: Any) -> dict[str, Any]:
    """`value` when the front matter holds a mapping there, else an empty one."""
    return value if isinstance(value, dict) else {}


def _dotprompt(src: _Source, problems: Problems) -> _Draft:
    meta = src.meta
    draft = _Draft(name=meta.get("name") if isinstance(meta.get("name"), str) else None,
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
    draft.configuration = _configuration(meta.get("config"), ("config",), src, problems)
    _carry_metadata(meta, src, problems, draft)
    inp = _dict_or_empty(meta.get("input"))
    if inp.get("schema") is not None:
        schema = _convert_schema(inp["schema"], ("input", "schema"), src, problems)
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
    out = _dict_or_empty(meta.get("output"))
    fmt = out.get("format", "json" if out.get("schema") is not None else "text")
    if fmt == "text":
        draft.output_schema = {"type": "string"}
    elif fmt in ("json", "array", "enum"):
        schema = _convert_schema(out["schema"], ("output", "schema"), src, problems) \
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


# --- Prompty --------------------------------------------------------------------------------

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


def _prompty(src: _Source, problems: Problems) -> _Draft:
    meta = src.meta
    model = meta.get("model")
    draft = _Draft(name=meta.get("name") if isinstance(meta.get("name"), str) else None,
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
    _carry_metadata(meta, src, problems, draft)
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


def _prompty_sample(sample: dict[str, Any], media: set[str], src: _Source, problems: Problems,
                    draft: _Draft) -> None:
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


def _prompty_model(model: dict[str, Any], src: _Source, problems: Problems,
                   draft: _Draft) -> None:
    config = _dict_or_empty(model.get("configuration"))
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
    draft.configuration = _configuration(options, ("model", options_key), src, problems)


_FILE_REF = re.compile(r"^\$\{file:(?P<path>[^}]+)\}$")
_UNREAD = object()  # a `${file:...}` reference that could not be read (already reported)


def _resolve(value: Any, at: Path, src: _Source, problems: Problems, *,
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


def _response_format(raw: Any, at: Path, src: _Source, problems: Problems,
                     draft: _Draft) -> None:
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


def _prompty_property(spec: dict[str, Any], src: _Source, path: Path,
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


def _prompty_object(raw: Any, path: Path, src: _Source, problems: Problems) -> dict[str, Any]:
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


def _prompty_body(src: _Source, problems: Problems) -> tuple[list[tuple[str, str, int]],
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


# --- shared: the function.yaml data -------------------------------------------------------


@dataclass(kw_only=True)
class _Draft:
    """What a format importer found, before names, provider and model are settled."""

    name: str | None = None
    description: str = ""
    model: Any = None
    original_provider: str | None = None
    configuration: dict[str, Any] = field(default_factory=dict)
    prompt: list[tuple[str, str, int]] = field(default_factory=list)
    input_schema: dict[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}})
    output_schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    output_from: tuple[str, int | None] | None = None  # a response format: (key, line)
    variables: dict[str, int] = field(default_factory=dict)  # name -> file line of first use
    metadata: dict[str, Any] = field(default_factory=dict)
    tests: list[dict[str, Any]] = field(default_factory=list)


def import_prompt(text: str, source: str, *, name: str | None = None,
                  provider: str | None = None, model: str | None = None,
                  providers: Mapping[str, str] | None = None,
                  read_file: Reader | None = None) -> ImportResult:
    """Translate one prompt file's text; `source` is its file name (format and messages).

    `providers` maps the project's provider names, in file order, to their types; the
    provider is chosen by `pick_provider`. `read_file` reads what a Prompty `${file:...}`
    reference names (without it, such a reference cannot be read).
    """
    problems = Problems(source)
    fmt = next((f for ext, f in FORMATS.items() if source.endswith(ext)), None)
    if fmt is None:
        problems.error(f"`{source}` is neither a .prompt (Dotprompt) nor a .prompty file",
                       code="import-format", fix="pass a .prompt or .prompty file")
        return ImportResult(data=None, diagnostics=tuple(problems.items))
    src = _split(text, problems)
    if src is None:
        return ImportResult(data=None, diagnostics=tuple(problems.items))
    src = replace(src, read_file=read_file)
    draft = _dotprompt(src, problems) if fmt == "dotprompt" else _prompty(src, problems)
    data = _finish(draft, src, source, problems, name=name, provider=provider, model=model,
                   providers=providers or {})
    ordered = sorted(problems.items, key=lambda d: (d.line is None, d.line or 0))
    return ImportResult(data=None if problems.failed else data, diagnostics=tuple(ordered))


def _finish(draft: _Draft, src: _Source, source: str, problems: Problems, *,
            name: str | None, provider: str | None, model: str | None,
            providers: Mapping[str, str]) -> dict[str, Any] | None:
    stem = re.sub(r"\.(prompt|prompty)$", "", source.replace("\\", "/").rsplit("/", 1)[-1])
    final_name = name or function_name(draft.name or "") or function_name(stem)
    if not final_name:
        problems.error("no valid function name can be made from the file",
                       code="import-name", fix="pass --name")
    original = draft.model if isinstance(draft.model, str) and draft.model else None
    final_model = model or original
    if not final_model:
        problems.error("the file names no model", code="import-model",
                       fix="pass --model (a model of the chosen provider)")
    final_provider = provider or pick_provider(final_model or "", providers,
                                               draft.original_provider, problems)
    if not final_provider:
        problems.error("no provider: the project has no providers.yaml", code="import-provider",
                       fix="pass --provider, or run the import inside an aiops project")
    if not draft.prompt:
        problems.error("the template has no message text", line=src.body_line,
                       code="import-empty", fix="write the prompt below the front matter")
    file_name = source.replace("\\", "/").rsplit("/", 1)[-1]
    schema = draft.input_schema
    props = schema.setdefault("properties", {})
    for var in sorted(set(draft.variables) - set(props), key=lambda v: (draft.variables[v], v)):
        problems.warn(f"template variable `{var}` is not declared in the file's inputs; "
                      "declared it as an optional input that defaults to empty text",
                      code="import-undeclared", fix=f"give `{var}` a type and description",
                      line=draft.variables[var])
        props[var] = {"description": f"Used by the template; not declared in {file_name}.",
                      "default": ""}
    metadata: dict[str, Any] = {"imported_from": file_name}
    if original:
        metadata["original_model"] = original
    metadata.update(draft.metadata)
    data: dict[str, Any] = {
        "apiVersion": "aiops/v1",
        "name": final_name,
        "version": "0.1.0",
        "description": str(draft.description).strip()
        or f"Imported from {metadata['imported_from']}.",
        "status": "draft",
        "provider": final_provider,
        "model": final_model,
    }
    if draft.configuration:
        data["configuration"] = draft.configuration
    data["prompt"] = [{"role": role, "content": content} for role, content, _ in draft.prompt]
    data["input_schema"] = schema
    data["output_schema"] = draft.output_schema
    data["metadata"] = metadata
    if draft.tests:
        data["tests"] = draft.tests
    return data


# --- YAML out ------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style with list items indented under their key, as the examples are written."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    block = "\n" in value and not re.search(r"^[ ]*\t", value, re.MULTILINE)
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if block else None)


_Dumper.add_representer(str, _str)


def to_yaml(data: dict[str, Any], *, schema_ref: str = SCHEMA_URL,
            notes: Sequence[Diagnostic] = ()) -> str:
    """function.yaml text: the editor modeline, what the import dropped, then the data."""
    head = [f"# yaml-language-server: $schema={schema_ref}",
            f"# Imported from {data['metadata']['imported_from']} by `aiops import`."]
    for note in notes:
        if not note.is_error:
            where = f" (source line {note.line})" if note.line else ""
            head.append(f"# - {note.message}{where}")
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=4096, indent=2)
    return "\n".join(line.replace("\n", " ") for line in head) + "\n" + body


# --- into a project -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ImportOutcome:
    """The file to write (`text` at `target`, relative to the project) and every diagnostic."""

    name: str | None
    target: str | None
    text: str | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return self.text is not None and not any(d.is_error for d in self.diagnostics)


def prepare_import(text: str, source: str, *, providers_file: bytes | FileRefused | None,
                   schema_ref: str = SCHEMA_URL, name: str | None = None,
                   provider: str | None = None, model: str | None = None,
                   read_file: Reader | None = None) -> ImportOutcome:
    """Translate, render and check the function exactly as the project will load it.

    The rendered YAML goes through `load_sources` and `check_function` with the project's
    providers.yaml, so a file that is written is one that validates.
    """
    from aiops.checks import check_function
    from aiops.loader import PROVIDERS_FILE, function_file, load_one, load_sources
    from aiops.spec import ProvidersFile

    diags: list[Diagnostic] = []
    providers: ProvidersFile | None = None
    if providers_file is not None:
        providers, _, pdiags = load_one(PROVIDERS_FILE, providers_file, ProvidersFile)
        diags += pdiags
    kinds = {n: p.type for n, p in providers.providers.items()} if providers else {}
    result = import_prompt(text, source, name=name, provider=provider, model=model,
                           providers=kinds, read_file=read_file)
    diags += result.diagnostics
    if result.data is None or any(d.is_error for d in diags):
        return ImportOutcome(name=None, target=None, text=None, diagnostics=tuple(diags))
    fname = result.data["name"]
    target = function_file(fname)
    yaml_text = to_yaml(result.data, schema_ref=schema_ref, notes=result.diagnostics)
    files: dict[str, bytes | FileRefused] = {target: yaml_text.encode("utf-8")}
    if providers_file is not None:
        files[PROVIDERS_FILE] = providers_file
    project = load_sources(files)
    checked = [d for d in project.diagnostics if d.file == target]
    if fname in project.functions:
        checked += check_function(project.functions[fname], providers)
    diags += checked
    ok = not any(d.is_error for d in diags)
    return ImportOutcome(name=fname, target=target, text=yaml_text if ok else None,
                         diagnostics=tuple(diags))


__all__ = ["FORMATS", "SCHEMA_URL", "ImportOutcome", "ImportResult", "function_name",
           "import_prompt", "model_family", "pick_provider", "picoschema", "prepare_import",
           "to_yaml"]
