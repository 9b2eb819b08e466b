"""`aiops import FILE.prompt|FILE.prompty`: read the prompt file, translate it, write one
function file.

The translation and every check live in `aiops.importers` (pure); this verb reads the prompt
file (and what its `${file:...}` references name) and the project's providers.yaml, and
writes functions/<name>/function.yaml with the schemas its modeline points at.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiops.commands import ensure_schemas, schema_reference
from aiops.errors import Diagnostic, SpecError, UsageError
from aiops.files import FileRefused, read_bounded
from aiops.importers import prepare_import
from aiops.loader import FUNCTIONS_DIR, PROVIDERS_FILE
from aiops.sources import read_project_file
from aiops.workspace import Workspace
from aiops.yamlsrc import MAX_FILE_BYTES, YamlProblem, decode


@dataclass(frozen=True, kw_only=True)
class ImportResult:
    text: str  # the function file
    target: Path | None  # where it was written; None when it was not (`write=False`)
    created: tuple[Path, ...]  # the format's schemas written next to it (modelines)
    warnings: tuple[Diagnostic, ...]  # what was dropped, changed or guessed


def import_file(source: Path, ws: Workspace | None, *, name: str | None = None,
                provider: str | None = None, model: str | None = None, write: bool = True,
                force: bool = False) -> ImportResult:
    """Translate `source` into a function of the project `ws` (with `write`, into its
    functions/; without a project, against no providers.yaml). A file that cannot be
    translated faithfully is a SpecError whose diagnostics hold the warnings too; nothing is
    written then."""
    label = str(source)
    try:
        text = decode(read_bounded(source, MAX_FILE_BYTES, stream_ok=True))
    except FileRefused as exc:
        raise UsageError(f"{label} {exc.reason}") from None
    except YamlProblem as exc:
        raise SpecError([Diagnostic(file=label, line=exc.line, column=exc.column,
                                    message=exc.message, fix=exc.fix, code="import-encoding")]
                        ) from None
    root = ws.root if ws is not None else Path(".")
    outcome = prepare_import(
        text, label, name=name, provider=provider, model=model, read_file=_reader(source),
        providers_file=(read_project_file(root, PROVIDERS_FILE)
                        if ws is not None and os.path.lexists(root / PROVIDERS_FILE) else None),
        # every functions/<name>/ sits at the same depth: any name gives the same reference
        schema_ref=schema_reference(root, root / FUNCTIONS_DIR / "name"))
    if not outcome.ok or outcome.text is None or outcome.target is None:
        raise SpecError(outcome.diagnostics)
    warnings = tuple(d for d in outcome.diagnostics if not d.is_error)
    if not write:
        return ImportResult(text=outcome.text, target=None, created=(), warnings=warnings)
    target = root / outcome.target
    if target.exists() and not force:
        raise UsageError(f"{target} already exists; pass --force to overwrite it, or --name "
                         "to import under another name")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(outcome.text, encoding="utf-8")
    created = ensure_schemas(root)  # what the written file's modeline points at
    return ImportResult(text=outcome.text, target=target, created=tuple(created),
                        warnings=warnings)


def _reader(source: Path) -> Callable[[str], bytes]:
    """Reads what a `${file:...}` reference of `source` names: a file in the prompt file's
    directory or below it, bounded; a path or link leading out of it is refused."""
    base = source.parent

    def read(ref: str) -> bytes:
        rel = os.path.normpath(ref)
        if os.path.isabs(rel) or rel == os.pardir or rel.startswith(os.pardir + os.sep):
            raise FileRefused("is outside the directory of the .prompty file",
                              "copy the file next to the .prompty file and name it from there")
        try:
            return read_bounded(base / rel, MAX_FILE_BYTES, within=base)
        except FileRefused as exc:  # a link out is worded for a project: say which directory
            if "the project directory" not in exc.reason:
                raise
            raise FileRefused(exc.reason.replace("the project directory",
                                                 "the directory of the .prompty file"),
                              "copy the file next to the .prompty file") from None

    return read
