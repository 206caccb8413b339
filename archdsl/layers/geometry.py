"""Layers that change a feature map's border without learning anything: `pad` (per side, as
F.pad), `crop` (a centre crop, as torchvision's CenterCrop) and `cropto`, the merge that
crops a value to another's height and width (the 2015 U-Net's copy-and-crop skips)."""

from __future__ import annotations

from .base import CHOICE, FLOAT, INT, PAIR, Arg, LayerError, LayerKind, call, fmt_shape, layer, \
    need_map
from .merge import MergeKind, learns_nothing
from .resize import two_maps

PAD_MODES = ("constant", "reflect", "replicate", "circular")
_PAD_MODULES = {"constant": "ConstantPad2d", "reflect": "ReflectionPad2d",
                "replicate": "ReplicationPad2d", "circular": "CircularPad2d"}
SIDES = ("left", "right", "top", "bottom")


def sides_given(a) -> list[str]:
    return [side for side in SIDES if side in a.given]


def pads(a) -> tuple[int, int, int, int]:
    """(left, right, top, bottom), F.pad's order: `left` alone pads every side."""
    if sides_given(a) == ["left"]:
        return (a.left,) * 4
    return a.left, a.right, a.top, a.bottom


@layer("pad", family="shape", positional=SIDES,
       words={m: ("mode", m) for m in PAD_MODES},
       summary="a border around the map, per side in F.pad's order (left right top bottom): "
               "constant, reflect, replicate or circular (torch.nn.ConstantPad2d, …)")
class Pad(LayerKind):
    aliases = {"zeropad": "", "zeropadding": "", "constantpad": "",
               "reflectionpad": "mode=reflect", "replicationpad": "mode=replicate",
               "circularpad": "mode=circular"}
    args = (Arg("left", INT, min=0, doc="columns added on the left; written alone, on every side"),
            Arg("right", INT, 0, min=0, doc="columns added on the right"),
            Arg("top", INT, 0, min=0, doc="rows added at the top"),
            Arg("bottom", INT, 0, min=0, doc="rows added at the bottom"),
            Arg("mode", CHOICE, "constant", choices=PAD_MODES, doc="what the border holds"),
            Arg("value", FLOAT, 0.0, doc="constant: the border's value"))
    reference = {
        "input": "a C×H×W feature map",
        "shape": "C × (H + top + bottom) × (W + left + right); `pad n` pads n on every side",
        "rf": "kernel 1, stride 1: each output is one input value or border; the border counts "
              "as padding read (the field's bound grows by it), as a convolution's padding",
        "errors": "E-RANK, E-ARG-MISSING (two or three sides given), E-ARG-RANGE (`value` "
                  "with a mode other than constant), E-PADDING (`reflect` padding must be "
                  "smaller than the input, `circular` at most its size)",
    }

    def rules(self, a, x, calc):
        c, h, w = need_map("pad", x)
        given = sides_given(a)
        if len(given) in (2, 3):
            raise LayerError("E-ARG-MISSING", f"pad takes one number (every side) or four (left "
                             f"right top bottom, F.pad's order), but {len(given)} are given",
                             arg=given[-1], hint="write `pad n`, or all four: "
                             f"`pad {' '.join(str(getattr(a, s)) for s in SIDES)}`")
        if "value" in a.given and a.mode != "constant":
            raise LayerError("E-ARG-RANGE", f"`value` fills a constant border, not a {a.mode} "
                             "one (torch's F.pad refuses it)", arg="value",
                             hint="drop `value=`, or write `mode=constant`")
        left, right, top, bottom = pads(a)
        _check_pads(a.mode, (top, bottom), h, "H", x)
        _check_pads(a.mode, (left, right), w, "W", x)
        out_h = calc.step("output size (H)", "O = I + top + bottom", f"{h} + {top} + {bottom}",
                          h + top + bottom)
        out_w = calc.step("output size (W)", "O = I + left + right", f"{w} + {left} + {right}",
                          w + left + right, _mode_note(a))
        calc.output = tuple(calc.step("output", "C x O_H x O_W", f"{c} x {out_h} x {out_w}",
                                      [c, out_h, out_w]))
        calc.step("parameters", "none: a border is added, nothing learnt", "0", 0)
        calc.window((1, 1), (1, 1), "each output is one input value, or the border; the "
                                    "border is padding read")

    def describe(self, a):
        sides = pads(a)
        text = f"pad {sides[0]}" if len(set(sides)) == 1 else "pad " + " ".join(map(str, sides))
        return text if a.mode == "constant" else f"{text} {a.mode}"

    def torch(self, a, x):
        sides = pads(a)
        if a.mode != "constant":
            return call(_PAD_MODULES[a.mode], sides)
        return call("ZeroPad2d", sides) if a.value == 0 else call("ConstantPad2d", sides, a.value)


def _mode_note(a) -> str:
    return {"constant": f"the border holds {a.value:g}",
            "reflect": "the border mirrors the map, its edge not repeated",
            "replicate": "the border repeats the edge value",
            "circular": "the border wraps around from the opposite side"}[a.mode]


def _check_pads(mode: str, sides: tuple, size: int, axis: str, x: tuple) -> None:
    """E-PADDING where torch refuses a reflect or circular border along one axis."""
    wide = max(sides)
    if mode == "reflect" and wide >= size:
        raise LayerError("E-PADDING", f"reflect padding of {wide} needs an input larger than "
                         f"that along {axis}, but the input is {fmt_shape(x)}",
                         hint=f"pad at most {size - 1} with reflect, or use mode=replicate",
                         arg="left")
    if mode == "circular" and wide > size:
        raise LayerError("E-PADDING", f"circular padding of {wide} wraps around the "
                         f"{fmt_shape(x)} input more than once along {axis}",
                         hint=f"pad at most {size} with circular", arg="left")


def crop_offset(size: int, crop: int) -> int:
    """torchvision's center_crop offset: round((I - O) / 2), Python's rounding (half to even)."""
    return int(round((size - crop) / 2.0))


def _crop_steps(calc, c: int, hw: tuple, size: tuple) -> None:
    """The output and the offsets of a centre crop of an `hw` map to `size`."""
    calc.per_axis("offset", lambda i: (
        "round((I - O) / 2)  (torchvision's center_crop)", f"round(({hw[i]} - {size[i]}) / 2)",
        crop_offset(hw[i], size[i]),
        "the first row/column kept; an odd difference leaves the extra one at the "
        "bottom/right, or at the top/left where Python rounds half to even (1.5 -> 2)"
        if (hw[i] - size[i]) % 2 else "the same taken off both sides"))
    calc.output = tuple(calc.step("output", "C x O_H x O_W", f"{c} x {size[0]} x {size[1]}",
                                  [c, *size]))
    calc.step("parameters", "none: values are only picked", "0", 0,
              "each output is one input value: the receptive field is kept")


@layer("crop", family="shape", positional=("size",), reshapes=True,
       summary="the centre HxW of the map (torchvision's CenterCrop)")
class Crop(LayerKind):
    aliases = {"centercrop": ""}
    args = (Arg("size", PAIR, min=1, doc="the HxW kept (`crop 28` or `crop 28x28`)"),)
    reference = {
        "input": "a C×H×W feature map at least the size kept",
        "shape": "C × size; the first row kept is round((H − h)/2), torchvision's rule",
        "rf": "kernel 1, stride 1: each output is one input value, and no padding is read",
        "errors": "E-RANK, E-SHAPE (a crop larger than the map: torchvision would pad it, "
                  "archdsl says so)",
    }

    def rules(self, a, x, calc):
        c, h, w = need_map("crop", x)
        if a.size[0] > h or a.size[1] > w:
            raise LayerError("E-SHAPE", f"crop {fmt_shape(a.size)} is larger than the "
                             f"{fmt_shape(x)} map", arg="size",
                             hint=f"crop at most {h}x{w}, or `pad` the map to enlarge it")
        _crop_steps(calc, c, (h, w), tuple(a.size))

    def describe(self, a):
        return f"crop {fmt_shape(a.size)}"

    def torch(self, a, x):
        return call("archdsl.nn.resize:CenterCrop", *a.size)


@layer("cropto", family="merge",
       summary="the first value's centre cropped to the second's height and width; the "
               "second's values are not read")
class CropTo(MergeKind):
    symbol, round, module_name = "crop", False, "CropTo"
    reference = {
        "input": "two feature maps, `x, ref; cropto` (or `cropto< x | ref >`), x at least "
                 "ref's size",
        "shape": "x's channels × ref's H × W, the centre of x as `crop` takes it",
        "rf": "x's, unchanged (kernel 1, stride 1); ref's values are not read",
        "errors": "E-ARITY (not two values), E-RANK, E-SHAPE (ref larger than x)",
    }

    def rules(self, a, x, calc):
        (c, h, w), ref = two_maps("cropto", calc.xs)
        if ref[1] > h or ref[2] > w:
            larger = ref[1] >= h and ref[2] >= w
            raise LayerError("E-SHAPE", f"cropto crops the first value to the second's size, "
                             f"but {fmt_shape((c, h, w))} is smaller than {fmt_shape(ref)}",
                             hint="write the larger map first: `big, small; cropto`" if larger
                             else "pad the first value, or crop the reference too")
        _crop_steps(calc, c, (h, w), tuple(ref[1:]))
        learns_nothing(calc)
        calc.window((1, 1), (1, 1), "each output is one value of the first input")
        calc.pads = False

    def merge(self, outputs):
        x, ref = outputs
        # plain ints: a trace (TorchScript) sees sizes as tensors, which round() refuses
        (size_h, size_w), (h, w) = (map(int, t.shape[-2:]) for t in (x, ref))
        top, left = crop_offset(size_h, h), crop_offset(size_w, w)
        return x[..., top:top + h, left:left + w]

    def python(self, names):
        x, ref = names
        crops = "".join(f".narrow({d}, round(({x}.shape[{d}] - {ref}.shape[{d}]) / 2), "
                        f"{ref}.shape[{d}])" for d in (2, 3))
        return x + crops

    def describe(self, a):
        return "cropto"
