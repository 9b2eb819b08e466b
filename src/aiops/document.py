"""A function document (a JSON value, as the API receives it) as the YAML file a person would
write, and the key paths of diagnostics as JSON pointers into that document. Pure: no files,
no git.

`function_yaml(document, schema=...)` writes the format's keys in the order of the format (as
the scaffold and docs/format.md do: `apiVersion`, `name`, `version`, ..., `tests`; inside a
message `role` then `content`), and the keys of free mappings (schemas, configuration values,
metadata, test inputs) in the document's own order. Block style, with the short leaves a
person writes inline (`required: [text]`, `text: {type: string, minLength: 1}`) and text of
several lines as a literal block (`content: |`). The file loads back to the same value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from aiops.loader import allowed_keys
from aiops.spec import FunctionSpec
from aiops.yamlsrc import YamlProblem, number_to_yaml12, parse, top_level_spans

MODELINE = "# yaml-language-server: $schema={schema}\n"
# A mapping or list of plain values goes on one line up to this many characters (the key and
# the indentation not counted), as `{type: string, minLength: 1, maxLength: 20000}` does.
FLOW_CHARS = 64
_NO_WRAP = 1 << 20  # never fold a long line: a person writes a long description on one line


class _Dumper(yaml.SafeDumper):
    """Block lists indented under their key (`prompt:` then `  - role: ...`), as the
    scaffold writes them; PyYAML's default puts the dash under the key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def function_yaml(document: Mapping[str, Any], *, schema: str) -> str:
    """The file for `document`, with the modeline pointing at `schema` (the format's JSON
    Schema, relative to the file's directory)."""
    node = _node(_ordered(document, ()), ())
    body = yaml.serialize(node, Dumper=_Dumper, allow_unicode=True, width=_NO_WRAP)
    return MODELINE.format(schema=schema) + body


def _ordered(value: Any, path: tuple[str | int, ...]) -> Any:
    """`value` with the keys of each mapping of the format in the format's order (unknown
    keys after them, as written), free mappings as written."""
    if isinstance(value, Mapping):
        known = allowed_keys(FunctionSpec, path)
        keys = list(value)
        if known:
            rank = {k: i for i, k in enumerate(known)}
            keys.sort(key=lambda k: rank.get(k, len(rank)))  # stable: unknown keys keep order
        return {k: _ordered(value[k], (*path, k)) for k in keys}
    if isinstance(value, list | tuple):
        return [_ordered(v, (*path, i)) for i, v in enumerate(value)]
    return value


# Scalars only (text, numbers, booleans, null): they are never aliased, so the representer
# keeps no state between calls.
_scalar = yaml.representer.SafeRepresenter().represent_data


def _node(value: Any, path: tuple[str | int, ...]) -> yaml.Node:
    if isinstance(value, dict):
        pairs = [(_scalar_node(k), _node(v, (*path, k))) for k, v in value.items()]
        return yaml.MappingNode("tag:yaml.org,2002:map", pairs,
                                flow_style=_flow(value, path))
    if isinstance(value, list):
        return yaml.SequenceNode("tag:yaml.org,2002:seq",
                                 [_node(v, (*path, i)) for i, v in enumerate(value)],
                                 flow_style=_flow(value, path))
    return _scalar_node(value)


def _scalar_node(value: Any) -> yaml.Node:
    node = _scalar(value)
    if isinstance(node, yaml.ScalarNode) and isinstance(value, str):
        if "\n" in value:
            node.style = "|"  # PyYAML falls back to quotes where a block cannot hold it
        elif number_to_yaml12(value):
            node.style = "'"  # plain, YAML 1.1 reads text but YAML 1.2 a number
    return node


def _flow(value: dict[str, Any] | list[Any], path: tuple[str | int, ...]) -> bool:
    """Whether a person writes this mapping or list on one line: empty ones; lists of plain
    values; mappings of plain values below the top level that are values of a key (a list's
    items are written `- key: value`); each when short."""
    if not value:
        return True
    items = value.values() if isinstance(value, dict) else value
    if any(isinstance(v, dict | list) or (isinstance(v, str) and "\n" in v) for v in items):
        return False
    if isinstance(value, dict) and (len(path) < 2 or isinstance(path[-1], int)):
        return False
    flat = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=_NO_WRAP,
                          sort_keys=False)
    return len(flat.strip()) <= FLOW_CHARS


# --- one key of a file -------------------------------------------------------------------------


def with_key(text: str, key: str, value: Any) -> str:
    """`text`, a function file, with its top-level `key` set to `value`, written as
    `function_yaml` writes it; every other line (comments included) as it was (comments
    inside the old value go with it). A key the file lacks is added at its end. Raises YamlProblem when `text` does not parse, and
    ValueError when the result would not load back to the file's value with `key` replaced
    (a file whose layout the splice cannot follow, e.g. aliases into the key's value)."""
    data = text.encode()
    before = parse(data)[0]
    entry = yaml.serialize(_node({key: value}, ()), Dumper=_Dumper, allow_unicode=True,
                           width=_NO_WRAP).rstrip("\n")
    spans = top_level_spans(text)
    if key in spans:
        start, end = spans[key]
        while end > start and text[end - 1] == "\n":  # a block scalar's end holds its newline
            end -= 1
        # A comment after the value's last line goes with the value it was about.
        line_end = text.find("\n", end)
        line_end = len(text) if line_end < 0 else line_end
        if text[end:line_end].strip().startswith("#") or not text[end:line_end].strip():
            end = line_end
        out = text[:start] + entry + text[end:]
    else:
        out = text + ("" if not text or text.endswith("\n") else "\n") + entry + "\n"
    try:
        after = parse(out.encode())[0]
    except YamlProblem:
        after = None
    if after != {**before, key: value}:
        raise ValueError(f"`{key}` cannot be rewritten in place in this file (it is written "
                         "in a way the rewrite cannot follow, e.g. with aliases); edit its YAML")
    return out


# --- JSON pointers ----------------------------------------------------------------------------


def pointer(document: Any, path: str) -> str:
    """The JSON pointer (RFC 6901) of a diagnostic's key path (`prompt[1].content`, as
    `aiops.yamlsrc.format_path` writes it) inside `document`: `/prompt/1/content`. A key that
    holds `.` or `[` is found as the document spells it; a key the document lacks (a missing
    required key) ends the pointer."""
    parts: list[str] = []
    node = document
    rest = path
    while rest:
        index = re.match(r"\[(\d+)\]", rest)
        if index:
            parts.append(index[1])
            i = int(index[1])
            node = node[i] if isinstance(node, list) and i < len(node) else None
            rest = rest[index.end():]
            continue
        if parts and rest.startswith("."):
            rest = rest[1:]
        key = _key_at(node, rest)
        parts.append(key)
        node = node.get(key) if isinstance(node, dict) else None
        rest = rest[len(key):]
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _key_at(node: Any, rest: str) -> str:
    """The key of `node` that `rest` starts with (the longest, followed by `.`, `[` or the
    end); else the text up to the next `.` or `[`."""
    if isinstance(node, dict):
        for key in sorted((k for k in node if isinstance(k, str) and k), key=len, reverse=True):
            if rest.startswith(key) and (len(rest) == len(key) or rest[len(key)] in ".["):
                return key
    plain = re.match(r"[^.\[]+", rest)
    return plain[0] if plain else rest
