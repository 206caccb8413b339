"""Swin Transformer's layers (torchvision's swin_transformer.py), on CxHxW feature maps.

torchvision's Swin holds its maps channels-last, (B, H, W, C); here a Swin map is an ordinary
CxHxW map, so its check-table shape, receptive field and drawing are a map's, and every
per-position step is a layer that already works on maps (`layernorm2d`, `pointwise`, `gelu`).
The modules read the map channels-last through a view (archdsl/nn/windows.py), so torchvision's
computation is repeated op for op. Three kinds:

- `windowattention heads`: (shifted) window attention with the relative position bias, v1,
  or v2's cosine attention with the continuous position bias (`cosine`);
- `patchmerging`: 2x2 patches to 2C channels at half the size (v2: `postnorm`);
- `mlp hidden`: the block's two-layer perceptron, only needed for v2's `postnorm`.

`postnorm` puts a layer norm after the layer, registered before it: torchvision's v2 block
registers norm1 before attn and norm2 before mlp but applies them after; holding them in the
same order keeps the state_dict in torchvision's (`--init` pairs by it).
"""

from __future__ import annotations

from .base import (BOOL, FLOAT, INT, PAIR, UNCHANGED_SHAPE, Arg, LayerError, LayerKind, call,
                   fmt_shape, layer, need_map)
from .calc import linear_parts, total

_NN = "archdsl.nn.windows:"
CPB_HIDDEN = 512  # the continuous position bias MLP's width (torchvision's cpb_mlp)

_EPS = Arg("eps", FLOAT, 1e-5, min=0, doc="the layer norm's epsilon")
_POSTNORM = Arg("postnorm", BOOL, False,
                doc="a layer norm after it, registered before it (Swin v2: `postnorm`)")


def padded(size: int, window: int) -> int:
    """A side padded up to whole windows, as torchvision pads before partitioning."""
    return -(-size // window) * window


@layer("windowattention", family="linear", positional=("heads",),
       words={"nobias": ("bias", False), "cosine": ("cosine", True),
              "postnorm": ("postnorm", True)},
       nonlinear=True, fresh_output=True,
       summary="Swin's (shifted) window attention with relative position bias on a CxHxW map "
               "(torchvision's ShiftedWindowAttention; `cosine`: V2)")
class WindowAttention(LayerKind):
    weights = ("qkv.weight", "proj.weight")
    args = (Arg("heads", INT, min=1, doc="attention heads; they split the channels evenly"),
            Arg("window", PAIR, (7, 7), min=1, doc="window size, `window=7` or `window=8x8`"),
            Arg("shift", PAIR, (0, 0), min=0,
                doc="cyclic shift before partitioning (Swin: window // 2 on every other block)"),
            Arg("cosine", BOOL, False, doc="Swin v2: cosine attention with a learnt logit "
                                           "scale and a continuous position bias MLP"),
            _POSTNORM, _EPS,
            Arg("attention_dropout", FLOAT, 0.0, min=0, max=1,
                doc="drop probability of the attention weights while training"),
            Arg("dropout", FLOAT, 0.0, min=0, max=1,
                doc="drop probability of the output while training"),
            Arg("bias", BOOL, True, doc="biases on the projections (`nobias` turns them off)"))

    reference = {
        "input": "a C×H×W feature map",
        "shape": UNCHANGED_SHAPE + "; the map is padded to whole windows inside the layer",
        "params": "`4·C·C` (query, key, value and output projections), plus `4C` with biases; "
                  "then the relative position bias table `(2·Wh−1)·(2·Ww−1)·heads`, or with "
                  "`cosine` the logit scale `heads` and the bias MLP `3·512 + 512·heads`; "
                  "plus `2C` with `postnorm`",
        "buffers": "the relative position index `(Wh·Ww)²`, plus `2·(2·Wh−1)·(2·Ww−1)` "
                   "coordinates with `cosine`",
        "macs": "`Hp·Wp·(4·C·C + 2·Wh·Ww·C)` on the map padded to whole windows (Hp×Wp), plus "
                "`(2·Wh−1)·(2·Ww−1)·(2·512 + 512·heads)` for the `cosine` bias MLP",
        "rf": "kernel `min(window, size)` per axis, stride 1: each position attends within "
              "its window",
        "errors": "E-RANK, E-GROUPS (heads do not divide C), E-ARG-RANGE (a shift not smaller "
                  "than the window; `cosine` with a window under 2)",
    }

    def rules(self, a, x, calc):
        c, h, w = need_map("windowattention", x)
        if c % a.heads:
            raise LayerError("E-GROUPS", f"{a.heads} heads do not divide the {c} channels",
                             hint="the head count must divide the channel count", arg="heads")
        if a.cosine and min(a.window) < 2:
            raise LayerError("E-ARG-RANGE", "cosine window attention needs a window of at "
                             "least 2x2 (its relative coordinates divide by window - 1)",
                             hint="use window=2 or more", arg="window")
        for s, size in zip(a.shift, a.window):
            if s >= size:
                raise LayerError("E-ARG-RANGE", f"a shift of {s} is not smaller than the "
                                 f"window of {size}", hint="Swin shifts by window // 2",
                                 arg="shift")
        wh, ww = a.window
        calc.same(f"attention inside {wh} x {ww} windows" + (
            f", the map first rolled by {fmt_shape(a.shift)} (shifted windows, with their mask)"
            if any(a.shift) else "") + ("; cosine attention with a learnt logit scale (Swin v2)"
                                        if a.cosine else ""))
        calc.params = total(calc, self._parts(a, c, calc))
        index, table = (wh * ww) ** 2, (2 * wh - 1) * (2 * ww - 1) * 2 if a.cosine else 0
        calc.buffers = calc.step(
            "buffers", "(wh * ww)^2 relative_position_index" + (
                " + (2 * wh - 1) * (2 * ww - 1) * 2 relative_coords_table" if a.cosine else ""),
            f"({wh} * {ww}) ** 2" + (f" + (2 * {wh} - 1) * (2 * {ww} - 1) * 2" if a.cosine else ""),
            index + table)
        calc.macs = self._macs(a, calc, c)
        # each position attends within its window (of a map no smaller than the window)
        kernel = (min(wh, h), min(ww, w))
        calc.window(kernel, (1, 1), f"a position sees its {kernel[0]} x {kernel[1]} window "
                                    "(the window, or the whole map when it is smaller)")

    @staticmethod
    def _parts(a, c: int, calc) -> list[int]:
        """The parameters, part by part: qkv and proj, the position bias, the postnorm."""
        wh, ww = a.window
        parts = linear_parts(calc, "qkv", c, c, a.bias, "q, k and v stacked", times=3)
        parts += linear_parts(calc, "proj", c, c, a.bias)
        if a.cosine:  # logit scale, cpb_mlp: Linear(2, 512), Linear(512, heads, bias=False)
            parts.append(calc.step("logit scale", "heads", str(a.heads), a.heads))
            parts.append(calc.step(
                "position bias MLP", "(2 * 512 + 512) + 512 * heads",
                f"(2 * {CPB_HIDDEN} + {CPB_HIDDEN}) + {CPB_HIDDEN} * {a.heads}",
                3 * CPB_HIDDEN + CPB_HIDDEN * a.heads,
                "cpb_mlp: Linear(2, 512) with bias, ReLU, Linear(512, heads) without"))
        else:
            parts.append(calc.step(
                "position bias table", "(2 * wh - 1) * (2 * ww - 1) * heads",
                f"(2 * {wh} - 1) * (2 * {ww} - 1) * {a.heads}", (2 * wh - 1) * (2 * ww - 1) * a.heads,
                "one learnt bias per head for each relative offset inside a window"))
        if a.postnorm:
            parts.append(calc.step("postnorm", "2 * C (gamma and beta)", f"2 * {c}", 2 * c,
                                   "a layer norm after the attention, registered before it (Swin "
                                   "v2)"))
        return parts

    @staticmethod
    def _macs(a, calc, c: int) -> int:
        """On the map padded to whole windows: the qkv and output projections, and the two
        products Q·Kᵀ and A·V inside each window of wh·ww; v2 adds its bias MLP over the
        (2wh-1)(2ww-1) relative positions. What torchvision's published GFLOPS count."""
        wh, ww = a.window
        ph, pw = calc.per_axis("padded to whole windows", lambda i: (
            "ceil(I / window) * window", f"ceil({calc.x[1 + i]} / {a.window[i]}) * {a.window[i]}",
            padded(calc.x[1 + i], a.window[i]), "the padding is cropped again after"))
        macs = ph * pw * (4 * c * c + 2 * wh * ww * c)
        formula = f"{ph} * {pw} * (4 * {c} * {c} + 2 * {wh} * {ww} * {c})"
        if a.cosine:  # the bias MLP over every relative offset
            macs += (2 * wh - 1) * (2 * ww - 1) * (2 * CPB_HIDDEN + CPB_HIDDEN * a.heads)
            formula += (f" + (2 * {wh} - 1) * (2 * {ww} - 1) * (2 * {CPB_HIDDEN} + {CPB_HIDDEN} * "
                        f"{a.heads})")
        return calc.step("MACs", "H_pad * W_pad * (4 * C * C + 2 * wh * ww * C)" + (
            " + (2 * wh - 1) * (2 * ww - 1) * (2 * 512 + 512 * heads)" if a.cosine else ""),
            formula, macs, "per position the qkv and output projections, and inside each window "
                           "of wh * ww tokens the two products Q K^T and A V"
                           + ("; v2's bias MLP once per relative offset" if a.cosine else ""))

    def describe(self, a):
        shift = f" shift {a.shift[0]}" if any(a.shift) else ""
        return f"{'cosine ' if a.cosine else ''}window attention {a.heads}{shift}"

    def torch(self, a, x):
        return call(_NN + "ShiftedWindowAttention", x[0], a.heads, window=a.window,
                    shift=a.shift, cosine=a.cosine, postnorm=a.postnorm, eps=a.eps,
                    dropout=a.dropout, attention_dropout=a.attention_dropout, bias=a.bias)


@layer("patchmerging", family="linear", words={"postnorm": ("postnorm", True)},
       nonlinear=True, fresh_output=True,
       summary="Swin's patch merging: each 2x2 patch's channels concatenated, layer norm, a "
               "linear map to 2C (torchvision's PatchMerging; `postnorm`: V2)")
class PatchMerging(LayerKind):
    weights = ("reduction.weight",)
    args = (Arg("postnorm", BOOL, False,
                doc="the norm after the linear map, over 2C (Swin v2's PatchMergingV2)"),
            _EPS)

    reference = {
        "input": "a C×H×W feature map",
        "shape": "2C × ceil(H/2) × ceil(W/2) (an odd side is padded by one)",
        "params": "`8·C·C` (Linear(4C, 2C), no bias) plus the layer norm: `8C` over 4C, or "
                  "`4C` over 2C with `postnorm`",
        "macs": "`H_out·W_out·8·C·C`",
        "rf": "kernel 2, stride 2",
        "errors": "E-RANK",
    }

    def rules(self, a, x, calc):
        c, h, w = need_map("patchmerging", x)
        out = calc.per_axis("output size", lambda i: (  # odd sides padded by one
            "O = ceil(I / 2)", f"ceil({x[1 + i]} / 2)", -(-x[1 + i] // 2),
            "an odd side is padded by one" if x[1 + i] % 2 else "each 2 x 2 patch becomes one"))
        calc.step("channels", "2 * C (4 * C concatenated, then Linear(4C, 2C))", f"2 * {c}", 2 * c)
        calc.output = (2 * c, *out)
        weight = calc.step("reduction weight", "4 * C * 2 * C (no bias)", f"4 * {c} * 2 * {c}",
                           8 * c * c)
        norm = 2 * c if a.postnorm else 4 * c
        norm = calc.step("norm", "2 * (2 * C): after the reduction (v2)" if a.postnorm else
                         "2 * (4 * C): before the reduction", f"2 * {norm}", 2 * norm,
                         "the layer norm's gamma and beta")
        calc.params = calc.step("parameters", "reduction + norm", f"{weight} + {norm}",
                                weight + norm)
        calc.macs = calc.step("MACs", "H_out * W_out * 4 * C * 2 * C",
                              f"{out[0]} * {out[1]} * 4 * {c} * 2 * {c}", out[0] * out[1] * 8 * c * c,
                              "the reduction, Linear(4C, 2C), at each output position")
        calc.window((2, 2), (2, 2), "each output reads a 2 x 2 patch")

    def describe(self, a):
        return "patch merging" + (" (v2)" if a.postnorm else "")

    def torch(self, a, x):
        return call(_NN + "PatchMerging", x[0], postnorm=a.postnorm, eps=a.eps)


@layer("mlp", family="linear", positional=("hidden",), words={"postnorm": ("postnorm", True)},
       nonlinear=True, fresh_output=True,
       summary="a two-layer perceptron over the channels at each position: Linear to `hidden`, "
               "GELU, Linear back (torchvision.ops.MLP as Swin uses it)")
class MLP(LayerKind):
    weights = ("layers.0.weight", "layers.3.weight")
    args = (Arg("hidden", INT, min=1, doc="hidden channels (Swin: 4·C)"),
            Arg("dropout", FLOAT, 0.0, min=0, max=1,
                doc="drop probability after each Linear while training"),
            _POSTNORM, _EPS)

    reference = {
        "input": "a C×H×W feature map",
        "shape": UNCHANGED_SHAPE,
        "params": "`2·C·hidden + hidden + C`, plus `2C` with `postnorm`",
        "macs": "`H·W·2·C·hidden`",
        "errors": "E-RANK",
    }

    def rules(self, a, x, calc):
        c, h, w = need_map("mlp", x)
        calc.same("Linear(C, hidden), GELU, Linear(hidden, C) at each position")
        parts = linear_parts(calc, "fc1", c, a.hidden, True)
        parts += linear_parts(calc, "fc2", a.hidden, c, True)
        if a.postnorm:
            parts.append(calc.step("postnorm", "2 * C (gamma and beta)", f"2 * {c}", 2 * c))
        calc.params = total(calc, parts)
        calc.macs = calc.step("MACs", "H * W * 2 * C * hidden (two Linears per position)",
                              f"{h} * {w} * 2 * {c} * {a.hidden}", h * w * 2 * c * a.hidden)

    def describe(self, a):
        return f"mlp {a.hidden}" + (" postnorm" if a.postnorm else "")

    def torch(self, a, x):
        return call(_NN + "PointwiseMLP", x[0], a.hidden, dropout=a.dropout,
                    postnorm=a.postnorm, eps=a.eps)
