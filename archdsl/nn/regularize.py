"""Stochastic depth, as torchvision.ops.StochasticDepth computes it, self-contained (torch and
nn only) so that `export --to python` can copy it."""

import torch
from torch import nn


class StochasticDepth(nn.Module):
    """Zero the whole input of a sample (mode "row") or of the batch ("batch") with
    probability p while training, scaling what is kept by 1 / (1 - p); the identity in eval
    mode and for p = 0 (torchvision.ops.stochastic_depth)."""

    def __init__(self, p: float, mode: str = "row"):
        super().__init__()
        if p < 0.0 or p > 1.0:
            raise ValueError(f"drop probability has to be between 0 and 1, but got {p}")
        if mode not in ("batch", "row"):
            raise ValueError(f"mode has to be either 'batch' or 'row', but got {mode}")
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival_rate = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device)
        noise = noise.bernoulli_(survival_rate)
        if survival_rate > 0.0:
            noise.div_(survival_rate)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"
