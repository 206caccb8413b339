"""The syntax tree: what the parser (syntax.py) makes of a spec, one frozen dataclass per
construct, each with its Span."""

from __future__ import annotations

from dataclasses import dataclass, field
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
