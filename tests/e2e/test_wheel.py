"""The distribution as a user gets it: a wheel built from this checkout, installed into a new
virtualenv, gives an `aiops` command with which `aiops init x && cd x && aiops validate && aiops
test` passes offline.

Offline here too: the wheel is built without build isolation, and installed without its
dependencies, which the new virtualenv reads from this one's site-packages (a path in a .pth
file; this checkout's editable install is not on that path). Installing the dependencies
themselves, at the lowest versions pyproject.toml allows, is `.ci/run`'s second run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from aiops import __version__
from aiops.extras import DISTRIBUTION


def run(*args: str | Path, cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False, env=env)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, built once per session from a copy of its sources."""
    repo = Path(__file__).resolve().parents[2]
    source = tmp_path_factory.mktemp("sdist") / "src-tree"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(repo / "src", source / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(repo / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                "--no-index", "--quiet", "--wheel-dir", out, source)
    assert built.returncode == 0, built.stdout + built.stderr
    [path] = out.glob("*.whl")
    return path


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv with the wheel installed; its bin directory."""
    venv = tmp_path_factory.mktemp("venv") / "fresh"
    made = run(sys.executable, "-m", "venv", "--without-pip", venv)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    pip = run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
              "--no-index", "--quiet", wheel)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    (Path(site.stdout.strip()) / "dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return venv / "bin"


def test_the_wheel_is_this_distribution_with_its_licence_and_data(wheel: Path) -> None:
    assert wheel.name == f"aiops_kit-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        meta = Parser().parsestr(whl.read(f"aiops_kit-{__version__}.dist-info/METADATA").decode())
    assert (meta["Name"], meta["Version"]) == (DISTRIBUTION, __version__)
    assert meta["License-Expression"] == "Apache-2.0" and meta["License-File"] == "LICENSE"
    assert f"aiops_kit-{__version__}.dist-info/licenses/LICENSE" in names
    assert set(meta.get_all("Provides-Extra")) == {"postgres", "redis", "otel", "dev"}
    runtime = [r for r in meta.get_all("Requires-Dist") if "extra ==" not in r]
    assert not [r for r in runtime
                if r.startswith(("psycopg", "redis", "httpx-aiohttp", "opentelemetry"))]
    for data in ("aiops/py.typed", "aiops/scaffold/workflow.yml",
                 "aiops/scaffold/pre-commit-config.yaml",
                 "aiops/scaffold/hello/smoke.cassette.yaml", "aiops/migrations/env.py",
                 "aiops/migrations/script.py.mako", "aiops/migrations/versions/0001_initial.py",
                 "aiops/web/templates/base.html", "aiops/web/templates/functions.html",
                 "aiops/web/static/aiops.css", "aiops/web/static/aiops.js"):
        assert data in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_a_fresh_install_of_the_wheel_runs_a_new_project_offline(installed: Path,
                                                                 tmp_path: Path) -> None:
    env = {"PATH": f"{installed}:/usr/bin:/bin", "HOME": str(tmp_path)}
    where = run(installed / "python", "-c", "import aiops; print(aiops.__file__)", env=env)
    assert where.stdout.startswith(str(installed.parent)), where.stdout + where.stderr
    # The web UI's templates and static files are in the installed package (it serves them
    # offline).
    ui = run(installed / "python", "-c", "from aiops.web.app import STATIC; from aiops.web."
             "render import environment; environment().get_template('base.html'); "
             "print((STATIC / 'aiops.js').stat().st_size > 0)", env=env)
    assert ui.stdout == "True\n", ui.stdout + ui.stderr
    version = run("aiops", "--version", env=env)
    assert version.stdout == f"aiops, version {__version__}\n", version.stderr
    init = run("aiops", "init", "x", cwd=tmp_path, env=env)
    assert init.returncode == 0, init.stdout + init.stderr
    project = tmp_path / "x"
    validate = run("aiops", "validate", cwd=project, env=env)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    golden = run("aiops", "test", cwd=project, env=env)
    assert golden.returncode == 0, golden.stdout + golden.stderr
    assert "1 passed of 1" in golden.stdout
    workflow = (project / ".github/workflows/aiops.yml").read_text(encoding="utf-8")
    assert f'AIOPS_PIP_SPEC: "{DISTRIBUTION}[postgres]=={__version__}"' in workflow
