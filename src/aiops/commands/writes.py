"""Writes through git: create, update and delete a function as the commit a person would make,
then reconcile it. The verbs behind POST, PUT and DELETE /api/contributor/ai-functions and the
web UI's editor; git stays the source of truth (DESIGN §9).

    function_etag(ws, name)                         the ETag GET serves and If-Match names
    function_source(ws, name)                       the file at HEAD and its ETag (an editor's)
    create_function(ws, document, author=, mode=)
    update_function(ws, name, document, author=, if_match=, mode=)
    delete_function(ws, name, author=, if_match=, mode=)
    preview_function(ws, name, document)            what a create or update would find and do

A write, in order:
1. `mode` `off` refuses it (WritesDisabled). In `commit` mode everything below happens under
   the reconciler's lock (`Store.writer`), so writes, and applies, queue one behind another.
2. HEAD decides: a create of a function whose file is there is a ConflictError, an update or
   a delete of one that is not there a NotFoundError. An API `caller` must be on the
   function's `access.edit` list at HEAD (PermissionDenied; one it may not view is not
   found). An update names the ETag it replaces (`if_match`, as the header says it): none
   is PreconditionRequired (HTTP 428), another than HEAD's file has is PreconditionFailed
   (412). A delete may name one.
3. The file: a document given as JSON (a mapping) is written as a person would write it
   (`aiops.document`: the format's key order, block style, `|` blocks, the modeline); one
   given as YAML text is kept as its author wrote it, comments included.
4. HEAD's files, with this one changed, are checked exactly as `aiops validate --base HEAD`
   checks them (the same verb). Any error refuses the write (SpecError; each diagnostic of the
   document carries a JSON `pointer` into it); nothing is committed.
5. The commit, made beside the working tree with git's plumbing (`aiops.gitwrite`), author
   the caller, committer the server: `commit` moves the checked-out branch to it, only if
   the function's directory has no uncommitted edits (ConflictError: a write never commits
   an edit in progress); `branch` puts it on a new branch `aiops/<name>-<commit id>` and
   leaves HEAD, the index and the working tree alone (the pull-request path; no apply).
6. `commit` mode applies the committed files, the caller as actor; a delete archives its one
   function (versions and logs stay). An apply that fails after the commit landed is reported
   (`applied=False`, `apply_error`): the commit stays, and the next apply converges on it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aiops import gitwrite
from aiops.access import Caller, listed, may
from aiops.checks import versioned
from aiops.compat import compare
from aiops.document import function_yaml, pointer
from aiops.errors import (
    AiopsError,
    ConflictError,
    Diagnostic,
    NotFoundError,
    PermissionDenied,
    PreconditionFailed,
    PreconditionRequired,
    SpecError,
    UsageError,
    WritesDisabled,
    shown,
)
from aiops.gitwrite import Identity
from aiops.loader import FUNCTION_FILE, FUNCTIONS_DIR, function_file, load_one
from aiops.plan import FunctionChange, Plan
from aiops.sources import read_git_blobs, read_revision
from aiops.spec import NAME_PATTERN, FunctionSpec, Semver
from aiops.workspace import Workspace
from aiops.yamlsrc import MAX_DEPTH, YamlProblem, parse

if TYPE_CHECKING:
    from aiops.store import Store

WriteMode = Literal["commit", "branch", "off"]
WRITE_MODES: tuple[WriteMode, ...] = ("commit", "branch", "off")
Action = Literal["create", "update", "delete"]
# A function document: a mapping (JSON), or the YAML text of its file.
Document = Mapping[str, Any] | str | bytes
# The committer when the repository names no user (git config user.name / user.email).
SERVER = Identity(name="aiops", email="aiops@localhost")
BRANCH_PREFIX = "aiops/"


@dataclass(frozen=True, kw_only=True)
class WriteResult:
    """What a write did. `commit` is the commit made (on `branch` in branch mode). In commit
    mode, `applied` says whether the database now holds it, `plan` is what the apply did (or,
    when it failed, what it would do), `apply_error` why it failed."""

    name: str
    action: Action
    mode: WriteMode
    version: str | None  # the function's version in the file written (deleted: the last one)
    commit: str
    branch: str | None = None
    etag: str | None = None  # the function's ETag at HEAD now (commit mode; None once deleted)
    applied: bool = False
    plan: Plan | None = None
    apply_error: str | None = None
    warnings: tuple[Diagnostic, ...] = ()
    notes: tuple[str, ...] = ()


# --- the ETag -----------------------------------------------------------------------------------


def etag_of(data: bytes) -> str:
    """The strong ETag of a function file's bytes."""
    return f'"{hashlib.sha256(data).hexdigest()}"'


def function_etag(ws: Workspace, name: str, *, revision: str = "HEAD") -> str | None:
    """The ETag of function `name` as the API serves it: a hash of its file's bytes at
    `revision` (HEAD), so that any change to the file (through the API, the UI or a person's
    commit) makes an older one stale. None when the file is not there (or cannot be read)."""
    if not re.fullmatch(NAME_PATTERN, name):
        return None
    found = _file_at(ws.root, revision, name)
    return etag_of(found) if isinstance(found, bytes) else None


def function_source(ws: Workspace, name: str) -> tuple[str, str] | None:
    """Function `name`'s file at HEAD, as its text and its ETag (what an editor opens and
    saves against); None when HEAD has no such file, or one that cannot be read."""
    if not re.fullmatch(NAME_PATTERN, name):
        return None
    found = _file_at(ws.root, "HEAD", name)
    if not isinstance(found, bytes):
        return None
    return found.decode("utf-8", "replace"), etag_of(found)


def _file_at(root: Path, revision: str, name: str) -> bytes | bool:
    """The function's file at `revision`: its bytes; True when it is there but refused (a
    symlink out of the repository, over the size bound); False when it is not there."""
    top = gitwrite.prefix(root)
    [found] = read_git_blobs(root, [f"{revision}:{top}{function_file(name)}"])
    if isinstance(found, bytes):
        return found
    return not found.missing


def _precondition(if_match: str | None, current: str | None, name: str) -> None:
    """If-Match (RFC 9110 §13.1.1, strong comparison): `*` or a list of ETags."""
    if if_match is None:
        raise PreconditionRequired(
            f"changing {name} needs the ETag of the version you read (If-Match); GET the "
            "function and send its ETag, so that a change made since is not overwritten")
    tags = [t.strip() for t in if_match.split(",") if t.strip()]
    if "*" in tags or (current is not None and current in tags):
        return
    raise PreconditionFailed(
        f"{name} changed since you read it (If-Match names another ETag than its file has "
        "now); GET it again, and redo your change on what it holds now")


# --- the verbs ----------------------------------------------------------------------------------


def create_function(ws: Workspace, document: Document, *, author: Identity, mode: WriteMode,
                    caller: Caller | None = None, store: Store | None = None,
                    committer: Identity | None = None,
                    lock_timeout_s: float = 30.0) -> WriteResult:
    """Add a function: functions/<name>/function.yaml, from `document` (its `name` names
    it). A ConflictError when HEAD has that function already."""
    data, value = _file_bytes(ws, document)
    name = _named(data, value)
    return _write(ws, name, "create", data, value, author=author, if_match=None, mode=mode,
                  caller=caller, store=store, committer=committer,
                  lock_timeout_s=lock_timeout_s)


def update_function(ws: Workspace, name: str, document: Document, *, author: Identity,
                    if_match: str | None, mode: WriteMode, caller: Caller | None = None,
                    store: Store | None = None, committer: Identity | None = None,
                    lock_timeout_s: float = 30.0) -> WriteResult:
    """Replace function `name`'s file with `document`, whose `name` must be `name`. A
    NotFoundError when HEAD has no such function; If-Match as the module says."""
    _known_name(name)
    data, value = _file_bytes(ws, document)
    _same_name(name, value)
    return _write(ws, name, "update", data, value, author=author, if_match=if_match, mode=mode,
                  caller=caller, store=store, committer=committer,
                  lock_timeout_s=lock_timeout_s)


def delete_function(ws: Workspace, name: str, *, author: Identity, if_match: str | None = None,
                    mode: WriteMode, caller: Caller | None = None, store: Store | None = None,
                    committer: Identity | None = None,
                    lock_timeout_s: float = 30.0) -> WriteResult:
    """Remove function `name`'s directory (its file and cassettes) and, in commit mode,
    archive it: the prune of this one function; its versions and logs stay. A NotFoundError
    when HEAD has no such function; an `if_match` given must be its ETag."""
    _known_name(name)
    return _write(ws, name, "delete", None, None, author=author, if_match=if_match, mode=mode,
                  caller=caller, store=store, committer=committer,
                  lock_timeout_s=lock_timeout_s)


def _known_name(name: str) -> None:
    if not re.fullmatch(NAME_PATTERN, name):
        raise NotFoundError(f"no function {shown(name)}: a function's name is lowercase "
                            "letters, digits and dashes, starting with a letter")


def _named(data: bytes, value: Any) -> str:
    """The name a new function's document gives itself; a SpecError when it names none."""
    name = value.get("name") if isinstance(value, dict) else None
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
        _, _, diags = load_one(function_file("new"), data, FunctionSpec)
        errors = [_pointed(d, value) for d in diags if d.is_error] or [Diagnostic(
            file=function_file("new"), path="name", pointer="/name", code="name",
            message="the document names no valid function (`name`)",
            fix="set `name:` to lowercase letters, digits and dashes, starting with a letter")]
        raise SpecError(errors)
    return name


def _same_name(name: str, value: Any) -> None:
    """A document that replaces function `name` is named `name` (or names nothing: the
    checks say so at its place)."""
    named = value.get("name", name) if isinstance(value, dict) else name
    if named != name:
        raise SpecError([Diagnostic(
            file=function_file(name), path="name", pointer="/name", code="name-mismatch",
            message=f"the document is named {shown(named)}, not {shown(name)}, the function "
                    "it would replace", fix=f"set `name: {name}` (to rename a function, create "
                    "it under the new name and delete the old one)")])


# --- the preview --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WritePreview:
    """What saving a document would do, nothing written (the web UI's editor asks it as its
    author types). `diagnostics`: the document's, errors and warnings, as the write would
    find them (`aiops validate --base HEAD`, with lines and columns in its text), checked
    with providers.yaml and aiops.yaml but without the other functions' files (a preview of
    one file stays quick in a project of a thousand); `elsewhere`: errors in those two
    files, which refuse the write too (as would an error in another function's file at
    HEAD, which the write alone reads). Against HEAD's file (an update):
    whether the behaviour changed, so that the version must be bumped, whether it was, and
    the changes that break callers, so that the major version must be bumped. `change`: what
    applying it would do to the database (`aiops plan`, this function's part; None without a
    database or while the document is in error); `plan_errors` why that plan cannot apply."""

    name: str | None
    action: Action
    ok: bool
    diagnostics: tuple[Diagnostic, ...] = ()
    elsewhere: tuple[Diagnostic, ...] = ()
    version: str | None = None
    base_version: str | None = None
    behaviour_changed: bool = False
    version_bumped: bool = False
    breaking: tuple[str, ...] = ()
    major_bumped: bool = False
    change: FunctionChange | None = None
    plan_errors: tuple[str, ...] = ()


def preview_function(ws: Workspace, name: str | None, document: Document, *,
                     caller: Caller | None = None, store: Store | None = None) -> WritePreview:
    """What `create_function` (`name` None) or `update_function` of `document` would find and
    do, as data: the same checks, refusing the same callers (NotFoundError, ConflictError,
    PermissionDenied), with the document's problems returned instead of raised."""
    action: Action = "create" if name is None else "update"
    data, value = _file_bytes(ws, document)
    try:
        if name is None:
            name = _named(data, value)
        else:
            _known_name(name)
            _same_name(name, value)
    except SpecError as exc:
        return WritePreview(name=name, action=action, ok=False, diagnostics=exc.diagnostics)
    parent = gitwrite.head(ws.root)
    rel = function_file(name)
    before = _before(ws.root, parent, name, action, caller)
    committed = _after(ws, parent, name, data, [], only=frozenset({name}))
    ok, diags = _diagnosed(committed, parent, rel, value, only=frozenset({name}))
    mine = tuple(d for d in diags if d.file == rel)
    found = WritePreview(name=name, action=action, ok=ok, diagnostics=mine,
                         elsewhere=tuple(d for d in diags if d.file != rel and d.is_error),
                         version=_version_of(data))
    lf = committed.project.functions.get(name)
    old = load_one(rel, before, FunctionSpec)[0] if isinstance(before, bytes) else None
    if lf is not None and old is not None:
        new_v, old_v = versioned(lf.spec), versioned(old)
        found = replace(found, base_version=old.version,
                        behaviour_changed=new_v.behaviour_hash != old_v.behaviour_hash,
                        version_bumped=lf.spec.version != old.version,
                        breaking=compare(old_v, new_v).breaks,
                        major_bumped=Semver(lf.spec.version).is_major_bump_over(
                            Semver(old.version)))
    if ok and store is not None:
        from aiops.commands.reconcile import plan

        planned = plan(committed, store=store, functions=frozenset({name}))
        found = replace(found, change=next((c for c in planned.changes if c.name == name), None),
                        plan_errors=planned.errors)
    return found


# --- one write ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Landed:
    """A commit made and placed (the branch moved, or a new branch made)."""

    commit: str
    branch: str | None
    workspace: Workspace  # the project as the commit holds it
    version: str | None
    warnings: tuple[Diagnostic, ...]
    notes: tuple[str, ...]


def _write(ws: Workspace, name: str, action: Action, data: bytes | None, value: Any, *,
           author: Identity, if_match: str | None, mode: WriteMode, caller: Caller | None,
           store: Store | None, committer: Identity | None,
           lock_timeout_s: float) -> WriteResult:
    if mode == "off":
        raise WritesDisabled("writes are turned off on this server (`--writes off`): change "
                             "the function in git, through a pull request")
    if mode not in WRITE_MODES:
        raise UsageError(f"writes mode {shown(mode)} is not one of commit, branch or off")
    who = committer or gitwrite.config_identity(ws.root, SERVER)

    def land() -> _Landed:
        return _land(ws, name, action, data, value, author=author, committer=who,
                     if_match=if_match, caller=caller, on_branch=mode == "branch")

    if mode == "branch":
        landed = land()
        return _result(name, action, mode, landed)
    from aiops.commands.reconcile import apply_locked  # the database's libraries: here only

    st = store or ws.open_store(lock_timeout_s=lock_timeout_s)
    landed_in_lock: _Landed | None = None
    try:
        with st.writer(lock_timeout_s) as w:
            landed_in_lock = land()
            applied = apply_locked(w, landed_in_lock.workspace, actor=str(author),
                                   commit=landed_in_lock.commit,
                                   prune_only=frozenset({name}) if action == "delete" else None)
    except AiopsError as exc:
        if landed_in_lock is None:  # refused before the commit: nothing was written
            raise
        return _result(name, action, mode, landed_in_lock, data=data, applied=False,
                       plan=_plan_after_failure(landed_in_lock.workspace, st),
                       apply_error=str(exc))
    return _result(name, action, mode, landed_in_lock, data=data, applied=True,
                   plan=applied.plan)


def _result(name: str, action: Action, mode: WriteMode, landed: _Landed, *,
            data: bytes | None = None, applied: bool = False, plan: Plan | None = None,
            apply_error: str | None = None) -> WriteResult:
    return WriteResult(name=name, action=action, mode=mode, version=landed.version,
                       commit=landed.commit, branch=landed.branch,
                       etag=etag_of(data) if data is not None and mode == "commit" else None,
                       applied=applied, plan=plan, apply_error=apply_error,
                       warnings=landed.warnings, notes=landed.notes)


def _plan_after_failure(ws: Workspace, st: Store) -> Plan | None:
    """What applying the commit would do, to report beside the failure (None when the
    database cannot say either)."""
    from aiops.commands.reconcile import plan

    try:
        return plan(ws, store=st)
    except AiopsError:
        return None


def _land(ws: Workspace, name: str, action: Action, data: bytes | None, value: Any, *,
          author: Identity, committer: Identity, if_match: str | None, caller: Caller | None,
          on_branch: bool) -> _Landed:
    """Check the write against HEAD, commit it and place the commit; raise, having written
    nothing, when it is refused."""
    root = ws.root
    parent = gitwrite.head(root)
    rel = function_file(name)
    directory = f"{FUNCTIONS_DIR}/{name}"
    before = _before(root, parent, name, action, caller)
    if action == "update" or if_match is not None:
        _precondition(if_match, etag_of(before) if isinstance(before, bytes) else None, name)
    if not on_branch:
        edited = gitwrite.changed_paths(root, directory)
        if edited:
            raise ConflictError(
                f"{directory}/ has uncommitted changes ({', '.join(edited[:5])}); commit or "
                "discard them, then write again: a write never commits an edit in progress")
    removed = gitwrite.files_under(root, parent, directory) if data is None else []
    committed = _after(ws, parent, name, data, removed)
    warnings = _validated(committed, parent, rel, value)
    version = _version_of(data if data is not None else before)
    commit = gitwrite.make_commit(root, parent=parent, put={rel: data} if data is not None else {},
                                  remove=removed, message=_message(action, name, version),
                                  author=author, committer=committer)
    notes: tuple[str, ...] = ()
    if on_branch:
        branch = f"{BRANCH_PREFIX}{name}-{commit[:10]}"
        gitwrite.new_branch(root, branch, commit)
        return _Landed(commit=commit, branch=branch, workspace=committed, version=version,
                       warnings=warnings, notes=notes)
    left = gitwrite.advance(root, commit, parent, reason=f"aiops: {action} {name}")
    if left:
        notes = (f"the commit landed, but the working tree was not brought along ({left}); "
                 f"run `git checkout HEAD -- {directory}` in {root}",)
    return _Landed(commit=commit, branch=None, workspace=committed, version=version,
                   warnings=warnings, notes=notes)


def _before(root: Path, parent: str, name: str, action: Action,
            caller: Caller | None) -> bytes | bool:
    """The function's file at `parent`, once the write is known to be possible: a create of
    a function that is there, or a change of one that is not, is refused, and so is a
    change by a caller its `access` lists leave out."""
    rel = function_file(name)
    before = _file_at(root, parent, name)
    if action == "create" and before:
        raise ConflictError(f"function {name} exists already ({rel} at HEAD); change it with "
                            "an update, or choose another name")
    if action != "create" and not before:
        raise NotFoundError(f"no function {name}: HEAD has no {rel}")
    if action != "create" and caller is not None:
        _may_change(caller, name, rel, before)
    return before


def _after(ws: Workspace, parent: str, name: str, data: bytes | None,
           removed: list[str], *, only: frozenset[str] | None = None) -> Workspace:
    """The project as `parent` holds it with the function's file written (`data`) or its
    directory's files `removed`; `only` those functions' files, with the project's."""
    files = read_revision(ws.root, parent, functions=only)
    if data is None:
        for path in removed:
            files.pop(path, None)
    else:
        files[function_file(name)] = data
    return ws.with_files(files)


def _may_change(caller: Caller, name: str, rel: str, before: bytes | bool) -> None:
    """The function's `access` lists at HEAD let `caller` change it: one it may not view is,
    to it, no function (NotFoundError); one it may view but not edit, PermissionDenied. A
    file that does not load has no lists to read: only an admin changes it."""
    spec = load_one(rel, before, FunctionSpec)[0] if isinstance(before, bytes) else None
    if spec is None:
        if not caller.is_admin:
            raise PermissionDenied(f"{rel} does not load at HEAD, so its access lists cannot be "
                                   f"read; only an admin token may change {name} until it is "
                                   "fixed in git")
        return
    access = spec.access.model_dump(mode="json")
    if not may(caller, "view", access):
        raise NotFoundError(f"no function {shown(name)}: no function has that name, or your "
                            "token may not view it")
    if not may(caller, "edit", access):
        raise PermissionDenied(f"your token may not change {name}: its `access.edit` list "
                               f"({', '.join(listed(access, 'edit'))}) names none of the "
                               "token's groups")


def _validated(committed: Workspace, base: str, rel: str, value: Any) -> tuple[Diagnostic, ...]:
    """`aiops validate --base` of the files to commit; a SpecError when any is in error
    (in any file: the commit would not apply), else the document's warnings."""
    ok, diags = _diagnosed(committed, base, rel, value)
    if not ok:
        raise SpecError(diags)
    return tuple(d for d in diags if d.file == rel)


def _diagnosed(committed: Workspace, base: str, rel: str, value: Any, *,
               only: frozenset[str] | None = None) -> tuple[bool, list[Diagnostic]]:
    """`aiops validate --base` of the files to commit: whether none is in error, and every
    diagnostic, its file relative to the project. The document's carry a JSON pointer into
    it (and their line and column in its text)."""
    from aiops.commands import validate

    report = validate(committed, base=base, functions=only)
    shown_root = "" if committed.root == Path(".") else committed.root.as_posix() + "/"
    diags = []
    for d in report.diagnostics:
        d = replace(d, file=d.file.removeprefix(shown_root))
        diags.append(_pointed(d, value) if d.file == rel else d)
    return report.ok, diags


def _pointed(d: Diagnostic, value: Any) -> Diagnostic:
    return replace(d, pointer=pointer(value, d.path))


def _version_of(data: bytes | bool) -> str | None:
    if not isinstance(data, bytes):
        return None
    try:
        version = parse(data)[0].get("version")
    except YamlProblem:
        return None
    return version if isinstance(version, str) else None


def _message(action: Action, name: str, version: str | None) -> str:
    at = f" {version}" if version else ""
    subject = {"create": f"Create {name}{at}", "update": f"Update {name}{at}",
               "delete": f"Delete {name}"}[action]
    return f"{subject}\n\nWritten through aiops.\n"


# --- the document -------------------------------------------------------------------------------


def _file_bytes(ws: Workspace, document: Document) -> tuple[bytes, Any]:
    """The file to commit and the document's value (what pointers point into; None when
    YAML text does not parse: its diagnostics have lines)."""
    if isinstance(document, str | bytes):
        data = document.encode() if isinstance(document, str) else document
        try:
            return data, parse(data)[0]
        except YamlProblem:
            return data, None
    value = _json_value(document, "")
    directory = ws.root / FUNCTIONS_DIR / "name"  # every function's is two levels down
    from aiops.commands import schema_reference

    return function_yaml(value, schema=schema_reference(ws.root, directory)).encode(), value


def _json_value(value: Any, at: str, depth: int = 0) -> Any:
    """`value` as plain JSON data (tuples as lists); a UsageError at anything else, and a
    SpecError past the loader's nesting bound (before anything recurses that deep)."""
    if isinstance(value, Mapping | list | tuple) and depth >= MAX_DEPTH:
        raise SpecError([Diagnostic(
            file=FUNCTION_FILE, pointer=at, code="depth",
            message=f"the document nests deeper than {MAX_DEPTH} levels",
            fix="flatten it: a function file nests a few levels, a schema a dozen")])
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise UsageError(f"the document's key {shown(k)} at {at or '/'} is not text")
            step = k.replace("~", "~0").replace("/", "~1")
            out[k] = _json_value(v, f"{at}/{step}", depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_json_value(v, f"{at}/{i}", depth + 1) for i, v in enumerate(value)]
    if value is None or isinstance(value, str | bool | int | float):
        return value  # a float that is not finite is refused at its place by the loader
    raise UsageError(f"the document's value at {at or '/'} is not JSON data "
                     f"({type(value).__name__})")


__all__ = ["BRANCH_PREFIX", "SERVER", "WRITE_MODES", "Document", "Identity", "WriteMode",
           "WritePreview", "WriteResult", "create_function", "delete_function", "etag_of",
           "function_etag", "function_source", "preview_function", "update_function"]
