"""torchvision's model zoo as specs: every entry of specs/torchvision.toml (a torchvision model
name -> spec file, `--set` values, input shape) checks, has torchvision's parameter and buffer
counts and, for the models added with the zoo, computes torchvision's outputs after
`archdsl.transfer_weights`. The segmentation models (`task = "segment"`) give a map of class
scores the input's size, `out` in eval and `out` and `aux` in training where they have the
auxiliary head: both modes are compared.

Cheap by design (the machine is shared): each test builds each model once, on the meta device
(RegNet's torchvision builder needs the CPU), and gives it random storage; outputs are compared
on a batch of two at a reduced input size. No `slow` marker is registered in this project, so
every case runs.
"""

import itertools
import math
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as a package
    import tomli as tomllib
from pathlib import Path

import pytest

import archdsl

SPECS = Path(__file__).resolve().parent.parent / "specs"
ZOO = tomllib.loads((SPECS / "torchvision.toml").read_text())

# specs/ had these before the zoo: their outputs are compared in tests/test_specs.py and
# tests/test_torch_backend.py, so here only their counts are.
REFERENCE = {"alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg16", "vgg16_bn", "vgg19", "resnet18",
             "resnet34", "resnet50", "resnet101", "resnet152", "googlenet", "mobilenet_v2"}

# An entry may also say which warnings torchvision's own design raises (`warnings`), the input
# its outputs are compared at (`test_input`: default 3x64x64, the smallest where every model's
# last-stage 3x3 taps still see more than one position) and `check_only = true` for a model
# too big to build in the suite (only its counts are compared, statically), `train_step =
# true` on one model per family to compare one training step too, and `task = "segment"` for a
# model that labels every pixel.
DEFAULT_SMALL_INPUT = (3, 64, 64)
KEYS = {"spec", "set", "input", "torchvision", "warnings", "test_input", "check_only", "train_step",
        "model", "task"}


def segments(name):
    """Whether an entry is a segmentation model: its outputs are maps of class scores."""
    return ZOO[name].get("task") == "segment"


def has_published_layout(name):
    """Whether the entry is the network torchvision's published weights hold: a classifier
    under its own name (googlenet_aux and inception_v3_aux are not), a segmentation model with
    its auxiliary head where it has one (torchvision trains them with aux_loss=True)."""
    if segments(name):
        return ZOO[name].get("torchvision", {}).get("aux_loss", True)
    return "model" not in ZOO[name]


def builder_name(name):
    """torchvision's builder of an entry: its `model`, else the entry's own name."""
    return ZOO[name].get("model", name)


def small_input(name):
    """The input an entry's outputs are compared at."""
    return shape(ZOO[name]["test_input"]) if "test_input" in ZOO[name] else DEFAULT_SMALL_INPUT


def shape(text):
    return tuple(int(d) for d in text.split("x"))


def entry(name):
    e = ZOO[name]
    return SPECS / e["spec"], e.get("set", {}), shape(e["input"]), e.get("torchvision", {})


def test_the_zoo_lists_every_reference_spec_and_the_added_families():
    assert REFERENCE <= set(ZOO)
    for name, e in ZOO.items():
        assert set(e) <= KEYS, name
        assert (SPECS / e["spec"]).is_file(), name


@pytest.mark.parametrize("name", sorted(ZOO))
def test_spec_checks(name):
    path, params, input_shape, _ = entry(name)
    net = archdsl.load(path, input_shape=input_shape, **params)  # raises SpecError on errors
    assert net.input_shape == input_shape
    assert not [d for d in net.diagnostics if d.severity == "error"]
    codes = {d.code for d in net.diagnostics if d.severity == "warning"}
    assert codes <= set(ZOO[name].get("warnings", ())), "\n".join(map(str, net.diagnostics))
    if segments(name):  # 21 classes (Pascal VOC's), a score per pixel
        assert net.output_shape == (21, *input_shape[1:])
        assert [(o.name, o.aux) for o in net.graph.outputs] == \
            [("out", None)] + [("aux", 0.5)] * has_aux(name)
    else:
        assert net.output_shape == (1000,)


@pytest.mark.parametrize("name", sorted(n for n in ZOO if has_published_layout(n)))
def test_macs_and_params_match_torchvision_published_figures(name):
    # torchvision's meta["_ops"] (its "GFLOPS") counts one per multiply-add of convolutions and
    # linear layers at the weights' own input size, as archdsl's MACs do; a segmentation model's
    # figures count its auxiliary head (and no interpolation), at 520x520.
    import torchvision

    path, params, input_shape, _ = entry(name)
    net = archdsl.load(path, input_shape=input_shape, **params)
    published = [w for w in torchvision.models.get_model_weights(builder_name(name))
                 if w.transforms.keywords.get("crop_size", input_shape[1]) == input_shape[1]]
    assert published, f"{name}: no weights published at {input_shape}"
    for weights in published:  # not SWAG's, fine-tuned at another resolution
        assert round(net.macs / 1e9, 3) == pytest.approx(weights.meta["_ops"], abs=1e-9)
        if name != "inception_v3":  # its published count includes the auxiliary classifier
            assert net.params == weights.meta["num_params"]


# Models whose buffers are computed at construction (Swin's and MaxViT's relative position
# indices, Swin v2's relative coordinates): built on the CPU, and `randomise` keeps them.
COMPUTED_BUFFERS = ("swin", "maxvit")


def has_aux(name):
    """Whether the entry's segmentation model has torchvision's auxiliary head."""
    return bool(ZOO[name].get("torchvision", {}).get("aux_loss"))


def torchvision_model(name, kwargs):
    """torchvision's model, built on the meta device: random storage comes later. (RegNet's
    builder computes its widths with tensors, so it is built on the CPU.) A segmentation
    model's backbone is built without weights too: nothing is downloaded."""
    import torch
    import torchvision

    builder = torchvision.models.get_model_builder(builder_name(name))
    if segments(name):
        kwargs = {**kwargs, "weights_backbone": None}
    if name.startswith(COMPUTED_BUFFERS):
        return builder(weights=None, **kwargs)
    try:
        with torch.device("meta"):
            return builder(weights=None, **kwargs)
    except NotImplementedError:
        return builder(weights=None, **kwargs)


def randomise(model, x):
    """Random weights (Kaiming-scaled, so deep networks neither explode nor vanish), random batch
    norm scales and shifts, and running statistics from one training-mode pass over `x`: batch
    norm then does real work in eval mode, and every value is well away from atol."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(0)
    computed = {k: b.clone() for k, b in model.named_buffers() if not b.is_meta}
    model.to_empty(device="cpu")
    with torch.no_grad():
        for k, b in model.named_buffers():
            if k in computed:
                b.copy_(computed[k])
    norms = []
    with torch.no_grad():
        for p in model.parameters():  # class tokens, position embeddings: small values
            p.copy_(torch.randn(p.shape, generator=g) * 0.02)
        for m in model.modules():
            if isinstance(m, nn.MultiheadAttention):
                m.in_proj_weight.copy_(torch.randn(m.in_proj_weight.shape, generator=g)
                                       * math.sqrt(1 / m.embed_dim))
            elif isinstance(m, nn.LayerNorm) and m.elementwise_affine:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2 / fan_in))
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.reset_running_stats()
                norms.append((m, m.momentum))
                m.momentum = 1.0                # the running statistics become the batch's
        for name, p in model.named_parameters():  # ConvNeXt's: bodies that matter to the sum
            if name.endswith("layer_scale"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
        model.train()(x)
        for m, momentum in norms:
            m.momentum = momentum
    return model.eval()


def count(model):
    return (sum(p.numel() for p in model.parameters()), sum(b.numel() for b in model.buffers()))


@pytest.mark.parametrize("name", sorted(ZOO))
def test_matches_torchvision(name):
    import torch

    path, params, input_shape, kwargs = entry(name)
    tv = torchvision_model(name, kwargs)
    tv_params, tv_buffers = count(tv)
    full = archdsl.load(path, input_shape=input_shape, **params)
    assert (full.params, full.buffers) == (tv_params, tv_buffers)
    # the auxiliary classifiers' entries: outputs compared in both modes in
    # tests/test_named_values.py
    if name in REFERENCE or ZOO[name].get("check_only") or \
            "model" in ZOO[name] and not segments(name):
        return

    small = small_input(name)
    net = archdsl.load(path, input_shape=small, **params)
    assert (net.params, net.buffers) == (tv_params, tv_buffers)
    x = torch.randn(2, *small, generator=torch.Generator().manual_seed(1))
    tv = randomise(tv, x)
    with torch.device("meta"):
        ours = net.to_torch()
    ours.to_empty(device="cpu")
    archdsl.transfer_weights(eval_as_archdsl(tv), ours)  # every tensor: nothing left empty
    ours.eval()
    with torch.no_grad():
        expected, got = tv(x), ours(x)
    if segments(name):
        expected = expected["out"]
    assert expected.shape == (2, *net.output_shape)
    assert expected.abs().max() > 1e-2         # a comparison that atol cannot make vacuous
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    if segments(name):  # training: every output, dropout's masks drawn in the same order
        with torch.no_grad():
            torch.manual_seed(2)
            expected = tv.train()(x)
            torch.manual_seed(2)
            got = ours.train()(x)
        got = got._asdict() if isinstance(got, tuple) else {"out": got}
        assert got.keys() == expected.keys() == {"out"} | ({"aux"} if has_aux(name) else set())
        for key in expected:
            torch.testing.assert_close(got[key], expected[key], rtol=1e-4, atol=1e-5, msg=key)


def eval_as_archdsl(model):
    """torchvision's segmentation model as archdsl runs it in eval: without the auxiliary head,
    which torchvision runs in eval too. transfer_weights finds each module's place by an eval
    forward of both networks, and a head that one side reaches and the other does not has no
    place it could agree on (the aux head's batch norm is one of many of 256 channels). The
    same modules, so the same state_dict under `model.`; any other model is returned as is."""
    import torch.nn.functional as F
    from torch import nn

    if getattr(model, "aux_classifier", None) is None:
        return model

    class MainOutputInEval(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            features = model.backbone(x)
            heads = {"out": model.classifier}
            if self.training:
                heads["aux"] = model.aux_classifier
            return {k: F.interpolate(head(features[k]), size=x.shape[-2:], mode="bilinear",
                                     align_corners=False) for k, head in heads.items()}

    return MainOutputInEval()


def pixel_labels(name, x):
    """Labels for a training step: a class per sample, or per pixel for a segmentation model."""
    import torch

    if segments(name):
        return torch.randint(0, 21, (x.shape[0], *x.shape[2:]),
                             generator=torch.Generator().manual_seed(3))
    return torch.tensor([3, 7])


def step_loss(out, labels):
    """Cross-entropy of the main output, plus 0.5 times the auxiliary output's (torchvision's
    segmentation recipe) where the model gives one: torchvision's dict, archdsl's named tuple."""
    import torch.nn.functional as F

    if isinstance(out, tuple):
        out = out._asdict()
    if not isinstance(out, dict):
        return F.cross_entropy(out, labels)
    return F.cross_entropy(out["out"], labels) + (
        0.5 * F.cross_entropy(out["aux"], labels) if "aux" in out else 0)


TRAIN_STEP = sorted(n for n, e in ZOO.items() if "train_step" in e)


@pytest.mark.parametrize("name", TRAIN_STEP)
def test_one_training_step_matches_torchvision(name):
    """One model per family: in train mode (batch norm on batch statistics, its running
    statistics updated), the loss, and every parameter and buffer after one SGD step, equal
    torchvision's. Dropout draws from the same seed in both, so its masks agree where the two
    call it in the same order; the entry's `train_step = { set = {…}, torchvision = {…} }` sets
    what does not (stochastic depth) to 0 on both sides. The states after the step are
    compared through `transfer_weights` itself, so the test holds whatever its matching."""
    import torch

    step = ZOO[name]["train_step"]
    path, params, _, kwargs = entry(name)
    params, kwargs = {**params, **step.get("set", {})}, {**kwargs, **step.get("torchvision", {})}
    small = small_input(name)
    x = torch.randn(2, *small, generator=torch.Generator().manual_seed(1))
    labels = pixel_labels(name, x)
    tv = randomise(torchvision_model(name, kwargs), x)
    for m in tv.modules():  # Swin's and MaxViT's builders fix stochastic_depth_prob: off here
        if type(m).__name__ == "StochasticDepth":
            m.p = 0.0
    net = archdsl.load(path, input_shape=small, **params)
    ours, after = net.to_torch(), net.to_torch()
    archdsl.transfer_weights(eval_as_archdsl(tv), ours)
    losses = []
    for model in (tv, ours):
        model.train()
        optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
        torch.manual_seed(2)  # dropout draws the same masks in both, layer for layer
        loss = step_loss(model(x), labels)
        loss.backward()
        optimiser.step()
        losses.append(loss.detach())
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-4, atol=1e-5)
    archdsl.transfer_weights(eval_as_archdsl(tv), after)
    expected, got = after.state_dict(), ours.state_dict()
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-4, atol=1e-5, msg=key)


def zoo_tool():
    import importlib.util

    tool = SPECS.parent / "tools" / "zoo_table.py"
    spec = importlib.util.spec_from_file_location("zoo_table", tool)
    zoo_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zoo_table)
    return zoo_table


def test_the_families_beyond_torchvision_are_listed_as_the_specs_give_them():
    """docs/zoo.md's second table (params, MACs, receptive field) is the specs' own, and
    lists every spec of a family compared with a reference outside torchvision."""
    zoo_table = zoo_tool()
    doc = (SPECS.parent / "docs" / "zoo.md").read_text()
    assert zoo_table.beyond_table() in doc
    assert {"poolformer_s12", "mixer_b16", "nf_resnet50", "unet"} <= set(zoo_table.BEYOND)


def test_the_zoo_table_in_the_docs_is_the_specs_own():
    """docs/zoo.md's table (tools/zoo_table.py --write) matches the specs in every column but
    the measured check time: a spec or entry that changes without the table fails here."""
    zoo_table = zoo_tool()
    doc = (SPECS.parent / "docs" / "zoo.md").read_text().splitlines()
    start = doc.index(zoo_table.HEADER.splitlines()[0])
    rows = itertools.takewhile(lambda line: line.startswith("| "), doc[start + 2:])
    shown = [line.split(" | ")[:-1] for line in rows]
    expected = [[f"| {name}", f"specs/{file}", input_, f"{params:,}", f"{macs:,}", str(lines)]
                for name, file, input_, params, macs, lines, _ in zoo_table.rows(timed=False)]
    assert shown == expected


def test_the_segmentation_table_in_the_docs_is_the_specs_own():
    """docs/zoo.md's table of the segmentation models, their outputs too, likewise."""
    zoo_table = zoo_tool()
    doc = (SPECS.parent / "docs" / "zoo.md").read_text().splitlines()
    start = doc.index(zoo_table.SEGMENT_HEADER.splitlines()[0])
    rows = itertools.takewhile(lambda line: line.startswith("| "), doc[start + 2:])
    shown = [line.split(" | ")[:-1] for line in rows]
    expected = [[f"| {name}", f"specs/{file}", input_, outputs, f"{params:,}", f"{macs:,}",
                 str(lines)]
                for name, file, input_, outputs, params, macs, lines, _
                in zoo_table.segment_rows(timed=False)]
    assert shown == expected and len(shown) == sum(map(segments, ZOO))
