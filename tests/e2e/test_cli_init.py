"""`aiops init` and `aiops new` through the real console script: a new project is green from
its first commit (validate and the golden tests pass offline), init never overwrites a file
unless told to, makes a git repository, and writes a workflow and hooks that install exactly
this release of this distribution."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from aiops import __version__
from aiops.extras import DISTRIBUTION
from tests.e2e.helpers import aiops, git

WORKFLOW = ".github/workflows/aiops.yml"
SCAFFOLD = ("schemas/function.schema.json", "schemas/providers.schema.json", "providers.yaml",
            WORKFLOW, ".pre-commit-config.yaml", ".gitignore", "aiops.yaml",
            "functions/hello/function.yaml", "functions/hello/cassettes/groq/smoke.yaml")


def load_yaml(path: Path) -> Any:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and True in data:  # YAML 1.1 reads a workflow's `on` as true
        data["on"] = data.pop(True)
    return data


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project as `aiops init` writes it (read-only for the tests that share it)."""
    root = tmp_path_factory.mktemp("init") / "fresh"
    result = aiops("init", root)
    assert result.returncode == 0, result.stderr
    return root


def test_a_fresh_project_passes_its_own_checks_offline(fresh: Path) -> None:
    assert sorted(str(p.relative_to(fresh)) for p in fresh.rglob("*")
                  if p.is_file() and ".git" not in p.parts) == sorted(SCAFFOLD)
    validate = aiops("validate", cwd=fresh)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "OK: 1 function(s) valid." in validate.stdout
    # No key and a provider URL that cannot answer: the example's cassette is replayed.
    env = {"GROQ_API_KEY": "", "AIOPS_GROQ_BASE_URL": "http://127.0.0.1:9"}
    golden = aiops("test", cwd=fresh, env=env)
    assert golden.returncode == 0, golden.stdout + golden.stderr
    assert "1 passed of 1" in golden.stdout and "(replay)" in golden.stdout


def test_the_scaffolded_hooks_pass_in_a_fresh_project(fresh: Path) -> None:
    config = load_yaml(fresh / ".pre-commit-config.yaml")
    [repo] = config["repos"]
    assert repo["repo"] == "local"
    hooks = {hook["id"]: hook for hook in repo["hooks"]}
    assert set(hooks) == {"aiops-validate", "aiops-test"}
    for hook in hooks.values():
        assert set(hook) <= {"id", "name", "entry", "language", "additional_dependencies",
                             "files", "pass_filenames", "require_serial"}
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        [dependency] = hook["additional_dependencies"]
        assert dependency == f"{DISTRIBUTION}=={__version__}"
        assert re.search(hook["files"], "functions/hello/function.yaml")
        assert re.search(hook["files"], "providers.yaml")
        ran = aiops(*hook["entry"].split()[1:], cwd=fresh)  # as pre-commit runs it
        assert ran.returncode == 0, ran.stdout + ran.stderr


# --- the workflow ---------------------------------------------------------------------------

def test_the_scaffolded_workflow_installs_exactly_this_release(fresh: Path) -> None:
    wf = load_yaml(fresh / WORKFLOW)
    requirement = Requirement(wf["env"]["AIOPS_PIP_SPEC"])
    assert requirement.name == DISTRIBUTION == "aiops-kit"
    assert str(requirement.specifier) == f"=={__version__}"
    assert requirement.extras == {"postgres"}  # the databases the plan reads and apply writes
    installs = [step for job in wf["jobs"].values() for step in job["steps"]
                if "pip install" in step.get("run", "")]
    assert len(installs) == len(wf["jobs"])
    for step in installs:
        assert step["run"] == 'python -m pip install "$AIOPS_PIP_SPEC"'
    assert "@VERSION@" not in (fresh / WORKFLOW).read_text(encoding="utf-8")


def test_the_scaffolded_workflow_passes_the_github_workflow_schema(fresh: Path) -> None:
    check = subprocess.run([str(Path(sys.executable).parent / "check-jsonschema"),
                            "--builtin-schema", "vendor.github-workflows", str(fresh / WORKFLOW)],
                           capture_output=True, text=True, timeout=120, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_scaffolded_workflow_pins_its_actions_and_keeps_no_credentials(fresh: Path) -> None:
    text = (fresh / WORKFLOW).read_text(encoding="utf-8")
    uses = re.findall(r"^\s*(?:- )?uses: (\S+)(.*)$", text, re.M)
    assert {u.split("@")[0] for u, _ in uses} == {
        "actions/checkout", "actions/setup-python", "actions/upload-artifact",
        "actions/github-script"}
    majors = {"actions/checkout": 7, "actions/setup-python": 7, "actions/upload-artifact": 7,
              "actions/github-script": 9}  # current majors (Node 24); see docs/testing.md
    for ref, comment in uses:
        action, _, sha = ref.partition("@")
        assert re.fullmatch(r"[0-9a-f]{40}", sha), f"{ref}: pin by commit"
        version = re.fullmatch(r"\s*# v(\d+)\.\d+\.\d+", comment)
        assert version, f"{ref}: the release in a comment"
        assert int(version.group(1)) == majors[action]
    wf = load_yaml(fresh / WORKFLOW)
    for job in wf["jobs"].values():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
            if step.get("uses", "").startswith("actions/setup-python@"):
                assert step["with"]["cache"] == "pip"
                assert step["with"]["cache-dependency-path"] == WORKFLOW


def test_the_scaffolded_workflow_checks_every_supported_python(fresh: Path,
                                                               repo_root: Path) -> None:
    import tomllib

    check = load_yaml(fresh / WORKFLOW)["jobs"]["check"]
    versions = check["strategy"]["matrix"]["python-version"]
    assert versions == ["3.11", "3.12", "3.13"]
    ids = [step.get("id") for step in check["steps"]]
    assert ids[-2:] == ["check-validate", "check-golden"]
    classifiers = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"][
        "classifiers"]
    assert [c.rsplit(" ", 1)[1] for c in classifiers
            if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)] == versions


def test_the_first_push_is_green_without_a_database_secret(fresh: Path, tmp_path: Path) -> None:
    """On the first push the apply job has no AIOPS_DATABASE_URL: it says so and applies
    nothing, instead of failing."""
    apply = load_yaml(fresh / WORKFLOW)["jobs"]["apply"]
    assert apply["needs"] == "check"
    [save] = [s for s in apply["steps"] if s.get("id") == "save-plan"]
    output, summary = tmp_path / "output", tmp_path / "summary"
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "AIOPS_DATABASE_URL": "",
           "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary),
           "RUNNER_TEMP": str(tmp_path)}
    ran = subprocess.run(["bash", "-e", "-c", save["run"]], cwd=fresh, env=env,
                         capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "::warning::nothing applied: set the AIOPS_DATABASE_URL secret" in ran.stdout
    assert output.read_text() == "apply=false\n"
    later = [s for s in apply["steps"] if s.get("name") in ("Keep the plan",
                                                            "Apply the saved plan")]
    assert [s["if"] for s in later] == ["steps.save-plan.outputs.apply == 'true'"] * 2


def test_the_first_pull_request_plans_against_the_base_branch(tmp_path: Path) -> None:
    """Without the AIOPS_PLAN_DATABASE_URL secret (a new project has none), the pull-request
    plan applies the base branch to a database of the job's own, plans against it, and says
    so in the plan it posts; with the secret, only the plan step reads it."""
    root = tmp_path / "p"
    assert aiops("init", root).returncode == 0
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "aiops init")
    git(root, "checkout", "-q", "-b", "first-pr")
    assert aiops("new", "summarize", "-C", root).returncode == 0
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "summarize")
    job = load_yaml(root / WORKFLOW)["jobs"]["pull-request"]
    [plan] = [s for s in job["steps"] if s.get("id") == "plan"]
    assert plan["env"] == {"AIOPS_PLAN_DATABASE_URL": "${{ secrets.AIOPS_PLAN_DATABASE_URL }}"}
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "BASE_REF": "main",
           "AIOPS_PLAN_DATABASE_URL": "", "RUNNER_TEMP": str(runner_temp),
           "GITHUB_OUTPUT": str(tmp_path / "output"),
           "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"), "HOME": str(tmp_path)}
    ran = subprocess.run(["bash", "-e", "-c", plan["run"]], cwd=root, env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    posted = (runner_temp / "aiops-plan.md").read_text(encoding="utf-8")
    assert posted.startswith("> Planned against **the base branch** (`main`, applied to an "
                             "empty database in this job)")
    assert "AIOPS_PLAN_DATABASE_URL" in posted.splitlines()[0]  # how to plan against the real one
    assert "### aiops plan: Plan: 1 to create" in posted  # hello is on main already
    assert (tmp_path / "output").read_text() == "against=base branch\n"
    assert not (root / ".aiops").exists()  # the project's own database untouched


def test_the_repository_workflow_is_the_scaffold_installing_its_checkout(
        fresh: Path, repo_root: Path) -> None:
    ours = load_yaml(repo_root / WORKFLOW)
    theirs = load_yaml(fresh / WORKFLOW)
    assert ours["env"].pop("AIOPS_PIP_SPEC") == ".[postgres]"
    theirs["env"].pop("AIOPS_PIP_SPEC")
    assert theirs == ours


# --- init never overwrites; it makes a git repository -----------------------------------------

def test_init_keeps_existing_files_and_lists_them(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / ".github/workflows").mkdir(parents=True)
    (root / ".gitignore").write_text("node_modules/\n")
    (root / WORKFLOW).write_text("name: ours\n")
    result = aiops("init", root)
    assert result.returncode == 0, result.stderr
    assert (root / ".gitignore").read_text() == "node_modules/\n"
    assert (root / WORKFLOW).read_text() == "name: ours\n"
    assert f"kept    {root / '.gitignore'} (exists; --force overwrites it)" in result.stdout
    assert f"kept    {root / WORKFLOW} (exists; --force overwrites it)" in result.stdout
    assert f"created {root / WORKFLOW}" not in result.stdout
    assert f"note: add `.aiops/` to {root / '.gitignore'}" in result.stdout
    assert f"created {root / 'providers.yaml'}" in result.stdout
    # Again: every file exists now, and each is kept as it is.
    providers = root / "providers.yaml"
    providers.write_text(providers.read_text() + "# edited\n")
    again = aiops("init", root)
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stdout and again.stdout.count("kept ") == len(SCAFFOLD)
    assert providers.read_text().endswith("# edited\n")
    forced = aiops("init", root, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "kept" not in forced.stdout
    assert (root / ".gitignore").read_text() == ".aiops/\n"
    assert load_yaml(root / WORKFLOW)["name"] == "aiops"
    assert not providers.read_text().endswith("# edited\n")


def test_init_adds_no_example_to_a_project_with_functions(tmp_path: Path) -> None:
    root = tmp_path / "p"
    assert aiops("init", root).returncode == 0
    assert aiops("new", "other", "-C", root).returncode == 0
    shutil.rmtree(root / "functions/hello")
    result = aiops("init", root)
    assert result.returncode == 0, result.stderr
    assert not (root / "functions/hello/function.yaml").exists()
    assert f"note: no example function: {root / 'functions'} already holds functions" \
        in result.stdout


def test_init_makes_a_git_repository_on_main_when_outside_one(tmp_path: Path) -> None:
    root = tmp_path / "p"
    result = aiops("init", root)
    assert result.returncode == 0, result.stderr
    assert f"made a git repository in {root}" in result.stdout
    assert git(root, "rev-parse", "--show-toplevel").strip() == str(root)
    assert git(root, "symbolic-ref", "--short", "HEAD").strip() == "main"
    assert git(root, "check-ignore", ".aiops/aiops.db").strip() == ".aiops/aiops.db"


def test_init_inside_a_repository_makes_none(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "trunk")
    root = tmp_path / "sub" / "p"
    result = aiops("init", root)
    assert result.returncode == 0, result.stderr
    assert "made a git repository" not in result.stdout
    assert not (root / ".git").exists()
    assert git(root, "rev-parse", "--show-toplevel").strip() == str(tmp_path)


# --- the project's id ---------------------------------------------------------------------

def test_init_writes_a_project_id_of_its_own_and_force_keeps_it(tmp_path: Path) -> None:
    one, two = tmp_path / "a" / "My Prompts", tmp_path / "b" / "My Prompts"
    assert aiops("init", one).returncode == 0 and aiops("init", two).returncode == 0
    ids = [load_yaml(root / "aiops.yaml")["project"] for root in (one, two)]
    assert all(re.fullmatch(r"my-prompts-[a-z0-9]{6}", i) for i in ids), ids
    assert ids[0] != ids[1]  # namesakes are two projects
    settings = one / "aiops.yaml"
    settings.write_text(settings.read_text() + "max_prune: 3\n")
    forced = aiops("init", one, "--force")
    assert forced.returncode == 0, forced.stderr
    assert load_yaml(settings) == {"project": ids[0]}  # rewritten, the id kept


def test_init_notes_a_kept_aiops_yaml_without_an_id(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "aiops.yaml").write_text("max_prune: 3\n")
    result = aiops("init", root)
    assert result.returncode == 0, result.stderr
    assert (root / "aiops.yaml").read_text() == "max_prune: 3\n"
    [note] = [line for line in result.stdout.splitlines() if "no `project:` id" in line]
    assert re.search(r"add `project: p-[a-z0-9]{6}` to keep it apart from other projects", note)


# --- new --provider ---------------------------------------------------------------------------

@pytest.mark.parametrize(("provider", "model"), [("openai", "gpt-4o-mini"),
                                                 ("groq", "llama-3.1-8b-instant")])
def test_new_with_a_provider_writes_a_model_it_serves(tmp_path: Path, provider: str,
                                                      model: str) -> None:
    root = tmp_path / "p"
    assert aiops("init", root).returncode == 0
    result = aiops("new", "review-code", "-C", root, "--provider", provider)
    assert result.returncode == 0, result.stderr
    spec = load_yaml(root / "functions/review-code/function.yaml")
    assert (spec["provider"], spec["model"]) == (provider, model)
    check = aiops("validate", root)
    assert check.returncode == 0 and "OK: 2 function(s) valid." in check.stdout, check.stdout


def test_new_with_an_unknown_provider_lists_the_choices(tmp_path: Path) -> None:
    root = tmp_path / "p"
    assert aiops("init", root).returncode == 0
    result = aiops("new", "review-code", "-C", root, "--provider", "anthropic")
    assert result.returncode == 2
    assert result.stderr == ("Error: unknown provider `anthropic`: providers.yaml has `groq`, "
                             "`openai`; pass one of them to --provider, or add it to "
                             "providers.yaml\n")
    assert not (root / "functions/review-code").exists()
