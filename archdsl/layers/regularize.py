"""Stochastic depth: a residual body's output dropped per sample while training."""

from __future__ import annotations

from .base import CHOICE, FLOAT, Arg, LayerKind, call, layer


@layer("stochasticdepth", family="shape", positional=("p",), passes_input=True, reshapes=True,
       words={"row": ("mode", "row"), "batch": ("mode", "batch")},
       summary="zero each sample's input with probability p while training, the rest scaled "
               "by 1/(1-p) (torchvision's StochasticDepth); the identity in eval mode")
class StochasticDepth(LayerKind):
    args = (Arg("p", FLOAT, min=0, max=1, doc="drop probability"),
            Arg("mode", CHOICE, "row", choices=("row", "batch"),
                doc="`row`: per sample; `batch`: the whole batch at once"))

    def describe(self, a):
        return f"stochasticdepth {a.p:g}"

    def torch(self, a, x):
        return call("archdsl.nn.regularize:StochasticDepth", a.p, a.mode)
