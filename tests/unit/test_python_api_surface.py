"""The public names of `aiops`: each resolves, is documented in docs/python.md, and loads
only when used, so that `import aiops` (and the CLI's start-up) stays light."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import aiops

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "python.md").read_text(encoding="utf-8")
HEAVY = {"sqlalchemy", "alembic", "httpx", "aiohttp", "openai", "groq", "vcr", "limits",
         "redis", "rich"}


def _loaded(code: str) -> list[str]:
    """The heavy libraries and aiops modules loaded after running `code` in a new process."""
    probe = (f"{code}\nimport sys\n"
             f"heavy = {sorted(HEAVY)!r}\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy "
             "and '.' not in m or m.startswith('aiops.')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=REPO)
    return list(eval(out.stdout))  # the printed list of module names


def test_every_public_name_resolves_and_none_is_a_module() -> None:
    assert len(aiops.__all__) == len(set(aiops.__all__))
    for name in aiops.__all__:
        value = getattr(aiops, name)
        assert not isinstance(value, types.ModuleType), name
        assert callable(value), name
    assert set(aiops.__all__) <= set(dir(aiops))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'opne'"):
        aiops.opne  # type: ignore[attr-defined]  # noqa: B018


def test_the_errors_are_those_of_the_tree() -> None:
    # One root; the input side and the running side, as docs/python.md draws them.
    tree = DOC.split("\naiops.AiopsError\n", 1)[1].split("```", 1)[0]
    for name in aiops.__all__:
        value = getattr(aiops, name)
        if isinstance(value, type) and issubclass(value, Exception) and name != "AiopsError":
            assert issubclass(value, aiops.AiopsError), name
            assert f"aiops.{name} " in tree, f"{name} is missing from the tree in python.md"
    assert issubclass(aiops.InputError, aiops.UserError)
    assert issubclass(aiops.NotAProject, aiops.ConfigError)
    assert issubclass(aiops.ProviderError, aiops.RuntimeFailure)


def test_every_error_of_aiops_errors_is_public() -> None:
    import aiops.errors

    errors = {name for name, value in vars(aiops.errors).items()
              if isinstance(value, type) and issubclass(value, aiops.errors.AiopsError)}
    assert errors - set(aiops.__all__) == set()


def test_every_public_name_is_documented() -> None:
    missing = [name for name in aiops.__all__ if f"aiops.{name}" not in DOC]
    assert missing == []


def test_every_method_of_the_workspace_is_documented_with_its_parameters() -> None:
    for name, member in inspect.getmembers(aiops.Workspace):
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            assert f"`ws.{name}`" in DOC, name
            continue
        heading = re.search(rf"^### .*`(?:await )?ws\.{name}\((?P<args>[^`]*)\)`", DOC, re.M)
        assert heading, f"ws.{name} has no heading in docs/python.md"
        documented = set(re.findall(r"\b([a-z_]+)\b(?==|,|$)", heading["args"]))
        parameters = set(inspect.signature(member).parameters) - {"self"}
        assert parameters <= documented | {"input"}, (name, parameters - documented)


def test_the_entry_points_are_documented_with_their_parameters() -> None:
    for function in (aiops.open, aiops.init):
        heading = re.search(rf"^### `aiops\.{function.__name__}\((?P<args>[^`]*)\)`", DOC, re.M)
        assert heading, function.__name__
        for parameter in inspect.signature(function).parameters:
            assert parameter in heading["args"], (function.__name__, parameter)


def test_import_aiops_loads_nothing_else() -> None:
    assert _loaded("import aiops") == []


def test_opening_and_validating_load_no_database_http_or_provider_library() -> None:
    loaded = _loaded("import aiops\nassert aiops.open('.').validate().functions > 0")
    assert not HEAVY & {m.split(".")[0] for m in loaded}
    assert "aiops.api" in loaded and "aiops.runner" not in loaded


def test_the_readme_links_the_python_api() -> None:
    assert "[docs/python.md](docs/python.md)" in (REPO / "README.md").read_text(encoding="utf-8")
