"""Golden tests through the real runner: replaying the examples offline, misses after a
prompt change, recording against the mock provider, and no secret in any cassette."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from aiops.golden import matrix, run_golden
from aiops.providers.mock_server import MockConfig, MockServer, serve_in_thread
from aiops.workspace import open_workspace
from tests.fixtures_golden import CANARY, EXAMPLE_ANSWERS, mock_env
from tests.fixtures_providers import serve_http


def replay(root: Path, *names: str, **kw: object):
    return run_golden(root, open_workspace(root).project, names=names, env={}, **kw)  # type: ignore[arg-type]


def record(root: Path, server: MockServer, *names: str, **kw: object):
    return run_golden(root, open_workspace(root).project, names=names, record=True,  # type: ignore[arg-type]
                      env=mock_env(server), **kw)


def cassettes(root: Path) -> list[Path]:
    return sorted(root.glob("functions/*/cassettes/*/*.yaml"))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_examples_replay_offline_on_every_provider_of_their_matrix(
        repo_root: Path, no_sockets: list[object]) -> None:
    project = open_workspace(repo_root).project
    report = replay(repo_root)
    assert report.ok, [(r.id, r.status, r.message, r.failures) for r in report.results]
    assert no_sockets == []  # not even loopback
    expected = {(name, p, t.name) for name, lf in project.functions.items()
                for p in matrix(lf.spec) for t in lf.spec.tests}
    assert {(r.function, r.provider, r.test) for r in report.results} == expected
    assert all((repo_root / r.cassette).is_file() for r in report.results)
    # a matrix of two providers runs both, each with its own model
    models = {(r.provider, r.model) for r in report.results if r.function == "classify-ticket"}
    assert models == {("openai", "gpt-4o-mini"), ("groq", "llama-3.3-70b-versatile")}
    assert all(r.cost_usd is not None and r.cost_usd > 0 for r in report.results
               if r.provider != "internal")  # pinned prices x replayed usage


def test_replay_ignores_a_base_url_override_and_needs_no_key(
        golden_project: Path, no_sockets: list[object]) -> None:
    env = {"AIOPS_OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}  # e.g. left over from a demo
    report = run_golden(golden_project, open_workspace(golden_project).project, names=["summarize"],
                        env=env)
    assert report.ok and no_sockets == []


def test_changing_a_prompt_fails_its_tests_with_the_difference(
        golden_project: Path, no_sockets: list[object]) -> None:
    edit(golden_project / "functions/summarize/function.yaml",
         "You are a concise editor.", "You are a terse editor.")
    report = replay(golden_project, "summarize", "translate")
    by_fn = {(r.function, r.status) for r in report.results}
    assert by_fn == {("summarize", "miss"), ("translate", "passed")}
    miss = next(r for r in report.results if r.function == "summarize")
    assert "not in the cassette" in miss.message
    assert ("\n-- content: You are a concise editor. Answer with JSON only.\n"
            "+- content: You are a terse editor. Answer with JSON only.\n") in miss.diff
    assert miss.fix.endswith(f"aiops test summarize --provider {miss.provider} --record")
    assert no_sockets == []


def test_a_missing_cassette_says_how_to_record_it(golden_project: Path) -> None:
    (golden_project / "functions/translate/cassettes/groq/hello-french.yaml").unlink()
    report = replay(golden_project, "translate")
    [missing] = [r for r in report.results if not r.passed]
    assert (missing.status, missing.provider, missing.test) == ("no-cassette", "groq",
                                                               "hello-french")
    assert "aiops test translate --provider groq --record" in missing.fix


def test_record_against_the_mock_then_replay_without_secrets(golden_project: Path) -> None:
    for path in cassettes(golden_project):
        path.unlink()
    config = MockConfig(responses=EXAMPLE_ANSWERS, hmac_secret=CANARY)  # the secret is used
    with serve_in_thread(config) as server:
        recorded = record(golden_project, server)
        assert recorded.ok, [(r.id, r.message) for r in recorded.results]
        assert server.app.stats["requests"] == len(recorded.results)
    assert all(r.recorded == 1 for r in recorded.results)
    files = cassettes(golden_project)
    assert len(files) == len(recorded.results) == 14
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert CANARY not in text
        assert "127.0.0.1" not in text  # recorded as the provider's own URL
        assert "authorization" not in text.lower() and "signature" not in text.lower()
    replayed = replay(golden_project)
    assert replayed.ok and len(replayed.results) == 14


def test_record_writes_only_what_changed(golden_project: Path, example_mock: MockServer) -> None:
    target = golden_project / "functions/summarize/cassettes/groq/short-article.yaml"
    untouched = golden_project / "functions/summarize/cassettes/groq/default-bullets.yaml"
    before = untouched.read_bytes()
    edit(golden_project / "functions/summarize/function.yaml",
         "in at most {{ bullets }} bullet points", "in {{ bullets }} bullet points or fewer")
    report = record(golden_project, example_mock, "summarize", provider="groq")
    assert report.ok
    assert {r.test: r.recorded for r in report.results} == {"short-article": 1,
                                                            "default-bullets": 1}
    assert example_mock.app.stats["requests"] == 2
    text = target.read_text(encoding="utf-8")
    assert "bullet points or fewer" in text and "in at most" not in text  # stale one dropped
    assert untouched.read_bytes() != before
    again = record(golden_project, example_mock, "summarize", provider="groq")
    assert [r.recorded for r in again.results] == [0, 0]  # nothing new: replayed, not re-sent
    assert example_mock.app.stats["requests"] == 2
    assert replay(golden_project, "summarize", provider="groq").ok
    assert not replay(golden_project, "summarize", provider="openai").ok  # not re-recorded


def test_a_failed_recording_leaves_the_cassette_as_it_was(
        golden_project: Path, example_mock: MockServer) -> None:
    path = golden_project / "functions/translate/cassettes/internal/hello-french.yaml"
    before = path.read_bytes()
    edit(golden_project / "functions/translate/function.yaml", "Translate faithfully.",
         "Translate carefully.")
    example_mock.app.force_fault("bad_request")
    report = record(golden_project, example_mock, "translate", provider="internal")
    assert {r.status for r in report.results} == {"error"}
    assert "400" in report.results[0].message
    assert path.read_bytes() == before


def test_record_needs_keys(golden_project: Path) -> None:
    from aiops.errors import ConfigError

    with pytest.raises(ConfigError, match="OPENAI_API_KEY") as info:
        run_golden(golden_project, open_workspace(golden_project).project, names=["summarize"],
                   record=True, env={})
    assert "without --record, tests replay" in str(info.value)


def test_assertion_failures_read_well(golden_project: Path) -> None:
    edit(golden_project / "functions/classify-ticket/function.yaml",
         "path: $.queue\n        equals: billing", "path: $.queue\n        equals: account")
    report = replay(golden_project, "classify-ticket", provider="openai")
    failed = next(r for r in report.results if r.test == "double-charge")
    assert failed.status == "failed"
    [failure] = failed.failures
    assert failure.message == '$.queue: expected equals "account", got "billing"'
    assert failure.path == "$.queue"


class _FixedAnswer(BaseHTTPRequestHandler):
    BODY = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 1,
                       "model": "gpt-4o-mini", "choices": [{"index": 0, "finish_reason": "stop",
                       "message": {"role": "assistant", "content":
                                   '{"queue": "billing", "priority": 2}'}}],
                       "usage": {"prompt_tokens": 10, "completion_tokens": 5,
                                 "total_tokens": 15}}).encode()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("x-request-id", f"req_{threading.get_ident()}")  # volatile
        self.send_header("content-length", str(len(self.BODY)))
        self.end_headers()
        self.wfile.write(self.BODY)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fixed_answer_server() -> Iterator[str]:
    with serve_http(_FixedAnswer) as url:
        yield url


def test_recording_the_same_answer_twice_writes_the_same_file(
        golden_project: Path, fixed_answer_server: str) -> None:
    path = golden_project / "functions/classify-ticket/cassettes/openai/double-charge.yaml"
    env = {"OPENAI_API_KEY": CANARY, "AIOPS_OPENAI_BASE_URL": fixed_answer_server + "/v1"}
    outputs = []
    for _ in range(2):
        path.unlink()
        report = run_golden(golden_project, open_workspace(golden_project).project,
                            names=["classify-ticket"], provider="openai", record=True, env=env)
        assert report.results[0].recorded == 1
        outputs.append(path.read_bytes())
    assert outputs[0] == outputs[1]
    assert b"x-request-id" not in outputs[0] and CANARY.encode() not in outputs[0]


def test_a_corrupt_cassette_is_an_error_that_says_so(golden_project: Path) -> None:
    path = golden_project / "functions/translate/cassettes/groq/hello-french.yaml"
    path.write_text("interactions: [unclosed\n")
    report = replay(golden_project, "translate", provider="groq")
    broken = next(r for r in report.results if r.test == "hello-french")
    assert broken.status == "error"
    assert broken.message.startswith(
        "functions/translate/cassettes/groq/hello-french.yaml:2:1: not a cassette aiops can "
        "read: invalid YAML")
    assert "aiops test translate --provider groq --record" in broken.fix
    assert next(r for r in report.results if r.test == "formal-german").passed


BOMB = "".join(f"  l{i}: &a{i} [{', '.join([f'*a{i - 1}' if i else 'lol'] * 10)}]\n"
               for i in range(9))


@pytest.mark.parametrize(("change", "message"), [
    # Nine levels of ten aliases: 2.5 KB on disk, 10**9 values once expanded (6 GB before).
    (lambda t: t.replace("interactions:\n", "anchors:\n" + BOMB + "interactions:\n", 1)
     .replace("    json:\n", "    json:\n      bomb: *a8\n", 1),
     ":10:17: not a cassette aiops can read: the file expands to more than 250,000 values"),
    (lambda t: t.replace("version: 1\n", "version: 1\nversion: 1\n", 1),
     ":4:1: not a cassette aiops can read: duplicate key `version` (first at line 3)"),
    (lambda t: t.replace("interactions:", "x: !!python/object:os.system ls\ninteractions:", 1),
     ":4:4: not a cassette aiops can read: tag tag:yaml.org,2002:python/object:os.system "
     "is not allowed"),
])
def test_a_cassette_is_read_like_a_function_file_and_fails_only_its_own_test(
        golden_project: Path, change: Callable[[str], str], message: str) -> None:
    path = golden_project / "functions/translate/cassettes/groq/hello-french.yaml"
    path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")
    report = replay(golden_project, "translate", provider="groq")
    broken = next(r for r in report.results if r.test == "hello-french")
    assert broken.status == "error"
    assert broken.message.startswith(
        "functions/translate/cassettes/groq/hello-french.yaml" + message), broken.message
    assert "\n" not in broken.message
    assert next(r for r in report.results if r.test == "formal-german").passed


def test_a_cassette_that_links_out_of_the_project_or_is_not_a_file_is_refused(
        golden_project: Path, tmp_path: Path) -> None:
    path = golden_project / "functions/translate/cassettes/groq/hello-french.yaml"
    outside = tmp_path / "elsewhere.yaml"
    outside.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(outside)
    german = golden_project / "functions/translate/cassettes/groq/formal-german.yaml"
    german.unlink()
    german.symlink_to("/dev/zero")
    report = replay(golden_project, "translate", provider="groq")
    messages = {r.test: r.message for r in report.results}
    assert messages["hello-french"].endswith("hello-french.yaml: is a symlink to "
                                             f"{outside}, outside the project directory "
                                             "(copy the file into the project, or link to a "
                                             "file inside it)")
    assert "formal-german.yaml: is a symlink to /dev/zero, outside" in messages["formal-german"]
    assert {r.status for r in report.results} == {"error"}


def test_a_recording_over_the_cassette_bound_is_not_written(
        golden_project: Path, example_mock: MockServer) -> None:
    from aiops.yamlsrc import MAX_RECORDING_BYTES

    path = golden_project / "functions/translate/cassettes/groq/hello-french.yaml"
    path.unlink()
    # Within the mock's max_tokens cut (4 characters a token) and the provider's 8 MiB body
    # bound, over the cassette's 4 MiB as UTF-8.
    edit(golden_project / "functions/translate/function.yaml", "max_tokens: 1000}",
         "max_tokens: 1000000}")
    edit(golden_project / "providers.yaml", "limits: {rpm: 30, tpm: 6000}", "limits: {}")
    long_text = "x" * (MAX_RECORDING_BYTES - 700_000) + "é" * 400_000
    answers = [{"match": {"contains": "Good morning"}, "output": "jour " + long_text}]
    unpatched = httpx.AsyncHTTPTransport.handle_async_request
    with serve_in_thread(MockConfig(responses=answers)) as server:
        report = record(golden_project, server, "translate", provider="groq")
    broken = next(r for r in report.results if r.test == "hello-french")
    assert broken.status == "error" and "over the 4 MiB bound of a cassette" in broken.message
    assert not path.exists()
    # vcrpy saves before it unpatches HTTP: the refusal must not leave the process patched.
    assert httpx.AsyncHTTPTransport.handle_async_request is unpatched
    assert next(r for r in report.results if r.test == "formal-german").recorded == 1


def test_test_providers_overrides_the_matrix(golden_project: Path,
                                             no_sockets: list[object]) -> None:
    edit(golden_project / "functions/translate/function.yaml", "fallbacks:",
         "test_providers: [groq]\nfallbacks:")
    report = replay(golden_project, "translate")
    assert {(r.provider, r.model, r.status) for r in report.results} == {
        ("groq", "llama-3.1-8b-instant", "passed")}
    assert len(report.results) == 2


def test_a_key_echoed_in_an_answer_never_reaches_the_cassette(golden_project: Path) -> None:
    for path in cassettes(golden_project):
        path.unlink()
    answers = [{**a, "output": f"{a['output']} (sent with key {CANARY})"}
               if isinstance(a["output"], str) else a for a in EXAMPLE_ANSWERS]
    assert answers != EXAMPLE_ANSWERS  # some text answer echoes the key
    with serve_in_thread(MockConfig(responses=answers)) as server:
        recorded = record(golden_project, server, "translate")
    assert recorded.results and all(r.recorded == 1 for r in recorded.results)
    files = cassettes(golden_project)
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert CANARY not in text
        assert "sent with key <redacted>" in text


PEOPLE = """\
apiVersion: aiops/v1
name: people
version: 1.0.0
provider: openai
model: gpt-4o-mini
prompt:
  - {role: user, content: "The people in: {{ text }}"}
input_schema: {type: object, required: [text], properties: {text: {type: string}}}
output_schema:
  type: object
  required: [people]
  additionalProperties: false
  properties:
    people: {type: array, minItems: 2, items: {$ref: "#/$defs/Person"}}
  $defs:
    Person:
      type: object
      required: [name, born, role]
      additionalProperties: false
      properties:
        name: {type: string, minLength: 1}
        born: {type: string, format: date}
        role: {anyOf: [{$ref: "#/$defs/Role"}, {type: "null"}]}
    Role: {type: string, enum: [mathematician, engineer]}
tests:
  - name: two
    input: {text: "Ada Lovelace and Alan Turing"}
    expect: [{schema_valid: true}, {path: $.people, length: {min: 2}}]
"""


def test_record_against_the_mock_for_an_output_of_refs(golden_project: Path,
                                                        mock_provider: MockServer) -> None:
    """Before: the mock answered `{"people": ["people0 ...", ...]}`, the output failed its
    schema, and `aiops test --record` against the mock failed."""
    path = golden_project / "functions/people/function.yaml"
    path.parent.mkdir()
    path.write_text(PEOPLE, encoding="utf-8")
    recorded = record(golden_project, mock_provider, "people")
    assert recorded.ok, [(r.status, r.message, r.failures) for r in recorded.results]
    people = recorded.results[0].output["people"]
    assert all(isinstance(p, dict) and p["role"] in ("mathematician", "engineer")
               for p in people)
    assert replay(golden_project, "people").ok
