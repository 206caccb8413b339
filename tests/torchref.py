"""What the tests that compare archdsl with PyTorch share: counting a torch module's
multiply-accumulates with forward hooks, and running tiny tensors on one thread."""

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors run fastest on one thread; put the setting back for the other tests.
    (A test module uses it by importing it.)"""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def reference_macs(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Run `module` on `x`; its output and the multiply-accumulates of one sample, counted
    on the torch side: convolutions (output elements x (in channels / groups) x kernel area)
    and linear layers (in x out), the two archdsl counts."""
    total = []

    def conv_hook(m, inputs, out):
        kh, kw = m.kernel_size
        total.append(out.numel() // out.shape[0] * (m.in_channels // m.groups) * kh * kw)

    def linear_hook(m, inputs, out):
        total.append(m.in_features * m.out_features)

    hooks = [m.register_forward_hook(conv_hook) for m in module.modules()
             if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_hook(linear_hook) for m in module.modules()
              if isinstance(m, nn.Linear)]
    try:
        with torch.no_grad():
            y = module(x)
    finally:
        for h in hooks:
            h.remove()
    return y, sum(total)
