"""Where the database is: AIOPS_DATABASE_URL > aiops.yaml `database_url` > .aiops/aiops.db.

The default is an embedded SQLite file under the project's `.aiops/` directory, created on
first use, so `aiops plan` works in a fresh checkout with nothing to set up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from aiops.spec import ProjectSettings

ENV_URL = "AIOPS_DATABASE_URL"
STATE_DIR = ".aiops"
DEFAULT_DB = "aiops.db"


def database_url(root: Path, settings: ProjectSettings | None = None,
                 environ: Mapping[str, str] | None = None) -> str:
    """The database URL of the project at `root` (the environment wins over aiops.yaml)."""
    env = os.environ if environ is None else environ
    if env.get(ENV_URL):
        return env[ENV_URL]
    if settings is not None and settings.database_url:
        return settings.database_url
    state = root.resolve() / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{state / DEFAULT_DB}"
