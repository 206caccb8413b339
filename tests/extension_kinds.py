"""A new layer kind and a new merge kind, each one addition, in this one module and nowhere
else (the recipes of docs/architecture.md): `hardtanh` (x clipped to [min, max]) and `max<
a | b >` (the element-wise maximum of the branches).

Importing the module registers both; `unregister()` takes them out again. As a pytest plugin
(`python -m pytest -p extension_kinds ...`) it registers them before any test module is
collected, so that the registry-wide tests run with them as if they were built in
(tests/test_extension.py does that)."""

from __future__ import annotations

from archdsl.layers import REGISTRY
from archdsl.layers.base import FLOAT, Arg, LayerError, LayerKind, call, fmt_shape, layer
from archdsl.layers.merge import COMBINATORS, MergeKind, broadcast

NAMES = ("hardtanh", "max")


@layer("hardtanh", family="activation", positional=("min", "max"), nonlinear=True,
       activation=True, summary="x clipped to [min, max] (torch.nn.Hardtanh)")
class Hardtanh(LayerKind):
    args = (Arg("min", FLOAT, -1.0, doc="lower bound"),
            Arg("max", FLOAT, 1.0, doc="upper bound"))

    def torch(self, a, x):
        return call("Hardtanh", a.min, a.max)


@layer("max", family="merge", summary="element-wise maximum of the branches")
class Max(MergeKind):
    symbol, round, module_name = "max", False, "Max"
    reference = {"shape": "the branches' shape, broadcast as torch.maximum does",
                 "errors": "E-SHAPE (shapes that neither match nor broadcast)"}

    def combine(self, xs):
        y = broadcast(xs)
        if y is None:
            raise LayerError("E-SHAPE", "max needs shapes that match or broadcast, but the "
                             "branches give " + ", ".join(fmt_shape(x) for x in xs))
        return y

    def merge(self, outputs):
        import torch

        y = outputs[0]
        for other in outputs[1:]:
            y = torch.maximum(y, other)
        return y

    def python(self, names):
        expr = names[0]
        for name in names[1:]:
            expr = f"torch.maximum({expr}, {name})"
        return expr


def unregister() -> None:
    """Take both kinds out of the registry (and `max` out of the combinators)."""
    for name in NAMES:
        REGISTRY.pop(name, None)
        COMBINATORS.pop(name, None)
