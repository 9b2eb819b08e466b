"""The distribution's metadata: its own name on the package index (the command and the import
package stay `aiops`), one version source, a licence file that matches the declared licence,
and dependencies that are used, with the drivers behind extras."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

import aiops
from aiops.extras import DISTRIBUTION

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def names(requirements: list[str]) -> set[str]:
    return {Requirement(r).name for r in requirements}


def test_the_distribution_is_aiops_kit_and_the_command_aiops(project: dict[str, Any]) -> None:
    assert project["name"] == DISTRIBUTION == "aiops-kit"  # `aiops` is another project
    assert project["scripts"] == {"aiops": "aiops.cli:main"}
    assert importlib.metadata.distribution(DISTRIBUTION).entry_points.select(
        group="console_scripts", name="aiops")


def test_one_version_source(project: dict[str, Any]) -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project and project["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "aiops.__version__"}
    assert importlib.metadata.version(DISTRIBUTION) == aiops.__version__


def test_the_licence_file_is_the_declared_licence(project: dict[str, Any]) -> None:
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert re.match(r"\s*Apache License\s+Version 2\.0, January 2004", text)
    assert "END OF TERMS AND CONDITIONS" in text
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]  # PEP 639


def test_the_supported_pythons_are_declared(project: dict[str, Any]) -> None:
    assert project["requires-python"] == ">=3.11"
    versions = [c.rsplit(" ", 1)[1] for c in project["classifiers"]
                if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    assert versions == ["3.11", "3.12", "3.13"]


def test_the_drivers_are_extras_and_nothing_unused_is_required(
        project: dict[str, Any]) -> None:
    runtime = names(project["dependencies"])
    extras = project["optional-dependencies"]
    assert not runtime & {"psycopg", "redis", "httpx-aiohttp", "pytest-recording"}
    assert names(extras["postgres"]) == {"psycopg"}
    assert names(extras["redis"]) == {"redis"}
    assert names(extras["otel"]) == {"opentelemetry-api"}  # traces: the SDK is the app's
    assert "pytest-recording" not in names(extras["dev"])
    [self_ref] = [r for r in extras["dev"] if Requirement(r).name == DISTRIBUTION]
    assert Requirement(self_ref).extras == {"postgres", "redis", "otel"}  # the suite needs all
    for requirement in project["dependencies"]:
        module = {"pyyaml": "yaml", "google-re2": "re2", "jsonschema-rs": "jsonschema_rs",
                  "vcrpy": "vcr", "prometheus-client": "prometheus_client"}.get(Requirement(requirement).name,
                                      Requirement(requirement).name)
        used = subprocess.run(["git", "grep", "-l", "-E", rf"^\s*(import|from) {module}\b",
                               "--", "src/aiops"], cwd=REPO, capture_output=True, text=True,
                              check=False)
        assert used.stdout, f"{requirement}: nothing in src/aiops imports `{module}`"


def test_every_dependency_has_a_lower_bound_that_ci_installs(project: dict[str, Any]) -> None:
    sys.path.insert(0, str(REPO / ".ci"))
    try:
        from lowest_versions import lowest_pins
    finally:
        sys.path.remove(str(REPO / ".ci"))
    pins = dict(p.split("==") for p in lowest_pins(REPO / "pyproject.toml"))
    for bound, name in (("5.1", "limits"), ("2.0.33", "sqlalchemy"), ("9.1", "vcrpy"),
                        ("2.11", "pydantic"), ("3.1.19", "psycopg"), ("5.2.0", "redis")):
        assert pins[name] == bound
    assert "aiops-kit" not in pins
    assert ".ci/lowest_versions.py" in (REPO / "Makefile").read_text(encoding="utf-8")
    assert "make test-lowest" in (REPO / ".ci/run").read_text(encoding="utf-8")
