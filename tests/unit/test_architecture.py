"""The import rules of STYLE.md hold: foreign libraries stay in the module that owns them,
the layers import one way (the import-linter contracts of pyproject.toml), and the CLI's
start-up does not pull in heavy libraries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_banned_imports_stay_in_their_modules() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "TID251", "--no-cache",
         str(REPO / "src")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_the_layering_contracts_hold() -> None:
    # cli -> commands -> workspace -> the rest; the pure core reaches neither git nor the store.
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=REPO,
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_every_top_level_module_has_a_place_in_the_layers() -> None:
    # A module the contracts do not name is checked by none of them.
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}
    layers = {m.strip() for layer in contracts["layers"]["layers"] for m in layer.split("|")}
    placed = {*layers, *contracts["below"]["source_modules"]}
    package = REPO / "src" / "aiops"
    modules = {f"aiops.{p.stem}" for p in package.glob("*.py") if p.stem[0] != "_"}
    modules |= {f"aiops.{p.parent.name}" for p in package.glob("*/__init__.py")}
    assert modules - placed == set()
    assert placed - modules == set()


def test_version_and_validate_import_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from aiops.cli import cli\n"
        f"r = CliRunner().invoke(cli, ['validate', {str(REPO)!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = {'sqlalchemy', 'openai', 'groq', 'httpx', 'alembic', 'vcr', 'fastapi', 'rich'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_every_lazy_command_resolves() -> None:
    import click

    from aiops.cli import LAZY, cli

    ctx = click.Context(cli)
    for name in LAZY:
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command), name


def test_every_name_of_the_commands_facade_resolves_to_a_verb_or_a_type() -> None:
    # Lazily loaded from the submodules; a submodule named like a verb would shadow it.
    import types

    from aiops import commands

    for name in commands.__all__:
        value = getattr(commands, name)
        assert not isinstance(value, types.ModuleType), name
        assert callable(value), name


def test_running_a_function_and_golden_tests_load_no_sqlalchemy() -> None:
    # The runner holds the deployed version and writes log rows through a Store protocol;
    # the records are plain (aiops.records), so an in-process run or a replay needs no SQL.
    code = ("import sys\n"
            "import aiops.prepare, aiops.golden, aiops.runner, aiops.records, aiops.apply\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'alembic'}))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_what_aiops_knows_of_each_wire_api_is_written_in_providers_only() -> None:
    # Key variables, default addresses and the custom protocol's path were written three
    # times (providers, golden, cassettes, spec): one place, aiops.providers.
    import ast

    facts = ("OPENAI_API_KEY", "GROQ_API_KEY", "api.openai.com", "api.groq.com", "/v1/complete")
    scaffold = {"PROVIDERS_TEMPLATE"}  # the example providers.yaml `aiops init` writes
    found = []
    for path in sorted((REPO / "src" / "aiops").rglob("*.py")):
        if "providers" in path.relative_to(REPO / "src" / "aiops").parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id in scaffold for t in node.targets)}
        skip |= {id(node.value) for node in ast.walk(tree)  # the format's documentation
                 if isinstance(node, ast.keyword) and node.arg == "description"}
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                                    | ast.AsyncFunctionDef)
                      and node.body and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in skip | docstrings):
                found += [f"{path.name}:{node.lineno}: {fact}" for fact in facts
                          if fact in node.value]
    assert found == []
