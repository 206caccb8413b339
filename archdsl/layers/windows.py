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
registers norm1 before attn and norm2 before mlp but applies them after, and weights move
between models by registration order (`transfer_weights`).
"""

from __future__ import annotations

from .base import (BOOL, FLOAT, INT, PAIR, UNCHANGED_SHAPE, Arg, LayerError, LayerKind, call,
                   layer, need_map)

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

    def shape(self, a, x):
        c, _, _ = need_map("windowattention", x)
        if c % a.heads:
            raise LayerError("E-GROUPS", f"{a.heads} heads do not divide the {c} channels",
                             hint="the head count must divide the channel count", arg="heads")
        if a.cosine and min(a.window) < 2:
            raise LayerError("E-ARG-RANGE", "cosine window attention needs a window of at "
                             "least 2x2 (its relative coordinates divide by window - 1)",
                             hint="use window=2 or more", arg="window")
        for s, w in zip(a.shift, a.window):
            if s >= w:
                raise LayerError("E-ARG-RANGE", f"a shift of {s} is not smaller than the "
                                 f"window of {w}", hint="Swin shifts by window // 2",
                                 arg="shift")
        return x

    def params(self, a, x, y):
        c, (wh, ww) = x[0], a.window
        n = 4 * c * c + (4 * c if a.bias else 0)  # qkv and proj
        if a.cosine:  # logit scale, cpb_mlp: Linear(2, 512), Linear(512, heads, bias=False)
            n += a.heads + 3 * CPB_HIDDEN + CPB_HIDDEN * a.heads
        else:  # the relative position bias table
            n += (2 * wh - 1) * (2 * ww - 1) * a.heads
        return n + (2 * c if a.postnorm else 0)

    def buffers(self, a, x, y):
        wh, ww = a.window
        index = (wh * ww) ** 2  # relative_position_index
        return index + ((2 * wh - 1) * (2 * ww - 1) * 2 if a.cosine else 0)

    def macs(self, a, x, y):
        # On the map padded to whole windows: the qkv and output projections, and the two
        # products Q·Kᵀ and A·V inside each window of N = wh·ww; v2 adds its bias MLP over the
        # (2wh-1)(2ww-1) relative positions. What torchvision's published GFLOPS count.
        c, h, w = x
        (wh, ww) = a.window
        positions = padded(h, wh) * padded(w, ww)
        n = positions * (4 * c * c + 2 * wh * ww * c)
        if a.cosine:
            n += (2 * wh - 1) * (2 * ww - 1) * (2 * CPB_HIDDEN + CPB_HIDDEN * a.heads)
        return n

    def receptive(self, a, x):
        # Each position attends within its window (of a map no smaller than the window)
        return (min(a.window[0], x[1]), min(a.window[1], x[2])), (1, 1)

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

    def shape(self, a, x):
        c, h, w = need_map("patchmerging", x)
        return (2 * c, -(-h // 2), -(-w // 2))  # odd sides padded by one

    def params(self, a, x, y):
        c = x[0]
        return 8 * c * c + 2 * (2 * c if a.postnorm else 4 * c)

    def macs(self, a, x, y):
        return y[1] * y[2] * 8 * x[0] * x[0]  # Linear(4C, 2C) per output position

    def receptive(self, a, x):
        return (2, 2), (2, 2)

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

    def shape(self, a, x):
        need_map("mlp", x)
        return x

    def params(self, a, x, y):
        c = x[0]
        return 2 * c * a.hidden + a.hidden + c + (2 * c if a.postnorm else 0)

    def macs(self, a, x, y):
        c, h, w = x
        return h * w * 2 * c * a.hidden

    def describe(self, a):
        return f"mlp {a.hidden}" + (" postnorm" if a.postnorm else "")

    def torch(self, a, x):
        return call(_NN + "PointwiseMLP", x[0], a.hidden, dropout=a.dropout,
                    postnorm=a.postnorm, eps=a.eps)
