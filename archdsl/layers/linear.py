"""Fully connected layers."""

from __future__ import annotations

from .base import call, BOOL, INT, Arg, LayerKind, layer, need_vector


@layer("linear", family="linear", positional=("out",), words={"nobias": ("bias", False)},
       summary="fully connected layer (torch.nn.Linear) on a flat vector, or on each token of a "
               "sequence", fresh_output=True, classifier=True)
class Linear(LayerKind):
    aliases = {"dense": "", "fc": "", "innerproduct": "", "fullyconnected": ""}
    orders = {"PyTorch's Linear": ("in", "out")}
    weights = ("weight",)
    args = (Arg("out", INT, min=1, doc="output features",
                aliases=("out_features", "units", "num_output")),
            Arg("bias", BOOL, True, doc="learn an additive bias (`nobias` turns it off)",
                aliases=("use_bias", "bias_term")))

    reference = {
        "input": "a vector of N features, or a sequence of T tokens of N channels (T×N)",
        "shape": "a vector of `out` features; on a sequence, each token: T × `out`",
        "params": "`N·out`, plus `out` with a bias",
        "macs": "`N·out`, times T on a sequence",
        "rf": "a vector keeps the receptive field it arrived with",
        "errors": "E-RANK (input is a feature map: add `flatten`)",
    }

    def rules(self, a, x, calc):
        if len(x) != 2:  # a sequence of tokens (NxC): each token, as nn.Linear does
            need_vector("linear", x)
        features = x[-1]
        weight = calc.step("weight", "I * O (one per input per output)", f"{features} * {a.out}",
                           features * a.out)
        bias = calc.step("bias", "O (one per output)", str(a.out), a.out) if a.bias else \
            calc.step("bias", "none (nobias)", "0", 0)
        calc.params = calc.step("parameters", "weight + bias", f"{weight} + {bias}", weight + bias)
        if len(x) == 2:
            n = x[0]
            calc.output = (n, a.out)
            calc.macs = calc.step(
                "MACs", "N * I * O (one multiply-add per weight, for each of N tokens)",
                f"{n} * {features} * {a.out}", n * features * a.out,
                "the same weights at every token: nn.Linear acts on the last dimension")
            return
        calc.macs = calc.step("MACs", "I * O (one multiply-add per weight)",
                              f"{features} * {a.out}", features * a.out)
        calc.output = (a.out,)

    def describe(self, a):
        return f"linear {a.out}"

    def torch(self, a, x):
        return call("Linear", x[-1], a.out, bias=a.bias)
