"""Habits from other frameworks (PyTorch, Keras, Caffe) told the archdsl way, each hint with
the exact replacement: kinds' names, keywords, glued flags, positional orders, channels-last
input shapes, call syntax and spaced shapes; and what a sequence of tokens is called."""

import pytest

from archdsl.layers import REGISTRY
from archdsl.layers.habits import kinds_called
from archdsl.network import analyse


def diagnostics(body, input_line="input 3x32x32"):
    _, found = analyse(f"{input_line}\n{body}\n", "t.arch")
    return found


def only(body, input_line="input 3x32x32"):
    found = diagnostics(body, input_line)
    assert len(found) == 1, [(d.code, d.message, d.hint) for d in found]
    return found[0]


# -- names of kinds ------------------------------------------------------------------------

@pytest.mark.parametrize("written, hint", [
    ("batchnorm", "archdsl calls it `bn`"),
    ("batchnorm2d", "archdsl calls it `bn`"),
    ("BatchNorm", "archdsl calls it `bn`"),
    ("BatchNorm2d", "archdsl calls it `bn`"),
    ("BatchNormalization", "archdsl calls it `bn`"),
    ("dense 10", "archdsl calls it `linear`"),
    ("fc 10", "archdsl calls it `linear`"),
    ("Linear 10", "archdsl calls it `linear`"),
    ("InnerProduct 10", "archdsl calls it `linear`"),
    ("Conv2d 64", "archdsl calls it `conv`"),
    ("Convolution 64", "archdsl calls it `conv`"),
    ("MaxPool2d 2", "archdsl calls it `maxpool`"),
    ("MaxPooling2D 2", "archdsl calls it `maxpool`"),
    ("AvgPool2d 2", "archdsl calls it `avgpool`"),
    ("globalavgpool", "archdsl writes it `adaptiveavgpool 1`"),
    ("GlobalAveragePooling2D", "archdsl writes it `adaptiveavgpool 1; flatten`"),
    ("AdaptiveAvgPool2d 1", "archdsl calls it `adaptiveavgpool`"),
    ("pool 2", "archdsl says which one: `maxpool` or `avgpool`"),
    ("ReLU", "archdsl calls it `relu`"),
    ("Dropout 0.5", "archdsl calls it `dropout`"),
    ("SpatialDropout2D 0.1", "archdsl calls it `dropout2d`"),
    ("Flatten", "archdsl calls it `flatten`"),
    ("Swish", "archdsl calls it `silu`"),
    ("LocalResponseNorm 5", "archdsl calls it `lrn`"),
    ("Concatenate", "archdsl joins branches with a combinator: `concat< … | … >`"),
])
def test_another_frameworks_name_for_a_kind_is_told_archdsls(written, hint):
    d = only(written)
    assert (d.code, d.message, d.hint) == (
        "E-UNKNOWN-LAYER", f"unknown layer `{written.split()[0]}`", hint)


def test_a_name_of_no_kind_keeps_the_did_you_mean():
    assert only("convv 8 k3").hint == "did you mean `conv`?"
    assert only("warp 2").hint == "see `docs/language.md` for the layer kinds"


def test_the_names_are_data_beside_the_kinds():
    for kind in REGISTRY.values():
        for alias, implied in kind.aliases.items():
            assert alias not in REGISTRY, f"{kind.name}'s alias {alias} is a kind's own name"
            assert (kind, f"{kind.name} {implied}".strip()) in kinds_called(alias)


# -- keywords and glued flags --------------------------------------------------------------

@pytest.mark.parametrize("written, code, hint", [
    ("conv 64 stride2 k3", "E-UNKNOWN-NAME", "archdsl writes the stride as `s2`"),
    ("conv 64 k3 pad1", "E-UNKNOWN-NAME", "archdsl writes the padding as `p1`"),
    ("conv 64 k3 padding1", "E-UNKNOWN-NAME", "archdsl writes the padding as `p1`"),
    ("conv 64 kernel3", "E-UNKNOWN-NAME", "archdsl writes the kernel as `k3`"),
    ("conv 64 kernel_size=3", "E-UNKNOWN-ARG", "archdsl writes `kernel_size=3` as `k3`"),
    ("conv 64 k3 strides=2", "E-UNKNOWN-ARG", "archdsl writes `strides=2` as `s2`"),
    ("conv 64 k3 dilation_rate=2", "E-UNKNOWN-ARG", "archdsl writes `dilation_rate=2` as `d2`"),
    ("conv filters=64 k3", "E-UNKNOWN-ARG",
     "archdsl writes conv's out as a positional value: `conv 64 k3`"),
    ("conv k3 out_channels=64 p1", "E-UNKNOWN-ARG",
     "archdsl writes conv's out as a positional value: `conv 64 k3 p1`"),
    ("conv 64 k3 in_channels=3", "E-UNKNOWN-ARG",
     "archdsl infers `in_channels` from the layer before: leave it out (`conv 64 k3`)"),
    ("relu inplace=true", "E-UNKNOWN-ARG",
     "archdsl makes a layer work in place where that is safe: leave out `inplace=…` (`relu`)"),
    ("conv 64 k3 use_bias=false", "E-UNKNOWN-ARG", "archdsl writes `use_bias=false` as `nobias`"),
    ("conv 64 k3 bias=False", "E-ARG-TYPE",
     "archdsl writes true and false in lower case: `bias=false`, or the word `nobias`"),
    ("maxpool 3 s2 ceil_mode=True", "E-UNKNOWN-ARG", "archdsl writes `ceil_mode=True` as `ceil`"),
    ("maxpool kernel_size=2", "E-UNKNOWN-ARG",
     "archdsl writes maxpool's kernel as a positional value: `maxpool 2`"),
    ("maxpool pool_size=2 strides=2", "E-UNKNOWN-ARG",
     "archdsl writes maxpool's kernel as a positional value: `maxpool 2 strides=2`"),
    ("dropout rate=0.5", "E-UNKNOWN-ARG",
     "archdsl writes dropout's p as a positional value: `dropout 0.5`"),
    ("leakyrelu negative_slope=0.2", "E-UNKNOWN-ARG",
     "archdsl writes leakyrelu's slope as a positional value: `leakyrelu 0.2`"),
    ("bn epsilon=0.001", "E-UNKNOWN-ARG", "archdsl writes `epsilon=0.001` as `eps=0.001`"),
    ("bn num_features=3", "E-UNKNOWN-ARG",
     "archdsl infers `num_features` from the layer before: leave it out (`bn`)"),
])
def test_another_frameworks_argument_is_told_archdsls(written, code, hint):
    d = diagnostics(written)[0]
    assert (d.code, d.hint) == (code, hint)


def test_archdsls_own_keywords_need_no_hint():
    assert diagnostics("conv 64 kernel=3 padding=1 stride=2") == []
    assert diagnostics("conv 64 k=3 p=1 s=2") == []


def test_a_flag_written_in_another_case_or_with_a_name_of_no_argument_keeps_its_hint():
    assert diagnostics("conv 64 k3 frobnicate2")[0].hint.startswith("conv takes: out (positional)")


# -- positional orders ---------------------------------------------------------------------

def test_a_keras_style_kernel_is_told_it_is_a_flag():
    d = only("conv 64 3 p1")
    assert (d.code, d.message) == ("E-ARG-COUNT", "conv takes no more positional values")
    assert (d.span.column, d.span.end_column) == (9, 10)  # under `3`
    assert d.hint == "the kernel is a flag: `conv 64 k3 p1`"


def test_a_pytorch_style_input_size_is_left_out_and_every_other_word_kept():
    d = only("conv 3 64 k3")
    assert (d.span.column, d.span.end_column) == (6, 7)  # under `3`, not `64`
    assert d.hint == ("input sizes are inferred from the layer before and need not be written: "
                      "leave out `3` (`conv 64 k3`)")
    d = only("conv 3 64 3 2 p1 nobias")
    assert d.hint == ("input sizes are inferred from the layer before and need not be written, "
                      "and the kernel and the stride are flags: `conv 64 k3 s2 p1 nobias`")


def test_two_orders_that_fit_are_both_told():
    assert only("conv 3 64 3").hint == ("in the order of PyTorch's Conv2d: `conv 64 k3`; "
                                        "in the order of Keras's Conv2D: `conv 3 k64 s3`")


def test_pooling_in_pytorchs_order():
    assert only("maxpool 2 2").hint == "the stride is a flag: `maxpool 2 s2`"
    assert only("maxpool 3 2 1").hint == "the stride and the padding are flags: `maxpool 3 s2 p1`"
    assert only("lrn 5 0.0001 0.75 2").hint == (
        "`alpha`, `beta` and `k` are named: `lrn 5 alpha=0.0001 beta=0.75 k=2`")


def test_the_replacement_keeps_expressions_as_written():
    d = diagnostics("conv c*2  3 p1", "arch n(c=8)\ninput 3x32x32")[0]
    assert d.hint == "the kernel is a flag: `conv c*2 k3 p1`"


def test_a_value_no_order_fits_keeps_the_argument_list():
    assert only("dropout 0.5 0.5").hint.startswith("dropout takes: p (positional)")


# -- channels-last input -------------------------------------------------------------------

@pytest.mark.parametrize("shape, meant", [("32x32x3", "3x32x32"), ("28x28x1", "1x28x28"),
                                          ("224x224x4", "4x224x224")])
def test_a_channels_last_input_is_told_at_its_line(shape, meant):
    found = diagnostics("flatten", f"input {shape}")
    (d,) = [d for d in found if d.code == "W-CHANNELS-LAST"]
    h, w, c = shape.split("x")
    assert (d.severity, d.span.line, d.span.column) == ("warning", 1, 1)
    assert d.message == (f"input {shape} reads as {h} channels of {w}x{c}: archdsl is "
                         "channels-first (CxHxW)")
    assert d.hint == (f"for {c} channel{'s' if c != '1' else ''} of {h}x{w}, "
                      f"write `input {meant}`")


def test_the_channels_last_warning_comes_before_the_error_it_leads_to():
    found = diagnostics("conv 8 k3\nmaxpool 2x2", "input 32x32x3")
    assert [d.code for d in found] == ["W-CHANNELS-LAST", "E-EMPTY"]


@pytest.mark.parametrize("shape", ["3x32x32", "8x4x4", "64x8x8", "16x16x16", "4x32x32"])
def test_a_channels_first_input_is_not_told(shape):
    assert diagnostics("flatten", f"input {shape}") == []


# -- syntax of other languages -------------------------------------------------------------

def test_a_shape_with_spaces_is_told_to_lose_them():
    d = only("relu", "input 3 x 32 x 32")
    assert (d.code, d.message, d.span.column) == ("E-SYNTAX", "unexpected `x`", 9)
    assert d.hint == "shapes are written without spaces: `input 3x32x32`"
    assert only("relu", "input 3 x32x32").hint == d.hint


def test_a_layer_called_like_a_function_is_told_to_lose_the_parentheses():
    d = only("conv(64 k=3 p=1)")
    assert (d.code, d.message) == ("E-SYNTAX", "unexpected `k`")
    assert d.hint == ("archdsl writes a layer without parentheses, its arguments after its name: "
                      "`conv 64 k3 p1`")
    hint = "archdsl writes a layer without parentheses, its arguments after its name: "
    assert only("conv(64, k=3, stride=2)").hint == hint + "`conv 64 k3 stride=2`"
    assert only("relu()").hint == hint + "`relu`"
    assert only("lrn(5 k=2)").hint == hint + "`lrn 5 k=2`"  # `k` is no flag of lrn
    assert only("conv 8, k3").hint == "arguments are separated by spaces, not commas"


# -- a sequence of tokens is not a vector --------------------------------------------------

def test_a_map_layer_on_tokens_says_it_takes_a_feature_map():
    d = only("conv 8 k4 s4\ntokens\nlayernorm2d")
    assert (d.code, d.span.line) == ("E-RANK", 4)
    assert d.message == ("layernorm2d needs a CxHxW feature map, but its input is a sequence of "
                         "64 tokens of 8 channels (64x8)")
    assert d.hint == "`layernorm2d` works on feature maps, before `tokens` turns one into a sequence"


def test_a_vector_layer_on_tokens_is_told_to_pick_a_token():
    from archdsl.layers.base import LayerError, need_vector

    with pytest.raises(LayerError) as err:
        need_vector("classifier", (64, 8))
    assert err.value.message == ("classifier needs a flat vector, but its input is a sequence of "
                                 "64 tokens of 8 channels (64x8)")
    assert err.value.hint == "pick one token first (`token 0`, the class token) before `classifier`"
