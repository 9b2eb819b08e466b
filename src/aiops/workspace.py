"""The project a command works on: where it is, what its settings say, which database and
which providers it uses. One answer to each, for every verb.

A `Workspace` is opened once per command (or API request) with `open_workspace(start)`. It
finds the project as git finds a repository: from `start` (the current directory, or -C DIR)
up to the nearest directory that holds `functions/`, `providers.yaml` or `aiops.yaml`, never
above the top of the git repository it is in. Outside a project it raises `NotAProject` and
creates nothing.

Everything else is read when first asked for, and once: `aiops run` reads aiops.yaml and
providers.yaml, never the function files; `aiops validate` opens no database.

    the database   --database-url > AIOPS_DATABASE_URL > aiops.yaml `database_url`
                   > .aiops/aiops.db in the project (created on first use)
    the project id AIOPS_PROJECT > aiops.yaml `project` > derived from the git remote and
                   the project's folder in it, else the folder's path (`ProjectIdentity`)
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from aiops.collector import gc_paused
from aiops.errors import ConfigError, Diagnostic, UsageError
from aiops.files import FileRefused
from aiops.loader import (
    FUNCTIONS_DIR,
    PROJECT_FILE,
    PROVIDERS_FILE,
    Project,
    Source,
    load_one,
    load_sources,
)
from aiops.sources import git, read_project_file, read_tree
from aiops.spec import PROJECT_ID_CHARS, ProjectSettings, ProvidersFile

if TYPE_CHECKING:
    from aiops.store import Store

ENV_URL = "AIOPS_DATABASE_URL"
PROJECT_ENV = "AIOPS_PROJECT"
STATE_DIR = ".aiops"
DEFAULT_DB = "aiops.db"
PENDING_LOGS = "pending-logs"  # log rows the database did not take, until a command writes them


class NotAProject(ConfigError):
    """No project at or above the directory a command was given (exit 1)."""

    def __init__(self, start: Path) -> None:
        super().__init__(f"not an aiops project: no {FUNCTIONS_DIR}/, {PROVIDERS_FILE} or "
                         f"{PROJECT_FILE} here or above ({start.absolute()}); run `aiops "
                         "init` to make one, or pass -C DIR")


def find_root(start: Path) -> Path | None:
    """The nearest directory at or above `start` that holds a project (functions/,
    providers.yaml or aiops.yaml), not above the top of the git repository `start` is in;
    None when there is none. Relative when `start` is (relative to the current directory)."""
    here = start.resolve()
    for directory in (here, *here.parents):
        if _holds_project(directory):
            if directory == here:
                return start
            return directory if start.is_absolute() else Path(os.path.relpath(directory))
        if (directory / ".git").exists():  # the repository's top: what is above is not ours
            return None
    return None


def _holds_project(directory: Path) -> bool:
    return ((directory / FUNCTIONS_DIR).is_dir()
            or any(os.path.lexists(directory / name) for name in (PROVIDERS_FILE, PROJECT_FILE)))


def open_workspace(start: Path = Path("."), *, database_url: str | None = None,
                   environ: Mapping[str, str] | None = None) -> Workspace:
    """The project at or above `start`; `database_url` (a --database-url option) wins over
    every other answer. NotAProject outside a project; nothing is read or created yet."""
    if not start.exists():
        raise UsageError(f"project directory {start} does not exist")
    if not start.is_dir():
        raise UsageError(f"{start} is not a directory; pass the project directory")
    root = find_root(start)
    if root is None:
        raise NotAProject(start)
    return Workspace(root=root, database_override=database_url,
                     environ=os.environ if environ is None else environ)


@dataclass(frozen=True, kw_only=True)
class Workspace:
    """One project, as a command sees it; every answer is computed on first use, once."""

    root: Path
    database_override: str | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)

    def reopened(self) -> Workspace:
        """The same project with nothing read yet: what `aiops watch` uses for each pass."""
        return replace(self)

    def with_files(self, files: Mapping[str, Source]) -> Workspace:
        """The same project, its spec files as given (`aiops.sources.read_revision`, maybe
        with a file changed) instead of the working tree's: what a write through git checks
        and applies. Settings come from those files too."""
        ws = replace(self)
        ws.__dict__["project"] = load_sources(files)  # the cached answer, given in advance
        return ws

    # -- the files ------------------------------------------------------------------------

    @cached_property
    def project(self) -> Project:
        """Every spec file, loaded, with the loader's diagnostics."""
        return load_sources(read_tree(self.root))

    @cached_property
    def diagnostics(self) -> list[Diagnostic]:
        """The loader's diagnostics and the cross-checks of `aiops validate`."""
        from aiops.checks import check_project

        with gc_paused():
            return [*self.project.diagnostics, *check_project(self.project)]

    @cached_property
    def settings(self) -> ProjectSettings:
        """aiops.yaml (the defaults without one); read alone unless the project is loaded.
        A file that does not load is a ConfigError: it may name another database."""
        if "project" in self.__dict__:
            if any(d.is_error and d.file == PROJECT_FILE for d in self.project.diagnostics):
                raise _does_not_load(PROJECT_FILE, self.project.diagnostics)
            return self.project.settings
        if not os.path.lexists(self.root / PROJECT_FILE):
            return ProjectSettings()
        settings, _, diags = load_one(PROJECT_FILE, read_project_file(self.root, PROJECT_FILE),
                                      ProjectSettings)
        if settings is None:
            raise _does_not_load(PROJECT_FILE, diags)
        return settings

    @cached_property
    def providers(self) -> ProvidersFile:
        """providers.yaml, read alone; a ConfigError that says what is wrong with it."""
        data = read_project_file(self.root, PROVIDERS_FILE)
        if isinstance(data, FileRefused) and data.missing:
            raise ConfigError(f"{self.root / PROVIDERS_FILE} does not exist; the runner needs "
                              "the project's providers (run `aiops init`, or create it)")
        providers, _, diags = load_one(PROVIDERS_FILE, data, ProvidersFile)
        if providers is None:
            raise _does_not_load(PROVIDERS_FILE, diags)
        return providers

    # -- the database ---------------------------------------------------------------------

    @cached_property
    def database_url(self) -> str:
        """--database-url, else AIOPS_DATABASE_URL, else aiops.yaml's `database_url` (a
        relative SQLite path is the project's), else the project's .aiops/aiops.db."""
        # Stripped: a secret pasted with its trailing newline names another database.
        for given in (self.database_override, self.environ.get(ENV_URL)):
            if (given or "").strip():
                return (given or "").strip()
        configured = (self.settings.database_url or "").strip()
        if configured:
            return _anchor_sqlite(configured, self.root.resolve())
        return f"sqlite:///{self.state_dir.resolve() / DEFAULT_DB}"

    @property
    def state_dir(self) -> Path:
        """`.aiops/` in the project: the default database, log rows waiting to be written."""
        return self.root / STATE_DIR

    @property
    def pending_logs(self) -> Path:
        """Where log rows wait that the database did not take (aiops.store.logrows.Spool)."""
        return self.state_dir / PENDING_LOGS

    def open_store(self, *, migrate: bool | None = None, lock_timeout_s: float = 30.0) -> Store:
        """The project's database (the default SQLite file and its directory are created on
        first use)."""
        from aiops.store import open_store

        url = self.database_url
        if url == f"sqlite:///{self.state_dir.resolve() / DEFAULT_DB}":
            try:
                self.state_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot create {self.state_dir} for the default SQLite "
                                  f"database ({exc.strerror or exc}); make it writable, or set "
                                  f"{ENV_URL} (or `database_url` in {PROJECT_FILE})") from None
        return open_store(url, migrate=migrate, lock_timeout_s=lock_timeout_s,
                          patience_s=self.settings.log_patience_s,
                          pending_logs=self.pending_logs)

    def close(self) -> None:
        """Close the pooled connections of the project's database, if any were opened (a
        process about to end: the CLI's `aiops run` before it skips the teardown that would
        close them)."""
        import sys

        if "aiops.store.engine" in sys.modules and "database_url" in self.__dict__:
            from aiops.store.engine import dispose_engines

            dispose_engines(self.database_url)

    # -- who owns what ----------------------------------------------------------------------

    @cached_property
    def identity(self) -> ProjectIdentity:
        """Who owns what this project applies: AIOPS_PROJECT, else aiops.yaml's `project`,
        else an id derived from the git remote or the folder (`ProjectIdentity`)."""
        derived, source, former = _derived_id(self.root)
        for given, named in ((self.environ.get(PROJECT_ENV), PROJECT_ENV),
                             (self.settings.project, f"`project` in {PROJECT_FILE}")):
            if given:
                earlier = {derived: f"the id derived from {source} without one", **former}
                return ProjectIdentity(id=given, source=named, former={
                    k: v for k, v in earlier.items() if k != given})
        return ProjectIdentity(id=derived, source=source, former=former)

    @property
    def project_id(self) -> str:
        return self.identity.id


@dataclass(frozen=True, kw_only=True)
class ProjectIdentity:
    """The project's id, recorded as the owner of each function it applies (`managed_by`).

    Explicit: AIOPS_PROJECT, else `project:` in aiops.yaml (which `aiops init` writes).
    Derived, for a project without one: the git remote `origin` (credentials stripped) and
    the project's folder inside the repository, so that clones on laptops and in CI are one
    project and two repositories never are; without a remote, the folder's absolute path,
    which two folders never share (the bare folder name did: a copy or a namesake took over
    another project's functions).

    `former`: the ids this project went by before (id -> where it came from): what earlier
    releases derived (the remote alone, or the folder's name) and, with an explicit id, the
    derived one. Functions recorded under a former id are the project's own: apply records
    its id on them (a database of an earlier release, or from before `project:` was set,
    keeps working).
    """

    id: str
    source: str  # where `id` comes from, for messages
    former: Mapping[str, str] = field(default_factory=dict)


def _derived_id(root: Path) -> tuple[str, str, dict[str, str]]:
    """The id derived for the project at `root`, what from, and the id earlier releases
    derived (when it differs) -> what from."""
    remote = git_fact(root, "remote", "get-url", "origin")
    if remote:
        remote = re.sub(r"^[a-z+]+://", "", remote)
        remote = remote.rsplit("@", 1)[-1]  # never keep credentials
        base = _bounded_id(remote.replace(":", "/").removesuffix(".git").rstrip("/"))
        inside = (git_fact(root, "rev-parse", "--show-prefix") or "").rstrip("/")
        if not inside:
            return base, "the git remote", {}
        return (_bounded_id(f"{base}/{inside}"), "the git remote and the project's folder",
                {base: "the git remote alone, the id earlier aiops releases derived"})
    here = root.resolve()
    return (_bounded_id(str(here)), "the folder's path",
            {here.name: "the folder's name, the id earlier aiops releases derived"})


def _bounded_id(text: str) -> str:
    """`text` within the id columns' PROJECT_ID_CHARS (a long path keeps its end, after a
    digest of the whole, so that two long paths stay apart)."""
    if len(text) <= PROJECT_ID_CHARS:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{digest}...{text[-(PROJECT_ID_CHARS - len(digest) - 3):]}"


def git_fact(root: Path, *args: str) -> str | None:
    """An optional fact from git (remote, commit, author): None outside a repository."""
    try:
        out = git(root, *args).decode(errors="replace").strip()
    except UsageError:
        return None
    return out or None


def _does_not_load(file: str, diags: tuple[Diagnostic, ...] | list[Diagnostic]) -> ConfigError:
    return ConfigError(f"{file} does not load:\n" + "\n".join(
        d.render() for d in diags if d.is_error and d.file == file))


def _anchor_sqlite(url: str, root: Path) -> str:
    """A relative SQLite path in aiops.yaml is relative to the project, not to the cwd."""
    m = re.fullmatch(r"(sqlite(?:\+\w+)?:///)([^?]*)(\?.*)?", url, flags=re.DOTALL)
    if m is None or not m[2] or m[2].startswith("/") or m[2] == ":memory:":
        return url
    return f"{m[1]}{root / m[2]}{m[3] or ''}"
