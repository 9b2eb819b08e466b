"""Deny by default: every operation declares the permission it needs, and one gate checks it
before the operation runs.

Operations are declared on an `Operations` registry (`@ops.get(path, permission=...)`):
`permission` is a required argument, so an operation without one does not import. `install`
adds them to the app, each with the problem documents it can answer declared in the OpenAPI
document. The gate is a dependency of the whole app: an operation it does not know (one added
to the app some other way) is refused, whatever its path.

    Permission.PUBLIC    no token: health and the API's own description
    Permission.VIEW      a token of role viewer or above     (reads)
    Permission.INVOKE    invoker or above                    (running functions)
    Permission.EDIT      editor or above                     (writes)
    Permission.ADMIN     admin                               (tokens)

The role gates the kind of action; the function's own `access` lists gate the object, in the
verbs (`aiops.access`, `aiops.commands.catalog`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool

from aiops.access import LEAST_ROLE, Caller, Permission, role_allows
from aiops.server.api.problems import ApiProblem, ProblemItem, responses

F = TypeVar("F", bound=Callable[..., Any])

BEARER = "bearer"  # the security scheme's name in the OpenAPI document
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="aiops"'}


@dataclass(frozen=True, kw_only=True)
class Operation:
    method: str
    path: str
    endpoint: Callable[..., Any]
    permission: Permission
    problems: tuple[str, ...]
    problem_schema: str = "Problem"  # the component schema of its problem documents
    options: dict[str, Any] = field(default_factory=dict)


def problems_of(path: str, permission: Permission, extra: Iterable[str]) -> tuple[str, ...]:
    """The problem codes an operation can answer: its own, and those every operation of its
    kind can (the gate's, the body bound's, a server failure's)."""
    codes = ["internal-error", "payload-too-large", "validation-failed", *extra]
    if permission is not Permission.PUBLIC:
        codes += ["unauthenticated", "forbidden", "misconfigured", "not-ready"]
    if "{" in path:
        codes += ["not-found"]
    return tuple(dict.fromkeys(codes))


class Operations:
    """A group of operations (one module's), each with its permission."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.operations: list[Operation] = []

    def operation(self, method: str, path: str, *, permission: Permission,
                  problems: Iterable[str] = (), problem_schema: str = "Problem",
                  **options: Any) -> Callable[[F], F]:
        if not isinstance(permission, Permission):
            raise TypeError(f"{method} {path}: permission must be an aiops.access.Permission")

        def register(endpoint: F) -> F:
            self.operations.append(Operation(
                method=method, path=path, endpoint=endpoint, permission=permission,
                problems=problems_of(path, permission, problems),
                problem_schema=problem_schema, options=options))
            return endpoint

        return register

    def get(self, path: str, *, permission: Permission, problems: Iterable[str] = (),
            **options: Any) -> Callable[[F], F]:
        return self.operation("GET", path, permission=permission, problems=problems, **options)


def install(app: FastAPI, groups: Iterable[Operations]) -> dict[Callable[..., Any], Permission]:
    """Add every operation to `app`; the permission of each endpoint (what the gate reads)."""
    permissions: dict[Callable[..., Any], Permission] = {}
    for group in groups:
        for op in group.operations:
            options = dict(op.options)
            extra = dict(options.pop("openapi_extra", None) or {})
            extra["x-permission"] = op.permission.label
            if op.permission is not Permission.PUBLIC:
                extra["security"] = [{BEARER: []}]
                extra["x-least-role"] = LEAST_ROLE[op.permission]
            app.add_api_route(op.path, op.endpoint, methods=[op.method], tags=[group.tag],
                              responses={**responses(op.problems, op.problem_schema),
                                         **options.pop("responses", {})},
                              openapi_extra=extra, **options)
            permissions[op.endpoint] = op.permission
    return permissions


async def gate(request: Request) -> Caller | None:
    """The app-wide dependency: the operation's declared permission, the caller's token
    checked against it. None for a public operation. A token the worker checked lately is
    answered from its cache, on the event loop; another is checked in the database, in a
    thread."""
    server = request.app.state.aiops
    endpoint = request.scope.get("endpoint")
    permission = server.permissions.get(endpoint)
    if permission is None:
        raise ApiProblem("internal-error", "this operation declares no permission, so it "
                         "answers nobody")
    if permission is Permission.PUBLIC:
        _known_query(request, endpoint)
        return None
    text = _bearer(request)
    caller: Caller = server.trusted(text) or await run_in_threadpool(server.authenticate, text)
    if not role_allows(caller.role, permission):
        raise ApiProblem("forbidden", f"this needs a token of role {LEAST_ROLE[permission]} "
                         f"or above; this token's role is {caller.role}")
    _known_query(request, endpoint)
    request.state.caller = caller
    return caller


def _known_query(request: Request, endpoint: Any) -> None:
    """A query parameter the operation does not take is refused (422), not ignored: a
    misspelt filter (`?stauts=error`) would otherwise answer as if there were none."""
    if not request.query_params:
        return
    known = _query_names(request.app, endpoint)
    unknown = [k for k in dict.fromkeys(request.query_params.keys()) if k not in known]
    if unknown:
        takes = ", ".join(f"`{k}`" for k in sorted(known)) or "none"
        raise ApiProblem("validation-failed", f"{len(unknown)} query parameter(s) this "
                         f"operation does not take (it takes: {takes})",
                         errors=[ProblemItem(detail="not a parameter of this operation",
                                             parameter=k[:100]) for k in unknown[:20]])


_QUERY_NAMES: dict[Any, frozenset[str]] = {}


def _query_names(app: FastAPI, endpoint: Any) -> frozenset[str]:
    """The query parameters an endpoint's route takes (its own and its dependencies')."""
    names = _QUERY_NAMES.get(endpoint)
    if names is None:
        route = next(r for r in app.routes if getattr(r, "endpoint", None) is endpoint)
        names = _QUERY_NAMES[endpoint] = frozenset(_walk_query(route.dependant))  # type: ignore[attr-defined]
    return names


def _walk_query(dependant: Any) -> set[str]:
    names = {str(f.alias) for f in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _walk_query(sub)
    return names


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise ApiProblem("unauthenticated", "send an API token: `Authorization: Bearer "
                         "aiops_...` (`aiops token create` makes one)", headers=CHALLENGE)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiProblem("unauthenticated", "the Authorization header must be `Bearer "
                         "<token>`", headers=CHALLENGE)
    return token.strip()


async def _caller(request: Request, _: Annotated[Caller | None, Depends(gate)]) -> Caller:
    caller: Caller = request.state.caller
    return caller


# The authenticated caller of a non-public operation (the gate has run).
CallerDep = Annotated[Caller, Depends(_caller)]
