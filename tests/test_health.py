"""Gradient health (archdsl/train/health.py) asks each kind for its weights (the `weights`
trait) instead of assuming a `.weight`: attention, windows and MLP kinds have several."""

from __future__ import annotations

import pytest
import torch

import archdsl
from archdsl.layers import REGISTRY
from archdsl.train.health import GradientHealth, layer_weights
from test_explain import statement

WEIGHTED = sorted(name for name, kind in REGISTRY.items() if kind.weighted)


def sample_network(kind):
    """A small spec using `kind`: on a map, a vector or tokens, whichever checks."""
    for before in ("input 4x8x8", "input 4", "input 4x8x8; tokens"):
        network, _ = archdsl.analyse(f"{before}\n{statement(kind)}\n")
        if network is not None:
            return network
    raise AssertionError(f"no sample spec checks for {kind.name}: {statement(kind)}")


def test_the_transformer_kinds_are_weighted():
    assert {"conv", "linear", "attention", "windowattention", "partitionattention", "mlp",
            "patchmerging", "pointwise"} <= set(WEIGHTED)
    assert not REGISTRY["bn"].weighted and not REGISTRY["layernorm"].weighted


@pytest.mark.parametrize("name", WEIGHTED)
def test_a_weighted_kind_names_parameters_its_module_has(name):
    """Each declared name is a matrix or kernel of the built module, and no two repeat."""
    kind = REGISTRY[name]
    network = sample_network(kind)
    model = network.to_torch()
    (layer,) = [nid for nid, node in network.graph.layers() if node.kind is kind]
    weights = layer_weights(model, layer, kind)
    assert len(weights) == len(set(kind.weights)) >= 1
    assert all(isinstance(w, torch.nn.Parameter) and w.dim() >= 2 for w in weights), name


def test_the_norm_of_a_layer_is_that_of_all_its_weights_together():
    network = archdsl.loads("input 3x8x8\nconv 8 k4 s4; tokens\nattention 2\n"
                            "token 0; linear 2\n")
    model = network.to_torch()
    health = GradientHealth(network, model)
    assert [name for name, _, _ in health.layers] == ["conv1", "attention1", "linear1"]
    torch.manual_seed(0)
    loss = model(torch.randn(4, 3, 8, 8)).square().sum()
    loss.backward()
    health.record()
    attention = model.get_submodule("attention1")
    expected = torch.cat([attention.in_proj_weight.grad.flatten(),
                          attention.out_proj.weight.grad.flatten()]).norm()
    torch.testing.assert_close(health.sums[1], expected)
    torch.testing.assert_close(health.sums[0], model.get_submodule("conv1").weight.grad.norm())
    health.record()
    assert health.steps == 2
    torch.testing.assert_close(health.sums[1], 2 * expected)


def test_vanishing_gradients_name_an_attention_layer():
    """The warning reads an attention's own weights: with its projections' gradients far
    below the head's, the first layer, the attention, is said to starve."""
    network = archdsl.loads("input 3x8x8\ntokens\nattention 3\ntoken 0; linear 2\n")
    model = network.to_torch()
    health = GradientHealth(network, model)
    attention = model.get_submodule("attention1")
    attention.in_proj_weight.grad = torch.full_like(attention.in_proj_weight, 1e-9)
    attention.out_proj.weight.grad = torch.full_like(attention.out_proj.weight, 1e-9)
    model.get_submodule("linear1").weight.grad = torch.ones_like(model.linear1.weight)
    health.record()
    (warning,) = health.end_epoch()
    assert warning.startswith("gradients are vanishing toward the first layers: attention1 (")
