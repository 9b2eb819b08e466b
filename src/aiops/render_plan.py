"""A Plan as text (terminal), JSON (machines, saved plans) and markdown (pull-request comment).

Pure functions over one `plan.Plan`: the three views show the same object, so the verdict a
person reads, the JSON a pipeline parses and the exit code always agree. Unchanged functions
are hidden; the plan holds no secret (credentials are environment variable names, and values
at secret-looking keys are redacted when diffs are computed).
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiops.plan import FunctionChange, Plan

SYMBOL = {"create": "+", "new_version": "~", "rollback": "<", "update_metadata": "~",
          "archive": "-", "noop": " "}
LABEL = {"create": "create", "new_version": "new version", "rollback": "rollback",
         "update_metadata": "update metadata", "archive": "archive", "noop": "no change"}
MARKDOWN_LIMIT = 60_000  # GitHub refuses comments over 65,536 characters


def exit_code(plan: Plan, detailed: bool) -> int:
    """`--detailed-exitcode`: 0 no changes, 1 error, 2 changes; otherwise 0 unless an error."""
    if plan.errors:
        return 1
    return 2 if detailed and plan.has_changes else 0


def _versions(c: FunctionChange) -> str:
    if c.action == "create":
        return c.to_version or ""
    if c.action in ("new_version", "rollback"):
        return f"{c.from_version or 'none'} -> {c.to_version}"
    return c.from_version or c.to_version or ""


def _shown(plan: Plan) -> list[FunctionChange]:
    return [c for c in plan.changes if c.action != "noop" or c.conflict]


def render_text(plan: Plan) -> str:
    out = [plan.verdict()]
    if plan.errors:
        out += ["", "Errors (nothing can be applied until they are fixed):"]
        out += [f"  {e}" for e in plan.errors]
    if plan.drift:
        out += ["", "Drift (the database differs from what git set):"]
        out += [f"  ! {d.name}: {d.message}" for d in plan.drift]
    for c in _shown(plan):
        out += ["", f"{SYMBOL[c.action]} {c.name}: {LABEL[c.action]} {_versions(c)}".rstrip(),
                f"    {c.reason}"]
        for item in c.breaking:
            out.append(f"    breaking: {item}")
        for d in c.diffs:
            out.append(f"    {d.field}:")
            out += [f"      {line}" for line in d.lines]
    hidden = sum(1 for c in plan.changes if c.action == "noop" and not c.conflict)
    tail = []
    if hidden:
        tail.append(f"{hidden} unchanged function(s) hidden.")
    tail += [f"Note: {n}" for n in plan.notes]
    if tail:
        out += ["", *tail]
    return "\n".join(out)


def plan_json(plan: Plan) -> dict[str, Any]:
    return plan.to_dict()


def render_json(plan: Plan) -> str:
    return json.dumps(plan_json(plan), indent=2, sort_keys=True, ensure_ascii=False)


def render_markdown(plan: Plan, limit: int = MARKDOWN_LIMIT) -> str:
    """Verdict first, breaking and prune items on top, one collapsible section per function."""
    out = [f"### aiops plan: {plan.verdict()}", ""]
    # The lists on top share the budget too (a thousand errors must not break the comment).
    share = limit // 4
    if plan.errors:
        out += ["**Errors** (nothing can be applied until they are fixed):", ""]
        out += [*_capped([f"- {_code(e)}" for e in plan.errors], share), ""]
    breaking = [(c.name, b) for c in plan.changes for b in c.breaking]
    if breaking:
        out += ["**Breaking changes for callers:**", ""]
        out += [*_capped([f"- **{n}**: {_md(b)}" for n, b in breaking], share), ""]
    archives = [c for c in plan.changes if c.action == "archive"]
    if archives:
        out += ["**To archive (prune):**", ""]
        out += [*_capped([f"- `{c.name}`" for c in archives], share), ""]
    if plan.drift:
        out += ["**Drift** (the database differs from what git set):", ""]
        out += [*_capped([f"- **{d.name}**: {_md(d.message)}" for d in plan.drift], share), ""]
    shown = _shown(plan)
    for i, c in enumerate(shown):
        section = _md_section(c)
        if sum(len(x) + 1 for x in out) + len(section) > limit:
            out.append(f"_{len(shown) - i} more function(s) not shown (size limit); "
                       "see `aiops plan --json`._")
            break
        out.append(section)
    hidden = sum(1 for c in plan.changes if c.action == "noop" and not c.conflict)
    if hidden:
        out.append(f"_{hidden} unchanged function(s) hidden._")
    return "\n".join(out).rstrip() + "\n"


def _capped(items: list[str], budget: int) -> list[str]:
    """As many items as fit in `budget` characters, then how many more there are."""
    out: list[str] = []
    used = 0
    for i, item in enumerate(items):
        if used + len(item) + 1 > budget:
            return [*out, f"- _... {len(items) - i} more; see `aiops plan --json`_"]
        out.append(item)
        used += len(item) + 1
    return out


def _backticks(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


def _code(text: str) -> str:
    """An inline code span that survives backticks inside (`version`); no escaping needed."""
    n = _backticks(text)
    if n == 0:
        return f"`{text}`"
    tick = "`" * (n + 1)
    return f"{tick} {text} {tick}"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _md_section(c: FunctionChange) -> str:
    lines = [f"<details><summary><code>{SYMBOL[c.action].strip() or '='}</code> "
             f"<b>{c.name}</b>: {LABEL[c.action]} {_md(_versions(c))}</summary>", "",
             _md(c.reason), ""]
    for d in c.diffs:
        # A fence longer than any run of backticks inside, or a prompt's ``` would close it.
        fence = "`" * max(3, max(map(_backticks, d.lines), default=0) + 1)
        lines += [f"`{d.field}`", "", f"{fence}diff", *d.lines, fence, ""]
    lines += ["</details>", ""]
    return "\n".join(lines)
