"""MaxViT's multi-axis attention (torchvision's maxvit.py) on CxHxW feature maps: block
attention inside size x size windows, and grid attention across a size x size grid spread
over the whole map. The layer norms, the MLP, dropout and stochastic depth around it in
torchvision's PartitionAttentionLayer act per position, so a spec writes them with
`layernorm2d`, `pointwise` and `stochasticdepth` (specs/maxvit.arch)."""

from __future__ import annotations

from .base import (CHOICE, INT, UNCHANGED_SHAPE, Arg, LayerError, LayerKind, call, layer,
                   need_map)
from .calc import linear_parts, total


@layer("partitionattention", family="linear", positional=("partition",),
       words={"window": ("partition", "window"), "grid": ("partition", "grid")},
       nonlinear=True, fresh_output=True,
       summary="MaxViT's block (`window`) or grid (`grid`) attention with relative position "
               "bias on a CxHxW map (torchvision's PartitionAttentionLayer's attention)")
class PartitionAttention(LayerKind):
    weights = ("to_qkv.weight", "merge.weight")
    args = (Arg("partition", CHOICE, "window", choices=("window", "grid"),
                doc="`window`: size x size blocks; `grid`: a size x size grid over the map"),
            Arg("size", INT, min=1, doc="the partition size (torchvision's partition_size; "
                                         "maxvit_t: 7)"),
            Arg("head_dim", INT, min=1, doc="channels per attention head (maxvit_t: 32)"))

    reference = {
        "input": "a C×H×W feature map",
        "shape": UNCHANGED_SHAPE,
        "params": "`4·C·C + 4C` (query, key, value and merge projections) plus the bias "
                  "table `(2·size−1)²·(C/head_dim)`",
        "buffers": "the relative position index, `size⁴`",
        "macs": "`H·W·(4·C·C + 2·size²·C)`",
        "rf": "`window`: kernel `size`; `grid`: `(size−1)·(H/size)+1` per axis (the whole "
              "map at size×size); stride 1",
        "errors": "E-RANK, E-GROUPS (head_dim does not divide C), E-SHAPE (H or W not a "
                  "multiple of size; `grid` on a map that is not square)",
    }

    def rules(self, a, x, calc):
        c, h, w = need_map("partitionattention", x)
        if c % a.head_dim:
            raise LayerError("E-GROUPS", f"a head dimension of {a.head_dim} does not divide the "
                             f"{c} channels", hint="head_dim must divide the channel count",
                             arg="head_dim")
        if h % a.size or w % a.size:
            raise LayerError("E-SHAPE", f"the {h}x{w} map is not divisible into partitions of "
                             f"{a.size}x{a.size}", hint="MaxViT needs each stage's map to be a "
                             "multiple of the partition size (224x224 for size 7)", arg="size")
        if a.partition == "grid" and h != w:
            raise LayerError("E-SHAPE", f"grid attention needs a square map, not {h}x{w} "
                             "(torchvision reads the grid's size from the height)",
                             hint="use a square input")
        p = a.size
        heads = calc.step("heads", "C / head_dim", f"{c} / {a.head_dim}", c // a.head_dim)
        calc.same(f"attention among {p} x {p} positions: " + (
            f"a grid spread over the map, {h // p} apart" if a.partition == "grid" else
            "neighbouring blocks") + " (MaxViT)")
        parts = linear_parts(calc, "to_qkv", c, c, True, "q, k and v stacked", times=3)
        parts += linear_parts(calc, "merge", c, c, True)
        parts.append(calc.step("position bias table", "(2 * size - 1)^2 * heads",
                               f"(2 * {p} - 1) ** 2 * {heads}", (2 * p - 1) ** 2 * heads))
        calc.params = total(calc, parts)
        calc.buffers = calc.step("buffers", "size^4 (relative_position_index, size^2 x size^2)",
                                 f"{p} ** 4", p ** 4)
        # to_qkv and merge at every position, and the two products (Q·Kᵀ, A·V) over the
        # size² positions of each partition, as torchvision's published GFLOPS count them
        calc.macs = calc.step("MACs", "H * W * (4 * C * C + 2 * size * size * C)",
                              f"{h} * {w} * (4 * {c} * {c} + 2 * {p} * {p} * {c})",
                              h * w * (4 * c * c + 2 * p * p * c))
        # a window: size x size neighbours; the grid: size x size positions H / size apart,
        # as a dilated kernel reaches (the whole map when it is size x size)
        if a.partition == "grid":
            kernel = calc.per_axis("kernel reach", lambda i: (
                "K_eff = (size - 1) * (I / size) + 1", f"({p} - 1) * ({x[1 + i]} // {p}) + 1",
                (p - 1) * (x[1 + i] // p) + 1, "the grid's positions are I / size apart, as a "
                                               "dilated kernel's taps"))
        else:
            kernel = (p, p)
        calc.window(kernel, (1, 1))

    def describe(self, a):
        return f"{'grid' if a.partition == 'grid' else 'block'} attention {a.size}"

    def torch(self, a, x):
        return call("archdsl.nn.maxvit:PartitionAttention", x[0], a.head_dim, a.size,
                    grid=a.partition == "grid")
