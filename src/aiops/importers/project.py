"""A translated function into a project: its `function.yaml` text (`to_yaml`) and the proof,
before anything is written, that it loads and checks with the project's providers
(`prepare_import`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from aiops.errors import Diagnostic
from aiops.files import FileRefused
from aiops.importers.draft import Reader
from aiops.importers.translate import import_prompt

SCHEMA_URL = "https://aiops.dev/schemas/function.schema.json"


class _Dumper(yaml.SafeDumper):
    """Block style with list items indented under their key, as the examples are written."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    block = "\n" in value and not re.search(r"^[ ]*\t", value, re.MULTILINE)
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if block else None)


_Dumper.add_representer(str, _str)


def to_yaml(data: dict[str, Any], *, schema_ref: str = SCHEMA_URL,
            notes: Sequence[Diagnostic] = ()) -> str:
    """function.yaml text: the editor modeline, what the import dropped, then the data."""
    head = [f"# yaml-language-server: $schema={schema_ref}",
            f"# Imported from {data['metadata']['imported_from']} by `aiops import`."]
    for note in notes:
        if not note.is_error:
            where = f" (source line {note.line})" if note.line else ""
            head.append(f"# - {note.message}{where}")
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=4096, indent=2)
    return "\n".join(line.replace("\n", " ") for line in head) + "\n" + body


@dataclass(frozen=True, kw_only=True)
class ImportOutcome:
    """The file to write (`text` at `target`, relative to the project) and every diagnostic."""

    name: str | None
    target: str | None
    text: str | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return self.text is not None and not any(d.is_error for d in self.diagnostics)


def prepare_import(text: str, source: str, *, providers_file: bytes | FileRefused | None,
                   schema_ref: str = SCHEMA_URL, name: str | None = None,
                   provider: str | None = None, model: str | None = None,
                   read_file: Reader | None = None) -> ImportOutcome:
    """Translate, render and check the function exactly as the project will load it.

    The rendered YAML goes through `load_sources` and `check_function` with the project's
    providers.yaml, so a file that is written is one that validates.
    """
    from aiops.checks import check_function
    from aiops.loader import PROVIDERS_FILE, function_file, load_one, load_sources
    from aiops.spec import ProvidersFile

    diags: list[Diagnostic] = []
    providers: ProvidersFile | None = None
    if providers_file is not None:
        providers, _, pdiags = load_one(PROVIDERS_FILE, providers_file, ProvidersFile)
        diags += pdiags
    kinds = {n: p.type for n, p in providers.providers.items()} if providers else {}
    result = import_prompt(text, source, name=name, provider=provider, model=model,
                           providers=kinds, read_file=read_file)
    diags += result.diagnostics
    if result.data is None or any(d.is_error for d in diags):
        return ImportOutcome(name=None, target=None, text=None, diagnostics=tuple(diags))
    fname = result.data["name"]
    target = function_file(fname)
    yaml_text = to_yaml(result.data, schema_ref=schema_ref, notes=result.diagnostics)
    files: dict[str, bytes | FileRefused] = {target: yaml_text.encode("utf-8")}
    if providers_file is not None:
        files[PROVIDERS_FILE] = providers_file
    project = load_sources(files)
    checked = [d for d in project.diagnostics if d.file == target]
    if fname in project.functions:
        checked += check_function(project.functions[fname], providers)
    diags += checked
    ok = not any(d.is_error for d in diags)
    return ImportOutcome(name=fname, target=target, text=yaml_text if ok else None,
                         diagnostics=tuple(diags))
