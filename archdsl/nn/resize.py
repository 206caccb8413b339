"""Modules for the geometry layers torch.nn lacks: the centre crop of a feature map. Each is
self-contained (torch, nn, F only): `export --to python` copies its source."""

import torch
from torch import nn


class CenterCrop(nn.Module):
    """The centre height x width of a feature map, as torchvision's center_crop takes it: the
    first row kept is round((H - height) / 2), Python's rounding."""

    def __init__(self, height: int, width: int):
        super().__init__()
        self.height, self.width = height, width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # int(): a trace (TorchScript) sees sizes as tensors, which round() refuses
        top = int(round((int(x.shape[-2]) - self.height) / 2.0))
        left = int(round((int(x.shape[-1]) - self.width) / 2.0))
        return x[..., top:top + self.height, left:left + self.width]

    def extra_repr(self) -> str:
        return f"height={self.height}, width={self.width}"
