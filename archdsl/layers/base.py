"""The layer registry: each layer kind declares, in one class, its arguments, shape rule,
parameter count, MACs, receptive-field step and torch builder.

A new layer is one decorated class in one of the family modules beside this file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

Shape = tuple  # (C, H, W) for feature maps, (N,) for vectors; never the batch dimension

REQUIRED = object()

# Argument types, resolved by archdsl.expand.resolve_args
INT, FLOAT, BOOL, PAIR, PADDING, CHOICE = "int", "float", "bool", "pair", "padding", "choice"


@dataclass(frozen=True)
class Arg:
    """One argument of a layer kind, as the user writes it."""

    name: str
    type: str
    default: Any = REQUIRED
    flag: str | None = None  # short flag letter: `k3`, `s2`, `p1`, `d2`, `g32`
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


class LayerError(Exception):
    """Raised by a shape rule where PyTorch would raise; `arg` names the culprit argument."""

    def __init__(self, code: str, message: str, hint: str | None = None, arg: str | None = None,
                 label: str | None = None):
        super().__init__(message)
        self.code, self.message, self.hint, self.arg, self.label = code, message, hint, arg, label


class Args:
    """Resolved argument values with attribute access; `given` holds those the user wrote."""

    def __init__(self, values: dict[str, Any], given: frozenset[str] = frozenset()):
        self.__dict__["_values"] = dict(values)
        self.__dict__["given"] = frozenset(given)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        raise AttributeError("Args are read-only")

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def __eq__(self, other):
        return isinstance(other, Args) and self._values == other._values

    def __repr__(self):
        return f"Args({self._values!r})"


class LayerKind:
    """Base of every layer kind. Subclasses override what differs from an identity layer."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""  # conv, pool, norm, activation, linear, shape
    args: ClassVar[tuple[Arg, ...]] = ()
    positional: ClassVar[tuple[str, ...]] = ()
    words: ClassVar[dict[str, tuple[str, Any]]] = {}
    nonlinear: ClassVar[bool] = False  # does it break a chain of linear maps (for lints)?
    summary: ClassVar[str] = ""  # one line for docs and help

    # -- declared arguments -------------------------------------------------------------
    def arg(self, name: str) -> Arg | None:
        for a in self.args:
            if a.name == name:
                return a
        return None

    def flags(self) -> dict[str, str]:
        """Short flag letter -> argument name: {"k": "kernel", "s": "stride", …}."""
        cached = self.__dict__.get("_flags")
        if cached is None:
            cached = self.__dict__["_flags"] = {a.flag: a.name for a in self.args if a.flag}
        return cached

    # -- the static rules ---------------------------------------------------------------
    def shape(self, a: Args, x: Shape) -> Shape:
        return x

    def params(self, a: Args, x: Shape, y: Shape) -> int:
        return 0

    def buffers(self, a: Args, x: Shape, y: Shape) -> int:
        return 0

    def macs(self, a: Args, x: Shape, y: Shape) -> int:
        return 0

    def receptive(self, a: Args, x: Shape) -> tuple[tuple[int, int], tuple[int, int]]:
        """Effective kernel and stride along (H, W): how this layer grows the receptive field."""
        return (1, 1), (1, 1)

    def describe(self, a: Args) -> str:
        """A compact label for drawings: the kind and its key arguments."""
        return self.name

    # -- the torch side -----------------------------------------------------------------
    def build(self, a: Args, x: Shape):
        import torch.nn as nn

        return nn.Identity()

    @property
    def weighted(self) -> bool:
        return self.family in ("conv", "linear")


REGISTRY: dict[str, LayerKind] = {}


def layer(name: str, *, family: str, positional: tuple[str, ...] = (),
          words: dict[str, tuple[str, Any]] | None = None, nonlinear: bool = False,
          summary: str = ""):
    """Class decorator that registers one layer kind under `name`."""

    def register(cls):
        cls.name, cls.family, cls.positional = name, family, tuple(positional)
        cls.words = dict(words or {})
        cls.nonlinear, cls.summary = nonlinear, summary or (cls.__doc__ or "").strip().split("\n")[0]
        if name in REGISTRY:
            raise ValueError(f"layer kind {name!r} registered twice")
        REGISTRY[name] = cls()
        return cls

    return register


# ----------------------------------------------------------------------------- shape helpers


def fmt_shape(shape: Shape | None) -> str:
    """`64x55x55` for a feature map, `4096` for a vector."""
    if shape is None:
        return "?"
    return "x".join(str(d) for d in shape)


def fmt_pair(pair) -> str:
    """`3×3` for a kernel or stride pair, `1×7` for a rectangular one."""
    return f"{pair[0]}×{pair[1]}"


def numel(shape: Shape) -> int:
    return math.prod(shape)


def need_map(kind: str, x: Shape) -> tuple[int, int, int]:
    """The (C, H, W) of a feature-map input, or the error a learner needs to see."""
    if len(x) != 3:
        raise LayerError("E-RANK", f"{kind} needs a CxHxW feature map, but its input is a vector of "
                         f"{fmt_shape(x)} features",
                         hint="put it before `flatten`, or use `linear` on vectors")
    return x


def need_vector(kind: str, x: Shape) -> int:
    if len(x) != 1:
        raise LayerError("E-RANK", f"{kind} needs a flat vector, but its input is a {fmt_shape(x)} "
                         "feature map", hint=f"add `flatten` (or `adaptiveavgpool 1; flatten`) before "
                                             f"`{kind}`")
    return x[0]


def window_output(size: int, kernel: int, stride: int, pad_l: int, pad_r: int, dilation: int,
                  ceil_mode: bool) -> int:
    """PyTorch's output size of a sliding window (pooling_output_shape_pad_lr)."""
    effective = dilation * (kernel - 1) + 1
    numerator = size + pad_l + pad_r - effective + ((stride - 1) if ceil_mode else 0)
    out = numerator // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad_l:
        out -= 1
    return out
