"""Keys are names, never values: a key pasted into providers.yaml where the NAME of its
environment variable belongs (`api_key_env`, `secret_env`, `token_env`) is refused by every
command that loads providers.yaml, and appears nowhere: not in any command's output or errors
(with --debug too), not in the database, not in a file the commands write (cassettes, plans,
outputs). Before, `aiops validate` passed `api_key_env: gsk_...`, and `aiops run` printed the
whole key and stored it in a log row."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner, Result

from aiops.cli import cli
from aiops.store import open_store
from tests import fixtures_providers as runner_project
from tests.fixtures_db import snapshot

GROQ_KEY = "gsk_" + "Qx7bN2pLk9ZrT4vW" * 3 + "a1B2"  # Groq-shaped: a known prefix, 56 characters
HMAC_SECRET = "Hm4cS3crQ9wE8rT7yU6iO5pA4sD3fG2hJ1kL"  # no prefix: random-looking only
BEARER_TOKEN = "f61d9c0b7a5e43f2a8b1c9d0e7f6a5b4c3d2e1f0"  # hexadecimal
CANARIES = (GROQ_KEY, HMAC_SECRET, BEARER_TOKEN)
GOOD = '{"subject": "s", "body": "b"}'


def _aiops(root: Path, env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "-C", str(root)], env=env)


def test_a_key_where_its_name_belongs_is_refused_everywhere_and_shown_nowhere(
        tmp_path: Path, db_url: str, mock_provider: Any) -> None:
    root = runner_project.write(tmp_path / "proj", runner_project.CLASSIFY)
    open_store(db_url, migrate=True)
    env = {**runner_project.env_for(mock_provider.url), "AIOPS_DATABASE_URL": db_url,
           "AIOPS_PROJECT": "canary-project", "AIOPS_DEBUG": None}
    # A project that has run: applied, an execution logged, a plan saved.
    assert _aiops(root, env, "apply", "--auto-approve").exit_code == 0
    ran = _aiops(root, env, "run", "classify", "--input", GOOD)
    assert ran.exit_code == 0, ran.output
    assert _aiops(root, env, "plan", "-o", str(root / "saved-plan.json")).exit_code == 0

    providers = copy.deepcopy(runner_project.PROVIDERS)
    providers["providers"]["groq"]["api_key_env"] = GROQ_KEY
    providers["providers"]["internal"]["auth"]["secret_env"] = HMAC_SECRET
    providers["providers"]["bearer"] = {
        "type": "http", "base_url": "https://other.invalid/aiops",
        "auth": {"type": "bearer", "token_env": BEARER_TOKEN}}
    (root / "providers.yaml").write_text(yaml.safe_dump(providers), encoding="utf-8")
    (root / "in.jsonl").write_text(GOOD + "\n", encoding="utf-8")

    commands = [["validate"], ["--debug", "validate"], ["plan"],
                ["plan", "-o", str(root / "new-plan.json")], ["apply", "--auto-approve"],
                ["run", "classify", "--input", GOOD], ["--debug", "run", "classify", "--input", GOOD],
                ["run", "classify", "--input-file", str(root / "in.jsonl"), "--output",
                 str(root / "out.jsonl")],
                ["test"], ["--debug", "test", "--record"]]
    outputs = {" ".join(args): _aiops(root, env, *args) for args in commands}
    for args, proc in outputs.items():  # each refuses, saying where and what, masked
        assert proc.exit_code == 1, (args, proc.output)
        text = proc.output
        assert '"gsk_…", 56 characters' in text, (args, text)
        assert "Traceback" not in text or args.startswith("--debug"), (args, text)
    # Commands that do not need the providers say nothing of them either.
    for args in (["status"], ["logs", "classify"], ["new", "another"]):
        outputs[" ".join(args)] = _aiops(root, env, *args)
    for args, proc in outputs.items():
        for canary in CANARIES:
            assert canary[5:] not in proc.output, (args, proc.output)

    said = outputs["validate"].stdout
    assert ('providers.groq.api_key_env: holds a key-like value ("gsk_…", 56 characters) (fix: '
            "put the variable's NAME here, e.g. GROQ_API_KEY") in said
    assert 'providers.internal.auth.secret_env: holds a key-like value ("Hm4c…", 36 ' in said
    assert 'providers.bearer.auth.token_env: holds a key-like value ("f61d…", 40 ' in said

    for path in root.rglob("*"):
        if path.is_file() and path.name != "providers.yaml":
            data = path.read_bytes()
            for canary in CANARIES:
                assert canary.encode()[4:] not in data, path
    assert not (root / "new-plan.json").exists() and not (root / "out.jsonl").exists()
    rows = repr(snapshot(db_url))
    assert "classify" in rows
    for canary in CANARIES:
        assert canary[4:] not in rows
