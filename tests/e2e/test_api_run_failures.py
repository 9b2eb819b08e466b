"""The run route when the server itself fails: the database stops answering (503 `not-ready`,
with Retry-After, saying nothing of the database's address), and a bug (500
`internal-error`, naming an incident the server's log holds, without a trace or the
exception's words). Both are problem documents; neither runs anything."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from aiops.providers.mock_server import MockServer
from tests.e2e.test_api_runs import TICKET, _rows, _serve
from tests.fixtures_server import Api

RUN = "/api/functions/{}/run"


class Proxy:
    """A TCP relay to the database that can be cut, as a network failure or a database host
    going down would: the server's connections through it break, new ones are refused."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # cut
                return
            server = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        # Wakes the accepting thread: a listener closed under it would still accept.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


@pytest.fixture
def proxied(tmp_path: Path, pg_schema_url: str, monkeypatch: pytest.MonkeyPatch,
            mock_provider: MockServer) -> Iterator[tuple[Api, Proxy]]:
    parts = urlsplit(pg_schema_url)
    proxy = Proxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    netloc = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    url = urlunsplit(parts._replace(netloc=f"{netloc}127.0.0.1:{proxy.port}"))
    try:
        for api in _serve(tmp_path, url, monkeypatch, mock_provider):
            yield api, proxy
    finally:
        proxy.cut()


@pytest.mark.postgres
def test_a_database_that_stops_answering_is_503_not_ready(
        proxied: tuple[Api, Proxy], caplog: pytest.LogCaptureFixture) -> None:
    api, proxy = proxied
    api.call("POST", RUN.format("classify"), token="invoker", json={"input": TICKET})
    proxy.cut()
    # The token is trusted for a few seconds; `plain` was never resolved by this worker, so
    # its access is asked of the database, which does not answer.
    response = api.call("POST", RUN.format("plain"), token="invoker", expect=503,
                        json={"input": TICKET})
    body = response.json()
    assert body["code"] == "not-ready" and response.headers["Retry-After"] == "5"
    assert body["instance"].startswith("urn:uuid:") and "execution" not in body
    assert str(proxy.port) not in response.text and "postgres" not in response.text
    assert "Traceback" not in response.text
    assert body["instance"] in caplog.text  # the server's log says which database, and why


@pytest.fixture
def runs(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch,
         mock_provider: MockServer) -> Iterator[Api]:
    yield from _serve(tmp_path, db_url, monkeypatch, mock_provider)


def test_a_bug_before_the_execution_is_500_without_details(
        runs: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from aiops.commands import invoke

    def broken(*args: Any, **kw: Any) -> Any:
        raise KeyError("secret-host:5432 hunter2")

    monkeypatch.setattr(invoke, "admit", broken)  # the token's quotas, before the run
    response = runs.call("POST", RUN.format("classify"), token="invoker", expect=500,
                         json={"input": TICKET})
    body = response.json()
    assert body["code"] == "internal-error" and body["instance"].startswith("urn:uuid:")
    assert "execution" not in body and _rows(runs, "classify") == 0
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert body["instance"] in caplog.text and "hunter2" in caplog.text


def test_a_bug_during_the_execution_is_500_with_its_log_row(
        runs: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from aiops.providers import _sdk

    async def broken(*args: Any, **kw: Any) -> Any:
        raise ZeroDivisionError("secret-host hunter2")

    monkeypatch.setattr(_sdk.SdkChatProvider, "complete", broken)
    response = runs.call("POST", RUN.format("plain"), token="invoker", expect=500,
                         json={"input": TICKET})
    body = response.json()
    assert body["code"] == "internal-error" and "Traceback" not in response.text
    assert "hunter2" not in response.text and "ZeroDivisionError" not in response.text
    log_id = body["execution"]["log_id"]
    assert log_id in body["detail"] and _rows(runs, "plain") == 1
    assert "hunter2" in caplog.text  # the server's log has what failed
