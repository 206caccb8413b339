"""Layers that make a feature map larger: upsampling by a scale or to a size, the transposed
convolution, the pixel shuffle and its inverse, and `resize`, the merge that brings a value
to another's height and width (torchvision's segmentation heads). Outputs closer together
than input pixels make the jump a fraction (a Fraction, imported only where one is made)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .base import (BOOL, CHOICE, INT, PAIR, Arg, LayerError, LayerKind, call, fmt_pair, fmt_shape,
                   layer, need_map)
from .calc import dilation_steps
from .conv import Conv, _check_groups
from .merge import MergeKind, learns_nothing
from .types import Pair


class OptionalPair(Pair):
    """A pair whose default, None, means something the kind works out (`doc` and
    `default_doc` are what the layer reference prints)."""

    doc = "`N` or `HxW`"

    def __init__(self, default_doc: str):
        self.default_doc = default_doc


# how many input pixels (per axis) one output pixel of each mode reads
READS = {"nearest": 1, "bilinear": 2, "bicubic": 4}


def _fraction(n: int, d: int):
    from fractions import Fraction  # the check path imports it only where a jump shrinks

    return Fraction(n, d)


def _corners(a) -> None:
    """E-ARG-RANGE for `align_corners` with `nearest`, as torch refuses it in forward."""
    if a.align_corners and a.mode == "nearest":
        raise LayerError("E-ARG-RANGE", "`align_corners` applies to bilinear and bicubic "
                         "upsampling only", arg="align_corners",
                         hint="drop `align_corners=true`, or write `mode=bilinear`")


def _read_window(calc, mode: str, jumps: tuple, apart: str) -> None:
    """The window of an interpolation: `READS[mode]` inputs per axis, outputs `jumps` input
    pixels apart, clamped at the border (no padding read)."""
    reads = READS[mode]
    calc.window((reads, reads), jumps,
                f"{mode}: each output reads {reads} input pixel{'s' if reads > 1 else ''} per "
                f"axis; outputs are {apart} of an input pixel apart")
    calc.pads = False  # neighbours are clamped at the border: no padding is read


_INTERPOLATION_FIELD = (
    "each output reads 1 (nearest), 2 (bilinear) or 4 (bicubic) neighbouring inputs per axis, "
    "clamped at the border (no padding read): K = 1, 2 or 4, and the jump becomes I/O of an "
    "input pixel (1/scale), so later windows reach fractions of an input pixel; a receptive "
    "field is shown rounded up to whole pixels")


@layer("upsample", family="shape", positional=("scale",), fresh_output=True,
       summary="a feature map made `scale` times larger, or brought to `size=HxW`: nearest, "
               "bilinear or bicubic (torch.nn.Upsample)")
class Upsample(LayerKind):
    aliases = {"upsampling": "", "upsampling2d": "", "interpolate": ""}
    args = (Arg("scale", INT, 2, min=1, doc="how many times larger, along H and W",
                aliases=("scale_factor",)),
            Arg("size", OptionalPair("none: `scale` decides"), None, min=1,
                doc="the output's HxW instead of a scale (`size=64x64`)"),
            Arg("mode", CHOICE, "nearest", choices=tuple(READS), doc="how values are filled in"),
            Arg("align_corners", BOOL, False,
                doc="bilinear and bicubic: the corner pixels of input and output align"))

    reference = {
        "input": "a C×H×W feature map",
        "shape": "C × H·scale × W·scale, or C × size with `size=HxW` (which may also shrink)",
        "rf": _INTERPOLATION_FIELD,
        "errors": "E-RANK; E-ARG-RANGE (`align_corners` with `nearest`; `scale` and `size` "
                  "both given)",
    }

    def rules(self, a, x, calc):
        c, h, w = need_map("upsample", x)
        _corners(a)
        if a.size is not None and "scale" in a.given:
            raise LayerError("E-ARG-RANGE", "upsample takes a scale or a size, not both "
                             "(torch.nn.Upsample refuses both)", arg="size",
                             hint=f"drop `scale` to reach {fmt_shape(a.size)}, or drop `size=`")
        if a.size is None:
            size = calc.per_axis("output size", lambda i: (
                "O = I * scale", f"{(h, w)[i]} * {a.scale}", (h, w)[i] * a.scale, ""))
            jumps, apart = (_fraction(1, a.scale),) * 2, f"1/{a.scale}"
        else:
            size = calc.per_axis("output size", lambda i: ("O = size", str(a.size[i]), a.size[i],
                                                           "the size written, whatever the input"))
            jumps = (_fraction(h, size[0]), _fraction(w, size[1]))
            apart = "I/O" if jumps[0] != jumps[1] else str(jumps[0])
        calc.output = tuple(calc.step("output", "C x O_H x O_W", f"{c} x {size[0]} x {size[1]}",
                                      [c, *size]))
        calc.step("parameters", "none: values are filled in, nothing learnt", "0", 0)
        _read_window(calc, a.mode, jumps, apart)

    def describe(self, a):
        if a.size is not None:
            return f"upsample to {fmt_shape(a.size)} {a.mode}"
        return f"upsample ×{a.scale} {a.mode}"

    def torch(self, a, x):
        corners = {"align_corners": a.align_corners} if a.mode != "nearest" else {}
        if a.size is not None:
            return call("Upsample", size=tuple(a.size), mode=a.mode, **corners)
        return call("Upsample", scale_factor=float(a.scale), mode=a.mode, **corners)


# ----------------------------------------------------------------------------- convtranspose

_CONV_ARGS = {arg.name: arg for arg in Conv.args}


def transposed_reach(k: int, s: int, d: int) -> int:
    """How many neighbouring inputs (per axis) one output of a transposed convolution spans.
    Output o reads input i = (o + P - k*D) / S for each tap k where that is whole; taps k1 < k2
    both land for the same o only when (k2 - k1) * D is a multiple of S, i.e. k2 - k1 is a
    multiple of g = S / gcd(S, D). The widest span is floor((K - 1) / g) * g * D / S + 1 inputs
    (ceil(K / S) without dilation)."""
    import math

    g = s // math.gcd(s, d)
    return (k - 1) // g * g * d // s + 1


@layer("convtranspose", family="conv", positional=("out",),
       words={"nobias": ("bias", False)}, fresh_output=True,
       summary="2-D transposed convolution, the learnt upsampling (torch.nn.ConvTranspose2d)")
class ConvTranspose(LayerKind):
    aliases = {"conv2dtranspose": "", "deconvolution": "", "deconv": ""}
    orders = {"PyTorch's ConvTranspose2d": ("in", "out", "kernel", "stride", "padding",
                                            "output_padding", "groups", "bias", "dilation"),
              "Keras's Conv2DTranspose": ("out", "kernel", "stride")}
    weights = ("weight",)
    args = (
        _CONV_ARGS["out"], _CONV_ARGS["kernel"], _CONV_ARGS["stride"],
        dataclasses.replace(_CONV_ARGS["padding"], type=PAIR,
                            doc="rows and columns taken off each side of the full output"),
        Arg("output_padding", PAIR, 0, min=0,
            doc="rows and columns added at the bottom/right, to pick among the input sizes a "
                "strided conv maps to one size (smaller than the stride or the dilation)"),
        _CONV_ARGS["dilation"], _CONV_ARGS["groups"], _CONV_ARGS["bias"],
        dataclasses.replace(_CONV_ARGS["padding_mode"],
                            doc="only `zeros`, as torch.nn.ConvTranspose2d"),
    )

    reference = {
        "input": "a C×H×W feature map",
        "shape": "out × H_out × W_out; per axis "
                 "`O = (I−1)·S − 2P + D·(K−1) + output_padding + 1`",
        "params": "`C·(out/groups)·Kh·Kw` (the weight is C × out/groups × Kh × Kw), plus `out` "
                  "with a bias",
        "macs": "`C·(out/groups)·Kh·Kw·H·W`: every input position times every weight (the "
                "input's H·W, not the output's)",
        "rf": "output o reads input i = (o + P − k·D)/S for each tap k where that is whole; "
              "taps k1 < k2 read for the same output only when k2 − k1 is a multiple of "
              "g = S/gcd(S, D), so one output spans `K' = floor((K−1)/g)·g·D/S + 1` "
              "neighbouring inputs (ceil(K/S) without dilation), never padding; the jump "
              "becomes 1/S of an input pixel",
        "errors": "E-RANK, E-GROUPS (groups must divide C and out), E-ARG-RANGE "
                  "(`output_padding` not smaller than the stride or the dilation; "
                  "`padding_mode` other than zeros), E-PADDING (padding that leaves no output)",
    }

    def rules(self, a, x, calc):
        c, h, w = need_map("convtranspose", x)
        _check_groups(a, c)
        _check_transposed(a, (h, w))
        reach = dilation_steps(calc, a.kernel, a.dilation)
        out = calc.per_axis("output size", lambda i: _transposed_size(a, (h, w)[i], i, reach[i]))
        calc.step("channels", "C_out = out", str(a.out), a.out)
        per_group = a.out // a.groups
        kh, kw = a.kernel
        weight = calc.step("weight", "C_in * (C_out / groups) * K_h * K_w",
                           f"{c} * ({a.out} / {a.groups}) * {kh} * {kw}", c * per_group * kh * kw,
                           "" if a.groups == 1 else f"groups {a.groups}: each input channel "
                           f"feeds {per_group} of the {a.out} output channels")
        bias = calc.step("bias", "C_out (one per output channel)", str(a.out), a.out) if a.bias \
            else calc.step("bias", "none (nobias)", "0", 0)
        calc.params = calc.step("parameters", "weight + bias", f"{weight} + {bias}", weight + bias)
        calc.macs = calc.step(
            "MACs", "C_in * H_in * W_in * (C_out / groups) * K_h * K_w",
            f"{c} * {h} * {w} * ({a.out} / {a.groups}) * {kh} * {kw}",
            c * h * w * per_group * kh * kw,
            "each input value is multiplied by every weight it meets (K_h * K_w per output "
            "channel of its group); bias additions are not counted")
        calc.output = (a.out, *out)
        spans = calc.per_axis("inputs one output reads", lambda i: _reach_step(a, i))
        calc.window(spans, tuple(_fraction(1, s) for s in a.stride),
                    "a transposed convolution: outputs are 1/S of an input pixel apart")
        calc.pads = False  # its padding crops the output: no padding is read

    def describe(self, a):
        parts = [f"convtranspose {a.out} · {fmt_pair(a.kernel)}"]
        if a.stride != (1, 1):
            parts.append(f"×{a.stride[0]}" if a.stride[0] == a.stride[1] else
                         f"×{fmt_pair(a.stride)}")
        for flag, value, default in (("p", a.padding, (0, 0)), ("op", a.output_padding, (0, 0)),
                                     ("d", a.dilation, (1, 1))):
            if value != default:
                parts.append(f"{flag}{value[0]}" if value[0] == value[1] else
                             f"{flag}{fmt_pair(value)}")
        if a.groups != 1:
            parts.append(f"g{a.groups}")
        return " ".join(parts)

    def torch(self, a, x):
        return call("ConvTranspose2d", x[0], a.out, tuple(a.kernel), stride=tuple(a.stride),
                    padding=tuple(a.padding), output_padding=tuple(a.output_padding),
                    groups=a.groups, bias=a.bias, dilation=tuple(a.dilation),
                    padding_mode=a.padding_mode)


def _check_transposed(a, hw: tuple) -> None:
    """torch's refusals: a padding mode other than zeros, an output padding not smaller than
    the stride or the dilation, and a padding that leaves no output."""
    if a.padding_mode != "zeros":
        raise LayerError("E-ARG-RANGE", f"convtranspose pads with zeros only, not "
                         f"{a.padding_mode} (torch.nn.ConvTranspose2d refuses it)",
                         arg="padding_mode",
                         hint="drop `padding_mode`; for another border, pad the map before "
                              f"it (`pad 1 mode={a.padding_mode}`)")
    for i, axis in enumerate("HW"):
        op, s, d = a.output_padding[i], a.stride[i], a.dilation[i]
        if op >= s and op >= d:
            raise LayerError("E-ARG-RANGE", f"output_padding {op} must be smaller than the stride "
                             f"({s}) or the dilation ({d}) along {axis}",
                             arg="output_padding",
                             hint="output_padding picks among the sizes one stride maps "
                                  f"together: use at most {max(s, d) - 1}")
        size = (hw[i] - 1) * s - 2 * a.padding[i] + d * (a.kernel[i] - 1) + op + 1
        if size < 1:
            lines = "rows" if i == 0 else "columns"
            raise LayerError("E-PADDING", f"padding {a.padding[i]} takes {2 * a.padding[i]} "
                             f"{lines} off the {size + 2 * a.padding[i]} the transposed "
                             f"convolution makes of the {fmt_shape(hw)} input, leaving none",
                             arg="padding", hint="use less padding, or a larger kernel or stride")


def _reach_step(a, i: int) -> tuple:
    """K', the inputs one output spans along axis i, as (formula, substituted, value, note)."""
    import math

    k, s, d = a.kernel[i], a.stride[i], a.dilation[i]
    g = s // math.gcd(s, d)
    return ("K' = floor((K - 1) / g) * g * D / S + 1, g = S / gcd(S, D)",
            f"floor(({k} - 1) / {g}) * {g} * {d} / {s} + 1", transposed_reach(k, s, d),
            "output o reads input (o + P - k*D) / S for each tap k where that is whole; two "
            f"taps read for the same output only a multiple of g = {g} taps apart")


def _transposed_size(a, size: int, i: int, reach: int) -> tuple:
    """O = (I - 1) * S - 2P + D * (K - 1) + output_padding + 1, as (formula, substituted, value,
    note)."""
    s, p, op = a.stride[i], a.padding[i], a.output_padding[i]
    out = (size - 1) * s - 2 * p + reach - 1 + op + 1
    note = "each input spreads a K_eff window, S apart; the padding takes P off each side"
    if op:
        note += f"; output_padding adds {op} at the bottom/right"
    return ("O = (I - 1) * S - 2P + (K_eff - 1) + output_padding + 1",
            f"({size} - 1) * {s} - 2*{p} + ({reach} - 1) + {op} + 1", out, note)


# ----------------------------------------------------------------------------- pixel shuffle


def _need_factor(message: str, count: int, r: int, hint: str) -> None:
    if count % r:
        raise LayerError("E-SHAPE", message, arg="factor", hint=hint)


@layer("pixelshuffle", family="shape", positional=("factor",), reshapes=True,
       summary="C·r·r × H × W rearranged into C × rH × rW (torch.nn.PixelShuffle)")
class PixelShuffle(LayerKind):
    aliases = {"depthtospace": ""}
    args = (Arg("factor", INT, min=1, doc="r: how many times larger, along H and W",
                aliases=("upscale_factor", "block_size")),)
    reference = {
        "input": "a C×H×W feature map with C divisible by r·r",
        "shape": "C/(r·r) × H·r × W·r",
        "rf": "each output is one input value: K = 1, and the jump becomes 1/r of an input pixel",
        "errors": "E-RANK, E-SHAPE (C not divisible by r·r)",
    }

    def rules(self, a, x, calc):
        c, h, w = need_map("pixelshuffle", x)
        r = a.factor
        _need_factor(f"pixelshuffle {r} needs channels divisible by {r}x{r} = {r * r}, but "
                     f"there are {c}", c, r * r,
                     f"make the layer before give a multiple of {r * r} channels "
                     f"(e.g. `conv {max(1, c // (r * r)) * r * r} …`)")
        channels = calc.step("channels", "C / (r * r)", f"{c} / ({r} * {r})", c // (r * r))
        size = calc.per_axis("output size", lambda i: ("O = I * r", f"{(h, w)[i]} * {r}",
                                                       (h, w)[i] * r, ""))
        calc.output = tuple(calc.step("output", "C / (r * r) x H * r x W * r",
                                      f"{channels} x {size[0]} x {size[1]}", [channels, *size]))
        calc.step("parameters", "none: values are only moved", "0", 0,
                  "each r x r block of the output holds the r * r channels of one input pixel")
        calc.window((1, 1), (_fraction(1, r),) * 2,
                    f"each output is one input value; outputs are 1/{r} of an input pixel apart")
        calc.pads = False

    def describe(self, a):
        return f"pixelshuffle ×{a.factor}"

    def torch(self, a, x):
        return call("PixelShuffle", a.factor)


@layer("pixelunshuffle", family="shape", positional=("factor",), reshapes=True,
       summary="C × H × W rearranged into C·r·r × H/r × W/r (torch.nn.PixelUnshuffle)")
class PixelUnshuffle(LayerKind):
    aliases = {"spacetodepth": ""}
    args = (Arg("factor", INT, min=1, doc="r: how many times smaller, along H and W",
                aliases=("downscale_factor", "block_size")),)
    reference = {
        "input": "a C×H×W feature map with H and W divisible by r",
        "shape": "C·r·r × H/r × W/r",
        "rf": "the r·r channels of one output position hold one r×r block of the input: "
              "kernel r, stride r (as a convolution `k=r s=r`)",
        "errors": "E-RANK, E-SHAPE (H or W not divisible by r)",
    }

    def rules(self, a, x, calc):
        c, h, w = need_map("pixelunshuffle", x)
        r = a.factor
        for size, axis in ((h, "height"), (w, "width")):
            _need_factor(f"pixelunshuffle {r} needs a {axis} divisible by {r}, but the map is "
                         f"{fmt_shape(x)}", size, r,
                         f"give it a map whose height and width divide by {r}: `pad` or `crop` "
                         f"it first (e.g. `crop {h // r * r or r}x{w // r * r or r}`)")
        channels = calc.step("channels", "C * r * r", f"{c} * {r} * {r}", c * r * r)
        size = calc.per_axis("output size", lambda i: ("O = I / r", f"{(h, w)[i]} / {r}",
                                                       (h, w)[i] // r, ""))
        calc.output = tuple(calc.step("output", "C * r * r x H / r x W / r",
                                      f"{channels} x {size[0]} x {size[1]}", [channels, *size]))
        calc.step("parameters", "none: values are only moved", "0", 0,
                  "the r * r channels of one output position hold one r x r block of the input")
        calc.window((r, r), (r, r), f"one output position's channels hold an {r}x{r} block of "
                                    "the input")
        calc.pads = False

    def describe(self, a):
        return f"pixelunshuffle /{a.factor}"

    def torch(self, a, x):
        return call("PixelUnshuffle", a.factor)


# ----------------------------------------------------------------------------- resize (merge)


def two_maps(kind: str, xs: list) -> tuple[tuple, tuple]:
    """The value and the reference of a two-input geometry merge (`x, ref; resize`), both
    feature maps, or the learner's error."""
    if len(xs) != 2:
        raise LayerError("E-ARITY", f"{kind} reads two values, the map and the reference whose "
                         f"height and width it takes, but {len(xs)} flow in",
                         hint=f"write `x, ref; {kind}` (or `{kind}< x | ref >`)")
    for what, x in zip(("the map", "the reference"), xs):
        if len(x) != 3:
            raise LayerError("E-RANK", f"{kind} needs feature maps, but {what} is "
                             f"{fmt_shape(x)}", hint=f"give `{kind}` two CxHxW values")
    return xs[0], xs[1]


def _value(a, name: str):
    """An argument of a merge, or its default where the merge was written as a combinator
    (`resize< x | ref >`, which takes no arguments)."""
    try:
        return getattr(a, name)
    except AttributeError:
        return next(arg.default for arg in Resize.args if arg.name == name)


@dataclass(frozen=True)
class Resizing:
    """`resize` with one node's arguments: what a compiled network runs and codegen writes."""

    mode: str = "nearest"
    align_corners: bool = False

    def merge(self, outputs):
        import torch.nn.functional as F

        x, ref = outputs
        corners = {"align_corners": self.align_corners} if self.mode != "nearest" else {}
        return F.interpolate(x, size=ref.shape[-2:], mode=self.mode, **corners)

    def python(self, names):
        corners = f", align_corners={self.align_corners}" if self.mode != "nearest" else ""
        return (f"torch.nn.functional.interpolate({names[0]}, size={names[1]}.shape[-2:], "
                f"mode={self.mode!r}{corners})")


@layer("resize", family="merge",
       summary="the first value resized to the second's height and width (F.interpolate); the "
               "second's values are not read")
class Resize(MergeKind):
    symbol, round, module_name = "resize", False, "Resize"
    args = (Arg("mode", CHOICE, "nearest", choices=tuple(READS), doc="how values are filled in"),
            Arg("align_corners", BOOL, False,
                doc="bilinear and bicubic: the corner pixels of input and output align"))
    reference = {
        "input": "two feature maps, `x, ref; resize` (or `resize< x | ref >`, nearest)",
        "shape": "x's channels × ref's H × W",
        "rf": "x's, through the interpolation as `upsample` (K = 1, 2 or 4; jump × I/O); ref's "
              "values are not read",
        "errors": "E-ARITY (not two values), E-RANK, E-ARG-RANGE (`align_corners` with "
                  "`nearest`)",
    }

    def rules(self, a, x, calc):
        (c, h, w), ref = two_maps("resize", calc.xs)
        mode, corners = _value(a, "mode"), _value(a, "align_corners")
        _corners(Resizing(mode, corners))
        size = calc.per_axis("output size", lambda i: (
            "O = the reference's size", str(ref[1 + i]), ref[1 + i],
            "only the reference's shape is read, not its values"))
        calc.output = tuple(calc.step("output", "C of x x H x W of ref",
                                      f"{c} x {size[0]} x {size[1]}", [c, *size]))
        learns_nothing(calc)
        jumps = (_fraction(h, size[0]), _fraction(w, size[1]))
        _read_window(calc, mode, jumps, "I/O" if jumps[0] != jumps[1] else str(jumps[0]))

    def bound(self, a):
        return Resizing(_value(a, "mode"), _value(a, "align_corners"))

    def merge(self, outputs):
        return Resizing().merge(outputs)

    def python(self, names):
        return Resizing().python(names)

    def describe(self, a):
        return f"resize {_value(a, 'mode')}"
