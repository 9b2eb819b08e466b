"""One prompt file's text -> the data of a `function.yaml`: the format chosen by the file's
extension, then the name, provider and model settled (`pick_provider`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from aiops.errors import Diagnostic
from aiops.importers.dotprompt import dotprompt
from aiops.importers.draft import Draft, Reader, Source, split
from aiops.importers.handlebars import Problems
from aiops.importers.prompty import prompty

Format = Literal["dotprompt", "prompty"]
FORMATS: dict[str, Format] = {".prompt": "dotprompt", ".prompty": "prompty"}


@dataclass(frozen=True, kw_only=True)
class ImportResult:
    """The translated function (None when an error stops it) and every problem found."""

    data: dict[str, Any] | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return self.data is not None and not any(d.is_error for d in self.diagnostics)


def import_prompt(text: str, source: str, *, name: str | None = None,
                  provider: str | None = None, model: str | None = None,
                  providers: Mapping[str, str] | None = None,
                  read_file: Reader | None = None) -> ImportResult:
    """Translate one prompt file's text; `source` is its file name (format and messages).

    `providers` maps the project's provider names, in file order, to their types; the
    provider is chosen by `pick_provider`. `read_file` reads what a Prompty `${file:...}`
    reference names (without it, such a reference cannot be read).
    """
    problems = Problems(source)
    fmt = next((f for ext, f in FORMATS.items() if source.endswith(ext)), None)
    if fmt is None:
        problems.error(f"`{source}` is neither a .prompt (Dotprompt) nor a .prompty file",
                       code="import-format", fix="pass a .prompt or .prompty file")
        return ImportResult(data=None, diagnostics=tuple(problems.items))
    src = split(text, problems)
    if src is None:
        return ImportResult(data=None, diagnostics=tuple(problems.items))
    src = replace(src, read_file=read_file)
    draft = dotprompt(src, problems) if fmt == "dotprompt" else prompty(src, problems)
    data = finish(draft, src, source, problems, name=name, provider=provider, model=model,
                   providers=providers or {})
    ordered = sorted(problems.items, key=lambda d: (d.line is None, d.line or 0))
    return ImportResult(data=None if problems.failed else data, diagnostics=tuple(ordered))


def finish(draft: Draft, src: Source, source: str, problems: Problems, *,
            name: str | None, provider: str | None, model: str | None,
            providers: Mapping[str, str]) -> dict[str, Any] | None:
    stem = re.sub(r"\.(prompt|prompty)$", "", source.replace("\\", "/").rsplit("/", 1)[-1])
    final_name = name or function_name(draft.name or "") or function_name(stem)
    if not final_name:
        problems.error("no valid function name can be made from the file",
                       code="import-name", fix="pass --name")
    original = draft.model if isinstance(draft.model, str) and draft.model else None
    final_model = model or original
    if not final_model:
        problems.error("the file names no model", code="import-model",
                       fix="pass --model (a model of the chosen provider)")
    final_provider = provider or pick_provider(final_model or "", providers,
                                               draft.original_provider, problems)
    if not final_provider:
        problems.error("no provider: the project has no providers.yaml", code="import-provider",
                       fix="pass --provider, or run the import inside an aiops project")
    if not draft.prompt:
        problems.error("the template has no message text", line=src.body_line,
                       code="import-empty", fix="write the prompt below the front matter")
    file_name = source.replace("\\", "/").rsplit("/", 1)[-1]
    schema = draft.input_schema
    props = schema.setdefault("properties", {})
    for var in sorted(set(draft.variables) - set(props), key=lambda v: (draft.variables[v], v)):
        problems.warn(f"template variable `{var}` is not declared in the file's inputs; "
                      "declared it as an optional input that defaults to empty text",
                      code="import-undeclared", fix=f"give `{var}` a type and description",
                      line=draft.variables[var])
        props[var] = {"description": f"Used by the template; not declared in {file_name}.",
                      "default": ""}
    metadata: dict[str, Any] = {"imported_from": file_name}
    if original:
        metadata["original_model"] = original
    metadata.update(draft.metadata)
    data: dict[str, Any] = {
        "apiVersion": "aiops/v1",
        "name": final_name,
        "version": "0.1.0",
        "description": str(draft.description).strip()
        or f"Imported from {metadata['imported_from']}.",
        "status": "draft",
        "provider": final_provider,
        "model": final_model,
    }
    if draft.configuration:
        data["configuration"] = draft.configuration
    data["prompt"] = [{"role": role, "content": content} for role, content, _ in draft.prompt]
    data["input_schema"] = schema
    data["output_schema"] = draft.output_schema
    data["metadata"] = metadata
    if draft.tests:
        data["tests"] = draft.tests
    return data


def function_name(text: str) -> str:
    """A valid aiops function name from a prompt's name or file stem ('' when none fits)."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", text)
    name = re.sub(r"[^a-z0-9]+", "-", spaced.lower()).strip("-")
    name = re.sub(r"^[^a-z]+", "", name)[:63].rstrip("-")
    return name if len(name) >= 2 else ""


# The provider type that serves a model family. Groq first: it serves `openai/gpt-oss-*`.
_FAMILIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("groq", re.compile(r"llama|mixtral|gemma|qwen|qwq|deepseek|gpt-oss|kimi|whisper|allam|"
                        r"compound", re.IGNORECASE)),
    ("openai", re.compile(r"^(openai/)?(gpt-|chatgpt-|o[134]($|-))", re.IGNORECASE)),
)
_FAMILY_NAMES = "gpt-*, o1*, o3*, o4*: openai; llama, mixtral, gemma, qwen, deepseek, ...: groq"


def model_family(model: str) -> str | None:
    """The provider type that serves `model` (`openai`, `groq`), or None when unknown."""
    return next((kind for kind, pattern in _FAMILIES if pattern.search(model)), None)


def pick_provider(model: str, providers: Mapping[str, str], named: str | None,
                  problems: Problems) -> str | None:
    """The project's provider for `model`: one of the type its family needs (the one the file
    names, if it is of that type, else the first); without a family, the one the file names;
    else the first provider, with a warning that says what to pass instead.

    `providers` maps names, in providers.yaml order, to types; `named` is the file's own
    provider name (Prompty's `model.provider`), if any.
    """
    if not providers:
        return None
    family = model_family(model)
    if family is not None:
        if named is not None and providers.get(named) == family:
            return named
        typed = next((n for n, kind in providers.items() if kind == family), None)
        if typed is not None:
            return typed
        why = (f"model `{model}` is an {family} model, and providers.yaml has no provider of "
               f"type `{family}`")
        extra = f"; or add an `{family}` provider to providers.yaml"
    elif named in providers:
        return named
    else:
        why = f"model `{model}` is of no model family aiops knows ({_FAMILY_NAMES})"
        extra = ""
    first = next(iter(providers))
    problems.warn(f"{why}; picked `{first}`, the first provider of providers.yaml",
                  code="import-provider",
                  fix=f"pass --provider NAME, one of {', '.join(providers)}, and --model, a "
                  f"model that provider serves{extra}")
    return first
