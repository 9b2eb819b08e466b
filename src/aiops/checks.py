"""Cross-checks over loaded specs: what a pull request must pass beyond the file format.

- `check_project`: schemas against the draft 2020-12 metaschema, templates against the input
  schema, test inputs against the input schema, providers and prices.
- `compare_with_base`: a function against its state at a base revision: a behaviour change
  needs a version bump, a breaking change needs a major bump (`breaking_changes` lists every
  item), and a version that goes down must match an earlier content (a rollback).
All functions are pure over specs; the only input from outside is an optional lookup of a
function's earlier contents, passed in.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any, Literal, Protocol

from aiops.errors import Diagnostic
from aiops.fingerprint import BEHAVIOUR_FIELDS, behaviour_content, fingerprint
from aiops.loader import PROVIDERS_FILE, LoadedFunction, Project
from aiops.schemas import CompiledSchema, metaschema_errors
from aiops.spec import FunctionSpec, ProvidersFile, Semver
from aiops.yamlsrc import Path, format_path

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def _diag(lf: LoadedFunction, path: Path, message: str, *, fix: str = "",
          severity: Literal["error", "warning"] = "error", code: str) -> Diagnostic:
    mark = lf.positions.find(path)
    return Diagnostic(file=lf.file, line=mark.line if mark else None,
                      column=mark.column if mark else None, path=format_path(path),
                      message=message, fix=fix, severity=severity, code=code)


# --- one project ------------------------------------------------------------------------


def check_project(project: Project) -> list[Diagnostic]:
    """Every cross-check of every loaded function; the loader's own diagnostics not included."""
    out: list[Diagnostic] = []
    if project.providers is None and PROVIDERS_FILE not in {d.file for d in project.diagnostics}:
        out.append(Diagnostic(file=PROVIDERS_FILE, message="providers.yaml is missing",
                              fix="run `aiops init` or create it (see docs/format.md)",
                              code="no-providers"))
    for name in sorted(project.functions):
        out += check_function(project.functions[name], project.providers)
    return out


def check_function(lf: LoadedFunction, providers: ProvidersFile | None) -> list[Diagnostic]:
    spec = lf.spec
    out: list[Diagnostic] = []
    input_ok = _check_schema(lf, "input_schema", out)
    _check_schema(lf, "output_schema", out)
    if input_ok and spec.input_schema.get("type") != "object":
        out.append(_diag(lf, ("input_schema",), "input_schema must have `type: object`",
                         fix="inputs are named: declare them under `properties`",
                         code="input-not-object"))
        input_ok = False
    _check_templates(lf, out)
    if input_ok:
        _check_tests(lf, out)
    _check_assertions(lf, out)
    if providers is not None:
        _check_providers(lf, providers, out)
    return out


def _check_schema(lf: LoadedFunction, key: str, out: list[Diagnostic]) -> bool:
    schema = getattr(lf.spec, key)
    declared = schema.get("$schema")
    if declared is not None and declared.rstrip("#") != DRAFT_2020_12:
        out.append(_diag(lf, (key, "$schema"), f"`$schema` is {declared!r}; aiops reads "
                         "draft 2020-12 schemas", fix=f"remove `$schema` or set it to "
                         f"{DRAFT_2020_12}", code="schema-draft"))
        return False
    errors = metaschema_errors(schema)
    for err in errors:
        out.append(_diag(lf, (key, *err.path), f"not a valid JSON Schema: {err.message}",
                         fix="see https://json-schema.org/understanding-json-schema/",
                         code="schema-invalid"))
    return not errors


def template_variables(source: str) -> dict[str, int]:
    """The root variables a template reads, each with the template line of its first use.

    Raises jinja2.TemplateSyntaxError.
    """
    from jinja2 import meta, nodes

    from aiops.render_template import make_environment

    env = make_environment()
    tree = env.parse(source)
    names = meta.find_undeclared_variables(tree) - set(env.globals)
    first: dict[str, int] = {}
    for node in tree.find_all(nodes.Name):
        if node.name in names and node.ctx == "load":
            first[node.name] = min(first.get(node.name, node.lineno), node.lineno)
    return {name: first.get(name, 1) for name in names}


def _check_templates(lf: LoadedFunction, out: list[Diagnostic]) -> None:
    from jinja2 import TemplateSyntaxError

    spec = lf.spec
    properties = spec.input_schema.get("properties")
    declared = set(properties) if isinstance(properties, dict) else set()
    used: set[str] = set()
    parsed_all = True
    for i, message in enumerate(spec.prompt):
        path: Path = ("prompt", i, "content")
        try:
            names = template_variables(message.content)
        except TemplateSyntaxError as exc:
            parsed_all = False
            first = lf.positions.content_line(path)
            out.append(Diagnostic(
                file=lf.file, line=(first + (exc.lineno or 1) - 1) if first else None,
                path=format_path(path), message=f"template syntax error: {exc.message}",
                fix="check the {{ }} and {% %} tags", code="template-syntax"))
            continue
        used |= set(names)
        first = lf.positions.content_line(path)
        for name in sorted(set(names) - declared):
            close = difflib.get_close_matches(name, sorted(declared), n=1)
            out.append(Diagnostic(
                file=lf.file, line=first + names[name] - 1 if first else None,
                path=format_path(path),
                message=f"template variable `{name}` is not declared in input_schema.properties",
                fix=f"did you mean `{close[0]}`?" if close else
                f"declare `{name}` under input_schema.properties", code="template-undeclared"))
    if not parsed_all:
        return
    required = spec.input_schema.get("required")
    required_set = {r for r in required if isinstance(r, str)} if isinstance(required, list) \
        else set()
    for name in sorted(declared - used):
        if name in required_set:
            out.append(_diag(lf, ("input_schema", "properties", name),
                             f"required input `{name}` is not used by any prompt message",
                             fix=f"use {{{{ {name} }}}} in the prompt or remove the input",
                             code="input-unused"))
        else:
            out.append(_diag(lf, ("input_schema", "properties", name),
                             f"optional input `{name}` is not used by any prompt message",
                             fix=f"use {{{{ {name} }}}} in the prompt or remove the input",
                             severity="warning", code="input-unused"))


def _check_tests(lf: LoadedFunction, out: list[Diagnostic]) -> None:
    if not lf.spec.tests:
        return
    validator = CompiledSchema(lf.spec.input_schema)
    seen: dict[str, int] = {}
    for i, case in enumerate(lf.spec.tests):
        if case.name in seen:
            out.append(_diag(lf, ("tests", i, "name"), f"duplicate test name `{case.name}` "
                             f"(first is tests[{seen[case.name]}])", fix="rename one",
                             code="test-duplicate"))
        seen.setdefault(case.name, i)
        for err in validator.errors(case.input):
            path = ("tests", i, "input", *err.path)
            out.append(_diag(lf, path, f"test input does not match input_schema: {err.message}",
                             fix="change the test input or the schema", code="test-input"))


def _check_assertions(lf: LoadedFunction, out: list[Diagnostic]) -> None:
    from aiops.jsonpath import JsonPathError, parse

    for i, case in enumerate(lf.spec.tests):
        for j, item in enumerate(case.expect):
            inner = item.not_ if item.not_ is not None else item
            if inner.path is None:
                continue
            at: Path = ("tests", i, "expect", j, *(("not",) if item.not_ else ()), "path")
            if lf.spec.output_is_text:
                out.append(_diag(lf, at, "a `path` expectation needs structured output, and "
                                 "output_schema is text", fix="use contains / matches on the "
                                 "text, or give output_schema an object type",
                                 code="assertion-path"))
                continue
            try:
                parse(inner.path)
            except JsonPathError as exc:
                out.append(_diag(lf, at, f"invalid JSON path: {exc}",
                                 fix="use $, .key, ['key'], [n] and [*]", code="assertion-path"))


def _check_providers(lf: LoadedFunction, providers: ProvidersFile, out: list[Diagnostic]) -> None:
    spec = lf.spec
    known = sorted(providers.providers)
    targets: list[tuple[Path, str, str | None]] = [(("provider",), spec.provider, spec.model)]
    targets += [(("fallbacks", i, "provider"), f.provider, f.model)
                for i, f in enumerate(spec.fallbacks)]
    targets += [(("test_providers", i), p, None) for i, p in enumerate(spec.test_providers or ())]
    for path, provider, model in targets:
        entry = providers.providers.get(provider)
        if entry is None:
            close = difflib.get_close_matches(provider, known, n=1)
            out.append(_diag(lf, path, f"provider `{provider}` is not in providers.yaml",
                             fix=f"did you mean `{close[0]}`?" if close else
                             f"use one of: {', '.join(known) or '(none defined)'}",
                             code="provider-unknown"))
            continue
        if model is not None and model not in entry.models:
            model_path = (*path[:-1], "model")
            out.append(_diag(lf, model_path, f"model `{model}` has no price under "
                             f"providers.{provider}.models: its cost is recorded as 0 and "
                             "USD budgets cannot hold", fix=f"add `{model}: {{input_per_mtok: "
                             "..., output_per_mtok: ...}` to providers.yaml",
                             severity="warning", code="price-missing"))


# --- against a base revision -------------------------------------------------------------

EarlierLookup = Callable[[str, str], FunctionSpec | None]


def compare_with_base(project: Project, base: Project,
                      earlier: EarlierLookup | None = None) -> list[Diagnostic]:
    """Version rules between the base revision and the working tree (DESIGN §4)."""
    out: list[Diagnostic] = []
    for name in sorted(project.functions):
        lf = project.functions[name]
        old_lf = base.functions.get(name)
        if old_lf is None:
            continue
        out += compare_versions(lf, old_lf.spec, earlier)
    for name in sorted(set(base.functions) - set(project.functions) - project.failed_functions):
        out.append(Diagnostic(file=base.functions[name].file, severity="warning",
                              code="function-removed",
                              message=f"function `{name}` was removed since the base revision",
                              fix="`aiops apply --prune` archives it; without --prune it stays"))
    return out


def compare_versions(lf: LoadedFunction, old: FunctionSpec,
                     earlier: EarlierLookup | None = None) -> list[Diagnostic]:
    new = lf.spec
    old_v, new_v = Semver(old.version), Semver(new.version)
    same_behaviour = fingerprint(old).behaviour == fingerprint(new).behaviour
    at = ("version",)
    if new_v < old_v:
        previous = earlier(new.name, new.version) if earlier else None
        if previous is None or fingerprint(previous).behaviour != fingerprint(new).behaviour:
            return [_diag(lf, at, f"version goes down from {old.version} to {new.version} "
                          "without matching that version's earlier content",
                          fix=f"to roll back, restore {new.version}'s content exactly (git "
                          f"revert); otherwise set a version above {old.version}",
                          code="version-down")]
        return []
    if same_behaviour:
        return []
    changed = changed_fields(old, new)
    if new_v == old_v:
        return [_diag(lf, at, f"behaviour changed ({', '.join(changed)}) but version is still "
                      f"{new.version}", fix=f"bump `version` (e.g. {_bump(new_v, 'patch')})",
                      code="version-not-bumped")]
    breaks = breaking_changes(old, new)
    if breaks and not new_v.is_major_bump_over(old_v):
        items = "; ".join(breaks)
        return [_diag(lf, at, f"breaking change without a major version bump "
                      f"({old.version} -> {new.version}): {items}",
                      fix=f"set `version: {_bump(old_v, 'major')}`, or keep callers working",
                      code="breaking-change")]
    return []


def changed_fields(old: FunctionSpec, new: FunctionSpec) -> list[str]:
    a, b = behaviour_content(old), behaviour_content(new)
    return [k for k in BEHAVIOUR_FIELDS if a.get(k) != b.get(k)]


def _bump(v: Semver, part: str) -> str:
    if part == "major":
        return f"0.{v.minor + 1}.0" if v.major == 0 else f"{v.major + 1}.0.0"
    return f"{v.major}.{v.minor}.{v.patch + 1}"


class HasSchemas(Protocol):
    """What `breaking_changes` reads: a function's input and output schemas."""

    @property
    def input_schema(self) -> dict[str, Any]: ...
    @property
    def output_schema(self) -> dict[str, Any]: ...


def breaking_changes(old: HasSchemas, new: HasSchemas) -> list[str]:
    """Every change that breaks existing callers (DESIGN §4), as readable items."""
    items = _input_breaks(old.input_schema, new.input_schema, "input")
    items += _output_breaks(old.output_schema, new.output_schema, "output")
    return items


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


def _props(schema: Any) -> dict[str, Any]:
    p = schema.get("properties") if isinstance(schema, dict) else None
    return p if isinstance(p, dict) else {}


def _required(schema: Any) -> set[str]:
    r = schema.get("required") if isinstance(schema, dict) else None
    return {x for x in r if isinstance(x, str)} if isinstance(r, list) else set()


def _enum(schema: Any) -> list[Any] | None:
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return [schema["const"]]
    e = schema.get("enum")
    return e if isinstance(e, list) else None


def _missing(values: Iterable[Any], within: list[Any]) -> list[Any]:
    return [v for v in values if v not in within]


def _input_breaks(old: Any, new: Any, where: str) -> list[str]:
    items: list[str] = []
    ot, nt = _types(old), _types(new)
    if not _covers(nt, ot):
        items.append(f"{where}: type narrowed from {_fmt_types(ot)} to {_fmt_types(nt)}")
    oe, ne = _enum(old), _enum(new)
    if ne is not None:
        if oe is None:
            items.append(f"{where}: now restricted to {ne}")
        elif dropped := _missing(oe, ne):
            items.append(f"{where}: enum no longer accepts {dropped}")
    oprops, nprops = _props(old), _props(new)
    for name in sorted(_required(new) - _required(old)):
        items.append(f"{where}.{name}: new required input")
    if isinstance(new, dict) and new.get("additionalProperties") is False:
        for name in sorted(set(oprops) - set(nprops)):
            items.append(f"{where}.{name}: input removed while extra properties are refused")
    for name in sorted(set(oprops) & set(nprops)):
        items += _input_breaks(oprops[name], nprops[name], f"{where}.{name}")
    if isinstance(old, dict) and isinstance(new, dict) and "items" in new:
        items += _input_breaks(old.get("items", {}), new["items"], f"{where}[]")
    return items


def _output_breaks(old: Any, new: Any, where: str) -> list[str]:
    items: list[str] = []
    ot, nt = _types(old), _types(new)
    if not _covers(ot, nt):
        items.append(f"{where}: type changed from {_fmt_types(ot)} to {_fmt_types(nt)}")
    oe, ne = _enum(old), _enum(new)
    if oe is not None:
        if ne is None:
            items.append(f"{where}: enum removed; any value may now come")
        elif added := _missing(ne, oe):
            items.append(f"{where}: enum widened with {added}")
    oprops, nprops = _props(old), _props(new)
    for name in sorted(set(oprops) - set(nprops)):
        items.append(f"{where}.{name}: output property removed")
    for name in sorted((_required(old) - _required(new)) & set(nprops)):
        items.append(f"{where}.{name}: no longer required")
    for name in sorted(set(oprops) & set(nprops)):
        items += _output_breaks(oprops[name], nprops[name], f"{where}.{name}")
    if isinstance(old, dict) and isinstance(new, dict) and "items" in old:
        items += _output_breaks(old["items"], new.get("items", {}), f"{where}[]")
    return items
