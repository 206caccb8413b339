"""Token modules: a feature map as a sequence, the class token, the learnt position embedding
and picking one token out (torchvision's VisionTransformer, taken apart into layers).

Self-contained (torch and nn only): `export --to python` copies these classes' source.
A sequence is a (batch, tokens, channels) tensor, as torchvision's encoder holds it.
"""

import torch
from torch import nn


class Tokens(nn.Module):
    """(B, C, H, W) -> (B, H*W, C): one token per position, read row by row."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).transpose(1, 2)


class ClassToken(nn.Module):
    """A learnt token of `dim` channels, one per sample of the batch: (B, …) -> (B, 1, dim).
    It reads only the batch size of its input; `concat< classtoken c | … >` puts it first."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.class_token.expand(x.shape[0], -1, -1)

    def extra_repr(self) -> str:
        return f"{self.dim}"


class PositionEmbedding(nn.Module):
    """x + a learnt (tokens, dim) table: each position's own offset."""

    def __init__(self, tokens: int, dim: int):
        super().__init__()
        self.tokens, self.dim = tokens, dim
        self.pos_embedding = nn.Parameter(torch.empty(1, tokens, dim).normal_(std=0.02))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos_embedding

    def extra_repr(self) -> str:
        return f"{self.tokens}, {self.dim}"


class SelectToken(nn.Module):
    """(B, N, C) -> (B, C): the token at `index` (0: the class token)."""

    def __init__(self, index: int = 0):
        super().__init__()
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.index]

    def extra_repr(self) -> str:
        return f"{self.index}"
