"""What the format importers share: the prompt file split into front matter and body
(`Source`), the function they fill in (`Draft`), and the translations both formats need
(model settings, `metadata`, Picoschema)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiops.importers.handlebars import Problems
from aiops.importers.picoschema import SchemaProblem, picoschema
from aiops.yamlsrc import Positions, YamlProblem, format_path, parse

# Reads a file named relative to the prompt file, or raises FileRefused.
Reader = Callable[[str], bytes]


@dataclass(frozen=True, kw_only=True)
class Source:
    """One prompt file: its front matter (parsed, with positions) and its body, each with the
    file line it starts on, so that every problem is reported at its line in the file."""

    meta: dict[str, Any]
    positions: Positions
    meta_line: int  # file line of the front matter's first line
    body: str
    body_line: int  # file line of the body's first line
    read_file: Reader | None = None  # the files a `${file:...}` reference names

    def line_of(self, *path: str | int) -> int | None:
        mark = self.positions.find(tuple(path), prefer_key=True)
        return mark.line + self.meta_line - 1 if mark else None


_FENCE = re.compile(r"^---[ \t]*$")


def split(text: str, problems: Problems) -> Source | None:
    """Front matter between `---` fences (after optional `#` comment lines), then the body."""
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").split("\n")
    start = 0
    while start < len(lines) and (not lines[start].strip() or lines[start].lstrip().startswith("#")):
        start += 1
    if start >= len(lines) or not _FENCE.match(lines[start]):
        return Source(meta={}, positions=Positions(), meta_line=1, body="\n".join(lines),
                       body_line=1)
    end = next((i for i in range(start + 1, len(lines)) if _FENCE.match(lines[i])), None)
    if end is None:
        problems.error("the front matter opened by `---` is never closed", line=start + 1,
                       code="import-syntax", fix="end the front matter with a `---` line")
        return None
    meta_text = "\n".join(lines[start + 1:end])
    meta: dict[str, Any] = {}
    positions = Positions()
    if meta_text.strip():
        try:
            meta, positions = parse(meta_text.encode("utf-8"))
        except YamlProblem as exc:
            message = re.sub(r"at line (\d+)", lambda m: f"at line {int(m[1]) + start + 1}",
                             exc.message)  # lines in the file, not in the front matter
            problems.error(f"front matter is not valid YAML: {message}",
                           line=exc.line + start + 1 if exc.line else None,
                           fix=exc.fix or "check the indentation, quotes and colons",
                           code="import-yaml")
            return None
    return Source(meta=meta, positions=positions, meta_line=start + 2,
                   body="\n".join(lines[end + 1:]), body_line=end + 2)


@dataclass(kw_only=True)
class Draft:
    """What a format importer found, before names, provider and model are settled."""

    name: str | None = None
    description: str = ""
    model: Any = None
    original_provider: str | None = None
    configuration: dict[str, Any] = field(default_factory=dict)
    prompt: list[tuple[str, str, int]] = field(default_factory=list)
    input_schema: dict[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}})
    output_schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    output_from: tuple[str, int | None] | None = None  # a response format: (key, line)
    variables: dict[str, int] = field(default_factory=dict)  # name -> file line of first use
    metadata: dict[str, Any] = field(default_factory=dict)
    tests: list[dict[str, Any]] = field(default_factory=list)


# Dotprompt `config` / Prompty `options` / Prompty v1 `parameters` -> aiops configuration.
_SETTINGS = {
    "temperature": "temperature", "maxOutputTokens": "max_tokens", "max_tokens": "max_tokens",
    "topP": "top_p", "top_p": "top_p", "stopSequences": "stop", "stop": "stop",
    "seed": "seed", "presencePenalty": "presence_penalty",
    "presence_penalty": "presence_penalty", "frequencyPenalty": "frequency_penalty",
    "frequency_penalty": "frequency_penalty",
}


def configuration(raw: Any, where: tuple[str, ...], src: Source,
                   problems: Problems) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if raw is None:
        return out
    if not isinstance(raw, dict):
        problems.error(f"`{'.'.join(where)}` must be a mapping of settings",
                       line=src.line_of(*where), code="import-syntax")
        return out
    for key, value in raw.items():
        target = _SETTINGS.get(key)
        if target is None:
            problems.warn(f"setting `{'.'.join((*where, key))}` has no aiops equivalent and "
                          "was dropped", line=src.line_of(*where, key),
                          fix="aiops configuration keys: temperature, max_tokens, top_p, "
                          "stop, seed, presence_penalty, frequency_penalty")
            continue
        out[target] = value
    return out


_RESERVED_METADATA = ("imported_from", "original_model")


def carry_metadata(meta: dict[str, Any], src: Source, problems: Problems,
                    draft: Draft) -> None:
    """The file's `metadata` mapping, into the function's (free-form there too)."""
    raw = meta.get("metadata")
    if raw is None:
        return
    if not isinstance(raw, dict):
        problems.warn("`metadata` is not a mapping and was dropped", line=src.line_of("metadata"))
        return
    for key, value in raw.items():
        if key in _RESERVED_METADATA:
            problems.warn(f"`metadata.{key}` is set by the import; the file's value was dropped",
                          line=src.line_of("metadata", key))
        else:
            draft.metadata[str(key)] = value


def convert_schema(value: Any, where: tuple[str, ...], src: Source,
                    problems: Problems) -> dict[str, Any] | None:
    try:
        return picoschema(value)
    except SchemaProblem as exc:
        full = (*where, *exc.path)
        problems.error(f"`{format_path(full)}`: {exc.message}", line=src.line_of(*full),
                       code="import-schema", fix="see https://google.github.io/dotprompt/"
                       "reference/picoschema/")
        return None


def dict_or_empty(value: Any) -> dict[str, Any]:
    """`value` when the front matter holds a mapping there, else an empty one."""
    return value if isinstance(value, dict) else {}
