"""The reconciler's verbs: plan, apply, status, db upgrade, resolve, watch.

Each is a plain function over a `Workspace` (and, for tests, an injected store); they return
values, raise `aiops.errors`, and never print (the watch loop reports through a callback).
The pure decisions live in `aiops.plan` and `aiops.apply`; this module does the I/O around
them: files, git, the database, the clock.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiops import apply as apply_mod
from aiops import saved_plan
from aiops.collector import gc_paused
from aiops.errors import (
    AiopsError,
    RuntimeFailure,
    SpecError,
    StalePlanError,
    UsageError,
    UserError,
    shown,
)
from aiops.loader import FUNCTION_FILE, FUNCTIONS_DIR, PROJECT_FILE, PROVIDERS_FILE
from aiops.plan import Plan, diff
from aiops.sources import git, read_tree
from aiops.spec import FunctionSpec
from aiops.store import DeployedVersion, Store, Writer
from aiops.workspace import PROJECT_ENV, Workspace, git_fact

TICK_MS = 2000  # watch: how often a quiet watcher re-checks the files (edits it missed)


# --- the project and its surroundings --------------------------------------------------------


# The files apply reads: a change to any of them not yet committed makes the commit `-dirty`.
SOURCE_PATHSPECS = (f":(glob){FUNCTIONS_DIR}/*/{FUNCTION_FILE}", PROVIDERS_FILE, PROJECT_FILE)
DIRTY = "-dirty"
COMMIT_CHARS = 64  # the git_commit and applied_commit columns


@dataclass(frozen=True, kw_only=True)
class Revision:
    """The git revision an apply records: HEAD, and the files apply reads that differ from it
    (changed, staged, deleted or untracked; relative to the project)."""

    head: str | None  # None outside a git repository, or before its first commit
    uncommitted: tuple[str, ...] = ()

    @property
    def recorded(self) -> str | None:
        """HEAD, or `<sha>-dirty` when files differ from it (within the column's 64
        characters: a SHA-256 commit loses its last characters)."""
        if self.head is None or not self.uncommitted:
            return self.head
        return self.head[:COMMIT_CHARS - len(DIRTY)] + DIRTY


def git_revision(root: Path) -> Revision:
    """HEAD and the uncommitted changes to the files apply reads; Revision(head=None) outside
    a git repository or before its first commit."""
    facts = git_fact(root, "rev-parse", "--show-prefix", "HEAD")
    if facts is None:
        return Revision(head=None)
    *prefix, head = facts.splitlines()  # the prefix line is empty (stripped) at the top
    inside = prefix[0] if prefix else ""
    try:
        out = git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--",
                  *SOURCE_PATHSPECS).decode(errors="replace")
    except UsageError:
        return Revision(head=head)
    entries = iter(out.split("\0"))
    changed = []
    for entry in entries:
        if len(entry) < 4:
            continue
        if entry[0] in "RC":  # a rename or copy: the next entry is where it came from
            next(entries, None)
        path = entry[3:]  # relative to the repository's top
        changed.append(path.removeprefix(inside))
    return Revision(head=head, uncommitted=tuple(sorted(changed)))


def git_actor(root: Path) -> str:
    name = git_fact(root, "config", "user.name")
    email = git_fact(root, "config", "user.email")
    if name and email:
        return f"{name} <{email}>"
    return name or email or os.environ.get("USER") or "unknown"


# --- plan ---------------------------------------------------------------------------------------


def _identity(ws: Workspace) -> dict[str, Any]:
    """The project's identity as `plan.diff` and `saved_plan.state_problems` take it."""
    return dict(former=ws.identity.former)


def _diff(ws: Workspace, state: Any, *, prune: bool, max_prune: int | None,
          prune_only: frozenset[str] | None = None, adopt: bool = False) -> Plan:
    specs = {n: lf.spec for n, lf in ws.project.functions.items()}
    plan = diff(specs, state, project=ws.project_id, prune=prune,
                max_prune=ws.settings.max_prune if max_prune is None else max_prune,
                failed=ws.project.failed_functions, prune_only=prune_only, adopt=adopt,
                **_identity(ws))
    invalid = tuple(d.render() for d in ws.diagnostics if d.is_error)
    if invalid:
        plan = replace(plan, errors=invalid + plan.errors)
    return plan


def plan(ws: Workspace, *, prune: bool = False, max_prune: int | None = None,
         adopt: bool = False, store: Store | None = None,
         functions: frozenset[str] | None = None) -> Plan:
    """`aiops plan`: the files against the database, as data (errors inside, not raised).
    `adopt`: take over functions of the same name that other projects applied (refused
    otherwise). `functions`: the plan of those alone (the workspace holds their files
    only: the editor's preview), read from their part of the database."""
    st = store or ws.open_store()
    with gc_paused():  # what a plan reads and decides (aiops.collector)
        return _diff(ws, st.read_state(ws.project_id, functions), prune=prune,
                     max_prune=max_prune, adopt=adopt)


# --- apply --------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ApplyResult:
    plan: Plan
    wrote: bool
    run_id: str | None
    duration_ms: float
    log_warnings: tuple[str, ...] = ()  # about log rows earlier runs spooled, written now
    git_commit: str | None = None  # what the run recorded: HEAD, `<sha>-dirty`, or None
    uncommitted: tuple[str, ...] = ()  # the files apply read that differ from HEAD

    @property
    def dirty_warning(self) -> str | None:
        """What to tell when the run recorded a `-dirty` commit (nothing written: None)."""
        if not self.wrote or not self.uncommitted:
            return None
        files = ", ".join(self.uncommitted[:5]) + (
            f" and {len(self.uncommitted) - 5} more" if len(self.uncommitted) > 5 else "")
        return (f"applied with uncommitted changes ({files}): recorded as commit "
                f"{self.git_commit}; commit them, so that the database names the revision its "
                "functions came from")


def apply(ws: Workspace, *, expected: Plan | None = None, prune: bool = False,
          max_prune: int | None = None, adopt: bool = False, actor: str | None = None,
          lock_timeout_s: float = 30.0, store: Store | None = None) -> ApplyResult:
    """`aiops apply`: validate, lock, re-read, refuse a stale `expected` plan, write, record.

    Without `expected`, the plan is computed under the lock (what `--auto-approve` does, so
    concurrent applies queue instead of failing). With it (a saved plan, or the plan a person
    approved), the state must still be the one that plan was computed against, and the plan
    says whether it prunes and adopts.
    """
    started = time.perf_counter()
    saved_specs: dict[str, FunctionSpec] = {}
    if expected is None:
        errors = [d for d in ws.diagnostics if d.is_error]
        if errors:
            raise SpecError(errors)
    else:
        saved_specs = _check_saved(expected, ws)
    st = store or ws.open_store(lock_timeout_s=lock_timeout_s)
    revision = git_revision(ws.root)
    result = _apply_locked(ws, st, expected, saved_specs, prune=prune, max_prune=max_prune,
                           adopt=adopt, who=actor or git_actor(ws.root),
                           commit=revision.recorded, lock_timeout_s=lock_timeout_s,
                           started=started)
    # Log rows that earlier runs could not write (the database was locked past their
    # patience) go in now that it answered.
    report = st.write_pending_logs()
    return replace(result, log_warnings=(*report.lost, *report.stored_alone),
                   git_commit=revision.recorded, uncommitted=revision.uncommitted)


def apply_locked(w: Writer, ws: Workspace, *, actor: str, commit: str | None,
                 prune_only: frozenset[str] | None = None) -> ApplyResult:
    """`apply` inside the lock and transaction the caller holds (`Store.writer`), of files
    already validated: a write through git (aiops.commands.writes) commits and applies under
    one lock. `prune_only` archives those of them whose files are gone, and no other."""
    return _apply_locked(ws, w, None, {}, prune=prune_only is not None, max_prune=None,
                         prune_only=prune_only, who=actor, commit=commit, lock_timeout_s=0,
                         started=time.perf_counter())


def _apply_locked(ws: Workspace, st: Store | Writer, expected: Plan | None,
                  saved_specs: dict[str, FunctionSpec], *, prune: bool, max_prune: int | None,
                  who: str, commit: str | None, lock_timeout_s: float,
                  started: float, prune_only: frozenset[str] | None = None,
                  adopt: bool = False) -> ApplyResult:
    began = datetime.now(UTC)
    lock = nullcontext(st) if isinstance(st, Writer) else st.writer(lock_timeout_s)
    with lock as w, gc_paused():  # what a plan reads, decides and writes
        state = w.read_state(ws.project_id)
        if expected is not None:
            if expected.state_token != state.token:
                raise StalePlanError(
                    "the database changed since this plan was made (another apply, or an edit "
                    "outside git); run `aiops plan -o plan.json` again and apply the new plan")
            _refuse_edited(saved_plan.state_problems(expected, saved_specs, state,
                                                     **_identity(ws)))
            plan = expected
        else:
            plan = _diff(ws, state, prune=prune, max_prune=max_prune, prune_only=prune_only,
                         adopt=adopt)
        if plan.errors:
            raise AiopsError("the plan cannot be applied; nothing was written:\n"
                             + "\n".join(plan.errors))
        if not plan.has_changes:
            return ApplyResult(plan=plan, wrote=False, run_id=None,
                               duration_ms=(time.perf_counter() - started) * 1000)
        user_id = w.ensure_user(who)
        ctx = apply_mod.Ctx(state=state, project=ws.project_id, user_id=user_id,
                            git_commit=commit, now=began)
        w.write(apply_mod.build_batch(plan, ctx))
        run_id = w.record_run(project=ws.project_id, actor=who, user_id=user_id,
                              git_commit=commit, started_at=began, counts=plan.counts(),
                              changes=apply_mod.summary(plan))
    return ApplyResult(plan=plan, wrote=True, run_id=run_id,
                       duration_ms=(time.perf_counter() - started) * 1000)


def _check_saved(plan: Plan, ws: Workspace) -> dict[str, FunctionSpec]:
    """Refuse a saved plan that cannot be applied here, or whose content was edited; the
    spec of each change that carries content."""
    if plan.errors:
        raise AiopsError("this plan has errors and cannot be applied:\n" + "\n".join(plan.errors))
    if plan.project != ws.project_id:
        raise UsageError(f"this plan was made for project {shown(plan.project)}, not "
                         f"{shown(ws.project_id)} ({ws.identity.source}); run `aiops plan -o "
                         f"plan.json` in this project (its id: `project` in {PROJECT_FILE}, or "
                         f"{PROJECT_ENV})")
    specs, problems = saved_plan.content_problems(plan, ws.project)
    _refuse_edited(problems)
    return specs


def _refuse_edited(problems: list[str]) -> None:
    if problems:
        raise UserError("this plan was changed after `aiops plan -o` saved it; nothing was "
                        "written:\n" + "\n".join(f"  {p}" for p in problems)
                        + "\nmake a new one with `aiops plan -o plan.json`")


# --- status and resolve -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StatusRow:
    name: str
    sync: str  # in sync | <action> pending | drift | no file | archived | failed to load
    deployed_version: str | None
    desired_version: str | None
    status: str | None
    applied_at: str | None
    applied_commit: str | None


@dataclass(frozen=True, kw_only=True)
class Status:
    functions: tuple[StatusRow, ...]  # by name
    last_run: dict[str, Any] | None  # the newest recorded apply: actor, commit, time, counts


def status(ws: Workspace, *, store: Store | None = None) -> Status:
    """Each function: in sync or not, current version, last applied revision and time; and
    the last apply."""
    st = store or ws.open_store()
    state = st.read_state(ws.project_id)
    plan = _diff(ws, state, prune=False, max_prune=None)
    drifted = {d.name for d in plan.drift}
    rows = {}
    for c in plan.changes:
        stored = state.functions.get(c.name)
        sync = ("drift" if c.name in drifted else
                "in sync" if c.action == "noop" else f"{c.action.replace('_', ' ')} pending")
        if c.conflict:
            sync = "conflict"
        rows[c.name] = StatusRow(
            name=c.name, sync=sync, deployed_version=c.from_version,
            desired_version=c.to_version, status=stored.status if stored else None,
            applied_at=stored.applied_at if stored else None,
            applied_commit=stored.applied_commit if stored else None)
    for name, f in state.functions.items():
        if name in rows:
            continue
        cur = f.current
        sync = ("archived" if f.status == "archived" else
                "failed to load" if name in ws.project.failed_functions else "no file")
        rows[name] = StatusRow(name=name, sync=sync, deployed_version=cur.version if cur else None,
                               desired_version=None, status=f.status, applied_at=f.applied_at,
                               applied_commit=f.applied_commit)
    return Status(functions=tuple(rows[n] for n in sorted(rows)), last_run=st.last_run())


def upgrade_database(ws: Workspace) -> str:
    """`aiops db upgrade`: create or migrate the schema; returns the URL (password hidden)."""
    return ws.open_store(migrate=True).display_url()


def resolve_version(ws: Workspace, ref: str, *, store: Store | None = None) -> DeployedVersion:
    """`name`, `name@1.2.0` or `name@1` -> the deployed version a caller gets."""
    name, _, selector = ref.partition("@")
    if not name:
        raise UsageError(f"{shown(ref)} is not a function reference; use NAME, NAME@1.2.0 "
                         "or NAME@1")
    st = store or ws.open_store()
    return st.resolve(name, selector or None)


# --- watch --------------------------------------------------------------------------------------

Report = Callable[[str], None]


def tree_digest(root: Path) -> str:
    files = read_tree(root)
    h = hashlib.sha256()
    for rel in sorted(files):
        data = files[rel]
        raw = data if isinstance(data, bytes) else f"refused: {data.reason}".encode()
        h.update(rel.encode() + b"\0" + hashlib.sha256(raw).digest())
    return h.hexdigest()


def relevant(root: Path, paths: Iterable[str]) -> bool:
    """Whether a changed path can change the plan: functions/, providers.yaml, aiops.yaml."""
    base = root.resolve()
    for p in paths:
        try:
            rel = Path(p).resolve().relative_to(base).as_posix()
        except ValueError:
            continue
        if rel in (PROVIDERS_FILE, PROJECT_FILE) or rel.startswith("functions/"):
            return True
    return False


def watch(ws: Workspace, changes: Iterable[Iterable[str]], report: Report, *,
          reconcile: Callable[[], str] | None = None) -> int:
    """`aiops watch`: reconcile once, then once per batch of relevant changes (each pass
    reads the files anew); returns the passes run.

    `changes` yields batches of changed paths (watchfiles, debounced; a batch that arrives
    while a pass runs is the "one more pass"), and empty batches as periodic ticks. A pass
    whose files are byte-for-byte those of the last pass is skipped, so a file that keeps
    failing is not retried until it changes; a database failure is retried on the next tick.
    """
    root = ws.root
    run = reconcile or (lambda: _watch_pass(ws.reopened()))
    passes = 0
    last: str | None = None
    last_failure: str | None = None

    def one_pass() -> None:
        nonlocal passes, last, last_failure
        last = tree_digest(root)
        passes += 1
        try:
            report(run())
            last_failure = None
        except RuntimeFailure as exc:
            # The database failed (busy lock, connection), not the files: retry on the next
            # tick, and report the same failure once rather than every tick.
            last = None
            if str(exc) != last_failure:
                report(f"Error: {exc}")
            last_failure = str(exc)
        except AiopsError as exc:
            last_failure = None
            report(f"Error: {exc}")

    one_pass()
    for batch in changes:
        batch = list(batch)
        if batch and not relevant(root, batch):
            continue
        # An empty batch is a quiet tick: it catches edits made before the watcher started.
        if tree_digest(root) == last:
            continue
        one_pass()
    return passes


def _watch_pass(ws: Workspace) -> str:
    result = apply(ws)
    if not result.wrote:
        return "No changes."
    dirty = f" (uncommitted: recorded as {result.git_commit})" if result.uncommitted else ""
    return f"Applied: {result.plan.verdict().removeprefix('Plan: ')}{dirty}"


def file_changes(ws: Workspace, stop: Any = None) -> Iterable[list[str]]:
    """watchfiles on the project, as batches of paths (debounced)."""
    import watchfiles

    root = ws.root
    targets = [p for p in (root / "functions", root / PROVIDERS_FILE, root / PROJECT_FILE)
               if p.exists()] or [root]
    for batch in watchfiles.watch(*targets, debounce=400, stop_event=stop,
                                  raise_interrupt=False, yield_on_timeout=True,
                                  rust_timeout=TICK_MS):
        yield [path for _, path in batch]
