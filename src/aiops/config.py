"""Where the database is: AIOPS_DATABASE_URL > aiops.yaml `database_url` > .aiops/aiops.db.

The default is an embedded SQLite file under the project's `.aiops/` directory, created on
first use, so `aiops plan` works in a fresh checkout with nothing to set up. A relative SQLite
path in aiops.yaml is relative to the project directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from aiops.errors import ConfigError
from aiops.spec import ProjectSettings

ENV_URL = "AIOPS_DATABASE_URL"
STATE_DIR = ".aiops"
DEFAULT_DB = "aiops.db"
PENDING_LOGS = "pending-logs"  # log rows the database did not take, until a command writes them


def database_url(root: Path, settings: ProjectSettings | None = None,
                 environ: Mapping[str, str] | None = None) -> str:
    """The database URL of the project at `root` (the environment wins over aiops.yaml)."""
    env = os.environ if environ is None else environ
    # Stripped: a secret pasted with its trailing newline names another database.
    if (env.get(ENV_URL) or "").strip():
        return env[ENV_URL].strip()
    if settings is not None and (settings.database_url or "").strip():
        return _anchor_sqlite((settings.database_url or "").strip(), root.resolve())
    state = project_root(root) / STATE_DIR
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {state} for the default SQLite database "
                          f"({exc.strerror or exc}); make it writable, or set "
                          f"{ENV_URL} (or `database_url` in aiops.yaml)") from None
    return f"sqlite:///{state / DEFAULT_DB}"


def pending_logs_dir(root: Path) -> Path:
    """Where the project at `root` keeps log rows its database did not take
    (`.aiops/pending-logs`; aiops.store.logrows.Spool)."""
    return project_root(root) / STATE_DIR / PENDING_LOGS


MARKERS = ("functions", "providers.yaml", "aiops.yaml")


def project_root(start: Path) -> Path:
    """The nearest directory at or above `start`, inside the same git repository, that holds
    a project (functions/, providers.yaml or aiops.yaml); else `start` itself.

    So a command run from functions/greet/ uses the project's database instead of creating
    an empty one there. Outside a git repository nothing above `start` is searched (an
    unrelated directory higher up must not be taken for the project)."""
    here = start.resolve()
    chain = (here, *here.parents)
    top = next((i for i, d in enumerate(chain) if (d / ".git").exists()), None)
    if top is None:
        return here
    return next((d for d in chain[:top + 1] if any((d / m).exists() for m in MARKERS)), here)


def _anchor_sqlite(url: str, root: Path) -> str:
    """A relative SQLite path in aiops.yaml is relative to the project, not to the cwd."""
    m = re.fullmatch(r"(sqlite(?:\+\w+)?:///)([^?]*)(\?.*)?", url, flags=re.DOTALL)
    if m is None or not m[2] or m[2].startswith("/") or m[2] == ":memory:":
        return url
    return f"{m[1]}{root / m[2]}{m[3] or ''}"
