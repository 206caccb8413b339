"""The reference specs in specs/: each checks without a single diagnostic, and each matches its
PyTorch twin exactly — parameters, buffers, output shape and multiply-accumulates.

Every test here runs over the files in specs/, so a new spec is picked up by itself; a spec
with no PyTorch twin in TWINS fails until one is added.
"""

import itertools
import re
import subprocess
import sys
from pathlib import Path

import pytest

import archdsl

SPECS = Path(__file__).resolve().parent.parent / "specs"
SPEC_FILES = sorted(SPECS.glob("*.arch"))


def each_spec(test):
    return pytest.mark.parametrize("path", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])(test)


# ----------------------------------------------------------------------------- the twins


def torchvision_model(name, **kwargs):
    """A torchvision model with weights=None (a segmentation model's backbone too). Only its
    shapes matter here, so it is built on the meta device and given zero-filled storage: VGG's
    random initialisation alone takes seconds."""
    import torch
    import torchvision

    builder = torchvision.models.get_model_builder(name)
    if name in torchvision.models.list_models(torchvision.models.segmentation):
        kwargs["weights_backbone"] = None
    try:
        with torch.device("meta"):
            model = builder(weights=None, **kwargs)
    except NotImplementedError:  # RegNet's builder computes its widths on tensors
        model = builder(weights=None, **kwargs)
    model.to_empty(device="cpu")
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        tensor.detach().zero_()
    return model


def lenet5(num_classes=10):
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, num_classes),
    )


def resnet20(num_classes=10):
    """He et al.'s CIFAR ResNet-20 from torchvision's BasicBlock, with option-B shortcuts: a
    projection (torchvision's downsample: 1x1 conv + bn) only where the shape changes."""
    from torch import nn
    from torchvision.models.resnet import BasicBlock, conv1x1

    layers = [nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    width = 16
    for c, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            s = stride if i == 0 else 1
            downsample = None
            if s != 1 or width != c:
                downsample = nn.Sequential(conv1x1(width, c, s), nn.BatchNorm2d(c))
            layers.append(BasicBlock(width, c, s, downsample))
            width = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes)]
    return nn.Sequential(*layers)


def branches(num_classes=10, c=256):
    """specs/branches.arch written by hand: every combinator is a line of forward()."""
    import torch
    from torch import nn

    class Branches(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 192, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(192), nn.ReLU())
            self.inception = nn.ModuleList([
                nn.Conv2d(192, 64, 1),
                nn.Sequential(nn.Conv2d(192, 96, 1), nn.Conv2d(96, 128, 3, padding=1)),
                nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(192, 32, 1)),
            ])
            self.dense = nn.Sequential(nn.BatchNorm2d(224), nn.ReLU(),
                                       nn.Conv2d(224, 128, 1, bias=False), nn.BatchNorm2d(128),
                                       nn.ReLU(), nn.Conv2d(128, 32, 3, padding=1, bias=False))
            self.bn = nn.BatchNorm2d(256)
            self.excite = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c // 4, 1), nn.ReLU(),
                                        nn.Conv2d(c // 4, c, 1), nn.Sigmoid())
            self.conv3, self.conv1 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 1)
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                      nn.Linear(c, num_classes))

        def forward(self, x):
            x = self.stem(x)
            x = torch.relu(torch.cat([branch(x) for branch in self.inception], 1))  # concat<…>
            x = torch.cat([x, self.dense(x)], 1)                                     # concat<…>
            x = torch.relu(self.bn(x))
            x = x * self.excite(x)                                                   # mul<…>
            x = torch.relu(self.conv3(x) + self.conv1(x))                            # add<…>
            return self.head(x)

    return Branches()


# spec name -> (its PyTorch twin, torchvision's weights enum or None)
TWINS = {
    "alexnet": (lambda: torchvision_model("alexnet"), "AlexNet_Weights"),
    "vgg11": (lambda: torchvision_model("vgg11"), "VGG11_Weights"),
    "vgg13": (lambda: torchvision_model("vgg13"), "VGG13_Weights"),
    "vgg16": (lambda: torchvision_model("vgg16"), "VGG16_Weights"),
    "vgg19": (lambda: torchvision_model("vgg19"), "VGG19_Weights"),
    "vgg11_bn": (lambda: torchvision_model("vgg11_bn"), "VGG11_BN_Weights"),
    "vgg16_bn": (lambda: torchvision_model("vgg16_bn"), "VGG16_BN_Weights"),
    "resnet18": (lambda: torchvision_model("resnet18"), "ResNet18_Weights"),
    "resnet34": (lambda: torchvision_model("resnet34"), "ResNet34_Weights"),
    "resnet50": (lambda: torchvision_model("resnet50"), "ResNet50_Weights"),
    "resnet101": (lambda: torchvision_model("resnet101"), "ResNet101_Weights"),
    "resnet152": (lambda: torchvision_model("resnet152"), "ResNet152_Weights"),
    "googlenet": (lambda: torchvision_model("googlenet", aux_logits=False, init_weights=False),
                  "GoogLeNet_Weights"),
    "mobilenet_v2": (lambda: torchvision_model("mobilenet_v2"), "MobileNet_V2_Weights"),
    # the zoo's families (specs/torchvision.toml, tests/test_zoo.py), at their defaults
    "densenet": (lambda: torchvision_model("densenet121"), "DenseNet121_Weights"),
    "squeezenet1_0": (lambda: torchvision_model("squeezenet1_0"), "SqueezeNet1_0_Weights"),
    "squeezenet1_1": (lambda: torchvision_model("squeezenet1_1"), "SqueezeNet1_1_Weights"),
    "resnext": (lambda: torchvision_model("resnext50_32x4d"), "ResNeXt50_32X4D_Weights"),
    "mobilenet_v3_large": (lambda: torchvision_model("mobilenet_v3_large"),
                           "MobileNet_V3_Large_Weights"),
    "mobilenet_v3_small": (lambda: torchvision_model("mobilenet_v3_small"),
                           "MobileNet_V3_Small_Weights"),
    "efficientnet": (lambda: torchvision_model("efficientnet_b0"), "EfficientNet_B0_Weights"),
    "mnasnet": (lambda: torchvision_model("mnasnet1_0"), "MNASNet1_0_Weights"),
    # torchvision's published figures count the auxiliary classifier, which the spec leaves out
    "inception_v3": (lambda: torchvision_model("inception_v3", aux_logits=False,
                                               init_weights=False), None),
    "regnet_x": (lambda: torchvision_model("regnet_x_400mf"), "RegNet_X_400MF_Weights"),
    "regnet_y": (lambda: torchvision_model("regnet_y_400mf"), "RegNet_Y_400MF_Weights"),
    # ViT's SWAG weights are published at 384x384 too: its figures are checked in test_zoo.py
    "vit": (lambda: torchvision_model("vit_b_16"), None),
    "efficientnet_v2": (lambda: torchvision_model("efficientnet_v2_s"),
                        "EfficientNet_V2_S_Weights"),
    "vgg13_bn": (lambda: torchvision_model("vgg13_bn"), "VGG13_BN_Weights"),
    "vgg19_bn": (lambda: torchvision_model("vgg19_bn"), "VGG19_BN_Weights"),
    "shufflenet_v2": (lambda: torchvision_model("shufflenet_v2_x1_0"),
                      "ShuffleNet_V2_X1_0_Weights"),
    "convnext": (lambda: torchvision_model("convnext_tiny"), "ConvNeXt_Tiny_Weights"),
    "swin": (lambda: torchvision_model("swin_t"), "Swin_T_Weights"),
    "swin_v2": (lambda: torchvision_model("swin_v2_t"), "Swin_V2_T_Weights"),
    "maxvit": (lambda: torchvision_model("maxvit_t"), "MaxVit_T_Weights"),
    # with their auxiliary classifiers (outputs used only in training; eval returns the
    # logits alone): torchvision publishes googlenet's figures without them, inception_v3's
    # MACs without them
    "googlenet_aux": (lambda: torchvision_model("googlenet", aux_logits=True,
                                                init_weights=False), None),
    "inception_v3_aux": (lambda: torchvision_model("inception_v3", aux_logits=True,
                                                   init_weights=False), None),
    # beyond torchvision: timm's (tests/test_timm_families.py compares outputs)
    "dla34": (lambda: __import__("timm").create_model("dla34", pretrained=False), None),
    "hrnet_w18_small": (lambda: __import__("timm").create_model("hrnet_w18_small",
                                                                pretrained=False), None),
    "poolformer_s12": (lambda: __import__("timm").create_model("poolformer_s12",
                                                               pretrained=False), None),
    "mixer_b16": (lambda: __import__("timm").create_model("mixer_b16_224", pretrained=False),
                  None),
    "nf_resnet50": (lambda: __import__("timm").create_model("nf_resnet50", pretrained=False),
                    None),
    # torchvision's segmentation models (their published figures, those with the auxiliary
    # head, are compared in tests/test_zoo.py, with their outputs)
    "fcn": (lambda: torchvision_model("fcn_resnet50"), None),
    "fcn_aux": (lambda: torchvision_model("fcn_resnet50", aux_loss=True), None),
    "deeplabv3": (lambda: torchvision_model("deeplabv3_resnet50"), None),
    "deeplabv3_aux": (lambda: torchvision_model("deeplabv3_resnet50", aux_loss=True), None),
    "deeplabv3_mobilenet_v3_large": (lambda: torchvision_model("deeplabv3_mobilenet_v3_large"),
                                     None),
    "deeplabv3_mobilenet_v3_large_aux": (
        lambda: torchvision_model("deeplabv3_mobilenet_v3_large", aux_loss=True), None),
    "lraspp_mobilenet_v3_large": (lambda: torchvision_model("lraspp_mobilenet_v3_large"), None),
    # the 2015 paper's network, written in PyTorch (tests/test_geometry.py compares outputs)
    "unet": (lambda: __import__("unet_reference").UNet(), None),
    "unet_small": (lambda: __import__("unet_reference").SmallUNet(), None),
    "lenet5": (lenet5, None),
    "resnet20": (resnet20, None),
    "branches": (branches, None),
}

WITH_PUBLISHED_OPS = [name for name, (_, weights) in TWINS.items() if weights]
# the segmentation models are compared at a small input (at their 520x520, seconds each);
# torchvision's return a dict of outputs, `out` the main one
SEGMENTATION = {"fcn", "fcn_aux", "deeplabv3", "deeplabv3_aux", "deeplabv3_mobilenet_v3_large",
                "deeplabv3_mobilenet_v3_large_aux", "lraspp_mobilenet_v3_large"}


# ----------------------------------------------------------------------------- every spec


# Warnings that torchvision's own design earns: SqueezeNet's unpadded stride-2 stem reads
# 223 of a 224 input's rows, as torchvision's does.
BY_DESIGN = {"squeezenet1_0": {"W-STRIDE-DROP"}, "squeezenet1_1": {"W-STRIDE-DROP"}}


@each_spec
def test_spec_checks_with_no_diagnostics(path):
    net = archdsl.load(path)
    found = {d.code for d in net.diagnostics}
    assert found == BY_DESIGN.get(path.stem, set()), "\n".join(map(str, net.diagnostics))
    assert net.name == path.stem


def test_strict_check_accepts_every_spec():
    clean = [p for p in SPEC_FILES if p.stem not in BY_DESIGN]
    result = subprocess.run([sys.executable, "-m", "archdsl", "check", "--strict",
                             *map(str, clean)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@each_spec
def test_header_comment_states_the_parameter_count(path):
    header = "".join(itertools.takewhile(lambda line: line.startswith("#"),
                                         path.read_text().splitlines(keepends=True)))
    stated = re.search(r"([0-9][0-9,]*) parameters", header)
    assert stated, f"{path.name}: say how many parameters it has in the header comment"
    assert int(stated.group(1).replace(",", "")) == archdsl.load(path).params


@each_spec
def test_spec_matches_its_pytorch_twin(path):
    import torch

    assert path.stem in TWINS, f"add {path.name}'s PyTorch twin to TWINS in {__file__}"
    net = archdsl.load(path)
    if path.stem in SEGMENTATION:
        net = archdsl.load(path, input_shape=(3, 64, 64))
    model = TWINS[path.stem][0]().eval()
    assert net.params == sum(p.numel() for p in model.parameters())
    assert net.buffers == sum(b.numel() for b in model.buffers())
    with torch.no_grad():
        y = model(torch.randn(1, *net.input_shape))
    if path.stem in SEGMENTATION:
        y = y["out"]
    assert tuple(y.shape) == (1, *net.output_shape)


@pytest.mark.parametrize("name", WITH_PUBLISHED_OPS)
def test_macs_match_torchvision_published_figures(name):
    # torchvision's "GFLOPS" (meta["_ops"]) counts one per multiply-add of convolutions and
    # linear layers, as archdsl's MACs do (torch's FlopCounterMode reports twice as many).
    import torchvision

    net = archdsl.load(SPECS / f"{name}.arch")
    for weights in getattr(torchvision.models, TWINS[name][1]):
        assert round(net.macs / 1e9, 3) == pytest.approx(weights.meta["_ops"], abs=1e-9)
        assert net.params == weights.meta["num_params"]


@each_spec
def test_num_classes_changes_the_final_layer(path):
    """The classifiers (a linear layer, or a 1x1 conv: SqueezeNet's, a segmentation head's;
    MaxViT's without bias) get num_classes outputs, and they alone change: each output's (an
    auxiliary one's too, both of Lite R-ASPP's two summed score maps)."""
    default = archdsl.load(path)
    classes = default.arch_params["num_classes"]
    n = 10 if classes != 10 else 100
    net = archdsl.load(path, num_classes=n)
    before, after = default.layers(), net.layers()
    assert [r["name"] for r in before] == [r["name"] for r in after]
    changed = [(a, b) for a, b in zip(before, after) if a["params"] != b["params"]]
    assert changed
    for a, b in changed:
        assert b["op"] in ("linear", "conv"), b["name"]
        assert (a["output"][0], b["output"][0]) == (classes, n), b["name"]
        per_class, rest = divmod(a["params"] - b["params"], classes - n)
        assert rest == 0 and b["params"] == per_class * n, b["name"]
    index = {r["name"]: i for i, r in enumerate(after)}
    for out in net.graph.outputs:  # each output's classifier is one of them
        assert after[index[out.node]]["output"][0] == n
        assert any(index[b["name"]] <= index[out.node] for _, b in changed)
    assert net.output_shape == (n, *default.output_shape[1:])  # a U-Net's: n x H x W


# ----------------------------------------------------------------------------- small networks


@pytest.mark.parametrize("name, input_shape, output_shape", [
    ("lenet5", (1, 32, 32), (10,)),
    ("resnet20", (3, 32, 32), (10,)),
    ("branches", (3, 32, 32), (10,)),
])
def test_small_networks_shapes(name, input_shape, output_shape):
    net = archdsl.load(SPECS / f"{name}.arch")
    assert net.input_shape == input_shape and net.output_shape == output_shape


def test_resnet20_stage_shapes_and_shortcuts():
    net = archdsl.load(SPECS / "resnet20.arch")
    merges = [r["output"] for r in net.layers() if r["op"] == "add"]
    assert merges == [[16, 32, 32]] * 3 + [[32, 16, 16]] * 3 + [[64, 8, 8]] * 3
    projections = [r for r in net.layers() if r["inserted"]]
    assert [r["op"] for r in projections] == ["conv", "bn", "conv", "bn"]  # option B


def test_branches_holds_the_language_examples_verbatim():
    lines = (SPECS / "branches.arch").read_text().splitlines()
    for example in [
        "concat< conv 64 k1 | conv 96 k1; conv 128 k3 p1 | maxpool 3 s1 p1; conv 32 k1 >   "
        "# Inception",
        "concat< identity | bn; relu; conv 128 k1 nobias; bn; relu; conv 32 k3 p1 nobias > "
        "# DenseNet layer",
        "mul< identity | adaptiveavgpool 1; conv c/4 k1; relu; conv c k1; sigmoid >         "
        "# squeeze-excite",
        "add< conv c k3 p1 | conv c k1 >",
    ]:
        assert example in lines
