"""Stochastic depth: a residual body's output dropped per sample while training."""

from __future__ import annotations

from .base import CHOICE, FLOAT, UNCHANGED_SHAPE, Arg, LayerKind, call, layer


@layer("stochasticdepth", family="shape", positional=("p",), passes_input=True, reshapes=True,
       words={"row": ("mode", "row"), "batch": ("mode", "batch")},
       summary="zero each sample's input with probability p while training, the rest scaled "
               "by 1/(1-p) (torchvision's StochasticDepth); the identity in eval mode")
class StochasticDepth(LayerKind):
    aliases = {"droppath": ""}
    args = (Arg("p", FLOAT, min=0, max=1, doc="drop probability"),
            Arg("mode", CHOICE, "row", choices=("row", "batch"),
                doc="`row`: per sample; `batch`: the whole batch at once"))

    reference = {"shape": UNCHANGED_SHAPE}

    def rules(self, a, x, calc):
        scope = "each sample's input" if a.mode == "row" else "the whole batch's input"
        calc.same(f"while training, {scope} is zeroed with probability {a.p:g} and the rest "
                  f"scaled by 1 / (1 - p); in eval mode the identity (torchvision's "
                  "StochasticDepth)")
        calc.step("parameters", "none", "0", 0,
                  "no MACs, and no window slides: the receptive field is kept")

    def describe(self, a):
        return f"stochasticdepth {a.p:g}"

    def torch(self, a, x):
        return call("archdsl.nn.regularize:StochasticDepth", a.p, a.mode)
