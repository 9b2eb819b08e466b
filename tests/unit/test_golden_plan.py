"""The golden-test plan (matrix, per-provider variants, selection) and the report renderers."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from aiops.assertions import AssertionResult
from aiops.errors import UsageError
from aiops.golden import CaseResult, GoldenReport, matrix, select_cases, variant_for
from aiops.loader import load_sources
from aiops.render_golden import render_json, render_junit, render_markdown, render_text
from aiops.spec import FunctionSpec
from tests import factories

PROVIDERS = b"""
providers:
  openai: {type: openai, api_key_env: OPENAI_API_KEY, models: {gpt-4o-mini: {input_per_mtok: 1, output_per_mtok: 1}}}
  groq: {type: groq, api_key_env: GROQ_API_KEY, models: {llama: {input_per_mtok: 1, output_per_mtok: 1}}}
"""


def make_spec(**overrides: Any) -> FunctionSpec:
    """The factory's `greet`, on openai with a groq fallback and two golden tests."""
    return factories.make_spec("greet", **{
        "description": None, "output_schema": None, "provider": "openai",
        "model": "gpt-4o-mini", "configuration": {"temperature": 0.1},
        "prompt": [{"role": "user", "content": "Hi {{ name }}"}],
        "input_schema": {"type": "object", "properties": {"name": {"type": "string"}}},
        "fallbacks": [{"provider": "groq", "model": "llama",
                       "configuration": {"temperature": 0.7}}],
        "retry": {"max_attempts": 3}, "limits": {"rpm": 5},
        "tests": [{"name": "t1", "input": {"name": "Ada"}}, {"name": "t2", "input": {"name": "B"}}],
        **overrides})


def test_matrix_is_the_provider_then_fallbacks_or_test_providers() -> None:
    assert matrix(make_spec()) == ("openai", "groq")
    assert matrix(make_spec(fallbacks=[{"provider": "openai", "model": "gpt-4o"}])) == ("openai",)
    assert matrix(make_spec(test_providers=["groq"])) == ("groq",)


def test_variant_runs_one_provider_alone_with_its_model_and_configuration() -> None:
    spec = make_spec()
    primary = variant_for(spec, "openai", replay=False)
    assert (primary.provider, primary.model, primary.fallbacks) == ("openai", "gpt-4o-mini", ())
    assert primary.retry.max_attempts == 3 and primary.limits.rpm == 5
    fallback = variant_for(spec, "groq", replay=True)
    assert (fallback.provider, fallback.model) == ("groq", "llama")
    assert fallback.configuration.temperature == 0.7
    assert fallback.fallbacks == ()
    assert fallback.retry.max_attempts == 1  # replay: cassettes hold successful answers only
    assert fallback.limits.rpm is None
    assert fallback.prompt == spec.prompt


def _project(*specs: bytes) -> Any:
    files = {"providers.yaml": PROVIDERS}
    for i, text in enumerate(specs):
        name = f"fn{i}"
        files[f"functions/{name}/function.yaml"] = text.replace(b"NAME", name.encode())
    return load_sources(files)


FN = b"""apiVersion: aiops/v1
name: NAME
version: 1.0.0
provider: openai
model: gpt-4o-mini
prompt: [{role: user, content: "Hi {{ name }}"}]
input_schema: {type: object, properties: {name: {type: string}}}
fallbacks: [{provider: groq, model: llama}]
tests: [{name: a, input: {name: x}}, {name: b, input: {name: y}}]
"""


def test_select_cases_every_test_on_every_provider() -> None:
    project = _project(FN, FN.split(b"tests:")[0])  # fn1 has no tests
    cases, skipped = select_cases(project)
    assert [(c.function, c.provider, c.test.name, c.cassette) for c in cases] == [
        ("fn0", "openai", "a", "functions/fn0/cassettes/openai/a.yaml"),
        ("fn0", "openai", "b", "functions/fn0/cassettes/openai/b.yaml"),
        ("fn0", "groq", "a", "functions/fn0/cassettes/groq/a.yaml"),
        ("fn0", "groq", "b", "functions/fn0/cassettes/groq/b.yaml"),
    ]
    assert skipped == ["fn1: no tests"]
    only_groq, _ = select_cases(project, ["fn0"], "groq")
    assert {c.provider for c in only_groq} == {"groq"}
    assert only_groq[0].record_command() == "aiops test fn0 --provider groq --record"


def test_select_cases_refuses_unknown_names_and_providers() -> None:
    project = _project(FN)
    with pytest.raises(UsageError, match="no function named nope"):
        select_cases(project, ["nope"])
    with pytest.raises(UsageError, match="no selected function is tested on provider `internal`"):
        select_cases(project, [], "internal")


# --- renderers -------------------------------------------------------------------------------


def _report() -> GoldenReport:
    ok = AssertionResult(passed=True, description="output is valid against output_schema")
    bad = AssertionResult(passed=False, description='$.queue equals "billing"', path="$.queue",
                          expected='equals "billing"', actual='"technical"',
                          message='$.queue: expected equals "billing", got "technical"')
    common = {"function": "classify", "model": "gpt-4o-mini"}
    return GoldenReport(mode="replay", duration_s=0.5, results=(
        CaseResult(**common, provider="openai", test="ok-case", status="passed",
                   cassette="functions/classify/cassettes/openai/ok-case.yaml", assertions=(ok,),
                   latency_ms=12.0, cost_usd=0.00002, output={"queue": "billing"}),
        CaseResult(**common, provider="openai", test="wrong-queue", status="failed",
                   cassette="functions/classify/cassettes/openai/wrong-queue.yaml",
                   assertions=(ok, bad), latency_ms=10.0, cost_usd=0.00001),
        CaseResult(**common, provider="groq", test="changed", status="miss",
                   cassette="functions/classify/cassettes/groq/changed.yaml",
                   message="the request rendered now is not in the cassette",
                   diff="--- recorded\n+++ now\n-old prompt\n+new prompt",
                   fix="re-record: aiops test classify --provider groq --record"),
        CaseResult(**common, provider="groq", test="boom", status="error",
                   cassette="functions/classify/cassettes/groq/boom.yaml",
                   message="groq answered 400: bad request"),
    ))


def test_text_report_lists_every_case_and_explains_failures() -> None:
    text = render_text(_report())
    assert "classify::ok-case" in text and "ok" in text
    assert "FAIL (1/2)" in text
    assert '\n  $.queue: expected equals "billing", got "technical"\n' in text
    assert "+new prompt" in text and "fix: re-record: aiops test classify --provider groq" in text
    assert text.rstrip().endswith("1 passed, 1 failed, 1 error, 1 miss of 4 in 0.50s (replay)")


def test_json_report_has_a_format_version_and_every_result() -> None:
    data = json.loads(render_json(_report()))
    assert data["format_version"] == 1 and data["ok"] is False
    assert data["counts"] == {"passed": 1, "failed": 1, "error": 1, "miss": 1, "no-cassette": 0}
    failed = data["results"][1]
    assert failed["assertions"][1]["path"] == "$.queue"


def test_markdown_report_leads_with_the_verdict_and_details_failures() -> None:
    md = render_markdown(_report())
    assert md.startswith("<!-- aiops-golden-tests -->")
    assert "❌ **1 passed, 1 failed, 1 error, 1 miss of 4" in md
    assert ('| `classify::wrong-queue` | openai | ❌ failed | $.queue: expected equals "billing", '
            'got "technical" |') in md
    assert "```diff\n" in md and "+new prompt" in md
    assert "<details><summary>1 passed</summary>" in md


def test_junit_report_parses_with_failures_and_errors() -> None:
    root = ET.fromstring(render_junit(_report()))
    assert root.get("tests") == "4" and root.get("failures") == "2" and root.get("errors") == "1"
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"classify[openai]", "classify[groq]"}
    cases = {c.get("name"): c for c in root.iter("testcase")}
    failure = cases["wrong-queue"].find("failure")
    assert failure is not None
    assert failure.get("message") == '$.queue: expected equals "billing", got "technical"'
    assert cases["boom"].find("error") is not None
    assert cases["changed"].find("failure").get("type") == "miss"  # type: ignore[union-attr]
    assert cases["ok-case"].find("failure") is None


def _miss_with(diff: str, message: str = "the request rendered now is not in the cassette"):  # type: ignore[no-untyped-def]
    return GoldenReport(mode="replay", results=(CaseResult(
        function="f", provider="openai", model="m", test="t", status="miss",
        cassette="functions/f/cassettes/openai/t.yaml", message=message, diff=diff,
        fix="re-record"),))


def test_markdown_fence_survives_a_prompt_that_holds_a_code_fence() -> None:
    diff = "--- recorded\n+++ now\n-  Answer in ```json\n+  Answer in ````json\n   end"
    md = render_markdown(_miss_with(diff))
    fence = "`````"  # longer than any run of backticks inside
    assert f"{fence}diff\n" in md and f"\n{fence}\n</details>" in md
    body = md.split(f"{fence}diff\n")[1].split(f"\n{fence}\n")[0]
    assert "+  Answer in ````json" in body and "re-record" in body


def test_junit_is_well_formed_xml_whatever_the_output_holds() -> None:
    message = "output invalid: got 'a\x1b[31mred\x00\x0b' \ud800"
    xml = render_junit(_miss_with("-\x07bell\n+ok", message=message))
    root = ET.fromstring(xml)  # parses: control characters are replaced
    failure = root.find(".//failure")
    assert failure is not None and "red" in (failure.get("message") or "")
    assert "\x1b" not in xml and "\x00" not in xml


def test_two_tests_of_one_name_are_refused_they_would_share_a_cassette() -> None:
    # Recording one would drop the other's interaction from the shared file, and back.
    project = _project(FN.replace(b"{name: b,", b"{name: a,"))
    with pytest.raises(UsageError, match=r"fn0: two tests are named `a`.*rename one"):
        select_cases(project)


@pytest.mark.parametrize("configuration", [None, {}, {"seed": None}])
def test_a_fallback_without_settings_runs_with_the_functions_as_in_production(
        configuration: dict[str, Any] | None) -> None:
    # The runner falls back to the function's settings when a fallback sets none.
    fallback: dict[str, Any] = {"provider": "groq", "model": "llama"}
    if configuration is not None:
        fallback["configuration"] = configuration
    spec = make_spec(fallbacks=[fallback])
    assert variant_for(spec, "groq", replay=True).configuration.temperature == 0.1
