"""Cassettes: one golden test's provider HTTP, recorded once and replayed offline (vcrpy).

A cassette is `functions/<name>/cassettes/<provider>/<test>.yaml`. What makes it fit for a
repository and for CI:

- **Matching** on method, path and canonical JSON body (keys sorted, whitespace ignored), not on
  the host or the headers: a recording made through a proxy or the mock server replays for the
  provider's real URL. The URL is also rewritten at record time from the base URL in use
  (`AIOPS_<PROVIDER>_BASE_URL`, a mock) to the provider's own, so cassettes read the same
  whoever recorded them.
- **No secrets**: only `content-type` is kept of the headers (authorization, api-key, cookies,
  organisation and project ids, HMAC signatures and timestamps, SDK telemetry all go), the
  keys in use are redacted wherever else they appear (the URL, a body that echoes one), and
  only successful answers are recorded (a 429 or 500 is retried by the runner, not replayed).
- **Stable, readable YAML**: JSON bodies are stored as YAML structures with sorted keys,
  multi-line text as literal blocks, no volatile headers; recording the same answer twice
  writes the same bytes.
- **Misses are explained**: in replay (record mode `none`) a request that is not in the
  cassette fails its test; `explain_miss` shows the difference between the request the
  working tree renders now and the nearest one recorded.
- **Read like a function file**: vcrpy loads a cassette through our persister, which reads it
  with `aiops.files` (a regular file inside the project, at most MAX_RECORDING_BYTES) and
  `aiops.yamlsrc` (safe tags, duplicate keys refused, aliases bounded by count and by the
  text they expand to: a 2.6 KB cassette of nested aliases reached 6 GB through
  `yaml.safe_load`). A cassette that is not acceptable fails its own test with a located
  `CassetteFormatError`; a recording over the bound is refused before it is written.
- **Only aiops's layout**: a cassette copied from another project (vcrpy's own layout, with
  `body: {string: ...}`, pydantic-ai's `parsed_body`, the legacy vcrpy-httpx one) or any
  other YAML is a `ForeignCassette` that names the key that gives it away.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import vcr
import yaml
from vcr.persisters.filesystem import CassetteNotFoundError
from vcr.request import Request as VcrRequest
from vcr.serialize import deserialize, serialize

from aiops.files import FileRefused, describe_size, read_bounded
from aiops.fingerprint import canonical_json
from aiops.keyscrub import scrubber
from aiops.providers import HTTP_PATH
from aiops.yamlsrc import MAX_RECORDING_BYTES, RECORDING_BOUNDS, YamlProblem, decode, parse

KEPT_HEADERS = frozenset({"content-type"})
# Never written, whatever else changes (KEPT_HEADERS already excludes them: belt and braces).
SECRET_HEADER_WORDS = ("authorization", "api-key", "apikey", "cookie", "organization",
                       "organisation", "project", "signature", "token", "secret")
MATCH_ON = ("method", "path", "json_body")
REDACTED = "<redacted>"
MIN_SECRET_CHARS = 8  # shorter "keys" (`dummy`) are not secrets, and would maul the text
HEADER_COMMENT = (
    "# aiops golden-test cassette: the provider HTTP of one test on one provider.\n"
    "# Replayed by `aiops test`; re-record with `aiops test {function} --provider {provider} "
    "--record`.\n"
)


# --- bodies --------------------------------------------------------------------------------


def _text(body: Any) -> str | None:
    if body is None:
        return None
    if isinstance(body, bytes | bytearray):
        try:
            return bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return str(body)


def parse_json_body(body: Any) -> tuple[bool, Any]:
    """(True, value) when the body is JSON, else (False, None)."""
    text = _text(body)
    if text is None or not text.strip():
        return False, None
    try:
        return True, json.loads(text)
    except ValueError:
        return False, None


def _matched(body: Any, uri: str) -> tuple[bool, Any]:
    """The body as matching compares it. The custom protocol's body names the function's
    `version`, which the OpenAI and Groq bodies do not carry: it is left out, so that a version
    bump that changes no request calls for re-recording on no provider."""
    is_json, value = parse_json_body(body)
    if is_json and isinstance(value, dict) and urlsplit(uri).path.endswith(HTTP_PATH):
        value = {k: v for k, v in value.items() if k != "version"}
    return is_json, value


def canonical_body(body: Any, uri: str = "") -> str:
    """The body as matching sees it: canonical JSON, or the raw text."""
    is_json, value = _matched(body, uri)
    if is_json:
        return canonical_json(value)
    return _text(body) or ""


def json_body_matcher(r1: VcrRequest, r2: VcrRequest) -> None:
    """vcrpy matcher: equal canonical JSON bodies (raises AssertionError when not)."""
    if canonical_body(r1.body, r1.uri) != canonical_body(r2.body, r2.uri):
        raise AssertionError("the JSON bodies differ")


# --- filters -------------------------------------------------------------------------------


def _is_secret_header(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_HEADER_WORDS)


def _keep_headers(headers: dict[str, Any]) -> dict[str, Any]:
    return {k.lower(): v for k, v in headers.items()
            if k.lower() in KEPT_HEADERS and not _is_secret_header(k)}


@dataclass(frozen=True, kw_only=True)
class Rewrite:
    """Rewrite request URLs from the base URL in use to the provider's canonical one."""

    used: str | None  # e.g. http://127.0.0.1:8765/openai/v1 (a mock), or None: no rewrite
    canonical: str  # e.g. https://api.openai.com/v1

    def apply(self, uri: str) -> str:
        if self.used and uri.startswith(self.used.rstrip("/")):
            return self.canonical.rstrip("/") + uri[len(self.used.rstrip("/")):]
        return uri


def _scrub(body: Any, secrets: tuple[str, ...]) -> Any:
    """`body` (text or bytes) with every secret value redacted, in any case or encoding
    (as is, upper-cased, URL-encoded, JSON-escaped, base64: `aiops.keyscrub`)."""
    scrub = scrubber(tuple(secrets), REDACTED, MIN_SECRET_CHARS)
    if isinstance(body, bytes | bytearray):
        return scrub.binary(bytes(body))
    if isinstance(body, str):
        return scrub.text(body)
    return body


_SECRET_PARAM = re.compile(r"(?i)key|token|secret|sig|passw|auth|credential")


def _safe_uri(uri: str) -> str:
    """`uri` without user info and with the values of secret-looking query parameters
    redacted (`?key=`, `api_key=`, `sig=`, `X-Amz-Signature=`)."""
    parts = urlsplit(uri)
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        query = urlencode([(k, REDACTED if _SECRET_PARAM.search(k) else v)
                           for k, v in parse_qsl(query, keep_blank_values=True)], safe="<>")
    if netloc == parts.netloc and query == parts.query:
        return uri
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def make_request_filter(rewrite: Rewrite | None, secrets: tuple[str, ...] = ()) -> Any:
    """Drop every header but the content type, rewrite the URL to the provider's own, and
    redact the values of `secrets` (the keys in use) wherever else they appear."""

    def before_record_request(request: VcrRequest) -> VcrRequest:
        request = copy.deepcopy(request)
        for name in list(request.headers):
            if name.lower() not in KEPT_HEADERS or _is_secret_header(name):
                del request.headers[name]
        if rewrite is not None:
            request.uri = rewrite.apply(request.uri)
        request.uri = _scrub(_safe_uri(request.uri), secrets)
        request.body = _scrub(request.body, secrets)
        return request

    return before_record_request


def make_response_filter(secrets: tuple[str, ...] = ()) -> Any:
    """Keep successful answers only, with their content type; drop every other header;
    redact the values of `secrets` from the body (a provider or proxy that echoes a key)."""

    def before_record_response(response: dict[str, Any]) -> dict[str, Any] | None:
        if response["status"]["code"] >= 400:
            return None
        response["headers"] = _keep_headers(response["headers"])
        body = response.get("body")
        if isinstance(body, dict) and "string" in body:
            body["string"] = _scrub(body["string"], secrets)
        return response

    return before_record_response


before_record_response = make_response_filter()


# --- serializer ----------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    pass


# YAML reads these as line breaks too: in a literal block they would come back as `\n`.
_OTHER_BREAKS = ("\r", "\x85", "\u2028", "\u2029")


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data and not any(c in data for c in _OTHER_BREAKS):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_representer)


def dump_yaml(value: Any) -> str:
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100,
                     default_flow_style=False)


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _body_out(body: Any) -> dict[str, Any]:
    is_json, value = parse_json_body(body)
    if is_json:
        return {"json": _sorted(value)}
    return {"body": _text(body)}


def _body_in(entry: dict[str, Any]) -> str | None:
    if "json" in entry:
        return json.dumps(entry["json"], ensure_ascii=False, separators=(",", ":"))
    return entry.get("body")


class CassetteFormatError(ValueError):
    """A cassette file that is not valid YAML or lacks the keys of one; `where` is
    `:line:column` when the problem has a place in the file."""

    def __init__(self, message: str, *, line: int | None = None,
                 column: int | None = None) -> None:
        super().__init__(message)
        self.where = "" if line is None else f":{line}" + ("" if column is None else
                                                           f":{column}")


class CassetteSerializer:
    """vcrpy serializer: JSON bodies as YAML structures, a fixed key order, a header comment."""

    def __init__(self, comment: str = "") -> None:
        self.comment = comment

    def serialize(self, data: dict[str, Any]) -> str:
        interactions = []
        for item in data["interactions"]:
            req, resp = item["request"], item["response"]
            interactions.append({
                "request": {"method": req["method"], "uri": req["uri"],
                            "headers": {k.lower(): v for k, v in sorted(req["headers"].items())},
                            **_body_out(req["body"])},
                "response": {"status": {"code": resp["status"]["code"],
                                        "message": resp["status"].get("message") or ""},
                             "headers": dict(sorted(resp["headers"].items())),
                             **_body_out(resp["body"]["string"])},
            })
        return self.comment + dump_yaml({"version": data.get("version", 1),
                                         "interactions": interactions})

    def deserialize(self, text: str) -> dict[str, Any]:
        try:
            data, _ = parse(text.encode("utf-8"), RECORDING_BOUNDS)
        except YamlProblem as exc:
            raise CassetteFormatError(f"not a cassette aiops can read: {exc.message}",
                                      line=exc.line, column=exc.column) from None
        if not isinstance(data, dict) or "interactions" not in data:
            raise _foreign("the file has no `interactions:` list")
        if not isinstance(data["interactions"], list):
            raise _foreign(f"`interactions` is {_json_kind(data['interactions'])}, not a list")
        interactions = [_interaction(item, i) for i, item in enumerate(data["interactions"])]
        return {"version": data.get("version", 1), "interactions": interactions}


_REQUEST_KEYS = frozenset({"method", "uri", "headers", "json", "body"})
_RESPONSE_KEYS = frozenset({"status", "headers", "json", "body"})
# What other tools' cassettes hold where aiops's hold something else: key -> whose layout.
_FOREIGN = {"parsed_body": "pydantic-ai's cassette layout (`parsed_body`)",
            "content": "the legacy vcrpy-httpx layout (`content`, `status_code`)",
            "status_code": "the legacy vcrpy-httpx layout (`content`, `status_code`)"}


def _json_kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", type(None): "empty",
            bool: "a boolean", int: "a number", float: "a number"}.get(type(value), "a value")


def _interaction(item: Any, index: int) -> dict[str, Any]:
    """One interaction of an aiops cassette, in vcrpy's in-memory form; CassetteFormatError
    naming the place and, when it can tell, the other tool's layout it is in."""
    where = f"interactions[{index}]"
    if not isinstance(item, dict) or not isinstance(item.get("request"), dict) or \
            not isinstance(item.get("response"), dict):
        raise _foreign(f"`{where}` is not a mapping with a `request:` and a `response:`")
    req, resp = item["request"], item["response"]
    for part, value, allowed in (("request", req, _REQUEST_KEYS),
                                 ("response", resp, _RESPONSE_KEYS)):
        unknown = next((str(key) for key in value if key not in allowed), None)
        if unknown is not None:
            layout = _FOREIGN.get(unknown)
            raise _foreign(f"`{where}.{part}.{unknown}` is from {layout}" if layout else
                           f"`{where}.{part}` has `{unknown}`, which aiops does not write")
        if not isinstance(value.get("headers", {}), dict):
            raise _foreign(f"`{where}.{part}.headers` is not a mapping")
        body = value.get("body")
        if isinstance(body, dict):
            raise _foreign(f"`{where}.{part}.body` is a mapping, as in vcrpy's own layout "
                           "(`body: {string: ...}`): a cassette written by another tool")
        if body is not None and not isinstance(body, str):
            raise _foreign(f"`{where}.{part}.body` is {_json_kind(body)}, not text")
    if not isinstance(req.get("method"), str) or not isinstance(req.get("uri"), str):
        raise _foreign(f"`{where}.request` lacks a `method:` or a `uri:`")
    status = resp.get("status")
    if not isinstance(status, dict) or type(status.get("code")) is not int:
        raise _foreign(f"`{where}.response.status` is not a mapping with a numeric `code:`")
    return {"request": {"method": req["method"], "uri": req["uri"], "body": _body_in(req),
                        "headers": req.get("headers") or {}},
            "response": {"status": status, "headers": resp.get("headers") or {},
                         "body": {"string": _body_in(resp) or ""}}}


class ForeignCassette(CassetteFormatError):
    """Valid YAML, but not a cassette aiops wrote: vcrpy's own layout from another project,
    another tool's, or any other document. Recording it again is the fix."""


def _foreign(what: str) -> ForeignCassette:
    return ForeignCassette(f"not an aiops cassette: {what}")


class BoundedPersister:
    """vcrpy persister: cassettes are read with the bounds of `aiops.files` (regular file,
    inside `within`, MAX_RECORDING_BYTES) before the serializer parses them, and a recording
    over that bound is not written (it could never be replayed): `refused` says why.

    Nothing here raises while saving: vcrpy saves before it removes its HTTP patches, so an
    exception there would leave every later request of the process patched."""

    def __init__(self, within: Path | None = None) -> None:
        self.within = within
        self.refused: str | None = None

    def load_cassette(self, cassette_path: str | Path, serializer: Any) -> Any:
        try:
            raw = read_bounded(Path(cassette_path), MAX_RECORDING_BYTES, within=self.within)
        except FileRefused as exc:
            if exc.missing:
                raise CassetteNotFoundError() from None
            raise CassetteFormatError(f"{exc.reason}" + (f" ({exc.fix})" if exc.fix else "")
                                      ) from None
        if not raw.strip():  # as vcrpy: an empty file is a cassette still to record
            raise CassetteNotFoundError()
        try:
            text = decode(raw, MAX_RECORDING_BYTES)
        except YamlProblem as exc:
            raise CassetteFormatError(exc.message, line=exc.line, column=exc.column) from None
        try:
            return deserialize(text, serializer)
        except CassetteFormatError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:  # vcrpy's own reading
            raise ForeignCassette(f"not a cassette aiops can read ({type(exc).__name__}: "
                                  f"{exc})".replace("\n", " ")) from None

    def save_cassette(self, cassette_path: str | Path, cassette_dict: dict[str, Any],
                      serializer: Any) -> None:
        text = serialize(cassette_dict, serializer)
        size = len(text.encode("utf-8"))
        if size > MAX_RECORDING_BYTES:
            self.refused = (f"the recording is {size} bytes, over the "
                            f"{describe_size(MAX_RECORDING_BYTES)} bound of a cassette; "
                            "nothing was written")
            return
        path = Path(cassette_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


# --- sessions ------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Session:
    """What happened to one cassette during one test run."""

    path: Path
    record: bool
    loaded: list[VcrRequest] = field(default_factory=list)  # what the file held
    misses: list[VcrRequest] = field(default_factory=list)
    recorded: list[VcrRequest] = field(default_factory=list)
    played: int = 0
    existed: bool = False


@contextmanager
def use_cassette(path: Path, *, record: bool, rewrite: Rewrite | None = None,
                 comment: str = "", secrets: tuple[str, ...] = (),
                 within: Path | None = None) -> Iterator[Session]:
    """Patch HTTP (httpx, and what vcrpy patches) to replay `path`, or record what it lacks.

    Replay (`record=False`, vcrpy mode `none`): a request not in the cassette raises inside
    the HTTP client and is noted in `Session.misses`; nothing reaches the network.
    Record (`new_episodes` + dropping unused interactions): requests already recorded replay,
    new or changed ones go to the network and replace the stale ones in the file.
    """
    session = Session(path=path, record=record, existed=path.is_file())
    request_filter = make_request_filter(rewrite, secrets)
    recorder = vcr.VCR(
        serializer="aiops",
        record_mode="new_episodes" if record else "none",
        match_on=MATCH_ON,
        before_record_request=request_filter,
        before_record_response=make_response_filter(secrets),
        decode_compressed_response=True,
        drop_unused_requests=record,
    )
    recorder.register_serializer("aiops", CassetteSerializer(comment))
    persister = BoundedPersister(within)
    recorder.register_persister(persister)
    recorder.register_matcher("json_body", json_body_matcher)
    with recorder.use_cassette(str(path), allow_playback_repeats=True) as cassette:
        session.loaded = list(cassette.requests)
        loaded = len(session.loaded)
        real_can_play = cassette.can_play_response_for

        def can_play(request: VcrRequest) -> bool:
            ok = bool(real_can_play(request))
            if ok:
                session.played += 1
            elif cassette.write_protected:
                session.misses.append(request_filter(request))
            return ok

        cassette.can_play_response_for = can_play
        try:
            yield session
        finally:
            session.recorded = [req for req, _ in cassette.data[loaded:]]
    if persister.refused is not None:  # raised once vcrpy has removed its patches
        raise CassetteFormatError(persister.refused)


def _path(uri: str) -> str:
    return urlsplit(uri).path


def _readable(request: VcrRequest) -> list[str]:
    is_json, value = _matched(request.body, request.uri)
    text = dump_yaml(_sorted(value)) if is_json else (_text(request.body) or "")
    return text.splitlines(keepends=True)


def explain_miss(request: VcrRequest, recorded: list[VcrRequest], *, context: int = 3,
                 max_lines: int = 60) -> str:
    """Why `request` is not in the cassette: the difference from the nearest recording."""
    if not recorded:
        return "the cassette holds no recorded request"
    same_route = [r for r in recorded
                  if r.method == request.method and _path(r.uri) == _path(request.uri)]
    if not same_route:
        routes = ", ".join(sorted({f"{r.method} {_path(r.uri)}" for r in recorded}))
        return (f"the request {request.method} {_path(request.uri)} was never recorded "
                f"(recorded: {routes})")
    now = _readable(request)

    def distance(r: VcrRequest) -> float:
        return 1 - difflib.SequenceMatcher(a=_readable(r), b=now).ratio()

    nearest = min(same_route, key=distance)
    diff = list(difflib.unified_diff(_readable(nearest), now, fromfile="recorded",
                                     tofile="now", n=context))
    if not diff:
        return "the request matches a recording that was already played"
    lines = [line if line.endswith("\n") else line + "\n" for line in diff]
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"... ({len(lines) - max_lines} more diff lines)\n"]
    return (f"the {request.method} {_path(request.uri)} body differs from the recording:\n"
            + "".join(lines).rstrip("\n"))
