"""The web UI's pure parts: session values, the schema tables, the diff's three parts, the
sparkline, where sign-in may send a browser next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiops.catalog import FieldChange, VersionDetail, VersionSummary
from aiops.sessions import (
    SESSION_TTL,
    csrf_matches,
    new_session,
    parse_secret,
    session_hash,
)
from aiops.web.pages.functions import schema_rows, split_diff
from aiops.web.session import _next_target
from aiops.web.svg import sparkline

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def test_a_session_keeps_only_the_hash_of_its_secret_and_ends_with_its_token() -> None:
    session = new_session("t1", NOW, None)
    assert session.id_hash == session_hash(session.secret) != session.secret
    assert parse_secret(session.secret) == session.secret
    assert session.expires_at == NOW + SESSION_TTL
    soon = NOW + timedelta(hours=1)
    assert new_session("t1", NOW, soon).expires_at == soon  # never past the token's expiry
    assert new_session("t1", NOW, None).csrf != session.csrf


def test_a_cookie_not_shaped_like_a_secret_is_no_session() -> None:
    for text in (None, "", "x" * 42, "x" * 44, "a b" + "x" * 40, "é" * 43):
        assert parse_secret(text) is None


def test_csrf_tokens_must_match_exactly() -> None:
    assert csrf_matches("abc", "abc")
    assert not csrf_matches("abc", "abd") and not csrf_matches("abc", None)
    assert not csrf_matches("abc", "")


def test_sign_in_sends_a_browser_only_to_a_page_of_the_ui() -> None:
    assert _next_target("/ui/functions/greet?a=1") == "/ui/functions/greet?a=1"
    for elsewhere in (None, "", "https://evil.example/ui/", "//evil.example/ui/x", "/api/x",
                      "/ui\\evil", "/uix"):
        assert _next_target(elsewhere) == "/ui/functions"


def test_schemas_read_as_rows_with_nested_objects_and_arrays_of_objects() -> None:
    schema = {"type": "object", "required": ["item"], "properties": {
        "item": {"type": "object", "required": ["title"], "properties": {
            "title": {"type": "string", "maxLength": 200, "description": "The title."},
            "tags": {"type": "array", "items": {"type": "object", "properties": {
                "label": {"type": "string", "enum": ["a", "b"]}}}}}},
        "level": {"type": ["integer", "null"], "minimum": 1, "default": 3},
        "ref": {"$ref": "#/$defs/x"}}}
    rows = {r.path: r for r in schema_rows(schema)}
    assert list(rows) == ["item", "item.title", "item.tags", "item.tags[].label", "level", "ref"]
    assert rows["item"].required and not rows["item.tags"].required
    assert rows["item.title"].rules == "maxLength 200"
    assert rows["item.title"].description == "The title."
    assert rows["item.tags"].type == "array of object"
    assert rows["item.tags[].label"].rules == 'one of "a", "b"'
    assert rows["level"].type == "integer | null" and rows["level"].rules == "minimum 1; default 3"
    assert rows["ref"].type == "$ref #/$defs/x"


def test_a_schema_without_properties_is_one_row_of_its_type() -> None:
    rows = schema_rows({"type": "string", "maxLength": 10})
    assert [(r.path, r.type, r.rules) for r in rows] == [("(the whole value)", "string",
                                                          "maxLength 10")]
    assert schema_rows(None) == []


def test_a_diff_is_shown_in_three_parts() -> None:
    summary = VersionSummary(id="v", version="1.1.0", behaviour_hash="h", provider="p",
                             model="m", git_commit=None, created_at=NOW, created_by=None,
                             current=True)
    changes = tuple(FieldChange(field=f, kind="paths", lines=("~",)) for f in
                    ("prompt", "input_schema", "output_schema", "configuration", "provider"))
    detail = VersionDetail(function="f", summary=summary, content={}, against="1.0.0",
                           diff=changes)
    parts = split_diff(detail)
    assert [c.field for c in parts["prompt"]] == ["prompt"]
    assert [c.field for c in parts["schemas"]] == ["input_schema", "output_schema"]
    assert [c.field for c in parts["settings"]] == ["configuration", "provider"]
    assert split_diff(None) == {"prompt": [], "schemas": [], "settings": []}


def test_the_sparkline_is_scaled_numbers_only() -> None:
    svg = str(sparkline([0, 5, 10], width=20, height=10, label="<calls>"))
    assert 'points="0.0,8.0 10.0,5.0 20.0,2.0"' in svg
    assert "&lt;calls&gt;" in svg and "<calls>" not in svg
    flat = str(sparkline([0, 0], width=10, height=10))
    assert 'points="0.0,8.0 10.0,8.0"' in flat
    assert "<polyline" in str(sparkline([], width=10, height=10))
