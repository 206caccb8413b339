"""Tokens: a feature map as a sequence, the class token, the learnt position embedding, and
one token picked out as a vector (torchvision's VisionTransformer, taken apart into layers).

A sequence of N tokens of C channels has the shape (N, C), written `NxC` in the check table;
as a tensor it is (batch, N, C), what torchvision's encoder holds. Layers that work per
token (`attention`, and the element-wise ones) keep it; `token` turns it into a vector.
"""

from __future__ import annotations

from .base import (INT, UNCHANGED_SHAPE, Arg, LayerError, LayerKind, call, fmt_shape, layer,
                   need_map)

_OWN = "archdsl.nn.tokens:"


def need_tokens(kind: str, x) -> tuple[int, int]:
    """The (N, C) of a sequence input, or the error a learner needs to see."""
    if len(x) != 2:
        what = "a CxHxW feature map" if len(x) == 3 else "a vector"
        raise LayerError("E-RANK", f"{kind} needs a sequence of tokens (NxC), but its input is "
                         f"{what} ({fmt_shape(x)})",
                         hint="turn a feature map into a sequence with `tokens` first"
                         if len(x) == 3 else "it works on the sequence, before `token`")
    return x


@layer("tokens", family="shape", reshapes=True,
       summary="CxHxW feature map → sequence of H·W tokens of C channels (row by row)")
class Tokens(LayerKind):
    reference = {
        "input": "a C×H×W feature map",
        "shape": "a sequence of `H·W` tokens of C channels (H·W × C), row by row",
        "errors": "E-RANK (input is not a feature map)",
    }

    def rules(self, a, x, calc):
        c, h, w = need_map("tokens", x)
        n = calc.step("tokens", "N = H * W (one token per position, row by row)", f"{h} * {w}",
                      h * w)
        calc.step("channels", "C per token = C of the map", str(c), c,
                  "no parameters: values are only re-arranged, x.flatten(2).transpose(1, 2); each "
                  "token sees what its position saw, so the receptive field is kept")
        calc.output = (n, c)

    def torch(self, a, x):
        return call(_OWN + "Tokens")


@layer("classtoken", family="shape", positional=("dim",), reshapes=True,
       summary="a learnt token of `dim` channels (ViT's class token): "
               "`concat< classtoken c | … >` puts it first")
class ClassToken(LayerKind):
    args = (Arg("dim", INT, min=1, doc="channels of the token"),)

    reference = {
        "input": "anything (it reads no values; written as a branch of `concat`)",
        "shape": "a sequence of one token of `dim` channels (1 × dim)",
        "params": "`dim`",
    }

    def rules(self, a, x, calc):
        d = a.dim
        calc.output = (1, d)
        calc.step("output", "1 x dim: one token", f"1x{d}", [1, d],
                  "it reads only the batch size of its input; `concat< classtoken c | … >` puts "
                  "it first")
        calc.params = calc.step("parameters", "dim: the token's own values, learnt", str(d), d,
                                "torchvision's class_token, a 1 x 1 x dim tensor")

    def describe(self, a):
        return f"classtoken {a.dim}"

    def torch(self, a, x):
        return call(_OWN + "ClassToken", a.dim)


@layer("posembed", family="shape", reshapes=True,
       summary="adds a learnt position embedding: one C-channel offset per token")
class PositionEmbedding(LayerKind):
    reference = {
        "input": "a sequence of N tokens of C channels",
        "shape": UNCHANGED_SHAPE,
        "params": "`N·C`",
        "errors": "E-RANK (input is not a sequence)",
    }

    def rules(self, a, x, calc):
        n, c = need_tokens("posembed", x)
        calc.params = calc.step("parameters", "N * C: one learnt C-vector per token position",
                                f"{n} * {c}", n * c, "torchvision's pos_embedding, 1 x N x C (N "
                                                     "counts a class token put first)")
        calc.same("x + the embedding: an element-wise addition, 0 MACs counted")

    def torch(self, a, x):
        return call(_OWN + "PositionEmbedding", x[0], x[1])


@layer("token", family="shape", positional=("index",), reshapes=True,
       summary="the token at `index` of a sequence as a vector (0: the class token)")
class SelectToken(LayerKind):
    args = (Arg("index", INT, 0, min=0, doc="which token (0: the first, the class token)"),)

    reference = {
        "input": "a sequence of N tokens of C channels",
        "shape": "a vector of C features (token `index`)",
        "errors": "E-RANK (input is not a sequence), E-ARG-RANGE (`index` ≥ N)",
    }

    def rules(self, a, x, calc):
        n, c = need_tokens("token", x)
        if a.index >= n:
            raise LayerError("E-ARG-RANGE", f"token {a.index} is past the end of the {n} tokens",
                             hint=f"pick a token from 0 to {n - 1}", arg="index")
        calc.output = (c,)
        calc.step("output", "C: token `index` of the N as a vector", str(c), c,
                  f"token {a.index} of {n}" + (" (the class token, when `concat< classtoken c | "
                                               "… >` put it first)" if a.index == 0 else ""))
        calc.step("parameters", "none: one token is picked", "0", 0)

    def describe(self, a):
        return f"token {a.index}"

    def torch(self, a, x):
        return call(_OWN + "SelectToken", a.index)
