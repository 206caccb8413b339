"""Swin Transformer's modules on NxCxHxW maps: shifted-window attention (v1, and v2's cosine
attention with a continuous position bias), patch merging and the two-layer perceptron of a
block. Each computes what torchvision's swin_transformer.py computes, op for op, on the map
read channels-last (`x.permute(0, 2, 3, 1)`, a view), and holds torchvision's tensors under
torchvision's names in its registration order, so a torchvision Swin's weights transfer.

Self-contained (torch, nn and F only): `export --to python` copies each class's source.
The permutes are views: a chain of these modules keeps the map channels-last in memory, as
torchvision's (B, H, W, C) tensors are, and copies nothing.
"""

import torch
import torch.nn.functional as F
from torch import nn


class ShiftedWindowAttention(nn.Module):
    """torchvision's ShiftedWindowAttention (`cosine`: ShiftedWindowAttentionV2) on a
    (B, C, H, W) map: the map padded to whole windows, rolled by `shift` (with torchvision's
    mask where rolled windows join unrelated regions), multi-head attention inside each
    window with the relative position bias, rolled back and cropped. `postnorm`: a LayerNorm
    after the attention, registered before it, as SwinTransformerBlockV2's norm1 is."""

    LOG_100 = 4.605170185988092  # math.log(100.0): v2's cap on the logit scale

    def __init__(self, dim: int, heads: int, window=(7, 7), shift=(0, 0), cosine: bool = False,
                 postnorm: bool = False, eps: float = 1e-5, dropout: float = 0.0,
                 attention_dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"{heads} heads do not divide the {dim} channels")
        self.dim, self.heads, self.cosine = dim, heads, cosine
        pair = (lambda v: [v, v] if isinstance(v, int) else [int(n) for n in v])
        self.window, self.shift = pair(window), pair(shift)  # `7` is (7, 7)
        self.dropout, self.attention_dropout = dropout, attention_dropout
        if postnorm:
            self.norm = nn.LayerNorm(dim, eps=eps)
        else:
            self.norm = None
        self.qkv = nn.Linear(dim, dim * 3, bias=bias)
        self.proj = nn.Linear(dim, dim, bias=bias)
        wh, ww = self.window
        if cosine:  # v2: log-spaced relative coordinates, fed to a small MLP
            h = torch.arange(-(wh - 1), wh, dtype=torch.float32)
            w = torch.arange(-(ww - 1), ww, dtype=torch.float32)
            table = torch.stack(torch.meshgrid([h, w], indexing="ij"))
            table = table.permute(1, 2, 0).contiguous().unsqueeze(0)
            table[:, :, :, 0] /= wh - 1
            table[:, :, :, 1] /= ww - 1
            table *= 8
            table = torch.sign(table) * torch.log2(torch.abs(table) + 1.0) / 3.0
            self.register_buffer("relative_coords_table", table)
        else:
            self.relative_position_bias_table = nn.Parameter(
                torch.zeros((2 * wh - 1) * (2 * ww - 1), heads))
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij"))
        coords = torch.flatten(coords, 1)
        relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
        relative[:, :, 0] += wh - 1
        relative[:, :, 1] += ww - 1
        relative[:, :, 0] *= 2 * ww - 1
        self.register_buffer("relative_position_index", relative.sum(-1).flatten())
        if cosine:
            self.logit_scale = nn.Parameter(torch.log(10 * torch.ones((heads, 1, 1))))
            self.cpb_mlp = nn.Sequential(nn.Linear(2, 512, bias=True), nn.ReLU(inplace=True),
                                         nn.Linear(512, heads, bias=False))
            if bias:
                self.qkv.bias.data[dim:2 * dim].zero_()

    def position_bias(self) -> torch.Tensor:
        """The (1, heads, N, N) bias of the N = wh·ww positions of a window."""
        n = self.window[0] * self.window[1]
        if self.cosine:
            table = self.cpb_mlp(self.relative_coords_table).view(-1, self.heads)
        else:
            table = self.relative_position_bias_table
        bias = table[self.relative_position_index].view(n, n, -1)
        bias = bias.permute(2, 0, 1).contiguous().unsqueeze(0)
        return 16 * torch.sigmoid(bias) if self.cosine else bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.attend(x.permute(0, 2, 3, 1), self.position_bias())
        if self.norm is not None:
            y = self.norm(y)
        return y.permute(0, 3, 1, 2)

    def attend(self, x: torch.Tensor, position_bias: torch.Tensor) -> torch.Tensor:
        """torchvision's shifted_window_attention on (B, H, W, C)."""
        b, h, w, c = x.shape
        wh, ww = self.window
        x = F.pad(x, (0, 0, 0, (ww - w % ww) % ww, 0, (wh - h % wh) % wh))
        _, ph, pw, _ = x.shape
        shift = [0 if wh >= ph else self.shift[0], 0 if ww >= pw else self.shift[1]]
        if sum(shift) > 0:
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        windows = (ph // wh) * (pw // ww)
        x = x.view(b, ph // wh, wh, pw // ww, ww, c)
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(b * windows, wh * ww, c)
        qkv_bias = self.qkv.bias
        if self.cosine and qkv_bias is not None:
            qkv_bias = qkv_bias.clone()
            qkv_bias[c:2 * c].zero_()
        qkv = F.linear(x, self.qkv.weight, qkv_bias)
        qkv = qkv.reshape(x.size(0), x.size(1), 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        if self.cosine:
            attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
            attn = attn * torch.clamp(self.logit_scale, max=self.LOG_100).exp()
        else:
            attn = (q * (c // self.heads) ** -0.5).matmul(k.transpose(-2, -1))
        attn = attn + position_bias
        if sum(shift) > 0:
            mask = self.shift_mask(x, ph, pw, shift)
            n = x.size(1)
            attn = attn.view(x.size(0) // windows, windows, self.heads, n, n)
            attn = (attn + mask.unsqueeze(1).unsqueeze(0)).view(-1, self.heads, n, n)
        attn = F.softmax(attn, dim=-1)
        attn = F.dropout(attn, p=self.attention_dropout, training=self.training)
        x = attn.matmul(v).transpose(1, 2).reshape(x.size(0), x.size(1), c)
        x = F.linear(x, self.proj.weight, self.proj.bias)
        x = F.dropout(x, p=self.dropout, training=self.training)
        x = x.view(b, ph // wh, pw // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5).reshape(b, ph, pw, c)
        if sum(shift) > 0:
            x = torch.roll(x, shifts=(shift[0], shift[1]), dims=(1, 2))
        return x[:, :h, :w, :].contiguous()

    def shift_mask(self, x: torch.Tensor, ph: int, pw: int, shift) -> torch.Tensor:
        """torchvision's attention mask: -100 between positions of different regions."""
        wh, ww = self.window
        mask = x.new_zeros((ph, pw))
        h_slices = ((0, -wh), (-wh, -shift[0]), (-shift[0], None))
        w_slices = ((0, -ww), (-ww, -shift[1]), (-shift[1], None))
        count = 0
        for hs in h_slices:
            for ws in w_slices:
                mask[hs[0]:hs[1], ws[0]:ws[1]] = count
                count += 1
        mask = mask.view(ph // wh, wh, pw // ww, ww).permute(0, 2, 1, 3)
        mask = mask.reshape((ph // wh) * (pw // ww), wh * ww)
        mask = mask.unsqueeze(1) - mask.unsqueeze(2)
        return mask.masked_fill(mask != 0, float(-100.0)).masked_fill(mask == 0, float(0.0))

    def extra_repr(self) -> str:
        extra = ", cosine=True" if self.cosine else ""
        return f"{self.dim}, {self.heads}, window={self.window}, shift={self.shift}{extra}"


class PatchMerging(nn.Module):
    """torchvision's PatchMerging (`postnorm`: PatchMergingV2) on a (B, C, H, W) map: the map
    padded to even H and W, each 2x2 patch's four C-vectors concatenated (top-left,
    bottom-left, top-right, bottom-right), a layer norm and a bias-free Linear to 2C (v2: the
    Linear, then the norm)."""

    def __init__(self, dim: int, postnorm: bool = False, eps: float = 1e-5):
        super().__init__()
        self.dim, self.postnorm = dim, postnorm
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(2 * dim if postnorm else 4 * dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        h, w, _ = x.shape[-3:]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :],
                       x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]], -1)
        if self.postnorm:
            x = self.norm(self.reduction(x))
        else:
            x = self.reduction(self.norm(x))
        return x.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return f"{self.dim}" + (", postnorm=True" if self.postnorm else "")


class PointwiseMLP(nn.Module):
    """torchvision.ops.MLP as Swin uses it, over the channels at each position of a
    (B, C, H, W) map: Linear(C, hidden), GELU, Dropout, Linear(hidden, C), Dropout.
    `postnorm`: a LayerNorm after it, registered before it, as SwinTransformerBlockV2's
    norm2 is."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0, postnorm: bool = False,
                 eps: float = 1e-5):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps) if postnorm else None
        self.layers = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                    nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.layers(x.permute(0, 2, 3, 1))
        if self.norm is not None:
            y = self.norm(y)
        return y.permute(0, 3, 1, 2)
