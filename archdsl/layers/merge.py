"""Merges: where the branches of `residual`, `add`, `mul` and `concat` meet again."""

from __future__ import annotations

from .base import LayerError, LayerKind, fmt_shape, layer


def broadcast(shapes: list[tuple]) -> tuple | None:
    """PyTorch's broadcasting over shapes of equal rank, or None when they do not broadcast."""
    if len({len(s) for s in shapes}) != 1:
        return None
    out = []
    for dims in zip(*shapes):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            return None
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


class MergeKind(LayerKind):
    """A layer with several inputs, one per branch, in branch order."""

    family = "merge"

    def combine(self, xs: list[tuple]) -> tuple:
        raise NotImplementedError


@layer("add", family="merge", summary="element-wise sum of the branches (broadcasting)")
class Add(MergeKind):
    def combine(self, xs):
        y = broadcast(xs)
        if y is None:
            raise LayerError("E-SHAPE", "add needs shapes that match or broadcast, but the branches "
                             "give " + ", ".join(fmt_shape(x) for x in xs))
        return y


@layer("mul", family="merge", nonlinear=True,
       summary="element-wise product of the branches (a 1x1 gate broadcasts)")
class Mul(MergeKind):
    def combine(self, xs):
        y = broadcast(xs)
        if y is None:
            raise LayerError("E-SHAPE", "mul needs shapes that match or broadcast (a Cx1x1 gate), but "
                             "the branches give " + ", ".join(fmt_shape(x) for x in xs))
        return y


@layer("concat", family="merge", summary="the branches joined along channels (features for vectors)")
class Concat(MergeKind):
    def combine(self, xs):
        if len({len(x) for x in xs}) != 1 or len({x[1:] for x in xs}) != 1:
            raise LayerError("E-CONCAT", "concat needs the same spatial size in every branch, but they "
                             "give " + ", ".join(fmt_shape(x) for x in xs),
                             hint="give every branch the same stride and padding")
        return (sum(x[0] for x in xs),) + xs[0][1:]
