"""Multi-head self-attention over a sequence of tokens (torch.nn.MultiheadAttention's
parameters, run through F.scaled_dot_product_attention)."""

from __future__ import annotations

from .base import (BOOL, FLOAT, INT, UNCHANGED_SHAPE, Arg, LayerError, LayerKind, call,
                   layer)
from .tokens import need_tokens


@layer("attention", family="linear", positional=("heads",), words={"nobias": ("bias", False)},
       nonlinear=True, fresh_output=True, global_field=True,
       summary="multi-head self-attention over a sequence (torch.nn.MultiheadAttention's weights)")
class Attention(LayerKind):
    weights = ("in_proj_weight", "out_proj.weight")
    args = (Arg("heads", INT, min=1, doc="attention heads; they split the channels evenly"),
            Arg("dropout", FLOAT, 0.0, min=0, max=1,
                doc="drop probability of the attention weights while training"),
            Arg("bias", BOOL, True, doc="biases on the projections (`nobias` turns them off)"))

    reference = {
        "input": "a sequence of N tokens of C channels (N×C)",
        "shape": UNCHANGED_SHAPE + "; `heads` must divide C",
        "params": "`4·C·C` (query, key, value and output projections), plus `4C` with biases",
        "macs": "`4·N·C·C` (the projections) + `2·N·N·C` (Q·Kᵀ and the weighted sum of V)",
        "rf": "every output token sees every input token: the whole input",
        "errors": "E-RANK (input is not a sequence: add `tokens`), E-GROUPS (heads do not "
                  "divide C)",
    }

    def shape(self, a, x):
        n, c = need_tokens("attention", x)
        if c % a.heads:
            raise LayerError("E-GROUPS", f"{a.heads} heads do not divide the {c} channels",
                             hint="the head count must divide the channel count", arg="heads")
        return x

    def params(self, a, x, y):
        c = x[1]
        return 4 * c * c + (4 * c if a.bias else 0)  # q, k, v and out projections

    def macs(self, a, x, y):
        # projections (q, k, v in, one out) and the two products Q·Kᵀ and A·V, as torchvision's
        # published GFLOPS (fvcore) count them
        n, c = x
        return 4 * n * c * c + 2 * n * n * c

    def receptive(self, a, x):
        return (1, 1), (1, 1)

    def describe(self, a):
        return f"attention {a.heads}"

    def torch(self, a, x):
        return call("archdsl.nn.attention:SelfAttention", x[1], a.heads, dropout=a.dropout,
                    bias=a.bias)
