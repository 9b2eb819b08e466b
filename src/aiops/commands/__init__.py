"""The verbs of aiops, one plain typed function each: the one facade of the CLI and the API.

Each takes a `Workspace` (`open_workspace(start)`: the project at or above `start`, its
settings, database and providers), returns data, raises `aiops.errors` exceptions, and
never prints.

    validate, init_project, new_function, function_template, schema_text     here
    plan, apply, status, upgrade_database, resolve_version, watch      .reconcile
    open_runner, run, run_many, logs, log_by_id, serve_mock           .execution
    golden_tests                                                      .golden
    import_file                                                       .importer
    function_etag, create_function, update_function, delete_function,
    function_source, preview_function                                 .writes
    create_token, list_tokens, token_page, revoke_token, authenticate .tokens
    check_alerts, list_alerts, alerts_overview, run_evaluator         .alerts
    list_functions, get_function, list_versions, get_version,
    function_logs, function_log, file_states, readiness               .catalog
    sign_in, session_of, sign_out                                     .sessions
    stats, calls_series, backfill_rollups, compact_rollups            .monitoring
    enable_metrics, metrics_page                                      .metrics

The verbs of the submodules load on first use (`aiops validate` imports no database, HTTP or
provider library).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiops.errors import ConfigError, Diagnostic, UsageError
from aiops.loader import (
    FUNCTIONS_DIR,
    PROJECT_FILE,
    PROVIDERS_FILE,
    function_file,
    load_sources,
)
from aiops.sources import read_revision
from aiops.spec import NAME_PATTERN, FunctionSpec
from aiops.workspace import NotAProject, Workspace, find_root, open_workspace

if TYPE_CHECKING:
    from aiops.checks import EarlierLookup
    from aiops.commands.alerts import (
        AlertsOverview,
        CheckReport,
        RuleView,
        alerts_overview,
        check_alerts,
        condition_text,
        list_alerts,
        run_evaluator,
    )
    from aiops.commands.catalog import (
        Readiness,
        file_states,
        function_log,
        function_logs,
        get_function,
        get_version,
        list_functions,
        list_versions,
        readiness,
    )
    from aiops.commands.execution import (
        RunManyResult,
        RunResult,
        log_by_id,
        logs,
        open_runner,
        run,
        run_many,
        serve_mock,
    )
    from aiops.commands.golden import golden_tests
    from aiops.commands.importer import ImportResult, import_file
    from aiops.commands.monitoring import (
        StatsReport,
        backfill_rollups,
        calls_series,
        compact_rollups,
        stats,
    )
    from aiops.commands.reconcile import (
        ApplyResult,
        Status,
        StatusRow,
        apply,
        file_changes,
        plan,
        resolve_version,
        status,
        upgrade_database,
        watch,
    )
    from aiops.commands.sessions import session_of, sign_in, sign_out
    from aiops.commands.tokens import (
        CreatedToken,
        TokenRefused,
        authenticate,
        create_token,
        list_tokens,
        revoke_token,
        token_page,
    )
    from aiops.commands.writes import (
        WritePreview,
        WriteResult,
        create_function,
        delete_function,
        function_etag,
        function_source,
        preview_function,
        update_function,
    )

_LAZY = {
    **dict.fromkeys(["AlertsOverview", "CheckReport", "RuleView", "alerts_overview",
                     "check_alerts", "condition_text", "list_alerts", "run_evaluator"],
                    "alerts"),
    "golden_tests": "golden",
    **dict.fromkeys(["ImportResult", "import_file"], "importer"),
    **dict.fromkeys(["WritePreview", "WriteResult", "create_function", "delete_function",
                     "function_etag", "function_source", "preview_function", "update_function"],
                    "writes"),
    **dict.fromkeys(["ApplyResult", "Status", "StatusRow", "apply", "file_changes", "plan",
                     "resolve_version", "status", "upgrade_database", "watch"], "reconcile"),
    **dict.fromkeys(["RunManyResult", "RunResult", "log_by_id", "logs", "open_runner", "run",
                     "run_many", "serve_mock"], "execution"),
    **dict.fromkeys(["CreatedToken", "TokenRefused", "authenticate", "create_token",
                     "list_tokens", "revoke_token", "token_page"], "tokens"),
    **dict.fromkeys(["Readiness", "file_states", "function_log", "function_logs", "get_function", "get_version",
                     "list_functions", "list_versions", "readiness"], "catalog"),
    **dict.fromkeys(["StatsReport", "backfill_rollups", "calls_series", "compact_rollups",
                     "stats"],
                    "monitoring"),
    **dict.fromkeys(["enable_metrics", "metrics_page"], "metrics"),
    **dict.fromkeys(["session_of", "sign_in", "sign_out"], "sessions"),
}


def __getattr__(name: str) -> Any:
    """The verbs of the submodules, imported on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value

SCHEMA_DIR = "schemas"


@dataclass(frozen=True, kw_only=True)
class ValidationReport:
    diagnostics: tuple[Diagnostic, ...]
    functions: int
    base: str | None = None

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors


def validate(ws: Workspace, *, base: str | None = None,
             functions: frozenset[str] | None = None) -> ValidationReport:
    """Every check of every file; with `base`, the version rules against that git revision.
    `functions`: the workspace holds only those functions' files (with providers.yaml and
    aiops.yaml), and the base revision is read for them alone (the editor's preview of one
    file, which checks every file of a large project otherwise)."""
    from aiops.checks import compare_with_base

    root, project = ws.root, ws.project
    diags = list(ws.diagnostics)
    if base is not None:
        base_project = load_sources(read_revision(root, base, functions=functions))
        diags += compare_with_base(project, base_project, _git_history_lookup(root, base))
    if root != Path("."):
        diags = [dataclasses.replace(d, file=(root / d.file).as_posix()) for d in diags]
    diags.sort(key=lambda d: (d.file, d.line or 0, d.column or 0))
    count = len(project.functions) + len(project.failed_functions)
    return ValidationReport(diagnostics=tuple(diags), functions=count, base=base)


def _git_history_lookup(root: Path, ref: str) -> EarlierLookup:
    """Find a function's content at an earlier version in the history behind `ref`."""
    from aiops.checks import Versioned, versioned
    from aiops.loader import load_one
    from aiops.sources import git, read_git_blobs

    def earlier(name: str, version: str) -> Versioned | None:
        rel = function_file(name)
        commits = git(root, "log", "--format=%H", ref, "--", rel).decode().split()
        for commit in commits:  # newest first, one at a time: the first match ends it
            [data] = read_git_blobs(root, [f"{commit}:./{rel}"])  # ./: the project's path
            spec, _, _ = load_one(rel, data, FunctionSpec)
            if spec is not None and spec.version == version:
                return versioned(spec)
        return None

    return earlier


# --- schema -------------------------------------------------------------------------------


def format_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schemas of the file formats, generated from the models."""
    from aiops.spec import ProvidersFile

    out = {}
    for key, model, title in (("function", FunctionSpec, "aiops function (aiops/v1)"),
                              ("providers", ProvidersFile, "aiops providers.yaml")):
        schema = model.model_json_schema(by_alias=True, mode="validation")
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                  "$id": f"https://aiops.dev/schemas/{key}.schema.json", "title": title,
                  **{k: v for k, v in schema.items() if k != "title"}}
        out[key] = schema
    return out


def schema_text(kind: str) -> str:
    return json.dumps(format_schemas()[kind], indent=2, sort_keys=True) + "\n"


# --- scaffolding ----------------------------------------------------------------------------

PROVIDERS_TEMPLATE = """\
# yaml-language-server: $schema={schema}
# Providers: credentials by reference (environment variable names, never values),
# provider-wide limits, and prices pinned in git (USD per million tokens).
providers:
  groq:
    type: groq
    api_key_env: GROQ_API_KEY
    timeout_s: 30
    limits: {{rpm: 30, tpm: 6000}}
    models:
      llama-3.1-8b-instant: {{input_per_mtok: 0.05, output_per_mtok: 0.08}}
  openai:
    type: openai
    api_key_env: OPENAI_API_KEY
    timeout_s: 60
    models:
      gpt-4o-mini: {{input_per_mtok: 0.15, cached_input_per_mtok: 0.075, output_per_mtok: 0.60}}
"""

FUNCTION_TEMPLATE = """\
# yaml-language-server: $schema={schema}
apiVersion: aiops/v1
name: {name}
version: 0.1.0
description: {description}
status: draft
provider: {provider}
model: {model}
configuration:
  temperature: 0.2
  max_tokens: 400
prompt:
  - role: system
    content: You are a helpful assistant. Answer with JSON only.
  - role: user
    content: |
      {{{{ text }}}}
input_schema:
  type: object
  required: [text]
  properties:
    text: {{type: string, minLength: 1, maxLength: 20000}}
  additionalProperties: false
output_schema:
  type: object
  required: [answer]
  properties:
    answer: {{type: string}}
  additionalProperties: false
tests:
  - name: smoke
    input: {{text: Hello}}
    expect:
      - schema_valid: true
"""


PROJECT_TEMPLATE = """\
# Project settings (docs/format.md, "aiops.yaml").
# The project's id, recorded as the owner of each function it applies: another project that
# applies a function of the same name to the same database is refused. Keep it when the
# folder moves or is renamed; give a copy that becomes another project an id of its own.
project: {project}
# database_url: postgresql://user@host/db   # default .aiops/aiops.db; AIOPS_DATABASE_URL wins
"""


def new_project_id(root: Path) -> str:
    """A readable id no other project has: the folder's name and six random characters
    (36^6, about two billion, apart for folders of the same name)."""
    import re
    import secrets
    import string

    name = re.sub(r"[^a-z0-9]+", "-", root.resolve().name.lower()).strip("-")
    slug = name[:40].strip("-") or "project"
    return slug + "-" + "".join(secrets.choice(string.ascii_lowercase + string.digits)
                                for _ in range(6))


def _project_id_in(path: Path) -> str | None:
    """The `project` of an existing aiops.yaml (None: no file, no id, or not loadable)."""
    from aiops.loader import load_one
    from aiops.sources import read_project_file
    from aiops.spec import ProjectSettings

    if not path.exists():
        return None
    settings, _, _ = load_one(PROJECT_FILE, read_project_file(path.parent, path.name),
                              ProjectSettings)
    return settings.project if settings is not None else None


EXAMPLE_FUNCTION = "hello"
# In the scaffold's files, the release that writes them: the workflow and the pre-commit hooks
# install exactly it (`aiops-kit==VERSION`, aiops.extras.DISTRIBUTION).
_VERSION_MARK = "@VERSION@"


def _scaffold_text(name: str) -> str:
    from importlib.resources import files

    from aiops import __version__

    text = files("aiops").joinpath(f"scaffold/{name}").read_text(encoding="utf-8")
    return text.replace(_VERSION_MARK, __version__)


def workflow_text() -> str:
    """The CI workflow `aiops init` writes (validate and golden tests on Python 3.11 to 3.13;
    plan and a comment on pull requests; apply on main), installing exactly this release."""
    return _scaffold_text("workflow.yml")


@dataclass(frozen=True, kw_only=True)
class InitResult:
    """What `init_project` did: the files it wrote, those it kept as they were (without
    `force`), and the git repository it made (None when the directory was inside one)."""

    written: tuple[Path, ...]
    kept: tuple[Path, ...]
    git_repository: Path | None
    notes: tuple[str, ...] = ()


def init_project(root: Path, *, force: bool = False) -> InitResult:
    """Scaffold a project: aiops.yaml with a new project id, providers.yaml, an example
    function with its recorded cassette, the CI workflow, pre-commit hooks, .gitignore and the
    format's schemas. An existing file is kept (listed in `kept`) unless `force`, which keeps
    the project id of an existing aiops.yaml. The example function is added only to a project
    without functions. A directory that is not inside a git repository becomes one."""
    root.mkdir(parents=True, exist_ok=True)
    settings = root / PROJECT_FILE
    project_id = _project_id_in(settings) or new_project_id(root)
    files: dict[Path, str] = {
        root / SCHEMA_DIR / f"{kind}.schema.json": schema_text(kind)
        for kind in ("function", "providers")}
    files[root / PROVIDERS_FILE] = PROVIDERS_TEMPLATE.format(
        schema=f"{SCHEMA_DIR}/providers.schema.json")
    files[root / ".github" / "workflows" / "aiops.yml"] = workflow_text()
    files[root / ".pre-commit-config.yaml"] = _scaffold_text("pre-commit-config.yaml")
    files[root / ".gitignore"] = ".aiops/\n"
    files[settings] = PROJECT_TEMPLATE.format(project=project_id)
    notes = []
    example = root / function_file(EXAMPLE_FUNCTION)
    functions = root / FUNCTIONS_DIR
    if example.exists() or not (functions.is_dir() and any(functions.iterdir())):
        files[example] = FUNCTION_TEMPLATE.format(
            schema=schema_reference(root, example.parent), name=EXAMPLE_FUNCTION,
            description=json.dumps("Answer a question briefly."), provider="groq",
            model="llama-3.1-8b-instant")
        files[example.parent / "cassettes" / "groq" / "smoke.yaml"] = _scaffold_text(
            "hello/smoke.cassette.yaml")
    else:
        notes.append(f"no example function: {functions} already holds functions")
    written, kept = [], []
    for path, text in files.items():
        if path.exists() and not force:
            kept.append(path)
        else:
            written.append(_write(path, text))
    gitignore = root / ".gitignore"
    if gitignore in kept and ".aiops" not in gitignore.read_text(encoding="utf-8",
                                                                errors="replace"):
        notes.append(f"add `.aiops/` to {gitignore}: the local database lives there")
    if settings in kept and _project_id_in(settings) is None:
        notes.append(f"{settings} has no `project:` id, so the project's id is derived from "
                     f"its git remote or its folder; add `project: {project_id}` to keep it "
                     "apart from other projects (docs/reconciler.md, \"Project identity\")")
    try:
        repository = _ensure_git_repository(root)
    except FileNotFoundError:
        repository = None
        notes.append("git is not installed: no git repository made (the workflow and "
                     "`aiops validate --base` need one)")
    return InitResult(written=tuple(written), kept=tuple(kept), git_repository=repository,
                      notes=tuple(notes))


def _ensure_git_repository(root: Path) -> Path | None:
    """`git init` (branch main, which the workflow applies from) unless `root` is inside a
    work tree already; the repository made, or None."""
    import subprocess

    from aiops.sources import git

    inside = subprocess.run(["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"],
                            capture_output=True, check=False, timeout=60)
    if inside.returncode == 0:
        return None
    git(root, "init", "-q", "-b", "main")
    return root


def ensure_schemas(root: Path) -> list[Path]:
    """Write the format's JSON Schemas under schemas/ where missing (what modelines point at)."""
    written = []
    for kind in ("function", "providers"):
        path = root / SCHEMA_DIR / f"{kind}.schema.json"
        if not path.exists():
            written.append(_write(path, schema_text(kind)))
    return written


def new_function(ws: Workspace, name: str, *, description: str = "Describe what it does.",
                 provider: str | None = None, model: str | None = None) -> list[Path]:
    """Scaffold functions/<name>/function.yaml that validates against the project (and the
    format's schemas its modeline points at, if the project lacks them); the paths written."""
    import re

    root = ws.root
    if not re.match(NAME_PATTERN, name):
        raise UsageError(f"`{name}` is not a valid function name: lowercase letters, digits "
                         "and dashes, starting with a letter, 2 to 63 characters")
    path = root / function_file(name)
    if path.exists():
        raise UsageError(f"{path} already exists")
    written = ensure_schemas(root)
    return [*written, _write(path, function_template(ws, name, description=description,
                                                     provider=provider, model=model))]


def function_template(ws: Workspace, name: str, *, description: str = "Describe what it does.",
                      provider: str | None = None, model: str | None = None) -> str:
    """The text `aiops new` writes for function `name` (the web UI's new function starts
    from it): the first provider of providers.yaml and a model it serves, unless given."""
    provider, model = _provider_and_model(ws, provider, model)
    schema = schema_reference(ws.root, (ws.root / function_file(name)).parent)
    return FUNCTION_TEMPLATE.format(
        schema=schema, name=name, description=json.dumps(description),
        provider=provider or "openai", model=model or "gpt-4o-mini")


def _provider_and_model(ws: Workspace, provider: str | None,
                        model: str | None) -> tuple[str | None, str | None]:
    """The provider (default: the first of providers.yaml) and a model it serves (default:
    its first priced model). A provider that providers.yaml lacks is a UsageError listing
    those it has. Without a readable providers.yaml nothing can be checked."""
    try:
        providers = ws.providers.providers
    except ConfigError:  # missing or invalid: `aiops validate` says what is wrong with it
        return provider, model
    if not providers:
        return provider, model
    if provider is None:
        provider = next(iter(providers))
    elif provider not in providers:
        raise UsageError(f"unknown provider `{provider}`: {PROVIDERS_FILE} has "
                         f"{', '.join(f'`{p}`' for p in providers)}; pass one of them to "
                         "--provider, or add it to providers.yaml")
    if model is None:
        served = providers[provider].models
        if not served:
            raise UsageError(f"provider `{provider}` lists no models in {PROVIDERS_FILE}; "
                             "pass --model, or add the model with its prices under "
                             f"providers.{provider}.models")
        model = next(iter(served))
    return provider, model


def schema_reference(root: Path, directory: Path) -> str:
    """The modeline's path from a function's directory to the project's function schema
    (`ensure_schemas` writes it)."""
    import os

    return Path(os.path.relpath(root / SCHEMA_DIR / "function.schema.json", directory)).as_posix()


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


__all__ = [  # noqa: RUF022 (grouped by module, as the docstring lists them)
    "NotAProject", "ValidationReport", "Workspace", "ensure_schemas", "find_root",
    "format_schemas", "function_template", "init_project", "new_function", "open_workspace",
    "schema_reference",
    "schema_text", "validate",
    "ApplyResult", "Status", "StatusRow", "apply", "file_changes", "plan", "resolve_version",
    "status", "upgrade_database", "watch",
    "RunManyResult", "RunResult", "log_by_id", "logs", "open_runner", "run", "run_many",
    "serve_mock",
    "golden_tests",
    "ImportResult", "import_file",
    "WritePreview", "WriteResult", "create_function", "delete_function", "function_etag",
    "function_source", "preview_function", "update_function",
    "CreatedToken", "TokenRefused", "authenticate", "create_token", "list_tokens",
    "revoke_token", "token_page",
    "Readiness", "file_states", "function_log", "function_logs", "get_function", "get_version", "list_functions",
    "list_versions", "readiness",
    "StatsReport", "backfill_rollups", "calls_series", "compact_rollups", "stats",
    "AlertsOverview", "CheckReport", "RuleView", "alerts_overview", "check_alerts",
    "condition_text", "list_alerts", "run_evaluator",
    "session_of", "sign_in", "sign_out",
]
