"""A project's files -> specs, with every problem located at file:line:column:key.

`load_sources(files)` is pure over a mapping of relative path -> bytes (or the `FileRefused`
of a file that was not read); `aiops.sources` produces that mapping, from the working tree
or a git revision. Nothing here raises on a bad file: each problem becomes a `Diagnostic`,
and all of them are returned together. Nothing here reads a file or runs git.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from aiops.collector import gc_paused
from aiops.errors import Diagnostic, shown
from aiops.files import FileRefused
from aiops.spec import SEMVER_PATTERN, FunctionSpec, ProjectSettings, ProvidersFile
from aiops.yamlsrc import Path, Positions, YamlProblem, format_path, parse

ModelT = TypeVar("ModelT", bound=BaseModel)

FUNCTIONS_DIR = "functions"
FUNCTION_FILE = "function.yaml"
PROVIDERS_FILE = "providers.yaml"
PROJECT_FILE = "aiops.yaml"


@dataclass(frozen=True, kw_only=True)
class LoadedFunction:
    spec: FunctionSpec
    file: str  # relative to the project root
    positions: Positions = field(compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class Project:
    """What a project's files say, with every problem found while reading them."""

    functions: dict[str, LoadedFunction]
    providers: ProvidersFile | None
    settings: ProjectSettings
    diagnostics: tuple[Diagnostic, ...]
    failed_functions: frozenset[str] = frozenset()  # names whose file failed to load
    providers_positions: Positions | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def function_file(name: str) -> str:
    return f"{FUNCTIONS_DIR}/{name}/{FUNCTION_FILE}"


Source = bytes | FileRefused  # a file's bytes, or why it was not read


def in_function_dir(parts: list[str]) -> bool:
    return (len(parts) == 3 and parts[0] == FUNCTIONS_DIR
            and parts[2].endswith((".yaml", ".yml")))



def load_sources(files: Mapping[str, Source]) -> Project:
    """Parse and model every spec file; collect every problem instead of stopping.

    The collector is paused meanwhile (aiops.collector): its passes over every object a
    loaded project holds took half the time of loading 1,000 functions, and what loading
    allocates holds no cycles (YAML graphs refuse a self-referencing alias; specs and
    templates' trees are trees), so reference counting frees it."""
    with gc_paused():
        return _load_sources(files)


def _load_sources(files: Mapping[str, Source]) -> Project:
    diags: list[Diagnostic] = []
    settings = ProjectSettings()
    if PROJECT_FILE in files:
        loaded = _load_model(PROJECT_FILE, files[PROJECT_FILE], ProjectSettings, diags)
        if loaded:
            settings = loaded[0]
    providers = None
    providers_positions = None
    if PROVIDERS_FILE in files:
        loaded_p = _load_model(PROVIDERS_FILE, files[PROVIDERS_FILE], ProvidersFile, diags)
        if loaded_p:
            providers, providers_positions = loaded_p
    functions: dict[str, LoadedFunction] = {}
    failed: set[str] = set()
    with_file = {rel.split("/")[1] for rel in files
                 if in_function_dir(rel.split("/")) and rel.endswith("/" + FUNCTION_FILE)}
    for rel in sorted(files):
        parts = rel.split("/")
        if not in_function_dir(parts):
            continue
        if parts[2] != FUNCTION_FILE:
            if parts[1] not in with_file and parts[1] not in failed:
                failed.add(parts[1])
                diags.append(Diagnostic(
                    file=rel, code="misnamed-file",
                    message=f"functions/{parts[1]}/ has no {FUNCTION_FILE}, only {parts[2]}",
                    fix=f"rename it to functions/{parts[1]}/{FUNCTION_FILE}"))
            continue
        dirname = parts[1]
        loaded_f = _load_model(rel, files[rel], FunctionSpec, diags)
        if not loaded_f:
            failed.add(dirname)
            continue
        spec, positions = loaded_f
        if spec.name != dirname:
            mark = positions.find(("name",))
            diags.append(Diagnostic(
                file=rel, line=mark.line if mark else None, column=mark.column if mark else None,
                path="name", code="name-mismatch",
                message=f"name `{spec.name}` differs from its directory `{dirname}`",
                fix=f"rename the directory to functions/{spec.name}/ or set `name: {dirname}`",
            ))
            failed.add(dirname)
            continue
        functions[spec.name] = LoadedFunction(spec=spec, file=rel, positions=positions)
    return Project(functions=functions, providers=providers, settings=settings,
                   diagnostics=tuple(diags), failed_functions=frozenset(failed),
                   providers_positions=providers_positions)


def load_one(file: str, data: Source,
             model: type[ModelT]) -> tuple[ModelT | None, Positions, list[Diagnostic]]:
    """Load one file as `model`: (instance or None, positions, diagnostics)."""
    diags: list[Diagnostic] = []
    loaded = _load_model(file, data, model, diags)
    if loaded:
        return loaded[0], loaded[1], diags
    return None, Positions(), diags


def _load_model(file: str, data: Source, model: type[ModelT],
                diags: list[Diagnostic]) -> tuple[ModelT, Positions] | None:
    if isinstance(data, FileRefused):
        diags.append(Diagnostic(file=file, message=data.reason, fix=data.fix, code="file"))
        return None
    try:
        value, positions = parse(data)
    except YamlProblem as exc:
        diags.append(Diagnostic(file=file, line=exc.line, column=exc.column,
                                path=format_path(exc.path), message=exc.message, fix=exc.fix,
                                code="yaml"))
        return None
    try:
        return model.model_validate(value), positions
    except ValidationError as exc:
        diags.extend(validation_diagnostics(file, exc, value, positions, model))
        return None


def validation_diagnostics(file: str, exc: ValidationError, value: Any, positions: Positions,
                           model: type[BaseModel]) -> list[Diagnostic]:
    """Pydantic's errors as located, actionable diagnostics in JSON terms, quoting the value
    at fault (shortened; never the value of a `*_env` or `*_url` key, which may be a key)."""
    out: list[Diagnostic] = []
    seen: set[tuple[Path, str]] = set()
    errors = exc.errors(include_url=False, include_input=False)
    located = [_data_path(value, err["loc"]) for err in errors]
    for err, path in zip(errors, located, strict=True):
        if err["type"] == "too_short" and any(
                len(other) > len(path) and other[:len(path)] == path for other in located):
            continue  # pydantic counts only valid items: the invalid ones say enough
        message, fix = _explain(err, path, model, value)
        if (path, message) in seen:  # union members repeat the same complaint
            continue
        seen.add((path, message))
        mark = positions.find(path, prefer_key=err["type"] in ("extra_forbidden", "missing")
                              or err["loc"][-1:] == ("[key]",))
        if err["type"] == "missing":
            mark = positions.find(path[:-1])
        out.append(Diagnostic(file=file, line=mark.line if mark else None,
                              column=mark.column if mark else None, path=format_path(path),
                              message=message, fix=fix, code=err["type"]))
    return out


def _data_path(value: Any, loc: Iterable[Any]) -> Path:
    """Keep only the parts of a pydantic location that index into the data."""
    path: list[str | int] = []
    node = value
    loc = list(loc)
    for i, part in enumerate(loc):
        if isinstance(node, dict) and isinstance(part, str):
            if part in node:
                path.append(part)
                node = node[part]
            elif i == len(loc) - 1 and part != "[key]":
                path.append(part)  # a missing key
        elif isinstance(node, list) and isinstance(part, int):
            path.append(part)
            node = node[part] if 0 <= part < len(node) else None
    return tuple(path)


_ABSENT = object()


def _value_at(value: Any, path: Path) -> Any:
    for part in path:
        found = (isinstance(value, dict) and part in value) or (
            isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value))
        if not found:
            return _ABSENT
        value = value[part]
    return value


def _quoted(text: str) -> str:
    """Pydantic's rendering of choices (`'a', 'b' or 'c'`) with JSON strings (`"a"`)."""
    return re.sub(r"'((?:[^'\\]|\\.)*)'", lambda m: shown(m[1]), text)


_KINDS = {  # what a value of the wrong type is not
    "string_type": "text", "int_type": "an integer", "int_parsing": "an integer",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
    "bool_parsing": "true or false", "dict_type": "a mapping (key: value pairs)",
    "model_type": "a mapping (key: value pairs)",
    "model_attributes_type": "a mapping (key: value pairs)", "list_type": "a list",
    "tuple_type": "a list", "finite_number": "a finite number",
    "int_from_float": "an integer (it has a fraction)",
}
_KIND_FIXES = {"dict_type": "write it as a YAML mapping",
               "model_type": "write it as a YAML mapping",
               "model_attributes_type": "write it as a YAML mapping",
               "list_type": "write it as a YAML list (`- item`)",
               "tuple_type": "write it as a YAML list (`- item`)"}
_BOUNDS = {"greater_than_equal": ("ge", "is less than the minimum of"),
           "greater_than": ("gt", "is less than or equal to the minimum of"),
           "less_than_equal": ("le", "is greater than the maximum of"),
           "less_than": ("lt", "is greater than or equal to the maximum of")}


def _explain(err: Any, path: Path, model: type[BaseModel], data: Any) -> tuple[str, str]:
    kind = err["type"]
    key = path[-1] if path else ""
    ctx = err.get("ctx") or {}
    if err["loc"][-1:] == ("[key]",):  # a mapping's key, such as a provider's name
        message, fix = _PATTERN_HELP["name"]
        return f"key {shown(key)} {message}", fix
    if kind == "extra_forbidden":
        allowed = allowed_keys(model, path[:-1])
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        fix = f"did you mean `{close[0]}`?" if close else (
            f"allowed keys: {', '.join(allowed)}" if allowed else "remove it")
        return f"unknown key `{key}`", fix
    if kind == "missing":
        return f"required key `{key}` is missing", f"add `{key}:`"
    if kind in ("key_like", "not_a_variable_name", "secret_in_url"):  # never shown in full
        return err["msg"], ctx.get("fix", "")
    value = _value_at(data, path)
    secret = isinstance(key, str) and key.endswith(("_env", "_url"))
    it = "the value" if value is _ABSENT or secret else shown(value)
    if kind == "union_tag_invalid":
        tag = value.get("type") if isinstance(value, dict) else None
        return (f"`type` {shown(tag)} is not one of {_quoted(ctx.get('expected_tags', ''))}",
                "set `type` to one of them")
    if key == "version" and (kind == "string_pattern_mismatch" or kind in _KINDS):
        return f"{it} is not a semantic version", f"e.g. {_semver_like(value)}"
    if kind == "literal_error":
        return (f"{it} is not one of {_quoted(ctx.get('expected', ''))}",
                "use one of the listed values")
    if kind == "string_pattern_mismatch":
        what, fix = _PATTERN_HELP.get(
            key, (f"does not match the pattern `{ctx.get('pattern')}`", ""))
        return f"{it} {what}", fix
    if kind in _KINDS:
        return f"{it} is not {_KINDS[kind]}", _KIND_FIXES.get(kind, "")
    if kind in _BOUNDS:
        bound, words = _BOUNDS[kind]
        limit = ctx.get(bound)
        if isinstance(limit, float) and limit.is_integer():
            limit = int(limit)  # `1`, not `1.0`: the bound as the author would write it
        return f"{it} {words} {shown(limit)}", ""
    if kind == "string_too_long":
        size = f" ({len(value)} characters)" if isinstance(value, str) else ""
        return (f"{it}{size} is longer than {ctx.get('max_length')} characters, the most the "
                "database stores here", "shorten it")
    if kind == "string_too_short":
        return f"{it} is empty", "write some text" if ctx.get("min_length") == 1 else ""
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s)", ""
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    elif message.startswith("Input should be ") and it != "the value":
        message = f"{it} should be {message[len('Input should be '):]}"
    return _quoted(message[0].lower() + message[1:]), ""


def _semver_like(value: Any) -> str:
    """A semantic version close to what was written (`1.2` -> `1.2.0`), else `1.0.0`."""
    text = str(value).strip().removeprefix("v") if isinstance(value, str | int | float) else ""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        parts = [str(int(p)) for p in text.split(".")]
        return ".".join([*parts, "0", "0"][:3])
    return text if re.fullmatch(SEMVER_PATTERN, text) else "1.0.0"


_PATTERN_HELP: dict[Any, tuple[str, str]] = {
    "name": ("is not a name: lowercase letters, digits and dashes, starting with a letter "
             "(2-63)", "e.g. `summarize-article`"),
    "over": ("is not a duration", "e.g. `15m`, `1h`, `1d`"),
    "base_url": ("must start with http:// or https://", "e.g. `https://api.example.com/v1`"),
    "path": ("is not a JSON path starting with `$`", "e.g. `$.items[0].name`"),
    "project": ("is not a project id: printable text on one line, with no blank at either "
                "end", "e.g. `prompts-k3v9q2` (what `aiops init` writes)"),
}


def allowed_keys(model: type[BaseModel], path: Path) -> list[str]:
    """The keys a mapping at `path` inside `model` accepts (for "did you mean")."""
    current: Any = model
    for part in path:
        current = _step(current, part)
        if current is None:
            return []
    models = [t for t in _flatten(current) if isinstance(t, type) and issubclass(t, BaseModel)]
    keys: list[str] = []
    for m in models:
        keys += [f.alias or name for name, f in m.model_fields.items()]
    return keys


def _flatten(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _flatten(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for a in typing.get_args(tp) for t in _flatten(a)]
    return [tp]


def _step(tp: Any, part: str | int) -> Any:
    for t in _flatten(tp):
        origin = typing.get_origin(t)
        if isinstance(part, int) and origin in (tuple, list):
            return typing.get_args(t)[0]
        if isinstance(part, str) and origin is dict:
            return typing.get_args(t)[1]
        if isinstance(part, str) and isinstance(t, type) and issubclass(t, BaseModel):
            for name, f in t.model_fields.items():
                if part in (name, f.alias):
                    return f.annotation
    return None
