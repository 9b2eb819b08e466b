"""The admin API: tokens, through the verbs of `aiops token` (`aiops.commands.tokens`).

    GET    /api/admin/tokens            the tokens, by name, a page at a time (never a secret)
    POST   /api/admin/tokens            make one: 201, its text in the answer, this once
    DELETE /api/admin/tokens/{token}    revoke the token whose key id or name this is

Role admin. The body of POST is checked by the same rules as `aiops token create`'s options
(`aiops.tokens`), so a bad role, group or lifetime is a 422 naming the field, and the verb
sees only what it would accept from the command line.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Path, Query, Request, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from aiops import commands
from aiops.access import Permission, Role
from aiops.catalog import DEFAULT_LIMIT, MAX_LIMIT
from aiops.commands.tokens import MAX_QUOTA
from aiops.errors import UsageError
from aiops.server.api.guard import CallerDep, Operations
from aiops.spec import DURATION_PATTERN
from aiops.tokens import (
    GROUP_PATTERN,
    NAME_PATTERN,
    TokenRecord,
    check_groups,
    check_lifetime,
)

ops = Operations("tokens")
BASE = "/api/admin/tokens"
MAX_GROUPS = 100

# A key id (16 hex digits) and a name both match NAME_PATTERN: anything else (a NUL, which
# PostgreSQL refuses in a string) is 422 before the database is asked.
TokenRef = Annotated[str, Path(min_length=1, max_length=100, pattern=NAME_PATTERN,
                               description="The token's key id, or its name.")]


def _rule(check: object) -> AfterValidator:
    """A check of `aiops.tokens` as a field validator: its UsageError a 422 on the field."""

    def validate(value: object) -> object:
        try:
            check(value)  # type: ignore[operator]
        except UsageError as exc:
            raise ValueError(str(exc)) from None
        return value

    return AfterValidator(validate)


class NewTokenBody(BaseModel):
    """A token to make: `aiops token create`'s options."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN, max_length=100,
                      description="Unique among the tokens not revoked.")
    role: Role = Field(description="viewer reads; invoker also runs; editor also writes; "
                       "admin also manages tokens.")
    groups: Annotated[list[Annotated[str, Field(pattern=GROUP_PATTERN, max_length=63)]],
                      _rule(lambda gs: check_groups(tuple(gs)))] = Field(
        default_factory=list, max_length=MAX_GROUPS,
        description="Matched against the functions' access lists.")
    expires: Annotated[str | None, _rule(lambda e: e is None or check_lifetime(e, "expires"))] \
        = Field(None, pattern=DURATION_PATTERN, max_length=12, description=(
            "Lifetime: 90d, 12h, 30m, 45s (at most 3650d); null: no expiry."))
    user: str | None = Field(None, min_length=1, max_length=500, description=(
        'Who the token acts for, "Name <email>" (default: a user named like the token).'))
    rpm: int | None = Field(None, ge=1, le=MAX_QUOTA, description="Runs per minute.")
    daily_calls: int | None = Field(None, ge=1, le=MAX_QUOTA, description="Runs per day.")
    daily_usd: float | None = Field(None, gt=0, le=1e9, description="USD per day.")


class TokenInfo(BaseModel):
    """A token as stored: never its secret, nor the secret's hash."""

    name: str
    key_id: str
    role: Role
    groups: list[str]
    state: Literal["active", "expired", "revoked"]
    user: str = Field(description="The user the token acts for.")
    user_email: str | None
    created_by: str = Field(description="The user who made it.")
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(description="To the minute.")
    rpm: int | None
    daily_calls: int | None
    daily_usd: float | None


class CreatedTokenInfo(TokenInfo):
    token: str = Field(description="The token's text, `aiops_<key id>_<secret>`: this answer "
                       "is its only copy.")


class TokenPage(BaseModel):
    items: list[TokenInfo]
    next_cursor: str | None


def info(t: TokenRecord, now: datetime) -> TokenInfo:
    return TokenInfo(name=t.name, key_id=t.key_id, role=t.role, groups=list(t.groups),
                     state=t.state(now), user=t.user, user_email=t.user_email,
                     created_by=t.created_by, created_at=t.created_at,
                     expires_at=t.expires_at, revoked_at=t.revoked_at,
                     last_used_at=t.last_used_at, rpm=t.rpm, daily_calls=t.daily_calls,
                     daily_usd=t.daily_usd)


@ops.get(BASE, permission=Permission.ADMIN, response_model=TokenPage,
         problems=["validation-failed", "bad-request"],
         summary="The tokens, by name (never their secrets)")
def list_tokens(request: Request, caller: CallerDep,
                include_revoked: Annotated[bool, Query(description="Revoked tokens too.")]
                = False,
                cursor: Annotated[str | None, Query(max_length=500, description=(
                    "The `next_cursor` of the previous page; leave out for the first."))]
                = None,
                limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
                = DEFAULT_LIMIT) -> TokenPage:
    page = commands.token_page(request.app.state.aiops.store(),
                               include_revoked=include_revoked, cursor=cursor, limit=limit)
    now = datetime.now(UTC)
    return TokenPage(items=[info(t, now) for t in page.items], next_cursor=page.next_cursor)


@ops.operation("POST", BASE, permission=Permission.ADMIN, response_model=CreatedTokenInfo,
               status_code=201, problems=["validation-failed", "conflict", "bad-request"],
               summary="Make a token; its text is in this answer only")
def create_token(request: Request, response: Response, caller: CallerDep,
                 body: NewTokenBody) -> CreatedTokenInfo:
    server = request.app.state.aiops
    made = commands.create_token(
        server.workspace, name=body.name, role=body.role,
        groups=tuple(body.groups), expires=body.expires, rpm=body.rpm,
        daily_calls=body.daily_calls, daily_usd=body.daily_usd, user=body.user,
        created_by=caller.user_actor, store=server.store())
    response.headers["Cache-Control"] = "no-store"
    record = info(made.record, datetime.now(UTC))
    return CreatedTokenInfo(**record.model_dump(), token=made.text)


@ops.operation("DELETE", BASE + "/{token}", permission=Permission.ADMIN,
               response_model=TokenInfo, summary="Revoke a token: it is refused from now on")
def revoke_token(request: Request, caller: CallerDep, token: TokenRef) -> TokenInfo:
    record = commands.revoke_token(request.app.state.aiops.workspace, token,
                                   store=request.app.state.aiops.store())
    return info(record, datetime.now(UTC))
