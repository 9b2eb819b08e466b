"""Notifications on the wire: each receiver type's message built from an alert event, the
Standard Webhooks signature, the SSRF guard, and one POST with httpx.

    webhook       the event as JSON, {type, timestamp, data}, signed per Standard Webhooks:
                  webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256 of
                  "id.timestamp.body"> with the key in the `whsec_<base64>` secret
    slack         {"text": ...}, what Slack's (and Mattermost's, Rocket.Chat's) incoming
                  webhooks take
    alertmanager  the Alertmanager v2 API: a list of {labels, annotations, startsAt, endsAt}
                  POSTed to <url>/api/v2/alerts

A request has one timeout for the whole attempt and follows no redirect (a 3xx fails it). The
host is resolved first, and the request goes to the address that was checked: a private,
loopback, link-local or otherwise non-global address is refused unless
`allow_private_addresses` (a URL that names an internal service, or a name that resolves to
one, cannot turn alerting into a way in). The URL and the secret are read from the
environment when sending; neither is ever written to the database, a log or a message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from aiops.spec import Receiver

MAX_ERROR_CHARS = 300
SECRET_PREFIX = "whsec_"


class DeliveryError(Exception):
    """A notification that did not go out; the message holds no URL and no secret."""


# --- signing (Standard Webhooks) -----------------------------------------------------------


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret."""
    text = secret.strip()
    if not text.startswith(SECRET_PREFIX):
        raise DeliveryError("the signing secret does not start with whsec_ (Standard Webhooks "
                            "secrets are whsec_ followed by base64)")
    try:
        key = base64.b64decode(text[len(SECRET_PREFIX):], validate=True)
    except ValueError:
        raise DeliveryError("the signing secret is not whsec_ followed by base64") from None
    if len(key) < 16:
        raise DeliveryError("the signing secret's key is shorter than 16 bytes")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`."""
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


# --- messages ------------------------------------------------------------------------------


def webhook_body(event: Mapping[str, Any]) -> dict[str, Any]:
    kind = "alert.resolved" if event["event"] == "resolved" else "alert.firing"
    return {"type": kind, "timestamp": event["at"], "data": dict(event)}


_ICON = {"firing": ":rotating_light:", "resolved": ":white_check_mark:"}


def slack_body(event: Mapping[str, Any]) -> dict[str, Any]:
    return {"text": f"{_ICON[event['event']]} {event['summary']} "
                    f"(severity {event['severity']})"}


def alertmanager_body(event: Mapping[str, Any], *, hold_s: int) -> list[dict[str, Any]]:
    """One alert. While it fires, endsAt is `hold_s` ahead (Alertmanager resolves an alert
    nobody re-sends by then); when it resolves, endsAt is the resolve time."""
    at = datetime.fromisoformat(event["at"].replace("Z", "+00:00"))
    ends = event["resolved_at"] or (at + timedelta(seconds=hold_s)).isoformat(
        timespec="seconds").replace("+00:00", "Z")
    return [{
        "labels": {"alertname": event["rule"], "function": event["function"],
                   "metric": event["metric"], "severity": event["severity"],
                   "source": "aiops"},
        "annotations": {"summary": event["summary"], "condition": event["condition"],
                        "value": "" if event["value"] is None else f"{event['value']:.6g}"},
        "startsAt": event["started_at"], "endsAt": ends,
    }]


def _alertmanager_url(url: str) -> str:
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if not path.endswith("/api/v2/alerts"):
        path += "/api/v2/alerts"
    return urlunsplit(parts._replace(path=path))


# --- the guard -----------------------------------------------------------------------------


Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def checked_address(host: str, port: int, *, allow_private: bool,
                    resolver: Resolver = resolve) -> str:
    """The address to connect to for `host`: every address it resolves to must be global
    (unless `allow_private`); the first is used, so what was checked is what is reached."""
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise DeliveryError(f"cannot resolve the receiver's host ({exc})") from None
    if not addresses:
        raise DeliveryError("the receiver's host resolves to no address")
    if not allow_private:
        for text in addresses:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
            if not ip.is_global or ip.is_multicast:
                raise DeliveryError(
                    f"the receiver's host resolves to {ip}, a private, loopback or link-local "
                    "address: refused (set `alerting.allow_private_addresses: true` in "
                    "aiops.yaml for a receiver inside your network)")
    return addresses[0]


# --- one delivery --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Outgoing:
    """One notification to send: the outbox row's id (the webhook-id, the same on every
    attempt) and its event."""

    id: str
    receiver: str
    event: Mapping[str, Any]


def request_for(item: Outgoing, receiver: Receiver, environ: Mapping[str, str], *,
                hold_s: int, now: float | None = None) -> tuple[str, bytes, dict[str, str]]:
    """The URL, body and headers of the notification (URL and secret read from `environ`)."""
    url = (environ.get(receiver.url_env) or "").strip()
    if not url:
        raise DeliveryError(f"{receiver.url_env} is not set: the receiver's URL is read from it")
    if urlsplit(url).scheme not in ("http", "https"):
        raise DeliveryError(f"{receiver.url_env} does not hold an http(s) URL")
    headers = {"content-type": "application/json", "user-agent": "aiops-alerts"}
    payload: Any
    if receiver.type == "webhook":
        payload = webhook_body(item.event)
    elif receiver.type == "slack":
        payload = slack_body(item.event)
    else:
        payload = alertmanager_body(item.event, hold_s=hold_s)
        url = _alertmanager_url(url)
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    if receiver.type == "webhook":
        assert receiver.secret_env is not None
        secret = environ.get(receiver.secret_env) or ""
        if not secret.strip():
            raise DeliveryError(f"{receiver.secret_env} is not set: the webhook's signing "
                                "secret is read from it")
        timestamp = int(time.time() if now is None else now)
        headers.update({"webhook-id": item.id, "webhook-timestamp": str(timestamp),
                        "webhook-signature": sign(secret_key(secret), item.id, timestamp,
                                                  body)})
    return url, body, headers


def send(item: Outgoing, receiver: Receiver, environ: Mapping[str, str], *,
         allow_private: bool, hold_s: int, client: httpx.Client | None = None,
         resolver: Resolver = resolve) -> None:
    """POST the notification once; DeliveryError (with a message fit to store) if it did not
    go out with a 2xx answer."""
    url, body, headers = request_for(item, receiver, environ, hold_s=hold_s)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = checked_address(host, port, allow_private=allow_private, resolver=resolver)
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{port}" if parts.port else literal
    pinned = urlunsplit(parts._replace(netloc=netloc))
    headers["host"] = parts.netloc.rsplit("@", 1)[-1]
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    own = client is None
    http = client or httpx.Client(follow_redirects=False, trust_env=False)
    try:
        response = http.post(pinned, content=body, headers=headers,
                             timeout=httpx.Timeout(receiver.timeout_s),
                             extensions=extensions, follow_redirects=False)
    except httpx.TimeoutException:
        raise DeliveryError(f"no answer within {receiver.timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"the request failed: {type(exc).__name__}") from None
    finally:
        if own:
            http.close()
    if 300 <= response.status_code < 400:
        raise DeliveryError(f"answered {response.status_code} (a redirect, not followed)")
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"answered {response.status_code}")
