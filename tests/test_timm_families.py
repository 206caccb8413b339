"""Networks from timm as specs: each spec checks cleanly, has timm's parameter and buffer
counts, and computes timm's outputs after `transfer_weights` (archdsl/transfer.py).

DLA-34 (specs/dla34.arch) is the first: a tree whose aggregation nodes read several values
(named values, concat as a layer). timm registers a tree's `project` before the block it
feeds, where the spec writes it as that block's shortcut, after the body: the transfer has
to pair tensors by where the forward pass reaches them, not by registration order (the
older `archdsl.transfer_weights` of torch_backend.py pairs them by order, and copies wrongly).

Cheap by design (the machine is shared): timm's model is built once, given random weights
and batch-norm statistics by tests/test_zoo.py's `randomise`, and compared on a batch of two
at 3x64x64 (DLA halves the size five times: 64 leaves its last stage 2x2).

HRNet-W18-small (specs/hrnet_w18_small.arch) is the second: four streams at their own
resolutions, named values that the fuse layers sum (upsampled or strided), in blocks of
several inputs and outputs. timm registers its head's incre modules (all four) before the
downsampling convolutions that run between them, so again only the place in the forward pass
pairs the tensors. Its smallest input is 29x29 (a stride-2 3x3 convolution rounds up, and
nearest upsampling needs the 1/4 stream to be 8x8), which leaves the 1/32 stream 1x1: batch
norm's statistics of a batch of two would then come from two values per channel, and the
logits exceed 1e7. At 3x64x64 that stream is 2x2 and the logits stay near 1.
"""

from pathlib import Path

import pytest

import archdsl
from archdsl.transfer import transfer_weights
from helpers import copy_in_order
from test_zoo import randomise

SPECS = Path(__file__).resolve().parent.parent / "specs"
SMALL_INPUT = (3, 64, 64)


def count(model):
    return (sum(p.numel() for p in model.parameters()), sum(b.numel() for b in model.buffers()))


def test_dla34_spec_checks_cleanly():
    net = archdsl.load(SPECS / "dla34.arch")
    assert not net.diagnostics, "\n".join(map(str, net.diagnostics))  # no error, no warning
    assert net.input_shape == (3, 224, 224)
    assert net.output_shape == (1000,)


def test_dla34_matches_timm():
    import timm  # a dev dependency (pyproject.toml): never skipped
    import torch

    with torch.device("meta"):                 # storage comes from `randomise`
        reference = timm.create_model("dla34", pretrained=False)
    full = archdsl.load(SPECS / "dla34.arch")
    assert (full.params, full.buffers) == count(reference) == (15_742_104, 15_525)

    net = archdsl.load(SPECS / "dla34.arch", input_shape=SMALL_INPUT)
    x = torch.randn(2, *SMALL_INPUT, generator=torch.Generator().manual_seed(1))
    reference = randomise(reference, x)
    with torch.device("meta"):
        ours = net.to_torch()
    ours.to_empty(device="cpu")
    transfer_weights(reference, ours)          # every parameter and buffer, by its place
    ours.eval()
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    assert expected.shape == got.shape == (2, 1000)
    assert expected.abs().max() > 1e-2         # a comparison that atol cannot make vacuous
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_hrnet_w18_small_spec_checks_cleanly():
    net = archdsl.load(SPECS / "hrnet_w18_small.arch")
    assert not net.diagnostics, "\n".join(map(str, net.diagnostics))  # no error, no warning
    assert net.input_shape == (3, 224, 224)
    assert net.output_shape == (1000,)
    # timm's smallest input, 29x29 (28x28 fails in the stage-2 fuse: 7x7 upsampled against 8x8)
    assert archdsl.load(SPECS / "hrnet_w18_small.arch", input_shape=(3, 29, 29)).output_shape \
        == (1000,)
    with pytest.raises(archdsl.SpecError) as raised:
        archdsl.load(SPECS / "hrnet_w18_small.arch", input_shape=(3, 28, 28))
    assert [d.code for d in raised.value.errors] == ["E-SHAPE"]


@pytest.mark.usefixtures("one_thread")  # many small convolutions: two threads only wait
def test_hrnet_w18_small_matches_timm():
    import timm
    import torch

    with torch.device("meta"):
        reference = timm.create_model("hrnet_w18_small", pretrained=False)
    full = archdsl.load(SPECS / "hrnet_w18_small.arch")
    assert (full.params, full.buffers) == count(reference) == (13_187_464, 24_123)

    net = archdsl.load(SPECS / "hrnet_w18_small.arch", input_shape=SMALL_INPUT)
    x = torch.randn(2, *SMALL_INPUT, generator=torch.Generator().manual_seed(1))
    reference = randomise(reference, x)
    with torch.device("meta"):
        ours = net.to_torch()
    ours.to_empty(device="cpu")
    transfer_weights(reference, ours)          # the head's incre and downsamp, by their place
    ours.eval()
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    assert expected.shape == got.shape == (2, 1000)
    assert expected.abs().max() > 1e-2
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def compare_with_timm(name: str, spec: str, counts: tuple, size: tuple, *, in_order=False,
                      scales=(), timm_args=None, spec_args=None):
    """The spec has timm's parameter and buffer counts and, at `size`, timm's outputs on random
    weights (`scales`: parameters whose names hold one of these words start near 1, as a
    layer scale that `randomise` would leave at 0.02 silences its branch)."""
    import timm  # a dev dependency (pyproject.toml): never skipped
    import torch

    with torch.device("meta"):                 # storage comes from `randomise`
        full_size = timm.create_model(name, pretrained=False)
        reference = timm.create_model(name, pretrained=False, **(timm_args or {}))
    full = archdsl.load(SPECS / spec)
    assert not full.diagnostics, "\n".join(map(str, full.diagnostics))
    assert (full.params, full.buffers) == count(full_size) == counts

    net = archdsl.load(SPECS / spec, input_shape=size, **(spec_args or {}))
    x = torch.randn(2, *size, generator=torch.Generator().manual_seed(1))
    reference = randomise(reference, x)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for key, p in reference.named_parameters():
            if any(word in key for word in scales):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
    with torch.device("meta"):
        ours = net.to_torch()
    ours.to_empty(device="cpu")
    (copy_in_order if in_order else transfer_weights)(reference, ours)
    ours.eval()
    with torch.no_grad():
        expected, got = reference.eval()(x), ours(x)
    assert expected.shape == got.shape == (2, 1000)
    assert expected.abs().max() > 1e-2         # a comparison that atol cannot make vacuous
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    return net


@pytest.mark.usefixtures("one_thread")
def test_poolformer_s12_matches_timm():
    """PoolFormer's token mixer is arithmetic on the running value (`- x` after the pool)."""
    net = compare_with_timm("poolformer_s12", "poolformer_s12.arch", (11_915_176, 0),
                            (3, 64, 64), in_order=True, scales=("layer_scale",))
    assert {"sub", "layerscale", "groupnorm"} <= {r["op"] for r in net.layers()}


@pytest.mark.usefixtures("one_thread")
def test_nf_resnet50_matches_timm():
    """No batch norm: weight-standardised convolutions (`wsconv`) with relu's gain, and each
    block's beta and alpha as arithmetic on the running value (`* b`, `* alpha + x`)."""
    net = compare_with_timm("nf_resnet50", "nf_resnet50.arch", (25_557_032, 0), SMALL_INPUT,
                            scales=("gain",))
    assert {"wsconv", "scalar", "add"} <= {r["op"] for r in net.layers()}


@pytest.mark.usefixtures("one_thread")
def test_mixer_b16_matches_timm():
    """Token mixing: `transpose`, a linear layer across the tokens, `transpose` back; the
    head's average over the tokens is `mean tokens`."""
    net = compare_with_timm("mixer_b16_224", "mixer_b16.arch", (59_880_472, 0), SMALL_INPUT,
                            timm_args={"img_size": 64}, spec_args={"patches": 16})
    assert {"transpose", "mean"} <= {r["op"] for r in net.layers()}
