"""Learner-mistake warnings: each fires on the mistake and stays quiet on the right idiom."""

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
