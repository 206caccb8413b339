"""MaxViT's attention (torchvision's RelativePositionalMultiHeadAttention inside a
PartitionAttentionLayer) on an NxCxHxW map: the map cut into windows (block attention) or
read as a dilated grid (grid attention), multi-head attention with a relative position bias
inside each, and the map put back together.

Self-contained (torch, nn and F only): `export --to python` copies the class's source.
"""

import torch
import torch.nn.functional as F
from torch import nn


class PartitionAttention(nn.Module):
    """torchvision's partition, attention and departition of a PartitionAttentionLayer, with
    RelativePositionalMultiHeadAttention's tensors under their names: `to_qkv`, `merge`,
    `relative_position_bias_table` and the `relative_position_index` buffer. Its scale is
    torchvision's, 1/sqrt(C) (not 1/sqrt(head_dim)), applied to the keys."""

    def __init__(self, dim: int, head_dim: int, size: int = 7, grid: bool = False):
        super().__init__()
        if dim % head_dim:
            raise ValueError(f"a head dimension of {head_dim} does not divide {dim} channels")
        self.dim, self.head_dim, self.size, self.grid = dim, head_dim, size, grid
        self.n_heads = dim // head_dim
        self.to_qkv = nn.Linear(dim, self.n_heads * head_dim * 3)
        self.scale_factor = dim ** -0.5
        self.merge = nn.Linear(self.n_heads * head_dim, dim)
        self.relative_position_bias_table = nn.Parameter(
            torch.empty(((2 * size - 1) * (2 * size - 1), self.n_heads), dtype=torch.float32))
        coords = torch.stack(torch.meshgrid([torch.arange(size), torch.arange(size)],
                                            indexing="ij"))
        coords = torch.flatten(coords, 1)
        relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
        relative[:, :, 0] += size - 1
        relative[:, :, 1] += size - 1
        relative[:, :, 0] *= 2 * size - 1
        self.register_buffer("relative_position_index", relative.sum(-1))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p = h // self.size if self.grid else self.size  # torchvision's partition size
        x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        x = x.reshape(b, (h // p) * (w // p), p * p, c)
        if self.grid:
            x = torch.swapaxes(x, -2, -3)
        x = self.attend(x)
        if self.grid:
            x = torch.swapaxes(x, -2, -3)
        x = x.reshape(b, h // p, w // p, p, p, c).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(b, c, h, w)

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        """RelativePositionalMultiHeadAttention.forward on (B, G, P, D)."""
        b, g, p, d = x.shape
        heads, dh = self.n_heads, self.head_dim
        q, k, v = torch.chunk(self.to_qkv(x), 3, dim=-1)
        q = q.reshape(b, g, p, heads, dh).permute(0, 1, 3, 2, 4)
        k = k.reshape(b, g, p, heads, dh).permute(0, 1, 3, 2, 4)
        v = v.reshape(b, g, p, heads, dh).permute(0, 1, 3, 2, 4)
        k = k * self.scale_factor
        dot = torch.einsum("B G H I D, B G H J D -> B G H I J", q, k)
        n = self.size * self.size
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, -1).permute(2, 0, 1).contiguous().unsqueeze(0)
        dot = F.softmax(dot + bias, dim=-1)
        out = torch.einsum("B G H I J, B G H J D -> B G H I D", dot, v)
        return self.merge(out.permute(0, 1, 3, 2, 4).reshape(b, g, p, d))

    def extra_repr(self) -> str:
        return (f"{self.dim}, head_dim={self.head_dim}, size={self.size}, "
                f"{'grid' if self.grid else 'window'}")
