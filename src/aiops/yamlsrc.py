"""Safe YAML reading with a position for every node.

`parse(data, file)` returns the plain Python value of a one-document YAML mapping and a
`Positions` index (key path -> line and column), or raises `YamlProblem` with the place and
the fix. It refuses what a hostile or careless file can do to a loader: files over a size
bound, bytes that are not UTF-8, tabs in indentation, duplicate keys, aliases that expand
beyond a node bound or into themselves, several documents, and a document that is not a
mapping. Only the safe tags are constructed (libyaml's composer when available, for speed).
"""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple

import yaml

MAX_FILE_BYTES = 1 << 20  # 1 MiB: a function file is a few KiB
MAX_NODES = 100_000  # bound on nodes visited, aliases expanded (billion laughs)
MAX_DEPTH = 100  # bound on nesting (a function file nests a few levels; a schema, a dozen)

Path = tuple[str | int, ...]

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAB_INDENT = re.compile(r"^[ ]*\t", re.MULTILINE)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_SAFE_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_STR_TAG = "tag:yaml.org,2002:str"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"  # kept as text: JSON has no dates


class Mark(NamedTuple):  # a tuple: a file has one per node, and tuples are cheap to make
    line: int  # 1-based
    column: int  # 1-based


class YamlProblem(Exception):
    """A file that is not acceptable YAML; carries where and how to fix it."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None,
                 fix: str = "", path: Path = ()) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.fix = fix
        self.path = path


class Positions:
    """Where each key path of a document starts: values, and the keys that name them."""

    def __init__(self) -> None:
        self.values: dict[Path, Mark] = {}
        self.keys: dict[Path, Mark] = {}
        self.block_scalars: set[Path] = set()  # literal `|` blocks: text lines = file lines
        # Other scalars over several lines (folded, plain, quoted): their source text, since
        # folding and escapes break the line-for-line correspondence.
        self.spans: dict[Path, str] = {}

    def find(self, path: Path, *, prefer_key: bool = False) -> Mark | None:
        """The mark of `path`, or of its longest known prefix."""
        for end in range(len(path), -1, -1):
            sub = path[:end]
            if prefer_key and sub in self.keys:
                return self.keys[sub]
            if sub in self.values:
                return self.values[sub]
        return None

    def content_line(self, path: Path) -> int | None:
        """The file line of a string value's first content line (block scalars start below)."""
        mark = self.values.get(path)
        if mark is None:
            return None
        return mark.line + 1 if path in self.block_scalars else mark.line

    def text_line(self, path: Path, line: int, word: str | None = None) -> int | None:
        """The file line of line `line` (1-based) of a string value. For a literal block, the
        same line of the block; for a folded, plain or quoted value over several lines, the
        first source line where `word` occurs (preferring one with a `{{`/`{%` tag);
        otherwise the value's first line."""
        first = self.content_line(path)
        if first is None:
            return None
        if path in self.block_scalars:
            return first + line - 1
        span = self.spans.get(path)
        if span is None or word is None:
            return first
        pattern = re.compile(rf"(?<![\w.]){re.escape(word)}\b")
        lines = span.splitlines()
        hits = [i for i, text in enumerate(lines) if pattern.search(text)]
        tagged = [i for i in hits if "{{" in lines[i] or "{%" in lines[i]]
        return first + (tagged or hits or [0])[0]


def format_path(path: Path) -> str:
    """('prompt', 1, 'content') -> 'prompt[1].content'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = str(part)
    return out


def decode(data: bytes) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise YamlProblem(
            f"file is {len(data)} bytes, over the {MAX_FILE_BYTES} byte bound",
            fix="split it or move large text out of the file",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YamlProblem(
            f"byte 0x{data[exc.start]:02x} is not valid UTF-8",
            line=line,
            column=column,
            fix="save the file as UTF-8",
        ) from None


def parse(data: bytes) -> tuple[dict[str, Any], Positions]:
    """Parse one YAML mapping document safely, with positions; raise YamlProblem."""
    text = decode(data)
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # Tabs are refused where they indent, not in text (a prompt may quote a Makefile):
        # the scanner stops on such a tab, and says so in its own words.
        if mark is not None and text[mark.index:mark.index + 1] == "\t" and _TAB_INDENT.match(
                text, text.rfind("\n", 0, mark.index) + 1):
            raise YamlProblem("tab character in indentation", line=mark.line + 1,
                              column=mark.column + 1,
                              fix="indent with spaces; YAML does not allow tabs there") from None
        problem = exc.problem or "invalid YAML"
        if exc.context:
            problem = f"{problem} ({exc.context})"
        raise YamlProblem(
            f"invalid YAML: {problem}",
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
            fix="check the indentation, quotes and colons around this place",
        ) from None
    except yaml.YAMLError as exc:  # a reader error without marks
        raise YamlProblem(f"invalid YAML: {exc}") from None
    if not nodes or nodes[0] is None:
        raise YamlProblem("file is empty", line=1, column=1, fix="write a YAML mapping")
    if len(nodes) > 1:
        mark = nodes[1].start_mark
        raise YamlProblem("file holds several YAML documents", line=mark.line + 1,
                          column=mark.column + 1, fix="keep one document: remove the `---`")
    root = nodes[0]
    if not isinstance(root, yaml.MappingNode):
        mark = root.start_mark
        raise YamlProblem("the document is not a mapping", line=mark.line + 1,
                          column=mark.column + 1, fix="write `key: value` pairs at the top level")
    builder = _Builder(text)
    value = builder.build(root, ())
    return value, builder.positions


_SCALARS = yaml.constructor.SafeConstructor()


def _scalar(node: yaml.ScalarNode) -> Any:
    """A safe scalar's value, without the constructor's per-document bookkeeping."""
    if node.tag == _STR_TAG:
        return node.value
    return _SCALARS.yaml_constructors[node.tag](_SCALARS, node)


class _Builder:
    """Turns a composed node graph into plain values, recording positions."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.positions = Positions()
        self.count = 0
        self.active: set[int] = set()
        self.merging = 0  # depth of `<<` sources being built

    def _mark(self, node: yaml.Node) -> Mark:
        return Mark(node.start_mark.line + 1, node.start_mark.column + 1)

    def _fail(self, node: yaml.Node, message: str, fix: str, path: Path) -> YamlProblem:
        mark = self._mark(node)
        return YamlProblem(message, line=mark.line, column=mark.column, fix=fix, path=path)

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self._fail(node, f"anchors and aliases expand beyond {MAX_NODES} nodes",
                             "write the values out instead of nesting aliases", path)
        if id(node) in self.active:
            raise self._fail(node, "an alias refers to itself", "remove the recursive alias", path)
        if len(path) > MAX_DEPTH:
            raise self._fail(node, f"values are nested deeper than {MAX_DEPTH} levels",
                             "flatten the structure", path[:3])
        self.positions.values.setdefault(path, self._mark(node))
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _TIMESTAMP_TAG:
                return node.value
            if node.tag not in _SAFE_SCALAR_TAGS:
                raise self._fail(node, f"tag {node.tag} is not allowed",
                                 "remove the `!tag`; only plain YAML values are read", path)
            if node.style == "|":
                self.positions.block_scalars.add(path)
            elif node.end_mark.line > node.start_mark.line and node.tag == _STR_TAG:
                self.positions.spans.setdefault(
                    path, self.text[node.start_mark.index:node.end_mark.index])
            try:
                value = _scalar(node)
            except (yaml.YAMLError, ValueError) as exc:
                raise self._fail(node, f"value cannot be read: {exc}", "quote it", path) from None
            if isinstance(value, float) and not math.isfinite(value):
                raise self._fail(node, f"{node.value} is not a finite number; JSON cannot hold it",
                                 "use a number, or quote it to make it text", path)
            return value
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ_TAG:
                    raise self._fail(node, f"tag {node.tag} is not allowed", "remove the `!tag`",
                                     path)
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            # The composer makes only scalar, sequence and mapping nodes; the isinstance
            # check narrows the type and never fails on a composed document.
            if not isinstance(node, yaml.MappingNode) or node.tag != _MAP_TAG:
                raise self._fail(node, f"tag {node.tag} is not allowed", "remove the `!tag`", path)
            return self._mapping(node, path)
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        sources: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources += value_node.value if isinstance(value_node, yaml.SequenceNode) else [
                    value_node]
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self._fail(key_node, "a key must be a plain string",
                                 "use a plain word as the key", path)
            if key_node.tag not in _SAFE_SCALAR_TAGS | {_TIMESTAMP_TAG}:
                raise self._fail(key_node, f"tag {key_node.tag} is not allowed",
                                 "remove the `!tag`; a key is plain text", path)
            try:
                key = key_node.value if key_node.tag == _TIMESTAMP_TAG else _scalar(key_node)
            except (yaml.YAMLError, ValueError) as exc:
                raise self._fail(key_node, f"key cannot be read: {exc}", "quote it",
                                 path) from None
            if not isinstance(key, str):
                raise self._fail(key_node, f"key {key_node.value!r} is read as "
                                 f"{type(key).__name__}, not text",
                                 f'quote it: "{key_node.value}"', path)
            child = (*path, key)
            if key in out:
                first = self.positions.keys[child]
                raise self._fail(key_node, f"duplicate key `{key}` (first at line {first.line})",
                                 "keep one of them", child)
            if self.merging:  # an explicit key, already placed, keeps its position
                self.positions.keys.setdefault(child, self._mark(key_node))
            else:
                self.positions.keys[child] = self._mark(key_node)
            out[key] = self.build(value_node, child)
        # Merged after the explicit keys, so that an explicit key wins in the value and in
        # the positions (an error about it points where it is written, not at the anchor).
        for source in sources:
            for k, v in self._merged(source, path).items():
                out.setdefault(k, v)
        return out

    def _merged(self, source: yaml.Node, path: Path) -> dict[str, Any]:
        """One `<<` source, counted and guarded like any node (a merge adds no value node,
        so merges of empty mappings would otherwise escape the bound)."""
        if not isinstance(source, yaml.MappingNode):
            raise self._fail(source, "`<<` merges only mappings", "merge an anchored mapping",
                             path)
        self.count += 1
        if self.count > MAX_NODES:
            raise self._fail(source, f"anchors and aliases expand beyond {MAX_NODES} nodes",
                             "write the values out instead of nesting aliases", path)
        if id(source) in self.active:
            raise self._fail(source, "an alias refers to itself",
                             "remove the recursive alias", path)
        self.active.add(id(source))
        self.merging += 1
        try:
            return self._mapping(source, path)
        finally:
            self.merging -= 1
            self.active.discard(id(source))
