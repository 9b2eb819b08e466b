"""The CI pipeline (.github/workflows/aiops.yml): it passes GitHub's workflow schema, and its
steps' scripts, read from the file, run here as the workflow runs them: `aiops validate
--base` in a git repository with an `origin`, `aiops plan --format markdown` against the real
database through a read-only URL when the AIOPS_PLAN_DATABASE_URL secret is set, else against
the base branch applied in the job, saying which; `aiops test` in replay with JUnit results,
and on the main branch the saved plan applied."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.helpers import aiops, git

BIN = Path(sys.executable).parent
WORKFLOW = ".github/workflows/aiops.yml"


def load_workflow(repo_root: Path) -> dict[str, Any]:
    data = yaml.safe_load((repo_root / WORKFLOW).read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads `on` as true
    return data


def step(job: dict[str, Any], step_id: str) -> dict[str, Any]:
    found = [s for s in job["steps"] if s.get("id") == step_id]
    assert len(found) == 1, f"one step with id {step_id}"
    return found[0]


def test_workflow_passes_the_github_workflow_schema(repo_root: Path) -> None:
    result = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema",
                             "vendor.github-workflows", str(repo_root / WORKFLOW)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_shape(repo_root: Path) -> None:
    wf = load_workflow(repo_root)
    assert "pull_request" in wf["on"] and wf["on"]["push"]["branches"] == ["main"]
    pr, main = wf["jobs"]["pull-request"], wf["jobs"]["apply"]
    assert pr["if"] == "github.event_name == 'pull_request'"
    assert pr["permissions"]["pull-requests"] == "write"
    # The plan needs no database service: the real one (read-only), or a file in the job.
    assert "services" not in pr and "AIOPS_DATABASE_URL" not in pr["env"]
    secret = "${{ secrets.AIOPS_PLAN_DATABASE_URL }}"
    assert step(pr, "plan")["env"] == {"AIOPS_PLAN_DATABASE_URL": secret}
    # the read-only URL reaches the plan step only, never the steps that run the PR's tests
    assert (repo_root / WORKFLOW).read_text(encoding="utf-8").count("secrets.AIOPS_PLAN") == 1
    ids = [s.get("id") for s in pr["steps"]]
    assert ids.index("validate") < ids.index("plan") < ids.index("golden")
    assert 'aiops validate --base "$BASE_REF"' in step(pr, "validate")["run"]
    assert "aiops plan --format markdown" in step(pr, "plan")["run"]
    assert "aiops test --junit-xml" in step(pr, "golden")["run"]
    comment = next(s for s in pr["steps"] if s.get("uses", "").startswith("actions/github-script"))
    assert comment["if"].startswith("always()")
    script = comment["with"]["script"]
    assert "updateComment" in script and "createComment" in script and "marker" in script
    assert main["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert 'aiops plan -o "$RUNNER_TEMP/aiops-plan.json"' in step(main, "save-plan")["run"]
    assert 'aiops apply "$RUNNER_TEMP/aiops-plan.json"' in step(main, "apply-plan")["run"]
    for job in (pr, main):
        for s in job["steps"]:
            assert "${{" not in s.get("run", ""), f"step {s.get('name')} reads only env vars"


def test_pre_commit_hooks(repo_root: Path) -> None:
    hooks = yaml.safe_load((repo_root / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    by_id = {h["id"]: h for h in hooks}
    hook = by_id["aiops-validate"]
    assert (hook["entry"], hook["language"], hook["pass_filenames"]) == (
        "aiops validate", "python", False)
    files = re.compile(hook["files"])
    assert files.search("functions/summarize/function.yaml") and files.search("providers.yaml")
    assert not files.search("src/aiops/cli/__init__.py")
    result = aiops(*hook["entry"].split()[1:], cwd=repo_root)  # as pre-commit runs it
    assert result.returncode == 0, result.stdout + result.stderr
    assert by_id["aiops-test"]["entry"] == "aiops test"


# --- running the steps ---------------------------------------------------------------------


def run_step(job: dict[str, Any], step_id: str, cwd: Path, env: dict[str, str]
             ) -> subprocess.CompletedProcess[str]:
    script = step(job, step_id)["run"]
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ci.sqlite'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def pr_checkout(tmp_path: Path, repo_root: Path) -> Path:
    """A clone whose `origin/main` holds the example project; HEAD is a pull-request branch."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(origin), str(seed))
    shutil.copytree(repo_root / "functions", seed / "functions")
    shutil.copy(repo_root / "providers.yaml", seed / "providers.yaml")
    shutil.copytree(repo_root / ".github", seed / ".github")
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "base")
    git(seed, "push", "-q", "origin", "main")
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(origin), str(work))
    git(work, "checkout", "-q", "-b", "pr")
    return work


def ci_env(tmp_path: Path, database_url: str, job: dict[str, Any]) -> dict[str, str]:
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    for var in ("OPENAI_API_KEY", "GROQ_API_KEY", "INTERNAL_AIOPS_SECRET"):
        env.pop(var, None)  # replay needs no key
    env.update({k: str(v) for k, v in job.get("env", {}).items() if "${{" not in str(v)})
    env.update({"PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
                "AIOPS_DATABASE_URL": database_url, "BASE_REF": "origin/main",
                "RUNNER_TEMP": str(runner_temp),
                "GITHUB_STEP_SUMMARY": str(tmp_path / "step-summary.md"),
                "GITHUB_OUTPUT": str(tmp_path / "step-output"),
                "GIT_AUTHOR_NAME": "CI", "GIT_AUTHOR_EMAIL": "ci@example.com",
                "GIT_COMMITTER_NAME": "CI", "GIT_COMMITTER_EMAIL": "ci@example.com"})
    return env


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def clearer_description(work: Path) -> None:
    """A pull request's commit that changes a function's metadata only."""
    edit(work / "functions/summarize/function.yaml",
         "description: Summarize an article into a few bullet points.",
         "description: Summarize an article into short bullet points.")
    git(work, "commit", "-q", "-am", "summarize: clearer description")


def test_pull_request_steps_then_main_apply(repo_root: Path, tmp_path: Path, pr_checkout: Path,
                                           database_url: str) -> None:
    wf = load_workflow(repo_root)
    pr_job, main_job = wf["jobs"]["pull-request"], wf["jobs"]["apply"]
    env = ci_env(tmp_path, database_url, pr_job)
    work = pr_checkout
    clearer_description(work)

    validate = run_step(pr_job, "validate", work, env)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "valid against origin/main" in validate.stdout

    plan = run_step(pr_job, "plan", work, env | {"AIOPS_PLAN_DATABASE_URL": ""})
    assert plan.returncode == 0, plan.stdout + plan.stderr
    plan_md = (tmp_path / "runner-temp/aiops-plan.md").read_text(encoding="utf-8")
    assert plan_md.startswith("> Planned against **the base branch** (`origin/main`")
    verdict = next(line for line in plan_md.splitlines() if line.startswith("### aiops plan"))
    assert "1 metadata update" in verdict and "summarize" in plan_md
    assert "create" not in verdict  # the base branch is already applied

    golden = run_step(pr_job, "golden", work, env)
    assert golden.returncode == 0, golden.stdout + golden.stderr
    junit = ET.parse(tmp_path / "runner-temp/aiops-golden.xml").getroot()
    assert (junit.get("tests"), junit.get("failures")) == ("14", "0")
    summary = (tmp_path / "step-summary.md").read_text(encoding="utf-8")
    assert "1 metadata update" in summary

    # merged: the main-branch job saves the plan and applies exactly that plan
    git(work, "checkout", "-q", "-B", "main", "pr")
    main_env = ci_env(tmp_path, database_url, main_job) | {"GIT_ACTOR": "octocat"}
    (tmp_path / "step-output").unlink()  # another job: another GITHUB_OUTPUT
    saved = run_step(main_job, "save-plan", work, main_env)
    assert saved.returncode == 0, saved.stdout + saved.stderr
    assert (tmp_path / "step-output").read_text() == "apply=true\n"  # the apply step runs
    applied = run_step(main_job, "apply-plan", work, main_env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    after = aiops("plan", cwd=work, env={"AIOPS_DATABASE_URL": database_url})
    assert after.returncode == 0 and after.stdout.startswith("No changes."), after.stdout


def test_a_bad_pull_request_fails_its_steps(repo_root: Path, tmp_path: Path,
                                           pr_checkout: Path) -> None:
    wf = load_workflow(repo_root)
    pr_job = wf["jobs"]["pull-request"]
    env = ci_env(tmp_path, f"sqlite:///{tmp_path / 'ci.sqlite'}", pr_job)
    work = pr_checkout
    edit(work / "functions/summarize/function.yaml", "You are a concise editor.",
         "You are a terse editor.")  # a behaviour change, same version, stale cassettes
    git(work, "commit", "-q", "-am", "summarize: terser")

    validate = run_step(pr_job, "validate", work, env)
    assert validate.returncode == 1
    assert "summarize" in validate.stdout and "bump" in validate.stdout

    golden = run_step(pr_job, "golden", work, env)
    assert golden.returncode == 1
    assert "MISS summarize[groq]::short-article" in golden.stdout
    assert "+- content: You are a terse editor." in golden.stdout
    junit = ET.parse(tmp_path / "runner-temp/aiops-golden.xml").getroot()
    assert junit.get("failures") == "4"
    assert "❌" in (tmp_path / "runner-temp/aiops-golden.md").read_text(encoding="utf-8")


@contextlib.contextmanager
def read_only(database_url: str) -> Iterator[str]:
    """A URL of `database_url` that can only read: on PostgreSQL a role with SELECT on every
    table and nothing else; on SQLite the file made read-only."""
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite:///"))
        path.chmod(0o444)
        try:
            yield database_url
        finally:
            path.chmod(0o644)
        return
    import psycopg

    from aiops.store.engine import dispose_engines

    role = f"aiops_plan_{uuid.uuid4().hex[:8]}"
    schema = database_url.rsplit("%3D", 1)[1]
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        admin.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
        url = database_url.replace("//postgres@", f"//{role}@")
        try:
            yield url
        finally:
            dispose_engines(url)
            admin.execute(f'DROP OWNED BY "{role}"')
            admin.execute(f'DROP ROLE "{role}"')


def test_the_pull_request_plan_says_what_it_planned_against(
        repo_root: Path, tmp_path: Path, pr_checkout: Path, database_url: str) -> None:
    """With the secret, the plan reads the real database through a read-only URL (here it
    already holds this pull request's change: no changes); without it, the base branch is
    applied to a database of the job's own and the real one is not touched."""
    pr_job = load_workflow(repo_root)["jobs"]["pull-request"]
    env = ci_env(tmp_path, database_url, pr_job)
    work = pr_checkout
    clearer_description(work)
    real = {"AIOPS_DATABASE_URL": database_url}
    assert aiops("db", "upgrade", cwd=work, env=real).returncode == 0
    applied = aiops("apply", "--auto-approve", cwd=work, env=real)  # a hotfix, say
    assert applied.returncode == 0, applied.stderr

    def plan_with(secret: str) -> tuple[str, str, str]:
        """The plan step with the secret set to `secret`: its log, plan, and output."""
        output = tmp_path / "step-output"
        output.unlink(missing_ok=True)
        ran = run_step(pr_job, "plan", work, env | {"AIOPS_PLAN_DATABASE_URL": secret})
        assert ran.returncode == 0, ran.stdout + ran.stderr
        plan_md = (tmp_path / "runner-temp/aiops-plan.md").read_text(encoding="utf-8")
        return ran.stdout, plan_md, output.read_text()

    with read_only(database_url) as url:
        log, text, output = plan_with(url)
    assert "Planning against the database." in log and output == "against=database\n"
    assert text.startswith("> Planned against **the database** (the "
                           "`AIOPS_PLAN_DATABASE_URL` secret, read-only)")
    assert "### aiops plan: No changes." in text

    log, text, output = plan_with("")
    assert "Planning against the base branch." in log and output == "against=base branch\n"
    assert text.startswith("> Planned against **the base branch** (`origin/main`, applied to "
                           "an empty database in this job), not the real database")
    assert "### aiops plan: Plan: 1 metadata update" in text
    summary = (tmp_path / "step-summary.md").read_text(encoding="utf-8")
    assert summary.count("> Planned against") == 2  # each plan in the job's summary
    after = aiops("plan", cwd=work, env=real)
    assert after.stdout.startswith("No changes."), after.stdout  # the real one untouched


def test_a_plan_with_errors_still_reaches_the_summary(repo_root: Path, tmp_path: Path,
                                                     pr_checkout: Path) -> None:
    pr_job = load_workflow(repo_root)["jobs"]["pull-request"]
    env = ci_env(tmp_path, f"sqlite:///{tmp_path / 'unused.sqlite'}", pr_job)
    work = pr_checkout
    edit(work / "functions/summarize/function.yaml", "You are a concise editor.",
         "You are a terse editor.")  # new content under the version the base applied
    git(work, "commit", "-q", "-am", "summarize: terser")
    plan = run_step(pr_job, "plan", work, env | {"AIOPS_PLAN_DATABASE_URL": ""})
    assert plan.returncode == 1
    summary = (tmp_path / "step-summary.md").read_text(encoding="utf-8")
    assert summary.startswith("> Planned against **the base branch**")
    assert "### aiops plan: Plan failed" in summary and "summarize" in summary
