"""docs/custom-backend.openapi.yaml describes what the http provider sends and reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from aiops.providers import HTTP_PATH, CompletionRequest
from aiops.providers.http import build_body, parse_response

DOC = Path(__file__).resolve().parents[2] / "docs" / "custom-backend.openapi.yaml"


def _validator(doc: dict[str, Any], name: str) -> Draft202012Validator:
    registry = Registry().with_resource("urn:doc", Resource(contents=doc,
                                                            specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"urn:doc#/components/schemas/{name}"},
                                registry=registry)


def test_document_matches_the_client() -> None:
    doc = yaml.safe_load(DOC.read_text(encoding="utf-8"))
    assert doc["openapi"].startswith("3.1")
    assert HTTP_PATH in doc["paths"]
    request = CompletionRequest(messages=({"role": "user", "content": "hi"},), model="m",
                                settings={"temperature": 0.1, "max_tokens": 5, "seed": None},
                                output_schema={"type": "string"}, function="f", version="1.0.0")
    _validator(doc, "CompleteRequest").validate(build_body(request))
    example = doc["paths"][HTTP_PATH]["post"]["responses"]["200"]["content"]["application/json"][
        "example"]
    _validator(doc, "CompleteResponse").validate(example)
    assert parse_response(example, "x").usage.total_tokens == 34
    error = {"error": {"code": "rate_limited", "message": "slow down", "retry_after_s": 1.5}}
    _validator(doc, "ErrorResponse").validate(error)


def test_the_request_example_is_what_the_translate_example_sends() -> None:
    # A plain-text function (`output_schema: {type: string, ...}`) sends `output_schema: null`;
    # the documented example once showed the schema itself.
    doc = yaml.safe_load(DOC.read_text(encoding="utf-8"))
    example = doc["paths"][HTTP_PATH]["post"]["requestBody"]["content"]["application/json"][
        "example"]
    _validator(doc, "CompleteRequest").validate(example)
    cassette = DOC.parents[1] / "functions/translate/cassettes/internal/hello-french.yaml"
    sent = yaml.safe_load(cassette.read_text(encoding="utf-8"))["interactions"][0]["request"][
        "json"]
    assert set(example) == set(sent)
    for key in ("function", "version", "model", "settings", "output_schema"):
        assert example[key] == sent[key], key
