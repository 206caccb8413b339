"""Normalisation: batch, group, layer and local response normalisation."""

from __future__ import annotations

from .base import (call, BOOL, FLOAT, INT, UNCHANGED_SHAPE, Arg, LayerError, LayerKind, fmt_shape,
                   layer, need_map, numel)
from .calc import affine_steps

_EPS = Arg("eps", FLOAT, 1e-5, min=0, doc="added to the variance for stability",
           aliases=("epsilon",))
_AFFINE = Arg("affine", BOOL, True, aliases=("elementwise_affine",),
              doc="learn a per-channel scale and shift (`noaffine` turns it off)")


@layer("bn", family="norm", words={"noaffine": ("affine", False)},
       summary="batch normalisation (BatchNorm2d on feature maps, BatchNorm1d on vectors)",
       fresh_output=True, cancels_bias=True, normalises=True)
class BatchNorm(LayerKind):
    aliases = {"batchnorm": "", "batchnormalization": "", "batchnorm1d": ""}
    orders = {"PyTorch's BatchNorm2d": ("in",)}
    args = (_EPS, Arg("momentum", FLOAT, 0.1, min=0, max=1, doc="running-statistics momentum"),
            _AFFINE)

    reference = {
        "input": "a feature map (torch.nn.BatchNorm2d) or a vector (torch.nn.BatchNorm1d)",
        "shape": UNCHANGED_SHAPE,
        "params": "`2C` (scale and shift) when affine, else 0",
        "buffers": "`2C + 1` (running mean, running variance, num_batches_tracked)",
    }

    def rules(self, a, x, calc):
        c = x[0]
        what = "C (channels)" if len(x) == 3 else "C (features)"
        calc.params = affine_steps(calc, f"{what}: one scale each", f"{what}: one shift each",
                                   str(c), c, a.affine)
        calc.buffers = calc.step("buffers", "running_mean C + running_var C + num_batches_tracked 1",
                                 f"{c} + {c} + 1", 2 * c + 1,
                                 "buffers are saved with the weights but not trained")
        calc.step("output", "output = input", fmt_shape(x), list(x),
                  "0 MACs counted: at inference it folds into the layer before it")

    def torch(self, a, x):
        cls = "BatchNorm2d" if len(x) == 3 else "BatchNorm1d"
        return call(cls, x[0], eps=a.eps, momentum=a.momentum, affine=a.affine)


@layer("groupnorm", family="norm", positional=("groups",), words={"noaffine": ("affine", False)},
       nonlinear=True, fresh_output=True, normalises=True,
       summary="group normalisation (torch.nn.GroupNorm)")
class GroupNorm(LayerKind):
    aliases = {"groupnormalization": ""}
    orders = {"PyTorch's GroupNorm": ("groups", "in")}
    args = (Arg("groups", INT, min=1, doc="number of channel groups", aliases=("num_groups",)),
            _EPS, _AFFINE)

    reference = {
        "input": "a feature map or a vector; C is its first dimension",
        "shape": UNCHANGED_SHAPE,
        "params": "`2C` when affine, else 0",
        "errors": "E-GROUPS (groups must divide C)",
    }

    def rules(self, a, x, calc):
        if x[0] % a.groups:
            raise LayerError("E-GROUPS", f"groupnorm {a.groups} does not divide the {x[0]} channels",
                             hint="the group count must divide the channel count", arg="groups")
        calc.step("channels per group", "C / G (G must divide C)", f"{x[0]} / {a.groups}",
                  x[0] // a.groups)
        calc.params = affine_steps(calc, "C", "C", str(x[0]), x[0], a.affine)
        calc.step("output", "output = input", fmt_shape(x), list(x),
                  "no buffers: statistics are computed from each sample")

    def describe(self, a):
        return f"groupnorm {a.groups}"

    def torch(self, a, x):
        return call("GroupNorm", a.groups, x[0], eps=a.eps, affine=a.affine)


@layer("layernorm", family="norm", words={"noaffine": ("affine", False)}, nonlinear=True,
       fresh_output=True, normalises=True,
       summary="layer normalisation over the whole sample (torch.nn.LayerNorm(CxHxW))")
class LayerNorm(LayerKind):
    aliases = {"layernormalization": ""}
    orders = {"PyTorch's LayerNorm": ("in",)}
    args = (_EPS, _AFFINE)

    reference = {
        "input": "a feature map or a vector; normalises over the whole sample",
        "shape": UNCHANGED_SHAPE,
        "params": "`2·C·H·W` (or `2N` on a vector) when affine, else 0",
    }

    def rules(self, a, x, calc):
        # the values normalised together: each token's C on a sequence (NxC), else all
        if len(x) == 2:
            count, what, shown = x[1], "C (each token's C values are normalised together)", str(x[1])
        else:
            count, what, shown = numel(x), "C * H * W (every value of a sample)", \
                " * ".join(str(d) for d in x)
        calc.params = affine_steps(calc, what, what, shown, count, a.affine)
        calc.step("output", "output = input", fmt_shape(x), list(x), "no buffers: statistics are "
                  "computed from each " + ("token" if len(x) == 2 else "sample"))

    def torch(self, a, x):
        shape = [x[-1]] if len(x) == 2 else list(x)
        return call("LayerNorm", shape, eps=a.eps, elementwise_affine=a.affine)


@layer("lrn", family="norm", positional=("size",), nonlinear=True, normalises=True,
       summary="local response normalisation across channels (torch.nn.LocalResponseNorm)")
class LocalResponseNorm(LayerKind):
    aliases = {"localresponsenorm": "", "localresponsenormalization": ""}
    orders = {"PyTorch's LocalResponseNorm": ("size", "alpha", "beta", "k")}
    args = (Arg("size", INT, min=1, doc="number of neighbouring channels"),
            Arg("alpha", FLOAT, 1e-4, doc="scale"), Arg("beta", FLOAT, 0.75, doc="exponent"),
            Arg("k", FLOAT, 1.0, doc="additive constant"))

    reference = {
        "input": "a C×H×W feature map",
        "shape": UNCHANGED_SHAPE,
        "errors": "E-RANK (input is a vector)",
    }

    def rules(self, a, x, calc):
        need_map("lrn", x)
        super().rules(a, x, calc)

    def describe(self, a):
        return f"lrn {a.size}"

    def torch(self, a, x):
        return call("LocalResponseNorm", a.size, alpha=a.alpha, beta=a.beta, k=a.k)
