"""Checked graph -> torch.nn.Module: structure, run-time shapes, torchvision equivalence, init."""

from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import archdsl
from archdsl.torch_backend import Residual
from archdsl.transfer import transfer_weights

SPECS = Path(__file__).resolve().parent.parent / "specs"
ALL_SPECS = sorted(p.stem for p in SPECS.glob("*.arch"))

# spec name -> torchvision constructor (random weights)
TORCHVISION = {
    "alexnet": lambda: torchvision.models.alexnet(weights=None),
    "vgg11": lambda: torchvision.models.vgg11(weights=None),
    "vgg13": lambda: torchvision.models.vgg13(weights=None),
    "vgg16": lambda: torchvision.models.vgg16(weights=None),
    "vgg19": lambda: torchvision.models.vgg19(weights=None),
    "vgg11_bn": lambda: torchvision.models.vgg11_bn(weights=None),
    "vgg16_bn": lambda: torchvision.models.vgg16_bn(weights=None),
    "resnet18": lambda: torchvision.models.resnet18(weights=None),
    "resnet34": lambda: torchvision.models.resnet34(weights=None),
    "resnet50": lambda: torchvision.models.resnet50(weights=None),
    "resnet101": lambda: torchvision.models.resnet101(weights=None),
    "resnet152": lambda: torchvision.models.resnet152(weights=None),
    "googlenet": lambda: torchvision.models.googlenet(weights=None, aux_logits=False,
                                                      init_weights=True),
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(weights=None),
}


def compiled(name, **params):
    return archdsl.load(SPECS / f"{name}.arch", **params).to_torch()


@pytest.mark.parametrize("name", ALL_SPECS)
def test_every_layer_has_the_statically_checked_shape_at_run_time(name):
    from archdsl.flow import main_output

    net = archdsl.load(SPECS / f"{name}.arch")
    graph = net.graph
    # a network with named values runs its graph (flow.py) in training mode here, so that
    # the layers only an auxiliary output reads run too; its merges have no module
    model = net.to_torch().train(graph.dataflow)
    seen = {}
    hooks = []
    merges_in_flow = 0
    for nid, node in graph.layers():
        if node.kind is None:
            continue
        if node.kind.merges and graph.dataflow:
            merges_in_flow += 1
            continue
        # a merge is computed by its combinator module, whose path is the group's name
        path = graph.groups[node.merge.group].name if node.merge is not None else nid
        module = model.get_submodule(path)
        hooks.append(module.register_forward_hook(
            lambda m, i, o, nid=nid: seen.__setitem__(nid, tuple(o.shape[1:]))))
    with torch.no_grad():
        out = main_output(model(torch.randn(2 if graph.dataflow else 1, *net.input_shape)))
    for h in hooks:
        h.remove()
    assert tuple(out.shape[1:]) == net.output_shape
    expected = {nid: graph.shape(nid) for nid in seen}
    assert seen == expected
    assert len(seen) == len(graph) - 1 - merges_in_flow


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_same_outputs_and_gradients_as_torchvision(name):
    torch.manual_seed(0)
    reference = TORCHVISION[name]()
    model = compiled(name)
    transfer_weights(reference, model)
    x = torch.randn(2, 3, 112, 112)
    reference.eval(), model.eval()
    with torch.no_grad():
        expected, got = reference(x), model(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)

    # one training step: same loss, same gradients (dropout off so the step is deterministic)
    for m in (reference, model):
        m.train()
        for d in m.modules():
            if isinstance(d, nn.Dropout):
                d.p = 0.0
    target = torch.tensor([1, 7])
    losses, grads = [], []
    for m in (reference, model):
        loss = nn.functional.cross_entropy(m(x), target)
        loss.backward()
        losses.append(loss.detach())
        grads.append([p.grad for p in m.parameters()])
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-6)
    for g_model, g_ref in zip(grads[1], grads[0]):
        torch.testing.assert_close(g_model, g_ref, rtol=1e-4, atol=1e-5)


def test_structure_mirrors_the_spec():
    model = compiled("resnet18")
    assert isinstance(model.basic3.residual1, Residual)
    assert isinstance(model.basic3.residual1.shortcut.conv1, nn.Conv2d)
    assert model.basic1.residual1.shortcut is None
    keys = list(model.state_dict())
    assert keys[:2] == ["conv1.weight", "bn1.weight"]
    assert "basic3.residual1.shortcut.conv1.weight" in keys
    assert "basic3.residual1.body.bn2.running_var" in keys
    text = str(model)
    assert text.startswith("resnet18(\n  input 3x224x224")
    assert "(basic3): basic(" in text and "(residual1): Residual(" in text


def test_repeats_and_branches_become_named_submodules():
    net = archdsl.loads("""arch n(c=8)
input 3x16x16
block stage(c, n) {
  repeat n { conv c k3 p1; relu }
  maxpool 2
}
stage 8 2
concat< conv 4 k1 | identity >
mul< identity | adaptiveavgpool 1; conv 12 k1; sigmoid >
add< conv 12 k3 p1 | conv 12 k1 >
""")
    model = net.to_torch()
    keys = set(model.state_dict())
    assert {"stage1.repeat1.0.conv1.weight", "stage1.repeat1.1.conv1.weight",
            "concat1.branch1.conv1.weight", "mul1.branch2.conv1.weight",
            "add1.branch1.conv1.weight", "add1.branch2.conv1.weight"} <= keys
    y = model(torch.randn(2, 3, 16, 16))
    assert tuple(y.shape[1:]) == net.output_shape == (12, 8, 8)


def test_transfer_weights_names_the_first_mismatch():
    with pytest.raises(ValueError, match=r"tensor #0 does not fit: source conv1.weight"):
        transfer_weights(compiled("resnet18"), compiled("alexnet"))
    small = archdsl.loads("input 3x8x8\nconv 4 k3\n").to_torch()
    big = archdsl.loads("input 3x8x8\nconv 4 k3; conv 4 k3\n").to_torch()
    with pytest.raises(ValueError, match=r"first without a partner is destination conv2.weight"):
        transfer_weights(small, big)


def test_resnet_initialisation():
    text = "init resnet{opt}\ninput 3x16x16\nconv 8 k3 p1 nobias; bn; relu\n" \
           "residual< conv 8 k3 p1 nobias; bn; relu; conv 8 k3 p1 nobias; bn >\n"
    torch.manual_seed(0)
    model = archdsl.loads(text.format(opt="")).to_torch()
    conv = model.conv1
    fan_out = 8 * 3 * 3
    assert abs(conv.weight.std().item() - (2 / fan_out) ** 0.5) < 0.1
    assert torch.all(model.bn1.weight == 1) and torch.all(model.bn1.bias == 0)
    assert torch.all(model.residual1.body.bn2.weight == 1)
    zeroed = archdsl.loads(text.format(opt=" zero_residual")).to_torch()
    assert torch.all(zeroed.residual1.body.bn2.weight == 0)
    assert torch.all(zeroed.residual1.body.bn1.weight == 1)


def test_default_initialisation_is_pytorchs():
    torch.manual_seed(0)
    model = archdsl.loads("input 3x16x16\nconv 8 k3\n").to_torch()
    torch.manual_seed(0)
    reference = nn.Conv2d(3, 8, 3)
    torch.testing.assert_close(model.conv1.weight, reference.weight)


def test_build_in_one_call():
    model = archdsl.build(SPECS / "alexnet.arch", num_classes=10)
    assert model(torch.randn(1, 3, 224, 224)).shape == (1, 10)


def test_activations_work_in_place_only_when_nothing_else_reads_their_input():
    model = archdsl.loads("input 3x8x8\nconv 8 k3; relu; concat< relu | identity >; "
                          "sigmoid; relu\n").to_torch()
    assert model.relu1.inplace  # conv's output is read by relu1 alone
    assert not model.concat1.branch1.relu1.inplace  # relu1's output also feeds the identity
    assert not model.relu2.inplace  # sigmoid's backward needs its own output
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    model(x).sum().backward()  # autograd would raise if an in-place op broke the graph
    assert x.grad is not None
