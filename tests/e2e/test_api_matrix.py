"""The role x function matrix, complete, on PostgreSQL: every route of the app (read from its
route table, so that a route added later is covered by the permission it declares, with no
edit here) x every caller (no token, viewer, invoker, editor, admin) x every kind of function
(open to all; hidden; viewable but not invokable; invokable but not editable).

What each cell must answer follows from the route's declared permission and the function's
`access` lists alone:

    no token                                     401 (every route but the public ones)
    a role below the route's permission          403 (before anything looks at the function)
    a function the token may not view            404 (never 403: to it, there is no such function)
    may view, the route invokes or edits, and
      the function's list does not allow that    403
    otherwise                                    anything but 401, 403, 404 or a 500

A request is built for each route from /openapi.json: its path parameters (a function, a
version, a token), the query parameters it requires and the smallest body its schema accepts,
so that it passes the request's validation and reaches the checks of the object.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from aiops.access import Permission, role_allows
from tests.e2e.helpers import git
from tests.fixtures_db import apply_project, spec_data, write_project
from tests.fixtures_server import Api

# The routes that take a function: the path parameter that names it.
FUNCTION_ROUTES = {"/api/contributor/ai-functions/{id}": "id", "/api/functions/{ref}": "ref"}
# The kinds of function, by their access lists (`ops`: a group no token of the matrix has).
FUNCTIONS = {
    "open-fn": None,
    "hidden-fn": {"view": ["ops"], "invoke": ["ops"], "edit": ["ops"]},
    "view-only-fn": {"view": ["everyone"], "invoke": ["ops"], "edit": ["ops"]},
    "no-edit-fn": {"view": ["everyone"], "invoke": ["everyone"], "edit": ["ops"]},
}
ROLES = [None, "viewer", "invoker", "editor", "admin"]  # the tokens of tests.fixtures_server
KNOWN_PARAMS = {"version": "1.0.0", "token": "expired"}  # an expired token can be revoked


def expected(permission: Permission, role: str | None, function: str | None) -> int | None:
    """The status a cell must answer; None: any but 401, 403, 404 and 500."""
    if permission is Permission.PUBLIC:
        return None
    if role is None:
        return 401
    if not role_allows(role, permission):
        return 403
    if function is None or role == "admin":  # admins pass every list
        return None
    access = FUNCTIONS[function] or {}
    if "everyone" not in access.get("view", ["everyone"]):
        return 404
    action = {Permission.INVOKE: "invoke", Permission.EDIT: "edit"}.get(permission)
    if action and "everyone" not in access.get(action, ["everyone"]):
        return 403
    return None


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        target: Any = doc
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        schema = target
    return schema


def smallest(schema: dict[str, Any], doc: dict[str, Any]) -> Any:
    """The smallest value `schema` accepts (its required parts only)."""
    schema = _resolve(schema, doc)
    for key in ("const", "example", "default"):
        if key in schema:
            return schema[key]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [_resolve(s, doc) for s in schema[key]]
            usable = [s for s in options if s.get("type") != "null"] or options
            return smallest(usable[0], doc)
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: smallest(props.get(k, {}), doc) for k in schema.get("required", [])}
    if kind == "array":
        return [smallest(schema.get("items", {}), doc)] * schema.get("minItems", 0)
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
        return int(low) if kind == "integer" else float(low)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    text = "x" * max(1, schema.get("minLength", 1))
    pattern = schema.get("pattern")
    if pattern and not re.search(pattern, text):
        from hypothesis import strategies as st

        text = st.from_regex(pattern, fullmatch=True).example()
    return text


def request_for(doc: dict[str, Any], path: str, method: str,
                function: str | None) -> tuple[str, dict[str, Any], bool]:
    """(url, request options, whether every path parameter names something that exists)."""
    op = doc["paths"].get(path, {}).get(method.lower(), {})
    known = True
    url = path
    for name in re.findall(r"\{([^}]+)\}", path):
        if function is not None and FUNCTION_ROUTES.get(_function_prefix(path)) == name:
            value = function
        elif name in KNOWN_PARAMS:
            value = KNOWN_PARAMS[name]
        else:
            known = False
            params = {p["name"]: p for p in op.get("parameters", [])}
            value = str(smallest(params.get(name, {}).get("schema", {}), doc))
        url = url.replace("{" + name + "}", value)
    query = {p["name"]: smallest(p.get("schema", {}), doc) for p in op.get("parameters", [])
             if p["in"] == "query" and p.get("required")}
    options: dict[str, Any] = {"params": query}
    body = op.get("requestBody")
    if body and body.get("required"):
        content = body["content"]
        if "application/json" in content:
            options["json"] = smallest(content["application/json"].get("schema", {}), doc)
    return url, options, known


def _function_prefix(path: str) -> str | None:
    return next((p for p in FUNCTION_ROUTES if path == p or path.startswith(p + "/")), None)


def routes(api: Api) -> list[tuple[str, str, Permission]]:
    """(path, method, permission) of every route of the app; deletes last (they remove what
    they name)."""
    from fastapi.routing import APIRoute

    from aiops.web.app import ui_routes

    app = api.client.app
    found = []
    ui = ui_routes(app)  # the web UI's own (tests/browser)
    for route in app.routes:
        if route in ui:
            continue
        assert isinstance(route, APIRoute), route
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            found.append((route.path, method, app.state.aiops.permissions[route.endpoint]))
    return sorted(found, key=lambda r: (r[1] == "DELETE", r[0], r[1]))


@pytest.fixture
def matrix_api(live_api: Api) -> Api:
    """The API's project with one function of each kind, applied and committed in git (writes
    work); its provider the mock (runs work)."""
    write_project(live_api.root, [spec_data(name, **({"access": access} if access else {}))
                                  for name, access in FUNCTIONS.items()])
    apply_project(live_api.root, url=live_api.db_url, actor="Ann <ann@example.com>")
    git(live_api.root, "add", "-A")
    git(live_api.root, "commit", "-qm", "One function of each kind")
    return live_api


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "no-token")
def test_every_route_by_every_role_by_every_function(matrix_api: Api, role: str | None) -> None:
    from aiops.store import open_store

    api = matrix_api
    doc = api.client.app.openapi()
    store = open_store(api.db_url)
    ids = {}
    for name in FUNCTIONS:
        row = store.find_function(name)
        assert row is not None
        ids[name] = str(row.summary.id)
    failures, cells = [], 0
    for path, method, permission in routes(api):
        prefix = _function_prefix(path)
        for function in (list(FUNCTIONS) if prefix else [None]):
            # A function by its name, and where the route takes an `{id}`, by its id too
            # (not for a delete: the first one removes what the second would name).
            refs = [function] if function else [None]
            if function and prefix and FUNCTION_ROUTES[prefix] == "id" and method != "DELETE":
                refs.append(ids[function])
            for ref in refs:
                url, options, known = request_for(doc, path, method, ref)
                response = api.client.request(method, url, headers=api.headers(role),
                                              **options)
                cells += 1
                want = expected(permission, role, function)
                got = response.status_code
                refused = {401, 403} | ({404} if known else set())
                if got != want if want is not None else (got in refused or got >= 500):
                    failures.append(f"{method} {url} as {role or 'no token'}: {got}, expected "
                                    f"{want or f'none of {sorted(refused)} nor 5xx'}: "
                                    f"{response.text[:300]}")
    assert not failures, "\n".join(failures)
    assert cells >= len(routes(api))  # every route was asked at least once
