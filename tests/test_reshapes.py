"""Reshapes and channel surgery against torch: `transpose` (MLP-Mixer's token mixing),
`reshape`, MobileViT's `unfold` and `fold`, `slice`, `padchannels` (ReXNet), `split` by
`sizes=` or `ratio=` (Inception-NeXt) and `layerscale` on a sequence or a vector.

Each property case is spec text for `archdsl.loads` and, independently, a reference written
here with plain torch (timm's own lines for MobileViT's unfold and fold); archdsl's modules are
not used on the reference's side. Shapes, parameters and MACs (0: these kinds move values)
agree, the built module's outputs equal the reference's, and where the reference raises (or
archdsl is stricter on purpose: `Stricter`) archdsl reports an error on the layer's line.
Whole blocks are then checked against timm's MixerBlock, MobileVitBlock, InceptionDWConv2d and
ReXNet's LinearBottleneck, and one spec of every new kind goes through every path.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archdsl
from archdsl import SpecError
from archdsl.codegen import to_python
from archdsl.draw import to_dot
from archdsl.explain import explain, render_text
from helpers import assert_located_error, assert_onnx_matches

# The kinds whose torch twins are here rather than in tests/test_layers_vs_torch.py (their
# inputs include sequences, which that suite does not draw).
TWINNED_HERE = ("transpose", "reshape", "unfold", "fold", "slice", "padchannels")

SETTINGS = dict(deadline=None, max_examples=40,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny tensors, one thread


class Stricter(Exception):
    """torch would run this, archdsl refuses it on purpose with `code`."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def assert_agrees(shape: tuple, lines: list[str], reference, params: int = 0):
    """`input shape` and `lines` check as `reference` runs on a batch of 2: the same output
    shape, `params` parameters, 0 MACs, and the built module's outputs equal the reference's;
    where the reference raises, one error on the last line (the code of a Stricter)."""
    text = "input " + "x".join(map(str, shape)) + "\n" + "\n".join(lines) + "\n"
    x = torch.randn(2, *shape)
    try:
        expected = reference(x)
    except (Stricter, RuntimeError, ValueError, IndexError) as exc:
        with pytest.raises(SpecError) as info:
            archdsl.loads(text)
        (d,) = info.value.errors
        assert d.span.line == text.count("\n") and d.hint, (text, d)
        if isinstance(exc, Stricter):
            assert d.code == exc.code, (text, d)
        return None
    net = archdsl.loads(text)
    assert (net.output_shape, net.params, net.macs) == (tuple(expected.shape[1:]), params, 0), text
    with torch.no_grad():
        torch.testing.assert_close(net.to_torch().eval()(x), expected)
    return net


def tokens(x):
    """archdsl's `tokens`, as torchvision's ViT writes it."""
    return x.flatten(2).transpose(1, 2)


@st.composite
def inputs(draw, sequences: bool = True):
    """(input shape, the lines that make the value, the same in torch): a map, a vector or
    (`tokens` after a map) a sequence."""
    what = draw(st.sampled_from(["map", "vector"] + (["sequence"] * 2 if sequences else [])))
    if what == "vector":
        return (draw(st.integers(1, 24)),), [], lambda x: x
    shape = (draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    if what == "map":
        return shape, [], lambda x: x
    return shape, ["tokens"], tokens


def within(layer, before):
    """The reference of `before` then `layer`."""
    return lambda x: layer(before(x))


def test_every_kind_twinned_here_is_registered_and_exercised():
    from archdsl.layers import REGISTRY

    assert set(TWINNED_HERE) <= set(REGISTRY)
    assert set(TWINNED_HERE) <= {r["op"] for r in archdsl.loads(EVERY_KIND).layers()}


# ----------------------------------------------------------------------------- transpose, reshape


@settings(**SETTINGS)
@given(made=inputs())
def test_transpose_is_torchs_transpose_of_a_sequence(made):
    shape, before, run = made

    def reference(y):
        if y.dim() == 4:  # torch would swap C and H of a map: archdsl keeps maps channels-first
            raise Stricter("E-RANK")
        return y.transpose(1, 2)  # IndexError on a vector

    assert_agrees(shape, before + ["transpose"], within(reference, run))


@st.composite
def factors(draw, n: int):
    """1 to 3 whole numbers whose product is n."""
    out = []
    for _ in range(draw(st.integers(0, 2))):
        d = draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))
        out.append(d)
        n //= d
    return tuple(draw(st.permutations(out + [n])))


@settings(**SETTINGS)
@given(made=inputs(), data=st.data())
def test_reshape_is_torchs_reshape(made, data):
    shape, before, run = made
    n = math.prod(shape)
    out = data.draw(st.one_of(factors(n), st.lists(st.integers(1, 8), min_size=1,
                                                  max_size=3).map(tuple)))
    written = "x".join(map(str, out))
    line = data.draw(st.sampled_from([f"reshape {written}", f"reshape out={written}"]))
    assert_agrees(shape, before + [line], within(lambda y: y.reshape(2, *out), run))


def test_a_reshape_of_the_wrong_size_says_the_size_that_fits():
    assert_located_error("input 8x8x8\nreshape 4x64x64\n", "E-SHAPE",
                         "reshape 4x64x64 needs 16,384 values, but its input 8x8x8 holds 512",
                         "the sizes must multiply to 512")
    assert_located_error("input 8x8x8\nreshape 4x8x8\n", "E-SHAPE", "needs 256 values",
                         "`reshape 8x8x8` holds them all")
    assert_located_error("input 8\nreshape 2x2x2x1\n", "E-ARG-TYPE", "at most 3 sizes", "CxHxW")


# ----------------------------------------------------------------------------- unfold, fold


def timm_unfold(x, patch_h, patch_w):
    """timm's MobileVitBlock.forward from `# Unfold` to its (B·P, N, C) tensor, read as the
    (B, P·N, C) sequence it is in memory."""
    B, C, H, W = x.shape
    if H % patch_h or W % patch_w:
        raise Stricter("E-SHAPE")  # timm resizes the map first; archdsl asks for a size that fits
    num_patch_h, num_patch_w = H // patch_h, W // patch_w
    num_patches, patch_area = num_patch_h * num_patch_w, patch_h * patch_w
    x = x.reshape(B * C * num_patch_h, patch_h, num_patch_w, patch_w).transpose(1, 2)
    x = x.reshape(B, C, num_patches, patch_area).transpose(1, 3).reshape(
        B * patch_area, num_patches, -1)
    return x.reshape(B, patch_area * num_patches, C)


def timm_fold(x, patch_h, patch_w, num_patch_h, num_patch_w):
    """timm's MobileVitBlock.forward from `# Fold`, on the (B, P·N, C) sequence."""
    B, C = x.shape[0], x.shape[2]
    patch_area, num_patches = patch_h * patch_w, num_patch_h * num_patch_w
    x = x.contiguous().view(B, patch_area, num_patches, C)  # raises unless the tokens fit
    x = x.transpose(1, 3).reshape(B * C * num_patch_h, num_patch_w, patch_h, patch_w)
    return x.transpose(1, 2).reshape(B, C, num_patch_h * patch_h, num_patch_w * patch_w)


@settings(**SETTINGS)
@given(made=inputs(), patch=st.tuples(st.integers(1, 3), st.integers(1, 3)), data=st.data())
def test_unfold_is_timms_mobilevit_unfold(made, patch, data):
    shape, before, run = made
    written = data.draw(st.sampled_from([f"{patch[0]}x{patch[1]}", f"patch={patch[0]}x"
                                         f"{patch[1]}"] + (["", str(patch[0])]
                                                           if patch[0] == patch[1] else [])))
    patch = (2, 2) if written == "" else patch

    def reference(y):
        if y.dim() != 4:
            raise Stricter("E-RANK")
        return timm_unfold(y, *patch)

    assert_agrees(shape, before + [f"unfold {written}".strip()], within(reference, run))


@settings(**SETTINGS)
@given(c=st.integers(1, 4), patch=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       grid=st.tuples(st.integers(1, 4), st.integers(1, 4)), data=st.data())
def test_fold_is_timms_mobilevit_fold(c, patch, grid, data):
    """A sequence cut by `unfold`, or made by `tokens`, folded with or without a size (the
    wrong one too)."""
    h, w = patch[0] * grid[0], patch[1] * grid[1]
    cut = data.draw(st.booleans())
    shape = (c, h, w) if cut else (c, data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6)))
    size = data.draw(st.one_of(st.none(), st.just(grid), st.tuples(st.integers(1, 4),
                                                                     st.integers(1, 4))))
    words = f"fold {patch[0]}x{patch[1]}" + ("" if size is None else
                                             f" size={size[0] * patch[0]}x{size[1] * patch[1]}")
    before = [f"unfold {patch[0]}x{patch[1]}"] if cut else ["tokens"]

    def reference(x):
        y = timm_unfold(x, *patch) if cut else tokens(x)
        n = y.shape[1] // (patch[0] * patch[1])
        nh, nw = size or (math.isqrt(n),) * 2
        if size is None and nh * nw != n and y.shape[1] % (patch[0] * patch[1]) == 0:
            raise Stricter("E-SHAPE")  # no square: archdsl asks for the size
        return timm_fold(y, *patch, nh, nw)

    assert_agrees(shape, before + [words], reference)


def test_unfold_then_fold_gives_the_map_back():
    net = archdsl.loads("input 3x4x6\nunfold 2x3\nfold 2x3 size=4x6\n")
    x = torch.randn(2, 3, 4, 6)
    assert torch.equal(net.to_torch()(x), x)


# ----------------------------------------------------------------------------- channels


@settings(**SETTINGS)
@given(made=inputs(), start=st.integers(0, 8), end=st.one_of(st.none(), st.integers(0, 9)))
def test_slice_is_pythons_slice_of_the_first_axis(made, start, end):
    shape, before, run = made
    words = f"slice {start}" + ("" if end is None else f" {end}")

    def reference(y):
        c = y.shape[1]
        stop = c if end is None else end
        if start >= c or stop > c or stop <= start:  # Python would shorten it, or empty it
            raise Stricter("E-ARG-RANGE")
        return y[:, start:stop]

    assert_agrees(shape, before + [words], within(reference, run))


@settings(**SETTINGS)
@given(made=inputs(), zeros=st.integers(1, 4))
def test_padchannels_appends_zero_channels(made, zeros):
    shape, before, run = made

    def reference(y):
        if y.dim() == 3:
            raise Stricter("E-RANK")  # a sequence's first axis is its tokens
        return torch.cat([y, y.new_zeros(y.shape[0], zeros, *y.shape[2:])], dim=1)

    assert_agrees(shape, before + [f"padchannels {zeros}"], within(reference, run))


@settings(**SETTINGS)
@given(made=inputs(sequences=False), sizes=st.lists(st.integers(1, 5), min_size=1, max_size=4),
       index=st.integers(0, 4), ratio=st.booleans())
def test_split_by_sizes_or_ratio_is_torch_split(made, sizes, index, ratio):
    """`sizes=` is torch.split's; `ratio=` gives Inception-NeXt's split_indexes (int(C·r/Σr)
    after the first piece, which takes the rest)."""
    shape, before, run = made
    words = f"split {index} {'ratio' if ratio else 'sizes'}={'x'.join(map(str, sizes))}"

    def reference(y):
        c = y.shape[1]
        pieces = sizes
        if ratio:
            rest = [int(c * r / sum(sizes)) for r in sizes[1:]]
            pieces = [c - sum(rest)] + rest
            if 0 in pieces:
                raise Stricter("E-ARG-RANGE")  # torch.split would give an empty piece
        if index >= len(pieces):
            raise IndexError(index)
        return torch.split(y, pieces, dim=1)[index]  # RuntimeError unless they add up to C

    assert_agrees(shape, before + [words], within(reference, run))


def test_split_ratio_is_inception_nexts_split_indexes():
    for c in (16, 20, 24, 64, 96):
        gc = int(c * 0.125)
        net = archdsl.loads(f"input {c}x2x2\nconcat< split 0 ratio=5x1x1x1 | split 1 ratio=5x1x1x1"
                            " | split 2 ratio=5x1x1x1 | split 3 ratio=5x1x1x1 >\n")
        pieces = [net.graph.facts[f"concat1.branch{i}.split1"].shape[0] for i in (1, 2, 3, 4)]
        assert pieces == [c - 3 * gc, gc, gc, gc]


@settings(**SETTINGS)
@given(made=inputs(), init=st.sampled_from([None, 0.5, 1e-6]))
def test_layerscale_scales_each_channel_on_any_rank(made, init):
    """A map's C×1×1 scale (ConvNeXt's), C values over a sequence's last axis (timm's
    LayerScale), one per feature of a vector."""
    shape, before, run = made
    value = 1e-6 if init is None else init
    y = run(torch.zeros(1, *shape))
    channels = y.shape[1] if y.dim() == 4 else y.shape[-1]
    words = "layerscale" + ("" if init is None else f" {init:g}")
    net = assert_agrees(shape, before + [words], within(lambda t: t * value, run),
                        params=channels)
    (scale,) = net.to_torch().parameters()
    assert tuple(scale.shape) == ((channels, 1, 1) if y.dim() == 4 else (channels,))


# ----------------------------------------------------------------------------- timm's blocks


def randomised(module: nn.Module) -> nn.Module:
    """Every parameter and running statistic random, so that a mismatched tensor shows."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in [*module.named_parameters(), *module.named_buffers()]:
            if not t.is_floating_point():
                continue  # num_batches_tracked
            positive = "var" in name or (name.endswith("weight") and t.dim() == 1)  # norms
            t.copy_(torch.rand(t.shape, generator=g) + 0.5 if positive
                    else torch.randn(t.shape, generator=g) * 0.3)
    return module.eval()


def assert_twins(spec: str, twin: nn.Module, x: torch.Tensor, run=None):
    """The spec and timm's `twin` hold as many parameters, count the same MACs (torch's
    FlopCounterMode, halved) and compute the same after transfer_weights; `run` feeds the
    twin (default: the map itself)."""
    net = archdsl.loads(spec)
    twin = randomised(twin)
    run = run or twin
    assert net.params == sum(p.numel() for p in twin.parameters())
    ours = net.to_torch().eval()
    archdsl.transfer_weights(twin, ours)
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        expected = run(x)
    assert net.macs * x.shape[0] == flops.get_total_flops() // 2
    with torch.no_grad():
        torch.testing.assert_close(ours(x), expected, rtol=1e-4, atol=1e-5)


def test_a_mixer_block_is_timms_mixer_block():
    """MLP-Mixer's token mixing: `transpose; linear; gelu; linear; transpose`."""
    from timm.models.mlp_mixer import MixerBlock

    spec = ("input 16x2x3\ntokens\n"
            "residual< layernorm eps=1e-6; transpose; linear 8; gelu; linear 6; transpose >\n"
            "residual< layernorm eps=1e-6; linear 64; gelu; linear 16 >\n")
    twin = MixerBlock(16, 6)
    assert_twins(spec, twin, torch.randn(2, 16, 2, 3), run=lambda x: twin(tokens(x)))


def test_a_mobilevit_block_without_its_transformer_is_timms():
    """timm's MobileVitBlock with transformer_depth=0: the local convolutions, unfold, the
    norm over each pixel's token, fold, the projection and the fusion with the input."""
    from timm.models.mobilevit import MobileVitBlock

    spec = ("input 16x8x12\n"
            "concat< identity | conv 16 k3 p1 nobias; bn; relu; conv 24 k1 nobias\n"
            "        unfold 2; layernorm; fold 2 size=8x12; conv 16 k1 nobias; bn; relu >\n"
            "conv 16 k3 p1 nobias; bn; relu\n")
    twin = MobileVitBlock(16, 16, transformer_dim=24, transformer_depth=0, patch_size=2)
    assert_twins(spec, twin, torch.randn(2, 16, 8, 12))


@pytest.mark.parametrize("c", [16, 20])
def test_an_inception_depthwise_conv_is_timms(c):
    """Inception-NeXt's InceptionDWConv2d: split 5:1:1:1, three depthwise branches, concat."""
    from timm.models.inception_next import InceptionDWConv2d

    gc = int(c * 0.125)
    pieces = [f"split {i} ratio=5x1x1x1" for i in range(4)]
    spec = (f"input {c}x12x12\nconcat< {pieces[0]} | {pieces[1]}; conv {gc} k3 p1 g{gc} | "
            f"{pieces[2]}; conv {gc} k1x11 p0x5 g{gc} | "
            f"{pieces[3]}; conv {gc} k11x1 p5x0 g{gc} >\n")
    assert_twins(spec, InceptionDWConv2d(c), torch.randn(2, c, 12, 12))


def test_a_rexnet_bottleneck_adds_its_input_to_the_first_channels():
    """ReXNet's partial residual: the shortcut padded with zero channels."""
    from timm.models.rexnet import LinearBottleneck

    spec = ("input 16x6x6\nresidual< conv 16 k3 p1 g16 nobias; bn; relu6; conv 24 k1 nobias; bn "
            "| padchannels 8 >\n")
    assert_twins(spec, LinearBottleneck(16, 24, 1), torch.randn(2, 16, 6, 6))


# ----------------------------------------------------------------------------- mistakes


@pytest.mark.parametrize("text, code, fragment, hint", [
    ("input 8x4x4\ntranspose\n", "E-RANK", "its input is a 8x4x4 feature map", "layernorm2d"),
    ("input 8\ntranspose\n", "E-RANK", "a vector of 8 features", "before `token`"),
    ("input 8x6x6\nunfold 4\n", "E-SHAPE", "multiples of the patch, but the map is 6x6",
     "a patch that divides 6x6"),
    ("input 8x4x4\ntokens\nunfold 2\n", "E-RANK", "unfold needs a CxHxW feature map", None),
    ("input 8x4x4\nfold 2\n", "E-RANK", "fold puts a sequence back into a map", "`unfold`"),
    ("input 8x4x6\nunfold 2\nfold 2\n", "E-SHAPE", "cannot make a square of 6 patches",
     "size=HxW"),
    ("input 8x4x6\nunfold 2\nfold 3\n", "E-SHAPE", "whole patches of 9 tokens", "the patch"),
    ("input 8x4x6\nunfold 2\nfold 2 size=8x4\n", "E-SHAPE", "fold to 8x4", "= 6"),
    ("input 8x4x4\nslice 8\n", "E-ARG-RANGE", "starts at 8, but the input has 8 channels",
     "0 to 7"),
    ("input 8x4x4\nslice 2 9\n", "E-ARG-RANGE", "past the input's 8 channels", "at most at 8"),
    ("input 8x4x4\nslice 4 2\n", "E-ARG-RANGE", "takes nothing", "`slice 4 8`"),
    ("input 8x4x4\ntokens\nslice 0 17\n", "E-ARG-RANGE", "past the input's 16 tokens", None),
    ("input 8x4x4\ntokens\npadchannels 2\n", "E-RANK", "a sequence of 16 tokens", "`tokens`"),
    ("input 16x4x4\nsplit 0 sizes=8x4\n", "E-SHAPE", "add up to 12, but the input has 16",
     "add up to 16"),
    ("input 16x4x4\nsplit 4 sizes=8x4x4\n", "E-ARG-RANGE", "makes 3 pieces", "0 to 2"),
    ("input 4x4x4\nsplit 1 ratio=5x1x1x1\n", "E-ARG-RANGE", "leaves piece 1 with no channel",
     "at least 8 channels"),
    ("input 16x4x4\nsplit 0 4 sizes=8x8\n", "E-ARG-RANGE", "not both", "drop the chunk count"),
    ("input 16x4x4\nsplit 0 sizes=8x8 ratio=1x1\n", "E-ARG-RANGE", "not both", None),
    ("input 16x4x4\nsplit 0 sizes=8x0x8\n", "E-ARG-RANGE", "at least 1", None),
])
def test_mistakes_are_located_errors(text, code, fragment, hint):
    assert_located_error(text, code, fragment, hint)


def test_an_error_points_at_the_argument():
    with pytest.raises(SpecError) as info:
        archdsl.loads("input 16x4x4\nsplit 0 sizes=8x4\n")
    (d,) = info.value.errors
    assert (d.span.line, d.span.column) == (2, 9)


def test_permute_is_told_transpose():
    with pytest.raises(SpecError) as info:
        archdsl.loads("input 8x4x4\ntokens\npermute\n")
    assert "`transpose`" in info.value.errors[0].hint


# ----------------------------------------------------------------------------- every path

EVERY_KIND = """\
arch every
input 16x8x8
concat< split 0 ratio=5x1x1x1 | split 1 ratio=5x1x1x1; conv 2 k3 p1 g2 >
residual< conv 24 k1; bn; relu | padchannels 12 >
slice 4 20
unfold 2; layernorm; transpose; linear 8; gelu; linear 64; transpose; layerscale 0.5
fold 2
reshape 16x4x16
conv 8 k3 p1; relu
adaptiveavgpool 1; flatten; layerscale; linear 3
"""


def test_every_kind_is_explained_and_counted():
    net = archdsl.loads(EVERY_KIND)
    assert net.output_shape == (3,)
    explained = {e.op: e for e in explain(net)}
    for op in TWINNED_HERE + ("split", "layerscale"):
        assert explained[op].steps, op
    assert "Inception-NeXt" in render_text(list(explained.values()))
    rows = {r["name"]: r for r in net.layers()}
    assert rows["transpose1"]["rf"]["size"] == [8, 8]  # tokens mixed: the whole input
    assert rows["layerscale1"]["params"] == 16 and rows["layerscale2"]["params"] == 8


def test_every_kind_builds_and_trains_one_step():
    net = archdsl.loads(EVERY_KIND)
    torch.manual_seed(0)
    model = net.to_torch().train()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss = nn.functional.cross_entropy(model(torch.randn(4, 16, 8, 8)), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    assert all(p.grad.abs().sum() > 0 for p in model.parameters())  # every path carries one
    optimiser.step()
    assert not torch.equal(before["layerscale2.layer_scale"], model.layerscale2.layer_scale)


def test_every_kind_exports_to_python_that_imports_only_torch():
    net = archdsl.loads(EVERY_KIND)
    source = to_python(net)
    imports = {line.split()[1].split(".")[0] for line in source.splitlines()
               if line.startswith(("import ", "from "))}
    assert imports <= {"torch", "__future__"}, imports
    for cls in ("class ChannelSlice", "class PadChannels", "class PatchUnfold",
                "class TransposeTokens", "class PatchFold", "class Reshape", "class LayerScale"):
        assert cls in source, cls
    scope: dict = {}
    exec(compile(source, "every.py", "exec"), scope)
    torch.manual_seed(0)
    model, exported = net.to_torch().eval(), scope["Every"]().eval()
    exported.load_state_dict(model.state_dict())
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), exported(x))


def test_every_kind_exports_to_onnx(tmp_path):
    assert_onnx_matches(archdsl.loads(EVERY_KIND), torch.randn(1, 16, 8, 8),
                        tmp_path / "every.onnx")


def test_every_kind_draws_and_formats():
    from archdsl.fmt import format_text

    source = to_dot(archdsl.loads(EVERY_KIND).graph).source
    for label in ("split 1 of 5:1:1:1", "padchannels +12", "slice 4:20", "unfold 2×2 patches",
                  "transpose", "fold 2×2 patches", "reshape 16x4x16", "layerscale 0.5"):
        assert label in source, label
    assert format_text(EVERY_KIND) == EVERY_KIND
