"""Cross-checks over loaded specs: what a pull request must pass beyond the file format.

- `check_project`: schemas against the draft 2020-12 metaschema, templates against the input
  schema, test inputs against the input schema, providers and prices.
- `compare_with_base`: a function against its state at a base revision: a behaviour change
  needs a version bump, a breaking change needs a major bump (`aiops.compat` lists every
  item), and a version that goes down must match an earlier content (a rollback).
All functions are pure over specs; the only input from outside is an optional lookup of a
function's earlier contents, passed in.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aiops.compat import compare, properties_of, required_of
from aiops.errors import Diagnostic, shown
from aiops.fingerprint import BEHAVIOUR_FIELDS, behaviour_content, content_hash
from aiops.loader import PROVIDERS_FILE, LoadedFunction, Project
from aiops.schemas import (
    DRAFT_2020_12,
    CompiledSchema,
    local_ref,
    metaschema_errors,
    pattern_problems,
    value_problems,
)
from aiops.spec import FunctionSpec, ProvidersFile, Semver
from aiops.yamlsrc import Path, format_path


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
    receivers = project.settings.alerting.receivers
    for name in sorted(project.functions):
        out += check_function(project.functions[name], project.providers)
        out += check_alerts(project.functions[name], receivers)
    return out


def check_alerts(lf: LoadedFunction, receivers: Mapping[str, Any]) -> list[Diagnostic]:
    """Every `notify` name is a receiver of aiops.yaml; a rule that notifies nobody, or that
    cannot measure anything, is said (as a warning) with where it is evaluated."""
    out: list[Diagnostic] = []
    known = sorted(receivers)
    limits = lf.spec.limits
    for i, rule in enumerate(lf.spec.alerts):
        for j, name in enumerate(rule.notify or ()):
            if name not in receivers:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"did you mean `{close[0]}`? " if close else ""
                out.append(_diag(lf, ("alerts", i, "notify", j), f"no receiver {shown(name)} "
                                 "in aiops.yaml `alerting.receivers`",
                                 fix=f"{hint}receivers: {', '.join(known) or 'none yet'}; "
                                 "see docs/monitoring.md#alerts", code="alert-receiver"))
        if not rule.notify:
            out.append(_diag(lf, ("alerts", i), f"rule {rule.rule_name} notifies nobody: it is "
                             "evaluated by `aiops alerts check` and `aiops serve` and shown by "
                             "`aiops alerts list`, but sends no notification",
                             fix="add `notify: [RECEIVER]` (receivers are named in aiops.yaml "
                             "`alerting.receivers`)", severity="warning", code="alert-silent"))
        if rule.metric == "quota_usage":
            if limits.daily_calls is None and limits.daily_budget_usd is None:
                out.append(_diag(lf, ("alerts", i, "metric"), "quota_usage is the share of the "
                                 "daily limits used, and this function has none: the rule "
                                 "never fires", fix="set `limits.daily_calls` or "
                                 "`limits.daily_budget_usd`, or remove the rule",
                                 severity="warning", code="alert-no-quota"))
            if rule.over is not None:
                out.append(_diag(lf, ("alerts", i, "over"), "quota_usage is measured over the "
                                 "current UTC day; `over` is ignored", fix="remove `over`",
                                 severity="warning", code="alert-window-ignored"))
    return out


def check_function(lf: LoadedFunction, providers: ProvidersFile | None) -> list[Diagnostic]:
    spec = lf.spec
    out: list[Diagnostic] = []
    compiled_input = _check_schema(lf, "input_schema", out)
    input_ok = compiled_input is not None
    _check_schema(lf, "output_schema", out)
    if input_ok and spec.input_schema.get("type") != "object":
        out.append(_diag(lf, ("input_schema",), "input_schema must have `type: object`",
                         fix="inputs are named: declare them under `properties`",
                         code="input-not-object"))
        input_ok = False
    _check_templates(lf, out)
    if compiled_input is not None and input_ok:
        _check_tests(lf, compiled_input, out)
    _check_assertions(lf, out)
    if providers is not None:
        _check_providers(lf, providers, out)
    _check_on_limit(lf, out)
    return out


def _check_on_limit(lf: LoadedFunction, out: list[Diagnostic]) -> None:
    """`on_limit: fallback` said explicitly on a function without fallbacks: it waits."""
    limits = lf.spec.limits
    if "on_limit" in limits.model_fields_set and limits.on_limit == "fallback" \
            and not lf.spec.fallbacks:
        out.append(_diag(lf, ("limits", "on_limit"), "`on_limit: fallback` has no fallback "
                         "to go to: a call whose provider's rate limit has no room waits for "
                         "it", fix="add `fallbacks`, or say `on_limit: wait`",
                         severity="warning", code="on-limit-no-fallback"))


def _check_schema(lf: LoadedFunction, key: str, out: list[Diagnostic]) -> CompiledSchema | None:
    """The schema compiled, or None after reporting why it cannot be used."""
    schema = getattr(lf.spec, key)
    declared = schema.get("$schema")
    if declared is not None and (not isinstance(declared, str)
                                 or declared.rstrip("#") != DRAFT_2020_12):
        out.append(_diag(lf, (key, "$schema"), f"`$schema` is {shown(declared)}; aiops reads "
                         "draft 2020-12 schemas", fix=f"remove `$schema` or set it to "
                         f"{DRAFT_2020_12}", code="schema-draft"))
        return None
    errors = metaschema_errors(schema)
    for err in errors:
        out.append(_diag(lf, (key, *err.path), f"not a valid JSON Schema: {err.message}",
                         fix="see https://json-schema.org/understanding-json-schema/",
                         code="schema-invalid"))
    if errors:
        return None
    bad_refs = _unusable_refs(schema, schema, ())
    for path, message, fix in bad_refs:
        out.append(_diag(lf, (key, *path), message, fix=fix, code="schema-ref"))
    if bad_refs:
        return None
    bad_patterns = pattern_problems(schema)
    for path, why in bad_patterns:
        out.append(_diag(lf, (key, *path), why, fix="write it for a linear-time engine "
                         "(Rust regex syntax, as ECMA-262 without lookarounds or backreferences)",
                         code="schema-pattern"))
    if bad_patterns:
        return None
    bad_values = value_problems(schema)
    for problem in bad_values:
        out.append(_diag(lf, (key, *problem.path), problem.message, fix=_VALUE_FIXES[
            problem.keyword if (key, problem.keyword) != ("input_schema", "default")
            else "input default"], code=f"schema-{problem.keyword}"))
    if any(p.keyword == "default" for p in bad_values):
        return None  # test inputs would report the default the runner fills in, not theirs
    try:  # what the runner will do with it (a remote `$ref` would be fetched: refused above)
        return CompiledSchema(schema)
    except ValueError as exc:
        out.append(_diag(lf, (key,), f"the schema cannot be compiled: "
                         f"{str(exc).splitlines()[0]}", fix="see "
                         "https://json-schema.org/understanding-json-schema/",
                         code="schema-invalid"))
        return None


_VALUE_FIXES = {
    "input default": "change it to a value the schema accepts, or remove it: the runner fills "
                     "it in for every call that omits this input, and would refuse each one",
    "default": "change it to a value the schema accepts, or remove it",
    "enum": "remove the value, or change the rest of the schema to accept it",
    "const": "change the value, or the rest of the schema to accept it",
}


def _anchors(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("$anchor", "$dynamicAnchor") and isinstance(v, str):
                found.add(v)
            else:
                found |= _anchors(v)
    elif isinstance(node, list):
        for v in node:
            found |= _anchors(v)
    return found


def _unusable_refs(node: Any, root: Any, path: Path,
                   out: list[tuple[Path, str, str]] | None = None) -> list[tuple[Path, str, str]]:
    """Each `$ref` that is remote (validate and the runner read no network) or local and
    pointing nowhere: (its path in the schema, what is wrong, how to fix it)."""
    out = [] if out is None else out
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("$ref", "$dynamicRef") and isinstance(v, str):
                at = (*path, k)
                if not v.startswith("#"):
                    out.append((at, f"remote `{k}` {shown(v)}: aiops does not fetch schemas",
                                "copy the schema under `$defs` and refer to it as `#/$defs/...`"))
                elif (v.startswith("#/") or v == "#") and local_ref(root, v) is None:
                    out.append((at, f"`{k}` {shown(v)} points to nothing in this schema",
                                "point it at an existing place, e.g. `#/$defs/<name>`"))
                elif not v.startswith("#/") and v != "#" and v[1:] not in _anchors(root):
                    out.append((at, f"`{k}` {shown(v)} names no `$anchor` of this schema",
                                "declare the `$anchor` or use a `#/$defs/...` pointer"))
            elif isinstance(v, dict | list) and k not in ("enum", "const", "default", "examples"):
                _unusable_refs(v, root, (*path, k), out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            if isinstance(v, dict | list):
                _unusable_refs(v, root, (*path, i), out)
    return out


_LOADS = re.compile(r"\{%[-+]?\s*(include|import|from|extends)\b")


def _check_templates(lf: LoadedFunction, out: list[Diagnostic]) -> None:
    from jinja2 import TemplateSyntaxError

    from aiops.template_checks import analyse

    spec = lf.spec
    # The runner passes the top-level properties (None when absent); a name declared only
    # through `$ref`/`allOf` is present in every call only when it is required there.
    anywhere, required_set = _declared_inputs(spec.input_schema, spec.input_schema)
    declared = set(properties_of(spec.input_schema)) | (anywhere & required_set)
    used: set[str] = set()
    parsed_all = True
    for i, message in enumerate(spec.prompt):
        path: Path = ("prompt", i, "content")
        try:
            analysis = analyse(message.content, declared)
        except TemplateSyntaxError as exc:
            parsed_all = False
            out.append(Diagnostic(
                file=lf.file, line=lf.positions.text_line(path, exc.lineno or 1),
                path=format_path(path), message=f"template syntax error: {exc.message}",
                fix="check the {{ }} and {% %} tags", code="template-syntax"))
            continue
        for problem in analysis.problems:
            out.append(Diagnostic(
                file=lf.file, line=lf.positions.text_line(path, problem.line, problem.word),
                path=format_path(path), message=problem.message, fix=problem.fix,
                code=problem.code))
        if analysis.variables is None:  # not compiled: what it reads is unknown
            parsed_all = False
            continue
        names = analysis.variables
        used |= set(names)
        called = {p.word for p in analysis.problems if p.code == "template-call"}
        if "{%" in message.content and (load := _LOADS.search(message.content)):
            out.append(Diagnostic(
                file=lf.file, path=format_path(path), code="template-load",
                line=lf.positions.text_line(
                    path, message.content.count("\n", 0, load.start()) + 1, load.group(1)),
                message=f"`{load.group(1)}` loads another template; prompts are self-contained "
                        "(the sandbox has no template loader, so every call would fail)",
                fix="write the text in the message, or a `{% macro %}` in the same message"))
        for name in sorted(set(names) - declared - called):
            close = difflib.get_close_matches(name, sorted(declared), n=1)
            out.append(Diagnostic(
                file=lf.file, line=lf.positions.text_line(path, names[name], name),
                path=format_path(path),
                message=f"template variable `{name}` is not declared in input_schema.properties",
                fix=f"did you mean `{close[0]}`?" if close else
                f"declare `{name}` under input_schema.properties", code="template-undeclared"))
    if not parsed_all:
        return
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


def _declared_inputs(schema: Any, root: Any, depth: int = 0) -> tuple[set[str], set[str]]:
    """The input names a schema declares and those it requires, through a local `$ref` and
    `allOf`/`anyOf`/`oneOf` (a name any branch declares is declared; only `allOf` and `$ref`
    make one required)."""
    declared, required = set(properties_of(schema)), required_of(schema)
    if not isinstance(schema, dict) or depth > 8:
        return declared, required
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        d, r = _declared_inputs(local_ref(root, ref), root, depth + 1)
        declared, required = declared | d, required | r
    for key in ("allOf", "anyOf", "oneOf"):
        branches = schema.get(key)
        for branch in branches if isinstance(branches, list) else []:
            d, r = _declared_inputs(branch, root, depth + 1)
            declared |= d
            if key == "allOf":
                required |= r
    return declared, required


def _check_tests(lf: LoadedFunction, validator: CompiledSchema, out: list[Diagnostic]) -> None:
    if not lf.spec.tests:
        return
    seen: dict[str, int] = {}
    for i, case in enumerate(lf.spec.tests):
        if case.name in seen:
            out.append(_diag(lf, ("tests", i, "name"), f"duplicate test name `{case.name}` "
                             f"(first is tests[{seen[case.name]}])", fix="rename one",
                             code="test-duplicate"))
        seen.setdefault(case.name, i)
        for err in validator.errors(_with_defaults(lf.spec.input_schema, case.input)):
            path = ("tests", i, "input", *err.path)
            out.append(_diag(lf, path, f"test input does not match input_schema: {err.message}",
                             fix="change the test input or the schema", code="test-input"))


def _with_defaults(schema: Any, value: Any) -> Any:
    """`value` with the schema's property defaults filled in, nested objects too: what the
    runner validates (`aiops.prepare.fill_defaults`; not imported, to keep validate light)."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(value, dict) or not isinstance(props, dict):
        return value
    out = dict(value)
    for name, sub in props.items():
        if name not in out and isinstance(sub, dict) and "default" in sub:
            out[name] = sub["default"]
        elif name in out and isinstance(sub, dict) and sub.get("properties"):
            out[name] = _with_defaults(sub, out[name])
    return out


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


# --- version rules (DESIGN §4): one implementation, fed by a git base or the database -------


@dataclass(frozen=True, kw_only=True)
class Versioned:
    """One side of a version comparison: a version and its behaviour (the content of
    `fingerprint.behaviour_content` and its hash), as a function file makes it (`versioned`)
    or as the database holds it (`aiops.plan`)."""

    version: str
    behaviour_hash: str
    content: Mapping[str, Any]

    @property
    def input_schema(self) -> Any:
        return self.content.get("input_schema")

    @property
    def output_schema(self) -> Any:
        return self.content.get("output_schema")


def versioned(spec: FunctionSpec) -> Versioned:
    content = behaviour_content(spec)
    return Versioned(version=spec.version, behaviour_hash=content_hash(content), content=content)


@dataclass(frozen=True, kw_only=True)
class VersionProblem:
    """A version rule broken, at the file's `version` key: what, how to fix it, its code."""

    code: str
    message: str
    fix: str
    severity: Literal["error", "warning"] = "error"

    def diagnostic(self, file: str, *, line: int | None = None,
                   column: int | None = None) -> Diagnostic:
        return Diagnostic(file=file, line=line, column=column, path="version",
                          message=self.message, fix=self.fix, severity=self.severity,
                          code=self.code)


# (name, version) -> that version's earlier content (git history, or the database), or None
EarlierLookup = Callable[[str, str], Versioned | None]


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
    """`version_rules` for a loaded file against an earlier spec, located at its `version`."""
    mark = lf.positions.find(("version",))
    return [p.diagnostic(lf.file, line=mark.line if mark else None,
                         column=mark.column if mark else None)
            for p in version_rules(lf.spec.name, versioned(lf.spec), versioned(old), earlier)]


def version_rules(name: str, new: Versioned, old: Versioned,
                  earlier: EarlierLookup | None = None) -> list[VersionProblem]:
    """What DESIGN §4 says of going from `old` to `new`: a behaviour change bumps `version`, a
    breaking change bumps the major version (every breaking item listed), and a version that
    goes down must match that version's earlier content (a rollback). `validate --base` feeds
    it the base revision's file; plan and apply the version the database holds.

    When `old` cannot be compared (a version that is not semver, a schema that is not a JSON
    object: rows edited outside aiops), only a major bump passes: whether the change breaks
    callers cannot be told, and a major bump is always allowed."""
    try:
        old_v = Semver(old.version)
    except ValueError:
        return [VersionProblem(
            code="version-base-unknown",
            message=f"the version it is compared with, {shown(old.version)}, is not a "
                    f"semantic version: aiops cannot tell whether {new.version} goes up or "
                    "down", fix="correct that version row's `version` in the database (aiops "
                    "writes semantic versions only)")]
    new_v = Semver(new.version)
    if new_v < old_v:
        previous = earlier(name, new.version) if earlier else None
        if previous is None or previous.behaviour_hash != new.behaviour_hash:
            return [VersionProblem(
                code="version-down",
                message=f"version goes down from {old.version} to {new.version} without "
                        "matching that version's earlier content",
                fix=f"to roll back, restore {new.version}'s content exactly (git revert); "
                    f"otherwise set a version above {old.version}")]
        return []
    if new.behaviour_hash == old.behaviour_hash:
        return []
    if new_v == old_v:
        changed = changed_fields(old.content, new.content)
        return [VersionProblem(
            code="version-not-bumped",
            message=f"behaviour changed ({', '.join(changed) or 'content'}) but version is "
                    f"still {new.version}", fix=f"bump `version` (e.g. {_bump(new_v, 'patch')})")]
    if new_v.is_major_bump_over(old_v):
        return []
    unknown = [k for k in ("input_schema", "output_schema") if not isinstance(old.content.get(k),
                                                                              dict)]
    if unknown:
        return [VersionProblem(
            code="version-base-unknown",
            message=f"cannot check {old.version} -> {new.version} for breaking changes: the "
                    f"content held for {old.version} has no {' or '.join(unknown)} object to "
                    "compare with", fix=f"set `version: {_bump(old_v, 'major')}` (a major "
                    "bump needs no comparison)")]
    walk = compare(old, new)
    if walk.breaks:
        items = "; ".join(walk.breaks)
        return [VersionProblem(
            code="breaking-change",
            message=f"breaking change without a major version bump ({old.version} -> "
                    f"{new.version}): {items}",
            fix=f"set `version: {_bump(old_v, 'major')}`, or keep callers working")]
    if walk.unchecked:
        items = "; ".join(walk.unchecked)
        return [VersionProblem(
            code="breaking-unchecked", severity="warning",
            message=f"schema changes aiops does not compare for breaking changes "
                    f"({old.version} -> {new.version}): {items}",
            fix=f"check by hand that callers still work; if they do not, set "
                f"`version: {_bump(old_v, 'major')}`")]
    return []


def changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The behaviour fields that differ between two behaviour contents."""
    return [k for k in BEHAVIOUR_FIELDS if old.get(k) != new.get(k)]


def _bump(v: Semver, part: str) -> str:
    if part == "major":
        return f"0.{v.minor + 1}.0" if v.major == 0 else f"{v.major + 1}.0.0"
    return f"{v.major}.{v.minor}.{v.patch + 1}"
