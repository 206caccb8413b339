"""Swin Transformer's and MaxViT's layers against torchvision's own code: `windowattention`
against shifted_window_attention / ShiftedWindowAttention(V2) and whole SwinTransformerBlock(V2)s,
`patchmerging` against PatchMerging(V2), `mlp` against torchvision.ops.MLP, and
`partitionattention` against MaxViT's PartitionAttentionLayer.

torchvision works on channels-last (B, H, W, C) tensors and archdsl on CxHxW maps: the twins
are fed `x.permute(0, 2, 3, 1)` and their outputs permuted back. Shapes, parameters, buffers
and outputs (after `transfer_weights`) agree, and MACs equal the multiply-adds torch's
FlopCounterMode counts on torchvision's module, which is how torchvision's published GFLOPS
were counted.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import maxvit as tv_maxvit
from torchvision.models import swin_transformer as tv_swin
from torchvision.ops.misc import MLP

import archdsl
from helpers import assert_located_error
from archdsl.codegen import to_python
from archdsl.draw import to_dot

# The kinds whose torch twins are here rather than in tests/test_layers_vs_torch.py (their
# twins are torchvision's own channels-last modules, with weights to transfer).
TWINNED_HERE = ("windowattention", "patchmerging", "mlp", "partitionattention")

SETTINGS = dict(deadline=None, max_examples=25,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny tensors, one thread


def randomised(module: nn.Module) -> nn.Module:
    """Every parameter random and well away from zero (biases, layer norms, bias tables), so a
    mismatched tensor shows; buffers (position indices) kept."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in module.named_parameters():
            scale = 0.5 if p.dim() > 1 else 0.2
            p.copy_(torch.randn(p.shape, generator=g) * scale + (1.0 if "norm" in name else 0.0))
    return module.eval()


def channels_last(module: nn.Module):
    """torchvision's (B, H, W, C) module as a function on (B, C, H, W) maps."""
    return lambda x: module(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def assert_twins(spec: str, twin: nn.Module, x: torch.Tensor, *, flops_twin=None):
    """The spec and torchvision's `twin` hold the same tensors, compute the same outputs after
    transfer_weights and count the same MACs (FlopCounterMode's, halved)."""
    net = archdsl.loads(spec)
    twin = randomised(twin)
    assert net.params == sum(p.numel() for p in twin.parameters())
    assert net.buffers == sum(b.numel() for b in twin.buffers())
    ours = net.to_torch().eval()
    archdsl.transfer_weights(twin, ours)
    run = flops_twin or channels_last(twin)
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        run(x[:1])  # MACs are per sample (v2's position bias MLP runs once per batch)
    assert net.macs == flops.get_total_flops() // 2
    with torch.no_grad():
        expected = run(x)
    assert tuple(expected.shape[1:]) == net.output_shape
    with torch.no_grad():
        torch.testing.assert_close(ours(x), expected, rtol=1e-4, atol=1e-5)
    return net


def test_every_kind_twinned_here_is_registered_and_exercised():
    from archdsl.layers import REGISTRY

    assert set(TWINNED_HERE) <= set(REGISTRY)
    ops = {r["op"] for r in archdsl.loads(
        "input 8x14x14\nwindowattention 2\nmlp 16 postnorm\npatchmerging\n"
        "partitionattention grid size=7 head_dim=4\n").layers()}
    assert set(TWINNED_HERE) <= ops


# ------------------------------------------------------------------------ window attention


@st.composite
def window_cases(draw):
    heads = draw(st.integers(1, 3))
    c = heads * draw(st.integers(1, 3))
    window = (draw(st.integers(2, 4)), draw(st.integers(2, 4)))
    shift = tuple(draw(st.integers(0, w - 1)) for w in window)
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    return c, h, w, heads, window, shift, draw(st.booleans())


@settings(**SETTINGS)
@given(case=window_cases())
def test_window_attention_is_torchvisions_shifted_window_attention(case):
    """Any map (padded to whole windows), any shift (with torchvision's mask, dropped when the
    window covers the padded map), v1 and v2."""
    c, h, w, heads, window, shift, cosine = case
    cls = tv_swin.ShiftedWindowAttentionV2 if cosine else tv_swin.ShiftedWindowAttention
    twin = cls(c, list(window), list(shift), heads)
    spec = (f"input {c}x{h}x{w}\nwindowattention {heads} window={window[0]}x{window[1]} "
            f"shift={shift[0]}x{shift[1]}{' cosine' if cosine else ''}\n")
    assert_twins(spec, twin, torch.randn(2, c, h, w))


def test_window_attention_calls_match_the_functional_form():
    """The module's result is torchvision's shifted_window_attention on the same tensors."""
    net = archdsl.loads("input 6x10x9\nwindowattention 3 window=4 shift=2\n")
    model = randomised(net.to_torch())
    (attn,) = [m for m in model.modules() if type(m).__name__ == "ShiftedWindowAttention"]
    x = torch.randn(2, 6, 10, 9)
    with torch.no_grad():
        expected = tv_swin.shifted_window_attention(
            x.permute(0, 2, 3, 1), attn.qkv.weight, attn.proj.weight, attn.position_bias(),
            [4, 4], 3, [2, 2], qkv_bias=attn.qkv.bias, proj_bias=attn.proj.bias,
            training=False)
        torch.testing.assert_close(model(x), expected.permute(0, 3, 1, 2))


def test_window_attention_registers_torchvisions_tensors_in_its_order():
    for cosine, cls in ((False, tv_swin.ShiftedWindowAttention),
                        (True, tv_swin.ShiftedWindowAttentionV2)):
        model = archdsl.loads(f"input 8x7x7\nwindowattention 2 shift=3"
                              f"{' cosine' if cosine else ''}\n").to_torch()
        ours = [(k.split(".", 1)[1], tuple(v.shape)) for k, v in model.state_dict().items()]
        theirs = [(k, tuple(v.shape)) for k, v in cls(8, [7, 7], [3, 3], 2).state_dict().items()]
        assert ours == theirs
        index = dict(model.named_buffers())["windowattention1.relative_position_index"]
        assert torch.equal(index, cls(8, [7, 7], [3, 3], 2).relative_position_index)


def test_the_shift_mask_keeps_rolled_regions_apart():
    """With a shift, a position's output ignores positions the roll brought from the other
    side of the map: changing the map's last row leaves the first row alone (window 4 over an
    8x8 map, shift 2). Without the shift, the windows still cut the map in aligned blocks."""
    model = randomised(archdsl.loads("input 4x8x8\nwindowattention 1 window=4 shift=2\n")
                       .to_torch())
    x = torch.randn(1, 4, 8, 8)
    y = x.clone()
    y[:, :, 7] += 1.0
    with torch.no_grad():
        a, b = model(x), model(y)
    assert torch.equal(a[:, :, 0], b[:, :, 0])       # the mask held
    assert not torch.equal(a[:, :, 6], b[:, :, 6])   # its own window did see it


@pytest.mark.parametrize("v2", [False, True])
def test_a_spec_block_is_torchvisions_swin_transformer_block(v2):
    block = tv_swin.SwinTransformerBlockV2 if v2 else tv_swin.SwinTransformerBlock
    twin = block(16, 4, [4, 4], [2, 2], stochastic_depth_prob=0.0)
    if v2:
        body = ("residual< windowattention 4 window=4 shift=2 cosine postnorm >\n"
                "residual< mlp 64 postnorm >\n")
    else:
        body = ("residual< layernorm2d; windowattention 4 window=4 shift=2 >\n"
                "residual< layernorm2d; pointwise 64; gelu; pointwise 16 >\n")
    assert_twins("input 16x10x11\n" + body, twin, torch.randn(2, 16, 10, 11))


# ------------------------------------------------------------------------ patch merging, MLP


@settings(**SETTINGS)
@given(c=st.integers(1, 8), h=st.integers(1, 9), w=st.integers(1, 9), v2=st.booleans())
def test_patch_merging_is_torchvisions(c, h, w, v2):
    """Odd sides are padded by one, as torchvision pads them."""
    twin = (tv_swin.PatchMergingV2 if v2 else tv_swin.PatchMerging)(c)
    net = assert_twins(f"input {c}x{h}x{w}\npatchmerging{' postnorm' if v2 else ''}\n", twin,
                       torch.randn(2, c, h, w))
    assert net.output_shape == (2 * c, (h + 1) // 2, (w + 1) // 2)


@settings(**SETTINGS)
@given(c=st.integers(1, 8), hidden=st.integers(1, 16), h=st.integers(1, 5),
       w=st.integers(1, 5), postnorm=st.booleans())
def test_mlp_is_torchvisions_mlp(c, hidden, h, w, postnorm):
    mlp = MLP(c, [hidden, c], activation_layer=nn.GELU, inplace=None)
    twin = nn.Sequential(nn.LayerNorm(c), mlp) if postnorm else mlp

    def run(x):
        y = mlp(x.permute(0, 2, 3, 1))
        return (twin[0](y) if postnorm else y).permute(0, 3, 1, 2)

    assert_twins(f"input {c}x{h}x{w}\nmlp {hidden}{' postnorm' if postnorm else ''}\n", twin,
                 torch.randn(2, c, h, w), flops_twin=run)


# ------------------------------------------------------------------------ MaxViT


@pytest.mark.parametrize("partition", ["window", "grid"])
@pytest.mark.parametrize("size, side", [(2, 4), (3, 6), (2, 2)])
def test_partition_attention_is_maxvits_partition_attention_layer(partition, size, side):
    """The spec of one PartitionAttentionLayer: attention with the norms, MLP and residuals
    that MaxViT puts around it, which act per position."""
    c = 8
    twin = tv_maxvit.PartitionAttentionLayer(
        c, 4, size, partition, (side, side), 4, nn.GELU, nn.LayerNorm, 0.0, 0.0, 0.0)
    spec = (f"input {c}x{side}x{side}\n"
            f"residual< layernorm2d; partitionattention {partition} size={size} head_dim=4 >\n"
            f"residual< layernorm2d; pointwise {4 * c}; gelu; pointwise {c} >\n")
    assert_twins(spec, twin, torch.randn(2, c, side, side), flops_twin=randomised(twin))


def test_grid_attention_reaches_across_the_map_and_window_attention_does_not():
    """On a 4x4 map with size 2, position (0, 0) shares a grid with (2, 2) (a 2x2 grid of
    positions 2 apart: a field of 3), but not a window (2x2 blocks: a field of 2)."""
    for partition, rf in (("window", [2, 2]), ("grid", [3, 3])):
        net = archdsl.loads(f"input 4x4x4\npartitionattention {partition} size=2 head_dim=2\n")
        assert net.layers()[0]["rf"]["size"] == rf
        model = randomised(net.to_torch())
        x = torch.randn(1, 4, 4, 4)
        y = x.clone()
        y[:, :, 2, 2] += 1.0
        with torch.no_grad():
            changed = not torch.equal(model(x)[:, :, 0, 0], model(y)[:, :, 0, 0])
        assert changed == (partition == "grid")


# ------------------------------------------------------------------------ checks, drawing, export


@pytest.mark.parametrize("text, code, fragment, hint", [
    ("input 6x8x8\nwindowattention 4\n", "E-GROUPS", "4 heads do not divide the 6 channels",
     "must divide"),
    ("input 6x8x8\nwindowattention 2 window=4 shift=4\n", "E-ARG-RANGE",
     "a shift of 4 is not smaller than the window of 4", "window // 2"),
    ("input 6x8x8\nwindowattention 2 window=1 cosine\n", "E-ARG-RANGE",
     "cosine window attention needs a window of at least 2x2", None),
    ("input 8x4x4\ntokens\nwindowattention 2\n", "E-RANK", "windowattention needs a CxHxW "
     "feature map", None),
    ("input 8x4x4\ntokens\npatchmerging\n", "E-RANK", "patchmerging needs a CxHxW", None),
    ("input 8x12x12\npartitionattention size=5 head_dim=4\n", "E-SHAPE",
     "the 12x12 map is not divisible into partitions of 5x5", "multiple of the partition"),
    ("input 8x12x6\npartitionattention grid size=3 head_dim=4\n", "E-SHAPE",
     "grid attention needs a square map, not 12x6", "square"),
    ("input 8x12x12\npartitionattention head_dim=3 size=3\n", "E-GROUPS",
     "a head dimension of 3 does not divide the 8 channels", None),
])
def test_mistakes_are_located_errors(text, code, fragment, hint):
    assert_located_error(text, code, fragment, hint)


def test_receptive_field_grows_by_the_window_and_patch_merging_halves():
    net = archdsl.loads("input 8x16x16\nwindowattention 2 window=4\npatchmerging\n"
                        "windowattention 4 window=4\nwindowattention 4 window=16\n")
    assert [r["rf"] for r in net.layers()] == [
        {"size": [4, 4], "stride": [1, 1]},      # a position sees its window
        {"size": [5, 5], "stride": [2, 2]},      # 2x2 patches at stride 2
        {"size": [11, 11], "stride": [2, 2]},    # a window of 4 on the 8x8 map
        {"size": [25, 25], "stride": [2, 2]},    # a window larger than the map: the map
    ]


def test_draw_labels_the_window_layers():
    source = to_dot(archdsl.loads(
        "input 8x8x8\nwindowattention 2 window=4 shift=2\nwindowattention 2 window=4 cosine\n"
        "patchmerging postnorm\npartitionattention grid size=2 head_dim=8\n").graph).source
    for label in ("window attention 2 shift 2", "cosine window attention 2",
                  "patch merging (v2)", "grid attention 2"):
        assert label in source, label


def test_python_export_copies_the_modules_and_computes_the_same():
    net = archdsl.loads("arch tiny\ninput 8x9x9\nwindowattention 2 window=4 shift=2 cosine\n"
                        "mlp 16 postnorm\npatchmerging\npartitionattention grid size=5 "
                        "head_dim=8\n")
    source = to_python(net)
    for cls in ("class ShiftedWindowAttention", "class PointwiseMLP", "class PatchMerging",
                "class PartitionAttention"):
        assert cls in source, cls
    assert "archdsl" not in source.split('"""', 2)[-1].replace("archdsl check", "")
    scope: dict = {}
    exec(compile(source, "tiny.py", "exec"), scope)
    model, exported = randomised(net.to_torch()), scope["Tiny"]().eval()
    exported.load_state_dict(model.state_dict())
    x = torch.randn(2, 8, 9, 9)
    with torch.no_grad():
        assert torch.equal(model(x), exported(x))


def test_swin_modules_keep_the_map_channels_last_in_memory():
    """The permutes are views: a chain of Swin layers hands channels-last memory on, as
    torchvision's (B, H, W, C) tensors are, instead of copying back and forth."""
    model = archdsl.loads("input 8x8x8\nlayernorm2d\nwindowattention 2 window=4\n"
                          "mlp 16\n").to_torch().eval()
    with torch.no_grad():
        y = model(torch.randn(2, 8, 8, 8))
    assert y.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("spec, sets, params, buffers, macs", [
    ("swin.arch", {}, 28_288_354, 28_812, 4_490_566_656),
    ("swin.arch", {"d3": 18, "sd": 0.3}, 49_606_258, 57_624, 8_740_875_264),
    ("swin_v2.arch", {}, 28_351_570, 54_552, 5_939_690_496),
    ("maxvit.arch", {}, 30_919_624, 100_472, 5_558_046_720),
])
def test_zoo_counts_are_torchvisions(spec, sets, params, buffers, macs):
    """torchvision's num_params; the MACs are FlopCounterMode's on torchvision's model at the
    weights' size (4.491, 8.741, 5.940 and 5.558 published GFLOPS)."""
    net = archdsl.load(f"specs/{spec}", **sets)
    assert (net.params, net.buffers, net.macs) == (params, buffers, macs)
