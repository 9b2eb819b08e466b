"""The reconciler's pure core: (specs, deployed state) -> Plan, as frozen data.

`diff()` performs no I/O: the store reads the deployed state into the `Stored*` records
below, the loader produces the specs, and this module decides what would change and why.
`aiops plan` renders a Plan (render_plan.py); `aiops apply` executes it (apply.py). A Plan
carries everything apply needs (the desired contents) and the token of the state it was
computed against, so a saved plan is applied exactly as reviewed, or refused when stale.

Actions per function: create, new_version, rollback (the current pointer moves to an existing
version with the same content), update_metadata, archive (with prune), noop. Drift findings
are apart: a version row whose content no longer matches its hash, a current pointer that
git did not set, a function row whose metadata no longer matches its hash, a managed
function missing from the database. Apply restores what git says.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Literal

from aiops.errors import shown
from aiops.fingerprint import (
    BEHAVIOUR_FIELDS,
    METADATA_FIELDS,
    behaviour_content,
    content_hash,
    metadata_content,
    sha256_hex,
)
from aiops.spec import FunctionSpec, Semver

FORMAT_VERSION = 1

Action = Literal["create", "new_version", "rollback", "update_metadata", "archive", "noop"]
DriftKind = Literal["version_content", "pointer", "metadata", "missing"]
ACTIONS: tuple[Action, ...] = ("create", "new_version", "rollback", "update_metadata",
                               "archive", "noop")
DRIFT_KINDS: tuple[DriftKind, ...] = ("version_content", "pointer", "metadata", "missing")

# --- deployed state (what the store reads) -------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StoredVersion:
    id: str
    version: str
    behaviour_hash: str
    content: dict[str, Any]
    copies_intact: bool = True  # the columns that copy parts of `content` still agree with it
    git_commit: str | None = None
    created_at: str | None = None

    @cached_property
    def intact(self) -> bool:
        """Whether the row still holds the content its hash names (no edit behind our back)."""
        return self.copies_intact and content_hash(self.content) == self.behaviour_hash


@dataclass(frozen=True, kw_only=True)
class StoredFunction:
    id: str
    name: str
    status: str
    metadata: dict[str, Any]  # the metadata_content fields as stored on the row
    metadata_hash: str
    current_version_id: str | None
    reconciled_version_id: str | None  # the pointer the reconciler last set
    managed_by: str | None
    applied_at: str | None = None
    applied_commit: str | None = None
    versions: tuple[StoredVersion, ...] = ()
    # The row's version, schemas and provider still copy its current version's (DESIGN §5).
    copies_intact: bool = True

    def version_by_id(self, vid: str | None) -> StoredVersion | None:
        return next((v for v in self.versions if v.id == vid), None)

    def version_named(self, version: str) -> StoredVersion | None:
        return next((v for v in self.versions if v.version == version), None)

    @property
    def current(self) -> StoredVersion | None:
        return self.version_by_id(self.current_version_id)

    @cached_property
    def metadata_intact(self) -> bool:
        """Whether the row holds the metadata aiops last wrote (an archive included: its hash
        is that of the archived row)."""
        return content_hash(self.metadata) == self.metadata_hash

    @property
    def archived_metadata_hash(self) -> str:
        """The metadata hash of this row once archived (what an archive writes)."""
        return content_hash({**self.metadata, "status": "archived"})

    def pointer_moved_from(self) -> StoredVersion | None:
        """The version aiops last pointed at, when the current pointer was moved since by
        SQL; None when it is where aiops left it.

        aiops sets `reconciled_version_id` with `current_version_id`, so a pointer moved by
        hand differs from it. When both were moved, the apply that created a version wrote
        its `created_at` and the function's `applied_at` with one clock reading, and pointed
        both at that version: a version whose `created_at` is the last `applied_at` and
        that is not the reconciled one tells that they were moved since.
        """
        if self.current_version_id != self.reconciled_version_id:
            return self.version_by_id(self.reconciled_version_id)
        last = next((v for v in self.versions
                     if self.applied_at is not None and v.created_at == self.applied_at), None)
        if last is not None and last.id != self.reconciled_version_id:
            return last
        return None


@dataclass(frozen=True, kw_only=True)
class DeployedState:
    functions: Mapping[str, StoredFunction]
    managed: frozenset[str] = frozenset()  # names this project has applied (ownership ledger)

    @property
    def token(self) -> str:
        """A digest of everything a plan depends on: a plan made against another is stale."""
        rows = []
        for name in sorted(self.functions):
            f = self.functions[name]
            rows.append([name, f.id, f.status, f.metadata_hash, f.metadata_intact,
                         f.copies_intact, f.current_version_id, f.reconciled_version_id, f.managed_by,
                         sorted([v.id, v.version, v.behaviour_hash, v.intact]
                                for v in f.versions)])
        return sha256_hex(json.dumps([rows, sorted(self.managed)], sort_keys=True))[:32]


EMPTY_STATE = DeployedState(functions={})

# --- the plan ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Desired:
    """What git says a function should be: enough for apply to write it without the files."""

    version: str
    behaviour_hash: str
    metadata_hash: str
    content: dict[str, Any]  # fingerprint.behaviour_content
    metadata: dict[str, Any]  # fingerprint.metadata_content


@dataclass(frozen=True, kw_only=True)
class FieldDiff:
    """One changed field for display: a unified line diff (text) or a path diff (paths)."""

    field: str
    kind: Literal["text", "paths"]
    lines: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class FunctionChange:
    name: str
    action: Action
    reason: str
    from_version: str | None = None
    to_version: str | None = None
    metadata_changed: bool = False  # also rewrite the function row's metadata
    adopt: bool = False  # record this project as the owner
    target_version_id: str | None = None  # rollback: the existing version row
    desired: Desired | None = None
    diffs: tuple[FieldDiff, ...] = ()
    breaking: tuple[str, ...] = ()
    conflict: bool = False  # the version is applied with other content (see Plan.errors)


@dataclass(frozen=True, kw_only=True)
class DriftFinding:
    name: str
    kind: DriftKind
    message: str
    restorable: bool
    version: str | None = None  # version_content: which row
    version_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class Plan:
    project: str
    state_token: str
    changes: tuple[FunctionChange, ...]
    drift: tuple[DriftFinding, ...] = ()
    errors: tuple[str, ...] = ()  # the plan cannot be applied while any is present
    notes: tuple[str, ...] = ()
    prune: bool = False
    adopt: bool = False  # made with --adopt: takes over other projects' functions
    state_summary: dict[str, Any] = field(default_factory=dict)  # name -> version/status
    format_version: int = FORMAT_VERSION

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {a: 0 for a in ACTIONS}
        for c in self.changes:
            out[c.action] += 1
        out["drift"] = sum(1 for d in self.drift if d.restorable)
        return out

    @property
    def has_changes(self) -> bool:
        return any(c.action != "noop" for c in self.changes) or any(
            d.restorable for d in self.drift)

    def verdict(self) -> str:
        if self.errors:
            return f"Plan failed: {len(self.errors)} error(s)."
        if not self.has_changes:
            return "No changes."
        n = self.counts()
        parts = []
        for key, one, many in (("create", "to create", "to create"),
                               ("new_version", "new version", "new versions"),
                               ("rollback", "rollback", "rollbacks"),
                               ("update_metadata", "metadata update", "metadata updates"),
                               ("archive", "to archive", "to archive"),
                               ("drift", "drift to restore", "drifts to restore")):
            if n[key]:
                parts.append(f"{n[key]} {one if n[key] == 1 else many}")
        return "Plan: " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict()
        data["counts"] = self.counts()
        data["has_changes"] = self.has_changes
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        """Read a saved plan (`aiops plan -o`); raises ValueError when it is not one."""
        if not isinstance(data, Mapping):
            raise ValueError("not a JSON object")
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"plan format_version {shown(data.get('format_version'))} is "
                             f"not {FORMAT_VERSION}")
        entries = [*data["changes"], *data.get("drift", ())]
        if not all(isinstance(e, Mapping) for e in entries):
            raise ValueError("a change or a drift finding is not a JSON object")
        for c in data["changes"]:
            if c.get("action") not in ACTIONS:
                raise ValueError(f"unknown action {shown(c.get('action'))}")
        for d in data.get("drift", ()):
            if d.get("kind") not in DRIFT_KINDS:
                raise ValueError(f"unknown drift kind {shown(d.get('kind'))}")
        changes = []
        for c in data["changes"]:
            desired = Desired(**c["desired"]) if c.get("desired") else None
            diffs = tuple(FieldDiff(field=d["field"], kind=d["kind"], lines=tuple(d["lines"]))
                          for d in c.get("diffs", ()))
            changes.append(FunctionChange(**{**c, "desired": desired, "diffs": diffs,
                                             "breaking": tuple(c.get("breaking", ()))}))
        return cls(project=data["project"], state_token=data["state_token"],
                   changes=tuple(changes),
                   drift=tuple(DriftFinding(**d) for d in data.get("drift", ())),
                   errors=tuple(data.get("errors", ())), notes=tuple(data.get("notes", ())),
                   prune=bool(data.get("prune", False)), adopt=bool(data.get("adopt", False)),
                   state_summary=dict(data.get("state_summary", {})))


# --- diff ----------------------------------------------------------------------------------


def desired_of(spec: FunctionSpec) -> Desired:
    """The spec's contents and hashes (the same as fingerprint(spec), each computed once)."""
    content, metadata = behaviour_content(spec), metadata_content(spec)
    return Desired(version=spec.version, behaviour_hash=content_hash(content),
                   metadata_hash=content_hash(metadata), content=content, metadata=metadata)


@dataclass(frozen=True, kw_only=True)
class Ownership:
    """Whose functions a plan for `project` writes (`managed_by`, the recorded owner): its
    own, unowned ones, those recorded under a `former` id of the project (which it records
    anew), and others' only with `adopt` (--adopt); otherwise the plan refuses them, naming
    their owner."""

    project: str
    former: Mapping[str, str] = field(default_factory=dict)  # earlier ids -> where from
    adopt: bool = False

    def owns(self, owner: str | None) -> bool:
        return owner == self.project or owner in self.former

    def refusal(self, name: str, owner: str) -> str | None:
        """Why `name`, recorded under `owner`, is not written; None when it may be."""
        if self.owns(owner) or self.adopt:
            return None
        return (f"{name} belongs to project `{owner}`, not to this project (`{self.project}`): "
                "it is not taken over without --adopt (fix: rename the function here, or "
                "`aiops apply --adopt` to make this project its owner)")

    def taking_over(self, owner: str | None) -> str:
        """How the owner changes when this project writes over `owner`'s function."""
        if owner is None:
            return "adopted from no project"
        if owner in self.former:
            return f"owner recorded as `{self.project}` (was `{owner}`: {self.former[owner]})"
        return f"adopted from project `{owner}` (--adopt)"


def diff(specs: Mapping[str, FunctionSpec], state: DeployedState, *, project: str,
         prune: bool = False, max_prune: int = 10,
         failed: frozenset[str] = frozenset(),
         prune_only: frozenset[str] | None = None, adopt: bool = False,
         former: Mapping[str, str] | None = None) -> Plan:
    """What applying `specs` to `state` would do. Pure: same inputs, same plan.

    `prune_only` narrows `prune` to those names (a DELETE through the API prunes its one
    function, not every function whose file is gone). `adopt` and `former` (the project's
    earlier ids -> where they came from): whose functions it may write (`Ownership`)."""
    owners = Ownership(project=project, former=dict(former or {}), adopt=adopt)
    changes: list[FunctionChange] = []
    drift: list[DriftFinding] = []
    errors: list[str] = []
    notes: list[str] = []
    for name in sorted(specs):
        stored = state.functions.get(name)
        desired = desired_of(specs[name])
        if stored is None:
            changes.append(_create(name, desired))
            if name in state.managed:
                drift.append(DriftFinding(
                    name=name, kind="missing", restorable=True,
                    message=f"{name} was applied by this project but is missing from the "
                            "database; apply recreates it"))
            continue
        change, found, said = _update(name, desired, stored, owners)
        changes.append(change)
        drift += found
        errors += [text for severity, text in said if severity == "error"]
        notes += [text for severity, text in said if severity != "error"]
    archives: list[FunctionChange] = []
    for name in sorted(set(state.functions) - set(specs)):
        stored = state.functions[name]
        prunes = prune and (prune_only is None or name in prune_only)
        owner = stored.managed_by
        if owner is not None and owner != project and prunes and owners.owns(owner) and (
                stored.status != "archived"):
            notes.append(f"{name}: no file; recorded under `{owner}` ({owners.former[owner]}), "
                         "so --prune leaves it until an apply of its file records this "
                         "project's id on it")
        if stored.status == "archived" or stored.managed_by != project:
            continue
        if name in failed:
            notes.append(f"{name}: its file failed to load; left as it is (unknown, not deleted)")
            continue
        drift += _version_drift(stored, None)
        if stored.metadata_hash == stored.archived_metadata_hash:  # archived, then un-archived
            drift.append(DriftFinding(
                name=name, kind="metadata", restorable=prunes,
                message="re-activated in the database, not by aiops (its file is gone): "
                        + ("apply archives it again" if prunes else
                           "`apply --prune` archives it again")))
        if prunes:
            archives.append(FunctionChange(
                name=name, action="archive", from_version=_ver(stored.current),
                reason="its file was removed; --prune archives it (versions and logs are kept)"))
        else:
            notes.append(f"{name}: no file; `apply --prune` would archive it")
    if archives and prune_only is None:  # the guards of a sweep: named ones are meant
        if not specs:
            errors.append(f"refusing to archive all {len(archives)} function(s): no function "
                          "file was loaded (wrong directory?); nothing is archived")
        elif len(archives) > max_prune:
            errors.append(f"refusing to archive {len(archives)} functions in one apply (more "
                          f"than max_prune={max_prune}); raise --max-prune if this is intended")
    changes += archives
    summary = {n: {"version": _ver(f.current), "status": f.status}
               for n, f in sorted(state.functions.items())}
    return Plan(project=project, state_token=state.token, changes=tuple(changes),
                drift=tuple(drift), errors=tuple(errors), notes=tuple(notes), prune=prune,
                adopt=adopt,
                state_summary=summary)


def _ver(v: StoredVersion | None) -> str | None:
    return v.version if v else None


def _create(name: str, desired: Desired) -> FunctionChange:
    c = desired.content
    return FunctionChange(
        name=name, action="create", to_version=desired.version, desired=desired,
        metadata_changed=True, adopt=True,
        reason=f"new function ({c.get('provider')}/{c.get('model')}, "
               f"{len(c.get('prompt') or ())} prompt message(s))")


Said = list[tuple[str, str]]  # (severity, text): errors refuse the plan, warnings are notes


def _update(name: str, desired: Desired, stored: StoredFunction,
            owners: Ownership) -> tuple[FunctionChange, list[DriftFinding], Said]:
    current = stored.current
    refused = owners.refusal(name, stored.managed_by) if stored.managed_by else None
    if refused is not None:  # another project's: neither its rows nor its drift are ours
        return FunctionChange(name=name, action="noop", reason=refused, conflict=True,
                              from_version=_ver(current), to_version=desired.version), [], [
            ("error", refused)]
    found = _version_drift(stored, desired)
    same = stored.version_named(desired.version)
    if same is not None and same.behaviour_hash != desired.behaviour_hash:
        problem = (f"{name} {desired.version} is already applied with other content; "
                   f"bump `version` (e.g. {_next_patch(stored, desired.version)})")
        conflict = FunctionChange(name=name, action="noop", reason=problem, conflict=True,
                                  from_version=_ver(current), to_version=desired.version)
        return conflict, found, [("error", problem)]
    moved_from = stored.pointer_moved_from()
    if moved_from is not None or stored.current_version_id != stored.reconciled_version_id:
        was = _ver(moved_from) or "none"
        back = ("apply moves it back" if was == desired.version else
                f"git says {desired.version}: apply moves it there")
        found.append(DriftFinding(
            name=name, kind="pointer", restorable=True,
            message=f"current version moved from {was} to {_ver(current) or 'none'} outside "
                    f"aiops: {back}"))
    meta_changed = stored.metadata_hash != desired.metadata_hash or stored.status == "archived"
    archived_by_hand = stored.status == "archived" and not stored.metadata_intact
    if archived_by_hand:
        found.append(DriftFinding(
            name=name, kind="metadata", restorable=True,
            message="archived in the database, not by aiops: apply restores it as "
                    f"{desired.metadata.get('status')}"))
        meta_changed = True
    elif not stored.metadata_intact:
        edited = _changed_keys(stored.metadata, desired.metadata)
        found.append(DriftFinding(
            name=name, kind="metadata", restorable=True,
            message="the function row was edited outside aiops (its metadata no longer "
                    "matches its hash" + (f"; {', '.join(edited)} differ from git"
                                         if edited else "") + "): apply rewrites it"))
        meta_changed = True
    if not stored.copies_intact and not any(d.kind == "pointer" for d in found):
        # (A pointer moved by hand leaves them behind: moving it back sets them too.)
        found.append(DriftFinding(
            name=name, kind="metadata", restorable=True,
            message="the function row's copies of its current version (version, input_schema, "
                    "output_schema, provider) were edited outside aiops: apply rewrites them"))
        meta_changed = True
    adopt = stored.managed_by != owners.project
    taken = f"; {owners.taking_over(stored.managed_by)}" if adopt else ""
    meta_diffs = _metadata_diffs(stored.metadata, desired.metadata) if meta_changed else []
    common: dict[str, Any] = dict(name=name, from_version=_ver(current),
                                  to_version=desired.version, desired=desired,
                                  metadata_changed=meta_changed or adopt, adopt=adopt)
    revived = ("" if stored.status != "archived" else
               "; restored: archived outside aiops" if archived_by_hand else
               "; re-activated: its file is back")
    if same is None:
        diffs = _content_diffs(current.content if current else {}, desired.content)
        base = _rules_base(stored)
        breaking = _breaking(base.content, desired.content) if base else ()
        said = _version_rules(name, desired, stored, base) if base else []
        return FunctionChange(action="new_version", diffs=tuple(diffs + meta_diffs),
                              breaking=breaking,
                              conflict=any(severity == "error" for severity, _ in said),
                              reason=_new_version_reason(current, desired, diffs) + revived
                              + taken, **common), found, said
    if same.id != stored.current_version_id and not any(d.kind == "pointer" for d in found):
        older = current is not None and Semver(same.version) < Semver(current.version)
        diffs = _content_diffs(current.content if current else {}, same.content)
        reason = (f"current version moves {'back ' if older else ''}from "
                  f"{_ver(current) or 'none'} to {same.version}, an applied version with "
                  f"the same content (no version row written){revived}{taken}")
        return FunctionChange(action="rollback", target_version_id=same.id,
                              diffs=tuple(diffs + meta_diffs), reason=reason,
                              **common), found, []
    if meta_changed or adopt:
        why = []
        if stored.status == "archived":
            why.append(revived.removeprefix("; "))
        if meta_changed and stored.status != "archived":
            why.append("changed: " + ", ".join(_changed_keys(stored.metadata, desired.metadata)
                                               or ["row edited outside aiops"]))
        if adopt:
            why.append(owners.taking_over(stored.managed_by))
        return FunctionChange(action="update_metadata", diffs=tuple(meta_diffs),
                              reason="metadata " + "; ".join(why) + " (no new version)",
                              **common), found, []
    # An unchanged function carries its desired content only when drift needs it restored.
    return FunctionChange(action="noop", reason="in sync",
                          **{**common, "desired": desired if found else None}), found, []


def _version_drift(stored: StoredFunction, desired: Desired | None) -> list[DriftFinding]:
    out = []
    for v in stored.versions:
        if v.intact:
            continue
        restorable = desired is not None and desired.version == v.version and (
            desired.behaviour_hash == v.behaviour_hash)
        how = ("apply restores it from git" if restorable else
               f"git no longer has {v.version}'s content here; restore the row from "
               "another checkout or a backup")
        out.append(DriftFinding(
            name=stored.name, kind="version_content", version=v.version, version_id=v.id,
            restorable=restorable,
            message=f"version {v.version} was edited outside git (its content no longer "
                    f"matches its hash); {how}"))
    return out


def _next_patch(stored: StoredFunction, version: str) -> str:
    top = max((Semver(v.version) for v in stored.versions), default=Semver(version))
    return f"{top.major}.{top.minor}.{top.patch + 1}"


def _new_version_reason(current: StoredVersion | None, desired: Desired,
                        diffs: list[FieldDiff]) -> str:
    if current is None:
        return f"first version {desired.version}"
    fields = ", ".join(d.field for d in diffs) or "content"
    return f"{current.version} -> {desired.version}: {fields} changed"


def _rules_base(stored: StoredFunction) -> StoredVersion | None:
    """What a new version is compared with (DESIGN §4): the current version, what callers
    get; without one (a pointer cleared outside aiops), the highest applied version."""
    if stored.current is not None:
        return stored.current
    return max(stored.versions, key=lambda v: _order(v.version), default=None)


def _order(version: str) -> tuple[int, Semver]:
    try:
        return 1, Semver(version)
    except ValueError:  # not written by aiops: below every version it wrote
        return 0, _LOWEST


_LOWEST = Semver("0.0.0-0")


def _version_rules(name: str, desired: Desired, stored: StoredFunction,
                   base: StoredVersion) -> Said:
    """`checks.version_rules` against what the database holds, in the words of
    `aiops validate --base` (the file's `version` key named, no line: the plan has none)."""
    from aiops.checks import Versioned, version_rules
    from aiops.loader import function_file

    def held(v: StoredVersion) -> Versioned:
        return Versioned(version=v.version, behaviour_hash=v.behaviour_hash, content=v.content)

    def earlier(_name: str, version: str) -> Versioned | None:
        found = stored.version_named(version)
        return held(found) if found is not None else None

    new = Versioned(version=desired.version, behaviour_hash=desired.behaviour_hash,
                    content=desired.content)
    return [(p.severity, p.diagnostic(function_file(name)).render())
            for p in version_rules(name, new, held(base), earlier)]


@dataclass(frozen=True)
class _Schemas:
    """The two schemas of a stored version, all that `breaking_changes` compares."""

    input_schema: dict[str, Any]
    output_schema: dict[str, Any]


def _breaking(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, ...]:
    from aiops.compat import breaking_changes  # loads jsonschema-rs: only when schemas changed

    def spec(c: dict[str, Any]) -> _Schemas:
        return _Schemas(input_schema=c.get("input_schema") or {},
                        output_schema=c.get("output_schema") or {})

    if not all(isinstance(old.get(k), dict) for k in ("input_schema", "output_schema")):
        return ()  # nothing to compare with: the version rules say so
    return tuple(breaking_changes(spec(old), spec(new)))


# --- display diffs (pure, bounded) -----------------------------------------------------------

# Whole words of a key (split at _ - . and camelCase): `max_tokens` and `author` are not
# secrets, `auth_token`, `clientSecret` and `api-key` are.
_SECRETISH = re.compile(r"(?i)(?:^|[_\-.])(?:secrets?|token|password|passwd|pwd|api[_-]?key|"
                        r"private[_-]?key|credentials?|auth|authorization|bearer)(?:$|[_\-.])")
MAX_DIFF_LINES = 200


def _content_diffs(old: dict[str, Any], new: dict[str, Any], old_label: str = "deployed",
                   new_label: str = "git") -> list[FieldDiff]:
    out = []
    for key in BEHAVIOUR_FIELDS:
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if key == "prompt":
            out.append(FieldDiff(field=key, kind="text", lines=_prompt_diff(
                a or [], b or [], old_label, new_label)))
        else:
            out.append(FieldDiff(field=key, kind="paths", lines=path_diff(a, b, key)))
    return out


def version_diff(old: dict[str, Any], new: dict[str, Any], *, old_label: str,
                 new_label: str) -> tuple[FieldDiff, ...]:
    """What changed between two versions' stored content, field by field, for display."""
    return tuple(_content_diffs(old, new, old_label, new_label))


def _metadata_diffs(old: dict[str, Any], new: dict[str, Any]) -> list[FieldDiff]:
    return [FieldDiff(field=key, kind="paths", lines=path_diff(old.get(key), new.get(key), key))
            for key in METADATA_FIELDS if old.get(key) != new.get(key)]


def _changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [k for k in METADATA_FIELDS if old.get(k) != new.get(k)]


def _prompt_text(messages: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for i, m in enumerate(messages):
        lines.append(f"[{i}] {m.get('role')}:")
        lines += [f"    {line}" for line in str(m.get("content", "")).split("\n")]
    return lines


def _prompt_diff(old: list[dict[str, Any]], new: list[dict[str, Any]], old_label: str,
                 new_label: str) -> tuple[str, ...]:
    lines = list(difflib.unified_diff(_prompt_text(old), _prompt_text(new), old_label,
                                      new_label, lineterm="", n=2))
    return _bounded(lines)


def _flatten(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for k in sorted(value):
            _flatten(value[k], f"{path}.{k}" if path else str(k), out)
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            _flatten(v, f"{path}[{i}]", out)
    else:
        out[path] = value


def _show(path: str, value: Any) -> str:
    last = re.split(r"[.\[]", path)[-1]
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", last)
    if _SECRETISH.search(words) and not last.endswith("_env") and value is not None:
        return "(redacted)"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def path_diff(old: Any, new: Any, root: str) -> tuple[str, ...]:
    """Changed leaves as `~ path: old -> new`, `+ path: new`, `- path: old`."""
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    if old is not None:
        _flatten(old, root, a)
    if new is not None:
        _flatten(new, root, b)
    lines = []
    for p in sorted(set(a) | set(b)):
        if p in a and p in b:
            if a[p] != b[p]:
                lines.append(f"~ {p}: {_show(p, a[p])} -> {_show(p, b[p])}")
        elif p in b:
            lines.append(f"+ {p}: {_show(p, b[p])}")
        else:
            lines.append(f"- {p}: {_show(p, a[p])}")
    return _bounded(lines)


def _bounded(lines: list[str]) -> tuple[str, ...]:
    if len(lines) <= MAX_DIFF_LINES:
        return tuple(lines)
    return (*lines[:MAX_DIFF_LINES], f"... {len(lines) - MAX_DIFF_LINES} more line(s)")
