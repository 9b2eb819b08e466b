"""Property: whatever bytes a function file holds, `aiops validate` ends with success or
located errors, never a traceback or an internal error."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiops.cli import cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = (REPO / "functions/summarize/function.yaml").read_bytes()
YAMLISH = st.sampled_from([*list(":-[]{}#&*!|>'\"%@`,? \n\t\\"), "  ", "- ", ": ", "{{", "}}", "{%", "<<: *a", "&a ", "ÿ"])

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                    st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=20)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(EXAMPLE)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "insert", "dup-line", "bytes", "replace-value"]))
        at = draw(st.integers(0, len(data)))
        if op == "delete":
            del data[at:at + draw(st.integers(1, 30))]
        elif op == "insert":
            data[at:at] = draw(YAMLISH).encode("utf-8", "surrogatepass") if draw(
                st.booleans()) else b"\xff"
        elif op == "dup-line":
            lines = bytes(data).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            data = bytearray(b"\n".join(lines))
        elif op == "bytes":
            data[at:at] = draw(st.binary(max_size=8))
        else:
            doc = yaml.safe_load(EXAMPLE)
            key = draw(st.sampled_from(sorted(doc)))
            doc[key] = draw(values)
            data = bytearray(yaml.safe_dump(doc).encode())
    return bytes(data)


def _run(project: Path, content: bytes) -> None:
    (project / "functions/summarize/function.yaml").write_bytes(content)
    result = CliRunner().invoke(cli, ["validate", str(project)])
    output = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert result.exit_code in (0, 1), output
    assert "Traceback" not in output and "internal error" not in output, output
    if result.exit_code == 1:
        assert ": error: " in output, output


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(content=mutated())
def test_mutated_function_files(tmp_path: Path, content: bytes) -> None:
    project = tmp_path / "p"
    if not project.exists():
        (project / "functions/summarize").mkdir(parents=True)
        shutil.copy(REPO / "providers.yaml", project)
    _run(project, content)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(doc=values)
def test_random_yaml_documents(tmp_path: Path, doc: object) -> None:
    project = tmp_path / "p"
    if not project.exists():
        (project / "functions/summarize").mkdir(parents=True)
        shutil.copy(REPO / "providers.yaml", project)
    _run(project, yaml.safe_dump(doc, allow_unicode=True).encode())
