"""schemathesis over /openapi.json, from the ASGI app, on PostgreSQL: for every operation, a
bounded number of requests generated from its schema (valid ones, and ones that break it),
sent with an admin token. None may answer a 5xx; every answer must be one the document
declares, with the declared content type, headers and body schema; a request whose data breaks
the schema must be refused (4xx); and the same request without a token, or with a token that
is not one, must be 401 on every operation that is not public.

Bounded: a few examples per operation, no deadline, no example database, derandomized (the
same examples each run), so that the whole run takes seconds, not minutes.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures_server import Api

EXAMPLES = 6  # per operation and mode
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
REFUSED = [{}, {"Authorization": "Bearer aiops_0123456789abcdef_" + "x" * 43},
           {"Authorization": "Basic YWRtaW46YWRtaW4="}, {"Authorization": "Bearer "}]


@pytest.fixture
def fuzzed(live_api: Api) -> Any:
    """A client of a second app on the same project, with the default body bound (the
    fixture's is small, and a body over it is refused before the token is looked at)."""
    from starlette.testclient import TestClient

    from aiops.server.app import ServerConfig, create_app

    app = create_app(ServerConfig(project_dir=str(live_api.root), database_url=live_api.db_url))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def send(client: Any, case: Any, headers: dict[str, str]) -> Any:
    """The request `case` describes, through the test client (one the test closes: the
    transport schemathesis would use leaves its streams open); `headers` replace the case's
    Authorization."""
    kw = case.as_transport_kwargs(base_url="http://testserver")
    # A header value outside ASCII goes as its UTF-8 bytes (the test client sends only ASCII
    # text), as a client that does not care would send it.
    kept = {k: v.encode() if isinstance(v, str) and not v.isascii() else v
            for k, v in (kw.pop("headers", None) or {}).items() if k.lower() != "authorization"}
    data = kw.pop("data", None)
    if isinstance(data, str | bytes):
        kw["content"] = data
    elif data is not None:
        kw["data"] = data
    for unused in ("files", "cookies"):  # no operation takes either
        assert not kw.pop(unused, None), (case.operation.label, unused)
    return client.request(kw.pop("method"), kw.pop("url"), headers={**kept, **headers}, **kw)


def observed(response: Any) -> Any:
    """The test client's answer as schemathesis's own record of one (whichever HTTP library
    the installed Starlette's test client is built on)."""
    import requests
    from schemathesis.core.transport import Response

    sent = response.request
    headers: dict[str, list[str]] = {}
    for key, value in response.headers.multi_items():
        headers.setdefault(key, []).append(value)
    return Response(status_code=response.status_code, headers=headers, content=response.content,
                    request=requests.Request(method=sent.method, url=str(sent.url),
                                             headers=dict(sent.headers),
                                             data=sent.content).prepare(),
                    elapsed=0.0, verify=True, message=response.reason_phrase,
                    http_version=response.http_version, encoding=response.encoding)


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=lambda m: m.value)
def test_every_operation_against_its_schema(live_api: Api, fuzzed: Any,
                                            mode: GenerationMode) -> None:
    document = fuzzed.get("/openapi.json").json()
    # Every request is sent with a token of the test's choosing (`send`), so the document's
    # security is taken out of what schemathesis generates: in negative mode it would "break"
    # the Authorization header that `send` then puts back. The 401s are checked below.
    secured = {f"{method.upper()} {path}" for path, item in document["paths"].items()
               for method, op in item.items() if op.pop("security", None)}
    document.get("components", {}).pop("securitySchemes", None)
    schema = schemathesis.openapi.from_dict(document)
    admin = {"Authorization": f"Bearer {live_api.tokens['admin']}"}
    names = [None, "greet", "ledger"]  # None: the generated id (most often, no function)
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    if mode is GenerationMode.NEGATIVE:
        # Data that breaks the schema, where it can still make a request: a query or a body
        # (a path parameter that breaks its schema mostly makes no URL, and the search for
        # one that does takes long to give up).
        operations = [op for op in operations if "{" not in op.path and (
            op.definition.raw.get("parameters") or op.definition.raw.get("requestBody"))]
    seen: dict[str, set[int]] = {}
    count = itertools.count()

    for operation in operations:
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode), real=st.sampled_from(names))
        def run(case: Any, real: str | None) -> None:
            # Often a function that exists, so that what lies past the lookup is asked too.
            if real and mode is GenerationMode.POSITIVE and "id" in (case.path_parameters or {}):
                case.path_parameters["id"] = real
            response = send(fuzzed, case, admin)
            case.validate_response(observed(response), checks=checks, headers=admin)
            label = case.operation.label
            seen.setdefault(label, set()).add(response.status_code)
            if label not in secured or (
                    mode is GenerationMode.NEGATIVE):  # public; or, sent data that breaks it
                return
            # The same request without a valid token: each example tries one way of lacking it.
            headers = REFUSED[next(count) % len(REFUSED)]
            refused = send(fuzzed, case, headers)
            if refused.status_code != 413:  # a body over the bound: refused before anything
                assert refused.status_code == 401, (label, headers, refused.text[:300])
                assert refused.json()["code"] == "unauthenticated"

        run()
    assert set(seen) == {op.label for op in operations}  # every one was asked
    assert secured & set(seen)  # and the 401 checks above met the secured ones
