"""The layer registry. Each family module registers its kinds on import, and every module of
this package except base and types is a family: adding a file adds its kinds."""

import importlib
import pkgutil

from .base import (REGISTRY, REQUIRED, Arg, Args, LayerError, LayerKind, Shape, fmt_shape, layer,
                   numel)

__all__ = ["REGISTRY", "REQUIRED", "Arg", "Args", "LayerError", "LayerKind", "Shape", "fmt_shape",
           "layer", "numel", "get"]


for _family in pkgutil.iter_modules(__path__):  # sorted by name: a stable registration order
    if _family.name not in ("base", "types"):
        importlib.import_module(f"{__name__}.{_family.name}")


def get(name: str) -> LayerKind | None:
    """The layer kind registered under `name`, or None."""
    return REGISTRY.get(name)
