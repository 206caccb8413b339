"""Normalisation: batch, group, layer and local response normalisation."""

from __future__ import annotations

from .base import (call, BOOL, FLOAT, INT, UNCHANGED_SHAPE, Arg, LayerError, LayerKind, layer,
                   need_map, numel)

_EPS = Arg("eps", FLOAT, 1e-5, min=0, doc="added to the variance for stability")
_AFFINE = Arg("affine", BOOL, True, doc="learn a per-channel scale and shift (`noaffine` turns it off)")


@layer("bn", family="norm", words={"noaffine": ("affine", False)},
       summary="batch normalisation (BatchNorm2d on feature maps, BatchNorm1d on vectors)",
       fresh_output=True, cancels_bias=True, normalises=True)
class BatchNorm(LayerKind):
    input_size_in_torch = "last"
    args = (_EPS, Arg("momentum", FLOAT, 0.1, min=0, max=1, doc="running-statistics momentum"),
            _AFFINE)

    reference = {
        "input": "a feature map (torch.nn.BatchNorm2d) or a vector (torch.nn.BatchNorm1d)",
        "shape": UNCHANGED_SHAPE,
        "params": "`2C` (scale and shift) when affine, else 0",
        "buffers": "`2C + 1` (running mean, running variance, num_batches_tracked)",
    }

    def params(self, a, x, y):
        return 2 * x[0] if a.affine else 0

    def buffers(self, a, x, y):
        return 2 * x[0] + 1  # running mean, running variance, num_batches_tracked

    def torch(self, a, x):
        cls = "BatchNorm2d" if len(x) == 3 else "BatchNorm1d"
        return call(cls, x[0], eps=a.eps, momentum=a.momentum, affine=a.affine)


@layer("groupnorm", family="norm", positional=("groups",), words={"noaffine": ("affine", False)},
       nonlinear=True, fresh_output=True, normalises=True,
       summary="group normalisation (torch.nn.GroupNorm)")
class GroupNorm(LayerKind):
    input_size_in_torch = "last"
    args = (Arg("groups", INT, min=1, doc="number of channel groups"), _EPS, _AFFINE)

    reference = {
        "input": "a feature map or a vector; C is its first dimension",
        "shape": UNCHANGED_SHAPE,
        "params": "`2C` when affine, else 0",
        "errors": "E-GROUPS (groups must divide C)",
    }

    def shape(self, a, x):
        if x[0] % a.groups:
            raise LayerError("E-GROUPS", f"groupnorm {a.groups} does not divide the {x[0]} channels",
                             hint="the group count must divide the channel count", arg="groups")
        return x

    def params(self, a, x, y):
        return 2 * x[0] if a.affine else 0

    def describe(self, a):
        return f"groupnorm {a.groups}"

    def torch(self, a, x):
        return call("GroupNorm", a.groups, x[0], eps=a.eps, affine=a.affine)


@layer("layernorm", family="norm", words={"noaffine": ("affine", False)}, nonlinear=True,
       fresh_output=True, normalises=True,
       summary="layer normalisation over the whole sample (torch.nn.LayerNorm(CxHxW))")
class LayerNorm(LayerKind):
    input_size_in_torch = "last"
    args = (_EPS, _AFFINE)

    reference = {
        "input": "a feature map or a vector; normalises over the whole sample",
        "shape": UNCHANGED_SHAPE,
        "params": "`2·C·H·W` (or `2N` on a vector) when affine, else 0",
    }

    def params(self, a, x, y):
        return 2 * self._normalised(x) if a.affine else 0

    @staticmethod
    def _normalised(x):
        """The values normalised together: each token's C on a sequence (NxC), else all."""
        return x[-1] if len(x) == 2 else numel(x)

    def torch(self, a, x):
        shape = [x[-1]] if len(x) == 2 else list(x)
        return call("LayerNorm", shape, eps=a.eps, elementwise_affine=a.affine)


@layer("lrn", family="norm", positional=("size",), nonlinear=True, normalises=True,
       summary="local response normalisation across channels (torch.nn.LocalResponseNorm)")
class LocalResponseNorm(LayerKind):
    args = (Arg("size", INT, min=1, doc="number of neighbouring channels"),
            Arg("alpha", FLOAT, 1e-4, doc="scale"), Arg("beta", FLOAT, 0.75, doc="exponent"),
            Arg("k", FLOAT, 1.0, doc="additive constant"))

    reference = {
        "input": "a C×H×W feature map",
        "shape": UNCHANGED_SHAPE,
        "errors": "E-RANK (input is a vector)",
    }

    def shape(self, a, x):
        need_map("lrn", x)
        return x

    def describe(self, a):
        return f"lrn {a.size}"

    def torch(self, a, x):
        return call("LocalResponseNorm", a.size, alpha=a.alpha, beta=a.beta, k=a.k)
