"""Layers that move values to other places without learning anything: a sequence's two axes
swapped (`transpose`, MLP-Mixer's token mixing), the values read into a declared shape
(`reshape`), and a map cut into patches and put back (`unfold`, `fold`, MobileViT's). Their
modules are archdsl's own (archdsl/nn/reshape.py).

A feature map keeps its channels first here: archdsl has no channels-last map (every later
layer would read H as the channels). What channels-last is for in PyTorch code, a norm or a
Linear over the channels at each position, is `layernorm2d` and `pointwise`; `tokens` makes
a map a sequence, which `transpose` then turns about.

Also the argument types these kinds and the channel kinds (channels.py) take that types.py
has not: several whole numbers (`4x64x64`, `5x1x1x1`), and a number that may be left out.
"""

from __future__ import annotations

import math

from .base import (PAIR, Arg, LayerError, LayerKind, call, fmt_pair, fmt_shape, layer, need_map,
                   numel)
from .types import ArgType, ArgumentError, Int, show

_NN = "archdsl.nn.reshape:"


# ----------------------------------------------------------------------------- argument types


class Dims(ArgType):
    """One whole number or several joined by `x` (`4x64x64`, `5x1x1x1`), as a tuple; `most`
    of them. `doc` and `default_doc` are what the layer reference prints."""

    name, numeric = "dims", True

    def __init__(self, most: int | None = None, default_doc: str = ""):
        self.most, self.default_doc = most, default_doc
        self.doc = "`N` or `HxW`" if most == 2 else "`N` or `AxBx…`"

    def coerce(self, arg, value, kind):
        if isinstance(value, (str, bool)) or not isinstance(value, (int, float, tuple)):
            raise ArgumentError("E-ARG-TYPE", f"{kind} {arg.name} takes whole numbers joined by "
                                f"`x` (such as `4x8x8`), got `{show(value)}`")
        out = tuple(self.whole(arg, v, kind) for v in (value if isinstance(value, tuple)
                                                       else (value,)))
        if self.most is not None and len(out) > self.most:
            raise ArgumentError("E-ARG-TYPE", f"{kind} {arg.name} takes at most {self.most} "
                                f"sizes, got {len(out)} ({show(out)})",
                                hint="CxHxW for a map, NxC for a sequence, N for a vector"
                                if self.most == 3 else f"write `{arg.name}=HxW`")
        return self.in_range(arg, out, kind)


class OptionalInt(Int):
    """A whole number whose default (None) means something the kind works out."""

    doc = "whole number"

    def __init__(self, default_doc: str):
        self.default_doc = default_doc


SHAPE_3 = Dims(3)


def axis_word(x) -> str:
    """What the first axis of `x` holds, in the learner's words."""
    return {1: "features", 2: "tokens"}.get(len(x), "channels")


# ----------------------------------------------------------------------------- transpose


@layer("transpose", family="shape", reshapes=True, global_field=True,
       summary="a sequence's two axes swapped: N tokens of C channels become C tokens of N "
               "(MLP-Mixer's token mixing)")
class Transpose(LayerKind):
    aliases = {"permute": "", "swapaxes": ""}

    reference = {
        "input": "a sequence of N tokens of C channels (N×C)",
        "shape": "C × N (`x.transpose(1, 2)`): `linear`, `layernorm` and the activations then "
                 "work along the N axis, across the tokens",
        "rf": "whatever reads a transposed row mixes every token: the whole input",
        "errors": "E-RANK (a feature map: archdsl keeps a map's channels first; `tokens` makes "
                  "it a sequence, `layernorm2d` and `pointwise` work over its channels; a "
                  "vector)",
    }

    def rules(self, a, x, calc):
        if len(x) == 3:
            raise LayerError("E-RANK", f"transpose swaps a sequence's two axes, but its input is "
                             f"a {fmt_shape(x)} feature map", hint="a map keeps its channels first "
                             "in archdsl: `tokens` makes it a sequence (H·W x C) to transpose; "
                             "`layernorm2d` and `pointwise` work over the channels at each "
                             "position, as channels-last code does")
        if len(x) == 1:
            raise LayerError("E-RANK", f"transpose swaps a sequence's two axes, but its input is "
                             f"a vector of {x[0]} features", hint="transpose the sequence (NxC) "
                             "before `token` or `flatten`")
        n, c = x
        calc.output = tuple(calc.step(
            "output", "C x N (the two axes swapped)", f"{c}x{n}", [c, n],
            f"x.transpose(1, 2): {n} tokens of {c} channels become {c} rows of {n} values; "
            "linear, layernorm and the activations work on the last axis, now across the tokens"))
        calc.step("parameters", "none: values are only moved", "0", 0)
        calc.why = ("each row now holds one channel of every token: what reads it mixes every "
                    "position, so the field is the whole input")

    def torch(self, a, x):
        return call(_NN + "TransposeTokens")


# ----------------------------------------------------------------------------- reshape


@layer("reshape", family="shape", positional=("out",), reshapes=True, global_field=True,
       summary="the values read in order into a declared shape (x.reshape): CxHxW a map, NxC "
               "a sequence, N a vector")
class Reshape(LayerKind):
    aliases = {"view": ""}
    args = (Arg("out", SHAPE_3, min=1, aliases=("shape", "target_shape"),
                doc="the output shape: CxHxW (a map), NxC (a sequence) or N (a vector)"),)

    reference = {
        "input": "anything",
        "shape": "`out`, which must hold as many values as the input (no `-1`: archdsl knows "
                 "every size, and says the one that fits)",
        "rf": "values move to other positions: the whole input",
        "errors": "E-SHAPE (`out` holds another number of values than the input)",
    }

    def rules(self, a, x, calc):
        have = calc.step("values in", " * ".join("CHW"[:len(x)]) if len(x) > 1 else "N",
                         " * ".join(map(str, x)), numel(x))
        want = calc.step("values out", "the product of `out`", " * ".join(map(str, a.out)),
                         numel(a.out))
        if have != want:
            raise LayerError("E-SHAPE", f"reshape {fmt_shape(a.out)} needs {want:,} values, but "
                             f"its input {fmt_shape(x)} holds {have:,}",
                             hint=_reshape_hint(a.out, have), arg="out")
        calc.output = tuple(calc.step("output", "out (the values in order, x.reshape)",
                                      fmt_shape(a.out), list(a.out),
                                      "no parameters: values are only re-arranged"))
        calc.pads = False  # no window: nothing reads padding
        calc.why = "values move to other positions: the field is taken as the whole input"

    def describe(self, a):
        return f"reshape {fmt_shape(a.out)}"

    def torch(self, a, x):
        return call(_NN + "Reshape", *a.out)


def _reshape_hint(out: tuple, have: int) -> str:
    rest = numel(out[1:])
    if len(out) > 1 and have % rest == 0:
        return f"`reshape {fmt_shape((have // rest,) + tuple(out[1:]))}` holds them all"
    return f"the sizes must multiply to {have:,}"


# ----------------------------------------------------------------------------- patches


@layer("unfold", family="shape", positional=("patch",), reshapes=True,
       summary="a map cut into patches, as a sequence of P·N tokens: pixel p of each of the "
               "N patches, then pixel p + 1 (MobileViT's unfold)")
class Unfold(LayerKind):
    args = (Arg("patch", PAIR, 2, min=1, doc="patch size, `2` or `HxW`",
                aliases=("patch_size",)),)

    reference = {
        "input": "a C×H×W feature map",
        "shape": "a sequence of `P·N` tokens of C channels, P = patch_h·patch_w pixels of a "
                 "patch, N = (H/patch_h)·(W/patch_w) patches; token `p·N + n` is pixel p of "
                 "patch n (timm's MobileVitBlock holds the same values as (B·P, N, C)). Not "
                 "torch.nn.Unfold (im2col)",
        "errors": "E-RANK; E-SHAPE (H or W not a multiple of the patch: timm resizes the map, "
                  "archdsl asks for a size that fits)",
    }

    def rules(self, a, x, calc):
        c, h, w = need_map("unfold", x)
        ph, pw = a.patch
        for size, p, axis in ((h, ph, "H"), (w, pw, "W")):
            if size % p:
                raise LayerError("E-SHAPE", f"unfold {fmt_pair(a.patch)} needs H and W that are "
                                 f"multiples of the patch, but the map is {h}x{w} ({axis} = "
                                 f"{size})", arg="patch",
                                 hint=f"use a patch that divides {h}x{w}, or give the map a size "
                                      f"that {p} divides (timm's MobileViT resizes it)")
        area = calc.step("pixels per patch", "P = patch_h * patch_w", f"{ph} * {pw}", ph * pw)
        patches = calc.step("patches", "N = (H / patch_h) * (W / patch_w)",
                            f"({h} / {ph}) * ({w} / {pw})", (h // ph) * (w // pw))
        n = calc.step("tokens", "P * N", f"{area} * {patches}", area * patches,
                      "token p * N + n is pixel p of patch n: the N patches' pixel 0, then "
                      "their pixel 1, …; timm's MobileViT holds them as P sequences of N "
                      "tokens in the batch axis")
        calc.output = (n, c)
        calc.step("parameters", "none: values are only moved", "0", 0,
                  "each token is one pixel: the receptive field is kept")

    def describe(self, a):
        return f"unfold {fmt_pair(a.patch)} patches"

    def torch(self, a, x):
        return call(_NN + "PatchUnfold", *a.patch)


@layer("fold", family="shape", positional=("patch",), reshapes=True,
       summary="the inverse of `unfold`: a sequence of P·N tokens back into a C×H×W map")
class Fold(LayerKind):
    args = (Arg("patch", PAIR, 2, min=1, doc="patch size, `2` or `HxW`",
                aliases=("patch_size",)),
            Arg("size", Dims(2, "square"), None, min=1,
                doc="the map's HxW; left out, the patches make a square"))

    reference = {
        "input": "a sequence of P·N tokens of C channels, as `unfold` makes it",
        "shape": "C × H × W: `size`, or without it a square of √N × √N patches",
        "errors": "E-RANK (input is not a sequence); E-SHAPE (the tokens are not whole "
                  "patches, or do not make the map `size` or a square)",
    }

    def rules(self, a, x, calc):
        if len(x) != 2:
            raise LayerError("E-RANK", f"fold puts a sequence back into a map, but its input is "
                             f"{'a vector' if len(x) == 1 else 'a feature map'} ({fmt_shape(x)})",
                             hint="`fold` follows `unfold` and the layers on its tokens")
        tokens, c = x
        ph, pw = a.patch
        area = calc.step("pixels per patch", "P = patch_h * patch_w", f"{ph} * {pw}", ph * pw)
        if tokens % area:
            raise LayerError("E-SHAPE", f"fold {fmt_pair(a.patch)} needs whole patches of "
                             f"{area} tokens, but the sequence has {tokens}", arg="patch",
                             hint="give `fold` the patch that `unfold` cut")
        n = calc.step("patches", "N = tokens / P", f"{tokens} / {area}", tokens // area)
        h, w = _fold_size(a, n, calc)
        calc.output = tuple(calc.step("output", "C x H x W", f"{c}x{h}x{w}", [c, h, w],
                                      "pixel p of patch n is token p * N + n, as `unfold` "
                                      "made them"))
        calc.step("parameters", "none: values are only moved", "0", 0)

    def describe(self, a):
        return f"fold {fmt_pair(a.patch)} patches"

    def torch(self, a, x):
        y = self.shape(a, x)
        return call(_NN + "PatchFold", *a.patch, *y[1:])


def _fold_size(a, n: int, calc) -> tuple[int, int]:
    """The map's H and W: `size`, or a square of patches."""
    ph, pw = a.patch
    if a.size is None:
        side = math.isqrt(n)
        if side * side != n:
            raise LayerError("E-SHAPE", f"fold cannot make a square of {n} patches",
                             hint=f"give the map's size: `fold {fmt_pair(a.patch)} size=HxW` "
                                  f"with (H/{ph})·(W/{pw}) = {n}", arg="patch")
        return calc.per_axis("output size", lambda i: (
            "side of a square of patches * patch", f"isqrt({n}) * {a.patch[i]}",
            side * a.patch[i], ""))
    h, w = a.size * 2 if len(a.size) == 1 else a.size
    if h % ph or w % pw or (h // ph) * (w // pw) != n:
        raise LayerError("E-SHAPE", f"fold to {h}x{w} needs {h}x{w} to be whole patches of "
                         f"{fmt_pair(a.patch)} holding the {n} patches, but it is "
                         f"{h / ph:g} x {w / pw:g} patches", arg="size",
                         hint=f"give the size of the map `unfold` cut: (H/{ph})·(W/{pw}) = {n}")
    calc.step("output size", "size = HxW", f"{h}x{w}", [h, w])
    return h, w

