"""The optional parts of the distribution: PostgreSQL and Redis drivers are extras
(`pip install 'aiops-kit[postgres]'`, `[redis]`); the default path (SQLite, in-process limits)
needs neither. Code that reaches one first asks `require_extra`, so that a missing driver is a
ConfigError that names the extra to install, not an ImportError from deep inside a library."""

from __future__ import annotations

from importlib.util import find_spec

from aiops.errors import ConfigError

# The distribution on the package index (the name `aiops` there is an unrelated project); the
# command and the import package are `aiops`. pyproject.toml says the same (a test checks).
DISTRIBUTION = "aiops-kit"


def require_extra(module: str, extra: str, needed_for: str) -> None:
    """A ConfigError unless `module` can be imported; `needed_for` says what asked for it."""
    if find_spec(module) is None:
        raise ConfigError(f"{needed_for} needs the `{module}` package, which is not installed: "
                          f"pip install '{DISTRIBUTION}[{extra}]' (or pipx inject "
                          f"{DISTRIBUTION} {module})")
