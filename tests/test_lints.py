"""Learner-mistake warnings: each fires on the mistake and stays quiet on the right idiom."""

import pytest

from archdsl import loads


def codes(text):
    return [d.code for d in loads(text, "t.arch").warnings]


def test_stacked_linear_maps():
    assert codes("input 3x8x8\nconv 8 k3 p1; conv 8 k3 p1; relu\n") == ["W-NO-NONLINEARITY"]
    assert codes("input 3x8x8\nconv 8 k3 p1; bn; dropout 0.1; conv 8 k3 p1; relu\n") == \
        ["W-BIAS-BEFORE-BN", "W-NO-NONLINEARITY"]
    assert codes("input 100\nlinear 50; linear 50; relu; linear 10\n") == ["W-NO-NONLINEARITY"]
    # an activation or a max between them, or a gate: fine
    assert codes("input 3x8x8\nconv 8 k3 p1; relu; conv 8 k3 p1; relu\n") == []
    assert codes("input 3x8x8\nconv 8 k3 p1; maxpool 2; conv 8 k3 p1; relu\n") == []


def test_linear_bottleneck_is_deliberate():
    # MobileNetV2 projects to a narrower width with no activation, then expands again.
    assert codes("input 96x8x8\nconv 24 k1 nobias; bn; conv 144 k1 nobias; bn; relu6\n") == []
    # MobileNetV3-small's first block projects 16 -> 16 (1x1, no activation), then the next
    # block expands to 72: torchvision's own network, not a mistake
    assert codes("input 16x8x8\nconv 16 k1 nobias; bn; conv 72 k1 nobias; bn; relu\n") == []
    # the same widths with a 3x3 kernel, or a narrowing after it, are still two linear maps
    assert codes("input 16x8x8\nconv 16 k3 p1 nobias; bn; conv 72 k1 nobias; bn; relu\n") == \
        ["W-NO-NONLINEARITY"]
    assert codes("input 16x8x8\nconv 16 k1 nobias; bn; conv 8 k1 nobias; bn; relu\n") == \
        ["W-NO-NONLINEARITY"]


def test_depthwise_separable_factorisation_is_deliberate():
    # ShuffleNetV2's branch: a depthwise 3x3 with no activation, then a 1x1 (torchvision's)
    assert codes("input 16x8x8\nconv 16 k3 p1 g=16 nobias; bn; conv 16 k1 nobias; bn; relu\n") \
        == []
    # ConvNeXt's depthwise 7x7 read by a per-position linear layer is the same design
    assert codes("input 16x8x8\nconv 16 k7 p3 g=16; layernorm2d; pointwise 64; gelu\n") == []
    # a grouped (not depthwise) 3x3, or a depthwise one read by a 3x3, is still one linear map
    assert codes("input 16x8x8\nconv 16 k3 p1 g=4 nobias; bn; conv 16 k1 nobias; bn; relu\n") \
        == ["W-NO-NONLINEARITY"]
    assert codes("input 16x8x8\nconv 16 k3 p1 g=16 nobias; bn; conv 16 k3 p1 nobias; bn; "
                 "relu\n") == ["W-NO-NONLINEARITY"]


def test_a_1x1_read_by_a_depthwise_conv_is_the_same_factorisation():
    # a light conv block: 1x1, then depthwise 3x3, no activation between (the depthwise-
    # separable pair in the other order): exempt as the depthwise-then-1x1 order is
    assert codes("input 16x8x8\nconv 16 k1 nobias; bn; conv 16 k3 p1 g=16 nobias; bn; relu\n") \
        == []
    assert codes("input 16x8x8\nconv 32 k1; conv 32 k5 p2 g=32; relu\n") == []
    # a 3x3 read by a depthwise 3x3, or a 1x1 read by a grouped 3x3, is still one linear map
    assert codes("input 16x8x8\nconv 16 k3 p1 nobias; bn; conv 16 k3 p1 g=16 nobias; bn; "
                 "relu\n") == ["W-NO-NONLINEARITY"]
    assert codes("input 16x8x8\nconv 16 k1 nobias; bn; conv 16 k3 p1 g=4 nobias; bn; relu\n") \
        == ["W-NO-NONLINEARITY"]


def test_an_output_read_by_another_path_is_no_mere_intermediate():
    # MaxViT: the stem's last conv feeds an MBConv's shortcut and its pre-normed body
    assert codes("input 8x8x8\nconv 8 k3 p1\nresidual< bn; conv 32 k1; gelu; conv 8 k1 >\n"
                 "relu\n") == []
    # the same body without the shortcut reads the conv alone
    assert codes("input 8x8x8\nconv 8 k3 p1 nobias\nbn; conv 32 k1; gelu; conv 8 k1\nrelu\n") \
        == ["W-NO-NONLINEARITY"]


def test_activation_after_the_classifier():
    assert codes("input 8\nlinear 10; relu\n") == ["W-FINAL-ACTIVATION"]
    assert codes("input 8\nlinear 10; sigmoid; dropout 0.1\n") == ["W-FINAL-ACTIVATION"]
    assert codes("input 8\nlinear 10\n") == []
    # a feature extractor ending in relu is not a classifier
    assert codes("input 3x8x8\nconv 8 k3; relu\n") == []


def test_softmax_before_cross_entropy():
    assert codes("input 8\nlinear 10; softmax\n") == ["W-SOFTMAX-LOSS"]
    assert codes("input 8\nlinear 10; logsoftmax\n") == []


def test_bias_before_batch_norm_unless_written_on_purpose():
    assert codes("input 3x8x8\nconv 8 k3 p1; bn; relu\n") == ["W-BIAS-BEFORE-BN"]
    assert codes("input 3x8x8\nconv 8 k3 p1 nobias; bn; relu\n") == []
    assert codes("input 3x8x8\nconv 8 k3 p1 bias=true; bn; relu\n") == []  # torchvision's VGG-bn


def test_stride_that_drops_rows():
    assert codes("input 3x10x10\nconv 8 k3 s2; relu\n") == ["W-STRIDE-DROP"]
    (w,) = loads("input 3x10x10\nconv 8 k3 s2; relu\n").warnings
    assert "last 1 row of" in w.message
    # the unread row is padding, not data (ResNet's stem): fine
    assert codes("input 3x224x224\nconv 8 k7 s2 p3 nobias; bn; relu; maxpool 3 s2 p1\n") == []
    # ceil mode reads it; a strided 1x1 projection skips rows by design
    assert codes("input 3x10x10\nmaxpool 3 s2 ceil\n") == []
    assert codes("input 3x9x9\nconv 8 k1 s2; relu\n") == []


def test_deep_plain_stack():
    plain = "input 3x8x8\nrepeat {n} {{ conv 8 k3 p1; relu }}\n"
    assert codes(plain.format(n=20)) == []  # VGG-19's depth still trains
    assert codes(plain.format(n=21)) == ["W-DEEP-PLAIN"]
    assert codes("input 3x8x8\nrepeat 30 { conv 8 k3 p1 nobias; bn; relu }\n") == []
    assert codes("input 8x8x8\nrepeat 30 { residual< conv 8 k3 p1; relu > }\n") == []


def test_a_statement_in_a_repeat_warns_once():
    assert codes("input 3x8x8\nrepeat 5 { conv 8 k3 p1; bn; relu }\n") == ["W-BIAS-BEFORE-BN"]


# A block's body that computes something nonlinear and ends in a projection, read by the next
# block's first layer: EfficientNet-B1's second block (no expansion) starts with a depthwise conv.
MBCONV1 = """block mb(c) {
  conv c k3 p1 g=c nobias; bn; silu
  conv c k1 nobias; bn
}
input 32x8x8
mb 32; residual< mb 32 >; relu
"""


def test_a_linear_bottleneck_between_blocks_is_deliberate():
    assert codes(MBCONV1) == []
    # written without the blocks, the 1x1 read by the depthwise conv is the separable
    # factorisation the other way round (silent); with a grouped, not depthwise, 3x3 it warns
    flat = "input 32x8x8\nconv 32 k1 nobias; bn; conv 32 k3 p1 g={} nobias; bn; silu\n"
    assert codes(flat.format(32)) == []
    assert codes(flat.format(4)) == ["W-NO-NONLINEARITY"]
    # a block of weighted layers alone ends in no design: stacking it still warns
    assert codes("block two(c) { conv c k3 p1 }\ninput 3x8x8\ntwo 8; two 8; relu\n") == \
        ["W-NO-NONLINEARITY"]


def test_the_efficientnets_and_mobilenets_are_silent():
    from pathlib import Path

    from archdsl import load

    specs = Path(__file__).resolve().parent.parent / "specs"
    for name, params in [("efficientnet", {"depth": 1.1}), ("efficientnet", {"width": 2.0,
                         "depth": 3.1}), ("mobilenet_v3_small", {}), ("mobilenet_v3_large", {}),
                         ("efficientnet_v2", {}), ("mnasnet", {})]:
        assert load(specs / f"{name}.arch", **params).warnings == [], name


def test_a_warning_names_the_call_it_came_through():
    # only the second call stacks two convs: the note is on that call, not the first
    text = ("block b(c, act=relu) {\n  conv c k3 p1; act\n}\ninput 3x8x8\n"
            "conv 8 k1; relu\nb 8\nb 8 act=identity\nb 8\n")
    (d,) = loads(text, "t.arch").warnings
    assert d.code == "W-NO-NONLINEARITY" and d.span.line == 2
    assert [(n.span.line, n.message) for n in d.notes] == [(8, "in block `b`, called here")]


def test_stride_drop_says_row_for_one():
    (d,) = loads("input 3x10x10\nconv 8 k3 s2; relu\n", "t.arch").warnings
    assert "skips the last 1 row of" in d.message
    (d,) = loads("input 3x11x11\nconv 8 k5 s4; relu\n", "t.arch").warnings
    assert "skips the last 2 rows of" in d.message


@pytest.mark.parametrize("text", [
    "input 3x8x8\ntokens\nlinear 12\nattention 2\ntoken 0; linear 2\n",
    "input 16x8x8\nconv 16 k1\nwindowattention 2 window=4\nflatten; linear 2\n",
    "input 16x8x8\nconv 16 k1\npartitionattention window size=4 head_dim=8\nflatten; linear 2\n",
    "input 16x8x8\nconv 16 k1\nmlp 32\nflatten; linear 2\n",
])
def test_a_weighted_layer_that_is_no_linear_map_is_not_one_of_a_pair(text):
    """Issue 26, item 17: W-NO-NONLINEARITY said `attention` after `linear` made "a single
    linear map"; attention (softmax), window attention and an MLP (GELU) are not linear."""
    assert "W-NO-NONLINEARITY" not in codes(text)


def test_a_linear_layer_in_attentions_place_still_warns():
    assert "W-NO-NONLINEARITY" in codes("input 3x8x8\ntokens\nlinear 12\nlinear 12\n"
                                        "token 0; linear 2\n")


def test_squeezenets_stem_drops_a_row_and_its_ceil_pools_do_not():
    # a real finding on torchvision's layout: the unpadded stride-2 stem reads 223 of 224 rows
    # (torchvision's gradient on row 223 is zero); the ceil_mode max pools after it lose nothing
    from pathlib import Path

    from archdsl import load

    root = Path(__file__).resolve().parent.parent
    for name, line in (("squeezenet1_0", 14), ("squeezenet1_1", 11)):
        (d,) = load(root / "specs" / f"{name}.arch").warnings
        assert (d.code, d.span.line, d.span.column) == ("W-STRIDE-DROP", line, 1)
        assert d.message == "stride 2 skips the last 1 row of the 3x224x224 input"
    assert codes("input 3x224x224\nconv 8 k3 s2\nrelu\nmaxpool 3 s2 ceil\n") == ["W-STRIDE-DROP"]
    assert codes("input 3x227x227\nconv 8 k3 s2\nrelu\nmaxpool 3 s2 ceil\n") == []  # the paper's
    # and the language reference says so instead of claiming no spec warns
    doc = (root / "docs" / "language.md").read_text(encoding="utf-8")
    assert "squeezenet1_0.arch and squeezenet1_1.arch" in doc
    assert "Each lint fires on none of" not in doc
