"""`aiops import` over the real Dotprompt and Prompty files in ../shared/realdata.

Every file there has an expected outcome below: translated (and then loaded and checked
exactly as `aiops validate` would), or refused with the named error at its line. A new file in
the shared directory fails `test_every_real_prompt_file_has_an_expected_outcome` until it is
added here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiops.checks import check_project
from aiops.importers import ImportOutcome, prepare_import
from aiops.loader import load_sources
from tests.factories import PROVIDERS

DOT = "prompt-files/dotprompt"
PTY = "prompt-files/prompty"
PROVIDERS_BYTES = yaml.safe_dump(PROVIDERS, sort_keys=False).encode()  # groq, then openai


def run(realdata: Path, rel: str, **options: Any) -> ImportOutcome:
    path = realdata / rel
    return prepare_import(path.read_text(encoding="utf-8"), path.name,
                          providers_file=PROVIDERS_BYTES, **options)


def loaded(outcome: ImportOutcome) -> Any:
    """The written file as the project loads it, after every check of `aiops validate`."""
    assert outcome.ok and outcome.text and outcome.target, [
        d.render() for d in outcome.diagnostics]
    project = load_sources({outcome.target: outcome.text.encode(),
                            "providers.yaml": PROVIDERS_BYTES})
    diags = list(project.diagnostics) + check_project(project)
    assert [d.render() for d in diags if d.is_error] == []
    return project.functions[outcome.name].spec


def errors(outcome: ImportOutcome) -> list[tuple[int | None, str]]:
    assert not outcome.ok and outcome.text is None
    return [(d.line, d.message) for d in outcome.diagnostics if d.is_error]


def warnings(outcome: ImportOutcome, code: str | None = None) -> list[tuple[int | None, str]]:
    return [(d.line, d.message) for d in outcome.diagnostics
            if not d.is_error and (code is None or d.code == code)]


TRANSLATED = {
    f"{DOT}/dotprompt__04-tools.prompt", f"{DOT}/dotprompt__09-complex-schema.prompt",
    f"{DOT}/dotprompt__11-multilingual-unicode.prompt",
    f"{DOT}/dotprompt__valid-blog-generator.prompt",
    f"{DOT}/dotprompt__valid-customer-support.prompt",
    f"{DOT}/dotprompt__warning-undefined-variable.prompt",
    f"{PTY}/v2__basic.prompty", f"{PTY}/v2__chat-agent.prompty",
    f"{PTY}/v2__config_cascade.prompty", f"{PTY}/v2__shorthand_quick.prompty",
    f"{PTY}/v2__structured.prompty", f"{PTY}/v2__tools_function.prompty",
    f"{PTY}/v2__tools_mcp.prompty", f"{PTY}/v2__tools_openapi.prompty",
    f"{PTY}/v2__vscode_test-sample.prompty",
}
# file -> the (line, error code) of every error, in order
REFUSED: dict[str, list[tuple[int | None, str]]] = {
    f"{DOT}/dotprompt__02-schema-and-config.prompt": [(31, "import-yaml")],
    f"{DOT}/dotprompt__03-multimodal-media.prompt": [(33, "import-unsupported"),
                                                     (39, "import-unsupported")],
    f"{DOT}/dotprompt__05-handlebars-helpers.prompt": [(49, "import-unsupported"),
                                                       (71, "import-unsupported"),
                                                       (79, "import-unsupported")],
    f"{DOT}/dotprompt__07-multi-turn-history.prompt": [(38, "import-unsupported")],
    f"{DOT}/dotprompt__10-kitchen-sink.prompt": [(33, "import-yaml")],
    f"{DOT}/dotprompt__error-invalid-yaml.prompt": [(8, "import-yaml")],
    f"{DOT}/dotprompt__error-unclosed-block.prompt": [(11, "import-syntax")],
    f"{DOT}/dotprompt__features.prompt": [(44, "import-unsupported"), (48, "import-unsupported"),
                                          (54, "import-unsupported"), (57, "import-unsupported")],
    f"{DOT}/dotprompt__partials.prompt": [(28, "import-unsupported"), (32, "import-unsupported"),
                                          (None, "import-model")],
    f"{PTY}/v2__multimodal.prompty": [(10, "import-unsupported"), (12, "import-unsupported")],
    f"{PTY}/v2__shorthand_empty_frontmatter.prompty": [(None, "import-model")],
    f"{PTY}/v2__threaded.prompty": [(10, "import-unsupported")],
}


def test_every_real_prompt_file_has_an_expected_outcome(realdata: Path) -> None:
    files = {p.relative_to(realdata).as_posix()
             for p in (realdata / "prompt-files").glob("*/*.prompt*")}
    assert files == TRANSLATED | set(REFUSED)
    assert len(files) == 27


@pytest.mark.parametrize("rel", sorted(TRANSLATED))
def test_translatable_file_loads_and_validates(realdata: Path, rel: str) -> None:
    spec = loaded(run(realdata, rel))
    assert spec.version == "0.1.0" and spec.status == "draft"
    assert spec.metadata["imported_from"] == Path(rel).name
    assert spec.metadata["original_model"] == spec.model
    assert spec.input_schema["type"] == "object"
    text = run(realdata, rel).text or ""
    assert text.startswith("# yaml-language-server: $schema=https://aiops.dev/schemas/")


@pytest.mark.parametrize("rel", sorted(REFUSED))
def test_untranslatable_file_is_refused_with_located_errors(realdata: Path, rel: str) -> None:
    outcome = run(realdata, rel)
    assert outcome.text is None and outcome.target is None
    got = [(d.line, d.code) for d in outcome.diagnostics if d.is_error]
    assert got == REFUSED[rel]
    assert all(d.file == Path(rel).name for d in outcome.diagnostics if d.is_error)


# --- Dotprompt, file by file ----------------------------------------------------------------


def test_dotprompt_tools_example(realdata: Path) -> None:
    outcome = run(realdata, f"{DOT}/dotprompt__04-tools.prompt")
    spec = loaded(outcome)
    assert spec.name == "dotprompt-04-tools"
    assert (spec.provider, spec.model) == ("groq", "googleai/gemini-2.5-flash")
    assert spec.configuration.temperature == 0.3
    assert [m.role for m in spec.prompt] == ["system", "user"]
    assert spec.prompt[0].content.startswith(
        "You are an AI assistant with access to the following tools:\n\n**Available Tools:**")
    assert spec.prompt[1].content == (
        "{{ query }}\n\n{% if userEmail %}(My email is: {{ userEmail }})\n{% endif %}")
    assert spec.input_schema == {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "The user's request"},
            "userEmail": {"type": ["string", "null"],
                          "description": "User's email for notifications"},
        },
        "required": ["query"],
        "additionalProperties": False,
    }
    assert spec.output_schema == {"type": "string"}
    assert warnings(outcome, "import-dropped") == [
        (19, "tools (getWeather, searchWeb, runCalculation, sendEmail) are not supported by "
             "aiops functions and were dropped; the model answers without calling them")]


def test_dotprompt_complex_schema_nested_loops(realdata: Path) -> None:
    spec = loaded(run(realdata, f"{DOT}/dotprompt__09-complex-schema.prompt"))
    user = spec.prompt[1].content
    # Nothing is required in this JSON Schema: each step may be missing, and is tested first
    assert "Notifications: {% if user is not none and user.preferences is defined and " \
           "user.preferences.notifications is defined and user.preferences.notifications " \
           "%}enabled{% else %}disabled{% endif %}" in user
    assert 'Orders ({{ orders | length if orders is not none else "" }} total):\n' \
           "{% for order in (orders if orders is not none else []) %}- Order " \
           '#{{ order.id if order.id is defined else "" }}: ' in user
    assert '{% for item in (order["items"] if "items" in order else []) %}' in user
    props = spec.input_schema["properties"]
    assert props["user"]["properties"]["preferences"]["properties"]["theme"]["enum"] == [
        "light", "dark", "auto"]
    assert props["orders"]["items"]["properties"]["status"]["enum"] == [
        "pending", "shipped", "delivered"]
    assert "required" not in spec.input_schema  # JSON Schema input: nothing was required
    assert spec.output_schema == {
        "type": "object",
        "properties": {"summary": {"type": "string"}, "totalOrders": {"type": "integer"},
                       "pendingCount": {"type": "integer"},
                       "nextActions": {"type": "array", "items": {"type": "string"}}},
        "required": ["summary", "totalOrders", "pendingCount", "nextActions"],
        "additionalProperties": False,
    }


def test_dotprompt_complex_schema_renders_like_handlebars(realdata: Path) -> None:
    from aiops.prompts import compile_prompt

    spec = loaded(run(realdata, f"{DOT}/dotprompt__09-complex-schema.prompt"))
    prompt = compile_prompt([m.model_dump() for m in spec.prompt],
                            list(spec.input_schema["properties"]))
    user = {"name": "Ada", "email": "ada@example.com",
            "preferences": {"theme": "dark", "notifications": False, "language": "en"}}
    orders = [{"id": "A1", "status": "shipped",
               "items": [{"name": "Pen", "quantity": 2, "price": 1.5}]},
              {"id": "B2", "status": "pending", "items": []}]
    rendered = prompt.render({"user": user, "orders": orders})[1]["content"]
    # What Handlebars renders for the same data (standalone {{#each}} lines vanish).
    assert rendered == (
        "Analyze the following account data:\n\n"
        "User: Ada (ada@example.com)\nTheme preference: dark\nNotifications: disabled\n"
        "Language: en\n\nOrders (2 total):\n"
        "- Order #A1: shipped\n    • Pen x2 @ $1.5\n"
        "- Order #B2: pending\n\n"
        "Provide a JSON summary with total orders, pending count, and recommended actions.")


def test_dotprompt_missing_and_null_fields_render_empty_like_handlebars(realdata: Path
                                                                         ) -> None:
    from aiops.prompts import compile_prompt

    spec = loaded(run(realdata, f"{DOT}/dotprompt__09-complex-schema.prompt"))
    prompt = compile_prompt([m.model_dump() for m in spec.prompt],
                            list(spec.input_schema["properties"]))
    # Nothing is required in this schema: Handlebars prints a missing field as "".
    rendered = prompt.render({"user": {"name": "Ada"},
                              "orders": [{"id": "A1", "status": "shipped"}]})[1]["content"]
    assert rendered.startswith(
        "Analyze the following account data:\n\nUser: Ada ()\nTheme preference: \n"
        "Notifications: disabled\nLanguage: \n\nOrders (1 total):\n- Order #A1: shipped\n\n")
    empty = prompt.render({})[1]["content"]
    assert "User:  ()\n" in empty and "Orders ( total):\n\nProvide" in empty
    tools = loaded(run(realdata, f"{DOT}/dotprompt__04-tools.prompt"))
    prompt = compile_prompt([m.model_dump() for m in tools.prompt],
                            list(tools.input_schema["properties"]))
    assert prompt.render({"query": "hi", "userEmail": None})[1]["content"] == "hi\n\n"


def test_dotprompt_unicode_and_model_role(realdata: Path) -> None:
    outcome = run(realdata, f"{DOT}/dotprompt__11-multilingual-unicode.prompt")
    spec = loaded(outcome)
    assert [m.role for m in spec.prompt] == ["system", "user", "assistant"]
    assert "- 🇯🇵 日本語 (ja)" in spec.prompt[0].content
    assert "- 🇪🇸 Español (es)\n" in spec.prompt[0].content  # line-end space dropped
    assert spec.prompt[0].content.endswith(
        "{% if preserveEmoji %}4. Keep all emoji and emoticons unchanged 🎉✨\n{% endif %}")
    assert spec.prompt[1].content == ("Translate the following text from {{ sourceLanguage }} "
                                      "to {{ targetLanguage }}:\n\n---\n{{ text }}\n---")
    assert spec.prompt[2].content == ("I'll translate the text while preserving its meaning "
                                      "and cultural context.")
    assert spec.input_schema["required"] == ["sourceLanguage", "targetLanguage", "text"]
    assert spec.input_schema["properties"]["sourceLanguage"]["description"] == \
        'Source language code (e.g., "en", "ja", "ar")'
    assert spec.input_schema["properties"]["preserveEmoji"]["type"] == ["boolean", "null"]
    assert "日本語" in (outcome.text or "")  # written as text, not \u escapes


def test_dotprompt_block_roles_and_output_schema(realdata: Path) -> None:
    spec = loaded(run(realdata, f"{DOT}/dotprompt__valid-blog-generator.prompt"))
    assert [(m.role, m.content.split("\n")[0]) for m in spec.prompt] == [
        ("system", "You are a technical writer. Generate structured content."),
        ("user", "Write a blog post about: {{ topic }}")]
    assert spec.configuration.temperature == 0.9
    assert spec.output_schema["required"] == ["title", "outline", "summary"]
    assert spec.output_schema["properties"]["outline"] == {"type": "array",
                                                           "items": {"type": "string"}}
    support = loaded(run(realdata, f"{DOT}/dotprompt__valid-customer-support.prompt"))
    assert support.prompt[1].content == (
        "Hello, my name is {{ name }} and I work at {{ company }}.\nMy email is {{ email }}."
        "\n\nI have a question about my account.")
    assert support.input_schema["required"] == ["name", "email", "company"]


def test_dotprompt_undeclared_variables_become_optional_inputs(realdata: Path) -> None:
    outcome = run(realdata, f"{DOT}/dotprompt__warning-undefined-variable.prompt")
    spec = loaded(outcome)
    assert [m.role for m in spec.prompt] == ["user"]  # no role marker: one user message
    props = spec.input_schema["properties"]
    assert props["email"]["default"] == "" and props["age"]["default"] == ""
    assert spec.input_schema["required"] == ["name"]
    assert [(line, msg.split(";")[0]) for line, msg in warnings(outcome, "import-undeclared")] \
        == [(11, "template variable `email` is not declared in the file's inputs"),
            (12, "template variable `age` is not declared in the file's inputs")]
    assert list(props) == ["name", "email", "age"]  # declared in order of first use
    assert "# - template variable `email` is not declared" in (outcome.text or "")


def test_dotprompt_error_messages_name_the_construct(realdata: Path) -> None:
    assert errors(run(realdata, f"{DOT}/dotprompt__error-unclosed-block.prompt")) == [
        (11, "`{{#if premium}}` is never closed")]
    [(line, message)] = errors(run(realdata, f"{DOT}/dotprompt__error-invalid-yaml.prompt"))
    assert line == 8 and message.startswith("front matter is not valid YAML")
    found = errors(run(realdata, f"{DOT}/dotprompt__features.prompt"))
    assert [m.split(":")[0] for _, m in found] == [
        '`{{media url=imageUrl mime="image/jpeg"}}`', '`{{section "thought"}}`', "`{{history}}`",
        "`this` at the top level is the whole input, which aiops templates cannot name"]
    partials = errors(run(realdata, f"{DOT}/dotprompt__partials.prompt", model="gpt-4o-mini"))
    assert partials == [
        (28, "partial `{{> listItem}}` is not supported: its text lives in another file"),
        (32, 'partial `{{> footer year=2025 author="Google"}}` is not supported: its text '
             "lives in another file")]
    helpers = errors(run(realdata, f"{DOT}/dotprompt__05-handlebars-helpers.prompt"))
    assert [m.split(" is ")[0] for _, m in helpers[:2]] == ["helper `add`", "helper `gt`"]


# --- Prompty, file by file ------------------------------------------------------------------


def test_prompty_basic(realdata: Path) -> None:
    outcome = run(realdata, f"{PTY}/v2__basic.prompty")
    spec = loaded(outcome)
    assert (spec.name, spec.description) == ("basic-prompt", "A basic prompt for testing")
    assert spec.provider == "openai"  # the file's provider, which the project has
    assert spec.model == "gpt-4"
    assert spec.configuration.temperature == 0.7 and spec.configuration.max_tokens == 1000
    assert [m.role for m in spec.prompt] == ["system", "user"]
    assert spec.prompt[0].content == (
        "You are an AI assistant who helps people find information.\n\n# Customer\n"
        "You are helping {{firstName}} {{lastName}} to find answers to their questions.")
    assert spec.prompt[1].content == "{{question}}"
    props = spec.input_schema["properties"]
    assert {k: (v["type"], v["default"]) for k, v in props.items()} == {
        "firstName": ("string", "Jane"), "lastName": ("string", "Doe"),
        "question": ("string", "What is the meaning of life?")}
    assert "required" not in spec.input_schema
    assert spec.metadata["authors"] == ["testauthor"]
    assert "OPENAI_API_KEY" not in (outcome.text or "")  # connection settings never copied
    assert [line for line, _ in warnings(outcome, "import-connection")] == [11]


def test_prompty_structured_outputs(realdata: Path) -> None:
    spec = loaded(run(realdata, f"{PTY}/v2__structured.prompty"))
    assert spec.output_schema == {
        "type": "object",
        "properties": {
            "temperature": {"type": "integer", "description": "Temperature in Fahrenheit"},
            "condition": {"type": "string", "description": "Weather condition"},
            "city": {"type": "string", "description": "City name"},
        },
        "required": ["temperature", "condition", "city"],
        "additionalProperties": False,
    }
    assert spec.input_schema["properties"]["text"]["default"] == \
        "The weather in Paris is 72°F and sunny."


def test_prompty_tools_are_dropped_with_a_warning(realdata: Path) -> None:
    agent = run(realdata, f"{PTY}/v2__chat-agent.prompty")
    spec = loaded(agent)
    assert (spec.name, spec.provider, spec.model) == ("openai-agent", "openai", "gpt-4o-mini")
    assert spec.configuration.temperature == 0 and spec.configuration.max_tokens == 1024
    assert (18, "tools (get_weather) are not supported by aiops functions and were dropped; "
                "the model answers without calling them") in warnings(agent)
    fn = run(realdata, f"{PTY}/v2__tools_function.prompty")
    spec = loaded(fn)
    assert spec.input_schema["properties"]["preferred_unit"] == {"type": "string",
                                                                 "default": "celsius"}
    assert any(d.code == "input-unused" and "preferred_unit" in d.message
               for d in fn.diagnostics)
    for rel in (f"{PTY}/v2__tools_mcp.prompty", f"{PTY}/v2__tools_openapi.prompty"):
        outcome = run(realdata, rel)
        spec = loaded(outcome)
        assert spec.input_schema["properties"]["question"]["default"] == ""
        assert "WEATHER_API_KEY" not in (outcome.text or "")
        assert [d.code for d in outcome.diagnostics if d.severity == "warning"
                and d.file == Path(rel).name] == ["import-dropped", "import-undeclared"]


def test_prompty_shorthands(realdata: Path) -> None:
    quick = loaded(run(realdata, f"{PTY}/v2__shorthand_quick.prompty"))
    assert (quick.name, quick.model) == ("quick-prompt", "gpt-4o-mini")
    assert quick.prompt[1].content == "Write a one-paragraph summary of {{topic}}."
    empty = run(realdata, f"{PTY}/v2__shorthand_empty_frontmatter.prompty")
    assert errors(empty) == [(None, "the file names no model")]
    spec = loaded(run(realdata, f"{PTY}/v2__shorthand_empty_frontmatter.prompty",
                      model="gpt-4o-mini", provider="openai"))
    assert spec.name == "v2-shorthand-empty-frontmatter"
    assert [(m.role, m.content) for m in spec.prompt] == [("system",
                                                           "You are a helpful assistant.")]
    assert "original_model" not in spec.metadata
    cascade = loaded(run(realdata, f"{PTY}/v2__config_cascade.prompty"))
    assert [(m.role, m.content) for m in cascade.prompt] == [("system", "Hello world.")]
    assert cascade.input_schema == {"type": "object", "properties": {}}


def test_prompty_input_schema_variant(realdata: Path) -> None:
    outcome = run(realdata, f"{PTY}/v2__vscode_test-sample.prompty")
    spec = loaded(outcome)
    assert spec.input_schema["required"] == ["question"]
    assert spec.input_schema["properties"]["context"] == {
        "type": "string", "description": "Optional context", "default": ""}
    assert "thread" not in spec.input_schema["properties"]
    assert spec.metadata["tags"] == ["sample", "v2"]
    assert [m.role for m in spec.prompt] == ["system", "user"]
    assert warnings(outcome, "import-dropped") == [
        (24, "input `thread` of kind `thread` is not used by the template and was dropped"),
        (33, 'role attributes [name="Alice"] are not supported and were dropped')]


def test_prompty_media_and_thread_inputs_are_refused(realdata: Path) -> None:
    media = errors(run(realdata, f"{PTY}/v2__multimodal.prompty"))
    assert [m.split(",")[0] for _, m in media] == ["input `photo` has kind `image`",
                                                    "input `recording` has kind `audio`"]
    assert errors(run(realdata, f"{PTY}/v2__threaded.prompty"))[0][1].startswith(
        "input `conversation` has kind `thread`")


# Prompty v1 with its response format in a file, as Prompty's structured-output samples keep it;
# the files it names are the real OpenAI response formats of promptfoo's examples.
RESPONSE_FORMAT = """\
---
name: Math Tutor
model:
  api: chat
  configuration:
    type: openai
    name: gpt-4o-mini
  parameters:
    temperature: 0
    response_format: ${{file:{ref}}}
inputs:
  problem:
    type: string
---
system:
Solve the problem. Answer in JSON.

user:
{{{{problem}}}}
"""
SCHEMAS = "prompt-files/function-schemas"


def test_prompty_response_format_file_becomes_the_output_schema(realdata: Path) -> None:
    for name in ("promptfoo__math_response.response_format.json",
                 "promptfoo__customer_support_analysis.response_format.json"):
        outcome = prepare_import(RESPONSE_FORMAT.format(ref=name), "tutor.prompty",
                                 providers_file=PROVIDERS_BYTES,
                                 read_file=lambda ref: (realdata / SCHEMAS / ref).read_bytes())
        spec = loaded(outcome)
        real = json.loads((realdata / SCHEMAS / name).read_text(encoding="utf-8"))
        assert spec.output_schema == real["json_schema"]["schema"]
        assert spec.configuration.temperature == 0
        # nothing dropped, nothing guessed: only the connection settings are not copied
        assert [d.code for d in outcome.diagnostics] == ["import-connection"]


def test_prompty_response_format_file_that_cannot_be_read_fails_the_import() -> None:
    from aiops.files import FileRefused

    def missing(ref: str) -> bytes:
        raise FileRefused("does not exist", missing=True)

    outcome = prepare_import(RESPONSE_FORMAT.format(ref="schemas/math.json"), "tutor.prompty",
                             providers_file=PROVIDERS_BYTES, read_file=missing)
    assert errors(outcome) == [
        (10, "`model.parameters.response_format` refers to `schemas/math.json`, which does "
             "not exist")]
    assert [d.fix for d in outcome.diagnostics if d.is_error] == [
        "paths in `${file:...}` are relative to the .prompty file: put the file there, or "
        "write its content in place of the reference"]
    unread = prepare_import(RESPONSE_FORMAT.format(ref="x.json"), "tutor.prompty",
                            providers_file=PROVIDERS_BYTES)  # no directory to read it from
    assert errors(unread)[0][1].startswith("`model.parameters.response_format` refers to "
                                           "`x.json`, which cannot be read")
    for body, why in ((b"{not json", "is not JSON: Expecting property name enclosed in "
                                     "double quotes (line 1, column 2)"),
                      (b'{"type": "json_schema", "json_schema": {"name": "x"}}',
                       "has no schema aiops can use")):
        bad = prepare_import(RESPONSE_FORMAT.format(ref="x.json"), "tutor.prompty",
                             providers_file=PROVIDERS_BYTES, read_file=lambda ref, b=body: b)
        [(line, message)] = errors(bad)
        assert line == 10 and why in message, message


# --- options ----------------------------------------------------------------------------------


def test_name_provider_and_model_options_win(realdata: Path) -> None:
    outcome = run(realdata, f"{PTY}/v2__basic.prompty", name="ask-anything", provider="groq",
                  model="llama-3.1-8b-instant")
    spec = loaded(outcome)
    assert (spec.name, spec.provider, spec.model) == ("ask-anything", "groq",
                                                      "llama-3.1-8b-instant")
    assert spec.metadata["original_model"] == "gpt-4"
    assert outcome.target == "functions/ask-anything/function.yaml"
    # no price warning: the model is priced in providers.yaml
    assert not [d for d in outcome.diagnostics if d.code == "price-missing"]


def test_provider_follows_the_model_family(realdata: Path) -> None:
    # gpt-4 and gpt-4o-mini, no provider in the file: the project's openai provider, which
    # is not its first one
    for rel in (f"{PTY}/v2__structured.prompty", f"{PTY}/v2__shorthand_quick.prompty"):
        outcome = run(realdata, rel)
        assert loaded(outcome).provider == "openai"
        assert warnings(outcome, "import-provider") == []
    # a Gemini model: no provider of its family; the first one, and a warning saying so
    tools = run(realdata, f"{DOT}/dotprompt__04-tools.prompt")
    assert loaded(tools).provider == "groq"
    [(line, message)] = warnings(tools, "import-provider")
    assert line is None and message.startswith(
        "model `googleai/gemini-2.5-flash` is of no model family aiops knows")
    llama = run(realdata, f"{PTY}/v2__structured.prompty", model="llama-3.1-8b-instant")
    assert loaded(llama).provider == "groq"


def test_an_unknown_provider_is_refused_by_the_project_check(realdata: Path) -> None:
    outcome = run(realdata, f"{PTY}/v2__basic.prompty", provider="anthropic")
    assert outcome.text is None
    [err] = [d for d in outcome.diagnostics if d.is_error]
    assert (err.code, err.file) == ("provider-unknown", "functions/basic-prompt/function.yaml")
