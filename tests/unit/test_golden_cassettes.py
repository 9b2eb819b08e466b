"""Cassette configuration: matching, filtering, the serializer, and explaining a miss."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml
from vcr.request import Request

from aiops.cassettes import (
    CassetteSerializer,
    Rewrite,
    before_record_response,
    canonical_body,
    explain_miss,
    json_body_matcher,
    make_request_filter,
    make_response_filter,
)

BODY = {"model": "gpt-4o-mini", "messages": [
    {"role": "system", "content": "You route tickets.\nAnswer with JSON only."},
    {"role": "user", "content": "Subject: Charged twice"}], "temperature": 0}


def request(body: object = BODY, uri: str = "https://api.openai.com/v1/chat/completions",
            headers: dict[str, str] | None = None) -> Request:
    raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
    return Request("POST", uri, raw, headers or {"content-type": "application/json"})


def test_json_body_matcher_ignores_key_order_and_whitespace() -> None:
    reordered = json.dumps(dict(reversed(list(BODY.items()))), indent=2).encode()
    json_body_matcher(request(), request(reordered))  # no AssertionError
    with pytest.raises(AssertionError):
        json_body_matcher(request(), request({**BODY, "temperature": 0.5}))
    assert canonical_body(b"not json") == "not json"


def test_the_custom_protocols_version_field_is_not_matched() -> None:
    """A version bump that changes no request needs no re-recording, on any provider: the
    OpenAI and Groq bodies carry no version, the custom protocol's does."""
    uri = "https://ml.example.internal/aiops/v1/complete"
    body = {"function": "translate", "version": "1.0.0", "model": "m", "messages": []}
    json_body_matcher(request(body, uri), request({**body, "version": "1.1.0"}, uri))
    with pytest.raises(AssertionError):
        json_body_matcher(request(body, uri), request({**body, "model": "n"}, uri))
    with pytest.raises(AssertionError):  # elsewhere, every field counts
        other = "https://api.openai.com/v1/chat/completions"
        json_body_matcher(request({**BODY, "version": 1}, other),
                          request({**BODY, "version": 2}, other))
    miss = explain_miss(request({**body, "version": "2.0.0", "model": "n"}, uri),
                        [request(body, uri)])
    assert "model" in miss and "version" not in miss


def test_request_filter_drops_every_header_but_content_type() -> None:
    headers = {"Authorization": "Bearer sk-live-123", "api-key": "k", "OpenAI-Organization": "org",
               "OpenAI-Project": "p", "Cookie": "c=1", "X-Aiops-Signature": "v1=abc",
               "X-Aiops-Timestamp": "1", "User-Agent": "AsyncOpenAI/Python",
               "x-stainless-os": "Linux", "Content-Type": "application/json"}
    filtered = make_request_filter(None)(request(headers=headers))
    assert dict(filtered.headers) == {"Content-Type": "application/json"}


def test_request_filter_rewrites_the_base_url_in_use_to_the_providers_own() -> None:
    rewrite = Rewrite(used="http://127.0.0.1:8765/v1", canonical="https://api.openai.com/v1")
    out = make_request_filter(rewrite)(request(uri="http://127.0.0.1:8765/v1/chat/completions"))
    assert out.uri == "https://api.openai.com/v1/chat/completions"
    other = make_request_filter(rewrite)(request(uri="https://example.com/v1/x"))
    assert other.uri == "https://example.com/v1/x"


def test_response_filter_keeps_successes_and_their_content_type_only() -> None:
    ok = {"status": {"code": 200, "message": "OK"},
          "headers": {"Content-Type": ["application/json"], "Set-Cookie": ["s=1"],
                      "x-request-id": ["req_1"], "openai-organization": ["org"]},
          "body": {"string": b"{}"}}
    assert before_record_response(ok)["headers"] == {"content-type": ["application/json"]}
    for code in (429, 500, 401):
        assert before_record_response({**ok, "status": {"code": code, "message": ""}}) is None


def _cassette_dict() -> dict[str, object]:
    req = request()
    return {"version": 1, "interactions": [{
        "request": {"method": "POST", "uri": req.uri, "body": req.body.decode(),
                    "headers": {"content-type": ["application/json"]}},
        "response": {"status": {"code": 200, "message": "OK"},
                     "headers": {"content-type": ["application/json"]},
                     "body": {"string": json.dumps({"choices": [{"message": {
                         "content": '{"queue": "billing"}'}}], "id": "x"})}}}]}


def test_serializer_is_readable_stable_and_round_trips() -> None:
    serializer = CassetteSerializer("# header\n")
    text = serializer.serialize(_cassette_dict())
    assert text.startswith("# header\n")
    assert text == serializer.serialize(serializer.deserialize(text))  # same answer, same bytes
    data = yaml.safe_load(text)
    stored = data["interactions"][0]["request"]
    assert stored["json"]["messages"][0]["content"] == "You route tickets.\nAnswer with JSON only."
    assert "content: |-\n" in text  # multi-line text as a literal block
    assert list(stored) == ["method", "uri", "headers", "json"]
    back = serializer.deserialize(text)["interactions"][0]
    assert json.loads(back["request"]["body"]) == BODY
    assert json.loads(back["response"]["body"]["string"])["id"] == "x"


def test_serializer_keeps_non_json_bodies_as_text() -> None:
    data = _cassette_dict()
    data["interactions"][0]["response"]["body"]["string"] = "plain text"  # type: ignore[index]
    serializer = CassetteSerializer()
    back = serializer.deserialize(serializer.serialize(data))
    assert back["interactions"][0]["response"]["body"]["string"] == "plain text"


def test_explain_miss_shows_the_changed_lines_against_the_nearest_recording() -> None:
    changed = {**BODY, "messages": [BODY["messages"][0],
                                    {"role": "user", "content": "Subject: Charged three times"}]}
    unrelated = {"model": "other", "messages": []}
    text = explain_miss(request(changed), [request(unrelated), request(BODY)])
    assert "body differs from the recording" in text
    assert "\n-- content: 'Subject: Charged twice'\n+- content: 'Subject: Charged three times'\n" \
        in text
    assert "--- recorded\n+++ now\n" in text
    assert "model: other" not in text  # the diff is against the nearest recording


def test_explain_miss_other_route_and_empty_cassette() -> None:
    assert explain_miss(request(), []) == "the cassette holds no recorded request"
    text = explain_miss(request(uri="https://api.groq.com/openai/v1/chat/completions"),
                        [request()])
    assert "never recorded" in text
    assert "POST /v1/chat/completions" in text


@pytest.mark.parametrize("text", ["cost\x85 of it\nnext", "a\u2028b\nc", "a\u2029b\nc",
                                  "a\r\nb\n", "trail \nx", "x\n\n\n", "  \n  "])
def test_serializer_round_trips_every_line_break_yaml_knows(text: str) -> None:
    data = _cassette_dict()
    body = {"messages": [{"role": "user", "content": text}]}
    data["interactions"][0]["request"]["body"] = json.dumps(body)  # type: ignore[index]
    serializer = CassetteSerializer()
    out = serializer.serialize(data)
    back = serializer.deserialize(out)["interactions"][0]["request"]["body"]
    assert json.loads(back) == body
    assert serializer.serialize(serializer.deserialize(out)) == out


SECRET = "sk-canary-0123456789abcdefSECRET"


def test_a_known_secret_is_scrubbed_from_the_url_and_bodies() -> None:
    filtered = make_request_filter(None, secrets=(SECRET, "short"))(request(
        body={**BODY, "user": f"key {SECRET}"},
        uri=f"https://api.example.com/v1/chat/completions?key={SECRET}&v=2"))
    assert SECRET not in filtered.uri and SECRET not in filtered.body.decode()
    assert "<redacted>" in filtered.uri
    response = {"status": {"code": 200, "message": "OK"}, "headers": {},
                "body": {"string": json.dumps({"echo": f"Bearer {SECRET}"}).encode()}}
    scrubbed = make_response_filter(secrets=(SECRET,))(response)
    assert scrubbed is not None
    assert SECRET.encode() not in scrubbed["body"]["string"]
    assert json.loads(scrubbed["body"]["string"]) == {"echo": "Bearer <redacted>"}


def test_credentials_in_the_url_are_never_recorded() -> None:
    filtered = make_request_filter(None)(request(
        uri="https://user:hunter2@proxy.example.com/v1/chat/completions"
            "?api-version=2024-06-01&api_key=abc123&sig=xyz&X-Amz-Signature=s"))
    assert "hunter2" not in filtered.uri and "user" not in filtered.uri
    query = dict(parse_qsl(urlsplit(filtered.uri).query))
    assert query == {"api-version": "2024-06-01", "api_key": "<redacted>", "sig": "<redacted>",
                     "X-Amz-Signature": "<redacted>"}
    assert filtered.uri.startswith("https://proxy.example.com/v1/chat/completions?")


# --- cassettes from other tools (issue 10) ----------------------------------------------------

FOREIGN_DIRS = ("openai", "groq", "openai/pydantic-ai-format", "groq/pydantic-ai-format")


def _load(path: Path) -> object:
    from aiops.cassettes import BoundedPersister

    return BoundedPersister().load_cassette(path, CassetteSerializer())


def test_every_real_vcrpy_cassette_of_other_projects_is_refused_in_one_line(
        realdata: Path) -> None:
    """Before: vcrpy's own reading crashed on them (AttributeError: 'dict' object has no
    attribute 'encode'), and `aiops test` stopped with an internal error."""
    from aiops.cassettes import CassetteFormatError

    paths = sorted(p for d in FOREIGN_DIRS for p in (realdata / d).glob("*.yaml"))
    assert len(paths) >= 30
    reasons = {}
    for path in paths:
        with pytest.raises(CassetteFormatError) as caught:
            _load(path)
        message = str(caught.value)
        assert "\n" not in message and message.startswith(("not an aiops cassette: ",
                                                           "not a cassette aiops can read"))
        reasons[path.name] = message
    assert "vcrpy's own layout" in reasons["openinference__cached_tokens.yaml"]
    assert "pydantic-ai's cassette layout" in reasons[
        "pydanticai__groq_json_schema_structured_output.yaml"]
    assert "legacy vcrpy-httpx layout" in reasons["ddtrace__401_legacy_httpx_format.yaml"]
    assert "a key must be a plain string" in reasons["ddtrace__stream_multidict_python_tags.yaml"]


@pytest.mark.parametrize(("text", "says"), [
    ("foo: bar\n", "the file has no `interactions:` list"),
    ("- 1\n- 2\n", "not a cassette aiops can read: the document is not a mapping"),
    ("interactions: 3\n", "`interactions` is a number, not a list"),
    ("interactions: [1]\n", "`interactions[0]` is not a mapping with a `request:`"),
    ("interactions:\n- request: {method: GET, uri: /x, body: 3}\n  response: {status: "
     "{code: 200}}\n", "`interactions[0].request.body` is a number, not text"),
    ("interactions:\n- request: {method: GET, uri: /x}\n  response: {status: OK}\n",
     "`interactions[0].response.status` is not a mapping with a numeric `code:`"),
    ("interactions:\n- request: {method: GET, uri: /x, extra: 1}\n  response: {status: "
     "{code: 200}}\n", "`interactions[0].request` has `extra`, which aiops does not write"),
])
def test_any_yaml_that_is_not_an_aiops_cassette_says_so(tmp_path: Path, text: str,
                                                       says: str) -> None:
    from aiops.cassettes import CassetteFormatError

    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CassetteFormatError, match=re.escape(says)):
        _load(path)
