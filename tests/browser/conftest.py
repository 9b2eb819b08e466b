"""The web UI in a real browser: Debian's Chromium driven by Playwright (its sync API), against
a live `aiops serve` on a loopback port, backed by PostgreSQL (its own schema) and the mock
provider. Never `playwright install`: the browser is the system's (`/usr/bin/chromium`; `.ci/run`
installs it with apt). Under CI a missing browser fails the run; elsewhere it skips.

Fixtures (package-scoped ones are made once for tests/browser, and gone before other tests):
- `own_server(tmp_path_factory, mock, applies)`: a module's own server on its own schema, for
  a module whose writes would change what other modules see (the editor's); it overrides
  `ui_server` with a module-scoped fixture that yields from it.
- `ui_server` (package): the server, its project (functions `greet` with three versions,
  `ledger` with access lists, `digest` with nested schemas; all committed in git, so writes
  work), tokens of every role (`tests.fixtures_server.TOKENS`), old log rows and a few fresh
  runs through the API (the last 24 hours have calls).
- `browser` (package): one Chromium for the package.
- `ui`: a fresh browser context (no cookies) at 1280x800 with its guard: any request to
  another origin, any console error and any uncaught page error fails the test at teardown
  (`ui.allow_console(text)` accepts an expected one, e.g. the 401 of a bad sign-in).
  `ui.sign_in(role)`, `ui.goto(path)` (a screenshot of each page visited), `ui.shot(name)`
  into artifacts/screenshots/<test>-<name>.png, `ui.csrf()`.
- `phone`: the same at 390x844.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.helpers import AIOPS, git, stop
from tests.fixtures_db import apply_project, pg_base_url, pg_schema, spec_data, write_project
from tests.fixtures_server import SECRET_ACCESS, add_logs, make_tokens

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "artifacts" / "screenshots"
TIMEOUT_MS = 10_000



def _versions() -> list[dict[str, Any]]:
    """`greet` as three versions: 1.1.0 changes the prompt, 1.2.0 the schema and settings."""
    first = spec_data("greet", description="Greets a person by name.")
    second = {**first, "version": "1.1.0", "prompt": [
        {"role": "system", "content": "You are terse and kind."},
        {"role": "user", "content": "Say hello to {{ who }}."}]}
    third = {**second, "version": "1.2.0",
             "configuration": {"temperature": 0.5, "max_tokens": 100},
             "input_schema": {"type": "object", "required": ["who"], "properties": {
                 "who": {"type": "string", "description": "Who to greet."},
                 "tone": {"type": "string", "enum": ["warm", "formal"], "default": "warm"}},
                 "additionalProperties": False}}
    return [first, second, third]


DIGEST = spec_data("digest", description="Digests a news item.", prompt=[
    {"role": "user", "content": "Digest {{ item.title }} at level {{ level }}."}], input_schema={
    "type": "object", "required": ["item"], "properties": {
        "item": {"type": "object", "required": ["title"], "properties": {
            "title": {"type": "string", "maxLength": 200},
            "tags": {"type": "array", "items": {"type": "object", "properties": {
                "label": {"type": "string"}}}}}},
        "level": {"type": "integer", "minimum": 1, "maximum": 5}},
    "additionalProperties": False})


@dataclass
class UiServer:
    base: str
    root: Path
    db_url: str
    tokens: dict[str, str]
    process: subprocess.Popen[str]
    log: Path


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="package")
def pg_schema_package() -> Iterator[str]:
    with pg_schema(_pg_base()) as url:
        yield url


def _pg_base() -> str:
    base = pg_base_url()
    if base is None:
        if os.environ.get("CI"):
            pytest.fail("AIOPS_TEST_DATABASE_URL is not set: the browser tests need PostgreSQL")
        pytest.skip("AIOPS_TEST_DATABASE_URL is not set (CI sets it)")
    return base


def own_server(tmp_path_factory: pytest.TempPathFactory, mock_provider: Any,
               applies: list[list[dict[str, Any]]]) -> Iterator[UiServer]:
    """For a module's own `ui_server` fixture: `serve_project` on a schema of its own, so
    that what its tests write (new versions, functions, runs) no other module sees."""
    with pg_schema(_pg_base()) as url, serve_project(
            tmp_path_factory.mktemp("own"), url, mock_provider, applies) as server:
        yield server


@pytest.fixture(scope="package")
def mock_provider_package() -> Iterator[Any]:
    from aiops.providers.mock_server import MockConfig, serve_in_thread

    with serve_in_thread(MockConfig(retry_after_s=0.01, timeout_fault_s=5)) as server:
        yield server


@pytest.fixture(scope="package")
def ui_server(tmp_path_factory: pytest.TempPathFactory, pg_schema_package: str,
              mock_provider_package: Any) -> Iterator[UiServer]:
    applies = [[greet, spec_data("ledger", description="Books entries.", access=SECRET_ACCESS),
                DIGEST] for greet in _versions()]
    with serve_project(tmp_path_factory.mktemp("ui"), pg_schema_package,
                       mock_provider_package, applies) as server:
        add_logs(server.db_url, "greet", 6, created_by=None)
        for who in ("Ann", "Bob", "Cy"):  # fresh calls: the last 24 hours have some
            answer = httpx.post(f"{server.base}/api/functions/greet/run",
                                json={"input": {"who": who}},
                                headers={"Authorization": f"Bearer {server.tokens['admin']}"},
                                timeout=30)
            assert answer.status_code == 200, answer.text
        yield server


@contextlib.contextmanager
def serve_project(tmp: Path, url: str, mock_provider: Any,
                  applies: list[list[dict[str, Any]]]) -> Iterator[UiServer]:
    """`aiops serve` on a loopback port over a project in `tmp`, on the database at `url`,
    its provider the mock: each list of `applies` is written and applied in turn (a
    function's versions), the last committed in git (writes work); tokens of every role."""
    from aiops.store import open_store

    env = {**os.environ, "AIOPS_PROJECT": "test-project", "MOCK_API_KEY": "sk-test",
           "AIOPS_MOCK_BASE_URL": mock_provider.url + "/v1"}
    saved = {k: os.environ.get(k) for k in ("AIOPS_PROJECT",)}
    os.environ["AIOPS_PROJECT"] = "test-project"  # apply_project reads it
    try:
        open_store(url, migrate=True)
        root = tmp / "proj"
        for functions in applies:
            write_project(root, functions)
            apply_project(root, url=url, actor="Ann <ann@example.com>")
        tokens = make_tokens(root, url)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "aiops server")
    git(root, "config", "user.email", "server@example.org")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "Start")
    port = _free_port()
    log = tmp / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [AIOPS, "serve", "-C", str(root), "--database-url", url, "--port", str(port),
             "--workers", "1"], env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    server = UiServer(base=f"http://127.0.0.1:{port}", root=root, db_url=url, tokens=tokens,
                      process=process, log=log)
    try:
        _wait_ready(server)
        yield server
    finally:
        stop(process)


def _wait_ready(server: UiServer) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.process.poll() is None, server.log.read_text()
        try:
            if httpx.get(server.base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("aiops serve did not answer within 60 s:\n" + server.log.read_text())


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = (f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y "
                   "chromium`; .ci/run does)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Ui:
    """One test's browser tab on the server, and what it saw that it should not have."""

    server: UiServer
    page: Any
    test: str
    problems: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)
    shots: int = 0

    def url(self, path: str) -> str:
        return self.server.base + path

    def goto(self, path: str, *, shot: str | None = None) -> Any:
        """Open `path` and screenshot it (named after the path, or `shot`)."""
        response = self.page.goto(self.url(path))
        self.shot(shot or _slug(path))
        return response

    def shot(self, name: str) -> Path:
        """A screenshot of the page as it is, artifacts/screenshots/<test>-<name>.png."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        path = SHOTS / f"{self.test}-{self.shots:02d}-{_slug(name)}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def sign_in(self, role: str) -> None:
        """Sign in with the token named `role` (tests.fixtures_server.TOKENS) and land on the
        functions list."""
        self.goto("/ui/signin", shot="signin")
        self.page.get_by_label("Token").fill(self.server.tokens[role])
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(re.compile(r".*/ui/functions.*"))
        self.shot("signed-in")

    def csrf(self) -> str:
        value: str = self.page.locator('meta[name="csrf-token"]').get_attribute("content")
        return value

    def allow_console(self, text: str) -> None:
        """Accept console errors holding `text` (a status the test expects, e.g. 401)."""
        self.allowed.append(text)

    def check(self) -> None:
        unexpected = [p for p in self.problems if not any(a in p for a in self.allowed)]
        assert not unexpected, "the page misbehaved:\n" + "\n".join(unexpected)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:80] or "page"


def _open(browser: Any, ui_server: UiServer, request: pytest.FixtureRequest,
          viewport: dict[str, int]) -> Iterator[Ui]:
    origin = urlsplit(ui_server.base).netloc
    context = browser.new_context(viewport=viewport, base_url=ui_server.base,
                                  service_workers="block")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    ui = Ui(server=ui_server, page=page, test=_slug(request.node.name))

    def guard(route: Any) -> None:
        target = urlsplit(route.request.url)
        if target.scheme in ("data", "blob") or target.netloc == origin:
            route.continue_()
            return
        ui.problems.append(f"request to another origin: {route.request.url}")
        route.abort()

    context.route("**/*", guard)
    page.on("console", lambda m: ui.problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: ui.problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: d.accept())  # the UI's confirmations (revoke)
    try:
        yield ui
        ui.check()
    finally:
        context.close()


@pytest.fixture
def ui(browser: Any, ui_server: UiServer, request: pytest.FixtureRequest) -> Iterator[Ui]:
    yield from _open(browser, ui_server, request, {"width": 1280, "height": 800})


@pytest.fixture
def phone(browser: Any, ui_server: UiServer, request: pytest.FixtureRequest) -> Iterator[Ui]:
    yield from _open(browser, ui_server, request, {"width": 390, "height": 844})
