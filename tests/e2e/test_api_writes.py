"""The API's writes through git (POST, PUT and DELETE /api/contributor/ai-functions) on SQLite
and PostgreSQL: JSON and YAML bodies, 201/200/202, 409, 412, 415, 422 with pointers, 428, the
roles and the function's access lists, the writes modes, and two editors racing one If-Match.
`api.call` also checks that /openapi.json declares every status seen."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from aiops import commands
from tests.e2e.helpers import git
from tests.fixtures_db import current_versions, spec_data
from tests.fixtures_server import Api

BASE = "/api/contributor/ai-functions"
YAML = {"Content-Type": "application/yaml"}


@pytest.fixture
def repo(api: Api) -> Api:
    """The API's project as a git repository, its files committed by the operator."""
    git(api.root, "init", "-q", "-b", "main")
    git(api.root, "config", "user.name", "aiops server")
    git(api.root, "config", "user.email", "server@example.org")
    git(api.root, "add", "-A")
    git(api.root, "commit", "-qm", "Start")
    return api


def head(api: Api) -> str:
    return git(api.root, "rev-parse", "HEAD").strip()


def etag(api: Api, name: str, token: str = "admin") -> str:
    tag: str = api.call("GET", f"{BASE}/{name}", token=token).headers["etag"]
    return tag


def test_post_json_commits_the_file_and_applies_it(repo: Api) -> None:
    response = repo.call("POST", BASE, token="editor", expect=201, json=spec_data("hello"))
    body = response.json()
    assert body["applied"] and body["commit"] == head(repo) and body["mode"] == "commit"
    assert body["plan"]["verdict"] == "Plan: 1 to create" and body["version"] == "1.0.0"
    assert response.headers["location"] == f"{BASE}/hello"
    assert response.headers["etag"] == etag(repo, "hello")
    text = (repo.root / "functions/hello/function.yaml").read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../../schemas/function.schema.json\n"
                           "apiVersion: aiops/v1\nname: hello\n")
    # The token's user (named like the token, without an e-mail) is the author.
    author = git(repo.root, "log", "-1", "--format=%an <%ae>|%cn").strip()
    assert author == "editor <>|aiops server"
    assert current_versions(repo.db_url)["hello"] == ("active", "1.0.0")


def test_post_yaml_is_committed_as_written(repo: Api) -> None:
    text = (repo.root / "functions/greet/function.yaml").read_text(encoding="utf-8")
    text = "# Greets, by a person.\n" + text.replace("greet", "hello")
    repo.call("POST", BASE, token="editor", expect=201, content=text.encode(), headers=YAML)
    assert (repo.root / "functions/hello/function.yaml").read_text(encoding="utf-8") == text


def test_an_invalid_document_is_422_with_pointers_and_no_commit(repo: Api) -> None:
    before = head(repo)
    bad = spec_data("hello", retry={"max_attempts": 0})
    body = repo.call("POST", BASE, token="editor", expect=422, json=bad).json()
    assert body["code"] == "invalid-spec"
    assert [e["pointer"] for e in body["errors"]] == ["/retry/max_attempts"]
    text = "apiVersion: aiops/v1\nname: hello\nversion: 1.0.0\nversion: 1.0.1\n"
    body = repo.call("POST", BASE, token="editor", expect=422, content=text.encode(),
                     headers=YAML).json()
    [error] = body["errors"]
    assert (error["pointer"], error["line"]) == ("/version", 4)
    assert head(repo) == before and not (repo.root / "functions/hello").exists()


def test_bodies_that_are_no_document(repo: Api) -> None:
    repo.call("POST", BASE, token="editor", expect=415, content=b"name: x",
              headers={"Content-Type": "text/plain"})
    repo.call("POST", BASE, token="editor", expect=400, content=b"{nope",
              headers={"Content-Type": "application/json"})
    assert repo.call("POST", BASE, token="editor", expect=422, json=[1]).json()["code"] == \
        "invalid-spec"
    repo.call("POST", BASE, token="editor", expect=409, json=spec_data("greet"))
    deep = b'{"name": ' + b"[" * 2000 + b"]" * 2000 + b"}"  # past Python's recursion
    repo.call("POST", BASE, token="editor", expect=400, content=deep,
              headers={"Content-Type": "application/json"})


def test_put_needs_a_current_if_match(repo: Api) -> None:
    changed = spec_data("greet", version="1.1.0", model="mock-large")
    body = repo.call("PUT", f"{BASE}/greet", token="editor", expect=428, json=changed).json()
    assert body["code"] == "precondition-required"
    repo.call("PUT", f"{BASE}/greet", token="editor", expect=412, json=changed,
              headers={"If-Match": '"stale"'})
    tag = etag(repo, "greet")
    function_id = repo.call("GET", f"{BASE}/greet").json()["summary"]["id"]
    response = repo.call("PUT", f"{BASE}/{function_id}", token="editor", json=changed,
                         headers={"If-Match": tag})
    assert response.json()["plan"]["verdict"] == "Plan: 1 new version"
    assert response.headers["etag"] == etag(repo, "greet") != tag
    repo.call("PUT", f"{BASE}/greet", token="editor", expect=412, json=changed,
              headers={"If-Match": tag})
    # The version rules against HEAD: a behaviour change without a bump.
    body = repo.call("PUT", f"{BASE}/greet", token="editor", expect=422,
                     json=changed | {"model": "mock-small"},
                     headers={"If-Match": etag(repo, "greet")}).json()
    assert [e["pointer"] for e in body["errors"]] == ["/version"]


def test_put_keeps_the_values_a_document_writes_even_when_they_are_the_defaults(
        repo: Api) -> None:
    """What GET's `spec` holds (every default filled in) PUT back as it is: the file says
    what the document says, defaults included; no key is dropped for equalling its default."""
    import yaml

    spec = repo.call("GET", f"{BASE}/greet").json()["spec"]
    document = {"apiVersion": "aiops/v1", **{k: v for k, v in spec.items()
                                             if v is not None}}
    defaults = {"status": "active", "description": document["description"], "fallbacks": [],
                "alerts": [], "filters": {"input": [], "output": []},
                "retry": {"max_attempts": 3, "backoff_s": 0.5, "max_backoff_s": 8.0,
                          "repair_attempts": 1},
                "access": {"view": ["everyone"], "invoke": ["everyone"]}}
    document |= defaults
    response = repo.call("PUT", f"{BASE}/greet", token="editor", json=document,
                         headers={"If-Match": etag(repo, "greet")})
    assert response.json()["plan"]["verdict"].startswith("No changes")  # the same function
    text = (repo.root / "functions/greet/function.yaml").read_text(encoding="utf-8")
    written = yaml.safe_load(text)
    for key, value in defaults.items():
        assert written[key] == value, key
    # Nested mappings as GET gave them, their nulls too: the file holds what was sent.
    assert written["limits"] == spec["limits"]
    assert written["configuration"] == spec["configuration"]


def test_two_editors_put_the_same_function_one_wins(repo: Api) -> None:
    tag = etag(repo, "greet")
    before = int(git(repo.root, "rev-list", "--count", "HEAD"))
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def put(model: str) -> None:
        barrier.wait()
        response = repo.client.put(f"{BASE}/greet", headers={
            **repo.headers("editor"), "If-Match": tag}, json=spec_data(
                "greet", version="1.1.0", model=model))
        statuses.append(response.status_code)

    threads = [threading.Thread(target=put, args=(m,)) for m in ("mock-large", "mock-small-2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 412]
    assert int(git(repo.root, "rev-list", "--count", "HEAD")) == before + 1


def test_delete_archives_and_keeps_the_function_readable(repo: Api) -> None:
    body = repo.call("DELETE", f"{BASE}/greet", token="editor",
                     headers={"If-Match": etag(repo, "greet")}).json()
    assert body["applied"] and body["action"] == "delete"
    assert not (repo.root / "functions/greet").exists()
    assert repo.call("GET", f"{BASE}/greet").json()["summary"]["status"] == "archived"
    repo.call("DELETE", f"{BASE}/greet", token="editor", expect=404)


def test_roles_and_access_lists_gate_writes(repo: Api) -> None:
    repo.call("POST", BASE, token="viewer", expect=403, json=spec_data("hello"))
    repo.call("POST", BASE, token=None, expect=401, json=spec_data("hello"))
    ledger = (repo.root / "functions/ledger/function.yaml").read_bytes()
    # `ledger` is viewed by finance and edited by finance-admins only.
    repo.call("PUT", f"{BASE}/ledger", token="editor", expect=404, content=ledger,
              headers={**YAML, "If-Match": "*"})
    ws = commands.open_workspace(repo.root, database_url=repo.db_url)
    reader = commands.create_token(ws, name="finance-reader", role="editor",
                                   groups=("finance",)).text
    body = repo.call("DELETE", f"{BASE}/ledger", token=reader, expect=403).json()
    assert body["code"] == "forbidden" and "finance-admins" in body["detail"]
    text = ledger.replace(b"Books entries.", b"Books every entry.")
    repo.call("PUT", f"{BASE}/ledger", token="editor-finance", content=text,
              headers={**YAML, "If-Match": etag(repo, "ledger", token="editor-finance")})


@pytest.fixture
def mode_api(repo: Api, request: pytest.FixtureRequest) -> Iterator[Api]:
    """The same project, served with `--writes` set to the test's parameter."""
    from starlette.testclient import TestClient

    from aiops.server.app import ServerConfig, create_app

    app = create_app(ServerConfig(project_dir=str(repo.root), database_url=repo.db_url,
                                  writes=request.param))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client=client, db_url=repo.db_url, root=repo.root, tokens=repo.tokens)


@pytest.mark.parametrize("mode_api", ["branch"], indirect=True)
def test_branch_mode_answers_202_with_the_branch_and_applies_nothing(mode_api: Api) -> None:
    before = head(mode_api)
    body = mode_api.call("POST", BASE, token="editor", expect=202,
                         json=spec_data("hello")).json()
    assert body["mode"] == "branch" and not body["applied"] and body["plan"] is None
    assert body["branch"].startswith("aiops/hello-")
    assert git(mode_api.root, "rev-parse", body["branch"]).strip() == body["commit"]
    assert head(mode_api) == before and not (mode_api.root / "functions/hello").exists()
    assert "hello" not in current_versions(mode_api.db_url)
    mode_api.call("PUT", f"{BASE}/greet", token="editor", expect=202,
                  json=spec_data("greet", version="1.1.0"),
                  headers={"If-Match": etag(mode_api, "greet")})


@pytest.mark.parametrize("mode_api", ["off"], indirect=True)
def test_writes_off_refuses_every_write(mode_api: Api) -> None:
    before = head(mode_api)
    for method, url, kw in (("POST", BASE, {"json": spec_data("hello")}),
                            ("PUT", f"{BASE}/greet", {"json": spec_data("greet")}),
                            ("DELETE", f"{BASE}/greet", {})):
        body: Any = mode_api.call(method, url, token="editor", expect=403, **kw).json()
        assert body["code"] == "writes-off" and "--writes off" in body["detail"]
    assert head(mode_api) == before


def test_a_project_outside_git_is_the_servers_misconfiguration(api: Api,
                                                                caplog: pytest.LogCaptureFixture
                                                                ) -> None:
    body = api.call("POST", BASE, token="editor", expect=503, json=spec_data("hello")).json()
    assert body["code"] == "misconfigured" and str(api.root) not in body["detail"]
    assert "not in a git repository; run `git init` there" in caplog.text


def test_a_write_binds_the_next_run_of_the_worker_that_applied_it(live_api: Api) -> None:
    """The worker's runner keeps a name resolved for 5 seconds; a write it applied itself is
    heeded at once: a narrowed `access.invoke` refuses the very next run, and the new version
    is the one that runs."""
    run = "/api/functions/greet/run"
    body = live_api.call("POST", run, token="invoker", json={"input": {"who": "Ann"}}).json()
    assert body["version"] == "1.0.0"
    narrowed = spec_data("greet", version="1.1.0", access={
        "view": ["everyone"], "invoke": ["ops"], "edit": ["everyone"]})
    answer = live_api.call("PUT", f"{BASE}/greet", token="editor", json=narrowed,
                           headers={"If-Match": etag(live_api, "greet")}).json()
    assert answer["applied"]
    refused = live_api.call("POST", run, token="invoker", expect=403,
                            json={"input": {"who": "Ann"}}).json()
    assert refused["code"] == "forbidden" and "access.invoke" in refused["detail"]
    body = live_api.call("POST", run, token="admin", json={"input": {"who": "Ann"}}).json()
    assert body["version"] == "1.1.0"
