"""torchvision's segmentation models as specs, beyond what tests/test_zoo.py compares for every
entry (counts, published figures, outputs in eval and training): each spec takes a training
step on labels per pixel, and `--init` fills it from torchvision's weights, whole (the
published weights, from torch's cache) or from a classifier's backbone (an ImageNet ResNet-50
for a DeepLabv3, the head started afresh).

Every mapping is checked by value: the weights are random, so a tensor that lands where a
tensor of the same shape but another place belongs (a shape coincidence) fails the
comparison. Where each tensor belongs comes from archdsl.transfer_weights, which pairs by the
forward pass (test_zoo.py shows the outputs then agree), not from the mapping under test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import archdsl
from archdsl.flow import weighted_loss
from archdsl.train import TrainError
from archdsl.train.transfer import initialise_from, mapped, summary_line
from test_zoo import ZOO, builder_name, eval_as_archdsl, segments

SPECS = Path(__file__).resolve().parent.parent / "specs"
SMALL = (3, 32, 32)  # the input changes no weight; the dilated ResNet's map is 4x4 here
SEGMENT_SPECS = sorted({e["spec"] for n, e in ZOO.items() if segments(n)})
# the head blocks of the specs: every layer outside them is the backbone's
HEADS = ("deeplabhead", "fcnhead", "lraspphead")


def spec_model(spec: str, seed: int = 0, **params):
    """(network, its module with fresh seeded weights) of a spec at the small input."""
    network = archdsl.load(SPECS / spec, input_shape=SMALL, **params)
    torch.manual_seed(seed)
    return network, network.to_torch()


def random_fill(model, seed: int):
    """Every tensor of `model` random (running variances positive): values no two places share,
    so a tensor copied to the wrong place shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if key.endswith("num_batches_tracked"):
                t.fill_(int(torch.randint(1, 100, (), generator=g)))
            elif key.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g))
    return model


def torchvision_model(name: str, seed: int = 1, **kwargs):
    """torchvision's model `name` (no weights, nothing downloaded), random."""
    import torchvision

    if name in torchvision.models.list_models(torchvision.models.segmentation):
        kwargs["weights_backbone"] = None
    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None, **kwargs)
    model.to_empty(device="cpu")
    return random_fill(model, seed).eval()


def by_place(tv, spec: str, **params) -> dict:
    """The spec's state_dict holding `tv`'s values where transfer_weights (the forward pass)
    puts them: what a mapping must reproduce."""
    _, model = spec_model(spec, **params)
    archdsl.transfer_weights(eval_as_archdsl(tv), model, torch.zeros(1, *SMALL))
    return model.state_dict()


def assert_same_state(got: dict, expected: dict, keys=None):
    for key in keys if keys is not None else expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0, msg=key)


# ----------------------------------------------------------------------------- training


@pytest.mark.parametrize("spec", SEGMENT_SPECS)
def test_each_segmentation_spec_trains_one_step_on_labels_per_pixel(spec):
    """tests/test_every_family_trains.py trains the classifiers through `archdsl train` on
    class folders; these label pixels, so their step is taken here: cross-entropy over the
    class dimension, the auxiliary output's loss added at the spec's weight (0.5)."""
    network, model = spec_model(spec)
    x = torch.randn(2, *SMALL, generator=torch.Generator().manual_seed(1))
    target = torch.randint(0, 21, (2, *SMALL[1:]), generator=torch.Generator().manual_seed(2))
    weights = [o.aux for o in network.graph.outputs]
    out = model.train()(x)
    main, loss = weighted_loss(out, target, torch.nn.functional.cross_entropy, weights)
    assert main.shape == (2, 21, *SMALL[1:])
    assert isinstance(out, tuple) == ("aux" in spec)  # training returns the auxiliary output
    loss.backward()
    assert torch.isfinite(loss)
    missing = [k for k, p in model.named_parameters() if p.grad is None]
    assert missing == []
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


# ----------------------------------------------------------------------------- --init


@pytest.mark.parametrize("name, spec", [("deeplabv3_resnet50_aux", "deeplabv3_aux.arch"),
                                        ("lraspp_mobilenet_v3_large",
                                         "lraspp_mobilenet_v3_large.arch"),
                                        ("deeplabv3_mobilenet_v3_large_aux",
                                         "deeplabv3_mobilenet_v3_large_aux.arch")])
def test_a_torchvision_segmentation_state_dict_maps_onto_its_spec_whole(name, spec):
    """Every tensor of torchvision's state_dict pairs with one of the spec's, and each goes
    where the forward pass puts it: nothing fresh, nothing unused."""
    kwargs = ZOO[name].get("torchvision", {})
    tv = torchvision_model(builder_name(name), **kwargs)
    _, model = spec_model(spec, seed=5)
    plan, _ = mapped(tv.state_dict(), model)
    assert (plan.fresh, plan.unused, plan.ambiguous) == ([], [], [])
    assert len(plan.pairs) == len(tv.state_dict())
    state, target = tv.state_dict(), model.state_dict()
    with torch.no_grad():
        for s, d in plan.pairs:
            target[d].copy_(state[s])
    assert_same_state(target, by_place(tv, spec))


def test_published_weights_onto_the_spec_without_the_auxiliary_head_leave_it_unused():
    """torchvision publishes its segmentation weights with the auxiliary head: onto the spec
    without it, the rest loads whole and the auxiliary head's tensors are unused."""
    tv = torchvision_model("fcn_resnet50", aux_loss=True)
    _, model = spec_model("fcn.arch")
    plan, _ = mapped(tv.state_dict(), model)
    assert plan.fresh == [] and plan.ambiguous == []
    assert plan.unused == [k for k in tv.state_dict() if k.startswith("aux_classifier.")]
    without = torchvision_model("fcn_resnet50", aux_loss=False)
    without.load_state_dict({k: v for k, v in tv.state_dict().items()
                             if not k.startswith("aux_classifier.")})
    state, target = tv.state_dict(), model.state_dict()
    with torch.no_grad():
        for s, d in plan.pairs:
            target[d].copy_(state[s])
    assert_same_state(target, by_place(without, "fcn.arch"))


def hub_file(monkeypatch, tmp_path, name: str, state: dict) -> Path:
    """`state` saved as torchvision's weights file of model `name` in a TORCH_HOME of its own."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    url = torchvision.models.get_model_weights(name).DEFAULT.url
    path = tmp_path / "torch" / "hub" / "checkpoints" / Path(url).name
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return path


@pytest.mark.parametrize("spec, unused", [("deeplabv3_mobilenet_v3_large_aux.arch", False),
                                          ("deeplabv3_mobilenet_v3_large.arch", True)])
def test_init_torchvision_loads_the_published_weights_from_the_cache(
        spec, unused, tmp_path, monkeypatch):
    """`--init torchvision` on a segmentation spec (with its auxiliary head or without) takes
    the weights of the builder its zoo entry names (deeplabv3_mobilenet_v3_large for both) from
    $TORCH_HOME/hub/checkpoints; nothing is downloaded."""
    tv = torchvision_model("deeplabv3_mobilenet_v3_large", aux_loss=True)
    path = hub_file(monkeypatch, tmp_path, "deeplabv3_mobilenet_v3_large", tv.state_dict())
    network, model = spec_model(spec)
    info = initialise_from(model, network, "torchvision", SPECS / spec, {})
    assert info["file"] == str(path) and info["reinitialised"] == []
    assert bool(info["unused"]) == unused
    assert all(k.startswith("aux_classifier.") for k in info["unused"])
    if unused:
        tv = torchvision_model("deeplabv3_mobilenet_v3_large", aux_loss=False)
    assert_same_state(model.state_dict(), by_place(tv, spec))


def classifier_with_backbone_of(segmenter, name: str) -> dict:
    """torchvision's classifier `name` (resnet50, mobilenet_v3_large) as a state_dict whose
    backbone holds `segmenter`'s backbone tensors, its classifier random: the ImageNet weights a
    segmentation backbone starts from, as far as shapes and names go. The segmentation
    backbone's keys are the classifier's under `backbone.` (ResNet) or `features.` (MobileNet)."""
    state = torchvision_model(name, seed=7).state_dict()
    backbone = {k.removeprefix("backbone."): v for k, v in segmenter.state_dict().items()
                if k.startswith("backbone.")}
    for key in state:
        mine = key.removeprefix("features.") if name.startswith("mobilenet") else key
        if mine in backbone:
            state[key] = backbone.pop(mine).clone()
    assert backbone == {}  # every backbone tensor has its place in the classifier
    return state


@pytest.mark.parametrize("segmenter, spec, classifier, leading", [
    ("deeplabv3_resnet50", "deeplabv3.arch", "resnet50", True),
    ("lraspp_mobilenet_v3_large", "lraspp_mobilenet_v3_large.arch", "mobilenet_v3_large", False)])
def test_a_classifier_starts_the_backbone_and_the_head_starts_afresh(
        segmenter, spec, classifier, leading, tmp_path, monkeypatch):
    """`--init FILE` with an ImageNet classifier's state_dict, and `--init torchvision:NAME`
    with the same in torch's cache: every backbone tensor takes the classifier's value for it,
    the head keeps its fresh initialisation, the classifier's own head is unused, and the
    summary says so. DeepLab's head holds batch norms of 256 channels as ResNet's backbone
    does, so pairing by structure would leave all of them fresh: the leading modules load the
    backbone (`leading`). LRASPP's head shares no structure with MobileNet's backbone, and the
    two mappings agree; the summary then says what does not fit, as for any head."""
    tv = torchvision_model(segmenter)
    expected = by_place(tv, spec)
    state = classifier_with_backbone_of(tv, classifier)
    path = hub_file(monkeypatch, tmp_path, classifier, state)
    for source in (str(path), f"torchvision:{classifier}"):
        network, model = spec_model(spec, seed=11)
        fresh = {k: v.clone() for k, v in model.state_dict().items()}
        info = initialise_from(model, network, source, SPECS / spec, {})
        got = model.state_dict()
        head = [k for k in got if k.startswith(HEADS)]
        assert head and [r.split()[0] for r in info["reinitialised"]] == head
        assert_same_state(got, expected, [k for k in got if k not in head])
        assert_same_state(got, fresh, head)
        assert [u.split()[0] for u in info["unused"]] == [
            k for k in state if k.startswith(("fc.", "classifier."))]
        line = summary_line(info)
        assert f"--init {source}: loaded {len(got) - len(head)} tensors" in line
        assert bool(info["backbone"]) == leading
        if leading:
            assert f"into the spec's first {info['backbone']} layers with weights (the " \
                   f"backbone); re-initialised the {len(head)} tensors after them (the head: " \
                   "fresh, seeded): layer deeplabhead1." in line
        else:
            assert f"; re-initialised {len(head)} that do not fit (fresh, seeded): layer " \
                   "lraspphead1." in line
        assert all(layer.startswith(tuple(f"layer {h}" for h in HEADS))
                   for layer in info["reinitialised_layers"])


def test_init_torchvision_names_a_model_torchvision_lacks(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    network, model = spec_model("deeplabv3.arch")
    with pytest.raises(TrainError, match=r"torchvision has no model of that name; did you mean "
                                         r"`torchvision:resnet50`\?"):
        initialise_from(model, network, "torchvision:resnet5O", SPECS / "deeplabv3.arch", {})
    with pytest.raises(TrainError, match="nothing is downloaded"):  # known, not in the cache
        initialise_from(model, network, "torchvision:resnet50", SPECS / "deeplabv3.arch", {})


def test_the_leading_modules_stop_at_the_first_that_differs():
    """The pairing from the first module on ends where the two sides' next modules hold other
    tensors, even where later ones would agree again."""
    from archdsl.train.transfer import leading_modules

    def entries(*modules):
        return [(f"{m}.weight", shape, "parameter") for m, shape in modules]

    source = entries(("a", (4, 3)), ("b", (5, 4)), ("fc", (10, 5)), ("c", (2, 2)))
    target = entries(("x", (4, 3)), ("y", (5, 4)), ("head", (7, 5)), ("z", (2, 2)))
    plan = leading_modules(source, target)
    assert plan.pairs == [("a.weight", "x.weight"), ("b.weight", "y.weight")]
    assert plan.fresh == ["head.weight", "z.weight"]
    assert plan.unused == ["fc.weight", "c.weight"]


def test_the_zoo_holds_the_six_models_with_and_without_their_auxiliary_heads():
    names = {n for n in ZOO if segments(n)}
    six = {"fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101",
           "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"}
    assert names == six | {f"{n}_aux" for n in six - {"lraspp_mobilenet_v3_large"}}
    assert len(SEGMENT_SPECS) == 7
