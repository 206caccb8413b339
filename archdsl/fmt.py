"""`archdsl fmt`: one canonical layout for .arch files, in the spirit of gofmt.

The formatter works on tokens and keeps the author's lines: statements the author put on
one line stay on one line, comments stay where they are. What it makes canonical:

- spacing: one space between arguments, none around `=` and `,`-less glue (`s=2`,
  `name<`, `arch a(c=1, d)`), `; ` between statements, ` | ` between branches, a space inside
  `{ … }` and `< … >`;
- expressions: spaces separate a statement's arguments, so an operator at an argument's top
  level is glued to its operands (`conv c*4 k3 s=s//2`, `p=(k - 1)//2`, `pair c first+2*j`);
  everywhere else, inside parentheses (calls, conditionals, groups), in a `def`'s body and in a
  `repeat` count, binary operators and comparisons have a space on each side
  (`def f(v, d=8) = max(d, floor(v / d) * d)`, `repeat n - 1 { … }`); a unary minus stays
  against its operand (`s=-1`, `max(c, -1)`);
- separators: a `;` at the start or end of a line, or doubled, goes (the new line separates);
- indentation: two spaces per open `{` or `<`; a line starting with `}`, `>` or `|` one
  level less; the lines of a parameter list broken after `(` text line up after the `(`;
- blank lines: at most one in a row, none at the start or end of the file or just inside a
  bracket;
- trailing comments: each run of consecutive lines with trailing comments is aligned to the
  column of the run's first comment; a line whose code reaches that column keeps its comment
  where it was, or two spaces after the code when the code now reaches that far.

A file that does not parse is not formatted (its syntax errors are reported), and a layout
is only handed back when it parses to the same tree as the original (a safety net, like
black's AST check). Formatting is idempotent: format(format(x)) == format(x).

The command, which reads and rewrites files, is archdsl/cli/fmt.py (`archdsl fmt`, or
`python -m archdsl fmt`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .diagnostics import Diagnostic
from .vocabulary import expression_keywords, keywords

__all__ = ["FormatError", "format_text", "tokens"]

# The grammar's terminals (grammars/archdsl.lark), plus what it ignores or folds into _SEP.
_TOKEN = re.compile(r"""
    (?P<comment>\#[^\n]*)
  | (?P<newline>\n)
  | (?P<space>[ \t\f]+)
  | (?P<shape>[0-9]+(?:x[0-9]+)+(?![A-Za-z0-9_.]))
  | (?P<float>(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)
  | (?P<int>[0-9]+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>//|->|<=|>=|==|!=|[-+*/%=,;(){}<>|])
""", re.VERBOSE)

_BINARY = {"+", "-", "*", "/", "//", "%"}
_COMPARISONS = {"<", "<=", ">", ">=", "==", "!="}  # `<` and `>` compare inside parentheses only
_OPENERS = {"{", "<", "("}
_CLOSERS = {"}", ">", ")"}
MIN_COMMENT_GAP = 2


class FormatError(Exception):
    """A spec that cannot be formatted: it does not parse (diagnostics say where)."""

    def __init__(self, diagnostics: list[Diagnostic], message: str | None = None):
        self.diagnostics = list(diagnostics)
        super().__init__(message or (self.diagnostics[0].message if self.diagnostics
                                     else "the spec cannot be formatted"))


class _Func(str):
    """A name written against its `(`: a call such as `max(8, c)` stays glued (`conv c (x)`,
    with the space, is two values, and stays spaced)."""


@dataclass
class _Line:
    """One source line: its code tokens, its trailing comment, and where that comment was."""

    tokens: list[str] = field(default_factory=list)
    comment: str | None = None
    comment_column: int = 0  # in the original line
    indent: int = 0
    code: str = ""


# ----------------------------------------------------------------------------- the API


def tokens(text: str):
    """(kind, text, offset) of every token of `text`, comments, spaces and new lines
    included; kind is comment, newline, space, shape, float, int, name or op (also used by
    the language server's colouring)."""
    for match in _TOKEN.finditer(text):
        yield match.lastgroup, match.group(), match.start()


def format_text(text: str, file: str = "<string>") -> str:
    """The canonical layout of spec `text`; FormatError when it has syntax errors."""
    from .syntax import normalise_source, parse

    source = normalise_source(text)
    spec, diagnostics = parse(text, file)  # it normalises too: a second BOM is an error there
    syntax = [d for d in diagnostics if d.code in ("E-SYNTAX", "E-NESTING")]
    if syntax:
        raise FormatError(syntax)
    lines = _lines(source)
    _strip_separators(lines)
    _layout(lines)
    out = _render(_drop_blank_lines(lines))
    if _tree(out) != _tree(source):  # the safety net: never change what a spec means
        raise FormatError([], f"{file}: the formatted text would not mean the same; this is a "
                              "bug in archdsl fmt, please report it with the spec")
    return out


def _tree(text: str):
    """The parse tree without positions: what the text means to the grammar."""
    from .syntax import _parser

    def plain(node):
        if hasattr(node, "data"):
            return (str(node.data), tuple(plain(c) for c in node.children))
        return (node.type, str(node))

    return plain(_parser().parse(text))


# ----------------------------------------------------------------------------- layout


def _lines(source: str) -> list[_Line]:
    lines, current = [], _Line()
    for match in _TOKEN.finditer(source):
        kind, value = match.lastgroup, match.group()
        if kind == "newline":
            lines.append(current)
            current = _Line()
        elif kind == "comment":
            start = source.rfind("\n", 0, match.start()) + 1
            current.comment, current.comment_column = value.rstrip(), match.start() - start
        # a keyword is never a function's name, even written against a `(` (`if(c)`)
        elif kind == "name" and source.startswith("(", match.end()) and value not in keywords():
            current.tokens.append(_Func(value))
        elif kind != "space":
            current.tokens.append(value)
    lines.append(current)
    return lines


def _strip_separators(lines: list[_Line]) -> None:
    """`;` at the start or end of a line, or doubled, goes: the new line separates."""
    for line in lines:
        kept: list[str] = []
        for tok in line.tokens:
            if tok == ";" and (not kept or kept[-1] == ";"):
                continue
            kept.append(tok)
        while kept and kept[-1] == ";":
            kept.pop()
        line.tokens = kept


def _layout(lines: list[_Line]) -> None:
    """Each line's canonical code and indentation (in spaces). Inside `{ … }` and `< … >`
    two spaces per level; inside a `(` followed by text on its line, continuation lines line
    up after the `(` (otherwise two spaces); a line starting with a closer or `|` goes back
    one level."""
    stack: list[int] = []  # per open bracket: the indentation of the lines inside it
    where = _Where()  # carried from line to line: open `(`, the statement, its expression
    for line in lines:
        first = line.tokens[0] if line.tokens else None
        back = (first in _CLOSERS or first == "|") and not (where.parens and first == ">")
        if back and stack:
            line.indent = stack[-2] if len(stack) > 1 else 0
        else:
            line.indent = stack[-1] if stack else 0
        line.code, starts, brackets = _join(line.tokens, where)
        for i, tok in enumerate(line.tokens):
            if tok in _OPENERS and brackets[i]:
                outer = stack[-1] if stack else 0
                aligned = tok == "(" and i + 1 < len(line.tokens)
                stack.append(line.indent + starts[i] + 1 if aligned else outer + 2)
            elif tok in _CLOSERS and brackets[i] and stack:
                stack.pop()
        where.end_line()


@dataclass
class _Where:
    """Where a token stands: inside how many `(`, in which statement, and whether in an
    expression whose operators are spaced. A binary operator is spaced (`a + b`) inside
    parentheses, in a `def`'s body and in a `repeat` count: there nothing else is separated
    by spaces. Elsewhere it stands in a statement's arguments, which spaces separate, and is
    glued to its operands (`conv c*4 k3 s=s//2`)."""

    parens: int = 0  # open `(`: inside them `<` and `>` compare
    statement: str | None = None  # the statement's first word; None before it
    expression: bool = False  # in a def's body, a repeat's count or tensor arithmetic
    words: int = 0  # tokens of the statement so far (outside parentheses)

    def operator_next(self, tok: str) -> bool:
        """Whether `tok` is an operator that makes the statement tensor arithmetic: first in
        it (`* 1.7015`, `(a + b) * 0.5`) or right after its first word (`y - x`)."""
        return tok in _BINARY and not self.parens and (
            self.statement is None or self.words == 1 and self.statement not in ("repeat", "def"))

    @property
    def spaced(self) -> bool:
        return self.parens > 0 or self.expression

    def step(self, tok: str) -> None:
        """Move past `tok`."""
        if tok == "(":
            self.parens += 1
        elif tok == ")" and self.parens:
            self.parens -= 1
            if not self.parens and self.statement is not None:
                self.words += 1  # `conv (c*2)//g`: a parenthesised argument is a word
        elif self.parens:
            return
        elif tok in (";", "{", "}", "<", ">", "|"):
            self.statement, self.expression, self.words = None, False, 0
        elif self.statement is None:
            self.statement, self.words = tok, 1
            self.expression = tok == "repeat" or tok in _BINARY or tok[0].isdigit() or \
                tok[0] == "."  # `repeat n`, `* 1.7015`, `2 * x`
        elif tok in _BINARY and self.words == 1 and self.statement not in ("repeat", "def"):
            self.expression, self.words = True, 2  # `y - x`
        else:
            self.words += 1
            self._keywords(tok)

    def _keywords(self, tok: str) -> None:
        if tok == "as" and self.statement == "repeat":
            self.expression = False
        elif tok == "=" and self.statement == "def":
            self.expression = True

    def end_line(self) -> None:
        if not self.parens:  # a new line ends the statement
            self.statement, self.expression, self.words = None, False, 0


def _join(tokens: list[str], where: _Where | None = None) -> tuple[str, list[int], list[bool]]:
    """One line's tokens with canonical spacing, where each token starts, and whether each is
    a bracket (`<` and `>` inside parentheses compare); `where` says where the line starts
    and is moved past it."""
    where = _Where() if where is None else where
    out: list[str] = []
    starts: list[int] = []
    brackets: list[bool] = []
    width = 0
    for i, tok in enumerate(tokens):
        prev = tokens[i - 1] if i else None
        before = tokens[i - 2] if i > 1 else None
        if prev is not None and _spaced(prev, tok, before, where):
            out.append(" ")
            width += 1
        starts.append(width)
        brackets.append(not (where.parens and tok in ("<", ">")))
        out.append(tok)
        width += len(tok)
        where.step(tok)
    return "".join(out), starts, brackets


def _is_param_list(prev: str | None, before: str | None) -> bool:
    return before in ("arch", "block", "def") and prev is not None and _is_word(prev)


def _is_word(tok: str) -> bool:
    return tok[0].isalnum() or tok[0] in "_."


def _unary(tok: str, prev: str | None, in_parens: bool = False) -> bool:
    """Whether `tok` is a minus that starts a value (after `=` or `(`; inside parentheses also
    after `,`, a comparison, `if` or `else`)."""
    return tok == "-" and (prev in ("=", "(") or in_parens and (
        prev == "," or prev in _COMPARISONS or prev in _BINARY or
        prev in expression_keywords()))


def _spaced(prev: str, tok: str, before: str | None, where: _Where) -> bool:
    """Whether a space goes between `prev` and `tok` (`before` precedes `prev`; `where` is
    where `tok` stands); inside parentheses `<` and `>` are comparisons, spaced like `<=`."""
    in_parens = where.parens > 0
    if tok == "=" and prev == ")" or prev == "=" and before == ")":
        return True  # `def f(x) = …`
    if in_parens and (prev in _COMPARISONS or tok in _COMPARISONS):
        return True
    if tok == "(" and isinstance(prev, _Func):
        return False
    if tok == "-" and prev in expression_keywords() and in_parens:
        return True
    if tok in (";", ",", ")") or prev in ("(", "=") or tok == "=":
        return False
    if prev in (";", ",", "|", "{", "<") or tok in ("|", "{", "}", ">"):
        return True
    if tok == "<":
        return False
    if _unary(prev, before, where.spaced):
        return False
    if where.operator_next(tok):
        return True
    if tok in _BINARY or prev in _BINARY:
        return where.spaced
    if tok == "(":
        return not _is_param_list(prev, before)
    return True


def _drop_blank_lines(lines: list[_Line]) -> list[_Line]:
    """At most one blank line in a row; none at the ends or just inside a bracket."""
    kept: list[_Line] = []
    for line in lines:
        blank = not line.tokens and line.comment is None
        if blank and (not kept or _is_blank(kept[-1]) or kept[-1].tokens[-1:] in
                      (["{"], ["<"], ["("])):
            continue
        if line.tokens[:1] in (["}"], [">"], [")"]) and kept and _is_blank(kept[-1]):
            kept.pop()
        kept.append(line)
    while kept and _is_blank(kept[-1]):
        kept.pop()
    return kept


def _is_blank(line: _Line) -> bool:
    return not line.tokens and line.comment is None


def _render(lines: list[_Line]) -> str:
    columns = _comment_columns(lines)
    out = []
    for i, line in enumerate(lines):
        text = " " * line.indent + line.code if line.tokens else ""
        if line.comment is not None:
            text = (text.ljust(columns[i]) if line.tokens else " " * line.indent) + line.comment
        out.append(text)
    return "\n".join(out) + "\n" if out else ""


def _comment_columns(lines: list[_Line]) -> dict[int, int]:
    """The column of each trailing comment. A run of consecutive lines with trailing comments
    lines them up at the run's first comment's column (at least two spaces after the first
    line's code); a line whose code reaches that column keeps its comment where the author put
    it (LANGUAGE.md's branches: one space or more after the code), or two spaces after the
    code when the code now reaches that far."""
    columns: dict[int, int] = {}
    run: list[int] = []
    for i, line in enumerate(lines + [_Line()]):
        if line.tokens and line.comment is not None:
            run.append(i)
            continue
        if run:
            first = lines[run[0]]
            column = max(_code_end(first) + MIN_COMMENT_GAP, first.comment_column)
            for j in run:
                end = _code_end(lines[j])
                if end + MIN_COMMENT_GAP <= column:
                    columns[j] = column
                elif lines[j].comment_column > end:
                    columns[j] = lines[j].comment_column
                else:
                    columns[j] = end + MIN_COMMENT_GAP
            run = []
    return columns


def _code_end(line: _Line) -> int:
    return line.indent + len(line.code)

