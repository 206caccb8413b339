"""Arithmetic on tensors: a tensor and a number (`* 1.7015`, `1 - x`), a learnt tensor of a
declared shape (`param channel 1`), reductions over chosen axes (`mean hw keep`) and the
element-wise square root and reciprocal. An arithmetic statement (`y - x`, `(a + b) * 0.5`)
is made of these and the element-wise merges (add, sub, mul, div: merge.py), one node per
operation (archdsl/expand/arith.py)."""

from __future__ import annotations

from .base import (BOOL, CHOICE, FLOAT, UNCHANGED_SHAPE, Arg, LayerError, LayerKind, call,
                   fmt_shape, layer, numel)
from .types import show

_OWN = "archdsl.nn.arith:"

# the written operator of each `scalar` operation, and the word for it
OPERATORS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
WORDS = {symbol: word for word, symbol in OPERATORS.items()}


@layer("scalar", family="arith", positional=("value",), fresh_output=True,
       words={**{w: ("op", w) for w in OPERATORS}, "reversed": ("reversed", True)},
       summary="the input and a number, element-wise: what `* 1.7015` or `1 - x` is made of")
class Scalar(LayerKind):
    args = (Arg("op", CHOICE, choices=tuple(OPERATORS), doc="add, sub, mul or div"),
            Arg("value", FLOAT, doc="the number"),
            Arg("reversed", BOOL, False, doc="the number comes first: `1 - x`, `2 / x`"))

    reference = {
        "shape": UNCHANGED_SHAPE,
        "errors": "E-EXPR (division by zero)",
    }

    def rules(self, a, x, calc):
        if a.op == "div" and a.value == 0 and not a.reversed:
            raise LayerError("E-EXPR", "division by zero", arg="value")
        calc.same(f"{self.formula(a)}, element by element; no parameters; receptive field "
                  "unchanged")

    def formula(self, a) -> str:
        symbol, value = OPERATORS[a.op], show(float(a.value))
        return f"{value} {symbol} x" if a.reversed else f"x {symbol} {value}"

    def describe(self, a):
        return self.formula(a).replace("*", "×").replace("/", "÷")

    def torch(self, a, x):
        return call(_OWN + "Scalar", OPERATORS[a.op], float(a.value), a.reversed)


# `per` -> the shape of a learnt tensor on an input of each rank (map, sequence, vector)
_PER = {
    "scalar": lambda x: (1,) * len(x),
    "channel": lambda x: (x[0], 1, 1) if len(x) == 3 else (1, x[1]) if len(x) == 2 else x,
    "position": lambda x: (1, x[1], x[2]) if len(x) == 3 else (x[0], 1) if len(x) == 2 else x,
}


@layer("param", family="arith", positional=("init",), reshapes=True,
       words={w: ("per", w) for w in _PER},
       summary="a learnt tensor, one number per sample, channel or position, to use in "
               "arithmetic: `param channel 1 -> gamma; x * gamma`")
class Param(LayerKind):
    args = (Arg("per", CHOICE, choices=tuple(_PER),
                doc="scalar: one number; channel: one per channel (C×1×1 on a map, 1×C on a "
                    "sequence); position: one per H×W position, or per token"),
            Arg("init", FLOAT, doc="the value every number starts from"))

    reference = {
        "input": "anything: it reads only its input's shape and batch size",
        "shape": "the input's rank, size 1 along every axis but those `per` names",
        "params": "the product of its shape",
    }

    def rules(self, a, x, calc):
        shape = _PER[a.per](x)
        calc.output = tuple(calc.step(
            "output", f"one number per {a.per}, broadcast over the rest", fmt_shape(shape),
            list(shape), "it reads no values, only the input's shape and batch size"))
        n = numel(shape)
        calc.params = calc.step("parameters", "the product of the shape",
                                " * ".join(map(str, shape)), n,
                                f"learnt, starting at {show(float(a.init))}")

    def describe(self, a):
        return f"param {a.per} = {show(float(a.init))}"

    def torch(self, a, x):
        return call(_OWN + "Param", tuple(_PER[a.per](x)), float(a.init))


# the axes a reduction may name, per input rank (3: C×H×W, 2: N×C, 1: a vector), as the
# tensor's dimensions (the batch is 0)
AXES = {
    3: {"channels": (1,), "hw": (2, 3), "h": (2,), "w": (3,), "all": (1, 2, 3)},
    2: {"tokens": (1,), "channels": (2,), "all": (1, 2)},
    1: {"channels": (1,), "all": (1,)},
}
_OVER = ("channels", "hw", "h", "w", "tokens", "all")
REDUCE_WORDS = {"keep": ("keep", True), **{w: ("over", w) for w in _OVER}}
_WHAT = {3: "a C×H×W map", 2: "a sequence of tokens", 1: "a vector"}


class _Reduce(LayerKind):
    how = "mean"
    args = (Arg("over", CHOICE, choices=_OVER,
                doc="the axes: channels, hw (both spatial axes), h, w, tokens, or all"),
            Arg("keep", BOOL, False, doc="keep each reduced axis as size 1 (keepdim)",
                aliases=("keepdim",)))

    def dims(self, a, x) -> tuple:
        axes = AXES.get(len(x), {})
        if a.over not in axes:
            raise LayerError("E-RANK", f"{self.name} over `{a.over}` needs another input: it "
                             f"reads {_WHAT.get(len(x), 'a tensor')} ({fmt_shape(x)})",
                             arg="over", hint="on this input write one of " +
                             ", ".join(f"`{self.name} {w}`" for w in axes))
        return axes[a.over]

    def rules(self, a, x, calc):
        dims = self.dims(a, x)
        out = [1 if i + 1 in dims else d for i, d in enumerate(x)] if a.keep else \
            [d for i, d in enumerate(x) if i + 1 not in dims]
        calc.output = tuple(calc.step(
            "output", f"the {self.how} over {a.over}" + (", kept as size 1" if a.keep else ""),
            f"{fmt_shape(x)} -> {fmt_shape(out) or 'a number'}", out,
            "no parameters; 0 MACs counted (only weights' multiply-accumulates are)"))
        if not out:
            raise LayerError("E-RANK", f"{self.name} over all axes leaves one number per sample",
                             arg="over", hint="write `keep` to keep it as 1×1×1")
        spatial = [d for d in dims if d >= 2] if len(x) == 3 else []
        if spatial:
            k = (x[1] if 2 in spatial else 1, x[2] if 3 in spatial else 1)
            calc.window(k, (1, 1), f"each output reads the whole {a.over} extent")

    def describe(self, a):
        return f"{self.name} {a.over}" + (" keep" if a.keep else "")

    def torch(self, a, x):
        return call(_OWN + "Reduce", self.how, self.dims(a, x), a.keep, *self.extra(a))

    def extra(self, a) -> tuple:
        return ()


@layer("mean", family="arith", positional=("over",), words=REDUCE_WORDS, reshapes=True,
       summary="the mean over chosen axes (`mean hw keep`: a global average, kept C×1×1)")
class Mean(_Reduce):
    reference = {"shape": "the input without the axes `over` names (size 1 with `keep`)",
                 "errors": "E-RANK (an axis the input lacks)"}


@layer("sum", family="arith", positional=("over",), words=REDUCE_WORDS, reshapes=True,
       summary="the sum over chosen axes")
class Sum(_Reduce):
    how = "sum"
    reference = Mean.reference


@layer("norm", family="arith", positional=("over",), words=REDUCE_WORDS, nonlinear=True,
       summary="the p-norm over chosen axes (`norm hw keep`: GRN's per-channel L2 norm)")
class Norm(_Reduce):
    how = "norm"
    args = _Reduce.args + (Arg("p", FLOAT, 2.0, min=1, doc="which norm: 2 (Euclidean), 1, …"),)
    reference = Mean.reference

    def extra(self, a):
        return (float(a.p),)


@layer("sqrt", family="arith", nonlinear=True, summary="the element-wise square root")
class Sqrt(LayerKind):
    def torch(self, a, x):
        return call(_OWN + "Sqrt")


@layer("reciprocal", family="arith", nonlinear=True, summary="the element-wise reciprocal, 1 / x")
class Reciprocal(LayerKind):
    def torch(self, a, x):
        return call(_OWN + "Reciprocal")
