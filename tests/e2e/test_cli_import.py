"""`aiops import` through the real console script, on the shared real prompt files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.e2e.helpers import aiops

DOT = "prompt-files/dotprompt"
PTY = "prompt-files/prompty"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    result = aiops("init", root)
    assert result.returncode == 0, result.stderr
    return root


def functions(root: Path) -> set[str]:
    return {p.name for p in (root / "functions").iterdir()}


def test_import_writes_a_function_that_validates(realdata: Path, project: Path) -> None:
    source = realdata / DOT / "dotprompt__valid-customer-support.prompt"
    result = aiops("import", source, "-C", project)
    assert result.returncode == 0, result.stderr
    target = project / "functions" / "dotprompt-valid-customer-support" / "function.yaml"
    assert result.stdout == f"Imported {source} -> {target}\n"
    assert "warning: model: model `gemini-2.5-flash` has no price" in result.stderr
    assert (f"{source}: warning: model `gemini-2.5-flash` is of no model family aiops knows"
            in result.stderr)  # every import warning is printed, and the exit is still 0
    text = target.read_text(encoding="utf-8")
    assert text.splitlines()[0] == \
        "# yaml-language-server: $schema=../../schemas/function.schema.json"
    data = yaml.safe_load(text)
    assert (data["provider"], data["status"], data["version"]) == ("groq", "draft", "0.1.0")
    assert [m["role"] for m in data["prompt"]] == ["system", "user"]
    assert data["input_schema"]["required"] == ["name", "email", "company"]
    check = aiops("validate", project)
    assert check.returncode == 0, check.stdout
    assert check.stdout.splitlines()[-1].startswith("OK: 2 function(s) valid")


def test_existing_file_needs_force(realdata: Path, project: Path) -> None:
    source = realdata / PTY / "v2__basic.prompty"
    assert aiops("import", source, "-C", project).returncode == 0
    target = project / "functions" / "basic-prompt" / "function.yaml"
    target.write_text("# edited\n", encoding="utf-8")
    again = aiops("import", source, "-C", project)
    assert again.returncode == 2
    assert "already exists; pass --force to overwrite it" in again.stderr
    assert target.read_text(encoding="utf-8") == "# edited\n"
    forced = aiops("import", source, "-C", project, "--force")
    assert forced.returncode == 0, forced.stderr
    assert yaml.safe_load(target.read_text(encoding="utf-8"))["provider"] == "openai"
    assert aiops("validate", project).returncode == 0


def test_stdout_with_options_writes_nothing(realdata: Path, project: Path) -> None:
    before = functions(project)
    result = aiops("import", realdata / PTY / "v2__structured.prompty", "-C", project,
                   "--stdout", "--name", "weather-facts", "--provider", "openai",
                   "--model", "gpt-4o-mini")
    assert result.returncode == 0, result.stderr
    assert functions(project) == before
    data = yaml.safe_load(result.stdout)
    assert (data["name"], data["provider"], data["model"]) == ("weather-facts", "openai",
                                                               "gpt-4o-mini")
    assert data["metadata"] == {"imported_from": "v2__structured.prompty",
                                "original_model": "gpt-4"}
    assert data["output_schema"]["required"] == ["temperature", "condition", "city"]
    assert result.stderr == ""  # priced model, nothing dropped: no warning


def test_untranslatable_file_exits_1_and_writes_nothing(realdata: Path, project: Path) -> None:
    before = functions(project)
    source = realdata / DOT / "dotprompt__partials.prompt"
    result = aiops("import", source, "-C", project, "--model", "gpt-4o-mini")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "Error: 2 error(s):"
    assert lines[1].startswith(f"{source}:28: error: partial `{{{{> listItem}}}}` is not "
                               "supported")
    assert lines[2].startswith(f"{source}:32: error: partial `{{{{> footer")
    assert "Traceback" not in result.stderr
    assert functions(project) == before


def test_negative_dotprompt_files_report_their_line(realdata: Path, project: Path) -> None:
    bad_yaml = aiops("import", realdata / DOT / "dotprompt__error-invalid-yaml.prompt",
                     "-C", project)
    assert bad_yaml.returncode == 1
    assert "dotprompt__error-invalid-yaml.prompt:8: error: front matter is not valid YAML" \
        in bad_yaml.stderr
    unclosed = aiops("import", realdata / DOT / "dotprompt__error-unclosed-block.prompt",
                     "-C", project)
    assert unclosed.returncode == 1
    assert "dotprompt__error-unclosed-block.prompt:11: error: `{{#if premium}}` is never " \
           "closed (fix: add `{{/if}}` where the block ends)" in unclosed.stderr


def test_command_line_problems(realdata: Path, project: Path, tmp_path: Path) -> None:
    source = realdata / PTY / "v2__basic.prompty"
    bad_name = aiops("import", source, "-C", project, "--name", "Bad_Name")
    assert bad_name.returncode == 2
    assert "--name `Bad_Name` is not a valid function name" in bad_name.stderr
    missing = aiops("import", tmp_path / "nope.prompt", "-C", project)
    assert missing.returncode == 2
    no_project = aiops("import", source, "-C", tmp_path / "absent")
    assert no_project.returncode == 2
    assert "does not exist; pass -C DIR or --stdout" in no_project.stderr
    no_provider = aiops("import", source, "-C", tmp_path / "absent", "--stdout")
    assert no_provider.returncode == 1
    assert "no provider: the project has no providers.yaml" in no_provider.stderr
    latin1 = tmp_path / "latin.prompt"
    latin1.write_bytes(b"---\nmodel: m\n---\nCaf\xe9 {{x}}\n")
    encoded = aiops("import", latin1, "-C", project)
    assert encoded.returncode == 1
    assert f"{latin1}:4:4: error: byte 0xe9 is not valid UTF-8" in encoded.stderr


TUTOR = """\
---
name: math-tutor
model:
  api: chat
  configuration: {type: openai, name: gpt-4o-mini}
  parameters:
    response_format: ${file:schemas/answer.json}
---
user:
{{problem}}
"""
ANSWER = {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": {
    "type": "object", "properties": {"answer": {"type": "number"}}, "required": ["answer"],
    "additionalProperties": False}}}


@pytest.fixture
def tutor(tmp_path: Path) -> Path:
    """prompts/tutor.prompty, naming prompts/schemas/answer.json (not written)."""
    src = tmp_path / "prompts"
    (src / "schemas").mkdir(parents=True)
    source = src / "tutor.prompty"
    source.write_text(TUTOR, encoding="utf-8")
    return source


def test_response_format_file_is_read_next_to_the_prompty_file(project: Path,
                                                               tutor: Path) -> None:
    (tutor.parent / "schemas" / "answer.json").write_text(json.dumps(ANSWER), encoding="utf-8")
    result = aiops("import", tutor, "-C", project)
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load((project / "functions" / "math-tutor" / "function.yaml").read_text(
        encoding="utf-8"))
    assert data["output_schema"] == ANSWER["json_schema"]["schema"]
    assert data["provider"] == "openai"
    assert aiops("validate", project).returncode == 0


def test_response_format_file_missing_or_outside_fails_the_import(
        project: Path, tutor: Path, tmp_path: Path) -> None:
    source, src = tutor, tutor.parent
    before = functions(project)
    missing = aiops("import", source, "-C", project)
    assert missing.returncode == 1
    assert (f"{source}:7: error: `model.parameters.response_format` refers to "
            "`schemas/answer.json`, which does not exist (fix: paths in `${file:...}` are "
            "relative to the .prompty file") in missing.stderr
    outside = tmp_path / "elsewhere.json"
    outside.write_text(json.dumps(ANSWER), encoding="utf-8")
    (src / "schemas" / "answer.json").symlink_to(outside)
    linked = aiops("import", source, "-C", project)
    assert linked.returncode == 1
    assert f"which is a symlink to {outside}, outside the directory of the .prompty file" \
        in linked.stderr
    source.write_text(TUTOR.replace("schemas/answer.json", "../elsewhere.json"),
                      encoding="utf-8")
    up = aiops("import", source, "-C", project)
    assert up.returncode == 1
    assert "which is outside the directory of the .prompty file" in up.stderr
    assert "Traceback" not in missing.stderr + linked.stderr + up.stderr
    assert functions(project) == before


def test_sample_file_becomes_a_golden_test_that_validates(project: Path, tmp_path: Path
                                                          ) -> None:
    src = tmp_path / "prompts"
    src.mkdir()
    source = src / "chat.prompty"
    source.write_text("---\nname: chat\nmodel: {api: chat, configuration: {type: openai, "
                      "name: gpt-4o-mini}}\nsample: ${file:chat.json}\n---\nsystem:\n"
                      "Help {{customer.name}}.\n\nuser:\n{{question}}\n", encoding="utf-8")
    (src / "chat.json").write_text(json.dumps({"customer": {"name": "Ann", "id": 7},
                                               "question": "Which tent?"}), encoding="utf-8")
    result = aiops("import", source, "-C", project)
    assert result.returncode == 0, result.stderr
    assert (f"{source}:4: warning: Prompty fills the inputs a call leaves out from `sample`, "
            "aiops does not: customer, question are required") in result.stderr
    data = yaml.safe_load((project / "functions" / "chat" / "function.yaml").read_text(
        encoding="utf-8"))
    assert data["tests"] == [{"name": "sample", "input": {
        "customer": {"name": "Ann", "id": 7}, "question": "Which tent?"},
        "expect": [{"schema_valid": True}]}]
    assert data["input_schema"]["required"] == ["customer", "question"]
    assert data["input_schema"]["properties"]["customer"]["type"] == "object"
    check = aiops("validate", project)
    assert check.returncode == 0, check.stdout + check.stderr
