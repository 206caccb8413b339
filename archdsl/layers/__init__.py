"""The layer registry. Each family module registers its kinds on import."""

from . import activation, conv, linear, merge, norm, pool, shape  # noqa: F401  (registration)
from .base import (REGISTRY, REQUIRED, Arg, Args, LayerError, LayerKind, Shape, fmt_shape, layer,
                   numel)

__all__ = ["REGISTRY", "REQUIRED", "Arg", "Args", "LayerError", "LayerKind", "Shape", "fmt_shape",
           "layer", "numel", "get"]


def get(name: str) -> LayerKind | None:
    """The layer kind registered under `name`, or None."""
    return REGISTRY.get(name)
