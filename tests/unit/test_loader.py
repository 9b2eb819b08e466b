"""Loading projects: every problem located (file, line, column, key path) and all reported."""

from __future__ import annotations

from aiops.loader import load_sources
from tests.factories import BASE_FUNCTION, PROVIDERS, dump, make_files, make_function


def _by_path(project):  # type: ignore[no-untyped-def]
    return {d.path: d for d in project.diagnostics}


def test_valid_project_loads_with_defaults_materialised() -> None:
    project = load_sources(make_files(make_function()))
    assert project.ok, [d.render() for d in project.diagnostics]
    spec = project.functions["summarize"].spec
    assert spec.retry.max_attempts == 3
    assert spec.limits.max_input_bytes == 65536
    assert spec.status == "active"
    assert project.providers is not None and set(project.providers.providers) == {"groq", "openai"}


def test_unknown_key_suggests_the_right_one_with_line_and_column() -> None:
    text = dump(make_function()).replace(b"temperature:", b"temprature:")
    project = load_sources({"functions/summarize/function.yaml": text})
    diag = _by_path(project)["configuration.temprature"]
    assert diag.message == "unknown key `temprature`"
    assert diag.fix == "did you mean `temperature`?"
    lines = text.decode().splitlines()
    assert lines[diag.line - 1].strip().startswith("temprature:")
    assert diag.column == lines[diag.line - 1].index("temprature") + 1


def test_top_level_typo_and_missing_key() -> None:
    data = make_function(description=None)
    data["desciption"] = "x"
    del data["model"]
    project = load_sources(make_files(data))
    diags = _by_path(project)
    assert diags["desciption"].fix == "did you mean `description`?"
    assert diags["model"].message == "required key `model` is missing"
    assert diags["model"].line == 1  # reported at the mapping that lacks it
    assert not project.functions and project.failed_functions == {"summarize"}


def test_all_errors_of_all_files_in_one_run() -> None:
    bad1 = make_function(name="one", version="1.2")
    bad2 = make_function(name="two", status="archived")
    bad2["prompt"] = [{"role": "robot", "content": "x"}]
    project = load_sources(make_files(bad1, bad2))
    got = {(d.file, d.path) for d in project.diagnostics}
    assert ("functions/one/function.yaml", "version") in got
    assert ("functions/two/function.yaml", "status") in got
    assert ("functions/two/function.yaml", "prompt[0].role") in got
    status = next(d for d in project.diagnostics if d.path == "status")
    assert status.message == '"archived" is not one of "draft", "active" or "deprecated"'


def test_directory_name_must_equal_name() -> None:
    project = load_sources({"functions/other/function.yaml": dump(make_function()),
                            "providers.yaml": dump(PROVIDERS)})
    (diag,) = project.diagnostics
    assert diag.code == "name-mismatch"
    assert "functions/summarize/" in diag.fix
    assert diag.line == 2


def test_yaml_problem_becomes_a_diagnostic_not_an_exception() -> None:
    project = load_sources({"functions/x1/function.yaml": b"a: 1\na: 2\n"})
    (diag,) = project.diagnostics
    assert (diag.line, diag.code) == (2, "yaml")
    assert diag.render().startswith("functions/x1/function.yaml:2:1: error:")


def test_secret_in_provider_file_is_refused_without_echoing_it() -> None:
    providers = {"providers": {"openai": {"type": "openai",
                                          "api_key_env": "sk-proj-abc123SECRET"}}}
    project = load_sources({"providers.yaml": dump(providers)})
    (diag,) = project.diagnostics
    assert diag.path == "providers.openai.api_key_env"
    assert diag.message == 'holds a key-like value ("sk-p…", 20 characters)'
    assert "OPENAI_API_KEY" in diag.fix
    assert "SECRET" not in diag.render() and "proj-abc" not in diag.render()


def test_http_provider_needs_base_url_and_auth_type_is_checked() -> None:
    providers = {"providers": {
        "a": {"type": "http"},
        "bb": {"type": "http", "base_url": "http://x", "auth": {"type": "basic"}},
    }}
    project = load_sources({"providers.yaml": dump(providers)})
    messages = {d.path: d.message for d in project.diagnostics}
    assert "needs `base_url`" in messages["providers.a"]
    assert '`type` "basic" is not one of "bearer", "hmac"' in messages["providers.bb.auth"]


def test_filters_and_assertions_read_well() -> None:
    data = make_function(filters={"output": ["pii_redact", {"dny": "x"}, "shout"]})
    data["tests"][0]["expect"] = [{"path": "$.a", "equals": 1, "contains": "b"}]
    project = load_sources(make_files(data))
    messages = {d.path: (d.message, d.fix) for d in project.diagnostics}
    assert messages["filters.output[1].dny"] == ("unknown key `dny`", "did you mean `deny`?")
    assert 'unknown filter "shout"' in messages["filters.output[2]"][0]
    assert "exactly one of" in messages["tests[0].expect[0]"][0]


def test_base_function_fixture_is_unchanged() -> None:
    # make_function must copy: a test that mutates its result cannot leak into the next.
    make_function()["prompt"].append({"role": "user", "content": "x"})
    assert len(BASE_FUNCTION["prompt"]) == 2


def test_an_invalid_item_is_reported_without_a_spurious_too_short_list() -> None:
    data = make_function()
    data["prompt"] = [{"role": "user", "content": "{{ text }} {{ bullets }}", "rol": "x"}]
    diags = _by_path(load_sources(make_files(data)))
    assert set(diags) == {"prompt[0].rol"}
    empty = make_function(prompt=[])
    assert "at least 1 item" in _by_path(load_sources(make_files(empty)))["prompt"].message


def test_merged_and_overridden_keys_are_located_where_they_are_written() -> None:
    text = dump(make_function()).decode().replace(
        "configuration:\n  temperature: 0.2\n  max_tokens: 400\n",
        "configuration:\n  <<: &conf {temperature: 0.2, max_tokens: 400}\n  temperature: 9\n")
    assert "<<:" in text
    project = load_sources({"functions/summarize/function.yaml": text.encode()})
    diag = _by_path(project)["configuration.temperature"]
    lines = text.splitlines()
    assert lines[diag.line - 1].strip() == "temperature: 9"


def test_a_misnamed_function_file_is_an_error_not_a_missing_function() -> None:
    files = make_files(make_function())
    files["functions/other/function.yml"] = b"anything"
    files["functions/summarize/notes.yaml"] = b"kept next to a real function file: ignored"
    project = load_sources(files)
    (diag,) = project.diagnostics
    assert diag.code == "misnamed-file" and diag.file == "functions/other/function.yml"
    assert diag.fix == "rename it to functions/other/function.yaml"
    # Unknown, not deleted: prune must never archive it.
    assert project.failed_functions == {"other"} and set(project.functions) == {"summarize"}
