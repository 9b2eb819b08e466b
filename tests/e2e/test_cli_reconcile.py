"""`aiops plan / apply / status / db upgrade` end to end: exit codes, formats, saved plans,
concurrent applies and an apply killed mid-transaction."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aiops.cli import cli
from aiops.cli import reconcile as cli_reconcile
from aiops.store import open_store
from aiops.store.tables import F, R, V
from tests.e2e.helpers import AIOPS, git
from tests.fixtures_db import count, current_versions, snapshot, spec_data, write_project


def run(*args: str | Path, input: str | None = None) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def test_plan_apply_cycle_with_exit_codes(project: Path, db_url: str) -> None:
    write_project(project, [spec_data("alpha"), spec_data("beta")])
    r = run("plan", "-C", project, "--detailed-exitcode")
    assert r.exit_code == 2, r.output
    assert r.output.splitlines()[0] == "Plan: 2 to create"
    r = run("apply", "-C", project)
    assert r.exit_code == 2
    assert "refusing to apply without a terminal" in r.output
    assert count(db_url, F) == 0
    r = run("apply", "-C", project, "--auto-approve", "--actor", "ci")
    assert r.exit_code == 0, r.output
    assert "Applied in" in r.output
    r = run("plan", "-C", project, "--detailed-exitcode")
    assert (r.exit_code, r.output.splitlines()[0]) == (0, "No changes.")


def test_interactive_apply_asks_and_only_yes_applies(project: Path, db_url: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_reconcile, "_interactive", lambda: True)
    write_project(project, [spec_data()])
    r = run("apply", "-C", project, input="no\n")
    assert r.exit_code == 1 and "Apply cancelled" in r.output
    assert current_versions(db_url) == {}
    r = run("apply", "-C", project, input="yes\n")
    assert r.exit_code == 0, r.output
    assert r.output.index("Plan: 1 to create") < r.output.index("Apply these changes?")
    assert current_versions(db_url) == {"greet": ("active", "1.0.0")}


def test_json_and_markdown_render_the_same_plan(project: Path) -> None:
    write_project(project, [spec_data()])
    run("apply", "-C", project, "--auto-approve")
    write_project(project, [spec_data(version="2.0.0", input_schema={
        "type": "object", "required": ["who", "lang"],
        "properties": {"who": {"type": "string"}, "lang": {"type": "string"}},
        "additionalProperties": False}, prompt=[{"role": "user",
                                                 "content": "Hi {{ who }} in {{ lang }}"}])])
    data = json.loads(run("plan", "-C", project, "--json").output)
    assert data["format_version"] == 1
    assert data["verdict"] == "Plan: 1 new version"
    assert data["changes"][0]["breaking"]
    md = run("plan", "-C", project, "--format", "markdown").output
    assert md.startswith("### aiops plan: Plan: 1 new version")
    assert "<details>" in md and "```diff" in md
    text = run("plan", "-C", project).output
    assert "+ input_schema.properties.lang.type: \"string\"" in text


def test_saved_plan_is_its_own_approval_and_refused_when_stale(project: Path,
                                                               db_url: str) -> None:
    write_project(project, [spec_data()])
    out = project / "plan.json"
    r = run("plan", "-C", project, "-o", out)
    assert r.exit_code == 0 and out.exists()
    saved = json.loads(out.read_text())
    assert saved["state_token"] and saved["state_summary"] == {}
    stale = project / "stale.json"
    stale.write_text(out.read_text())
    r = run("apply", out, "-C", project)  # no terminal needed: the file is the approval
    assert r.exit_code == 0, r.output
    r = run("apply", stale, "-C", project)
    assert r.exit_code == 1
    assert "run `aiops plan -o plan.json` again" in r.output
    r = run("apply", project / "missing.json", "-C", project)
    assert r.exit_code == 2 and "does not exist" in r.output


def test_plan_with_an_invalid_file_exits_1_and_is_not_saved(project: Path) -> None:
    write_project(project, [spec_data()])
    (project / "functions" / "greet" / "function.yaml").write_text("name: [oops\n")
    r = run("plan", "-C", project, "-o", project / "p.json", "--detailed-exitcode")
    assert r.exit_code == 1
    assert "Plan failed" in r.output and "functions/greet/function.yaml" in r.output
    assert not (project / "p.json").exists()


def test_status_and_db_upgrade(project: Path) -> None:
    write_project(project, [spec_data("alpha"), spec_data("beta")])
    run("apply", "-C", project, "--auto-approve")
    write_project(project, [spec_data("alpha", version="1.1.0", model="mock-large")])
    r = run("status", "-C", project)
    assert r.exit_code == 0, r.output
    table, last = r.output.split("\n\n")
    lines = {line.split()[0]: line.split() for line in table.splitlines()[1:]}
    assert lines["alpha"][1:5] == ["new", "version", "pending", "1.0.0"]
    assert lines["beta"][1:3] == ["no", "file"]
    assert last.startswith("Last apply: ") and " by " in last
    data = json.loads(run("status", "-C", project, "--json").output)
    assert [f["name"] for f in data["functions"]] == ["alpha", "beta"]
    r = run("db", "upgrade", "-C", project)
    assert r.exit_code == 0 and "newest schema revision" in r.output


def test_plan_and_apply_refuse_what_validate_base_refuses_in_its_words(project: Path,
                                                                      db_url: str) -> None:
    out_ab = {"type": "object", "required": ["a", "b"],
              "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}
    write_project(project, [spec_data(output_schema=out_ab)])
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "base")
    assert run("apply", "-C", project, "--auto-approve").exit_code == 0
    write_project(project, [spec_data(version="1.1.0", output_schema={
        "type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}})])
    validated = run("validate", "-C", project, "--base", "main")
    assert validated.exit_code == 1
    [said] = [line for line in validated.output.splitlines() if "breaking change" in line]
    words = said.split(": ", 1)[1]  # after the file's location (validate has the line)
    assert words.startswith("error: version: breaking change without a major version bump "
                            "(1.0.0 -> 1.1.0): output.b: output property removed; output.a:")
    planned = run("plan", "-C", project, "--detailed-exitcode")
    assert planned.exit_code == 1
    assert f"functions/greet/function.yaml: {words}" in planned.output
    before = snapshot(db_url)
    applied = run("apply", "-C", project, "--auto-approve")
    assert applied.exit_code == 1
    assert "nothing was written" in applied.output and words in applied.output
    assert snapshot(db_url) == before


def test_apply_warns_on_stderr_when_it_records_a_dirty_commit(project: Path) -> None:
    write_project(project, [spec_data()])
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "one")
    sha = git(project, "rev-parse", "HEAD").strip()
    clean = run("apply", "-C", project, "--auto-approve")
    assert clean.exit_code == 0 and "Warning" not in clean.stderr
    write_project(project, [spec_data(description="Edited, not committed.")])
    dirty = run("apply", "-C", project, "--auto-approve")
    assert dirty.exit_code == 0, dirty.output
    assert dirty.stderr == (f"Warning: applied with uncommitted changes (functions/greet/"
                            f"function.yaml): recorded as commit {sha}-dirty; commit them, so "
                            "that the database names the revision its functions came from\n")
    assert "Warning" not in dirty.stdout
    status = run("status", "-C", project)
    assert status.exit_code == 0, status.output
    assert status.output.count(f"{sha[:10]}-dirty") == 2  # the function's row, the last apply


def test_adopt_on_the_command_line_and_in_a_saved_plan(project: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    write_project(project, [spec_data()])
    monkeypatch.setenv("AIOPS_PROJECT", "someone-else")
    assert run("apply", "-C", project, "--auto-approve").exit_code == 0
    monkeypatch.setenv("AIOPS_PROJECT", "test-project")
    planned = run("plan", "-C", project, "--detailed-exitcode")
    assert planned.exit_code == 1
    assert "greet belongs to project `someone-else`" in planned.output
    refused = run("apply", "-C", project, "--auto-approve")
    assert refused.exit_code == 1 and "not taken over without --adopt" in refused.stderr
    out = project / "plan.json"
    saved = run("plan", "-C", project, "--adopt", "-o", out, "--detailed-exitcode")
    assert saved.exit_code == 2, saved.output
    assert "adopted from project `someone-else` (--adopt)" in saved.output
    both = run("apply", out, "-C", project, "--adopt")
    assert both.exit_code == 2 and "a saved plan already says whether it prunes and adopts" in (
        both.stderr)
    assert run("apply", out, "-C", project).exit_code == 0
    assert run("plan", "-C", project, "--detailed-exitcode").exit_code == 0


# --- real processes ----------------------------------------------------------------------------


def _env(db_url: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "AIOPS_DATABASE_URL": db_url, "AIOPS_PROJECT": "test-project", **extra}
    env.pop("AIOPS_DEBUG", None)
    return env


def test_concurrent_applies_write_each_version_once(project: Path, db_url: str) -> None:
    write_project(project, [spec_data(f"fn-{i:02d}") for i in range(20)])
    procs = [subprocess.Popen([AIOPS, "apply", "-C", str(project), "--auto-approve"],
                              env=_env(db_url), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    outputs = [p.communicate(timeout=120) for p in procs]
    results = [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]
    for code, _out, err in results:
        assert code == 0, err
        assert err == ""
    assert count(db_url, V) == 20
    assert count(db_url, R) == 1  # one apply wrote; the seven others found nothing to do
    assert sum("Applied in" in out for _, out, _ in results) == 1


def test_apply_killed_mid_transaction_leaves_the_database_as_before(project: Path,
                                                                    db_url: str) -> None:
    write_project(project, [spec_data("alpha")])
    run("apply", "-C", project, "--auto-approve")
    before = snapshot(db_url)
    write_project(project, [spec_data("alpha", version="1.1.0", model="mock-large"),
                            spec_data("beta")])
    err_path = project / "stderr.txt"
    # `aiops apply`, held inside its transaction: after the rows are written, before the run
    # is recorded and the transaction commits.
    paused_apply = (
        "import sys, time\n"
        "from aiops.store import Writer\n"
        "def record_run(self, **kw):\n"
        "    print('test pause inside the apply transaction', file=sys.stderr, flush=True)\n"
        "    time.sleep(60)\n"
        "Writer.record_run = record_run\n"
        "from aiops.cli import main\n"
        f"sys.argv = ['aiops', 'apply', '-C', {str(project)!r}, '--auto-approve']\n"
        "main()\n")
    with err_path.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-c", paused_apply], env=_env(db_url),
                                stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 60
        while "test pause" not in err_path.read_text():
            assert proc.poll() is None, err_path.read_text()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert snapshot(db_url) == before
    r = run("apply", "-C", project, "--auto-approve", "--lock-timeout", "20")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0] == "Plan: 1 to create, 1 new version"
    assert run("plan", "-C", project).output.splitlines()[0] == "No changes."


def test_apply_records_the_git_author_and_commit(project: Path, db_url: str) -> None:
    write_project(project, [spec_data()])
    git(project, "init", "-q")
    git(project, "config", "user.name", "Ada Lovelace")
    git(project, "config", "user.email", "ada@example.org")
    git(project, "add", ".")
    git(project, "commit", "-qm", "first")
    head = git(project, "rev-parse", "HEAD").strip()
    assert run("apply", "-C", project, "--auto-approve").exit_code == 0
    with open_store(db_url).engine.connect() as conn:
        (row,) = conn.execute(R.select()).all()
    assert (row.actor, row.git_commit) == ("Ada Lovelace <ada@example.org>", head)
    assert open_store(db_url).resolve("greet").git_commit == head


@pytest.mark.postgres
def test_fresh_postgres_needs_db_upgrade_then_plans(pg_schema_url: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOPS_DATABASE_URL", pg_schema_url)
    root = write_project(tmp_path / "proj", [spec_data()])
    r = run("plan", "-C", root, "--detailed-exitcode")
    assert r.exit_code == 1
    assert "run `aiops db upgrade`" in r.output
    assert run("db", "upgrade", "-C", root).exit_code == 0
    r = run("plan", "-C", root, "--detailed-exitcode")
    assert (r.exit_code, r.output.splitlines()[0]) == (2, "Plan: 1 to create")


def test_a_negative_lock_timeout_is_a_usage_error(project: Path, db_url: str) -> None:
    write_project(project, [spec_data()])
    r = run("apply", "-C", project, "--auto-approve", "--lock-timeout", "-1")
    assert r.exit_code == 2 and "--lock-timeout" in r.output
    assert count(db_url, F) == 0


@pytest.mark.parametrize("bad", [("--format", "xml"), ("--max-prune", "-1"), ("--no-such",)])
def test_a_bad_command_line_with_detailed_exitcode_exits_1_not_2(project: Path,
                                                                 bad: tuple[str, ...]) -> None:
    # CI reads 2 as "there are changes" (`|| [ $? -eq 2 ]`): a typo must not pass for a plan.
    write_project(project, [spec_data()])
    r = run("plan", "-C", project, "--detailed-exitcode", *bad)
    assert r.exit_code == 1, r.output
    assert run("plan", "-C", project, *bad).exit_code == 2


@pytest.mark.parametrize("content", [
    "[]", '"plan"', '{"format_version": 1, "project": "p", "state_token": "t", "changes": [1]}',
    '{"format_version": 1, "project": "test-project", "state_token": "t", "changes": '
    '[{"name": "greet", "action": "explode", "reason": "x"}]}',
    '{"format_version": 1, "project": "test-project", "state_token": "t", "changes": [], '
    '"drift": [{"name": "greet", "kind": "mystery", "message": "m", "restorable": true}]}',
])
def test_a_file_that_is_not_a_saved_plan_is_a_usage_error(project: Path, db_url: str,
                                                          content: str) -> None:
    bad = project / "bad.json"
    bad.write_text(content, encoding="utf-8")
    r = run("apply", bad, "-C", project)
    assert r.exit_code == 2, r.output
    assert "is not a plan saved by `aiops plan -o`" in r.output
