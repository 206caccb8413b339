"""Modules that move values without learning anything: a sequence's two axes swapped, the
values read into another shape, and a map cut into patches (MobileViT's unfold) and put back.
Self-contained (torch and nn only): `export --to python` copies their source. The batch is
never touched: a sequence is (B, N, C), a map (B, C, H, W)."""

import torch
from torch import nn


class TransposeTokens(nn.Module):
    """(B, N, C) -> (B, C, N): MLP-Mixer's `x.transpose(1, 2)` around its token mixing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)


class Reshape(nn.Module):
    """The values of each sample read in order into (size1[, size2[, size3]])."""

    def __init__(self, size1: int, size2: int = None, size3: int = None):
        super().__init__()
        self.sizes = tuple(s for s in (size1, size2, size3) if s is not None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.sizes)

    def extra_repr(self) -> str:
        return "x".join(map(str, self.sizes))


class PatchUnfold(nn.Module):
    """(B, C, H, W) -> (B, P·N, C): P = patch_h·patch_w pixels of a patch, N patches; token
    p·N + n is pixel p of patch n. timm's MobileVitBlock holds the same values as (B·P, N, C)."""

    def __init__(self, patch_h: int, patch_w: int):
        super().__init__()
        self.patch_h, self.patch_w = patch_h, patch_w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        ph, pw = self.patch_h, self.patch_w
        x = x.reshape(b, c, h // ph, ph, w // pw, pw).permute(0, 3, 5, 2, 4, 1)
        return x.reshape(b, h * w, c)

    def extra_repr(self) -> str:
        return f"{self.patch_h}x{self.patch_w}"


class PatchFold(nn.Module):
    """(B, P·N, C) -> (B, C, height, width): PatchUnfold undone."""

    def __init__(self, patch_h: int, patch_w: int, height: int, width: int):
        super().__init__()
        self.patch_h, self.patch_w, self.height, self.width = patch_h, patch_w, height, width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[0], x.shape[2]
        ph, pw = self.patch_h, self.patch_w
        x = x.reshape(b, ph, pw, self.height // ph, self.width // pw, c).permute(0, 5, 3, 1, 4, 2)
        return x.reshape(b, c, self.height, self.width)

    def extra_repr(self) -> str:
        return f"{self.patch_h}x{self.patch_w}, {self.height}x{self.width}"
