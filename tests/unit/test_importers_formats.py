"""The importer's pure parts on small inputs: Picoschema, front matter, Prompty shapes
(including v1, which no shared file uses), names, and the YAML written."""

from __future__ import annotations

from typing import Any

import pytest

from aiops.importers import ImportResult, function_name, import_prompt, to_yaml
from aiops.importers.picoschema import SchemaProblem, picoschema
from aiops.yamlsrc import parse


def imp(text: str, source: str = "demo.prompt", **kw: Any) -> ImportResult:
    kw.setdefault("providers", {"groq": "groq", "openai": "openai"})  # name -> type
    return import_prompt(text, source, **kw)


def ok(text: str, source: str = "demo.prompt", **kw: Any) -> dict[str, Any]:
    result = imp(text, source, **kw)
    assert result.ok, [d.render() for d in result.diagnostics]
    assert result.data is not None
    return result.data


def errs(result: ImportResult) -> list[tuple[int | None, str]]:
    assert result.data is None
    return [(d.line, d.message) for d in result.diagnostics if d.is_error]


# --- Picoschema -------------------------------------------------------------------------------


def test_picoschema_fields() -> None:
    assert picoschema({
        "name": "string, The name",
        "age?": "integer",
        "tags(array, list of tags)": "string",
        "kind(enum)": ["a", "b"],
        "mood?(enum)": ["up", "down"],
        "address(object)": {"street": "string", "zip?": "string"},
        "meta?": {"source": "any"},
        "scores": "number[]",
        "(*)": "string",
    }) == {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "The name"},
            "age": {"type": ["integer", "null"]},
            "tags": {"type": "array", "items": {"type": "string"}, "description": "list of tags"},
            "kind": {"enum": ["a", "b"]},
            "mood": {"enum": ["up", "down", None]},
            "address": {"type": "object",
                        "properties": {"street": {"type": "string"},
                                       "zip": {"type": ["string", "null"]}},
                        "required": ["street"], "additionalProperties": False},
            "meta": {"type": ["object", "null"], "properties": {"source": {}},
                     "required": ["source"], "additionalProperties": False},
            "scores": {"type": "array", "items": {"type": "number"}},
        },
        "required": ["name", "tags", "kind", "address", "scores"],
        "additionalProperties": {"type": "string"},
    }


def test_json_schema_passes_through_with_type_strings_expanded() -> None:
    assert picoschema({"type": "object", "properties": {"a": "string", "b": {
        "type": "array", "items": "integer"}}, "required": ["a"]}) == {
        "type": "object", "required": ["a"],
        "properties": {"a": {"type": "string"},
                       "b": {"type": "array", "items": {"type": "integer"}}}}
    assert picoschema({"properties": {"x": {"type": "string"}}})["type"] == "object"


@pytest.mark.parametrize(("value", "message", "path"), [
    ({"who": "Person"}, "unknown type `Person`", ("who",)),
    ({"a": {"b(tuple)": "string"}}, "`b(tuple)`: a parenthetical type is array, object or enum",
     ("a", "b(tuple)")),
    ({"e(enum)": "a"}, "`e(enum)` needs a list of values", ("e(enum)",)),
    ({"n": 3}, "a schema must be a type name or a mapping", ("n",)),
])
def test_picoschema_problems_say_where(value: Any, message: str, path: tuple[str, ...]) -> None:
    with pytest.raises(SchemaProblem) as info:
        picoschema(value)
    assert info.value.message.startswith(message)
    assert info.value.path == path


# --- Dotprompt front matter ---------------------------------------------------------------------

DOTPROMPT = """\
# a comment before the front matter
---
model: vertexai/gemini-2.0-pro
description: Greets people.
config:
  temperature: 0.4
  maxOutputTokens: 300
  topP: 0.9
  topK: 20
  stopSequences: ["END"]
input:
  schema:
    name: string
    lang?(enum): [en, fr]
  default:
    lang: en
output:
  format: json
  schema:
    greeting: string
myext.flag: true
colour: blue
---
{{role "system"}}
Greet in {{lang}}.
{{role "user"}}
{{name}}
"""


def test_dotprompt_front_matter_maps_to_the_function() -> None:
    result = imp(DOTPROMPT, "greeter.prompt")
    data = result.data
    assert data is not None and result.ok
    assert (data["name"], data["description"], data["model"]) == (
        "greeter", "Greets people.", "vertexai/gemini-2.0-pro")
    assert data["configuration"] == {"temperature": 0.4, "max_tokens": 300, "top_p": 0.9,
                                     "stop": ["END"]}
    assert data["input_schema"]["properties"]["lang"] == {"enum": ["en", "fr", None],
                                                          "default": "en"}
    assert data["output_schema"]["required"] == ["greeting"]
    assert data["prompt"] == [  # `lang?` admits null, which Handlebars renders as ""
        {"role": "system", "content": 'Greet in {{ lang if lang is not none else "" }}.'},
        {"role": "user", "content": "{{ name }}"}]
    assert [(d.line, d.message.split(" has ")[0].split(" is ")[0]) for d in result.diagnostics
            ] == [(9, "setting `config.topK`"), (22, "front matter key `colour`"),
                  (None, "model `vertexai/gemini-2.0-pro`")]  # no family: the first provider


def test_dotprompt_without_front_matter_is_all_body() -> None:
    data = ok("Say hi to {{who}}.", model="llama-3.1-8b-instant")
    assert data["prompt"] == [{"role": "user",
                               "content": 'Say hi to {{ who if who is not none else "" }}.'}]
    assert data["input_schema"]["properties"]["who"] == {
        "description": "Used by the template; not declared in demo.prompt.", "default": ""}
    assert data["output_schema"] == {"type": "string"}


def test_dotprompt_output_json_without_schema_is_an_object() -> None:
    data = ok("---\nmodel: m\noutput: {format: json}\n---\nList things.")
    assert data["output_schema"] == {"type": "object"}


@pytest.mark.parametrize(("text", "expected"), [
    ("---\nmodel: m\n", [(1, "the front matter opened by `---` is never closed")]),
    ("---\nmodel: m\ninput:\n  schema: string\n---\nx",
     [(4, "input.schema must describe an object (named inputs)")]),
    ("---\nmodel: m\ninput:\n  schema:\n    who: Person\n---\n{{who}}",
     [(5, "`input.schema.who`: unknown type `Person`: Picoschema types are any, boolean, "
          "integer, null, number, string (named schemas registered in code cannot be "
          "resolved from the file)")]),
    ("---\nmodel: m\noutput: {format: media}\n---\nx",
     [(3, "output format `media` has no aiops equivalent (json, text, array, enum)")]),
    ("---\nmodel: m\nmodel: n\n---\nx",
     [(3, "front matter is not valid YAML: duplicate key `model` (first at line 2)")]),
    ("---\nmodel: m\n---\n{{! only a comment }}\n",
     [(4, "the template has no message text")]),
])
def test_dotprompt_front_matter_errors(text: str, expected: list[tuple[int, str]]) -> None:
    assert errs(imp(text)) == expected


def test_metadata_is_carried_into_the_function() -> None:
    text = ("---\nmodel: gpt-4o-mini\nmetadata:\n  owner: growth-team\n  ticket: 1234\n"
            "  links: {docs: 'https://example.com'}\n  imported_from: elsewhere\n---\nHi")
    result = imp(text, "greet.prompt")
    assert result.data is not None
    assert result.data["metadata"] == {
        "imported_from": "greet.prompt", "original_model": "gpt-4o-mini",
        "owner": "growth-team", "ticket": 1234, "links": {"docs": "https://example.com"}}
    assert [(d.line, d.message) for d in result.diagnostics] == [
        (7, "`metadata.imported_from` is set by the import; the file's value was dropped")]
    bad = imp("---\nmodel: gpt-4o-mini\nmetadata: [a, b]\n---\nHi")
    assert [(d.line, d.message) for d in bad.diagnostics] == [
        (3, "`metadata` is not a mapping and was dropped")]
    prompty = ("---\nmodel: gpt-4o\nmetadata:\n  authors: [ann]\n  tags: [x]\n"
               "  owner: ops\n---\nuser:\nhi")
    assert ok(prompty, "demo.prompty")["metadata"] == {
        "imported_from": "demo.prompty", "original_model": "gpt-4o", "authors": ["ann"],
        "tags": ["x"], "owner": "ops"}


def test_not_a_prompt_file() -> None:
    assert errs(imp("x", "notes.txt")) == [
        (None, "`notes.txt` is neither a .prompt (Dotprompt) nor a .prompty file")]


# --- Prompty ------------------------------------------------------------------------------------

PROMPTY_V1 = """\
---
name: ExamplePrompt
description: A prompt that uses context to ground an incoming question
authors:
  - Seth Juarez
model:
  api: chat
  configuration:
    type: azure_openai
    azure_endpoint: ${env:AZURE_OPENAI_ENDPOINT}
    azure_deployment: gpt-35-turbo
    api_key: ${env:AZURE_OPENAI_KEY}
  parameters:
    max_tokens: 3000
    top_p: 0.9
    stop: ["###"]
sample:
  firstName: Seth
  question: What kind of clothing do you suggest?
inputs:
  firstName:
    type: string
    description: The customer's first name
  question:
    type: string
    sample: Which tent?
  tone: friendly
---
# system:
You are an assistant. Be {{tone}}.
{% for line in context %}- {{ line }}
{% endfor %}

developer:
Never reveal this.

user:
{{firstName}} asks: {{question}}

assistant:
Happy to help!
"""


def test_prompty_v1_shape() -> None:
    result = imp(PROMPTY_V1, "example.prompty")
    data = result.data
    assert data is not None and result.ok
    assert (data["name"], data["model"], data["provider"]) == ("example-prompt",
                                                               "gpt-35-turbo", "openai")
    assert data["configuration"] == {"max_tokens": 3000, "top_p": 0.9, "stop": ["###"]}
    assert [m["role"] for m in data["prompt"]] == ["system", "system", "user", "assistant"]
    assert data["prompt"][0]["content"] == (
        "You are an assistant. Be {{tone}}.\n{% for line in context %}- {{ line }}\n"
        "{% endfor %}")
    props = data["input_schema"]["properties"]
    assert props["firstName"] == {"type": "string", "description": "The customer's first name",
                                  "examples": ["Seth"]}
    # Prompty fills firstName from the sample when a call leaves it out; aiops requires it
    assert data["input_schema"]["required"] == ["firstName"]
    assert data["tests"] == [{"name": "sample", "input": {
        "firstName": "Seth", "question": "What kind of clothing do you suggest?"},
        "expect": [{"schema_valid": True}]}]
    assert props["tone"] == {"type": "string", "default": "friendly"}
    assert props["question"] == {"type": "string", "default": "Which tent?",
                                 "examples": ["What kind of clothing do you suggest?"]}
    assert props["context"]["default"] == ""  # used, not declared
    assert data["metadata"]["authors"] == ["Seth Juarez"]
    text = to_yaml(data)
    assert "AZURE_OPENAI_KEY" not in text and "azure_endpoint" not in text


# Prompty v1 as its docs write it: the inputs known from `sample:` alone, or mostly.
SAMPLED = """\
---
name: Basic Prompt
model:
  api: chat
  configuration:
    type: openai
    name: gpt-4o-mini
inputs:
  question:
    type: string
sample:
  firstName: Jane
  question: What is the meaning of life?
  age: 42
  height: 1.62
  vip: true
  tags: [a, b]
  profile: {city: Oslo}
  notes: null
  unused: 3
---
system:
Help {{firstName}} ({{age}}, {{height}} m, vip: {{vip}}, {{tags}}, {{profile.city}}, {{notes}}).

user:
{{question}}
"""


def test_prompty_sample_becomes_a_golden_test_and_types_its_inputs() -> None:
    result = imp(SAMPLED, "basic.prompty")
    data = result.data
    assert data is not None and result.ok, [d.render() for d in result.diagnostics]
    sample = {"firstName": "Jane", "question": "What is the meaning of life?", "age": 42,
              "height": 1.62, "vip": True, "tags": ["a", "b"], "profile": {"city": "Oslo"},
              "notes": None, "unused": 3}
    assert data["tests"] == [{"name": "sample", "input": sample,
                              "expect": [{"schema_valid": True}]}]
    props = data["input_schema"]["properties"]
    assert {k: v.get("type") for k, v in props.items()} == {
        "question": "string", "firstName": "string", "age": "integer", "height": "number",
        "vip": "boolean", "tags": "array", "profile": "object", "notes": None,
        "unused": "integer"}
    assert props["age"] == {"type": "integer", "description": "Not declared by the prompt "
                            "file; typed from its `sample`.", "examples": [42]}
    assert data["input_schema"]["additionalProperties"] is False
    # used by the template, no default: Prompty would fill them from the sample
    assert data["input_schema"]["required"] == [
        "firstName", "question", "age", "height", "vip", "tags", "profile", "notes"]
    assert [(d.line, d.message) for d in result.diagnostics if d.code == "import-sample"] == [
        (11, "Prompty fills the inputs a call leaves out from `sample`, aiops does not: "
             "firstName, question, age, height, vip, tags, profile, notes are required; the "
             "sample is the golden test `sample`")]


def test_prompty_sample_in_a_file_is_read_or_warned_about() -> None:
    text = SAMPLED.split("sample:")[0] + "sample: ${file:sample.json}\n---\nuser:\n{{question}}"
    read = imp(text, "basic.prompty", read_file=lambda ref: b'{"question": "Why?"}')
    assert read.data is not None and read.data["tests"][0]["input"] == {"question": "Why?"}
    unread = imp(text, "basic.prompty")
    assert unread.data is not None and "tests" not in unread.data
    assert [(d.line, d.severity, d.message) for d in unread.diagnostics
            if d.code == "import-file"] == [
        (11, "warning", "`sample` refers to `sample.json`, which cannot be read: the prompt "
                        "file's directory is not known")]
    listed = imp(text.replace("${file:sample.json}", "[1, 2]"), "basic.prompty")
    assert [(d.line, d.message) for d in listed.diagnostics if d.line == 11] == [
        (11, "`sample` is not a mapping of values and was not imported")]


def provider_warnings(result: ImportResult) -> list[str]:
    return [d.render() for d in result.diagnostics if d.code == "import-provider"]


@pytest.mark.parametrize(("model", "family"), [
    ("gpt-4o-mini", "openai"), ("gpt-35-turbo", "openai"), ("o1", "openai"),
    ("o3-mini", "openai"), ("o4-mini-2025-04-16", "openai"), ("chatgpt-4o-latest", "openai"),
    ("llama-3.1-8b-instant", "groq"), ("mixtral-8x7b-32768", "groq"), ("gemma2-9b-it", "groq"),
    ("qwen/qwen3-32b", "groq"), ("deepseek-r1-distill-llama-70b", "groq"),
    ("meta-llama/llama-4-scout-17b-16e-instruct", "groq"), ("openai/gpt-oss-120b", "groq"),
    ("moonshotai/kimi-k2-instruct", "groq"),
])
def test_provider_follows_the_model_family(model: str, family: str) -> None:
    text = f"---\nmodel: {model}\n---\nHi"
    for providers in ({"fast": "groq", "main": "openai"}, {"main": "openai", "fast": "groq"}):
        result = imp(text, providers=providers)
        assert result.data is not None
        assert providers[result.data["provider"]] == family  # by type, whatever the order
        assert provider_warnings(result) == []


def test_provider_of_an_unknown_family_or_missing_type_is_the_first_with_a_warning() -> None:
    gemini = imp("---\nmodel: googleai/gemini-2.5-flash\n---\nHi")
    assert gemini.data is not None and gemini.data["provider"] == "groq"
    assert provider_warnings(gemini) == [
        "demo.prompt: warning: model `googleai/gemini-2.5-flash` is of no model family aiops "
        "knows (gpt-*, o1*, o3*, o4*: openai; llama, mixtral, gemma, qwen, deepseek, ...: "
        "groq); picked `groq`, the first provider of providers.yaml (fix: pass --provider "
        "NAME, one of groq, openai, and --model, a model that provider serves)"]
    gpt = imp("---\nmodel: gpt-4o\n---\nHi", providers={"fast": "groq", "local": "http"})
    assert gpt.data is not None and gpt.data["provider"] == "fast"
    assert provider_warnings(gpt) == [
        "demo.prompt: warning: model `gpt-4o` is an openai model, and providers.yaml has no "
        "provider of type `openai`; picked `fast`, the first provider of providers.yaml (fix: "
        "pass --provider NAME, one of fast, local, and --model, a model that provider serves; "
        "or add an `openai` provider to providers.yaml)"]


def test_provider_option_wins_and_the_files_own_provider_breaks_ties() -> None:
    text = "---\nmodel:\n  id: gpt-4o\n  provider: azure\n---\nuser:\nhi"
    two = {"groq": "groq", "openai": "openai", "azure": "openai"}
    assert ok(text, "demo.prompty", providers=two)["provider"] == "azure"  # the file's, typed
    assert ok(text, "demo.prompty")["provider"] == "openai"  # no `azure`: the family
    forced = imp(text, "demo.prompty", provider="internal")
    assert forced.data is not None and forced.data["provider"] == "internal"
    assert provider_warnings(forced) == []
    assert ok(text, "demo.prompty", model="llama-3.3-70b-versatile")["provider"] == "groq"
    custom = "---\nmodel:\n  id: my-deployment\n  provider: openai\n---\nuser:\nhi"
    result = imp(custom, "demo.prompty")  # no family: the file's provider, which the project has
    assert result.data is not None and result.data["provider"] == "openai"
    assert provider_warnings(result) == []
    assert errs(imp(text, "demo.prompty", providers={})) == [
        (None, "no provider: the project has no providers.yaml")]


@pytest.mark.parametrize(("text", "expected"), [
    ("---\nmodel:\n  id: m\n  apiType: embedding\n---\nx",
     [(4, "model api `embedding` is not supported; aiops functions are chat completions")]),
    ("---\nmodel: m\ntemplate: mustache\n---\nx",
     [(3, "template format `mustache` is not supported; aiops templates are Jinja2")]),
    ("---\nmodel: m\n---\nsystem:\n{% for x in xs %}\nuser:\n{{x}}\n{% endfor %}",
     [(6, "role line `user:` is inside `{% for %}` (line 5): Prompty splits the messages "
          "after rendering, so the block would choose them; aiops messages are fixed")]),
    ("---\nmodel: m\n---\nsystem:\nHi\n{% if formal %}\n  # system:\nBe formal.\n"
     "{% endif %}\nuser:\nx",
     [(7, "role line `# system:` is inside `{% if %}` (line 6): Prompty splits the messages "
          "after rendering, so the block would choose them; aiops messages are fixed")]),
    ("---\nmodel: m\n---\nsystem:\nx\ntool:\ny",
     [(6, "a `tool:` message has no aiops equivalent")]),
])
def test_prompty_errors(text: str, expected: list[tuple[int, str]]) -> None:
    assert errs(imp(text, "demo.prompty")) == expected


# The conversation loop of Prompty's v1 chat samples (microsoft/prompty, contoso-chat).
CHAT_HISTORY = """\
---
name: Contoso Chat Prompt
model:
  api: chat
  configuration:
    type: azure_openai
    azure_deployment: gpt-35-turbo
inputs:
  question:
    type: string
---
system:
You are an AI agent for the Contoso Outdoors products retailer.

{% for item in history %}
{{item.role}}:
{{item.content}}
{% endfor %}

user:
{{question}}
"""


def test_prompty_role_lines_made_by_the_template_are_refused_at_their_line() -> None:
    result = imp(CHAT_HISTORY, "chat.prompty")
    [err] = [d for d in result.diagnostics if d.is_error]
    assert result.data is None
    assert (err.line, err.code) == (16, "import-unsupported")
    assert err.message == (
        "`{{item.role}}:` makes a role line while rendering (Prompty splits the messages "
        "after rendering); aiops messages are fixed, not chosen at render time")
    assert err.fix.startswith("keep the turns as text in one message")
    # the fix it suggests imports, and renders the turns as text, as Prompty does
    fixed = CHAT_HISTORY.replace("{{item.role}}:\n{{item.content}}",
                                 "{{item.role}}: {{item.content}}")
    data = ok(fixed, "chat.prompty")
    assert [m["role"] for m in data["prompt"]] == ["system", "user"]
    assert "{% for item in history %}\n{{item.role}}: {{item.content}}\n{% endfor %}" in \
        data["prompt"][0]["content"]


@pytest.mark.parametrize("line", ["{{ turn['role'] }}:", "# {{role}}:", "{{r}}[name=x]:"])
def test_prompty_every_role_line_from_an_expression_is_refused(line: str) -> None:
    text = f"---\nmodel: m\n---\nsystem:\nHi\n{line}\nthere"
    assert [ln for ln, _ in errs(imp(text, "demo.prompty"))] == [6]


def test_prompty_text_that_only_looks_like_a_role_line_is_kept() -> None:
    text = ("---\nmodel: m\n---\nsystem:\n{# {% for x in xs %} #}\n{{a}}: {{b}}:\nuser:\n"
            "{{q}}")
    data = ok(text, "demo.prompty")
    assert [(m["role"], m["content"]) for m in data["prompt"]] == [
        ("system", "{# {% for x in xs %} #}\n{{a}}: {{b}}:"), ("user", "{{q}}")]


@pytest.mark.parametrize(("value", "schema"), [
    ("{type: json_object}", {"type": "object"}),
    ("{type: text}", {"type": "string"}),
    ("{type: json_schema, json_schema: {name: x, strict: true, schema: {type: object, "
     "properties: {a: {type: string}}, required: [a], additionalProperties: false}}}",
     {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
      "additionalProperties": False}),
    ("{type: object, properties: {n: {type: integer}}}",  # a JSON Schema itself
     {"type": "object", "properties": {"n": {"type": "integer"}}}),
])
def test_prompty_inline_response_format_is_the_output_schema(value: str,
                                                             schema: dict[str, Any]) -> None:
    for where in ("parameters:\n    response_format", "options:\n    responseFormat"):
        text = f"---\nmodel:\n  id: gpt-4o\n  {where}: {value}\n---\nuser:\nhi"
        result = imp(text, "demo.prompty")
        assert result.ok and result.data is not None, result.diagnostics
        assert result.data["output_schema"] == schema
        assert result.diagnostics == ()


def test_prompty_response_format_and_outputs_together() -> None:
    text = ("---\nmodel:\n  id: gpt-4o\n  options:\n    responseFormat: {type: json_object}\n"
            "outputs:\n  - name: a\n    kind: string\n---\nuser:\nhi")
    result = imp(text, "demo.prompty")
    assert result.data is not None and result.data["output_schema"] == {"type": "object"}
    assert [(d.line, d.message) for d in result.diagnostics] == [
        (6, "`outputs` is left out: `model.options.responseFormat` (line 5) decides the "
            "output")]


def test_prompty_keys_that_are_not_imported_are_warned_about() -> None:
    text = ("---\n$schema: https://example.com/prompty.json\nmodel: gpt-4o\nversion: 1.0\n"
            "base: other.prompty\n---\nuser:\nhi")
    result = imp(text, "demo.prompty")
    assert result.ok
    assert [(d.line, d.message) for d in result.diagnostics] == [
        (4, "front matter key `version` has no aiops equivalent and was ignored"),
        (5, "front matter key `base` has no aiops equivalent and was ignored")]


def test_prompty_outputs_nested_and_kinds() -> None:
    text = """\
---
model: m
inputs:
  - name: n
    kind: float
    required: true
  - name: mode
    kind: string
    enumValues: [fast, slow]
  - name: blob
    kind: bytes
outputs:
  - name: items
    kind: array
    items: {kind: string}
    required: true
  - name: meta
    kind: object
    properties:
      - name: ok
        kind: boolean
        required: true
---
user:
{{n}} {{mode}} {{blob}}
"""
    result = imp(text, "kinds.prompty")
    data = result.data
    assert data is not None
    assert data["input_schema"]["properties"] == {
        "n": {"type": "number"}, "mode": {"type": "string", "enum": ["fast", "slow"]},
        "blob": {}}
    assert data["input_schema"]["required"] == ["n"]
    assert data["output_schema"] == {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"type": "string"}},
            "meta": {"type": "object", "properties": {"ok": {"type": "boolean"}},
                     "required": ["ok"], "additionalProperties": False},
        },
        "required": ["items"], "additionalProperties": False,
    }
    assert [d.message for d in result.diagnostics if d.code != "import-provider"] == [
        "kind `bytes` is not a JSON type; the input accepts any value"]


# --- names and YAML -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "name"), [
    ("ExamplePrompt", "example-prompt"), ("basic-prompt", "basic-prompt"),
    ("dotprompt__valid-blog-generator", "dotprompt-valid-blog-generator"),
    ("v2__shorthand_quick", "v2-shorthand-quick"), ("2nd_try", "nd-try"), ("x", ""),
    ("Überprüfung", "berpr-fung"), ("a" * 80, "a" * 63),
])
def test_function_name(text: str, name: str) -> None:
    assert function_name(text) == name


def test_yaml_is_readable_and_round_trips() -> None:
    result = imp(DOTPROMPT, "greeter.prompt")
    assert result.data is not None
    text = to_yaml(result.data, schema_ref="../../schemas/function.schema.json",
                   notes=result.diagnostics)
    lines = text.splitlines()
    assert lines[0] == "# yaml-language-server: $schema=../../schemas/function.schema.json"
    assert lines[1] == "# Imported from greeter.prompt by `aiops import`."
    assert lines[2].startswith("# - setting `config.topK` has no aiops equivalent")
    assert lines[4].startswith("# - model `vertexai/gemini-2.0-pro` is of no model family")
    assert lines[5] == "apiVersion: aiops/v1"
    assert "  - role: system\n" in text  # list items indented under their key
    value, _ = parse(text.encode())
    assert value == result.data


def test_multiline_prompts_are_literal_blocks_unless_a_tab_forbids_it() -> None:
    data = ok("---\nmodel: m\ninput: {schema: {x: string}}\n---\nline one\nline two {{x}}")
    assert "    content: |-\n      line one\n      line two {{ x }}\n" in to_yaml(data)
    tabbed = ok("---\nmodel: m\ninput: {schema: {x: string}}\n---\nrows:\n\tcell {{x}}")
    text = to_yaml(tabbed)
    assert "|-" not in text
    value, _ = parse(text.encode())  # a tab-indented line would be refused in a block
    assert value["prompt"][0]["content"] == "rows:\n\tcell {{ x }}"
