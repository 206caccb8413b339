"""MaxViT's multi-axis attention (torchvision's maxvit.py) on CxHxW feature maps: block
attention inside size x size windows, and grid attention across a size x size grid spread
over the whole map. The layer norms, the MLP, dropout and stochastic depth around it in
torchvision's PartitionAttentionLayer act per position, so a spec writes them with
`layernorm2d`, `pointwise` and `stochasticdepth` (specs/maxvit.arch)."""

from __future__ import annotations

from .base import (CHOICE, INT, UNCHANGED_SHAPE, Arg, LayerError, LayerKind, call, layer,
                   need_map)


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

    def shape(self, a, x):
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
        return x

    def params(self, a, x, y):
        c, heads = x[0], x[0] // a.head_dim
        return 4 * c * c + 4 * c + (2 * a.size - 1) ** 2 * heads  # to_qkv, merge, bias table

    def buffers(self, a, x, y):
        return a.size ** 4  # relative_position_index, (size², size²)

    def macs(self, a, x, y):
        # to_qkv and merge at every position, and the two products (Q·Kᵀ, A·V) over the
        # size² positions of each partition, as torchvision's published GFLOPS count them
        c, h, w = x
        return h * w * (4 * c * c + 2 * a.size * a.size * c)

    def receptive(self, a, x):
        # a window: size x size neighbours; the grid: size x size positions H / size apart,
        # as a dilated kernel reaches (the whole map when it is size x size)
        if a.partition == "grid":
            return tuple((a.size - 1) * (side // a.size) + 1 for side in x[1:]), (1, 1)
        return (a.size, a.size), (1, 1)

    def describe(self, a):
        return f"{'grid' if a.partition == 'grid' else 'block'} attention {a.size}"

    def torch(self, a, x):
        return call("archdsl.nn.maxvit:PartitionAttention", x[0], a.head_dim, a.size,
                    grid=a.partition == "grid")
