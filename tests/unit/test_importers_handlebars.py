"""Handlebars -> Jinja: each construct renders, through the aiops renderer, what Handlebars
renders for the same data; what cannot be translated is an error at its line."""

from __future__ import annotations

from typing import Any

import pytest

from aiops.importers.handlebars import Problems, translate_handlebars
from aiops.prompts import compile_prompt


def translate(body: str, schema: Any = None, body_line: int = 1
              ) -> tuple[list[tuple[str, str, int]], dict[str, int], Problems]:
    problems = Problems("t.prompt")
    messages, roots = translate_handlebars(body, body_line=body_line, input_schema=schema,
                                           problems=problems)
    return messages, roots, problems


def render(body: str, data: dict[str, Any], schema: Any = None) -> str:
    messages, roots, problems = translate(body, schema)
    assert problems.items == []
    assert len(messages) == 1
    prompt = compile_prompt([{"role": r, "content": c} for r, c, _ in messages], list(roots))
    return prompt.render(data)[0]["content"]


# (Handlebars body, data, what Handlebars renders)
CASES: list[tuple[str, dict[str, Any], str]] = [
    ("Hi {{name}} and {{ name }}!", {"name": "Ann"}, "Hi Ann and Ann!"),
    ("{{user.address.city}}", {"user": {"address": {"city": "Oslo"}}}, "Oslo"),
    ("{{{raw}}} {{&raw}}", {"raw": "<b>&"}, "<b>& <b>&"),
    ("{{#if a}}A{{else if b}}B{{else}}C{{/if}}", {"a": False, "b": True}, "B"),
    ("{{#if a}}A{{else if b}}B{{else}}C{{/if}}", {"a": False, "b": False}, "C"),
    ("{{#unless done}}todo{{/unless}}", {"done": False}, "todo"),
    ("{{^done}}todo{{/done}}", {"done": True}, ""),
    ("{{#each xs}}{{@index}}:{{this}}{{#if @last}}.{{else}},{{/if}}{{/each}}",
     {"xs": ["a", "b"]}, "0:a,1:b."),
    ("{{#each xs}}{{#if @first}}[{{/if}}{{this}}{{/each}}", {"xs": ["a", "b"]}, "[ab"),
    ("{{#each xs}}x{{else}}none{{/each}}", {"xs": []}, "none"),
    ("{{#each xs as |x i|}}{{i}}={{x}} {{/each}}", {"xs": ["p", "q"]}, "0=p 1=q "),
    ("{{#each people}}{{name}}@{{@root.site}}/{{../site}};{{/each}}",
     {"people": [{"name": "a"}, {"name": "b"}], "site": "s"}, "a@s/s;b@s/s;"),
    ("{{#each rows}}{{#each cells}}{{this}}{{/each}}|{{/each}}",
     {"rows": [{"cells": [1, 2]}, {"cells": [3]}]}, "12|3|"),
    ("{{#with person}}{{name}} ({{../title}}){{else}}nobody{{/with}}",
     {"person": {"name": "Ann"}, "title": "Dr"}, "Ann (Dr)"),
    ("{{#with person}}{{name}}{{else}}nobody{{/with}}", {"person": None}, "nobody"),
    ('{{#ifEquals kind "a"}}A{{else}}B{{/ifEquals}}', {"kind": "a"}, "A"),
    ('{{#unlessEquals kind "a"}}A{{else}}B{{/unlessEquals}}', {"kind": "a"}, "B"),
    ("{{lookup names 1}} {{lookup map key}}", {"names": ["x", "y"], "map": {"k": "v"},
                                               "key": "k"}, "y v"),
    ("{{json data indent=2}}", {"data": {"b": 1}}, '{\n  "b": 1\n}'),
    ("{{items.length}} {{order.items.length}}", {"items": [1, 2], "order": {"items": [1]}},
     "2 1"),
    ("{{order.items}}", {"order": {"items": "dict key, not the method"}},
     "dict key, not the method"),
    (r"\{{literal}} {% raw %} {# not a comment #} {", {}, "{{literal}} {% raw %} {# not a "
                                                         "comment #} {"),
    ("a  {{~name~}}  b", {"name": "N"}, "aNb"),
    ("{{! gone }}{{!-- gone }} too --}}kept", {}, "kept"),
    ("x\n  {{#if t}}\n  y\n  {{/if}}\nz", {"t": True}, "x\n  y\nz"),
    ("x\n  {{#if t}}\n  y\n  {{/if}}\nz", {"t": False}, "x\nz"),
    ("a\n{{#each xs}}\n- {{this}}\n{{/each}}\n\nb", {"xs": [1, 2]}, "a\n- 1\n- 2\n\nb"),
    ("a\n{{! a comment line }}\nb", {}, "a\nb"),
    ("{{#tags}}[{{this}}]{{/tags}}", {"tags": ["x", "y"]}, "[x][y]"),
    ("{{#count}}n={{this}}{{/count}}", {"count": 3}, "n=3"),
]
SCHEMA = {"type": "object", "properties": {"tags": {"type": "array", "items": {}},
                                           "count": {"type": "integer"},
                                           "obj": {"type": "object"}}}


@pytest.mark.parametrize(("body", "data", "expected"), CASES)
def test_translation_renders_what_handlebars_renders(body: str, data: dict[str, Any],
                                                     expected: str) -> None:
    assert render(body, data, SCHEMA) == expected


def test_each_over_a_mapping_uses_its_keys() -> None:
    body = "{{#each obj}}{{@key}}={{this}};{{/each}}"
    assert render(body, {"obj": {"a": 1, "b": 2}}, SCHEMA) == "a=1;b=2;"
    messages, _, _ = translate(body, SCHEMA)
    assert messages[0][1] == ('{% for item_key, item in (obj if obj is not none else {})'
                              '.items() %}{{ item_key }}={{ item if item is not none else "" }}'
                              ';{% endfor %}')


def test_loop_names_avoid_inputs_and_outer_loops() -> None:
    schema = {"type": "object", "properties": {
        "orders": {"type": "array", "items": {"type": "object", "properties": {"orders": {
            "type": "array", "items": {"type": "string"}}}, "required": ["orders"]}},
        "order": {}}, "required": ["orders"]}
    messages, roots, _ = translate("{{#each orders}}{{#each orders}}{{this}}{{/each}}{{/each}}",
                                   schema)
    assert messages[0][1] == ("{% for order2 in orders %}{% for order3 in order2.orders %}"
                              "{{ order3 }}{% endfor %}{% endfor %}")
    assert set(roots) == {"orders"}


def test_roles_split_messages_with_their_lines() -> None:
    body = ('{{! intro }}\n{{role "system"}}\nBe brief.\n\n{{role "user"}}\n{{q}}\n'
            '{{role "model"}}\nSure.\n{{#role "user"}}\nThanks {{name}}\n{{/role}}\n')
    schema = {"type": "object", "properties": {"q": {"type": "string"},
                                               "name": {"type": "string"}},
              "required": ["q", "name"]}
    messages, roots, problems = translate(body, schema, body_line=10)
    assert problems.items == []
    assert messages == [("system", "Be brief.", 11), ("user", "{{ q }}", 14),
                        ("assistant", "Sure.", 16), ("user", "Thanks {{ name }}", 18)]
    assert roots == {"q": 15, "name": 19}


def test_no_role_marker_is_one_user_message_and_blank_parts_vanish() -> None:
    messages, _, _ = translate('\n\n  Hello {{x}}  \n\n{{role "user"}}\n   \n')
    assert messages == [("user", 'Hello {{ x if x is not none else "" }}', 1)]


@pytest.mark.parametrize(("body", "line", "start"), [
    ('a\n{{#if x}}\n{{role "system"}}\n{{/if}}', 3, 'role `system` is switched inside'),
    ("{{#if x}}\n{{/each}}", 2, "`{{/each}}` does not close `{{#if x}}` (opened at line 1)"),
    ("{{upper name}}", 1, "helper `upper` is not a Dotprompt built-in"),
    ("{{#upper name}}x{{/upper}}", 1, "block helper `upper` is not a Dotprompt built-in"),
    ("\n{{@index}}", 2, "`@index` is used outside `{{#each}}`"),
    ("{{> header}}", 1, "partial `{{> header}}` is not supported"),
    ("ok\n{{#> layout}}x{{/layout}}", 2, "partial `{{> layout}}` is not supported"),
    ("{{json this}}", 1, "`this` at the top level is the whole input"),
    ('{{role "tool"}}', 1, "role `tool` has no aiops equivalent"),
    ("{{media url=u}}", 1, "`{{media url=u}}`: the `media` helper inserts"),
    ("{{#section 'x'}}y{{/section}}", 1, "`{{#section 'x'}}`: the `section` helper"),
    ("{{not}}", 1, "input `not` cannot be a Jinja variable name"),
    ("{{/if}}", 1, "`{{/if}}` closes no open block"),
    ("{{else}}", 1, "`{{else}}` outside a block"),
])
def test_untranslatable_constructs_are_located_errors(body: str, line: int, start: str
                                                      ) -> None:
    _, _, problems = translate(body, body_line=1)
    [err] = [d for d in problems.items if d.is_error]
    assert err.line == line
    assert err.message.startswith(start), err.message


def test_syntax_errors_stop_with_their_line() -> None:
    _, _, problems = translate("ok\n\nHello {{name", body_line=20)
    [err] = problems.items
    assert (err.line, err.message, err.code) == (22, "`{{` is never closed", "import-syntax")
    _, _, problems = translate("{{!-- open", body_line=5)
    assert [(d.line, d.message) for d in problems.items] == [
        (5, "comment `{{!--` is never closed")]


def test_every_error_is_reported_not_only_the_first() -> None:
    _, _, problems = translate("{{history}}\n{{> p}}\n{{#if a}}\n{{#each b}}\n{{/each}}")
    assert [(d.line, d.message.split(":")[0]) for d in problems.items] == [
        (1, "`{{history}}`"), (2, "partial `{{> p}}` is not supported"),
        (3, "`{{#if a}}` is never closed")]


def test_log_is_dropped_with_a_warning() -> None:
    messages, _, problems = translate('x{{log "debug" y}}z')
    assert messages[0][1] == "xz"
    assert [(d.severity, d.line) for d in problems.items] == [("warning", 1)]


# --- null and missing values render as Handlebars renders them --------------------------------

OPTIONAL = {"type": "object", "properties": {
    "email": {"type": ["string", "null"]},
    "name": {"type": "string"},
    "user": {"type": "object", "properties": {
        "email": {"type": "string"},
        "address": {"type": ["object", "null"], "properties": {"city": {"type": "string"}},
                    "required": ["city"]}}},
    "tags": {"type": ["array", "null"], "items": {"type": ["string", "null"]}},
    "flag": {"type": "boolean"},
    "order": {"type": "object"},
}, "required": ["name", "flag"]}


@pytest.mark.parametrize(("body", "data", "expected"), [
    ("Email: {{email}}.", {"name": "a", "flag": True, "email": None}, "Email: ."),
    ("Email: {{email}}.", {"name": "a", "flag": True}, "Email: ."),  # absent: passed as None
    ("Email: {{{email}}}.", {"name": "a", "flag": True, "email": None}, "Email: ."),
    ("{{user.email}}|{{user.address.city}}", {"name": "a", "flag": True, "user": {}}, "|"),
    ("{{user.email}}|{{user.address.city}}",
     {"name": "a", "flag": True, "user": {"email": "e", "address": None}}, "e|"),
    ("{{user.address.city}}", {"name": "a", "flag": True,
                               "user": {"address": {"city": "Oslo"}}}, "Oslo"),
    ("{{user.email}}", {"name": "a", "flag": True}, ""),  # the object itself absent
    ("{{#each tags}}[{{this}}]{{/each}}", {"name": "a", "flag": True, "tags": ["x", None]},
     "[x][]"),
    ("{{#each tags}}x{{else}}none{{/each}}", {"name": "a", "flag": True, "tags": None},
     "none"),
    ("{{tags.length}}", {"name": "a", "flag": True, "tags": None}, ""),
    ("{{#with user}}{{email}}{{/with}}", {"name": "a", "flag": True, "user": {}}, ""),
    ("{{#if user.address.city}}in {{user.address.city}}{{/if}}",
     {"name": "a", "flag": True, "user": {}}, ""),
    ("{{#unless user.address.city}}nowhere{{/unless}}",
     {"name": "a", "flag": True, "user": {"address": None}}, "nowhere"),
    ("{{lookup user 'email'}}", {"name": "a", "flag": True, "user": {}}, ""),
    ("{{flag}} {{name}}", {"name": "a", "flag": False}, "false a"),
    ("{{null}}x", {"name": "a", "flag": True}, "x"),
    ("{{order.items}}|{{#each order.keys}}k{{/each}}",  # not the dict methods
     {"name": "a", "flag": True, "order": {}}, "|"),
])
def test_null_and_missing_values_render_empty(body: str, data: dict[str, Any],
                                              expected: str) -> None:
    assert render(body, data, OPTIONAL) == expected


def test_required_values_are_not_guarded() -> None:
    messages, _, _ = translate("{{name}} {{#if email}}<{{email}}>{{/if}} {{email}}", OPTIONAL)
    assert messages[0][1] == ('{{ name }} {% if email %}<{{ email }}>{% endif %} '
                              '{{ email if email is not none else "" }}')
