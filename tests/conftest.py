"""Test-wide set-up: no test reaches beyond this machine.

Every test runs with outbound connections refused unless they go to loopback or a Unix
socket: no test calls a real provider, and a test that tries fails loudly instead.
Fixtures per area live in tests/fixtures_*.py.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures_alerts", "tests.fixtures_db", "tests.fixtures_providers",
                  "tests.fixtures_golden", "tests.fixtures_server"]

REPO = Path(__file__).resolve().parent.parent
REALDATA = REPO.parent / "shared" / "realdata"

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(address: object) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX path
        return True
    host = address[0] if isinstance(address, tuple) else None
    if host in ("localhost", None):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guard(address: object) -> None:
    if not _is_local(address):
        raise OSError(f"tests may not open network connections (tried {address!r})")


def _connect(self: socket.socket, address: object) -> None:
    _guard(address)
    return _real_connect(self, address)


def _connect_ex(self: socket.socket, address: object) -> int:
    _guard(address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _connect_ex)


@pytest.fixture
def realdata() -> Path:
    """The shared real-world payloads; required in CI, optional elsewhere."""
    if not REALDATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{REALDATA} is missing; CI must have ../shared/realdata")
        pytest.skip("../shared/realdata is not present on this machine")
    return REALDATA


@pytest.fixture
def repo_root() -> Path:
    return REPO


def pytest_sessionstart(session: pytest.Session) -> None:
    # In CI the PostgreSQL tests must run, never skip: refuse to start without the URL.
    if os.environ.get("CI") and not os.environ.get("AIOPS_TEST_DATABASE_URL"):
        raise pytest.UsageError("CI is set but AIOPS_TEST_DATABASE_URL is not: run via .ci/run")
