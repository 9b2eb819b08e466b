"""Actors: who applies or runs, as the users table knows them (no SQL here).

Every write names a user row (`created_by`, `updated_by`): the git author or `--actor` for
`apply`, the `--actor` or the OS user for `run`. An actor is free text, `Name <email>`, an
email, or a name; `parse_actor` splits it the one way the store matches it to a user row
(by email when there is one, else by a name without email). A user row that aiops creates
gets the id `user_id(name, email)`: concurrent first uses by several processes create one
row, not one each. The migration that made `created_by` required used the same ids (it
holds a copy of them: migrations do not import the code they precede).
"""

from __future__ import annotations

import re
import uuid

UNKNOWN = "unknown"  # the actor when none is known (the migration's placeholder user too)
USER_NAMESPACE = uuid.UUID("6f1c1b4e-2f55-4f0e-9a8e-5d2b0c7a1e01")
NAME_LEN, EMAIL_LEN = 200, 320  # the users table's columns

_NAMED_EMAIL = re.compile(r"\s*(.*?)\s*<([^<>@\s]+@[^<>\s]+)>\s*")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def parse_actor(actor: str | None) -> tuple[str, str | None]:
    """(name, email) of `Name <email>`, `email` or `name`; `unknown` when empty."""
    actor = (actor or "").strip()
    m = _NAMED_EMAIL.fullmatch(actor)
    if m:
        name, email = (m[1] or m[2]), m[2]
    elif _EMAIL.fullmatch(actor):
        name, email = actor, actor
    else:
        name, email = actor or UNKNOWN, None
    return name[:NAME_LEN], (email[:EMAIL_LEN] if email else None)


def user_id(name: str, email: str | None) -> uuid.UUID:
    """The id of the user row aiops creates for (name, email): keyed as rows are matched."""
    return uuid.uuid5(USER_NAMESPACE, f"email:{email}" if email else f"name:{name}")


def os_user() -> str:
    """Who runs this process, as the OS says; `unknown` when it cannot say."""
    import getpass

    try:
        return getpass.getuser() or UNKNOWN
    except (KeyError, OSError):
        return UNKNOWN
