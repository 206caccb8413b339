"""Convolution: PyTorch's, with TensorFlow's `same` padding beyond stride 1, and
weight-standardised (timm's StdConv2d and ScaledStdConv2d)."""

from __future__ import annotations

from .base import (call, effective, BOOL, CHOICE, FLOAT, INT, PADDING, PAIR, Arg, Args, LayerError,
                   LayerKind, Shape, Window, fmt_pair, layer, need_map)
from .calc import Calc, dilation_steps, window_step

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
CONV_WORDS = {"nobias": ("bias", False), "same": ("padding", "same"), "valid": ("padding", "valid"),
              **{m: ("padding_mode", m) for m in PADDING_MODES}}
_OWN = "archdsl.nn.conv:"


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's `same` (before, after) padding of one axis `size` long: O = ceil(I / S),
    padded by max((O - 1) * S + K_eff - I, 0) in total, the smaller half before (timm's
    get_same_padding). At stride 1 it is PyTorch's `same`: K_eff - 1, the extra one after."""
    total = max((-(-size // stride) - 1) * stride + effective(kernel, dilation) - size, 0)
    return total // 2, total - total // 2


def conv_padding(a: Args, axis: int, size: int) -> tuple[int, int]:
    """(before, after) padding along H (axis 0) or W (axis 1) of an input `size` long."""
    if a.padding == "valid":
        return 0, 0
    if a.padding == "same":
        return same_padding(size, a.kernel[axis], a.stride[axis], a.dilation[axis])
    return a.padding[axis], a.padding[axis]


@layer("conv", family="conv", positional=("out",), words=CONV_WORDS,
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
            doc="zero padding on each side, or `same` (the output is ceil(I / S): PyTorch's "
                "padding at stride 1, TensorFlow's beyond) / `valid`", aliases=("pad",)),
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
                 "A number pads `P_l = P_r = P`; `valid` is 0; `same` gives `O = ceil(I / S)` "
                 "(TensorFlow's rule, timm's Conv2dSame): it pads "
                 "`max((O−1)·S + D·(K−1) + 1 − I, 0)` in total, `floor` of half before and the "
                 "rest after (so an odd total pads one more at the bottom/right); at stride 1 that "
                 "is PyTorch's `same`, `D·(K−1)`, and keeps the size (and builds nn.Conv2d with "
                 "padding='same'; beyond stride 1 archdsl's own Conv2dSame, with nn.Conv2d's weight "
                 "and bias)",
        "params": "`out·(C/groups)·Kh·Kw`, plus `out` with a bias",
        "macs": "`out·H_out·W_out·(C/groups)·Kh·Kw`",
        "rf": "kernel `D·(K−1)+1`, stride `S`",
        "errors": "E-RANK (input is a vector), E-GROUPS (groups must divide C and out), "
                  "E-PADDING (`reflect` padding "
                  "must be smaller than the input size, `circular` at most the input size), "
                  "E-KERNEL (`D·(K−1)+1` larger than `I + P_l + P_r`)",
    }

    def rules(self, a: Args, x: Shape, calc: Calc) -> None:
        c, h, w = need_map("conv", x)
        _check_groups(a, c)
        window = self.window(a, x)
        for axis, size in enumerate((h, w)):
            _check_fits(a, window, axis, size, (h, w))
        _padding_steps(calc, a, window, (h, w))
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
        parts = [weight, bias] + self.more_parameters(a, c, calc)
        calc.params = calc.step("parameters", " + ".join(("weight", "bias", "gain")[:len(parts)]),
                                " + ".join(map(str, parts)), sum(parts))
        calc.macs = calc.step(
            "MACs", "C_out * H_out * W_out * (C_in / groups) * K_h * K_w",
            f"{a.out} * {out[0]} * {out[1]} * ({c} / {a.groups}) * {kh} * {kw}",
            a.out * out[0] * out[1] * per_group * kh * kw,
            "one multiply-add per weight per output position; bias additions are not counted")
        calc.output = (a.out, *out)
        calc.window(reach, a.stride)

    def more_parameters(self, a: Args, c: int, calc: Calc) -> list[int]:
        """Parameters beyond the weight and bias, as steps (a subclass's)."""
        return []

    def window(self, a, x):
        return Window(tuple(a.kernel), tuple(a.stride),
                      (conv_padding(a, 0, x[1]), conv_padding(a, 1, x[2])), tuple(a.dilation))

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
        if a.padding == "same" and a.stride != (1, 1):  # TensorFlow's rule: timm's Conv2dSame
            return call(_OWN + "Conv2dSame", x[0], a.out, tuple(a.kernel), stride=tuple(a.stride),
                        dilation=tuple(a.dilation), groups=a.groups, bias=a.bias,
                        padding_mode=a.padding_mode)
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


def _padding_steps(calc: Calc, a: Args, window: Window, hw: tuple) -> None:
    """The padding, explained where it is not a plain number (`valid`, `same`)."""
    if a.padding == "valid":
        calc.step("padding", "valid: no padding", "0", 0)
    elif a.padding == "same":
        same_steps(calc, hw, window)


def same_steps(calc: Calc, hw: tuple, window: Window) -> None:
    """`same` padding per axis: PyTorch's rule at stride 1, TensorFlow's (timm's) beyond."""
    if window.stride != (1, 1):
        calc.per_axis("same padding in total", lambda i: (
            "P = max((ceil(I / S) - 1) * S + K_eff - I, 0)",
            f"max((ceil({hw[i]} / {window.stride[i]}) - 1) * {window.stride[i]} + "
            f"{window.reach[i]} - {hw[i]}, 0)", sum(window.padding[i]),
            "TensorFlow's `same` beyond stride 1, as timm pads: the output is ceil(I / S)"))

    def rule(i):
        (before, after), s = window.padding[i], window.stride[i]
        total = before + after
        note = "`same` keeps H and W at stride 1" if s == 1 else \
            "" if total else "the windows already cover the input: no padding"
        if before != after:
            note += "; " * bool(note) + "an odd total pads one more on the bottom/right"
        if s == 1:
            return ("same: P_l + P_r = K_eff - 1, P_l = floor((K_eff - 1) / 2)",
                    f"P_l = floor({total} / 2) = {before}, P_r = {total} - {before} = {after}",
                    [before, after], note)
        return ("P_l = floor(P / 2), P_r = P - P_l", f"floor({total} / 2), {total} - {before}",
                [before, after], note)

    calc.per_axis("padding", rule)


def _divisor_hint(channels: int, groups: int) -> str:
    # Look near `groups` only: a full divisor search of a huge channel count would hang.
    window = range(max(1, groups - 256), min(channels, groups + 256) + 1)
    divisors = {1} | {d for d in window if channels % d == 0}
    near = sorted(divisors, key=lambda d: abs(d - groups))[:3]
    return "groups must divide the channel count; close choices: " + ", ".join(
        f"`g{d}`" for d in sorted(near))


@layer("wsconv", family="conv", positional=("out",), words={**CONV_WORDS, "nogain": ("gain", False)},
       summary="weight-standardised 2-D convolution (timm's ScaledStdConv2d; `nogain`: StdConv2d)",
       fresh_output=True, sliding_window=True)
class WSConv(Conv):
    """conv's arguments and rules, its weights standardised per output channel before each
    convolution (archdsl.nn.conv:StdConv2d)."""

    aliases = {"scaledstdconv": "", "stdconv": "nogain", "weightstandardizedconv": "",
               "weightstandardisedconv": ""}
    orders = {"timm's ScaledStdConv2d": ("in", "out", "kernel", "stride", "padding", "dilation",
                                         "groups")}
    args = Conv.args + (
        Arg("gain", BOOL, True, doc="scale the standardised weights by `gamma / sqrt(fan_in)` "
            "and a learnt gain per output channel, as NF-ResNets and NFNets do (timm's "
            "ScaledStdConv2d); `nogain`: standardise only (timm's StdConv2d, BiT)"),
        Arg("gamma", FLOAT, 1.0, doc="the fixed scale of the standardised weights (timm's gamma: "
            "NF-ResNets pass the activation's gain, 1.7139588594436646 after relu)"),
        Arg("gain_init", FLOAT, 1.0, doc="the gain's starting value (0 for the last conv of an "
            "NF-ResNet bottleneck)"),
        Arg("eps", FLOAT, 1e-6, min=0, doc="added to each channel's weight variance (timm's "
            "default; BiT and NF-ResNets pass 1e-8 and 1e-5)", aliases=("epsilon",)),
    )

    reference = {
        "input": "a C×H×W feature map",
        "shape": "as `conv`'s (every flag and word of conv, `same` at any stride included)",
        "params": "conv's, plus `out` gains (shape out×1×1×1) unless `nogain`",
        "macs": "conv's; the standardisation of the weights is not counted",
        "rf": "as conv's: kernel `D·(K−1)+1`, stride `S`",
        "errors": "conv's, and E-ARG-RANGE (`gamma` or `gain_init` with `nogain`; one weight "
                  "per output channel, `(C/groups)·Kh·Kw = 1`, which cannot be standardised)",
    }

    def rules(self, a: Args, x: Shape, calc: Calc) -> None:
        if not a.gain:
            for name in ("gamma", "gain_init"):
                if name in a.given:
                    raise LayerError("E-ARG-RANGE", f"`{name}` scales the learnt gain, but this "
                                     "wsconv has none (`nogain`)", arg=name,
                                     hint=f"drop `{name}=…`, or the word `nogain`")
        _check_groups(a, need_map("wsconv", x)[0])
        if x[0] // a.groups * a.kernel[0] * a.kernel[1] == 1:
            raise LayerError("E-ARG-RANGE", "weight standardisation needs more than one weight "
                             f"per output channel, but a {fmt_pair(a.kernel)} kernel over "
                             f"{x[0] // a.groups} input channel per group has one (PyTorch's "
                             "batch norm of the weights refuses it)", arg="kernel",
                             hint="use `conv` here, or a larger kernel")
        super().rules(a, x, calc)

    def more_parameters(self, a: Args, c: int, calc: Calc) -> list[int]:
        kh, kw = a.kernel
        fan_in = calc.step("fan-in", "(C_in / groups) * K_h * K_w", f"({c} / {a.groups}) * {kh} * "
                           f"{kw}", c // a.groups * kh * kw, "each output channel's weights are "
                           f"standardised to mean 0 and variance 1 (eps {a.eps:g}) before every "
                           "convolution")
        if not a.gain:
            calc.step("gain", "none (nogain)", "0", 0, "the standardised weights are used as "
                      "they are (timm's StdConv2d)")
            return []
        calc.step("scale", "gamma / sqrt(fan-in)", f"{a.gamma!r} / sqrt({fan_in})",
                  a.gamma * fan_in ** -0.5, "fixed, not learnt")
        return [calc.step("gain", "C_out (one per output channel)", str(a.out), a.out,
                          f"learnt, starting at {a.gain_init:g}; the standardised weights are "
                          "multiplied by scale * gain (timm's ScaledStdConv2d)")]

    def describe(self, a):
        return "ws" + super().describe(a) + ("" if a.gain else " nogain")

    def torch(self, a, x):
        padding = a.padding if isinstance(a.padding, str) else tuple(a.padding)
        return call(_OWN + "StdConv2d", x[0], a.out, tuple(a.kernel), stride=tuple(a.stride),
                    padding=padding, dilation=tuple(a.dilation), groups=a.groups, bias=a.bias,
                    padding_mode=a.padding_mode, eps=a.eps, gain=a.gain, gamma=a.gamma,
                    gain_init=a.gain_init)
