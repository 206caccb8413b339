"""Modules for channel-wise layers torch.nn lacks: a chunk of the channels, any run of them,
zero channels appended, the channel shuffle, layer norm over the channels at each position,
a linear map over the channels at each position, and a learnt per-channel scale. Each is
self-contained (torch, nn, F only): `export --to python` copies its source."""

import torch
import torch.nn.functional as F
from torch import nn


class ChannelChunk(nn.Module):
    """`x.chunk(chunks, dim=1)[index]`: one of the channel chunks, as ShuffleNetV2 splits."""

    def __init__(self, chunks: int, index: int):
        super().__init__()
        self.chunks, self.index = chunks, index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.chunk(self.chunks, dim=1)[self.index]

    def extra_repr(self) -> str:
        return f"chunks={self.chunks}, index={self.index}"


class ChannelSlice(nn.Module):
    """`x[:, start:end]`: a run of channels (of tokens on a sequence), a piece of a split of
    given sizes (Inception-NeXt's torch.split)."""

    def __init__(self, start: int, end: int):
        super().__init__()
        self.start, self.end = start, end

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.start:self.end]

    def extra_repr(self) -> str:
        return f"{self.start}:{self.end}"


class PadChannels(nn.Module):
    """`zeros` channels of zeros appended to a map (features to a vector): ReXNet's partial
    residual adds the shortcut to the first channels only."""

    def __init__(self, zeros: int):
        super().__init__()
        self.zeros = zeros

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, [0, 0] * (x.dim() - 2) + [0, self.zeros])

    def extra_repr(self) -> str:
        return f"{self.zeros}"


class ChannelShuffle(nn.Module):
    """torchvision's channel_shuffle: the channels read as groups x (C / groups), transposed."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.size()
        x = x.view(n, self.groups, c // self.groups, h, w)
        x = torch.transpose(x, 1, 2).contiguous()
        return x.view(n, c, h, w)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels at each position of an NxCxHxW map (torchvision's
    LayerNorm2d, ConvNeXt's): weight and bias have C values, as nn.LayerNorm(C)'s."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class PointwiseLinear(nn.Linear):
    """nn.Linear over the channels at each position of an NxCxHxW map (ConvNeXt's
    `Permute; Linear; Permute`): the map of a 1x1 convolution, with a Linear's weight."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x.permute(0, 2, 3, 1), self.weight, self.bias)
        return x.permute(0, 3, 1, 2)


class LayerScale(nn.Module):
    """A learnt scale per channel, `layer_scale * x` (ConvNeXt's, a Cx1x1 parameter that
    starts at `init`); not `spatial`, C values over the last axis (timm's LayerScale on a
    sequence, `x * gamma`)."""

    def __init__(self, channels: int, init: float = 1e-6, spatial: bool = True):
        super().__init__()
        shape = (channels, 1, 1) if spatial else (channels,)
        self.layer_scale = nn.Parameter(torch.ones(shape) * init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_scale * x
