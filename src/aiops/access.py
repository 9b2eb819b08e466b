"""Who may do what through the API: roles, permissions and a function's `access` lists.

Pure decisions over values; the server authenticates a token into a `Caller` and asks here.

    role (the token's)     gates the kind of action      viewer < invoker < editor < admin
    access (the function's) gates the object             view / invoke / edit: groups or `everyone`

A caller may `view` a function when its role is at least viewer and one of its groups (or
`everyone`) is on the function's `view` list; `invoke` and `edit` likewise with their lists.
Admins pass every list. A function the caller may not view is, to that caller, a function
that does not exist (the API answers 404, never 403).

The inputs and outputs of a function's logs (its content) are shown to callers who may edit
the function, and to the caller whose own call a row records; others see the row without them.

The CLI is not a caller: it runs with the operator's own database and provider keys, and
these lists do not bind it (`caller=None` in the verbs).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["viewer", "invoker", "editor", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "invoker", "editor", "admin")
EVERYONE = "everyone"
# The actions an `access` list names, each with the least role that may take it.
ListAction = Literal["view", "invoke", "edit"]


class Permission(enum.IntEnum):
    """What a route needs, in order: each needs a token whose role is at least its own.
    PUBLIC needs no token (health and the API's description only)."""

    PUBLIC = 0
    VIEW = 1
    INVOKE = 2
    EDIT = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.lower()


_ROLE_PERMISSION: dict[str, Permission] = {
    "viewer": Permission.VIEW, "invoker": Permission.INVOKE, "editor": Permission.EDIT,
    "admin": Permission.ADMIN}
LEAST_ROLE: dict[Permission, Role] = {p: r for r, p in _ROLE_PERMISSION.items()}  # type: ignore[misc]


def role_allows(role: str, permission: Permission) -> bool:
    """Whether a token of `role` may take actions that need `permission` (an unknown role may
    take none)."""
    held = _ROLE_PERMISSION.get(role)
    return held is not None and held >= permission


@dataclass(frozen=True, kw_only=True)
class Caller:
    """An authenticated API caller: its token and the user it belongs to."""

    token_id: str
    key_id: str
    token_name: str
    user_id: str
    role: Role
    groups: tuple[str, ...] = ()
    user_name: str = ""  # the token's user, who authors what the caller commits
    user_email: str | None = None
    # The token's quotas (None: none of that kind): runs per minute, calls and USD per day.
    rpm: int | None = None
    daily_calls: int | None = None
    daily_usd: float | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def user_actor(self) -> str:
        """The token's user as an actor (`aiops.actors`): `Name <email>`, or the name."""
        name = self.user_name or self.token_name
        return f"{name} <{self.user_email}>" if self.user_email else name

    @property
    def actor(self) -> str:
        """How log rows and commits name this caller."""
        return f"token:{self.token_name}"


def listed(access: Mapping[str, Any] | None, action: ListAction) -> tuple[str, ...]:
    """The groups an `access` mapping (as stored: `edit` absent means everyone) lets take
    `action`."""
    value = (access or {}).get(action)
    if value is None:
        return (EVERYONE,)
    return tuple(str(v) for v in value)


def may(caller: Caller | None, action: ListAction, access: Mapping[str, Any] | None) -> bool:
    """Whether `caller` may `action` a function whose access lists are `access`: its role
    allows the kind of action, and one of its groups (or `everyone`) is on the list. None
    (the operator, through the CLI) may do everything."""
    if caller is None or caller.is_admin:
        return True
    if not role_allows(caller.role, Permission[action.upper()]):
        return False
    allowed = listed(access, action)
    return EVERYONE in allowed or any(g in allowed for g in caller.groups)


def may_read_content(caller: Caller | None, access: Mapping[str, Any] | None,
                     row_user_id: str | None) -> bool:
    """Whether `caller` may read the inputs and outputs of a log row: it may edit the
    function, or the row records its own call."""
    if caller is not None and row_user_id is not None and row_user_id == caller.user_id:
        return True
    return may(caller, "edit", access)


def allowed_actions(caller: Caller | None, access: Mapping[str, Any] | None
                    ) -> tuple[ListAction, ...]:
    """What `caller` may do with a function, in order (view first)."""
    actions: tuple[ListAction, ...] = ("view", "invoke", "edit")
    return tuple(a for a in actions if may(caller, a, access))
