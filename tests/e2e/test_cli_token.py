"""`aiops token create|list|revoke` and `aiops serve`'s command line, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from aiops.cli import cli


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_create_list_revoke(project: Path, db_url: str) -> None:
    code, out, err = _run("token", "create", "-C", str(project), "--name", "ci", "--role",
                          "invoker", "--groups", "finance, ops", "--expires", "90d",
                          "--rpm", "60", "--daily-calls", "1000", "--daily-usd", "2.5")
    assert code == 0, err
    token = out.strip()
    assert token.startswith("aiops_") and "shown this once" in err
    code, out, _ = _run("token", "list", "-C", str(project))
    assert code == 0 and "ci" in out and "invoker" in out and "finance,ops" in out
    assert token.split("_", 2)[2] not in out
    listed = json.loads(_run("token", "list", "-C", str(project), "--json")[1])["tokens"]
    [record] = listed
    assert record["rpm"] == 60 and record["daily_calls"] == 1000 and record["daily_usd"] == 2.5
    assert record["groups"] == ["finance", "ops"] and record["expires_at"] is not None
    assert "token" not in record and record["user"] == "ci"
    code, _, err = _run("token", "create", "-C", str(project), "--name", "ci", "--role", "admin")
    assert code == 2 and "exists" in err
    code, out, _ = _run("token", "revoke", "-C", str(project), record["key_id"])
    assert code == 0 and "Revoked token ci" in out
    assert json.loads(_run("token", "list", "-C", str(project), "--json")[1])["tokens"] == []
    every = json.loads(_run("token", "list", "-C", str(project), "--json", "--all")[1])
    assert every["tokens"][0]["revoked_at"] is not None
    code, _, _ = _run("token", "create", "-C", str(project), "--name", "ci", "--role", "viewer")
    assert code == 0  # a revoked token's name can be used again
    code, _, err = _run("token", "revoke", "-C", str(project), "nope")
    assert code == 1 and "no token" in err


def test_bad_values_are_usage_errors(project: Path) -> None:
    for args, words in ((["--role", "root"], "root"), (["--expires", "3w"], "duration"),
                        (["--expires", "3651d"], "3650d"),
                        (["--expires", "9" * 5000 + "d"], "3650d"),
                        (["--groups", "Bad Group"], "group"), (["--rpm", "0"], "rpm"),
                        (["--daily-usd", "nan"], "daily-usd")):
        code, _, err = _run("token", "create", "-C", str(project), "--name", "x",
                            *(["--role", "viewer"] if "--role" not in args else []), *args)
        assert code == 2, (args, err)
        assert words in err


def test_serve_outside_a_project_fails_before_listening(tmp_path: Path) -> None:
    code, _, err = _run("serve", "-C", str(tmp_path), "--port", "0")
    assert code == 1 and "not an aiops project" in err


def test_serve_on_a_port_in_use_is_one_line_and_exit_2(project: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = _run("serve", "-C", str(project), "--port", str(port))
    assert code == 2, err
    assert err.strip() == (f"Error: cannot listen on 127.0.0.1:{port}: Address already in use; "
                           "another server listens there: stop it, or choose another --port")
    assert out == ""
    code, _, err = _run("serve", "-C", str(project), "--host", "192.0.2.1")  # not this machine's
    assert code == 2 and err.startswith("Error: cannot listen on 192.0.2.1:8080: ")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_help_run_and_the_verbs_import_no_web_framework(repo_root: Path) -> None:
    import subprocess
    import sys

    code = ("import sys\n"
            "from click.testing import CliRunner\n"
            "from aiops.cli import cli\n"
            "for args in (['--help'], ['serve', '--help'], ['token', '--help']):\n"
            "    r = CliRunner().invoke(cli, args)\n"
            "    assert r.exit_code == 0, r.output\n"
            "import aiops.cli.run, aiops.commands.execution, aiops.commands.catalog\n"
            "import aiops.commands.tokens\n"
            "print(sorted({'fastapi', 'starlette', 'uvicorn'} & {m.split('.')[0] "
            "for m in sys.modules}))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_serve_no_alerts_runs_no_evaluator(project: Path, monkeypatch: Any) -> None:
    """`--no-alerts` reaches the workers' config, and a worker made from it starts no
    evaluator thread, while one made by default does."""
    import threading

    from starlette.testclient import TestClient

    from aiops.server import app as server_app

    configs: list[Any] = []
    monkeypatch.setattr(server_app, "serve", lambda config, **kw: configs.append(config))
    for flags in ([], ["--no-alerts"]):
        code, _, err = _run("serve", "-C", str(project), "--port", "0", *flags)
        assert code == 0, err
    assert [c.evaluate_alerts for c in configs] == [True, False]
    for config, evaluating in zip(configs, (True, False), strict=True):
        with TestClient(server_app.create_app(config)):
            names = {t.name for t in threading.enumerate()}
            assert ("aiops-alerts" in names) is evaluating
