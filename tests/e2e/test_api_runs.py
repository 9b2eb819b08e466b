"""Running functions through the API, on SQLite and PostgreSQL, against the mock provider
through the real OpenAI and Groq SDKs: `POST /api/functions/{ref}/run` (with Idempotency-Key)
and `POST /api/contributor/ai-functions/{id}/test`. Every status each route answers is
checked against the OpenAPI document by `api.call`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiops.providers.mock_server import MockConfig, MockServer
from tests.fixtures_db import apply_project
from tests.fixtures_providers import CLASSIFY, env_for, write
from tests.fixtures_server import SECRET_ACCESS, Api, make_tokens

BASE = "/api/contributor/ai-functions"
TICKET = {"subject": "Refund", "body": "I was charged twice."}


def _functions() -> list[dict[str, Any]]:
    ledger = {**CLASSIFY, "name": "ledger", "access": SECRET_ACCESS}
    # Everyone may view it; only the `ops` group may run it.
    guarded = {**CLASSIFY, "name": "guarded", "access": {"view": ["everyone"],
                                                          "invoke": ["ops"]}}
    plain = {**CLASSIFY, "name": "plain", "fallbacks": []}
    capped = {**plain, "name": "capped", "limits": {"daily_calls": 1, "on_limit": "fail"}}
    throttled = {**plain, "name": "throttled", "limits": {"rpm": 1, "on_limit": "fail"}}
    return [{**CLASSIFY, "limits": {"max_input_bytes": 4096}}, ledger, guarded, plain, capped,
            throttled]


def _serve(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch,
           mock: MockServer) -> Iterator[Api]:
    from starlette.testclient import TestClient

    from aiops.server.app import ServerConfig, create_app
    from aiops.store import open_store

    open_store(db_url, migrate=True)
    monkeypatch.setenv("AIOPS_PROJECT", "test-project")
    for name, value in env_for(mock.url).items():
        monkeypatch.setenv(name, value)
    root = write(tmp_path / "proj", *_functions())
    apply_project(root, url=db_url, actor="Ann <ann@example.com>")
    tokens = make_tokens(root, db_url)
    app = create_app(ServerConfig(project_dir=str(root), database_url=db_url,
                                  max_body_bytes=64 * 1024, max_wait_s=1.0))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client=client, db_url=db_url, root=root, tokens=tokens)


@pytest.fixture
def runs(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch,
         mock_provider: MockServer) -> Iterator[Api]:
    yield from _serve(tmp_path, db_url, monkeypatch, mock_provider)


def _log(api: Api, log_id: str) -> Any:
    from aiops.store import open_store

    record = open_store(api.db_url).log(log_id)
    assert record is not None, log_id
    return record


def _rows(api: Api, name: str) -> int:
    from aiops.store import open_store

    return len(open_store(api.db_url).recent_logs(name, 1000))


def _user_id(api: Api, token: str) -> str:
    from aiops import commands

    ws = commands.open_workspace(api.root, database_url=api.db_url)
    return next(t.user_id for t in commands.list_tokens(ws) if t.name == token)


# --- POST /api/functions/{ref}/run ------------------------------------------------------------


def test_a_run_answers_the_output_and_logs_one_row_for_the_tokens_user(runs: Api) -> None:
    body = runs.call("POST", "/api/functions/classify/run", token="invoker",
                     json={"input": TICKET}).json()
    assert body["output"]["queue"] in {"billing", "technical", "other"}
    assert body["function"] == "classify" and body["version"] == "1.0.0"
    assert body["provider"] == "openai" and body["model"] == "gpt-4o-mini"
    assert body["test"] is False and body["warnings"] == []
    assert body["input_tokens"] > 0 and body["output_tokens"] > 0 and body["cost_usd"] > 0
    assert [a["status"] for a in body["attempts"]] == ["ok"]
    row = _log(runs, body["log_id"])
    assert row.status == "ok" and row.output == body["output"] and row.input == TICKET
    assert row.actor == "token:invoker"
    assert row.created_by == _user_id(runs, "invoker")
    assert "test" not in row.metadata
    assert _rows(runs, "classify") == 1


@pytest.mark.parametrize("ref", ["classify@1.0.0", "classify@1", "classify@1.0"])
def test_a_run_names_its_version(runs: Api, ref: str) -> None:
    body = runs.call("POST", f"/api/functions/{ref}/run", token="invoker",
                     json={"input": TICKET}).json()
    assert body["version"] == "1.0.0"


def test_run_refusals_before_anything_runs(runs: Api) -> None:
    run = "/api/functions/{}/run"
    good = {"json": {"input": TICKET}}
    assert runs.call("POST", run.format("classify"), token=None, expect=401,
                     **good).json()["code"] == "unauthenticated"
    assert runs.call("POST", run.format("classify"), token="viewer", expect=403,
                     **good).json()["code"] == "forbidden"
    # Not on its view list: the function does not exist, for this token.
    for ref in ("ledger", "ledger@1.0.0", "nope", "classify@9"):
        assert runs.call("POST", run.format(ref), token="invoker", expect=404,
                         **good).json()["code"] == "not-found"
    runs.call("POST", run.format("ledger"), token="editor-finance", **good)
    # On its view list, not on its invoke list.
    problem = runs.call("POST", run.format("guarded"), token="invoker", expect=403,
                        **good).json()
    assert problem["code"] == "forbidden" and "access.invoke" in problem["detail"]
    assert "execution" not in problem
    runs.call("POST", run.format("guarded"), token="admin", **good)
    assert _rows(runs, "ledger") == 1 and _rows(runs, "guarded") == 1


@pytest.mark.parametrize(("body", "pointer"), [
    ({"input": 3}, "/input"),
    ({"input": TICKET, "extra": 1}, "/extra"),
    ({}, "/input"),
])
def test_a_body_that_does_not_validate_is_422_at_its_pointer(runs: Api, body: Any,
                                                             pointer: str) -> None:
    problem = runs.call("POST", "/api/functions/classify/run", token="invoker", expect=422,
                        json=body).json()
    assert problem["code"] == "validation-failed"
    assert pointer in [e.get("pointer") for e in problem["errors"]]
    assert _rows(runs, "classify") == 0


def test_bad_refs_are_422_on_the_parameter(runs: Api) -> None:
    for ref in ("Classify", "classify@x", "classify@1.2.3.4"):
        problem = runs.call("POST", f"/api/functions/{ref}/run", token="invoker", expect=422,
                            json={"input": TICKET}).json()
        assert problem["errors"][0]["parameter"] == "ref"


def test_an_input_its_schema_refuses_is_422_with_a_pointer_and_a_log_row(runs: Api) -> None:
    problem = runs.call("POST", "/api/functions/classify/run", token="invoker", expect=422,
                        json={"input": {"subject": "Hi", "body": 7}}).json()
    assert problem["code"] == "invalid-input"
    assert problem["errors"] == [{"detail": problem["errors"][0]["detail"],
                                  "pointer": "/input/body"}]
    assert "input_schema" in problem["detail"]
    execution = problem["execution"]
    assert execution["attempts"] == [] and execution["cost_usd"] == 0
    row = _log(runs, execution["log_id"])
    assert row.status == "error" and row.error["type"] == "InputError"
    assert execution["log_id"] in problem["detail"]


def test_an_input_over_the_functions_bound_is_422(runs: Api) -> None:
    problem = runs.call("POST", "/api/functions/classify/run", token="invoker", expect=422,
                        json={"input": {"subject": "x", "body": "y" * 20_000}}).json()
    assert problem["code"] == "invalid-input" and "max_input_bytes" in problem["detail"]


def test_a_body_over_the_servers_bound_is_413(runs: Api) -> None:
    runs.call("POST", "/api/functions/classify/run", token="invoker", expect=413,
              json={"input": {"subject": "x", "body": "y" * 70_000}})


def test_a_provider_failure_is_502_with_the_execution(runs: Api,
                                                      mock_provider: MockServer) -> None:
    mock_provider.app.force_fault("server_error")
    problem = runs.call("POST", "/api/functions/classify/run", token="invoker", expect=502,
                        json={"input": TICKET}).json()
    assert problem["code"] == "provider-error"
    execution = problem["execution"]
    # Retried on each provider of the chain, then given up: every attempt is told.
    assert {a["provider"] for a in execution["attempts"]} == {"openai", "groq", "internal"}
    assert all(a["status"] == "error" for a in execution["attempts"])
    assert execution["provider"] is None
    row = _log(runs, execution["log_id"])
    assert row.status == "error" and row.error["type"] == "ProviderError"
    assert len(row.metadata["attempts"]) == len(execution["attempts"])


def test_output_that_never_validates_is_502_invalid_output(runs: Api,
                                                           mock_provider: MockServer) -> None:
    mock_provider.app.force_fault("schema")
    problem = runs.call("POST", "/api/functions/plain/run", token="invoker", expect=502,
                        json={"input": TICKET}).json()
    assert problem["code"] == "invalid-output"
    assert [a["status"] for a in problem["execution"]["attempts"]] == ["invalid"] * 3
    assert _log(runs, problem["execution"]["log_id"]).error["type"] == "OutputError"


@pytest.mark.parametrize(("fn", "code"), [("capped", "budget-exceeded"),
                                          ("throttled", "rate-limited")])
def test_a_spent_budget_or_rate_limit_is_429_with_the_execution(runs: Api, fn: str,
                                                                code: str) -> None:
    runs.call("POST", f"/api/functions/{fn}/run", token="invoker", json={"input": TICKET})
    problem = runs.call("POST", f"/api/functions/{fn}/run", token="invoker", expect=429,
                        json={"input": TICKET}).json()
    assert problem["code"] == code
    row = _log(runs, problem["execution"]["log_id"])
    assert row.status == "error" and _rows(runs, fn) == 2


# --- Idempotency-Key -------------------------------------------------------------------------


def test_a_retry_with_the_same_key_gets_the_first_answer_and_runs_nothing(
        runs: Api, mock_provider: MockServer) -> None:
    headers = {"Idempotency-Key": "order-4711"}
    first = runs.call("POST", "/api/functions/classify/run", token="invoker",
                      json={"input": TICKET}, headers=headers)
    calls = mock_provider.app.stats["requests"]
    again = runs.call("POST", "/api/functions/classify/run", token="invoker",
                      json={"input": TICKET}, headers=headers)
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert mock_provider.app.stats["requests"] == calls
    assert _rows(runs, "classify") == 1
    # Another token's key is its own.
    other = runs.call("POST", "/api/functions/classify/run", token="editor",
                      json={"input": TICKET}, headers=headers)
    assert other.json()["log_id"] != first.json()["log_id"]
    assert _rows(runs, "classify") == 2


def test_a_failed_execution_is_replayed_too(runs: Api, mock_provider: MockServer) -> None:
    headers = {"Idempotency-Key": "k-failed"}
    mock_provider.app.force_fault("server_error")
    first = runs.call("POST", "/api/functions/plain/run", token="invoker", expect=502,
                      json={"input": TICKET}, headers=headers)
    mock_provider.app.force_fault(None)
    again = runs.call("POST", "/api/functions/plain/run", token="invoker", expect=502,
                      json={"input": TICKET}, headers=headers)
    assert again.content == first.content
    assert _rows(runs, "plain") == 1


def test_a_refusal_before_the_execution_keeps_no_answer(runs: Api) -> None:
    headers = {"Idempotency-Key": "k-early"}
    runs.call("POST", "/api/functions/classify@9/run", token="invoker", expect=404,
              json={"input": TICKET}, headers=headers)
    # Nothing ran, so the key is free again: for the same request, which now runs.
    runs.call("POST", "/api/functions/classify@9/run", token="invoker", expect=404,
              json={"input": TICKET}, headers=headers)
    assert _rows(runs, "classify") == 0


def test_the_same_key_with_another_request_is_422(runs: Api) -> None:
    headers = {"Idempotency-Key": "k-reused"}
    runs.call("POST", "/api/functions/classify/run", token="invoker", json={"input": TICKET},
              headers=headers)
    for ref, value in (("classify", {**TICKET, "subject": "Other"}),
                       ("classify@1.0.0", TICKET), ("plain", TICKET)):
        problem = runs.call("POST", f"/api/functions/{ref}/run", token="invoker", expect=422,
                            json={"input": value}, headers=headers).json()
        assert problem["code"] == "idempotency-key-reused"
    # The same value spelt otherwise is the same request.
    runs.call("POST", "/api/functions/classify/run", token="invoker",
              content=b'{ "input" : {"body": "I was charged twice.", "subject": "Refund"} }',
              headers={**headers, "Content-Type": "application/json"})
    assert _rows(runs, "classify") == 1


@pytest.mark.parametrize("key", ["", "has space", "é", "k" * 256])
def test_an_idempotency_key_out_of_bounds_is_422(runs: Api, key: str) -> None:
    response = runs.client.post("/api/functions/classify/run", json={"input": TICKET},
                                headers={**runs.headers("invoker"),
                                         "Idempotency-Key": key.encode()})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["header"].lower() == "idempotency-key"
    assert _rows(runs, "classify") == 0


@pytest.fixture
def slow_runs(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch,
              mock_provider_factory: Any) -> Iterator[Api]:
    mock = mock_provider_factory(MockConfig(latency_ms=600))
    yield from _serve(tmp_path, db_url, monkeypatch, mock)


def test_a_concurrent_request_with_the_key_is_409_and_the_retry_gets_the_answer(
        slow_runs: Api) -> None:
    api = slow_runs
    headers = {"Idempotency-Key": "k-concurrent"}
    answers: list[Any] = []
    first = threading.Thread(target=lambda: answers.append(api.call(
        "POST", "/api/functions/plain/run", token="invoker", json={"input": TICKET},
        headers=headers)))
    first.start()
    try:
        deadline = time.monotonic() + 10
        while not _claimed(api, "k-concurrent") and time.monotonic() < deadline:
            time.sleep(0.01)
        problem = api.call("POST", "/api/functions/plain/run", token="invoker", expect=409,
                           json={"input": TICKET}, headers=headers).json()
        assert problem["code"] == "request-in-progress"
    finally:
        first.join()
    again = api.call("POST", "/api/functions/plain/run", token="invoker",
                     json={"input": TICKET}, headers=headers)
    assert again.content == answers[0].content
    assert _rows(api, "plain") == 1


def _claimed(api: Api, key: str) -> bool:
    from sqlalchemy import text

    from aiops.store import open_store

    with open_store(api.db_url).engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM idempotency_keys WHERE key = :k"),
                            {"k": key}).scalar() == 1


# --- POST /api/contributor/ai-functions/{id}/test --------------------------------------------


def test_a_test_run_is_logged_as_a_test_with_its_actor(runs: Api) -> None:
    body = runs.call("POST", f"{BASE}/classify/test", token="invoker",
                     json={"input": TICKET}).json()
    assert body["test"] is True and body["provider"] == "openai"
    assert body["output"]["priority"] in {1, 2, 3, 4}
    row = _log(runs, body["log_id"])
    assert row.metadata["test"] is True
    assert row.actor == "token:invoker" and row.created_by == _user_id(runs, "invoker")
    # Its log shows it, to the token that ran it, content and all.
    items = runs.call("GET", f"{BASE}/classify/logs", token="invoker").json()["items"]
    assert [i["id"] for i in items] == [body["log_id"]]


def test_a_test_run_by_id_and_version(runs: Api) -> None:
    fid = runs.call("GET", f"{BASE}/classify").json()["summary"]["id"]
    body = runs.call("POST", f"{BASE}/{fid}/test", token="invoker",
                     json={"input": TICKET, "version": "1.0.0"}).json()
    assert body["function"] == "classify" and body["version"] == "1.0.0"
    runs.call("POST", f"{BASE}/classify/test", token="invoker", expect=404,
              json={"input": TICKET, "version": "2.0.0"})


@pytest.mark.parametrize(("provider", "model"), [("groq", "llama-3.1-8b-instant"),
                                                 ("internal", "house-model")])
def test_a_test_run_on_one_provider_of_the_matrix(runs: Api, provider: str,
                                                  model: str) -> None:
    body = runs.call("POST", f"{BASE}/classify/test", token="invoker",
                     json={"input": TICKET, "provider": provider}).json()
    assert body["provider"] == provider and body["model"] == model
    assert {a["provider"] for a in body["attempts"]} == {provider}


def test_a_test_run_on_one_provider_has_no_fallback(runs: Api,
                                                    mock_provider: MockServer) -> None:
    mock_provider.app.force_fault("server_error")
    problem = runs.call("POST", f"{BASE}/classify/test", token="invoker", expect=502,
                        json={"input": TICKET, "provider": "groq"}).json()
    assert {a["provider"] for a in problem["execution"]["attempts"]} == {"groq"}
    assert problem["execution"]["test"] is True


def test_a_provider_outside_the_matrix_is_422_at_provider(runs: Api) -> None:
    for fn, provider in (("classify", "anthropic"), ("plain", "groq")):
        problem = runs.call("POST", f"{BASE}/{fn}/test", token="invoker", expect=422,
                            json={"input": TICKET, "provider": provider}).json()
        assert problem["code"] == "validation-failed"
        assert problem["errors"][0]["pointer"] == "/provider"
        assert "matrix" in problem["detail"]
    assert _rows(runs, "plain") == 0


def test_test_refusals(runs: Api) -> None:
    good = {"json": {"input": TICKET}}
    runs.call("POST", f"{BASE}/classify/test", token=None, expect=401, **good)
    runs.call("POST", f"{BASE}/classify/test", token="viewer", expect=403, **good)
    runs.call("POST", f"{BASE}/ledger/test", token="invoker", expect=404, **good)
    runs.call("POST", f"{BASE}/guarded/test", token="editor", expect=403, **good)
    problem = runs.call("POST", f"{BASE}/classify/test", token="invoker", expect=422,
                        json={"input": {"subject": ""}}).json()
    assert problem["code"] == "invalid-input" and problem["execution"]["test"] is True
    assert problem["errors"][0]["pointer"].startswith("/input")
    runs.call("POST", f"{BASE}/classify/test", token="invoker", expect=422,
              json={"input": TICKET, "version": "one"})


# --- POST .../{id}/test with golden: true ----------------------------------------------------


@pytest.fixture
def golden_api(golden_project: Path, db_url: str, monkeypatch: pytest.MonkeyPatch,
               unused_port: int) -> Iterator[Api]:
    """The example project (its cassettes) served; every provider pointed at a port nothing
    listens on, and no key set: a replay that passes sent nothing."""
    from starlette.testclient import TestClient

    from aiops.providers import env_var_for_base_url
    from aiops.server.app import ServerConfig, create_app
    from aiops.store import open_store

    open_store(db_url, migrate=True)
    monkeypatch.setenv("AIOPS_PROJECT", "test-project")
    for name in ("openai", "groq", "internal"):
        monkeypatch.setenv(env_var_for_base_url(name), f"http://127.0.0.1:{unused_port}/v1")
    for key in ("OPENAI_API_KEY", "GROQ_API_KEY", "INTERNAL_AIOPS_SECRET"):
        monkeypatch.delenv(key, raising=False)
    apply_project(golden_project, url=db_url, actor="Ann <ann@example.com>")
    tokens = make_tokens(golden_project, db_url)
    app = create_app(ServerConfig(project_dir=str(golden_project), database_url=db_url))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client=client, db_url=db_url, root=golden_project, tokens=tokens)


def test_golden_tests_replay_from_the_cassettes_offline(golden_api: Api) -> None:
    api = golden_api
    report = api.call("POST", f"{BASE}/summarize/test", token="invoker",
                      json={"golden": True}).json()
    assert report["ok"] is True and report["mode"] == "replay"
    assert report["counts"]["passed"] == len(report["results"]) == 4
    assert {(r["provider"], r["test"]) for r in report["results"]} == {
        (p, t) for p in ("groq", "openai") for t in ("default-bullets", "short-article")}
    one = api.call("POST", f"{BASE}/summarize/test", token="invoker",
                   json={"golden": True, "provider": "openai"}).json()
    assert {r["provider"] for r in one["results"]} == {"openai"}
    assert _rows(api, "summarize") == 0  # a replay logs nothing


def test_a_golden_replay_reports_a_changed_prompt_as_a_miss(golden_api: Api) -> None:
    path = golden_api.root / "functions" / "summarize" / "function.yaml"
    text = path.read_text(encoding="utf-8")
    assert "concise" in text
    path.write_text(text.replace("concise", "verbose"), encoding="utf-8")
    report = golden_api.call("POST", f"{BASE}/summarize/test", token="invoker",
                             json={"golden": True, "provider": "groq"}).json()
    assert report["ok"] is False
    assert {r["status"] for r in report["results"]} == {"miss"}
    assert "re-record" in report["results"][0]["fix"]


def test_golden_refusals(golden_api: Api) -> None:
    api = golden_api
    golden = {"golden": True}
    api.call("POST", f"{BASE}/summarize/test", token=None, expect=401, json=golden)
    api.call("POST", f"{BASE}/summarize/test", token="viewer", expect=403, json=golden)
    # classify-ticket may be invoked by the support-bot and contributors groups only.
    api.call("POST", f"{BASE}/classify-ticket/test", token="invoker", expect=403, json=golden)
    assert api.call("POST", f"{BASE}/classify-ticket/test", token="admin",
                    json=golden).json()["ok"] is True
    for body, pointer in (({**golden, "provider": "internal"}, "/provider"),
                          ({**golden, "input": {"text": "x"}}, "/input"),
                          ({**golden, "version": "1.0.0"}, "/version"),
                          ({}, "/input")):
        problem = api.call("POST", f"{BASE}/summarize/test", token="invoker", expect=422,
                           json=body).json()
        assert problem["errors"][0]["pointer"] == pointer, body
    # Applied, but its file is gone from the server's project: nothing to replay.
    import shutil

    shutil.rmtree(api.root / "functions" / "translate")
    problem = api.call("POST", f"{BASE}/translate/test", token="admin", expect=404,
                       json=golden).json()
    assert "no file" in problem["detail"]
