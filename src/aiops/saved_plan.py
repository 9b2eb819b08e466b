"""A saved plan read back for `aiops apply plan.json`: refused when it was edited by hand.

A saved plan is a file a person can edit, and apply writes what it carries without the
function files, so it must not bypass what the files go through. `content_problems` checks
each change's content as the loader would (the function file it is, or else written out as
one, loaded and cross-checked as `aiops validate` does: the same format, the same defaults,
the same providers) and recomputes its two hashes; `state_problems` checks, under the apply lock,
that what the plan would write (actions, version ids, drift restores) is what `plan.diff`
decides from that content and the database, so that a hand-edited action or id cannot point
a write elsewhere. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from aiops.errors import Diagnostic, shown
from aiops.fingerprint import content_hash
from aiops.loader import LoadedFunction, Project, function_file, load_one
from aiops.plan import DeployedState, Desired, Plan, desired_of, diff
from aiops.spec import FunctionSpec

# What apply writes from a change: any other field (reason, diffs) is for reading only.
_WRITTEN = ("action", "to_version", "metadata_changed", "adopt", "target_version_id",
            "conflict")


def content_problems(plan: Plan, project: Project) -> tuple[dict[str, FunctionSpec], list[str]]:
    """The spec of each change that carries content, and what is wrong with the others.
    `project` is what the files say now: a change whose content is exactly what a file makes
    (the usual case: a plan applied from the commit it was made at) is checked as that file,
    without writing its content out again."""
    from aiops.checks import check_function

    specs: dict[str, FunctionSpec] = {}
    problems: list[str] = []
    names = [c.name for c in plan.changes]
    problems += [f"{n}: listed more than once" for n in sorted(set(names))
                 if names.count(n) > 1]
    for change in plan.changes:
        d, name = change.desired, change.name
        if d is None:
            if change.action not in ("noop", "archive"):
                problems.append(f"{name}: a {change.action} without its content")
            continue
        found = _hash_problems(name, d)
        lf = project.functions.get(name)
        made = desired_of(lf.spec) if lf is not None else None
        diags: list[Diagnostic] = []
        if lf is None or made != d:
            spec, positions, diags = load_one(function_file(name), _as_file(name, d),
                                              FunctionSpec)
            lf = LoadedFunction(spec=spec, file=function_file(name),
                                positions=positions) if spec is not None else None
            made = desired_of(spec) if spec is not None else None
        if lf is not None:
            diags += check_function(lf, project.providers)
        found += [f"{name}: its content does not validate: "
                  f"{x.path + ': ' if x.path else ''}{x.message}" for x in diags if x.is_error]
        if lf is not None and made is not None and not found:
            for part in ("content", "metadata", "version"):
                if getattr(made, part) != getattr(d, part):
                    found.append(f"{name}: its {part} is not what the loader makes of it "
                                 "(a default or a key changed by hand)")
        if lf is not None and not found:
            specs[name] = lf.spec
        problems += found
    return specs, problems


def state_problems(plan: Plan, specs: Mapping[str, FunctionSpec], state: DeployedState, *,
                   former: Mapping[str, str] | None = None) -> list[str]:
    """What the plan would write that its content and the database do not call for.
    `former`: the project's earlier ids, as `plan.diff` takes them."""
    owners: dict[str, Any] = dict(project=plan.project, adopt=plan.adopt, former=former)
    # The plan passed the prune guards when it was made (a plan with errors is not saved).
    recomputed = diff(specs, state, prune=plan.prune, max_prune=len(state.functions), **owners)
    by_name = {c.name: c for c in recomputed.changes}
    archived = {c.name for c in plan.changes if c.action == "archive"}
    problems = []
    for change in plan.changes:
        if change.action == "archive":
            stored = state.functions.get(change.name)
            if (not plan.prune or change.name in specs or stored is None
                    or stored.status == "archived" or stored.managed_by != plan.project):
                problems.append(f"{change.name}: archive is not what the database calls for")
            continue
        expected = by_name.get(change.name)
        if expected is None:
            continue  # a no-op without content: nothing is written
        if expected.conflict:  # immutability, the version rules: say which, for this function
            alone = diff({change.name: specs[change.name]}, DeployedState(
                functions={change.name: state.functions[change.name]}), **owners)
            problems.append(f"{change.name}: the plan writes it, but its content and the "
                            f"database refuse it: {'; '.join(alone.errors)}")
            continue
        for field in _WRITTEN:
            saved, wanted = getattr(change, field), getattr(expected, field)
            if saved != wanted:
                problems.append(f"{change.name}: {field} is {shown(saved)} in the plan, but "
                                f"its content and the database make it {shown(wanted)}")
    saved_drift = {_drift_key(d) for d in plan.drift if d.restorable}
    wanted_drift = {_drift_key(d) for d in recomputed.drift
                    if d.restorable and (d.name in specs or d.name in archived)}
    for name, kind, version, vid in sorted(saved_drift ^ wanted_drift, key=str):
        side = "in the plan, not called for" if (name, kind, version, vid) in saved_drift else (
            "called for, missing from the plan")
        problems.append(f"{name}: a {kind} drift restore ({version or 'the function'}) "
                        f"{side} by its content and the database")
    return problems


def _drift_key(d: Any) -> tuple[str, str, str | None, str | None]:
    return (d.name, d.kind, d.version, d.version_id)


def _hash_problems(name: str, d: Desired) -> list[str]:
    out = []
    if content_hash(d.content) != d.behaviour_hash:
        out.append(f"{name}: the behaviour hash does not match its content")
    if content_hash(d.metadata) != d.metadata_hash:
        out.append(f"{name}: the metadata hash does not match its metadata")
    return out


def _as_file(name: str, d: Desired) -> bytes:
    """The change's content as the function file that would make it."""
    document = {**(d.metadata if isinstance(d.metadata, dict) else {}),
                **(d.content if isinstance(d.content, dict) else {}),
                "apiVersion": "aiops/v1", "name": name, "version": d.version}
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's: 5x faster
    return yaml.dump(document, Dumper=dumper, sort_keys=False, allow_unicode=True).encode()
