"""Pooling: sliding-window max and average, and adaptive pooling to a fixed size."""

from __future__ import annotations

from .base import (call, BOOL, PAIR, Arg, Args, LayerError, LayerKind, Shape, Window, fmt_pair,
                   fmt_shape, layer, need_map)


class _WindowPool(LayerKind):
    """Shared rule of max and average pooling (PyTorch's pool2d_shape_check)."""

    dilated = False

    def _dilation(self, a: Args) -> tuple[int, int]:
        return a.dilation if self.dilated else (1, 1)

    def _stride(self, a: Args) -> tuple[int, int]:
        return a.kernel if a.stride is None else a.stride

    def shape(self, a: Args, x: Shape) -> Shape:
        c, h, w = need_map(self.name, x)
        window = self.window(a, x)
        out = []
        for axis, size in enumerate((h, w)):
            k, p = a.kernel[axis], a.padding[axis]
            if p > k // 2:
                raise LayerError("E-ARG-RANGE", f"padding {p} is more than half the kernel size {k}",
                                 hint=f"PyTorch allows at most `p{k // 2}` for a {k}-wide window",
                                 arg="padding")
            o = window.output(axis, size)
            if o < 1:
                raise LayerError("E-EMPTY", f"{self.name} {fmt_shape(a.kernel)} leaves no output on "
                                 f"the {h}x{w} input", hint="use a smaller window, padding, or less "
                                 "downsampling before this layer", arg="kernel",
                                 label=f"input is only {h}x{w} here")
            out.append(o)
        return (c, out[0], out[1])

    def receptive(self, a, x):
        window = self.window(a, x)
        return window.reach, window.stride

    def window(self, a, x):
        (ph, pw) = a.padding
        return Window(tuple(a.kernel), tuple(self._stride(a)), ((ph, ph), (pw, pw)),
                      tuple(self._dilation(a)), a.ceil)

    def describe(self, a):
        stride = self._stride(a)
        parts = [f"{self.name} {fmt_pair(a.kernel)}",
                 f"/{stride[0]}" if stride[0] == stride[1] else f"/{fmt_pair(stride)}"]
        if a.padding != (0, 0):
            parts.append(f"p{a.padding[0]}")
        if a.ceil:
            parts.append("ceil")
        return " ".join(parts)


_WINDOW_ARGS = (
    Arg("kernel", PAIR, flag="k", min=1, doc="window size"),
    Arg("stride", PAIR, None, flag="s", min=1, doc="stride (defaults to the window size)"),
    Arg("padding", PAIR, 0, flag="p", min=0, doc="implicit padding on each side"),
)

# The output shape of max and average pooling, in the words of LayerKind.reference
WINDOW_SHAPE = (
    "C × H_out × W_out; per axis `O = floor((I + 2P − D·(K−1) − 1 + (ceil ? S−1 : 0)) / S) + 1`, "
    "and with `ceil`, `O` is reduced by 1 when `(O−1)·S ≥ I + P` (the last window would start "
    "in the padding) — PyTorch's `pooling_output_shape`")


@layer("maxpool", family="pool", positional=("kernel",), words={"ceil": ("ceil", True)},
       nonlinear=True, summary="max pooling (torch.nn.MaxPool2d)", fresh_output=True,
       sliding_window=True)
class MaxPool(_WindowPool):
    dilated = True
    args = _WINDOW_ARGS + (
        Arg("dilation", PAIR, 1, flag="d", min=1, doc="spacing between window taps"),
        Arg("ceil", BOOL, False, doc="round the output size up (`ceil`)"),
    )

    reference = {
        "input": "a C×H×W feature map",
        "shape": WINDOW_SHAPE + "; the stride defaults to the kernel",
        "rf": "kernel `D·(K−1)+1`, stride `S` (the kernel when not given)",
        "errors": "E-RANK, E-ARG-RANGE (padding more than `floor(K/2)`, as PyTorch refuses), "
                  "E-EMPTY (`O < 1`: the window does not fit)",
    }

    def torch(self, a, x):
        return call("MaxPool2d", tuple(a.kernel), stride=tuple(self._stride(a)), padding=tuple(a.padding),
                            dilation=tuple(a.dilation), ceil_mode=a.ceil)


@layer("avgpool", family="pool", positional=("kernel",),
       words={"ceil": ("ceil", True), "exclude_pad": ("count_include_pad", False)},
       summary="average pooling (torch.nn.AvgPool2d)", fresh_output=True, sliding_window=True)
class AvgPool(_WindowPool):
    args = _WINDOW_ARGS + (
        Arg("ceil", BOOL, False, doc="round the output size up (`ceil`)"),
        Arg("count_include_pad", BOOL, True, doc="count padded zeros in the average"),
    )

    reference = {
        "input": "a C×H×W feature map",
        "shape": WINDOW_SHAPE + " with `D = 1`; the stride defaults to the kernel",
        "rf": "kernel `K`, stride `S` (the kernel when not given)",
        "errors": "E-RANK, E-ARG-RANGE (padding more than `floor(K/2)`), E-EMPTY (`O < 1`)",
    }

    def torch(self, a, x):
        return call("AvgPool2d", tuple(a.kernel), stride=tuple(self._stride(a)), padding=tuple(a.padding),
                            ceil_mode=a.ceil, count_include_pad=a.count_include_pad)


class _AdaptivePool(LayerKind):
    args = (Arg("size", PAIR, min=1, doc="output size, `7` or `7x7`"),)
    torch_name = ""

    def shape(self, a, x):
        c, _, _ = need_map(self.name, x)
        return (c, a.size[0], a.size[1])

    def receptive(self, a, x):
        # PyTorch's windows run from floor(i*I/O) to ceil((i+1)*I/O): the widest one, and the
        # average step between windows.
        kernel = tuple(_widest_window(size, o) for size, o in zip(x[1:], a.size))
        stride = tuple(max(size // o, 1) for size, o in zip(x[1:], a.size))
        return kernel, stride

    def describe(self, a):
        return f"{self.name} → {fmt_pair(a.size)}"

    def torch(self, a, x):
        return call(self.torch_name, tuple(a.size))


def _widest_window(size: int, out: int) -> int:
    """The widest of PyTorch's adaptive windows over `size` inputs giving `out` outputs."""
    if size % out == 0:
        return size // out
    if out > 4096:  # a bound, not a scan over millions of windows: ceil(I/O) + 1 at most
        return min(-(-size // out) + 1, size)
    return max(-(-(i + 1) * size // out) - (i * size) // out for i in range(out))


@layer("adaptiveavgpool", family="pool", positional=("size",),
       summary="average pooling to a fixed output size (torch.nn.AdaptiveAvgPool2d)",
       fresh_output=True)
class AdaptiveAvgPool(_AdaptivePool):
    torch_name = "AdaptiveAvgPool2d"

    reference = {
        "input": "a C×H×W feature map",
        "shape": "C × size_h × size_w, whatever the input size (a size larger than the input is "
                 "allowed, as in PyTorch)",
        "rf": "PyTorch's window `i` spans `floor(i·I/O)` to `ceil((i+1)·I/O)`: kernel = the widest "
              "window, `max_i(ceil((i+1)·I/O) − floor(i·I/O))`; stride `max(floor(I/O), 1)`",
        "errors": "E-RANK",
    }


@layer("adaptivemaxpool", family="pool", positional=("size",), nonlinear=True, fresh_output=True,
       summary="max pooling to a fixed output size (torch.nn.AdaptiveMaxPool2d)")
class AdaptiveMaxPool(_AdaptivePool):
    torch_name = "AdaptiveMaxPool2d"

    reference = {
        "input": "a C×H×W feature map",
        "shape": "C × size_h × size_w",
        "rf": "as adaptiveavgpool",
        "errors": "E-RANK",
    }
