"""Arithmetic modules: a tensor and a number, a learnt tensor of a declared shape, reductions
over chosen axes, and element-wise functions (what `y - x`, `* 1.7015`, `param channel 1`,
`mean hw keep` and `sqrt` compile to).

Self-contained (torch and nn only): `export --to python` copies these classes' source.
"""

import torch
from torch import nn


class Scalar(nn.Module):
    """x (op) value, or value (op) x where `reversed`: `* 1.7015`, `1 - x`, `x / 2`."""

    def __init__(self, op: str, value: float, reversed: bool = False):
        super().__init__()
        self.op, self.value, self.reversed = op, value, reversed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = (self.value, x) if self.reversed else (x, self.value)
        if self.op == "+":
            return a + b
        if self.op == "-":
            return a - b
        if self.op == "*":
            return a * b
        return a / b

    def extra_repr(self) -> str:
        return f"{self.value} {self.op} x" if self.reversed else f"x {self.op} {self.value}"


class Param(nn.Module):
    """A learnt tensor of `shape` (without the batch), filled with `init`, given once per
    sample of its input's batch (a view: no copy)."""

    def __init__(self, shape: tuple, init: float):
        super().__init__()
        self.weight = nn.Parameter(torch.full((1, *shape), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight.expand(x.shape[0], *self.weight.shape[1:])

    def extra_repr(self) -> str:
        return "x".join(str(d) for d in self.weight.shape[1:])


class Reduce(nn.Module):
    """The mean, sum or p-norm over dimensions `dims`, kept as size 1 where `keepdim`."""

    def __init__(self, how: str, dims: tuple, keepdim: bool = False, p: float = 2.0):
        super().__init__()
        self.how, self.dims, self.keepdim, self.p = how, tuple(dims), keepdim, p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.how == "mean":
            return x.mean(self.dims, keepdim=self.keepdim)
        if self.how == "sum":
            return x.sum(self.dims, keepdim=self.keepdim)
        if self.p == 2:
            return x.pow(2).sum(self.dims, keepdim=self.keepdim).sqrt()
        return x.abs().pow(self.p).sum(self.dims, keepdim=self.keepdim).pow(1 / self.p)

    def extra_repr(self) -> str:
        return f"{self.how}, dims={self.dims}, keepdim={self.keepdim}"


class Sqrt(nn.Module):
    """The element-wise square root."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sqrt()


class Reciprocal(nn.Module):
    """The element-wise reciprocal, 1 / x."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reciprocal()
