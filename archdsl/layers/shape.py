"""Layers that move or drop values without learning anything: flatten, dropout, identity."""

from __future__ import annotations

from .base import call, FLOAT, UNCHANGED_SHAPE, Arg, LayerKind, layer, need_map, numel


@layer("flatten", family="shape", reshapes=True,
       summary="CxHxW feature map → vector of C·H·W features")
class Flatten(LayerKind):
    reference = {
        "input": "a feature map (a vector passes through unchanged)",
        "shape": "a vector of `C·H·W` features",
        "rf": "kernel `H×W`, stride 1: whatever reads the vector sees the whole map",
    }

    def rules(self, a, x, calc):
        n = numel(x)
        calc.step("output", "C * H * W features" if len(x) == 3 else "output = input",
                  " * ".join(str(d) for d in x), n, "no parameters: values are only re-arranged")
        calc.output = (n,)
        if len(x) == 3:  # whatever reads the vector sees the whole map: count it here
            calc.window((x[1], x[2]), (1, 1),
                        "whatever reads the vector sees the whole map: a window of H x W")

    def torch(self, a, x):
        return call("Flatten", 1)


@layer("dropout", family="shape", positional=("p",), passes_input=True, reshapes=True,
       summary="zero each value with probability p while training")
class Dropout(LayerKind):
    args = (Arg("p", FLOAT, 0.5, min=0, max=1, doc="drop probability", aliases=("rate",)),)

    def describe(self, a):
        return f"dropout {a.p:g}"

    def torch(self, a, x):
        return call("Dropout", a.p)


@layer("dropout2d", family="shape", positional=("p",), passes_input=True, reshapes=True,
       summary="zero whole channels with probability p while training")
class Dropout2d(LayerKind):
    aliases = {"spatialdropout": ""}
    args = (Arg("p", FLOAT, 0.5, min=0, max=1, doc="drop probability", aliases=("rate",)),)

    reference = {"input": "a C×H×W feature map", "shape": UNCHANGED_SHAPE, "errors": "E-RANK"}

    def rules(self, a, x, calc):
        need_map("dropout2d", x)
        super().rules(a, x, calc)

    def describe(self, a):
        return f"dropout2d {a.p:g}"

    def torch(self, a, x):
        return call("Dropout2d", a.p)


@layer("identity", family="shape", passes_input=True, reshapes=True,
       summary="passes its input through unchanged")
class Identity(LayerKind):
    pass
