"""Everyday manners of the command line: help that shows every summary whole with examples
and exit codes, help text on every option, one spelling of JSON output, shell completion,
colour on a terminal only (NO_COLOR, FORCE_COLOR), and a stdout closed by its reader (`aiops
status | head -1`) ending quietly with 141, through real pipes."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from aiops.cli import EXIT_BROKEN_PIPE, LAZY, SUMMARIES, cli
from tests.e2e.helpers import AIOPS, aiops
from tests.fixtures_db import apply_project, spec_data, write_project

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def all_commands() -> Iterator[tuple[str, click.Command]]:
    """Every command, through the lazy group, with its full name (`db upgrade`)."""
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        assert command is not None, name
        yield name, command
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                subcommand = command.get_command(ctx, sub)
                assert subcommand is not None
                yield f"{name} {sub}", subcommand


def help_of(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, result.output
    return result.stdout


def unwrapped(text: str) -> str:
    return " ".join(text.split())


# --- help ------------------------------------------------------------------------------------


def test_the_summaries_are_whole_and_the_help_has_examples_and_exit_codes() -> None:
    text = help_of()
    for name, summary in SUMMARIES.items():
        assert f"{name} {summary}" in unwrapped(text), name
    assert "Examples:" in text and "aiops logs --id LOG_ID" in text
    codes = text.split("Exit codes:")[1]
    for code in ("0", "1", "2", "3-8", "75", "130", "141", "143"):
        assert re.search(rf"(^|\s){code}\s", codes), code
    assert "NO_COLOR" in text and "_AIOPS_COMPLETE=bash_source aiops" in text


def test_each_summary_is_the_first_sentence_of_its_command() -> None:
    # `aiops --help` reads SUMMARIES so as not to import every command: they must agree.
    assert set(SUMMARIES) == set(LAZY)
    for name, command in all_commands():
        if " " not in name:
            assert unwrapped(command.help or "").startswith(SUMMARIES[name]), name


def test_every_option_and_argument_is_documented() -> None:
    undocumented = []
    for name, command in all_commands():
        text = unwrapped(command.help or "")
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and not param.help:
                undocumented.append(f"{name} {param.opts[0]}")
            if isinstance(param, click.Argument):
                shown = param.make_metavar(click.Context(command)).rstrip(".")
                if shown.strip("[]") not in text:
                    undocumented.append(f"{name} {shown}")
    assert undocumented == []


@pytest.mark.parametrize("name", ["apply", "import", "init", "logs", "mock-provider", "new",
                                  "plan", "run", "status", "test", "validate"])
def test_the_commands_show_examples(name: str) -> None:
    text = help_of(name)
    examples = text.split("Examples:")[1]
    assert f"aiops {name}" in examples


def test_no_help_line_is_wider_than_the_formatter() -> None:
    for name, _ in [("", None), *all_commands()]:
        for line in help_of(*name.split()).splitlines():
            assert len(line) <= 80, (name, line)


def test_help_imports_no_command() -> None:
    """`aiops --help` lists the summaries without importing a command module (it stays as
    fast as `aiops --version`; benchmarks/cli.py times it)."""
    code = ("import sys\nfrom click.testing import CliRunner\nfrom aiops.cli import cli\n"
            "assert CliRunner().invoke(cli, ['--help']).exit_code == 0\n"
            "print(sorted(m for m in sys.modules if m.startswith('aiops.cli.') or "
            "m == 'aiops.commands'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


# --- one spelling of JSON output -------------------------------------------------------------


@pytest.fixture
def applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    url = f"sqlite:///{tmp_path / 'aiops.db'}"
    monkeypatch.setenv("AIOPS_DATABASE_URL", url)
    monkeypatch.setenv("AIOPS_PROJECT", "manners")
    root = write_project(tmp_path / "proj", [spec_data("greet")])
    apply_project(root, actor="ci")
    return root


def invoke(root: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, [*args, "-C", str(root)], env=env)


@pytest.mark.parametrize("args", [["plan"], ["validate"], ["status"], ["logs"],
                                  ["apply", "--auto-approve"]])
def test_json_is_spelled_json_everywhere(applied: Path, args: list[str]) -> None:
    result = invoke(applied, *args, "--json")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip()
    assert lines == "" or json.loads(lines.splitlines()[0] if args == ["logs"] else lines)
    assert "json" not in help_of(args[0]).split("--format")[-1].split("\n")[0]


@pytest.mark.parametrize("command", ["plan", "validate"])
def test_format_json_still_works_unshown(applied: Path, command: str) -> None:
    old, new = invoke(applied, command, "--format", "json"), invoke(applied, command, "--json")
    assert old.exit_code == new.exit_code == 0
    assert json.loads(old.stdout) == json.loads(new.stdout)


def test_json_and_another_format_disagree(applied: Path) -> None:
    result = invoke(applied, "plan", "--json", "--format", "markdown")
    assert result.exit_code == 2 and "--json and --format markdown disagree" in result.stderr


def test_apply_json(applied: Path) -> None:
    write_project(applied, [spec_data("greet"), spec_data("other")])
    result = invoke(applied, "apply", "--auto-approve", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["applied"] is True and out["run_id"] and out["duration_ms"] >= 0
    assert out["plan"]["counts"]["create"] == 1 and out["format_version"] == 1
    again = json.loads(invoke(applied, "apply", "--auto-approve", "--json").stdout)
    assert again["applied"] is False and again["run_id"] is None


def test_apply_json_needs_an_approval(applied: Path) -> None:
    result = invoke(applied, "apply", "--json")
    assert result.exit_code == 2 and "--json needs --auto-approve" in result.stderr


# --- shell completion ------------------------------------------------------------------------


@pytest.mark.parametrize(("shell", "marker"), [("bash", "complete -o nosort -F"),
                                               ("zsh", "compdef"), ("fish", "complete")])
def test_the_completion_script_generates(shell: str, marker: str) -> None:
    proc = aiops(env={"_AIOPS_COMPLETE": f"{shell}_source"})
    assert proc.returncode == 0 and marker in proc.stdout and "_AIOPS_COMPLETE" in proc.stdout


def test_completion_completes_commands_and_options() -> None:
    commands = aiops(env={"_AIOPS_COMPLETE": "bash_complete", "COMP_WORDS": "aiops pl",
                          "COMP_CWORD": "1"})
    assert commands.stdout.split() == ["plain,plan"]
    options = aiops(env={"_AIOPS_COMPLETE": "bash_complete", "COMP_WORDS": "aiops logs --li",
                         "COMP_CWORD": "2"})
    assert options.stdout.split() == ["plain,--limit"]


# --- colour ----------------------------------------------------------------------------------


@pytest.fixture
def changed(applied: Path) -> Path:
    write_project(applied, [spec_data("greet", version="1.1.0", description="Changed.")])
    return applied


def test_no_colour_when_stdout_is_not_a_terminal(changed: Path) -> None:
    assert not ANSI.search(invoke(changed, "plan").stdout)


def test_force_color_colours_and_no_color_wins(changed: Path) -> None:
    forced = invoke(changed, "plan", env={"FORCE_COLOR": "1"})
    assert "\x1b[33m\x1b[1mPlan: 1 new version" in forced.stdout
    assert ANSI.sub("", forced.stdout) == invoke(changed, "plan").stdout
    both = invoke(changed, "plan", env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert not ANSI.search(both.stdout)
    error = invoke(changed, "plan", "--json", "--format", "markdown", env={"FORCE_COLOR": "1"})
    assert error.stderr.startswith("\x1b[31m\x1b[1mError:\x1b[0m --json")


def test_json_is_never_coloured(changed: Path) -> None:
    forced = invoke(changed, "plan", "--json", env={"FORCE_COLOR": "1"})
    assert not ANSI.search(forced.stdout)


def on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """What the real console script writes to a terminal (a pseudo-terminal)."""
    leader, follower = pty.openpty()
    full = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    proc = subprocess.Popen([AIOPS, *args], stdin=subprocess.DEVNULL, stdout=follower,
                            stderr=follower, env={**full, "TERM": "xterm", **env})
    os.close(follower)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process ended
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
        proc.wait(timeout=60)
    return b"".join(chunks).decode()


def test_colour_on_a_terminal_and_none_with_no_color(changed: Path) -> None:
    args = ["plan", "-C", str(changed)]
    assert "\x1b[33m\x1b[1mPlan: 1 new version" in on_a_terminal(args, {})
    assert not ANSI.search(on_a_terminal(args, {"NO_COLOR": "1"}))
    assert not ANSI.search(on_a_terminal(args, {"TERM": "dumb"}))
    error = on_a_terminal(["plan", "-C", str(changed), "--json", "--format", "markdown"], {})
    assert "\x1b[31m\x1b[1mError:\x1b[0m" in error


# --- a stdout closed by its reader -----------------------------------------------------------


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A project whose status and plan are larger than a pipe holds (64 KiB: 1,200 functions
    to create), with 2,000 log rows, on SQLite."""
    from aiops.commands import open_workspace
    from aiops.store import LogRow

    tmp = tmp_path_factory.mktemp("large")
    url = f"sqlite:///{tmp / 'aiops.db'}"
    root = write_project(tmp / "proj", [spec_data("greet")])
    apply_project(root, url=url, actor="ci")
    store = open_workspace(root, database_url=url).open_store()
    (deployed,) = [store.resolve("greet")]
    store.insert_logs([LogRow(function_id=deployed.function_id, version=deployed.version,
                              version_id=deployed.version_id,
                              status="error", error={"message": "x" * 80}, input={"n": i})
                       for i in range(2000)])
    write_project(root, [spec_data(f"fn-{i:04d}") for i in range(1200)])
    return root, {"AIOPS_DATABASE_URL": url, "AIOPS_PROJECT": "large"}


def first_line_then_close(args: list[str], env: dict[str, str]) -> tuple[bytes, int, str]:
    """`aiops ARGS | head -1`: read one line, close the pipe; the line, exit code, stderr."""
    with subprocess.Popen([AIOPS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env={**os.environ, **env}) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        return line, proc.wait(timeout=120), stderr


@pytest.mark.parametrize("args", [["status"], ["status", "--json"], ["plan"], ["plan", "--json"],
                                  ["logs", "--limit", "2000"], ["logs", "--json", "--limit",
                                                                "2000"]])
def test_a_reader_that_leaves_ends_the_command_quietly(large: Any, args: list[str]) -> None:
    root, env = large
    line, code, stderr = first_line_then_close([*args, "-C", str(root)], env)
    assert line.strip()
    assert (code, stderr) == (EXIT_BROKEN_PIPE, "")


def test_status_piped_to_head_in_a_shell(large: Any) -> None:
    root, env = large
    proc = subprocess.run(["bash", "-c", f'"{AIOPS}" status -C "{root}" | head -1; '
                           'echo "exit ${PIPESTATUS[0]}" >&2'], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120, check=False)
    assert proc.stdout.startswith("FUNCTION") and proc.stdout.count("\n") == 1
    assert proc.stderr == f"exit {EXIT_BROKEN_PIPE}\n"


@pytest.mark.parametrize("args", [["plan", "--json"], ["plan", "-o", "-"],
                                  ["apply", "--auto-approve", "--json"]])
def test_json_escapes_what_a_terminal_acts_on(applied: Path, args: list[str]) -> None:
    write_project(applied, [spec_data("greet", version="1.1.0",
                                      description="C1 \x9b31m and DEL \x7f")])
    result = invoke(applied, *args)
    assert result.exit_code == 0, result.output
    assert "\x9b" not in result.stdout and "\x7f" not in result.stdout
    assert "\\u009b31m" in result.stdout
    assert "\x9b31m" in json.dumps(json.loads(result.stdout), ensure_ascii=False)
