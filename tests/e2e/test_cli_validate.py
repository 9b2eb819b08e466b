"""`aiops validate`, `init`, `new`, `schema` through the real console script."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.helpers import aiops, copy_examples, git


@pytest.fixture
def project(tmp_path: Path, repo_root: Path) -> Path:
    """A copy of this repository's example project."""
    return copy_examples(tmp_path / "project", repo_root)


def test_examples_validate(repo_root: Path) -> None:
    result = aiops("validate", repo_root)
    assert result.returncode == 0, result.stdout + result.stderr
    # The example's alert rules notify nobody (the repository configures no receivers):
    # evaluated and listed, and said so.
    assert "OK: 4 function(s) valid, 2 warning(s)." in result.stdout
    assert result.stdout.count("notifies nobody") == 2


def test_broken_copy_lists_every_error_with_its_place(project: Path) -> None:
    summarize = project / "functions/summarize/function.yaml"
    summarize.write_text(summarize.read_text().replace("temperature:", "temprature:"))
    extract = project / "functions/extract-entities/function.yaml"
    extract.write_text(extract.read_text().replace("{{ text }}", "{{ txt }}"))
    (project / "functions/translate/function.yaml").write_bytes(b"name: a\nname: b\n")
    result = aiops("validate", ".", cwd=project)
    assert result.returncode == 1
    out = result.stdout
    assert "functions/summarize/function.yaml:10:3: error: configuration.temprature: unknown " \
        "key `temprature` (fix: did you mean `temperature`?)" in out
    assert "functions/extract-entities/function.yaml:18: error: prompt[1].content: template " \
        "variable `txt`" in out
    assert "functions/translate/function.yaml:2:1: error: name: duplicate key `name`" in out
    assert "errors" not in result.stderr and "Traceback" not in result.stderr
    assert out.strip().endswith("4 error(s), 0 warning(s) in 4 function(s).")


def test_json_format(project: Path) -> None:
    (project / "functions/translate/function.yaml").write_bytes(b"\xff\xfe")
    result = aiops("validate", project, "--format", "json")
    assert result.returncode == 1
    payload = json.loads(result.stdout)
    assert payload["format_version"] == 1 and payload["ok"] is False
    (diag,) = [d for d in payload["diagnostics"] if d["severity"] == "error"]
    assert diag["file"].endswith("functions/translate/function.yaml")
    assert diag["line"] == 1 and "UTF-8" in diag["message"]


def test_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = aiops("validate", tmp_path / "nope")
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_base_revision_rules(project: Path) -> None:
    git(project, "init", "-q", "-b", "main")
    git(project, "add", ".")
    git(project, "commit", "-qm", "base")
    fn = project / "functions/classify-ticket/function.yaml"
    # A behaviour change without a bump.
    _edit(fn, "temperature: 0,", "temperature: 0.1,")
    result = aiops("validate", "--base", "main", cwd=project)
    assert result.returncode == 1
    assert "functions/classify-ticket/function.yaml:4:10: error: version: behaviour changed " \
        "(configuration) but version is still 2.1.0" in result.stdout
    # A breaking change with a minor bump: every item is listed.
    _edit(fn, "version: 2.1.0", "version: 2.2.0")
    _edit(fn, "enum: [billing, technical, account, other]",
          "enum: [billing, technical, account, other, sales]")
    _edit(fn, "enum: [free, pro, enterprise], default: free", "enum: [pro, enterprise]")
    result = aiops("validate", "--base", "main", cwd=project)
    assert result.returncode == 1
    assert "breaking change without a major version bump (2.1.0 -> 2.2.0)" in result.stdout
    assert "input.customer_tier: enum no longer accepts [\"free\"]" in result.stdout
    assert "output.queue: enum widened with [\"sales\"]" in result.stdout
    assert "set `version: 3.0.0`" in result.stdout
    _edit(fn, "version: 2.2.0", "version: 3.0.0")
    assert aiops("validate", "--base", "main", cwd=project).returncode == 0
    # Commit 3.0.0, then going back to 2.1.0's exact content is a rollback, allowed.
    git(project, "commit", "-qam", "v3")
    git(project, "show", "HEAD~1:functions/classify-ticket/function.yaml")
    fn.write_text(git(project, "show", "HEAD~1:functions/classify-ticket/function.yaml"))
    result = aiops("validate", "--base", "main", cwd=project)
    assert result.returncode == 0, result.stdout
    # ... but 2.1.0 with other content is not.
    _edit(fn, "seed: 7", "seed: 8")
    result = aiops("validate", "--base", "main", cwd=project)
    assert result.returncode == 1 and "version goes down from 3.0.0 to 2.1.0" in result.stdout


def test_base_revision_rules_in_a_project_below_the_repositorys_top(tmp_path: Path,
                                                                     repo_root: Path) -> None:
    top = tmp_path / "mono"
    top.mkdir()
    project = copy_examples(top / "ai", repo_root)
    (top / "providers.yaml").write_text("not: the project's\n")  # a namesake at the top
    git(top, "init", "-q", "-b", "main")
    git(top, "add", ".")
    git(top, "commit", "-qm", "base")
    fn = project / "functions/classify-ticket/function.yaml"
    _edit(fn, "temperature: 0,", "temperature: 0.1,")
    result = aiops("validate", "--base", "main", cwd=project)
    assert result.returncode == 1
    assert "version: behaviour changed (configuration) but version is still 2.1.0" \
        in result.stdout
    # The history behind the base is read at the project's paths too: a rollback passes.
    _edit(fn, "version: 2.1.0", "version: 3.0.0")
    git(top, "commit", "-qam", "v3")
    fn.write_text(git(top, "show", "HEAD~1:ai/functions/classify-ticket/function.yaml"))
    result = aiops("validate", "--base", "main", cwd=project)
    assert result.returncode == 0, result.stdout


def test_unknown_base_is_a_clear_error(project: Path) -> None:
    git(project, "init", "-q", "-b", "main")
    result = aiops("validate", "--base", "nope", cwd=project)
    assert result.returncode == 2 and result.stderr.startswith("Error: git ls-tree failed")


def test_init_new_and_schema(tmp_path: Path, repo_root: Path) -> None:
    result = aiops("init", tmp_path / "p")
    assert result.returncode == 0, result.stderr
    assert aiops("validate", tmp_path / "p").returncode == 0
    result = aiops("new", "review-code", "-C", tmp_path / "p")
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "p/functions/review-code/function.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=../../schemas/function.schema.json")
    check = aiops("validate", tmp_path / "p")
    assert check.returncode == 0 and "2 function(s) valid" in check.stdout, check.stdout
    assert aiops("new", "Bad_Name", "-C", tmp_path / "p").returncode == 2
    printed = aiops("schema")
    assert printed.returncode == 0
    assert json.loads(printed.stdout)["properties"]["apiVersion"]["const"] == "aiops/v1"
    # The committed copies are what the command prints (regenerate with `aiops schema`).
    assert printed.stdout == (repo_root / "schemas/function.schema.json").read_text()
    providers = aiops("schema", "--kind", "providers").stdout
    assert providers == (repo_root / "schemas/providers.schema.json").read_text()


def test_examples_validate_against_the_published_schema(repo_root: Path) -> None:
    import jsonschema
    import yaml

    schema = json.loads((repo_root / "schemas/function.schema.json").read_text())
    for path in sorted((repo_root / "functions").glob("*/function.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    bad = yaml.safe_load((repo_root / "functions/summarize/function.yaml").read_text())
    bad["temprature"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_new_in_a_project_without_schemas_writes_what_its_modeline_points_at(
        tmp_path: Path, repo_root: Path) -> None:
    shutil.copy(repo_root / "providers.yaml", tmp_path)
    result = aiops("new", "fresh-one", "-C", tmp_path)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "functions/fresh-one/function.yaml").read_text()
    target = text.splitlines()[0].split("$schema=")[1]
    schema = (tmp_path / "functions/fresh-one" / target).resolve()
    assert json.loads(schema.read_text())["title"] == "aiops function (aiops/v1)"
    assert f"created {tmp_path / 'schemas/function.schema.json'}" in result.stdout
    again = aiops("new", "second-one", "-C", tmp_path)
    assert "schemas" not in again.stdout  # written once, never overwritten


@pytest.mark.parametrize("args", [["plan"], ["apply", "--auto-approve"], ["status"],
                                  ["db", "upgrade"], ["watch"], ["test"], ["validate"],
                                  ["run", "x", "--input", "{}"], ["logs", "x"], ["new", "x1"]])
def test_a_mistyped_project_dir_is_refused_and_creates_nothing(tmp_path: Path,
                                                              args: list[str]) -> None:
    from click.testing import CliRunner

    from aiops.cli import cli

    missing = tmp_path / "typo"
    result = CliRunner().invoke(cli, [*args, "-C", str(missing)])
    assert result.exit_code == 2, result.output
    assert "does not exist" in result.output
    assert not missing.exists()
