"""The syntax tree: what the parser (syntax.py) makes of a spec, one frozen dataclass per
construct, each with its Span."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Union

from .diagnostics import Span


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


@dataclass(frozen=True)
class Compare:
    op: str  # < <= > >= == !=
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class IfElse:
    """`(then if condition else other)`."""

    condition: "Expr"
    then: "Expr"
    other: "Expr"
    span: Span


@dataclass(frozen=True)
class Call:
    """`max(8, c)`: a built-in function (FUNCTIONS) or one the spec defines with `def`."""

    name: str
    name_span: Span
    args: tuple["Expr", ...]
    span: Span


@dataclass(frozen=True)
class Logic:
    """`a and b`, `a or b`, `not a`: conditions joined (one operand for `not`)."""

    op: str  # and, or, not
    operands: tuple["Expr", ...]
    span: Span


@dataclass(frozen=True)
class Running:
    """The running value, left of a statement that starts with an operator (`* 1.7015`)."""

    span: Span


Expr = Union[Num, ShapeLit, Name, BinOp, Neg, Compare, IfElse, Call, Logic, Running]


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
    names: tuple["Name", ...] = ()  # `-> a, b`: what the statement leaves, named


@dataclass(frozen=True)
class Repeat:
    """`repeat n { … }`; `repeat n as i { … }` also names the iteration's index, 0 … n−1."""

    count: Expr
    body: tuple["Stmt", ...]
    span: Span
    index: Name | None = None
    names: tuple[Name, ...] = ()


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
    names: tuple[Name, ...] = ()


@dataclass(frozen=True)
class Values:
    """`a, b`: named values made the running values (several flow on together, into a block
    that takes several, a merge, or `-> p, q`). One name alone is a Layer statement that the
    expansion finds to be a value."""

    values: tuple[Name, ...]
    span: Span
    names: tuple[Name, ...] = ()


@dataclass(frozen=True)
class Arith:
    """`y - x`, `(a + b) * 0.5`, `* 1.7015`: arithmetic on tensors (named values, the running
    value) and numbers; its names are values where a value of that name is in scope, numbers
    (parameters, indices) otherwise."""

    expr: Expr
    span: Span
    names: tuple[Name, ...] = ()


@dataclass(frozen=True)
class OutputItem:
    """One output of `output logits, aux1 aux=0.3`: a named value, and its options."""

    name: Name
    options: tuple["Keyword", ...]
    span: Span


@dataclass(frozen=True)
class OutputDecl:
    """`output a, b aux=0.3`: the network's outputs, the first the main one."""

    items: tuple[OutputItem, ...]
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
    inputs: tuple[Name, ...] = ()  # `block f(c) a, b -> p { … }`: the values it takes
    outputs: tuple[Name, ...] = ()  # … and gives; () for the running value at the end


@dataclass(frozen=True)
class FuncDef:
    """`def divisible(v, d=8) = max(d, …)`: a named expression of its parameters."""

    name: str
    name_span: Span
    params: tuple[Param, ...]
    body: Expr
    span: Span


@dataclass(frozen=True)
class ArchHeader:
    name: str
    params: tuple[Param, ...]
    span: Span


# `init SCHEME OPTION…`: the weight initialisations a spec can choose, with their options.
INIT_SCHEMES = {
    "pytorch": (),  # each layer's own default (what torch.nn gives)
    "resnet": ("zero_residual",),  # torchvision's ResNet scheme
}


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


Stmt = Union[Layer, Repeat, Combinator, Values, Arith, BlockDef, FuncDef, ArchHeader, InputDecl]


@dataclass
class Spec:
    """A parsed file: header, input, block definitions and the top-level statements."""

    file: str
    source: str
    arch: ArchHeader | None = None
    input: InputDecl | None = None
    init: InitDecl | None = None
    outputs: OutputDecl | None = None
    blocks: dict[str, BlockDef] = field(default_factory=dict)
    functions: dict[str, FuncDef] = field(default_factory=dict)
    body: tuple[Stmt, ...] = ()

    @property
    def name(self) -> str:
        if self.arch is not None:
            return self.arch.name
        return Path(self.file).stem if self.file else "network"


# ----------------------------------------------------------------------------- building

@dataclass(frozen=True)
class NamesTail:
    """`-> a, b` on its way up, to be attached to the statement before it."""

    names: tuple[Name, ...]


def attach_names(children) -> tuple:
    """A body's statements, each `-> names` given to the statement it follows."""
    out: list = []
    for child in children:
        if not isinstance(child, NamesTail):
            out.append(child)
        elif out and hasattr(out[-1], "names") and not out[-1].names:
            out[-1] = replace(out[-1], names=child.names)
        else:  # `-> a, b` on its own: the running values named where they stand
            start, end = child.names[0].span, child.names[-1].span
            out.append(Values((), Span(start.file, start.line, max(1, start.column - 3),
                                       end.end_line, end.end_column), child.names))
    return tuple(out)


def span_of(file: str, meta) -> Span:
    return Span(file, meta.line, meta.column, meta.end_line, meta.end_column)


def token_span(file: str, tok) -> Span:
    return Span(file, tok.line, tok.column, tok.end_line, tok.end_column)


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def _joined(first: Span, last: Span) -> Span:
    return Span(first.file, first.line, first.column, last.end_line, last.end_column)


class ExpressionRules:
    """The parser's expression rules -> Expr nodes (mixed into syntax.py's Transformer, which
    has `file`; `sub` and the literals stay there, as they check the spacing of a minus and
    the range of a number)."""

    file: str

    def name(self, meta, children):
        return Name(str(children[0]), token_span(self.file, children[0]))

    def neg(self, meta, children):
        return Neg(children[0], span_of(self.file, meta))

    def _binary(self, op: str, meta, children):
        left, right = children
        return BinOp(op, left, right, span_of(self.file, meta))

    def add(self, meta, children):
        return self._binary("+", meta, children)

    def mul(self, meta, children):
        return self._binary("*", meta, children)

    def div(self, meta, children):
        return self._binary("/", meta, children)

    def floordiv(self, meta, children):
        return self._binary("//", meta, children)

    def mod(self, meta, children):
        return self._binary("%", meta, children)

    def _compare(self, op: str, meta, children):
        return Compare(op, children[0], children[1], span_of(self.file, meta))

    def lt(self, meta, children):
        return self._compare("<", meta, children)

    def le(self, meta, children):
        return self._compare("<=", meta, children)

    def gt(self, meta, children):
        return self._compare(">", meta, children)

    def ge(self, meta, children):
        return self._compare(">=", meta, children)

    def eq(self, meta, children):
        return self._compare("==", meta, children)

    def ne(self, meta, children):
        return self._compare("!=", meta, children)

    def ifelse(self, meta, children):
        then, condition, other = children
        return IfElse(condition, then, other, span_of(self.file, meta))

    def _logic(self, op: str, meta, children):
        return Logic(op, tuple(children), span_of(self.file, meta))

    def and_(self, meta, children):
        return self._logic("and", meta, children)

    def or_(self, meta, children):
        return self._logic("or", meta, children)

    def not_(self, meta, children):
        return self._logic("not", meta, children)

    # tensor arithmetic (`arith` statements): the same nodes, minus without a spacing check
    tadd, tmul, tdiv, tneg = add, mul, div, neg

    def tsub(self, meta, children):
        """`y - x`; `conv -1` (a negative value meant) is an error, as in arguments."""
        return self.sub(meta, children)

    def tgroup(self, meta, children):
        """`(a + b)` in tensor arithmetic: kept whole by a leading operator (`* (a + b)`)."""
        grouped = self.__dict__.setdefault("_grouped", set())
        grouped.add(id(children[0]))
        return children[0]

    def lead(self, meta, children):
        """`* 0.2 + x`: the running value, then the operator and the rest, as if the running
        value were written first: (running * 0.2) + x, precedence and order kept."""
        op, rest = children
        grouped = self.__dict__.get("_grouped", set())
        op, running = str(op), Running(token_span(self.file, op))

        def before(e):  # `running op` put in front of the leftmost operand it binds to
            if isinstance(e, BinOp) and id(e) not in grouped and _PRECEDENCE[e.op] <= \
                    _PRECEDENCE[op]:
                left = before(e.left)
                return BinOp(e.op, left, e.right, _joined(left.span, e.span))
            return BinOp(op, running, e, _joined(running.span, e.span))

        return before(rest)

    def arith(self, meta, children):
        names = children[-1].names if isinstance(children[-1], NamesTail) else ()
        return Arith(children[0], self._before(meta, names), names)

    def call(self, meta, children):
        name, *args = children
        return Call(str(name), token_span(self.file, name), tuple(args), span_of(self.file, meta))
