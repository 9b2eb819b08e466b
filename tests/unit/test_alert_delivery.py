"""Notifications on the wire (aiops.monitoring.delivery): the Standard Webhooks signature
against the specification's published example, each receiver's message, the SSRF guard, no
redirect followed, the address checked is the one reached, and errors that hold no URL or
secret. HTTP through httpx.MockTransport; the end-to-end test uses a real receiver."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from aiops.monitoring.delivery import (
    DeliveryError,
    Outgoing,
    checked_address,
    secret_key,
    send,
    sign,
)
from aiops.spec import Receiver

EVENT = {"id": "e1", "event": "firing", "repeat": False, "function": "greet",
         "function_id": "f1", "rule": "errors", "metric": "error_rate", "severity": "critical",
         "condition": "error_rate > 0.05 over 15m", "value": 0.31, "baseline_value": None,
         "window": "15m", "baseline": None, "min_calls": 1, "for": None,
         "started_at": "2026-11-30T12:00:00Z", "resolved_at": None,
         "at": "2026-11-30T12:00:00Z", "summary": "[FIRING] greet/errors: ..."}
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ENV = {"URL": "https://hooks.example.com/in?token=abc", "SECRET": SECRET}


def test_the_signature_is_the_specifications_example() -> None:
    # The example of the Standard Webhooks specification (and of its reference libraries).
    assert sign(secret_key(SECRET), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                b'{"test": 2432232314}') == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize("secret", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!",
                                    "whsec_c2hvcnQ="])
def test_a_secret_that_is_not_whsec_base64_is_refused_without_showing_it(secret: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        secret_key(secret)
    assert secret.removeprefix("whsec_") not in str(caught.value)


def public(host: str, port: int) -> list[str]:
    return ["93.184.215.14"]


def capture(status: int = 204, headers: dict[str, str] | None = None
            ) -> tuple[httpx.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, headers=headers)

    return httpx.Client(transport=httpx.MockTransport(handle)), seen


def deliver(kind: str, **kw: Any) -> httpx.Request:
    client, seen = capture()
    receiver = Receiver(type=kind, url_env="URL",  # type: ignore[arg-type]
                        secret_env="SECRET" if kind == "webhook" else None)
    send(Outgoing(id="msg_1", receiver="r", event=EVENT), receiver, ENV, allow_private=False,
         hold_s=3600, client=client, resolver=public, **kw)
    [request] = seen
    return request


def test_the_request_goes_to_the_checked_address_with_the_hosts_name() -> None:
    request = deliver("webhook")
    assert request.url.host == "93.184.215.14" and request.url.path == "/in"
    assert request.url.params["token"] == "abc"
    assert request.headers["host"] == "hooks.example.com"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    body = request.read()
    assert sign(secret_key(SECRET), "msg_1", int(request.headers["webhook-timestamp"]),
                body) == request.headers["webhook-signature"]
    assert json.loads(body)["type"] == "alert.firing"


def test_slack_and_alertmanager_messages() -> None:
    slack = json.loads(deliver("slack").read())
    assert slack["text"].startswith(":rotating_light: [FIRING] greet/errors")
    am = deliver("alertmanager")
    assert am.url.path == "/in/api/v2/alerts"
    [alert] = json.loads(am.read())
    assert alert["labels"] == {"alertname": "errors", "function": "greet",
                               "metric": "error_rate", "severity": "critical",
                               "source": "aiops"}
    assert alert["startsAt"] == "2026-11-30T12:00:00Z"
    assert alert["endsAt"] == "2026-11-30T13:00:00Z"  # held for hold_s while it fires


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.10", "172.16.0.1",
                                     "169.254.169.254", "::1", "fe80::1", "fd00::1", "0.0.0.0",
                                     "100.64.0.1", "224.0.0.1"])
def test_the_guard_refuses_addresses_that_are_not_global(address: str) -> None:
    with pytest.raises(DeliveryError, match="allow_private_addresses"):
        checked_address("hooks.example.com", 443, allow_private=False,
                        resolver=lambda h, p: ["93.184.215.14", address])
    assert checked_address("hooks.example.com", 443, allow_private=True,
                           resolver=lambda h, p: [address]) == address


def test_a_redirect_is_not_followed() -> None:
    client, seen = capture(302, {"location": "http://169.254.169.254/latest"})
    receiver = Receiver(type="slack", url_env="URL")
    with pytest.raises(DeliveryError, match=r"302 \(a redirect, not followed"):
        send(Outgoing(id="m", receiver="r", event=EVENT), receiver, ENV, allow_private=False,
             hold_s=60, client=client, resolver=public)
    assert len(seen) == 1


def test_errors_name_the_variable_never_the_url_or_the_secret() -> None:
    receiver = Receiver(type="webhook", url_env="URL", secret_env="SECRET")
    for env, needle in (({}, "URL is not set"), ({"URL": ENV["URL"]}, "SECRET is not set")):
        with pytest.raises(DeliveryError, match=needle):
            send(Outgoing(id="m", receiver="r", event=EVENT), receiver, env,
                 allow_private=False, hold_s=60, resolver=public)
    client, _ = capture(500)
    with pytest.raises(DeliveryError) as caught:
        send(Outgoing(id="m", receiver="r", event=EVENT), receiver, ENV, allow_private=False,
             hold_s=60, client=client, resolver=public)
    assert str(caught.value) == "answered 500"
