"""The plain-template fast path of `template_checks.analyse` agrees with Jinja's own analysis."""

from __future__ import annotations

import pytest

from aiops.template_checks import analyse, template_variables

PLAIN = [
    "You are a careful assistant.",
    "",
    "Summarise {{ text }} in {{bullets}} bullets.",
    "{{- text -}}\n\nline two {{ other }}\n{{ text }}",
    "Line 1\nLine 2 {{ late }}\n\n{{ later }} and {{ late }}",
    "{{ range }} {{ namespace }} {{ lipsum }}",  # globals: not variables unless declared
    "{{ loop }} {{ caller }} {{ self }}",
    "{{ true }} {{ None }}",
    'JSON example: {"a": {"b": 1}} then {{ x }}',  # `}}` outside a substitution
    "{{ x }} {% if y %}{{ y }}{% endif %}",
    "{# note #}{{ x }}",
    "{{ x.y }} {{ x | upper }}",
]


@pytest.mark.parametrize("source", PLAIN)
@pytest.mark.parametrize("declared", [set(), {"range", "text"}])
def test_analysis_matches_jinja(source: str, declared: set[str]) -> None:
    analysis = analyse(source, declared)
    assert analysis.variables == template_variables(source, declared)
    assert analysis.problems == ()


def test_lines_of_first_use_in_a_plain_template() -> None:
    source = "a\n{{ first }}\nb\n\n{{ second }} {{ first }}\n" * 1000
    assert analyse(source, set()).variables == {"first": 2, "second": 5}
