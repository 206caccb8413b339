"""Multi-head self-attention over a sequence of tokens (torch.nn.MultiheadAttention's
parameters, run through F.scaled_dot_product_attention)."""

from __future__ import annotations

from .base import (BOOL, FLOAT, INT, UNCHANGED_SHAPE, Arg, LayerError, LayerKind, call,
                   layer)
from .calc import linear_parts
from .tokens import need_tokens


@layer("attention", family="linear", positional=("heads",), words={"nobias": ("bias", False)},
       nonlinear=True, fresh_output=True, global_field=True,
       summary="multi-head self-attention over a sequence (torch.nn.MultiheadAttention's weights)")
class Attention(LayerKind):
    weights = ("in_proj_weight", "out_proj.weight")
    aliases = {"multiheadattention": ""}
    args = (Arg("heads", INT, min=1, doc="attention heads; they split the channels evenly",
                aliases=("num_heads",)),
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

    def rules(self, a, x, calc):
        n, c = need_tokens("attention", x)
        if c % a.heads:
            raise LayerError("E-GROUPS", f"{a.heads} heads do not divide the {c} channels",
                             hint="the head count must divide the channel count", arg="heads")
        calc.step("head size", "C / heads (heads must divide C)", f"{c} / {a.heads}", c // a.heads,
                  "the heads split the channels: the parameters do not depend on their number")
        calc.same("softmax(Q K^T / sqrt(C / heads)) V per head, heads joined, then out_proj")
        parts = linear_parts(calc, "in_proj", c, c, a.bias, times=3,
                             note="q, k and v stacked: nn.MultiheadAttention's in_proj_weight "
                                  "(3C x C)")
        parts += linear_parts(calc, "out_proj", c, c, a.bias)
        calc.params = calc.step("parameters", "4 * C * C" + (" + 4 * C" if a.bias else " (nobias)"),
                                f"4 * {c} * {c}" + (f" + 4 * {c}" if a.bias else ""), sum(parts),
                                "in_proj + out_proj: " + " + ".join(map(str, parts)))
        # the projections (q, k, v in, one out) and the two products Q·Kᵀ and A·V, as
        # torchvision's published GFLOPS (fvcore) count them
        proj = calc.step("projection MACs", "4 * N * C * C (q, k, v and the output, per token)",
                         f"4 * {n} * {c} * {c}", 4 * n * c * c)
        products = calc.step("attention MACs", "2 * N * N * C (Q K^T, then the weights times V)",
                             f"2 * {n} * {n} * {c}", 2 * n * n * c,
                             "each of a head's N * N scores is a dot product of C / heads values: "
                             "N * N * C over all heads; A V the same")
        calc.macs = calc.step("MACs", "projections + products", f"{proj} + {products}",
                              proj + products, "as torchvision's published GFLOPS (fvcore) count "
                                               "them; softmax, scaling and biases are not counted")
        calc.why = ("each output token mixes all N input tokens, so it sees the whole input "
                    "image; the jump is kept")

    def describe(self, a):
        return f"attention {a.heads}"

    def torch(self, a, x):
        return call("archdsl.nn.attention:SelfAttention", x[1], a.heads, dropout=a.dropout,
                    bias=a.bias)
