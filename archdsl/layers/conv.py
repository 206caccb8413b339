"""Convolution."""

from __future__ import annotations

from .base import (call, effective, BOOL, CHOICE, INT, PADDING, PAIR, Arg, Args, LayerError, LayerKind, Shape,
                   Window, fmt_pair, layer, need_map)
from .calc import Calc, dilation_steps, window_step

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def conv_padding(a: Args, axis: int) -> tuple[int, int]:
    """(left, right) padding along H (axis 0) or W (axis 1), with PyTorch's `same` rule."""
    if a.padding == "valid":
        return 0, 0
    if a.padding == "same":
        total = effective(a.kernel[axis], a.dilation[axis]) - 1
        return total // 2, total - total // 2
    return a.padding[axis], a.padding[axis]


@layer("conv", family="conv", positional=("out",),
       words={"nobias": ("bias", False), "same": ("padding", "same"), "valid": ("padding", "valid"),
              **{m: ("padding_mode", m) for m in PADDING_MODES}},
       summary="2-D convolution (torch.nn.Conv2d)", fresh_output=True, sliding_window=True)
class Conv(LayerKind):
    aliases = {"conv2d": "", "convolution": "", "convolution2d": ""}
    orders = {"PyTorch's Conv2d": ("in", "out", "kernel", "stride", "padding", "dilation",
                                   "groups"),
              "Keras's Conv2D": ("out", "kernel", "stride")}
    weights = ("weight",)
    args = (
        Arg("out", INT, min=1, doc="output channels",
            aliases=("out_channels", "filters", "num_output")),
        Arg("kernel", PAIR, flag="k", min=1, doc="kernel size, `k3` or `k1x7`",
            aliases=("kernel_size",)),
        Arg("stride", PAIR, 1, flag="s", min=1, doc="stride", aliases=("strides",)),
        Arg("padding", PADDING, 0, flag="p", min=0,
            doc="zero padding on each side, or `same` / `valid`", aliases=("pad",)),
        Arg("dilation", PAIR, 1, flag="d", min=1, doc="spacing between kernel taps",
            aliases=("dilation_rate",)),
        Arg("groups", INT, 1, flag="g", min=1, doc="channel groups; `g=c` is depthwise",
            aliases=("group",)),
        Arg("bias", BOOL, True, doc="learn an additive bias (`nobias` turns it off)",
            aliases=("use_bias", "bias_term")),
        Arg("padding_mode", CHOICE, "zeros", choices=PADDING_MODES,
            doc="how the border is padded"),
    )

    reference = {
        "input": "a C×H×W feature map",
        "shape": "out × H_out × W_out; per axis `O = floor((I + P_l + P_r − D·(K−1) − 1) / S) + 1`. "
                 "A number pads `P_l = P_r = P`; `valid` is 0; `same` pads `D·(K−1)` in total, "
                 "`floor` of half before and the rest after (PyTorch's rule, so an even kernel pads "
                 "one more at the bottom/right) and keeps the size",
        "params": "`out·(C/groups)·Kh·Kw`, plus `out` with a bias",
        "macs": "`out·H_out·W_out·(C/groups)·Kh·Kw`",
        "rf": "kernel `D·(K−1)+1`, stride `S`",
        "errors": "E-RANK (input is a vector), E-GROUPS (groups must divide C and out), "
                  "E-ARG-RANGE (`same` with a stride other than 1), E-PADDING (`reflect` padding "
                  "must be smaller than the input size, `circular` at most the input size), "
                  "E-KERNEL (`D·(K−1)+1` larger than `I + P_l + P_r`)",
    }

    def rules(self, a: Args, x: Shape, calc: Calc) -> None:
        c, h, w = need_map("conv", x)
        _check_groups(a, c)
        if a.padding == "same" and a.stride != (1, 1):
            raise LayerError("E-ARG-RANGE", "padding=same only works with stride 1 (PyTorch refuses "
                             "strided `same` convolutions)", hint="give the padding as a number, "
                             f"e.g. `p{(a.kernel[0] - 1) // 2}`", arg="padding")
        window = self.window(a, x)
        for axis, size in enumerate((h, w)):
            _check_fits(a, window, axis, size, (h, w))
        _padding_steps(calc, a, window)
        reach = dilation_steps(calc, a.kernel, a.dilation)
        out = calc.per_axis("output size", lambda i: window_step(
            (h, w)[i], a.kernel[i], a.stride[i], *window.padding[i], a.dilation[i], False))
        if a.padding_mode != "zeros":
            calc.note(f"padding_mode {a.padding_mode} fills the padded border from the input "
                      "instead of with zeros; the sizes are the same")
        calc.step("channels", "C_out = out", str(a.out), a.out)
        per_group = c // a.groups
        group_note = "" if a.groups == 1 else (
            f"groups {a.groups}: each output channel sees only {c} / {a.groups} = {per_group} of "
            f"the {c} input channels" + (" (depthwise)" if a.groups == c else ""))
        kh, kw = a.kernel
        weight = calc.step("weight", "C_out * (C_in / groups) * K_h * K_w",
                           f"{a.out} * ({c} / {a.groups}) * {kh} * {kw}",
                           a.out * per_group * kh * kw, group_note)
        bias = calc.step("bias", "C_out (one per output channel)", str(a.out), a.out) if a.bias \
            else calc.step("bias", "none (nobias)", "0", 0, "usual before a batch norm, whose shift "
                           "would cancel a bias")
        calc.params = calc.step("parameters", "weight + bias", f"{weight} + {bias}", weight + bias)
        calc.macs = calc.step(
            "MACs", "C_out * H_out * W_out * (C_in / groups) * K_h * K_w",
            f"{a.out} * {out[0]} * {out[1]} * ({c} / {a.groups}) * {kh} * {kw}",
            a.out * out[0] * out[1] * per_group * kh * kw,
            "one multiply-add per weight per output position; bias additions are not counted")
        calc.output = (a.out, *out)
        calc.window(reach, a.stride)

    def window(self, a, x):
        return Window(tuple(a.kernel), tuple(a.stride), (conv_padding(a, 0), conv_padding(a, 1)),
                      tuple(a.dilation))

    def describe(self, a):
        parts = [f"conv {a.out} · {fmt_pair(a.kernel)}"]
        if a.stride != (1, 1):
            parts.append(f"/{a.stride[0]}" if a.stride[0] == a.stride[1] else f"/{fmt_pair(a.stride)}")
        if isinstance(a.padding, str):
            parts.append(a.padding)
        elif a.padding != (0, 0):
            parts.append(f"p{a.padding[0]}" if a.padding[0] == a.padding[1] else
                         f"p{a.padding[0]}x{a.padding[1]}")
        if a.dilation != (1, 1):
            parts.append(f"d{a.dilation[0]}")
        if a.groups != 1:
            parts.append(f"g{a.groups}")
        return " ".join(parts)

    def torch(self, a, x):
        padding = a.padding if isinstance(a.padding, str) else tuple(a.padding)
        return call("Conv2d", x[0], a.out, tuple(a.kernel), stride=tuple(a.stride), padding=padding,
                         dilation=tuple(a.dilation), groups=a.groups, bias=a.bias,
                         padding_mode=a.padding_mode)


def _check_groups(a: Args, c: int) -> None:
    if c % a.groups:
        raise LayerError("E-GROUPS", f"groups={a.groups} does not divide the {c} input channels",
                         hint=_divisor_hint(c, a.groups), arg="groups")
    if a.out % a.groups:
        raise LayerError("E-GROUPS", f"groups={a.groups} does not divide the {a.out} output "
                         "channels", hint=_divisor_hint(a.out, a.groups), arg="groups")


def _check_fits(a: Args, window: Window, axis: int, size: int, hw: tuple) -> None:
    """E-PADDING or E-KERNEL where PyTorch refuses the padding or the window along `axis`."""
    h, w = hw
    left, right = window.padding[axis]
    if a.padding_mode == "reflect" and max(left, right) >= size:
        raise LayerError("E-PADDING", f"reflect padding of {max(left, right)} needs an input "
                         f"larger than that, but the input is {h}x{w}",
                         hint="use less padding or padding_mode=zeros", arg="padding")
    if a.padding_mode == "circular" and max(left, right) > size:
        raise LayerError("E-PADDING", f"circular padding of {max(left, right)} wraps around "
                         f"the {h}x{w} input more than once", arg="padding")
    padded = size + left + right
    if padded < window.reach[axis]:
        k = "x".join(str(r) for r in window.reach)
        raise LayerError("E-KERNEL", f"the {k} kernel is larger than the padded {h}x{w} "
                         f"input ({size}+{left + right} = {padded} along "
                         f"{'HW'[axis]})", hint="use a smaller kernel, more padding, or less "
                         "downsampling before this layer", arg="kernel",
                         label=f"input is only {h}x{w} here")


def _padding_steps(calc: Calc, a: Args, window: Window) -> None:
    """The padding, explained where it is not a plain number (`valid`, `same`)."""
    if a.padding == "valid":
        calc.step("padding", "valid: no padding", "0", 0)
    elif a.padding == "same":
        pads = window.padding
        calc.per_axis("padding", lambda i: (
            "same: P_l + P_r = K_eff - 1, P_l = floor((K_eff - 1) / 2)",
            f"P_l = floor({sum(pads[i])} / 2) = {pads[i][0]}, P_r = {sum(pads[i])} - "
            f"{pads[i][0]} = {pads[i][1]}", list(pads[i]),
            "`same` keeps H and W at stride 1; an even kernel pads one more on the bottom/right"
            if pads[i][0] != pads[i][1] else "`same` keeps H and W at stride 1"))


def _divisor_hint(channels: int, groups: int) -> str:
    # Look near `groups` only: a full divisor search of a huge channel count would hang.
    window = range(max(1, groups - 256), min(channels, groups + 256) + 1)
    divisors = {1} | {d for d in window if channels % d == 0}
    near = sorted(divisors, key=lambda d: abs(d - groups))[:3]
    return "groups must divide the channel count; close choices: " + ", ".join(
        f"`g{d}`" for d in sorted(near))
