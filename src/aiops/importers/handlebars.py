"""Handlebars (the body of a Dotprompt file) -> Jinja, the template language of aiops.

`translate_handlebars` turns a body into chat messages: `{{role "x"}}` markers split it, and
each message's text becomes a Jinja template that renders the same text for the same input.
Handlebars' whitespace rules (standalone block lines, `~`) are applied while translating, so
the Jinja needs no whitespace control of its own. What has no faithful translation (partials,
media, history, sections, custom helpers, `this` at the top level) is reported with its line.

Values render as Handlebars renders them: `null` and a missing field are empty text (aiops
passes an absent input as None, which Jinja would print as `None`; a missing field would stop
the render), and a boolean is `true`/`false`. Where the input schema says a value can be
null or missing, the Jinja tests it first (`{{ x if x is not none else "" }}`); where it
cannot (a required, non-null field), the Jinja is the plain `{{ x }}`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiops.errors import Diagnostic

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# `x.items` in Jinja is dict.items (attributes first): such fields are written `x["items"]`.
_METHODS = {n for t in (dict, list, str) for n in dir(t) if not n.startswith("_")}
_JINJA_KEYWORDS = {"and", "or", "not", "in", "is", "if", "else", "true", "false", "none",
                   "True", "False", "None", "loop", "self", "for", "endfor", "block"}


class Problems:
    """Collects diagnostics about one source file; line numbers are the file's own."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[Diagnostic] = []

    def error(self, message: str, *, line: int | None = None, fix: str = "",
              code: str = "import-unsupported", path: str = "") -> None:
        self.items.append(Diagnostic(file=self.file, line=line, message=message, fix=fix,
                                     code=code, path=path))

    def warn(self, message: str, *, line: int | None = None, fix: str = "",
             code: str = "import-dropped", path: str = "") -> None:
        self.items.append(Diagnostic(file=self.file, line=line, message=message, fix=fix,
                                     code=code, path=path, severity="warning"))

    @property
    def failed(self) -> bool:
        return any(d.is_error for d in self.items)


# --- Handlebars (Dotprompt bodies) -> Jinja -------------------------------------------------


@dataclass(kw_only=True)
class _Tok:
    kind: str  # text expr raw open inverse close else partial decorator comment
    text: str
    line: int  # 1-based, within the body
    strip_left: bool = False
    strip_right: bool = False
    block: bool = False  # `{{#> partial}}`: a partial with a body and a closing tag


@dataclass(frozen=True, kw_only=True)
class _Role:
    role: str
    line: int


@dataclass(frozen=True, kw_only=True)
class _Ref:
    """A value as Jinja reads it, and the tests that must pass before it can be read.

    `guards` are (expression, Jinja test) pairs, outermost first: `user.address is defined`
    for a field that may be missing, `user.address is not none` for one that may be null.
    """

    expr: str
    schema: Any = None
    guards: tuple[tuple[str, str], ...] = ()
    prefixes: tuple[str, ...] = ()  # the expression and the ones it reads through

    def test(self, *, final: bool = True) -> str:
        """The guards as one Jinja condition ('' when none); `final=False` leaves out
        `x is not none` on the value itself (where None is falsy anyway)."""
        kept = [t for e, t in self.guards if final or not (e == self.expr and t.endswith(
            " is not none"))]
        return " and ".join(kept)


@dataclass(kw_only=True)
class _Scope:
    this: str | None  # the Jinja expression for `this`; None at the root (the whole input)
    schema: Any = None
    nullable: bool = False  # `this` may be None (a loop item whose schema admits null)
    loop: bool = False
    key: str | None = None
    aliases: dict[str, _Ref] = field(default_factory=dict)


@dataclass(kw_only=True)
class _Frame:
    helper: str
    kind: str  # if each with role
    line: int
    text: str = ""
    pushed: bool = False
    truthy: frozenset[str] = frozenset()  # expressions known not None inside the block


class _HbsError(Exception):
    def __init__(self, message: str, line: int, fix: str = "",
                 code: str = "import-unsupported") -> None:
        super().__init__(message)
        self.message, self.line, self.fix, self.code = message, line, fix, code


_STANDALONE = {"open", "inverse", "close", "else", "comment", "partial", "decorator"}
_ROLES = {"system": "system", "user": "user", "model": "assistant", "assistant": "assistant"}
_UNSUPPORTED = {
    "media": ("inserts an image, audio or video part; aiops prompts are text",
              "pass the URL as a text input, or keep this prompt in Genkit"),
    "history": ("inserts the conversation so far; an aiops function is one call",
                "pass earlier turns as an input and render them in the prompt"),
    "section": ("marks a named output section, which aiops does not have",
                "remove it; describe the expected output in the prompt instead"),
}
_TOKEN = re.compile(r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<lp>\()|(?P<rp>\))"""
                    r"""|(?P<bp>as\s+\|[^|]*\|)|(?P<hash>[A-Za-z_@][\w-]*)=|(?P<word>[^\s()=]+))""")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_LITERALS = {"true": "true", "false": "false", "null": "none", "undefined": "none"}


def _tokenize(body: str) -> list[_Tok]:
    """Alternating text and tag tokens (texts at even indexes, possibly empty)."""
    toks: list[_Tok] = []
    text: list[str] = []
    pos = 0

    def line_at(i: int) -> int:
        return body.count("\n", 0, i) + 1

    while True:
        i = body.find("{{", pos)
        if i < 0:
            text.append(body[pos:])
            break
        if i > 0 and body[i - 1] == "\\":  # \{{ is a literal {{
            text.append(body[pos:i - 1] + "{{")
            pos = i + 2
            continue
        text.append(body[pos:i])
        head = body[i:i + 6]
        if head.startswith(("{{!--", "{{~!--")):
            m = re.compile(r"--(~?)}}").search(body, i + 5)
            if not m:
                raise _HbsError("comment `{{!--` is never closed", line_at(i), "add `--}}`")
            tok = _Tok(kind="comment", text="", line=line_at(i), strip_left=head[2] == "~",
                       strip_right=bool(m[1]))
            end = m.end()
        elif head.startswith(("{{!", "{{~!")):
            close = body.find("}}", i)
            if close < 0:
                raise _HbsError("comment `{{!` is never closed", line_at(i), "add `}}`")
            tok = _Tok(kind="comment", text="", line=line_at(i), strip_left=head[2] == "~",
                       strip_right=body[close - 1] == "~")
            end = close + 2
        elif head.startswith(("{{{", "{{~{")):
            close = body.find("}}}", i)
            if close < 0:
                raise _HbsError("`{{{` is never closed", line_at(i), "add `}}}`")
            inner = body[i + 3:close]
            tok = _Tok(kind="raw", text=inner.strip("~{} \t\n"), line=line_at(i),
                       strip_left=head[2] == "~", strip_right=inner.endswith("~"))
            end = close + 3
        else:
            close = _find_close(body, i + 2)
            if close < 0:
                raise _HbsError("`{{` is never closed", line_at(i), "add `}}`")
            tok = _classify(body[i + 2:close], line_at(i))
            end = close + 2
        toks.append(_Tok(kind="text", text="".join(text), line=tok.line))
        text = []
        toks.append(tok)
        pos = end
    toks.append(_Tok(kind="text", text="".join(text), line=line_at(len(body))))
    return toks


def _find_close(body: str, i: int) -> int:
    quote = ""
    while i < len(body) - 1:
        ch = body[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif body.startswith("}}", i):
            return i
        i += 1
    return -1


def _classify(inner: str, line: int) -> _Tok:
    left, right = inner.startswith("~"), inner.endswith("~")
    text = inner[1 if left else 0:len(inner) - 1 if right else None].strip()
    block = text.startswith("#>")
    kind = "expr"
    for prefix, k in (("#>", "partial"), ("#*", "decorator"), ("#", "open"), ("^", "inverse"),
                      ("/", "close"), (">", "partial"), ("*", "decorator"), ("&", "raw")):
        if text.startswith(prefix):
            kind, text = k, text[len(prefix):].strip()
            break
    if kind == "inverse" and not text:
        kind = "else"
    if kind == "expr" and (text == "else" or text.startswith("else ")):
        kind, text = "else", text[4:].strip()
    return _Tok(kind=kind, text=text, line=line, strip_left=left, strip_right=right,
                block=block)


def _whitespace_control(toks: list[_Tok]) -> None:
    """Handlebars' standalone-line rule and `~` markers, applied to the text tokens.

    A block tag, `else`, comment or partial alone on its line takes the whole line with it
    (indentation and newline). Which tags stand alone is decided on the original text first,
    so that two such lines in a row both go.
    """
    last = len(toks) - 1
    head = [False] * len(toks)  # text loses its first line (up to and with the newline)
    tail = [False] * len(toks)  # text loses what follows its last newline
    for k in range(1, last, 2):
        if toks[k].kind not in _STANDALONE:
            continue
        before, after = toks[k - 1].text.rpartition("\n"), toks[k + 1].text.partition("\n")
        prev_ok = (before[1] or k == 1) and not before[2].strip(" \t")
        next_ok = (after[1] or k + 1 == last) and not after[0].strip(" \t")
        if prev_ok and next_ok:
            tail[k - 1] = head[k + 1] = True
    for k in range(0, len(toks), 2):
        text = toks[k].text
        start = text.find("\n") + 1 if head[k] and "\n" in text else (
            len(text) if head[k] else 0)
        end = text.rfind("\n") + 1 if tail[k] else len(text)
        toks[k].text = text[start:end] if start <= end else ""
    for k in range(1, last, 2):
        if toks[k].strip_left:
            toks[k - 1].text = toks[k - 1].text.rstrip()
        if toks[k].strip_right:
            toks[k + 1].text = toks[k + 1].text.lstrip()


def _escape_text(text: str) -> str:
    """Literal text that Jinja must not read as a tag."""
    return re.sub(r"\{(?=[{%#]|$)", "{{ '{' }}", text)


class _Translator:
    """One pass over the tokens with a stack of open blocks and a stack of contexts."""

    def __init__(self, schema: Any, body_line: int, problems: Problems) -> None:
        self.root_schema = schema if isinstance(schema, dict) else {}
        self.body_line = body_line
        self.problems = problems
        self.scopes = [_Scope(this=None, schema=self.root_schema)]
        self.frames: list[_Frame] = []
        self.out: list[str | _Role] = []
        self.roots: dict[str, int] = {}  # root variable -> file line of first use
        self.line = 0
        self.loop_names: set[str] = set()

    def fail(self, message: str, tok_line: int, fix: str = "",
             code: str = "import-unsupported") -> None:
        self.problems.error(message, line=self.body_line + tok_line - 1, fix=fix, code=code)

    def run(self, toks: list[_Tok]) -> None:
        for tok in toks:
            self.line = self.body_line + tok.line - 1
            try:
                self.step(tok)
            except _HbsError as exc:
                self.fail(exc.message, exc.line, exc.fix, exc.code)
        for frame in reversed(self.frames):
            self.problems.error(f"`{{{{#{frame.text}}}}}` is never closed",
                                line=self.body_line + frame.line - 1, code="import-syntax",
                                fix=f"add `{{{{/{frame.helper}}}}}` where the block ends")

    def step(self, tok: _Tok) -> None:
        kind = tok.kind
        if kind == "text":
            self.out.append(_escape_text(tok.text))
        elif kind == "comment":
            return
        elif kind in ("expr", "raw"):
            self.mustache(tok)
        elif kind == "open":
            depth = len(self.frames)
            try:
                self.open_block(tok)
            finally:  # a block that failed still pairs with its closing tag
                if len(self.frames) == depth:
                    head = tok.text.split()[0] if tok.text.split() else tok.text
                    self.frames.append(_Frame(helper=head, kind="if", line=tok.line,
                                              text=tok.text))
        elif kind == "inverse":
            self.inverse(tok)
        elif kind == "else":
            self.else_block(tok)
        elif kind == "close":
            self.close_block(tok)
        elif kind == "partial":
            if tok.block:
                self.frames.append(_Frame(helper=tok.text.split()[0], kind="if", line=tok.line,
                                          text=f"> {tok.text}"))
            raise _HbsError(f"partial `{{{{> {tok.text}}}}}` is not supported: its text lives "
                            "in another file", tok.line, "paste the partial's text in its place")
        else:
            raise _HbsError(f"decorator `{{{{* {tok.text}}}}}` is not supported", tok.line)

    # expressions -------------------------------------------------------------------------

    def known(self) -> set[str]:
        """Expressions that the enclosing `{{#if}}`/`{{#with}}` blocks show are not None."""
        return set().union(*(f.truthy for f in self.frames))

    def ref(self, item: tuple[str, Any], line: int) -> _Ref:
        kind, v = item
        if kind == "str":
            return _Ref(expr=json.dumps(v, ensure_ascii=False), schema={"type": "string"})
        if kind == "lit":
            literal = {"true": "boolean", "false": "boolean", "none": "null"}.get(v, "number")
            return _Ref(expr=str(v), schema={"type": literal})
        if kind == "sub":
            return self.call(v, line)
        return self.path(v, line)

    def value(self, item: tuple[str, Any], line: int) -> str:
        return self.ref(item, line).expr

    def call(self, items: list[tuple[str, Any]], line: int) -> _Ref:
        """A helper call that has a Jinja expression: only `lookup`."""
        name = str(items[0][1])
        args = items[1:]
        if name == "lookup" and len(args) == 2:
            base = self.ref(args[0], line)
            expr = f"{base.expr}[{self.value(args[1], line)}]"
            return _Ref(expr=expr, guards=(*base.guards, (expr, f"{expr} is defined"),
                                           (expr, f"{expr} is not none")),
                        prefixes=(*base.prefixes, expr))
        raise _HbsError(f"helper `{name}` is not a Dotprompt built-in and has no aiops "
                        "equivalent", line, "rewrite this part of the template without it")

    def path(self, text: str, line: int) -> _Ref:
        if text.startswith("@"):
            return self.data_var(text[1:], line)
        ups = 0
        while text.startswith("../"):
            ups, text = ups + 1, text[3:]
        if ups >= len(self.scopes):
            raise _HbsError(f"`../` in `{text}` goes above the input", line)
        scope = self.scopes[-1 - ups]
        parts = [p for p in re.split(r"[./]", text) if p] if text not in ("this", ".") else []
        if parts and parts[0] == "this":
            parts = parts[1:]
        elif parts and ups == 0:
            for outer in reversed(self.scopes):
                if parts[0] in outer.aliases:
                    return self._chain(outer.aliases[parts[0]], parts[1:])
        if scope.this is None:
            if not parts:
                raise _HbsError("`this` at the top level is the whole input, which aiops "
                                "templates cannot name", line,
                                "name the inputs one by one instead")
            return self._root(parts, line)
        return self._chain(_item(scope.this, scope.schema, scope.nullable), parts)

    def _root(self, parts: list[str], line: int) -> _Ref:
        name = parts[0].strip("[]")
        if not _IDENT.match(name) or name in _JINJA_KEYWORDS:
            raise _HbsError(f"input `{name}` cannot be a Jinja variable name", line,
                            "rename it to letters, digits and underscores")
        self.roots.setdefault(name, self.line)
        # An input the call leaves out reaches the template as None, like a null one.
        schema, filled = _field(self.root_schema, name)
        return self._chain(_item(name, schema, not filled or _admits_null(schema)), parts[1:])

    def _chain(self, base: _Ref, parts: list[str]) -> _Ref:
        """`base.a.b`, with a guard for each step that may be missing or null."""
        expr, schema = base.expr, base.schema
        guards, prefixes = list(base.guards), list(base.prefixes)
        for i, part in enumerate(parts):
            part = part.strip("[]")
            if part == "length" and i == len(parts) - 1:
                expr, schema = f"{expr} | length", {"type": "integer"}
                break
            dotted = _IDENT.match(part) and part not in _METHODS
            key = json.dumps(part, ensure_ascii=False)
            parent, expr = expr, expr + (f".{part}" if dotted else f"[{key}]")
            schema, present = _field(schema, part)
            if not present:  # `x["items"]` falls back to the dict method: ask for the key
                guards.append((expr, f"{expr} is defined" if dotted or part not in _METHODS
                               else f"{key} in {parent}"))
            if _admits_null(schema):
                guards.append((expr, f"{expr} is not none"))
            prefixes.append(expr)
        known = self.known()
        return _Ref(expr=expr, schema=schema, guards=tuple(g for g in guards if g[0] not in known),
                    prefixes=tuple(prefixes))

    def data_var(self, name: str, line: int) -> _Ref:
        if name == "root" or name.startswith("root."):
            parts = [p for p in name.split(".")[1:] if p]
            if not parts:
                raise _HbsError("`@root` alone is the whole input, which aiops templates "
                                "cannot name", line)
            return self._root(parts, line)
        loops = [s for s in self.scopes if s.loop]
        if not loops:
            raise _HbsError(f"`@{name}` is used outside `{{{{#each}}}}`", line)
        scope = loops[-1]
        if name == "index":
            return _Ref(expr="loop.index0", schema={"type": "integer"})
        if name in ("first", "last"):
            return _Ref(expr=f"loop.{name}", schema={"type": "boolean"})
        if name == "key":
            return _Ref(expr=scope.key or "loop.index0",
                        schema={"type": "string" if scope.key else "integer"})
        raise _HbsError(f"data variable `@{name}` is not supported", line)

    def emit(self, ref: _Ref) -> None:
        """`{{ value }}` as Handlebars prints it: null or missing is empty, a boolean is
        `true`/`false`."""
        if ref.expr == "none":
            return
        expr = f"{ref.expr} | lower" if _is_boolean(ref.schema) else ref.expr
        test = ref.test()
        self.out.append(f'{{{{ {expr} if {test} else "" }}}}' if test else f"{{{{ {expr} }}}}")

    def condition(self, ref: _Ref) -> str:
        """`{{#if value}}`: false, not an error, when the value is missing."""
        test = ref.test(final=False)
        return f"{test} and {ref.expr}" if test else ref.expr

    # tags --------------------------------------------------------------------------------

    def mustache(self, tok: _Tok) -> None:
        items, hash_, _ = _parse_expr(tok.text, tok.line)
        head_kind, head = items[0]
        if head_kind == "path" and head in _UNSUPPORTED:
            why, fix = _UNSUPPORTED[head]
            raise _HbsError(f"`{{{{{tok.text}}}}}`: the `{head}` helper {why}", tok.line, fix)
        if head_kind == "path" and head == "role":
            self.role(items, tok.line)
        elif head_kind == "path" and head == "json":
            if len(items) != 2:
                raise _HbsError("`json` takes one value", tok.line)
            indent = hash_.get("indent")
            arg = f"(indent={indent[1]})" if indent else ""
            ref = self.ref(items[1], tok.line)
            test, expr = ref.test(final=False), f"{ref.expr} | tojson{arg}"
            self.out.append(f'{{{{ {expr} if {test} else "" }}}}' if test
                            else f"{{{{ {expr} }}}}")
        elif head_kind == "path" and head == "log":
            self.problems.warn("`{{log}}` writes to the console and renders nothing; dropped",
                               line=self.body_line + tok.line - 1)
        elif len(items) > 1 or hash_:
            if hash_:
                raise _HbsError(f"`{{{{{tok.text}}}}}`: helper `{head}` is not a Dotprompt "
                                "built-in and has no aiops equivalent", tok.line,
                                "rewrite this part of the template without it")
            self.emit(self.call(items, tok.line))
        else:
            self.emit(self.ref(items[0], tok.line))

    def role(self, items: list[tuple[str, Any]], line: int) -> None:
        if len(items) != 2 or items[1][0] != "str":
            raise _HbsError('`role` takes one quoted role name, e.g. {{role "system"}}', line)
        name = items[1][1]
        if name not in _ROLES:
            raise _HbsError(f"role `{name}` has no aiops equivalent (system, user, model)", line)
        if any(f.kind != "role" for f in self.frames):
            raise _HbsError(f"role `{name}` is switched inside `{{{{#{self.frames[-1].helper}}}}}`"
                            "; aiops messages are fixed, not chosen at render time", line,
                            "move the role marker out of the block")
        self.out.append(_Role(role=_ROLES[name], line=line))

    def inverse(self, tok: _Tok) -> None:
        """`{{^x}}...{{/x}}`: renders when `x` is falsy or missing."""
        frame = _Frame(helper=tok.text.split()[0], kind="if", line=tok.line,
                       text=f"^{tok.text}")
        self.frames.append(frame)
        items, _, _ = _parse_expr(tok.text, tok.line)
        ref = self.ref(items[0], tok.line)
        cond = self.condition(ref)
        self.out.append(f"{{% if not ({cond}) %}}" if ref.guards else f"{{% if not {cond} %}}")

    def open_block(self, tok: _Tok) -> None:
        items, hash_, params = _parse_expr(tok.text, tok.line)
        head_kind, head = items[0]
        args = items[1:]
        if head_kind != "path":
            raise _HbsError(f"`{{{{#{tok.text}}}}}` does not name a helper", tok.line)
        if head in _UNSUPPORTED:
            why, fix = _UNSUPPORTED[head]
            raise _HbsError(f"`{{{{#{tok.text}}}}}`: the `{head}` helper {why}", tok.line, fix)
        if head == "role":
            self.role(items, tok.line)
            self.frames.append(_Frame(helper="role", kind="role", line=tok.line,
                                      text=tok.text))
            return
        if head in ("if", "unless", "ifEquals", "unlessEquals"):
            want = 2 if head.endswith("Equals") else 1
            if len(args) != want or hash_:
                raise _HbsError(f"`{{{{#{head}}}}}` takes {want} value(s)", tok.line)
            refs = [self.ref(a, tok.line) for a in args]
            truthy: frozenset[str] = frozenset()
            if head == "if":
                cond, truthy = self.condition(refs[0]), frozenset(refs[0].prefixes)
            elif head == "unless":
                cond = self.condition(refs[0])
                cond = f"not ({cond})" if refs[0].guards else f"not ({refs[0].expr})"
            else:  # a missing value equals nothing
                test = " and ".join(t for t in (r.test(final=False) for r in refs) if t)
                equal = f"{refs[0].expr} == {refs[1].expr}"
                if not test:
                    cond = equal if head == "ifEquals" else f"{refs[0].expr} != {refs[1].expr}"
                else:
                    cond = f"{test} and {equal}"
                    cond = cond if head == "ifEquals" else f"not ({cond})"
            self.frames.append(_Frame(helper=head, kind="if", line=tok.line, text=tok.text,
                                      truthy=truthy))
            self.out.append(f"{{% if {cond} %}}")
            return
        if head in ("each", "with") and len(args) == 1 and not hash_:
            self.context_block(head, self.ref(args[0], tok.line), args[0][1], params, tok.line)
            return
        if not args and not hash_:  # a mustache section: a list loops, anything else is `with`
            ref = self.ref(items[0], tok.line)
            kind = "each" if _json_type(ref.schema) == "array" else "with"
            self.context_block(kind, ref, head, params, tok.line, helper=head)
            return
        raise _HbsError(f"block helper `{head}` is not a Dotprompt built-in and has no aiops "
                        "equivalent", tok.line, "rewrite this part of the template without it")

    def context_block(self, kind: str, target: _Ref, text: Any, params: list[str], line: int,
                      helper: str | None = None) -> None:
        schema = target.schema
        frame = _Frame(helper=helper or kind, kind=kind, line=line, pushed=True,
                       text=f"{helper or kind} {text}")
        if kind == "with":
            scope = _Scope(this=target.expr, schema=schema)
            if params:
                scope.aliases[params[0]] = _item(target.expr, schema, False)
            frame.truthy = frozenset(target.prefixes)
            self.out.append(f"{{% if {self.condition(target)} %}}")
        else:
            var = self.loop_var(params[0] if params else str(text))
            is_map = _json_type(schema) == "object"
            item_schema = (schema.get("additionalProperties") if is_map else schema.get("items")
                           ) if isinstance(schema, dict) else None
            key = f"{var}_key" if is_map else None
            scope = _Scope(this=var, schema=item_schema, nullable=_admits_null(item_schema),
                           loop=True, key=key)
            if len(params) > 1:
                scope.aliases[params[1]] = _Ref(expr=key or "loop.index0",
                                                schema={"type": "string" if key else "integer"})
            if params:
                scope.aliases[params[0]] = _item(var, item_schema, scope.nullable)
            test = target.test()  # a null or missing collection loops over nothing
            seq = f"({target.expr} if {test} else {'{}' if is_map else '[]'})" if test \
                else target.expr
            loop = f"{key}, {var} in {seq}.items()" if is_map else f"{var} in {seq}"
            self.out.append(f"{{% for {loop} %}}")
        self.scopes.append(scope)
        self.frames.append(frame)

    def loop_var(self, hint: str) -> str:
        word = re.sub(r"\W", "", hint.split(".")[-1].split("/")[-1]) or "item"
        base = word[:-1] if word.endswith("s") and len(word) > 2 else "item"
        props = self.root_schema.get("properties")
        taken = set(props) if isinstance(props, dict) else set()
        taken |= self.loop_names | _JINJA_KEYWORDS
        name, n = base, 2
        while name in taken or not _IDENT.match(name):
            name, n = f"{base}{n}", n + 1
        self.loop_names.add(name)
        return name

    def else_block(self, tok: _Tok) -> None:
        if not self.frames or self.frames[-1].kind == "role":
            raise _HbsError("`{{else}}` outside a block", tok.line, code="import-syntax")
        frame = self.frames[-1]
        frame.truthy = frozenset()
        if frame.kind == "if" and tok.text.startswith("if "):
            items, _, _ = _parse_expr(tok.text[3:], tok.line)
            ref = self.ref(items[0], tok.line)
            frame.truthy = frozenset(ref.prefixes)
            self.out.append(f"{{% elif {self.condition(ref)} %}}")
            return
        if tok.text:
            raise _HbsError(f"`{{{{else {tok.text}}}}}` is not supported", tok.line,
                            "use {{else if ...}} or nested blocks")
        if frame.pushed:  # the inverse runs in the outer context
            self.scopes.pop()
            frame.pushed = False
        self.out.append("{% else %}")

    def close_block(self, tok: _Tok) -> None:
        if not self.frames:
            raise _HbsError(f"`{{{{/{tok.text}}}}}` closes no open block", tok.line,
                            "remove it or add the opening tag", code="import-syntax")
        frame = self.frames.pop()  # popped even when mismatched: one error, not two
        if frame.pushed:
            self.scopes.pop()
        if tok.text != frame.helper:
            raise _HbsError(f"`{{{{/{tok.text}}}}}` does not close `{{{{#{frame.text}}}}}` "
                            f"(opened at line {self.body_line + frame.line - 1})", tok.line,
                            f"close it with `{{{{/{frame.helper}}}}}`", code="import-syntax")
        if frame.kind == "each":
            self.out.append("{% endfor %}")
        elif frame.kind != "role":
            self.out.append("{% endif %}")


def _item(expr: str, schema: Any, nullable: bool) -> _Ref:
    """A value read by name (an input, a loop item): guarded when it may be None."""
    return _Ref(expr=expr, schema=schema,
                guards=((expr, f"{expr} is not none"),) if nullable else (), prefixes=(expr,))


def _json_type(schema: Any) -> Any:
    return schema.get("type") if isinstance(schema, dict) else None


def _field(schema: Any, name: str) -> tuple[Any, bool]:
    """The subschema of field `name`, and whether the field is always there (required, or
    filled by its default)."""
    if not isinstance(schema, dict):
        return None, False
    props = schema.get("properties")
    sub = props.get(name) if isinstance(props, dict) else None
    if sub is None:
        extra = schema.get("additionalProperties")
        return (extra if isinstance(extra, dict) else None), False
    required = schema.get("required")
    return sub, ((isinstance(required, list) and name in required)
                 or (isinstance(sub, dict) and sub.get("default") is not None))


def _admits_null(schema: Any) -> bool:
    """Whether a value valid against `schema` can be null (an unknown schema: yes)."""
    if not isinstance(schema, dict):
        return True
    if "const" in schema:
        return schema["const"] is None
    if isinstance(schema.get("enum"), list):
        return None in schema["enum"]
    kind = schema.get("type")
    if isinstance(kind, str):
        return kind == "null"
    if isinstance(kind, list):
        return "null" in kind
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            return any(_admits_null(s) for s in schema[key])
    if isinstance(schema.get("allOf"), list):
        return all(_admits_null(s) for s in schema["allOf"])
    return True


def _is_boolean(schema: Any) -> bool:
    kind = _json_type(schema)
    kinds = set(kind) if isinstance(kind, list) else {kind}
    return "boolean" in kinds and kinds <= {"boolean", "null"}


def _parse_expr(text: str, line: int) -> tuple[list[tuple[str, Any]], dict[str, Any], list[str]]:
    """`helper a "b" (sub x) k=v as |x i|` -> (items, hash, block params)."""
    pos = 0
    stack: list[list[tuple[str, Any]]] = [[]]
    hash_: dict[str, Any] = {}
    params: list[str] = []
    pending: str | None = None
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if not text[pos:].strip():
                break
            raise _HbsError(f"cannot read `{text}`", line, code="import-syntax")
        pos = m.end()
        if m["hash"]:
            pending = m["hash"]
            continue
        if m["bp"]:
            params = m["bp"].split("|")[1].split()
            continue
        if m["lp"]:
            stack.append([])
            continue
        if m["rp"]:
            if len(stack) < 2 or not stack[-1]:
                raise _HbsError(f"unbalanced `)` in `{text}`", line, code="import-syntax")
            item: tuple[str, Any] = ("sub", stack.pop())
        elif m["str"]:
            item = ("str", json.loads('"' + m["str"][1:-1].replace('"', '\\"') + '"')
                    if m["str"][0] == "'" else json.loads(m["str"]))
        elif _NUMBER.match(m["word"]):
            item = ("lit", m["word"])
        elif m["word"] in _LITERALS:
            item = ("lit", _LITERALS[m["word"]])
        else:
            item = ("path", m["word"])
        if pending is not None:
            if len(stack) > 1:
                raise _HbsError(f"`{pending}=` inside ( ) is not supported", line)
            hash_[pending] = item
            pending = None
        else:
            stack[-1].append(item)
    if len(stack) != 1 or not stack[0]:
        raise _HbsError(f"cannot read `{{{{{text}}}}}`", line, code="import-syntax")
    return stack[0], hash_, params


def translate_handlebars(body: str, *, body_line: int = 1, input_schema: Any = None,
                         problems: Problems) -> tuple[list[tuple[str, str, int]], dict[str, int]]:
    """A Dotprompt body -> ([(role, Jinja content, file line)], root variables used)."""
    try:
        toks = _tokenize(body)
    except _HbsError as exc:
        problems.error(exc.message, line=body_line + exc.line - 1, fix=exc.fix,
                       code="import-syntax")
        return [], {}
    _whitespace_control(toks)
    tr = _Translator(input_schema, body_line, problems)
    tr.run(toks)
    messages: list[tuple[str, str, int]] = []
    role, line, buf = "user", body_line, []
    for chunk in [*tr.out, _Role(role="", line=0)]:
        if isinstance(chunk, str):
            buf.append(chunk)
            continue
        content = tidy("".join(buf))
        if content:
            messages.append((role, content, line))
        role, line, buf = chunk.role, body_line + chunk.line - 1, []
    return messages, tr.roots


def tidy(content: str) -> str:
    """Surrounding blank lines and line-end spaces go: they do not reach a model's meaning."""
    return "\n".join(line.rstrip() for line in content.strip().split("\n"))


__all__ = ["Problems", "tidy", "translate_handlebars"]
