"""The compiled module does no more work than torchvision's: counted, never timed.

One training step of a compiled spec and of torchvision's model, with every aten call seen
through a TorchDispatchMode: the bytes of the fresh tensors made (outputs that alias no
input) must not exceed torchvision's, and residual sums are written in place where
torchvision writes them in place (`out += identity`). benchmarks/backend_speed.py times the
same pairs (docs/benchmarks.md).
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import archdsl
from archdsl.torch_backend import Residual

SPECS = Path(__file__).resolve().parent.parent / "specs"


class Work(TorchDispatchMode):
    """Counts aten calls by name, and the bytes of the fresh tensors they return."""

    def __init__(self):
        super().__init__()
        self.calls: collections.Counter = collections.Counter()
        self.fresh_bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        self.calls[name] += 1
        outs = out if isinstance(out, (tuple, list)) else (out,)
        for ret, value in zip(func._schema.returns, outs):
            if ret.alias_info is None and name != "_unsafe_view":  # _unsafe_view: a view
                self.fresh_bytes += sum(t.numel() * t.element_size() for t in tree_leaves(value)
                                        if isinstance(t, torch.Tensor))
        return out


def training_step_work(model: nn.Module, shape: tuple) -> Work:
    torch.manual_seed(0)
    x, y = torch.randn(2, *shape), torch.randint(0, 10, (2,))
    model.train()
    with Work() as work:
        nn.functional.cross_entropy(model(x), y).backward()
    return work


@pytest.mark.parametrize("spec, reference, settings, shape", [
    ("resnet18.arch", lambda: torchvision.models.resnet18(num_classes=10), {"num_classes": 10},
     (3, 64, 64)),
    ("efficientnet.arch", lambda: torchvision.models.efficientnet_b0(
        num_classes=10, dropout=0.0, stochastic_depth_prob=0.0),
     {"num_classes": 10, "dropout": 0.0, "sd": 0.0}, (3, 64, 64)),
    ("convnext.arch", lambda: torchvision.models.convnext_tiny(
        num_classes=10, stochastic_depth_prob=0.0), {"num_classes": 10, "sd": 0.0}, (3, 64, 64)),
])
def test_a_training_step_allocates_no_more_than_torchvisions(spec, reference, settings, shape):
    ours = training_step_work(archdsl.build(SPECS / spec, input_shape=shape, **settings), shape)
    theirs = training_step_work(reference(), shape)
    assert theirs.calls["add_"] > 0  # torchvision's `out += identity`, which we mirror
    assert ours.calls["add_"] >= theirs.calls["add_"]
    assert ours.fresh_bytes <= theirs.fresh_bytes


def build(text: str) -> nn.Module:
    return archdsl.loads("input 8x6x6\n" + text).to_torch()


def test_a_residual_adds_in_place_only_into_a_fresh_body_output_nothing_else_needs():
    model = build("residual< conv 8 k3 p1; bn >\n"          # bn's output: fresh, unneeded
                  "residual< conv 8 k3 p1; relu >\n"        # relu's backward needs its output
                  "residual< identity >\n"                  # the body's output is its input
                  "residual< conv 8 k3 p1; bn; dropout 0.5 >\n"  # dropout: looked through
                  "residual< conv 8 k3 p1; residual< conv 8 k3 p1; bn > >\n"
                  "residual< conv 8 k3 p1; layerscale 0.5; stochasticdepth 0.2 >\n"  # ConvNeXt's
                  "residual< conv 8 k3 p1; bn; stochasticdepth 0.2 >\n"  # EfficientNet's
                  "residual< conv 8 k3 p1; relu; stochasticdepth 0.2 >\n")
    assert [m.inplace for m in model.children()] == [True, False, False, True, True, True, True,
                                                     False]
    assert model.residual5.body.residual1.inplace  # the inner one too


def test_in_place_residuals_give_the_same_outputs_and_gradients():
    text = ("conv 8 k3 p1; bn; relu\n"
            "residual< conv 8 k3 p1; bn; relu; conv 8 k3 p1; bn >; relu\n"
            "residual< conv 16 k3 p1 s2; bn | conv 16 k1 s2; bn >; relu\n"
            "residual< conv 16 k3 p1; bn; residual< conv 16 k1; bn > >\n"
            "residual< conv 16 k3 p1; layerscale 0.5; stochasticdepth 0.5 >\n"
            "adaptiveavgpool 1; flatten; linear 4\n")
    torch.manual_seed(0)
    fast, plain = build(text), build(text)
    plain.load_state_dict(fast.state_dict())
    for m in plain.modules():
        if isinstance(m, Residual):
            m.inplace = False
    assert sum(isinstance(m, Residual) and m.inplace for m in fast.modules()) == 5
    x = torch.randn(3, 8, 6, 6)
    outs = []
    for model in (fast, plain):
        torch.manual_seed(1)  # the same samples dropped by stochastic depth
        xi = x.clone().requires_grad_()
        out = model(xi)
        out.square().sum().backward()
        outs.append((out, xi.grad, [p.grad for p in model.parameters()]))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    assert all(torch.equal(a, b) for a, b in zip(outs[0][2], outs[1][2]))
    assert list(fast.state_dict()) == list(plain.state_dict())


class Half(nn.Module):
    def forward(self, x):
        return (x * 2).half()


def test_an_in_place_residual_keeps_out_of_place_type_promotion_and_broadcasting():
    x = torch.randn(2, 4)
    assert Residual(Half(), inplace=True)(x).dtype == torch.float32  # as body(x) + x
    wide = Residual(nn.Linear(4, 4), nn.Linear(4, 1), inplace=True)
    assert wide(x).shape == (2, 4)  # the shortcut broadcasts; the sum is not written into it


def test_per_layer_timing_turns_in_place_residuals_off_for_its_hooks():
    from archdsl.timing import _out_of_place

    model = build("residual< conv 8 k3 p1; bn >; relu\n")
    changed = _out_of_place(model)
    assert model.residual1 in changed and not model.residual1.inplace
