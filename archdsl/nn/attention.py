"""Multi-head self-attention over a sequence, through F.scaled_dot_product_attention (so the
fused kernels run), with nn.MultiheadAttention's parameters: `in_proj_weight` (3C x C),
`in_proj_bias` (3C), `out_proj` (a C -> C linear layer). A state dict of
nn.MultiheadAttention(C, heads, batch_first=True) loads into it and gives the same outputs.

Self-contained (torch, nn and F only): `export --to python` copies this class's source.
"""

import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):
    """(B, N, C) -> (B, N, C): softmax(Q K^T / sqrt(C / heads)) V per head, then out_proj."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"{heads} heads do not divide the {dim} channels")
        self.dim, self.heads, self.dropout = dim, heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim)) if bias else None
        self.out_proj = nn.Linear(dim, dim, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)  # nn.MultiheadAttention's own start
        if bias:
            nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(y.transpose(1, 2).reshape(b, n, c))

    def extra_repr(self) -> str:
        extra = f", dropout={self.dropout}" if self.dropout else ""
        return f"{self.dim}, {self.heads}{extra}" + ("" if self.in_proj_bias is not None
                                                     else ", bias=False")
