"""Text -> syntax tree: the Lark grammar in grammars/ and one Transformer into dataclasses.

Every node carries a Span. Syntax errors become located Diagnostics; after one, the
offending statement is blanked out and the text parsed again, so that several independent
mistakes in one file are all reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Union

from .diagnostics import Diagnostic, Span, did_you_mean, error

# `init SCHEME OPTION…`: the weight initialisations a spec can choose, with their options.
INIT_SCHEMES = {
    "pytorch": (),  # each layer's own default (what torch.nn gives)
    "resnet": ("zero_residual",),  # torchvision's ResNet scheme
}

# ----------------------------------------------------------------------------- the tree


@dataclass(frozen=True)
class Num:
    value: int | float
    span: Span


@dataclass(frozen=True)
class ShapeLit:
    dims: tuple[int, ...]
    span: Span


@dataclass(frozen=True)
class Name:
    name: str
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * / // %
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class Neg:
    operand: "Expr"
    span: Span


Expr = Union[Num, ShapeLit, Name, BinOp, Neg]


@dataclass(frozen=True)
class Keyword:
    name: str
    value: Expr
    span: Span


Arg = Union[Expr, Keyword]


@dataclass(frozen=True)
class Layer:
    """`op arg arg key=value …`: a layer, or a call of a user block."""

    op: str
    op_span: Span
    args: tuple[Arg, ...]
    span: Span


@dataclass(frozen=True)
class Repeat:
    count: Expr
    body: tuple["Stmt", ...]
    span: Span


@dataclass(frozen=True)
class Branch:
    body: tuple["Stmt", ...]
    span: Span


@dataclass(frozen=True)
class Combinator:
    """`residual< … >`, `concat< … | … >`, `add< … >`, `mul< … >`."""

    kind: str
    kind_span: Span
    branches: tuple[Branch, ...]
    span: Span


@dataclass(frozen=True)
class Param:
    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class BlockDef:
    name: str
    name_span: Span
    params: tuple[Param, ...]
    body: tuple["Stmt", ...]
    span: Span


@dataclass(frozen=True)
class ArchHeader:
    name: str
    params: tuple[Param, ...]
    span: Span


@dataclass(frozen=True)
class InitDecl:
    """`init resnet zero_residual`: how the compiled module's weights start out."""

    scheme: str
    options: tuple[str, ...]
    span: Span


@dataclass(frozen=True)
class InputDecl:
    dims: tuple[int, ...]
    span: Span


Stmt = Union[Layer, Repeat, Combinator, BlockDef, ArchHeader, InputDecl]


@dataclass
class Spec:
    """A parsed file: header, input, block definitions and the top-level statements."""

    file: str
    source: str
    arch: ArchHeader | None = None
    input: InputDecl | None = None
    init: InitDecl | None = None
    blocks: dict[str, BlockDef] = field(default_factory=dict)
    body: tuple[Stmt, ...] = ()

    @property
    def name(self) -> str:
        if self.arch is not None:
            return self.arch.name
        return Path(self.file).stem if self.file else "network"


# ----------------------------------------------------------------------------- the parser

# Deeper parse trees are refused before the (recursive) passes that follow see them. Real
# specs stay below 30; expand.MAX_DEPTH usually stops deep nesting first.
MAX_SYNTAX_DEPTH = 300


def _grammar_path() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "grammars" / "archdsl.lark", here.parent / "grammars" / "archdsl.lark"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("archdsl.lark not found next to the package")  # broken install


@lru_cache(maxsize=1)
def _parser():
    from lark import Lark

    return Lark(_grammar_path().read_text(), parser="lalr", propagate_positions=True,
                maybe_placeholders=False, cache=True)


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
        try:
            return _build_spec(tree, file, source)
        except RecursionError:
            return None, [error("E-NESTING", "the spec is nested too deeply", Span(file, 1, 1, 1, 2),
                                hint="define a `block` for the inner part")]
    return None, diagnostics


_EXPRESSION_RULES = {"add", "sub", "mul", "div", "floordiv", "mod", "neg"}


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


_TOKEN_WORDS = {
    "NAME": "a name", "INT": "a number", "FLOAT": "a number", "SHAPE": "a shape such as 3x224x224",
    "_SEP": "a new line or `;`", "$END": "the end of the file",
}


def _describe_expected(expected: set[str]) -> str:
    names = set()
    literal = {t.name: t.pattern.value for t in _parser().terminals if t.pattern.type == "str"}
    for term in expected:
        if term in _TOKEN_WORDS:
            names.add(_TOKEN_WORDS[term])
        elif term in literal:
            names.add(f"`{literal[term]}`")
    if not names:
        return ""
    ordered = sorted(names)
    return ordered[0] if len(ordered) == 1 else ", ".join(ordered[:-1]) + " or " + ordered[-1]


def _syntax_diagnostic(exc, text: str, file: str) -> Diagnostic:
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken

    line, column = getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1
    hint = None
    if isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else "?"
        message = f"unexpected character `{ch}`" if ch.isprintable() else \
            f"unexpected character {ch!r}"
        hint = {
            ",": "arguments are separated by spaces, not commas",
            '"': "the language has no strings: write the bare word, e.g. `padding_mode=reflect`",
            "'": "the language has no strings: write the bare word, e.g. `padding_mode=reflect`",
            "[": "branches are written `concat< a | b >`",
            ":": "keywords are written `name=value`",
            "\x00": "this does not look like a text file",
        }.get(ch)
        if hint is None and not ch.isascii():
            hint = "names use ASCII letters, digits and `_`"
        span = Span(file, line, column, line, column + 1)
        return error("E-SYNTAX", message, span, hint=hint)

    token = getattr(exc, "token", None)
    expected = set(getattr(exc, "expected", None) or getattr(exc, "accepts", None) or ())
    if _at_end(exc):
        lines = text.rstrip().split("\n") if text.strip() else [""]
        line = len(lines)
        column = max(len(lines[-1]), 1)
        closers = [c for t, c in (("MORETHAN", "`>`"), ("RBRACE", "`}`"), ("RPAR", "`)`"))
                   if t in expected]
        if closers:
            message = f"the file ends before a closing {closers[0]}"
            hint = f"add the missing {closers[0]}"
        else:
            message = "the file ends in the middle of a statement"
            want = _describe_expected(expected)
            hint = f"expected {want}" if want else None
        return error("E-SYNTAX", message, Span(file, line, column, line, column + 1), hint=hint)

    assert isinstance(exc, UnexpectedToken)
    value = str(token)
    shown = "new line" if token.type == "_SEP" and "\n" in value[:1] else f"`{value.strip() or value}`"
    message = f"unexpected {shown}"
    want = _describe_expected(expected)
    if token.type == "COMMA":
        hint = "arguments are separated by spaces, not commas"
    elif token.type == "MINUS":
        hint = "a negative value can only follow `=` or `(`: write `name=-1` or `(-1)`"
    elif token.type == "MORETHAN":
        message = "`>` closes nothing here"
    elif token.type == "RBRACE":
        message = "`}` closes nothing here"
    elif token.type == "NAME" and "_SEP" in expected:
        message = f"unexpected `{value}`: statements are separated by `;` or a new line"
        hint = f"write `; {value}` or start `{value}` on a new line"
    elif token.type == "_SEP" and "MORETHAN" in expected:
        hint = "a `>` is missing"
    elif token.type == "_SEP" and "RPAR" in expected:
        hint = "a `)` is missing"
    if hint is None and want and token.type not in ("MORETHAN", "RBRACE") and len(expected) <= 5:
        hint = f"expected {want} here"
    end_col = column + max(len(value.split("\n")[0]), 1)
    return error("E-SYNTAX", message, Span(file, line, column, line, end_col), hint=hint)


# ----------------------------------------------------------------------------- tree -> Spec


def _span(file: str, meta) -> Span:
    return Span(file, meta.line, meta.column, meta.end_line, meta.end_column)


def _tok_span(file: str, tok) -> Span:
    return Span(file, tok.line, tok.column, tok.end_line, tok.end_column)


def _line_col(source: str, offset: int) -> tuple[int, int]:
    line = source.count("\n", 0, offset) + 1
    return line, offset - (source.rfind("\n", 0, offset) + 1) + 1


def _bounds(node) -> tuple[int, int]:
    if hasattr(node, "meta"):
        return node.meta.start_pos, node.meta.end_pos
    return node.start_pos, node.end_pos


def _text_of(source: str, node) -> str:
    start, end = _bounds(node)
    return source[start:end]


def _looks_negative(source: str, left, right) -> bool:
    """`10 -5`: space before the minus, none after it: a negative number was probably meant."""
    gap = source[_bounds(left)[1]:_bounds(right)[0]]
    return gap.startswith((" ", "\t")) and gap.endswith("-")


def _build_spec(tree, file: str, source: str) -> tuple[Spec | None, list[Diagnostic]]:
    from lark import Token, Tree

    diagnostics: list[Diagnostic] = []

    def expr(node) -> Expr:
        if isinstance(node, Token):  # unreachable with the grammar's aliases, kept for safety
            return Name(str(node), _tok_span(file, node))
        kind, ch = node.data, node.children
        if kind in ("int", "float", "shape", "name"):
            tok = ch[0]
            span = _tok_span(file, tok)
            if kind == "int":
                return Num(int(tok), span)
            if kind == "float":
                return Num(float(tok), span)
            if kind == "shape":
                return ShapeLit(tuple(int(d) for d in str(tok).split("x")), span)
            return Name(str(tok), span)
        span = _span(file, node.meta)
        if kind == "sub" and _looks_negative(source, ch[0], ch[1]):
            left, right = _text_of(source, ch[0]), _text_of(source, ch[1])
            diagnostics.append(error(
                "E-SYNTAX", f"`{left} -{right}` reads as a subtraction, {left} − {right}", span,
                hint=f"write `{left} - {right}` to subtract, or `{left} (-{right})` for two values"))
        if kind == "neg":
            return Neg(expr(ch[0]), span)
        op = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "//", "mod": "%"}[kind]
        return BinOp(op, expr(ch[0]), expr(ch[1]), span)

    def params(node) -> tuple[Param, ...]:
        out = []
        for p in node.children if node is not None else ():
            if p is None:
                continue
            name_tok = p.children[0]
            default = expr(p.children[1]) if len(p.children) > 1 else None
            out.append(Param(str(name_tok), default, _span(file, p.meta)))
        return tuple(out)

    def body(node, top: bool) -> tuple[Stmt, ...]:
        out = []
        for st in node.children:
            s = stmt(st, top)
            if s is not None:
                out.append(s)
        return tuple(out)

    spec = Spec(file=file, source=source)

    def stmt(node, top: bool):
        kind, ch = node.data, node.children
        span = _span(file, node.meta)
        if kind == "layer" and str(ch[0]) == "init":
            if top:
                return init_decl(ch, span)
            diagnostics.append(error("E-PLACEMENT", "`init` belongs at the top level", span,
                                     hint="it chooses the initialisation of the whole network"))
            return None
        if kind == "layer":
            args = []
            for a in ch[1:]:
                if isinstance(a, Tree) and a.data == "keyword":
                    args.append(Keyword(str(a.children[0]), expr(a.children[1]), _span(file, a.meta)))
                else:
                    args.append(expr(a))
            return Layer(str(ch[0]), _tok_span(file, ch[0]), tuple(args), span)
        if kind == "repeat":
            return Repeat(expr(ch[0]), body(ch[1], False), span)
        if kind == "combinator":
            branches = []
            after = ch[0].end_pos  # just past the combinator's name
            for b in ch[1:]:
                if b.meta.empty:  # nothing between the brackets: point at the gap itself
                    gap = min(i for i in (source.find("|", after + 1), source.find(">", after + 1),
                                          len(source)) if i >= 0)
                    line, col = _line_col(source, gap)
                    b_span = Span(file, line, col, line, col + 1)
                    after = gap
                else:
                    b_span = _span(file, b.meta)
                    after = b.meta.end_pos
                branches.append(Branch(body(b, False), b_span))
            return Combinator(str(ch[0]), _tok_span(file, ch[0]), tuple(branches), span)
        if kind == "block_def":
            name = ch[0]
            p = params(ch[1]) if len(ch) > 2 else ()
            block = BlockDef(str(name), _tok_span(file, name), p, body(ch[-1], False), span)
            if not top:
                diagnostics.append(error("E-PLACEMENT", "a `block` must be defined at the top level",
                                         block.name_span, hint="move the definition out of the body"))
            elif block.name in spec.blocks:
                first = spec.blocks[block.name].name_span
                diagnostics.append(error("E-DUPLICATE", f"block `{block.name}` is defined twice",
                                         block.name_span,
                                         hint=f"the first definition is on line {first.line}"))
            else:
                spec.blocks[block.name] = block
            return None
        if kind == "arch":
            header = ArchHeader(str(ch[0]), params(ch[1]) if len(ch) > 1 else (), span)
            if not top:
                diagnostics.append(error("E-PLACEMENT", "`arch` belongs at the top of the file", span))
            elif spec.arch is not None:
                diagnostics.append(error("E-DUPLICATE", "the file has two `arch` headers", span,
                                         hint=f"keep the one on line {spec.arch.span.line}"))
            else:
                spec.arch = header
            return None
        if kind == "input":
            tok = ch[0]
            dims = tuple(int(d) for d in str(tok).split("x"))
            decl = InputDecl(dims, span)
            if not top:
                diagnostics.append(error("E-PLACEMENT", "`input` belongs at the top level", span))
            elif spec.input is not None:
                diagnostics.append(error("E-DUPLICATE", "the file declares `input` twice", span,
                                         hint=f"keep the one on line {spec.input.span.line}"))
            else:
                spec.input = decl
            return None
        raise AssertionError(f"unhandled rule {kind}")  # grammar and builder out of step

    def init_decl(ch, span):
        words = []
        for a in ch[1:]:
            if not (isinstance(a, Tree) and a.data == "name"):
                diagnostics.append(error("E-INIT", "`init` takes words only, e.g. `init resnet "
                                         "zero_residual`", _span(file, a.meta) if isinstance(a, Tree)
                                         else span))
                return None
            words.append((str(a.children[0]), _tok_span(file, a.children[0])))
        if not words:
            diagnostics.append(error("E-INIT", "`init` needs a scheme", span,
                                     hint="write `init resnet` or `init pytorch`"))
            return None
        (scheme, scheme_span), options = words[0], words[1:]
        if scheme not in INIT_SCHEMES:
            diagnostics.append(error("E-INIT", f"unknown initialisation `{scheme}`", scheme_span,
                                     hint=did_you_mean(scheme, INIT_SCHEMES) or
                                     "the schemes are: " + ", ".join(INIT_SCHEMES)))
            return None
        for option, option_span in options:
            if option not in INIT_SCHEMES[scheme]:
                allowed = INIT_SCHEMES[scheme]
                diagnostics.append(error(
                    "E-INIT", f"`init {scheme}` has no option `{option}`", option_span,
                    hint=did_you_mean(option, allowed) or (
                        "its options are: " + ", ".join(allowed) if allowed else "it takes none")))
                return None
        if spec.init is not None:
            diagnostics.append(error("E-DUPLICATE", "the file has two `init` lines", span,
                                     hint=f"keep the one on line {spec.init.span.line}"))
            return None
        spec.init = InitDecl(scheme, tuple(o for o, _ in options), span)
        return None

    spec.body = body(tree.children[0], True)
    return (None if any(d.is_error for d in diagnostics) else spec), diagnostics
