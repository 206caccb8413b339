"""Fully connected layers."""

from __future__ import annotations

from .base import call, BOOL, INT, Arg, LayerKind, layer, need_vector


@layer("linear", family="linear", positional=("out",), words={"nobias": ("bias", False)},
       summary="fully connected layer (torch.nn.Linear) on a flat vector, or on each token of a "
               "sequence", fresh_output=True, classifier=True)
class Linear(LayerKind):
    input_size_in_torch = "first"
    weights = ("weight",)
    args = (Arg("out", INT, min=1, doc="output features"),
            Arg("bias", BOOL, True, doc="learn an additive bias (`nobias` turns it off)"))

    reference = {
        "input": "a vector of N features, or a sequence of T tokens of N channels (T×N)",
        "shape": "a vector of `out` features; on a sequence, each token: T × `out`",
        "params": "`N·out`, plus `out` with a bias",
        "macs": "`N·out`, times T on a sequence",
        "rf": "a vector keeps the receptive field it arrived with",
        "errors": "E-RANK (input is a feature map: add `flatten`)",
    }

    def shape(self, a, x):
        if len(x) == 2:  # a sequence of tokens (NxC): each token, as nn.Linear does
            return (x[0], a.out)
        need_vector("linear", x)
        return (a.out,)

    def params(self, a, x, y):
        return x[-1] * a.out + (a.out if a.bias else 0)

    def macs(self, a, x, y):
        return (x[0] if len(x) == 2 else 1) * x[-1] * a.out

    def describe(self, a):
        return f"linear {a.out}"

    def torch(self, a, x):
        return call("Linear", x[-1], a.out, bias=a.bias)
