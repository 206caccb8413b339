"""Text -> syntax tree: the Lark grammar in grammars/ and one Transformer into dataclasses.

Every node carries a Span. Syntax errors become located Diagnostics; after one, the
offending statement is blanked out and the text parsed again, so that several independent
mistakes in one file are all reported.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from pathlib import Path

from lark import Transformer_NonRecursive, v_args

from .declarations import keyword_names
from .diagnostics import Diagnostic, Span, did_you_mean, error, sort_key
from .syntax_hints import (CHARACTER_HINTS, EXAMPLES, OPENERS, STRAY_CLOSERS,
                           TOKEN_HINTS, TOKEN_WORDS, UNCLOSED, statement_hint)
from .syntax_hints import EXAMPLES as _EXAMPLES  # noqa: F401  (tests read the table here)
from .syntax_tree import (  # noqa: F401  (the tree's names, re-exported)
    Num, ShapeLit, Name, BinOp, Neg, Compare, IfElse, Call, Keyword, Layer, Repeat, Branch,
    Combinator, Param, BlockDef, FuncDef, ArchHeader, InitDecl, InputDecl, Spec, Expr, Arg, Stmt,
    Values, Arith, Logic, Running, OutputItem, OutputDecl, NamesTail, attach_names, INIT_SCHEMES, ExpressionRules, span_of as _span, token_span as _tok_span)

# ----------------------------------------------------------------------------- the parser

# Deeper parse trees are refused before the (recursive) passes that follow see them. Real
# specs stay below 30; expand.MAX_DEPTH usually stops deep nesting first.
MAX_SYNTAX_DEPTH = 300

# Where the grammar lies, relative to this file: inside the package in a wheel (pyproject.toml
# force-includes grammars/ as archdsl/grammars), beside the package in a source checkout.
_GRAMMAR_PLACES = ("grammars/archdsl.lark", "../grammars/archdsl.lark")


@lru_cache(maxsize=1)
def _parser():
    """The LALR parser, built once per process (Lark also caches its tables on disk)."""
    from lark import Lark

    here = Path(__file__).parent
    for place in _GRAMMAR_PLACES:
        if (here / place).is_file():
            return Lark.open(place, rel_to=__file__, parser="lalr", propagate_positions=True,
                             maybe_placeholders=False, cache=True)
    raise FileNotFoundError("archdsl.lark not found next to the package")  # broken install


def normalise_source(text: str) -> str:
    """CRLF and CR line ends become LF and a leading byte-order mark goes: columns stay."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse(text: str, file: str = "<string>") -> tuple[Spec | None, list[Diagnostic]]:
    """Parse spec text into a Spec; on syntax errors return (None, diagnostics)."""
    from lark.exceptions import UnexpectedInput

    source = normalise_source(text)
    diagnostics: list[Diagnostic] = []
    attempt = source
    for _ in range(25):
        try:
            tree = _parser().parse(attempt)
        except UnexpectedInput as exc:
            diagnostics.append(_syntax_diagnostic(exc, attempt, file))
            if _at_end(exc):  # an unclosed bracket: blanking statements would only add noise
                break
            blanked = _blank_statement(attempt, exc)
            if blanked is None:
                break
            attempt = blanked
            continue
        except RecursionError:
            diagnostics.append(error("E-NESTING", "the spec is nested too deeply to parse",
                                     Span(file, 1, 1, 1, 2),
                                     hint="flatten the nesting, or define a `block` for the inner part"))
            break
        if diagnostics:
            break
        too_deep = _too_deep(tree, file)
        if too_deep is not None:
            return None, [too_deep]
        to_syntax_tree = _ToSyntaxTree(file, source)
        spec = to_syntax_tree.transform(tree)
        found = sorted(to_syntax_tree.diagnostics + keyword_names(source, file, _parser(
        ).terminals), key=sort_key)  # `block repeat(c)` is named before its calls fail
        return (None if any(d.is_error for d in found) else spec), found
    return None, keyword_names(source, file, _parser().terminals) + diagnostics


_EXPRESSION_RULES = {"add", "sub", "mul", "div", "floordiv", "mod", "neg", "lt", "le", "gt", "ge",
                     "eq", "ne", "ifelse", "call", "and_", "or_", "not_", "tadd", "tsub",
                     "tmul", "tdiv", "tneg", "lead"}


def _too_deep(tree, file: str) -> Diagnostic | None:
    """E-NESTING at the first node deeper than MAX_SYNTAX_DEPTH, found without recursion, so
    that the recursive passes after the parser never meet a RecursionError."""
    from lark import Tree

    stack = [(tree, 1, None)]
    while stack:
        node, depth, expression = stack.pop()
        if expression is None and node.data in _EXPRESSION_RULES:
            expression = node  # the outermost operation: the whole expression
        if depth > MAX_SYNTAX_DEPTH:
            culprit = expression if expression is not None else node
            span = Span(file, 1, 1, 1, 2) if culprit.meta.empty else _span(file, culprit.meta)
            if expression is not None:
                return error("E-NESTING", f"this expression is too long: it chains more than "
                             f"{MAX_SYNTAX_DEPTH} operations", span,
                             hint="work the value out and write the number, or make it an "
                                  "`arch` parameter")
            return error("E-NESTING", f"the spec nests more than {MAX_SYNTAX_DEPTH} levels deep",
                         span, hint="flatten the nesting, or define a `block` for the inner part")
        stack.extend((child, depth + 1, expression) for child in node.children
                     if isinstance(child, Tree))
    return None


def _at_end(exc) -> bool:
    from lark.exceptions import UnexpectedEOF

    token = getattr(exc, "token", None)
    return isinstance(exc, UnexpectedEOF) or (token is not None and token.type == "$END")


def _blank_statement(text: str, exc) -> str | None:
    """Blank the statement holding the error so parsing can go on; None if that would not help."""
    pos = getattr(exc, "pos_in_stream", None)
    if pos is None or pos >= len(text):
        return None
    start = max(text.rfind(";", 0, pos), text.rfind("\n", 0, pos)) + 1
    ends = [i for i in (text.find(";", pos), text.find("\n", pos)) if i != -1]
    end = min(ends) if ends else len(text)
    if end <= start:
        end = min(start + 1, len(text))
    region = text[start:end]
    if any(ch in region for ch in "<>{}()|"):
        return None  # blanking would unbalance brackets and produce follow-on noise
    if not region.strip():
        return None
    return text[:start] + " " * len(region) + text[end:]


# ----------------------------------------------------------------------------- numbers
LARGEST = sys.float_info.max
NUMBER_RANGE = "numbers go up to about 1.8e308 (a float's range)"
LITERAL_RANGE = f"{NUMBER_RANGE}; is a digit or an exponent too many?"


def literal_value(text: str) -> int | float | None:
    """An INT or FLOAT literal's value (`64`, `0.5`, `1e3`); None beyond a float's range, so
    that a literal such as `1e999` is refused where it is written, not made inf by float()."""
    whole = text.isascii() and text.isdigit()
    if whole and len(text.lstrip("0")) > len(str(int(LARGEST))):  # int("9" * 4301) fails
        return None
    value = int(text.lstrip("0") or "0") if whole else float(text)
    return value if abs(value) <= LARGEST else None  # False for inf and NaN


@lru_cache(maxsize=None)
def _example_error(snippet: str):
    """The error one example of the table stops with, worked out once per process."""
    from lark.exceptions import UnexpectedInput

    try:
        _parser().parse(snippet)
    except UnexpectedInput as exc:
        return _by_table_row(exc)
    raise AssertionError(f"the syntax-error example {snippet!r} parses")  # table out of step


def _raise_example_error(snippet: str):
    raise _example_error(snippet)


def _by_table_row(exc):
    """Compare errors by the parse table's row alone. Lark's ParserState also compares the
    depth of the stack, so an example written at the top level would never match the same
    mistake inside a block; the row decides what may come next, which is what names it."""
    exc.state = getattr(exc.state, "position", exc.state)
    return exc


def _mistake(exc) -> str | None:
    """The label of the table's example that fails as `exc` does, or None."""
    token = getattr(exc, "token", None)
    examples = EXAMPLES.get(token.type) if token is not None else None
    if not examples or exc.state is None:
        return None
    return _by_table_row(exc).match_examples(_raise_example_error, examples, use_accepts=False)


def _describe_expected(expected: set[str]) -> str:
    names = set()
    literal = {t.name: t.pattern.value for t in _parser().terminals if t.pattern.type == "str"}
    for term in expected:
        if term in TOKEN_WORDS:
            names.add(TOKEN_WORDS[term])
        elif term in literal:
            names.add(f"`{literal[term]}`")
    if not names:
        return ""
    ordered = sorted(names)
    return ordered[0] if len(ordered) == 1 else ", ".join(ordered[:-1]) + " or " + ordered[-1]


def _syntax_diagnostic(exc, text: str, file: str) -> Diagnostic:
    """The located E-SYNTAX diagnostic for one of Lark's UnexpectedInput errors."""
    from lark.exceptions import UnexpectedCharacters

    line, column = getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1
    if isinstance(exc, UnexpectedCharacters):
        return _character_diagnostic(exc, text, Span(file, line, column, line, column + 1))
    if _at_end(exc):
        return _end_diagnostic(exc, text, file)

    token, expected = exc.token, set(exc.expected or exc.accepts or ())
    value = str(token)
    shown = "new line" if token.type == "_SEP" and "\n" in value[:1] else f"`{value.strip() or value}`"
    span = Span(file, line, column, line, column + max(len(value.split("\n")[0]), 1))
    if token.type in STRAY_CLOSERS:
        return error("E-SYNTAX", STRAY_CLOSERS[token.type], span)
    message, hint = f"unexpected {shown}", TOKEN_HINTS.get(token.type)
    mistake = _mistake(exc) if hint is None or token.type == "MINUS" else None
    if mistake == "index not a name":
        message = f"unexpected {shown}: `as` names the repeat's index"
        hint = "write a name after `as`: `repeat n as i { … }`"
    elif hint is None:
        if mistake == "missing separator":
            message = f"unexpected `{value}`: statements are separated by `;` or a new line"
            hint = f"write `; {value}` or start `{value}` on a new line"
        elif mistake == "missing `)`":
            hint = "a `)` is missing"
    better = statement_hint(text, getattr(exc, "pos_in_stream", None), value)
    if better is not None:  # another language's habit: the statement written the archdsl way
        message, hint = f"unexpected {shown}", better
    want = _describe_expected(expected)
    if hint is None and want and len(expected) <= 5:
        hint = f"expected {want} here"
    return error("E-SYNTAX", message, span, hint=hint)


def _character_diagnostic(exc, text: str, span: Span) -> Diagnostic:
    ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else "?"
    message = f"unexpected character `{ch}`" if ch.isprintable() else f"unexpected character {ch!r}"
    hint = statement_hint(text, exc.pos_in_stream, ch) or CHARACTER_HINTS.get(ch)
    if hint is None and not ch.isascii():
        hint = "names use ASCII letters, digits and `_`"
    return error("E-SYNTAX", message, span, hint=hint)


def _end_diagnostic(exc, text: str, file: str) -> Diagnostic:
    lines = text.rstrip().split("\n") if text.strip() else [""]
    line, column = len(lines), max(len(lines[-1]), 1)
    span = Span(file, line, column, line, column + 1)
    mistake = _mistake(exc)
    if mistake is not None:
        closer = mistake.split()[1]
        found = error("E-SYNTAX", UNCLOSED[closer], span, hint=f"add the missing {closer}")
        opener = _unclosed(text, closer.strip("`"))
        if opener is not None:  # and point at what is left open
            found = found.with_note(f"the `{text[opener]}` opened here is never closed", Span(
                file, *_line_col(text, opener), *_line_col(text, opener + 1)))
        return found
    expected = getattr(exc, "expected", None) or getattr(exc, "accepts", None) or ()
    want = _describe_expected(set(expected))
    return error("E-SYNTAX", "the file ends in the middle of a statement", span,
                 hint=f"expected {want}" if want else None)


def _unclosed(text: str, closer: str) -> int | None:
    """The offset of the innermost bracket that `closer` would close and nothing does."""
    code = "\n".join(line.split("#")[0].ljust(len(line)) for line in text.split("\n"))
    open_at: list[int] = []
    for i, ch in enumerate(code):
        if ch in OPENERS:
            open_at.append(i)
        elif ch in OPENERS.values() and any(OPENERS[text[at]] == ch for at in open_at):
            open_at.remove(max(at for at in open_at if OPENERS[text[at]] == ch))
    return max((at for at in open_at if OPENERS[text[at]] == closer), default=None)


# ----------------------------------------------------------------------------- tree -> Spec


def _line_col(source: str, offset: int) -> tuple[int, int]:
    line = source.count("\n", 0, offset) + 1
    return line, offset - (source.rfind("\n", 0, offset) + 1) + 1


@dataclass(frozen=True)
class _Body:
    """A `body` on its way up: its statements, and where it stands (for an empty branch)."""

    stmts: tuple
    meta: object


@dataclass(frozen=True)
class _InitLine:
    """An `init` statement on its way up: only the top level may hold one (see _declare)."""

    args: tuple
    span: Span


@dataclass(frozen=True)
class _Ports:
    """A block's `a, b -> p, q` on its way up."""

    inputs: tuple
    outputs: tuple


_Declaration = (BlockDef, FuncDef, ArchHeader, InputDecl, _InitLine, OutputDecl)
_ONCE = {ArchHeader: ("arch", "the file has two `arch` headers"),  # the Spec's field, and
         InputDecl: ("input", "the file declares `input` twice"),  # the error for a second
         OutputDecl: ("outputs", "the file has two `output` lines"),
         _InitLine: ("init", "the file has two `init` lines")}


@v_args(meta=True)
class _ToSyntaxTree(Transformer_NonRecursive):
    """The parse tree -> Spec, one method per grammar rule, bottom up (without recursion,
    so that a tree as deep as MAX_SYNTAX_DEPTH allows is safe). Declarations (`arch`,
    `input`, `init`, `block`) travel up as values; nested bodies report the ones they
    hold, and `start` files the top level's into the Spec."""

    __visit_tokens__ = False  # tokens stay Tokens: the rules read their positions

    def __init__(self, file: str, source: str):
        super().__init__()
        self.file, self.source = file, source
        # Bind the rule methods once: Lark's v_args wrapper otherwise re-wraps a method on
        # every node it visits, which made parsing a third slower.
        for rule in _RULES:
            setattr(self, rule, getattr(self, rule))
        self.diagnostics: list[Diagnostic] = []
        self._line_starts: list[int] | None = None

    # -- expressions: `sub` and the literals (checked) here, the rest are ExpressionRules'
    def sub(self, meta, children):
        left, right = children
        span = _span(self.file, meta)
        gap = self.source[self._offset(left.span, end=True):self._offset(right.span)]
        if gap.startswith((" ", "\t")) and gap.endswith("-"):  # `10 -5`: a value meant?
            left_text, right_text = self._text(left.span), self._text(right.span)
            self.diagnostics.append(error(
                "E-SYNTAX", f"`{left_text} -{right_text}` reads as a subtraction, "
                f"{left_text} − {right_text}", span,
                hint=f"write `{left_text} - {right_text}` to subtract, or "
                     f"`{left_text} (-{right_text})` for two values"))
        return BinOp("-", left, right, span)

    def int(self, meta, children):  # and FLOAT's
        return Num(self._numbers(children[0])[0], _tok_span(self.file, children[0]))

    float = int

    def shape(self, meta, children):
        return ShapeLit(self._numbers(children[0]), _tok_span(self.file, children[0]))

    def _numbers(self, token, code: str = "E-EXPR") -> tuple:
        """A literal's value, one per `x`-part; beyond a float's range an error, and 0 in its
        place (a spec with errors is not expanded)."""
        values = tuple(map(literal_value, str(token).split("x")))
        if None in values:
            self._error(code, f"the {'shape' if 'x' in token else 'number'} {token} is too large",
                        _tok_span(self.file, token), hint=LITERAL_RANGE)
        return tuple(0 if v is None else v for v in values)

    # -- statements
    def keyword(self, meta, children):
        name, value = children
        return Keyword(str(name), value, _span(self.file, meta))

    def layer(self, meta, children):
        children, names = _named(children)
        op, *args = children
        return Layer(str(op), _tok_span(self.file, op), tuple(args), self._before(meta, names),
                     names)

    def repeat(self, meta, children):
        children, names = _named(children)
        count, *index, body = children
        name = Name(str(index[0]), _tok_span(self.file, index[0])) if index else None
        return Repeat(count, self._nested(body), self._before(meta, names), name, names)

    def _before(self, meta, names) -> Span:
        """A statement's span, up to its `-> names` (where a caret points at the statement)."""
        span = _span(self.file, meta)
        if not names:
            return span
        arrow = self.source.rindex("->", 0, self._offset(names[0].span))
        end = len(self.source[:arrow].rstrip())
        line, column = _line_col(self.source, end)
        return Span(span.file, span.line, span.column, line, column)

    def combinator(self, meta, children):
        children, names = _named(children)
        kind, *bodies = children
        branches = []
        after = kind.end_pos  # just past the combinator's name
        for body in bodies:
            if body.meta.empty:  # nothing between the brackets: point at the gap itself
                gap = min(i for i in (self.source.find("|", after + 1),
                                      self.source.find(">", after + 1), len(self.source))
                          if i >= 0)
                line, col = _line_col(self.source, gap)
                span = Span(self.file, line, col, line, col + 1)
                after = gap
            else:
                span = _span(self.file, body.meta)
                after = body.meta.end_pos
            branches.append(Branch(self._nested(body), span))
        return Combinator(str(kind), _tok_span(self.file, kind), tuple(branches),
                          self._before(meta, names), names)

    def body(self, meta, children):
        return _Body(attach_names(children), meta)

    def names(self, meta, children):
        return NamesTail(tuple(Name(str(t), _tok_span(self.file, t)) for t in children))

    def values(self, meta, children):
        children, names = _named(children)
        return Values(tuple(Name(str(t), _tok_span(self.file, t)) for t in children),
                      self._before(meta, names), names)

    def output_item(self, meta, children):
        name, *options = children
        return OutputItem(Name(str(name), _tok_span(self.file, name)), tuple(options),
                          _span(self.file, meta))

    def output(self, meta, children):
        return OutputDecl(tuple(children), _span(self.file, meta))

    def ports(self, meta, children):
        *inputs, tail = children
        if not isinstance(tail, NamesTail):
            inputs, tail = children, NamesTail(())
        return _Ports(tuple(Name(str(t), _tok_span(self.file, t)) for t in inputs), tail.names)

    # -- declarations
    def param(self, meta, children):
        default = children[1] if len(children) > 1 else None
        return Param(str(children[0]), default, _span(self.file, meta))

    def params(self, meta, children):
        return tuple(children)

    def arch(self, meta, children):
        params = children[1] if len(children) > 1 else ()
        return ArchHeader(str(children[0]), params, _span(self.file, meta))

    def input(self, meta, children):
        return InputDecl(self._numbers(children[0], "E-INPUT"), _span(self.file, meta))

    def init(self, meta, children):
        span = _span(self.file, meta)
        # `init` takes words: an expression among them is E-INIT alone (see _init_decl),
        # not also the E-SYNTAX of a spaced minus inside it.
        self.diagnostics = [d for d in self.diagnostics if not _inside(d.span, span)]
        return _InitLine(tuple(children), span)

    def block_def(self, meta, children):
        name, *middle, body = children
        params = next((m for m in middle if not isinstance(m, _Ports)), ())
        ports = next((m for m in middle if isinstance(m, _Ports)), _Ports((), ()))
        return BlockDef(str(name), _tok_span(self.file, name), params, self._nested(body),
                        _span(self.file, meta), ports.inputs, ports.outputs)

    def func_def(self, meta, children):
        name, params, body = children
        return FuncDef(str(name), _tok_span(self.file, name), params, body, _span(self.file, meta))

    def start(self, meta, children):
        spec = Spec(file=self.file, source=self.source)
        spec.body = tuple(s for s in children[0].stmts if not self._declare(spec, s))
        return spec

    # -- helpers
    def _nested(self, body: _Body) -> tuple:
        """A body inside brackets: declarations do not belong there."""
        for stmt in body.stmts:
            if isinstance(stmt, (BlockDef, FuncDef)):
                what = "block" if isinstance(stmt, BlockDef) else "def"
                self._error("E-PLACEMENT", f"a `{what}` must be defined at the top level",
                            stmt.name_span, hint="move the definition out of the body")
            elif isinstance(stmt, ArchHeader):
                self._error("E-PLACEMENT", "`arch` belongs at the top of the file", stmt.span)
            elif isinstance(stmt, InputDecl):
                self._error("E-PLACEMENT", "`input` belongs at the top level", stmt.span)
            elif isinstance(stmt, OutputDecl):
                self._error("E-PLACEMENT", "`output` belongs at the top level", stmt.span,
                            hint="a block gives its values by name in its header: "
                                 "`block name(c) x -> a, b { … }`")
            elif isinstance(stmt, _InitLine):
                self._error("E-PLACEMENT", "`init` belongs at the top level", stmt.span,
                            hint="it chooses the initialisation of the whole network")
        return tuple(s for s in body.stmts if not isinstance(s, _Declaration))

    def _declare(self, spec: Spec, stmt) -> bool:
        """File a top-level declaration into the Spec; False for an ordinary statement."""
        if isinstance(stmt, (BlockDef, FuncDef)):  # filed by name, once
            what, table = ("block", spec.blocks) if isinstance(stmt, BlockDef) else \
                ("function", spec.functions)
            if stmt.name in table:
                first = table[stmt.name].name_span
                self._error("E-DUPLICATE", f"{what} `{stmt.name}` is defined twice",
                            stmt.name_span, hint=f"the first definition is on line {first.line}")
            else:
                table[stmt.name] = stmt
        elif type(stmt) in _ONCE:  # `arch`, `input`, `init`: one each
            field, twice = _ONCE[type(stmt)]
            decl = self._init_decl(stmt) if field == "init" else stmt
            first = getattr(spec, field)
            if decl is not None and first is not None:
                self._error("E-DUPLICATE", twice, stmt.span,
                            hint=f"keep the one on line {first.span.line}")
            elif decl is not None:
                setattr(spec, field, decl)
        else:
            return False
        return True

    def _init_decl(self, line: _InitLine) -> InitDecl | None:
        """`init SCHEME OPTION…` checked against INIT_SCHEMES; None after an E-INIT."""
        for arg in line.args:
            if not isinstance(arg, Name):
                self._error("E-INIT", "`init` takes words only, e.g. `init resnet "
                            "zero_residual`", arg.span)
                return None
        if not line.args:
            self._error("E-INIT", "`init` needs a scheme", line.span,
                        hint="write `init resnet` or `init pytorch`")
            return None
        scheme, *options = line.args
        if scheme.name not in INIT_SCHEMES:
            self._error("E-INIT", f"unknown initialisation `{scheme.name}`", scheme.span,
                        hint=did_you_mean(scheme.name, INIT_SCHEMES) or
                        "the schemes are: " + ", ".join(INIT_SCHEMES))
            return None
        allowed = INIT_SCHEMES[scheme.name]
        for option in options:
            if option.name not in allowed:
                self._error("E-INIT", f"`init {scheme.name}` has no option `{option.name}`",
                            option.span, hint=did_you_mean(option.name, allowed) or (
                                "its options are: " + ", ".join(allowed) if allowed
                                else "it takes none"))
                return None
        return InitDecl(scheme.name, tuple(o.name for o in options), line.span)

    def _error(self, code: str, message: str, span: Span, hint: str | None = None):
        self.diagnostics.append(error(code, message, span, hint=hint))

    def _offset(self, span: Span, end: bool = False) -> int:
        if self._line_starts is None:
            self._line_starts = [0, *accumulate(len(line) + 1 for line in self.source.split("\n"))]
        line, column = (span.end_line, span.end_column) if end else (span.line, span.column)
        return self._line_starts[line - 1] + column - 1

    def _text(self, span: Span) -> str:
        return self.source[self._offset(span):self._offset(span, end=True)]


for _name, _rule in vars(ExpressionRules).items():  # the mixin's rules, wrapped as the class's
    if not _name.startswith("__") and _name not in vars(_ToSyntaxTree):  # unless it has its own
        setattr(_ToSyntaxTree, _name, v_args(meta=True)(_rule) if _name[0] != "_" else _rule)
_RULES = [name for name in vars(_ToSyntaxTree) if not name.startswith("_")]


def _named(children: list) -> tuple[list, tuple]:
    """A statement's children without its trailing `-> names`, and those names."""
    if children and isinstance(children[-1], NamesTail):
        return children[:-1], children[-1].names
    return children, ()


def _inside(span: Span | None, outer: Span) -> bool:
    return span is not None and (outer.line, outer.column) <= (span.line, span.column) and \
        (span.end_line, span.end_column) <= (outer.end_line, outer.end_column)
