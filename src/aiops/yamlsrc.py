"""Safe YAML reading with a position for every node.

`parse(data)` returns the plain Python value of a one-document YAML mapping and a `Positions`
index (key path -> line and column), or raises `YamlProblem` with the place and the fix. It
refuses what a hostile or careless file can do to a loader: files over a size bound, bytes
that are not UTF-8, tabs in indentation, duplicate keys, aliases that expand beyond a node
bound or a bound on the text they expand to (an alias of a long text, used many times, is
small on disk and huge in memory) or into themselves, several documents, and a document that
is not a mapping. A bound crossed inside an alias is reported at the alias that expands.

With `storable` bounds (spec files), values a database or a provider cannot take are refused
where they are written: text holding U+0000 (PostgreSQL refuses it) or a lone surrogate,
integers beyond 64 bits, floats of 1e16 or more (jsonb reads them back as integers), and numbers written in YAML 1.1's other forms (`0x10`, `010`, `1_000`,
`1:30`), which YAML 1.2 readers (editors, other tools) read differently or as text.
Only the safe tags are constructed (libyaml's composer when available, for speed).
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from typing import Any, NamedTuple

import yaml

from aiops.errors import shown
from aiops.files import describe_size
from aiops.spec import INT64

MAX_FILE_BYTES = 1 << 20  # 1 MiB: a function file is a few KiB
MAX_NODES = 100_000  # bound on nodes visited, aliases expanded (billion laughs)
MAX_DEPTH = 100  # bound on nesting (a function file nests a few levels; a schema, a dozen)
# Bound on the characters of every key and scalar as built, aliases expanded: a file without
# aliases stays under its size, so this leaves room for aliases to double it, no more.
MAX_EXPANDED_CHARS = 2 * MAX_FILE_BYTES
# From 1e16 up, JSON writes a float with an exponent (1e+16), which PostgreSQL's jsonb turns
# into integer digits: the value would read back as another type, under another hash.
FLOAT_EXACT = 1e16


@dataclass(frozen=True, kw_only=True)
class Bounds:
    """What one kind of file may hold."""

    file_bytes: int = MAX_FILE_BYTES
    expanded_chars: int = MAX_EXPANDED_CHARS
    nodes: int = MAX_NODES
    depth: int = MAX_DEPTH
    storable: bool = True  # refuse NUL, lone surrogates, >64-bit and non-decimal integers


SPEC_BOUNDS = Bounds()
# Recorded or canned HTTP (cassettes, mock responses): larger (a few long answers), many more
# values (JSON bodies as YAML), and whatever a provider may answer (a NUL, a huge number).
MAX_RECORDING_BYTES = 4 << 20
RECORDING_BOUNDS = Bounds(file_bytes=MAX_RECORDING_BYTES, expanded_chars=2 * MAX_RECORDING_BYTES,
                          nodes=250_000, storable=False)

Path = tuple[str | int, ...]

_SafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MAX_TAGS = 10_000  # bound on the remembered tags (keys and short values: about 1 MB)
_MAX_REMEMBERED = 40  # characters of a text whose tag is remembered
_tags: dict[tuple[str, tuple[bool, bool]], str] = {}


class _Loader(_SafeLoader):  # type: ignore[misc]  # a class picked at import
    """The safe loader (libyaml's parser and composer when available), with the tag of a
    short scalar remembered: the safe resolver has no path resolvers, so the tag depends on
    the text and the implicit flags alone, and the same keys and small values recur in
    every file (a quarter of the time of composing one)."""

    def resolve(self, kind: Any, value: str | None, implicit: tuple[bool, bool]) -> str:
        if kind is not yaml.ScalarNode or value is None or len(value) > _MAX_REMEMBERED:
            resolved: str = super().resolve(kind, value, implicit)
            return resolved
        key = (value, implicit)
        tag = _tags.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(_tags) >= _MAX_TAGS:
                _tags.clear()
            _tags[key] = tag
        return tag


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
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"  # kept as text: JSON has no dates
_JSON_KIND = {int: "a number", float: "a number", bool: "true or false", type(None): "null"}


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
    """Where each key path of a document starts: values, and the keys that name them.

    Indexed on first use, from the document's text: only a diagnostic asks where something
    is, so loading a project of valid files records no position (a tenth of the time of
    reading a file, and most of the memory a loaded project holds)."""

    def __init__(self, text: str | None = None, bounds: Bounds = SPEC_BOUNDS) -> None:
        self._source = None if text is None else (text, bounds)
        self._values: dict[Path, Mark] = {}
        self._keys: dict[Path, Mark] = {}
        self._block_scalars: set[Path] = set()  # literal `|` blocks: text lines = file lines
        # Other scalars over several lines (folded, plain, quoted): their source text, since
        # folding and escapes break the line-for-line correspondence.
        self._spans: dict[Path, str] = {}

    def _indexed(self) -> Positions:
        if self._source is not None:  # a text that parsed once parses again, the same way
            text, bounds = self._source
            self._source = None
            _Builder(text, bounds, record=self).build(_compose(text), ())
        return self

    @property
    def values(self) -> dict[Path, Mark]:
        return self._indexed()._values

    @property
    def keys(self) -> dict[Path, Mark]:
        return self._indexed()._keys

    @property
    def block_scalars(self) -> set[Path]:
        return self._indexed()._block_scalars

    @property
    def spans(self) -> dict[Path, str]:
        return self._indexed()._spans

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


def decode(data: bytes, max_bytes: int = MAX_FILE_BYTES) -> str:
    if len(data) > max_bytes:
        raise YamlProblem(
            f"file is {len(data)} bytes, over the {describe_size(max_bytes)} bound",
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


def parse(data: bytes, bounds: Bounds = SPEC_BOUNDS) -> tuple[dict[str, Any], Positions]:
    """Parse one YAML mapping document safely, with positions; raise YamlProblem."""
    text = decode(data, bounds.file_bytes)
    root = _compose(text)
    if not isinstance(root, yaml.MappingNode):
        mark = root.start_mark
        raise YamlProblem("the document is not a mapping", line=mark.line + 1,
                          column=mark.column + 1, fix="write `key: value` pairs at the top level")
    return _Builder(text, bounds).build(root, ()), Positions(text, bounds)


def top_level_spans(text: str) -> dict[str, tuple[int, int]]:
    """Where each top-level `key: value` of a mapping document is written: the index of its
    key's first character and the index just past its value's last one (trailing comments
    and blank lines are not the value's). Raises YamlProblem as `parse` does; call it on a
    text `parse` accepted."""
    root = _compose(text)
    if not isinstance(root, yaml.MappingNode):
        raise YamlProblem("the document is not a mapping")
    return {k.value: (k.start_mark.index, _last_index(v)) for k, v in root.value
            if isinstance(k, yaml.ScalarNode)}


def _last_index(node: yaml.Node, depth: int = 0) -> int:
    """Just past the last character of `node`: a block collection's end mark lies past the
    comments after it, its last leaf's does not."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False) or not (
            node.value) or depth >= MAX_DEPTH:
        return int(node.end_mark.index)
    last = node.value[-1]
    return _last_index(last[1] if isinstance(node, yaml.MappingNode) else last, depth + 1)


def parse_any(data: bytes, bounds: Bounds = SPEC_BOUNDS) -> Any:
    """`parse` for a document of any shape (a list, a scalar); the value only."""
    text = decode(data, bounds.file_bytes)
    return _Builder(text, bounds).build(_compose(text), ())


def _compose(text: str) -> yaml.Node:
    """The node graph of the one document in `text`."""
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
    root: yaml.Node = nodes[0]
    return root


def alias_marks(text: str) -> dict[Path, Mark]:
    """Where each alias is written, by the key path it builds at (`_Builder`'s paths: the
    content of a `<<` merge builds at its mapping's path). Only called to place an error:
    the composed graph has no trace of aliases, so the events are read again."""
    marks: dict[Path, Mark] = {}
    # frames: [path, is_mapping, next key or index, expecting a key, merges into path]
    stack: list[list[Any]] = []
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            stack.pop()
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue  # stream and document events
        path: Path | None = ()
        if stack:
            frame = stack[-1]
            if frame[1] and frame[3]:  # a key
                frame[2] = event.value if isinstance(event, yaml.ScalarEvent) else None
                frame[3] = False
                if isinstance(event, yaml.CollectionStartEvent):
                    stack.append([None, isinstance(event, yaml.MappingStartEvent), 0, True,
                                  False])
                continue
            if frame[0] is None:
                path = None
            elif frame[4]:  # the sources of a `<<` merge build at the mapping's path
                path = frame[0]
            elif frame[1]:
                path = (*frame[0], frame[2]) if frame[2] != "<<" else frame[0]
            else:
                path = (*frame[0], frame[2])
                frame[2] += 1
            if frame[1]:
                frame[3] = True
        if isinstance(event, yaml.AliasEvent) and path is not None and event.start_mark:
            marks.setdefault(path, Mark(event.start_mark.line + 1, event.start_mark.column + 1))
        elif isinstance(event, yaml.CollectionStartEvent):
            merge = bool(stack) and stack[-1][1] and stack[-1][2] == "<<"
            stack.append([path, isinstance(event, yaml.MappingStartEvent), 0, True, merge])
    return marks


_SCALARS = yaml.constructor.SafeConstructor()


def _scalar(node: yaml.ScalarNode) -> Any:
    """A safe scalar's value, without the constructor's per-document bookkeeping."""
    if node.tag == _STR_TAG:
        return node.value
    return _SCALARS.yaml_constructors[node.tag](_SCALARS, node)


_DECIMAL_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
# YAML 1.2 core schema numbers that YAML 1.1 reads as text (an exponent without a sign or
# without a dot, an 0o octal).
_YAML12_NUMBER = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|0o[0-7]+")
_NUMBER_START = frozenset("0123456789+-.")


def number_to_yaml12(text: str) -> bool:
    """Whether YAML 1.2 readers take this plain text for a number, where YAML 1.1 (and
    aiops) read text: a file must quote it (`0E0`, `1e5`, `0o17`)."""
    return _YAML12_NUMBER.fullmatch(text) is not None


def _needs_text_check(node: yaml.ScalarNode) -> bool:
    """Whether a text may hold NUL, a surrogate, or a YAML 1.2 number (a cheap pre-test)."""
    text: str = node.value
    return "\x00" in text or not text.isascii() or (not node.style and text[:1] in _NUMBER_START)


class _Builder:
    """Turns a composed node graph into plain values; records positions into `record`."""

    def __init__(self, text: str, bounds: Bounds = SPEC_BOUNDS, *,
                 record: Positions | None = None) -> None:
        self.text = text
        self.bounds = bounds
        self.record = record
        self.count = 0
        self.chars = 0  # characters of keys and scalars built so far, aliases expanded
        self.active: set[int] = set()
        self.merging = 0  # depth of `<<` sources being built

    def _mark(self, node: yaml.Node) -> Mark:
        return Mark(node.start_mark.line + 1, node.start_mark.column + 1)

    def _fail(self, node: yaml.Node, message: str, fix: str, path: Path) -> YamlProblem:
        mark = self._mark(node)
        return YamlProblem(message, line=mark.line, column=mark.column, fix=fix, path=path)

    def _over(self, node: yaml.Node, path: Path, message: str) -> YamlProblem:
        """A size bound crossed at `path`: placed at the outermost alias whose expansion
        holds `path`, when there is one (the place to edit), else at the node."""
        marks = alias_marks(self.text)
        at = next((path[:end] for end in range(len(path) + 1) if path[:end] in marks), None)
        if at is None:
            return self._fail(node, message, "make the file smaller", path)
        mark = marks[at]
        return YamlProblem(message, line=mark.line, column=mark.column, path=at,
                           fix="write the value out instead of repeating a large alias")

    def _too_much_text(self, node: yaml.Node, path: Path) -> YamlProblem:
        return self._over(node, path, f"anchors and aliases expand to more than "
                          f"{self.bounds.expanded_chars:,} characters of text")

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > self.bounds.nodes:
            raise self._over(node, path, f"the file expands to more than {self.bounds.nodes:,} "
                             "values (each use of an alias counts)")
        if id(node) in self.active:
            raise self._fail(node, "an alias refers to itself", "remove the recursive alias", path)
        if len(path) > self.bounds.depth:
            raise self._fail(node, f"values are nested deeper than {self.bounds.depth} levels",
                             "flatten the structure", path[:3])
        record = self.record
        if record is not None:
            record._values.setdefault(path, self._mark(node))
        if isinstance(node, yaml.ScalarNode):
            text, tag = node.value, node.tag
            self.chars += len(text)
            if self.chars > self.bounds.expanded_chars:
                raise self._too_much_text(node, path)
            if tag == _TIMESTAMP_TAG:
                return text
            if tag not in _SAFE_SCALAR_TAGS:
                raise self._fail(node, f"tag {tag} is not allowed",
                                 "remove the `!tag`; only plain YAML values are read", path)
            if record is None:
                pass
            elif node.style == "|":
                record._block_scalars.add(path)
            elif node.end_mark.line > node.start_mark.line and tag == _STR_TAG:
                record._spans.setdefault(
                    path, self.text[node.start_mark.index:node.end_mark.index])
            if tag == _STR_TAG:  # most scalars: checked here, with the cheap tests first
                if self.bounds.storable and _needs_text_check(node):
                    self._check_text(node, text, path)
                # One object for the same short text in every file ("string", "user"): the
                # values of 10,000 files are a third of what a loaded project holds.
                return sys.intern(text) if len(text) <= _MAX_REMEMBERED else text
            if self.bounds.storable:
                self._check_number_form(node, path)
            try:
                value = _scalar(node)
            except (yaml.YAMLError, ValueError) as exc:
                raise self._fail(node, f"value cannot be read: {exc}", "quote it", path) from None
            if isinstance(value, float) and not math.isfinite(value):
                raise self._fail(node, f"{node.value} is not a finite number; JSON cannot hold it",
                                 "use a number, or quote it to make it text", path)
            if self.bounds.storable:
                self._check_storable(node, value, path)
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

    def _check_number_form(self, node: yaml.ScalarNode, path: Path) -> None:
        """Numbers are read as YAML 1.1 reads them; where YAML 1.2 (editors, schemas, other
        tools) or JSON would read the same text otherwise, the file is ambiguous: refused."""
        text = node.value
        if node.tag == _INT_TAG and not _DECIMAL_INT.fullmatch(text):
            raise self._fail(node, f"`{text}` is a YAML 1.1 number form (hexadecimal, octal, "
                             "binary, `_` or base 60) that YAML 1.2 and JSON read differently "
                             "or not at all", "write the number in decimal, or quote it to "
                             "make it text", path)
        if node.tag == _FLOAT_TAG and ("_" in text or ":" in text):
            raise self._fail(node, f"`{text}` is a YAML 1.1 number form (`_` or base 60) that "
                             "YAML 1.2 and JSON read differently", "write the number plainly, "
                             "or quote it to make it text", path)

    def _check_text(self, node: yaml.ScalarNode, text: str, path: Path) -> None:
        """A text (a value or a key) that `_needs_text_check` flagged: refused when it holds
        what the database cannot store, or when YAML 1.2 would read it as a number."""
        if "\x00" in text:
            raise self._fail(node, "text holds the character U+0000 (NUL), which "
                             "PostgreSQL cannot store", "remove the `\\0` escape", path)
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise self._fail(node, "text holds a lone surrogate (an unpaired "
                                 "`\\uD800`-`\\uDFFF` escape), which is not Unicode text",
                                 "write the character itself, or remove it", path) from None
        if not node.style and _YAML12_NUMBER.fullmatch(text):
            raise self._fail(node, f"`{text}` is text here (YAML 1.1) but a number to YAML 1.2 "
                             "readers", "quote it to keep it text, or write a number with a dot "
                             "and a signed exponent (1.5e+3)", path)

    def _check_storable(self, node: yaml.ScalarNode, value: Any, path: Path) -> None:
        """Refuse a number the database, JSON or a provider cannot take (see the module)."""
        if type(value) is float and abs(value) >= FLOAT_EXACT:
            raise self._fail(node, f"`{node.value}` is too large for a number with a fraction "
                             "or exponent: PostgreSQL reads it back as an integer, and the "
                             "file would never match the database",
                             "write it as an integer, or use a number below 1e16", path)
        elif type(value) is int and not INT64[0] <= value <= INT64[1]:
            raise self._fail(node, "integer is beyond 64 bits; databases, JSON readers and "
                             "providers cannot take it",
                             f"use a number between {INT64[0]} and {INT64[1]}, or quote it "
                             "to make it text", path)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        record = self.record
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
            tag = key_node.tag
            if tag in (_STR_TAG, _TIMESTAMP_TAG):
                key = key_node.value
            elif tag not in _SAFE_SCALAR_TAGS:
                raise self._fail(key_node, f"tag {tag} is not allowed",
                                 "remove the `!tag`; a key is plain text", path)
            else:
                try:
                    key = _scalar(key_node)
                except (yaml.YAMLError, ValueError) as exc:
                    raise self._fail(key_node, f"key cannot be read: {exc}", "quote it",
                                     path) from None
            if not isinstance(key, str):
                raise self._fail(key_node, f"key {shown(key_node.value)} is read as "
                                 f"{_JSON_KIND.get(type(key), 'a value')}, not text",
                                 f'quote it: "{key_node.value}"', path)
            key = sys.intern(key)  # the same keys recur in every file
            child = (*path, key)
            self.chars += len(key)
            if self.chars > self.bounds.expanded_chars:
                raise self._too_much_text(key_node, child)
            if self.bounds.storable and _needs_text_check(key_node):
                self._check_text(key_node, key, child)
            if key in out:
                first = next(k for k, _ in node.value if k.value == key_node.value)
                raise self._fail(key_node, f"duplicate key `{key}` (first at line "
                                 f"{self._mark(first).line})", "keep one of them", child)
            if record is None:
                pass
            elif self.merging:  # an explicit key, already placed, keeps its position
                record._keys.setdefault(child, self._mark(key_node))
            else:
                record._keys[child] = self._mark(key_node)
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
        if self.count > self.bounds.nodes:
            raise self._over(source, path, f"the file expands to more than "
                             f"{self.bounds.nodes:,} values (each use of an alias counts)")
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
