"""Layers that change a feature map's size without learning anything: upsampling."""

from __future__ import annotations

from .base import BOOL, CHOICE, INT, Arg, LayerError, LayerKind, call, layer, need_map

# how many input pixels (per axis) one output pixel of each mode reads
READS = {"nearest": 1, "bilinear": 2, "bicubic": 4}


@layer("upsample", family="shape", positional=("scale",), fresh_output=True,
       summary="a feature map made `scale` times larger: nearest, bilinear or bicubic "
               "(torch.nn.Upsample)")
class Upsample(LayerKind):
    aliases = {"upsampling": "", "upsampling2d": "", "interpolate": ""}
    args = (Arg("scale", INT, min=1, doc="how many times larger, along H and W",
                aliases=("scale_factor",)),
            Arg("mode", CHOICE, "nearest", choices=tuple(READS), doc="how values are filled in"),
            Arg("align_corners", BOOL, False,
                doc="bilinear and bicubic: the corner pixels of input and output align"))

    reference = {
        "input": "a C×H×W feature map",
        "shape": "C × H·scale × W·scale",
        "rf": "each output reads 1 (nearest), 2 (bilinear) or 4 (bicubic) neighbouring inputs "
              "per axis, clamped at the border (no padding read): K = 1, 2 or 4, and the jump "
              "shrinks by the scale (S = 1/scale), so later windows reach fractions of an input "
              "pixel; a receptive field is shown rounded up to whole pixels",
        "errors": "E-RANK; E-ARG-RANGE (`align_corners` with `nearest`)",
    }

    def rules(self, a, x, calc):
        c, h, w = need_map("upsample", x)
        if a.align_corners and a.mode == "nearest":
            raise LayerError("E-ARG-RANGE", "`align_corners` applies to bilinear and bicubic "
                             "upsampling only", arg="align_corners",
                             hint="drop `align_corners=true`, or write `mode=bilinear`")
        size = calc.per_axis("output size", lambda i: (
            "O = I * scale", f"{(h, w)[i]} * {a.scale}", (h, w)[i] * a.scale, ""))
        calc.output = tuple(calc.step("output", "C x (H * scale) x (W * scale)",
                                      f"{c} x {size[0]} x {size[1]}", [c, *size]))
        calc.step("parameters", "none: values are filled in, nothing learnt", "0", 0)
        from fractions import Fraction  # the check path imports it only where upsampling is

        reads = READS[a.mode]
        calc.window((reads, reads), (Fraction(1, a.scale),) * 2,
                    f"{a.mode}: each output reads {reads} input pixel{'s' if reads > 1 else ''} "
                    f"per axis; outputs are 1/{a.scale} of an input pixel apart")
        calc.pads = False  # neighbours are clamped at the border: no padding is read

    def describe(self, a):
        return f"upsample ×{a.scale} {a.mode}"

    def torch(self, a, x):
        corners = {"align_corners": a.align_corners} if a.mode != "nearest" else {}
        return call("Upsample", scale_factor=float(a.scale), mode=a.mode, **corners)
