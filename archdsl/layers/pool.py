"""Pooling: sliding-window max and average, and adaptive pooling to a fixed size."""

from __future__ import annotations

from .base import (call, BOOL, PADDING, PAIR, Arg, Args, LayerError, LayerKind, Shape, Window,
                   fmt_pair, fmt_shape, layer, need_map)
from .calc import Calc, dilation_steps, window_step
from .conv import same_padding, same_steps

_OWN = "archdsl.nn.conv:"
# `maxpool 3 s2 same`: TensorFlow's padding (O = ceil(I / S)); `valid`: none
PADDING_WORDS = {"same": ("padding", "same"), "valid": ("padding", "valid")}


class _WindowPool(LayerKind):
    """Shared rule of max and average pooling (PyTorch's pool2d_shape_check)."""

    dilated = False

    def _dilation(self, a: Args) -> tuple[int, int]:
        return a.dilation if self.dilated else (1, 1)

    def _stride(self, a: Args) -> tuple[int, int]:
        return a.kernel if a.stride is None else a.stride

    def rules(self, a: Args, x: Shape, calc: Calc) -> None:
        c, h, w = need_map(self.name, x)
        window = self.window(a, x)
        self._check_padding(a)
        if a.stride is None:
            calc.step("stride", "S = K (not given: a window's size)", fmt_shape(a.kernel),
                      list(window.stride), "pooling windows do not overlap unless a stride is given")
        if a.padding == "same":
            same_steps(calc, (h, w), window)
            calc.note(self.padding_note(a))
        reach = dilation_steps(calc, a.kernel, window.dilation)
        out = calc.per_axis("output size", lambda i: window_step(
            (h, w)[i], a.kernel[i], window.stride[i], *window.padding[i], window.dilation[i],
            a.ceil))
        for axis, o in enumerate(out):
            if o < 1:
                raise LayerError("E-EMPTY", f"{self.name} {fmt_shape(a.kernel)} leaves no output on "
                                 f"the {h}x{w} input", hint="use a smaller window, padding, or less "
                                 "downsampling before this layer", arg="kernel",
                                 label=f"input is only {h}x{w} here")
        if not isinstance(a.padding, str) and a.padding != (0, 0):
            calc.note("PyTorch allows a padding of at most half the window" + self.padding_note(a))
        calc.step("channels", "C_out = C_in (each channel pooled alone)", str(c), c)
        calc.step("parameters", "none: a fixed max or average, nothing learnt", "0", 0,
                  "and 0 MACs: archdsl counts the multiply-adds of conv and linear layers only")
        calc.output = (c, *out)
        calc.window(reach, window.stride)

    def _check_padding(self, a: Args) -> None:
        """E-ARG-RANGE where PyTorch refuses the padding, or `same` meets `ceil`."""
        if a.padding == "same" and a.ceil:
            raise LayerError("E-ARG-RANGE", "`same` already rounds the output size up "
                             "(O = ceil(I / S)): `ceil` has nothing left to do", arg="ceil",
                             hint="drop `ceil`, or give the padding as a number")
        if isinstance(a.padding, str):
            return
        for axis in (0, 1):
            k, p = a.kernel[axis], a.padding[axis]
            if p > k // 2:
                raise LayerError("E-ARG-RANGE", f"padding {p} is more than half the kernel size {k}",
                                 hint=f"PyTorch allows at most `p{k // 2}` for a {k}-wide window",
                                 arg="padding")

    def padding_note(self, a: Args) -> str:
        """What padded values do to this pooling (explain)."""
        return ""

    def window(self, a, x):
        stride, dilation = tuple(self._stride(a)), tuple(self._dilation(a))
        if a.padding == "same":
            pads = tuple(same_padding(x[1 + i], a.kernel[i], stride[i], dilation[i]) for i in (0, 1))
        elif a.padding == "valid":
            pads = ((0, 0), (0, 0))
        else:
            pads = tuple((p, p) for p in a.padding)
        return Window(tuple(a.kernel), stride, pads, dilation, a.ceil)

    def plain_padding(self, a: Args) -> tuple:
        """The padding nn.MaxPool2d / nn.AvgPool2d take (`valid`: none)."""
        return (0, 0) if a.padding == "valid" else tuple(a.padding)

    def describe(self, a):
        stride = self._stride(a)
        parts = [f"{self.name} {fmt_pair(a.kernel)}",
                 f"/{stride[0]}" if stride[0] == stride[1] else f"/{fmt_pair(stride)}"]
        if isinstance(a.padding, str):
            parts.append(a.padding)
        elif a.padding != (0, 0):
            parts.append(f"p{a.padding[0]}")
        if a.ceil:
            parts.append("ceil")
        return " ".join(parts)


_WINDOW_ARGS = (
    Arg("kernel", PAIR, flag="k", min=1, doc="window size", aliases=("kernel_size", "pool_size")),
    Arg("stride", PAIR, None, flag="s", min=1, doc="stride (defaults to the window size)",
        aliases=("strides",)),
    Arg("padding", PADDING, 0, flag="p", min=0,
        doc="implicit padding on each side, or `same` (TensorFlow's: the output is ceil(I / S)) "
            "/ `valid`", aliases=("pad",)),
)

# The output shape of max and average pooling, in the words of LayerKind.reference
WINDOW_SHAPE = (
    "C × H_out × W_out; per axis `O = floor((I + 2P − D·(K−1) − 1 + (ceil ? S−1 : 0)) / S) + 1`, "
    "and with `ceil`, `O` is reduced by 1 when `(O−1)·S ≥ I + P` (the last window would start "
    "in the padding) — PyTorch's `pooling_output_shape`. `same` gives `O = ceil(I / S)` "
    "(TensorFlow's rule, timm's MaxPool2dSame / AvgPool2dSame, archdsl's own module): it pads "
    "`max((O−1)·S + D·(K−1) + 1 − I, 0)` in total, `floor` of half before and the rest after; "
    "`valid` pads nothing")


@layer("maxpool", family="pool", positional=("kernel",),
       words={"ceil": ("ceil", True), **PADDING_WORDS},
       nonlinear=True, summary="max pooling (torch.nn.MaxPool2d)", fresh_output=True,
       sliding_window=True)
class MaxPool(_WindowPool):
    aliases = {"maxpooling": "", "pool": "", "pooling": ""}
    orders = {"PyTorch's MaxPool2d": ("kernel", "stride", "padding", "dilation")}
    dilated = True
    args = _WINDOW_ARGS + (
        Arg("dilation", PAIR, 1, flag="d", min=1, doc="spacing between window taps"),
        Arg("ceil", BOOL, False, doc="round the output size up (`ceil`)", aliases=("ceil_mode",)),
    )

    reference = {
        "input": "a C×H×W feature map",
        "shape": WINDOW_SHAPE + "; the stride defaults to the kernel",
        "rf": "kernel `D·(K−1)+1`, stride `S` (the kernel when not given)",
        "errors": "E-RANK, E-ARG-RANGE (padding more than `floor(K/2)`, as PyTorch refuses; "
                  "`same` with `ceil`), "
                  "E-EMPTY (`O < 1`: the window does not fit)",
    }

    def padding_note(self, a):
        if a.padding == "same":
            return "the padding is -inf (timm's MaxPool2dSame): it never wins the max"
        return "; padded values never win the max"

    def torch(self, a, x):
        if a.padding == "same":
            return call(_OWN + "MaxPool2dSame", tuple(a.kernel), stride=tuple(self._stride(a)),
                        dilation=tuple(a.dilation))
        return call("MaxPool2d", tuple(a.kernel), stride=tuple(self._stride(a)),
                    padding=self.plain_padding(a), dilation=tuple(a.dilation), ceil_mode=a.ceil)


@layer("avgpool", family="pool", positional=("kernel",),
       words={"ceil": ("ceil", True), "exclude_pad": ("count_include_pad", False), **PADDING_WORDS},
       summary="average pooling (torch.nn.AvgPool2d)", fresh_output=True, sliding_window=True)
class AvgPool(_WindowPool):
    aliases = {"averagepooling": "", "avgpooling": "", "pool": "", "pooling": ""}
    orders = {"PyTorch's AvgPool2d": ("kernel", "stride", "padding")}
    args = _WINDOW_ARGS + (
        Arg("ceil", BOOL, False, doc="round the output size up (`ceil`)", aliases=("ceil_mode",)),
        Arg("count_include_pad", BOOL, True, doc="count padded zeros in the average"),
    )

    reference = {
        "input": "a C×H×W feature map",
        "shape": WINDOW_SHAPE + " with `D = 1`; the stride defaults to the kernel",
        "rf": "kernel `K`, stride `S` (the kernel when not given)",
        "errors": "E-RANK, E-ARG-RANGE (padding more than `floor(K/2)`; `same` with `ceil`), "
                  "E-EMPTY (`O < 1`)",
    }

    def padding_note(self, a):
        if a.padding == "same":
            return ("the padding is zeros, counted in the average (timm's AvgPool2dSame)"
                    if a.count_include_pad else "exclude_pad: each window averages only the "
                    "inputs it covers (TensorFlow's `same` average)")
        return "; padded values count as zeros in the average" if a.count_include_pad else ""

    def torch(self, a, x):
        if a.padding == "same":
            return call(_OWN + "AvgPool2dSame", tuple(a.kernel), stride=tuple(self._stride(a)),
                        count_include_pad=a.count_include_pad)
        return call("AvgPool2d", tuple(a.kernel), stride=tuple(self._stride(a)),
                    padding=self.plain_padding(a), ceil_mode=a.ceil,
                    count_include_pad=a.count_include_pad)


class _AdaptivePool(LayerKind):
    args = (Arg("size", PAIR, min=1, doc="output size, `7` or `7x7`", aliases=("output_size",)),)
    torch_name = ""

    def rules(self, a, x, calc):
        c, h, w = need_map(self.name, x)
        calc.per_axis("output size", lambda i: (
            "O = size (whatever the input size)", str(a.size[i]), a.size[i], ""))
        calc.step("parameters", "none: a fixed average or max, nothing learnt", "0", 0)
        # PyTorch's windows run from floor(i*I/O) to ceil((i+1)*I/O): the widest one, and the
        # average step between windows, count as the kernel and stride; an output larger than
        # the input is an upsampling (resize.py's rule): its step is the fraction I / O
        kernel = calc.per_axis("widest window", lambda i: _widest_window((h, w)[i], a.size[i]))
        stride = calc.per_axis("window step", lambda i: _window_step((h, w)[i], a.size[i]))
        calc.output = (c, *a.size)
        calc.window(kernel, stride, "the widest window and the average step count as K and S")
        calc.pads = False  # every window lies inside the input: no padding is read

    def describe(self, a):
        return f"{self.name} → {fmt_pair(a.size)}"

    def torch(self, a, x):
        return call(self.torch_name, tuple(a.size))


def _window_step(size: int, out: int) -> tuple:
    """The step between adaptive windows along one axis, as (formula, substituted, value,
    note): whole input pixels when the map shrinks or keeps its size, the fraction I / O of
    an input pixel when it grows (as upsampling's)."""
    if out <= size:
        return "S = max(floor(I / O), 1)", f"max(floor({size} / {out}), 1)", max(size // out, 1), ""
    from fractions import Fraction  # the check path imports it only where a map grows

    return ("S = I / O (O > I: the map is enlarged)", f"{size} / {out}", Fraction(size, out),
            f"{out} outputs over {size} inputs: neighbouring outputs are {size}/{out} of an input "
            "pixel apart, and each reads 1 or 2 of them, as upsampling does")


def _widest_window(size: int, out: int) -> tuple:
    """The widest of PyTorch's adaptive windows over `size` inputs giving `out` outputs, window
    o covering floor(o*I/O) .. ceil((o+1)*I/O), as (formula, substituted, value, note)."""
    formula = "K = ceil((o + 1) * I / O) - floor(o * I / O), the widest window o"
    if size % out == 0:
        return formula, f"{size} / {out}", size // out, "I / O is whole: equal windows"
    if out > 4096:  # a bound, not a scan over millions of windows: ceil(I/O) + 1 at most
        return ("K <= min(ceil(I / O) + 1, I)", f"min(ceil({size} / {out}) + 1, {size})",
                min(-(-size // out) + 1, size), "a bound: the windows are too many to scan")
    widths = [-(-(o + 1) * size // out) - (o * size) // out for o in range(out)]
    o = widths.index(max(widths))
    return (formula, f"ceil(({o} + 1) * {size} / {out}) - floor({o} * {size} / {out})",
            widths[o], "I / O is not whole: the windows differ in width, and some overlap")


@layer("adaptiveavgpool", family="pool", positional=("size",),
       summary="average pooling to a fixed output size (torch.nn.AdaptiveAvgPool2d)",
       fresh_output=True)
class AdaptiveAvgPool(_AdaptivePool):
    torch_name = "AdaptiveAvgPool2d"
    aliases = {"globalavgpool": "1", "globalaveragepool": "1", "gap": "1",
               "globalaveragepooling": "1; flatten", "globalavgpooling": "1; flatten"}

    reference = {
        "input": "a C×H×W feature map",
        "shape": "C × size_h × size_w, whatever the input size (a size larger than the input is "
                 "allowed, as in PyTorch)",
        "rf": "PyTorch's window `i` spans `floor(i·I/O)` to `ceil((i+1)·I/O)`: kernel = the widest "
              "window, `max_i(ceil((i+1)·I/O) − floor(i·I/O))`; stride `max(floor(I/O), 1)`, or "
              "where the output is larger than the input (`O > I`) the fraction `I/O`, as "
              "upsampling's: outputs closer together than input pixels, each reading 1 or 2; no "
              "padding is read",
        "errors": "E-RANK",
    }


@layer("adaptivemaxpool", family="pool", positional=("size",), nonlinear=True, fresh_output=True,
       summary="max pooling to a fixed output size (torch.nn.AdaptiveMaxPool2d)")
class AdaptiveMaxPool(_AdaptivePool):
    torch_name = "AdaptiveMaxPool2d"
    aliases = {"globalmaxpool": "1", "globalmaxpooling": "1; flatten"}

    reference = {
        "input": "a C×H×W feature map",
        "shape": "C × size_h × size_w",
        "rf": "as adaptiveavgpool",
        "errors": "E-RANK",
    }
