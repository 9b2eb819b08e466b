"""The CI pipeline (.github/workflows/aiops.yml): it passes GitHub's workflow schema, and its
steps' scripts, read from the file, run here as the workflow runs them: `aiops validate
--base` in a git repository with an `origin`, `aiops plan --format markdown` against a
database holding what the base branch applies, `aiops test` in replay with JUnit results, and
on the main branch the saved plan applied."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
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
    assert "postgres" in pr["services"]
    assert pr["env"]["AIOPS_DATABASE_URL"].startswith("postgresql+psycopg://")
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


def test_pull_request_steps_then_main_apply(repo_root: Path, tmp_path: Path, pr_checkout: Path,
                                           database_url: str) -> None:
    wf = load_workflow(repo_root)
    pr_job, main_job = wf["jobs"]["pull-request"], wf["jobs"]["apply"]
    env = ci_env(tmp_path, database_url, pr_job)
    work = pr_checkout
    edit(work / "functions/summarize/function.yaml",
         "description: Summarize an article into a few bullet points.",
         "description: Summarize an article into short bullet points.")
    git(work, "commit", "-q", "-am", "summarize: clearer description")

    validate = run_step(pr_job, "validate", work, env)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "valid against origin/main" in validate.stdout

    plan = run_step(pr_job, "plan", work, env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    plan_md = (tmp_path / "runner-temp/aiops-plan.md").read_text(encoding="utf-8")
    assert "1 metadata update" in plan_md and "summarize" in plan_md
    assert "create" not in plan_md.split("\n")[0]  # the base branch is already applied

    golden = run_step(pr_job, "golden", work, env)
    assert golden.returncode == 0, golden.stdout + golden.stderr
    junit = ET.parse(tmp_path / "runner-temp/aiops-golden.xml").getroot()
    assert (junit.get("tests"), junit.get("failures")) == ("14", "0")
    summary = (tmp_path / "step-summary.md").read_text(encoding="utf-8")
    assert "1 metadata update" in summary

    # merged: the main-branch job saves the plan and applies exactly that plan
    git(work, "checkout", "-q", "-B", "main", "pr")
    main_env = ci_env(tmp_path, database_url, main_job) | {"GIT_ACTOR": "octocat"}
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
