"""Convolution and pooling variants, and softmax over an axis or across channel groups (issue
23): `wsconv` against timm's StdConv2d and ScaledStdConv2d; TensorFlow's `same` padding at any
stride (conv, wsconv, maxpool, avgpool) against timm's Conv2dSame, MaxPool2dSame and
AvgPool2dSame; `softmax` and `logsoftmax` with `dim=` and `groups=` against torch and timm's
RadixSoftmax; the receptive field through an adaptive pool that enlarges the map against the
gradient torch computes; and a network of all of them through every path (check, explain,
build, train, Python, ONNX, drawing).

Each property draws spec text and, independently, its twin (timm's module, or a plain torch
reference written here): shapes, parameters and MACs agree, values agree after copying the
twin's state dict (same tensor names), and archdsl refuses exactly where the twin raises.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from timm.layers.conv2d_same import Conv2dSame
from timm.layers.pool2d_same import AvgPool2dSame, MaxPool2dSame
from timm.layers.std_conv import ScaledStdConv2d, ScaledStdConv2dSame, StdConv2d, StdConv2dSame
from timm.layers.split_attn import RadixSoftmax
from torch import nn

import archdsl
from archdsl import SpecError
from archdsl.layers import REGISTRY
from helpers import assert_located_error, assert_onnx_matches, reference_macs

# The kinds whose torch twins are here rather than in tests/test_layers_vs_torch.py
TWINNED_HERE = ("wsconv", "softmax", "logsoftmax")

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                       HealthCheck.data_too_large])

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.usefixtures("one_thread")]  # conftest.py: tiny tensors, one thread


# ----------------------------------------------------------------------------- twins


def tf_same_pads(size: tuple, kernel, stride, dilation) -> list[int]:
    """TensorFlow's `same` padding, written out independently: F.pad's (left, right, top,
    bottom) for an (H, W) input."""
    pads = []
    for axis in (1, 0):
        i, k, s, d = size[axis], kernel[axis], stride[axis], dilation[axis]
        total = max((math.ceil(i / s) - 1) * s + d * (k - 1) + 1 - i, 0)
        pads += [total // 2, total - total // 2]
    return pads


class TFSamePad(nn.Module):
    """The padding alone, as the torch twin of a strided `same` window (any padding mode)."""

    def __init__(self, kernel, stride, dilation=(1, 1), mode: str = "zeros"):
        super().__init__()
        self.kernel, self.stride, self.dilation, self.mode = kernel, stride, dilation, mode

    def forward(self, x):
        pads = tf_same_pads(x.shape[-2:], self.kernel, self.stride, self.dilation)
        if self.mode == "zeros":
            return F.pad(x, pads)
        return F.pad(x, pads, mode=self.mode)


def tf_same_conv(c: int, out: int, kernel, stride, dilation=(1, 1), groups: int = 1,
                 bias: bool = True, mode: str = "zeros") -> nn.Module:
    """The torch twin of `conv … same` at a stride above 1: the padding, then nn.Conv2d."""
    pair = (lambda v: (v, v) if isinstance(v, int) else tuple(v))
    kernel, stride, dilation = pair(kernel), pair(stride), pair(dilation)
    return nn.Sequential(TFSamePad(kernel, stride, dilation, mode),
                         nn.Conv2d(c, out, kernel, stride, 0, dilation, groups, bias))


def the_layer(net) -> nn.Module:
    """The built module of a one-layer spec."""
    (module,) = [m for name, m in net.to_torch().named_children()]
    return module.eval()


def randomise(module: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5 + (1.0 if p.shape[1:] == (1, 1, 1)
                                                               else 0.0))
    return module.eval()


def assert_refused(text: str, exc: Exception) -> None:
    with pytest.raises(SpecError) as info:
        archdsl.loads(text)
    errors = [d for d in info.value.diagnostics if d.is_error]
    assert errors and errors[0].span.line == 2, (text, exc, errors)
    assert all(d.code.startswith("E-") and d.code != "E-INTERNAL" for d in errors)


def assert_twin(text: str, shape: tuple, make, *, load: bool = True, atol: float = 1e-5):
    """`text` (one layer on `shape`) and the twin `make()` agree: refused where the twin
    raises, else the same output shape, parameters and MACs, and (after copying the twin's
    state dict, strictly) the same values."""
    x = torch.randn(2, *shape)
    try:
        twin = randomise(make())
        expected, macs = reference_macs(twin, x)
    except (RuntimeError, ValueError, ZeroDivisionError) as exc:
        assert_refused(text, exc)
        return None
    net = archdsl.loads(text)
    assert net.output_shape == tuple(expected.shape[1:]), text
    assert net.params == sum(p.numel() for p in twin.parameters()), text
    assert net.macs == macs, text
    if load:  # the same tensor names, and the same values
        ours = the_layer(net)
        ours.load_state_dict(twin.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(ours(x), expected, rtol=1e-4, atol=atol)
    return net


def pairs(lo: int, hi: int):
    return st.one_of(st.integers(lo, hi).map(lambda v: (v, v)),
                     st.tuples(st.integers(lo, hi), st.integers(lo, hi)))


def dims(pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


# ----------------------------------------------------------------------------- wsconv


def test_every_kind_twinned_here_is_registered():
    assert set(TWINNED_HERE) <= set(REGISTRY)


@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_wsconv_agrees_with_timm(data):
    """wsconv against ScaledStdConv2d (with its gain) or StdConv2d (`nogain`), `same` at any
    stride against their *Same variants: refusals, shapes, parameters, MACs and values."""
    draw = data.draw
    c = draw(st.integers(1, 6), label="channels")
    shape = (c, draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    groups = draw(st.sampled_from([1, 1, 2, c]))
    out = draw(st.integers(1, 3)) * groups
    kernel, stride, dilation = draw(pairs(1, 4)), draw(pairs(1, 3)), draw(pairs(1, 2))
    padding = draw(st.one_of(st.just("same"), pairs(0, 2)))
    bias, gain = draw(st.booleans()), draw(st.booleans())
    gamma = draw(st.sampled_from([None, 1.7139588594436646])) if gain else None
    eps = draw(st.sampled_from([None, 1e-5, 1e-8]))
    words = [f"wsconv {out} k{dims(kernel)} s{dims(stride)} d{dims(dilation)} g{groups}",
             "same" if padding == "same" else f"p{dims(padding)}", "" if bias else "nobias",
             "" if gain else "nogain", "" if gamma is None else f"gamma={gamma!r}",
             "" if eps is None else f"eps={eps!r}"]
    text = "input " + "x".join(map(str, shape)) + "\n" + " ".join(w for w in words if w) + "\n"
    kwargs = dict(stride=stride, dilation=dilation, groups=groups, bias=bias,
                  eps=1e-6 if eps is None else eps,
                  **({"gamma": 1.0 if gamma is None else gamma} if gain else {}))
    if padding == "same":
        cls = ScaledStdConv2dSame if gain else StdConv2dSame
        make = (lambda: cls(c, out, kernel, padding="same", **kwargs))
    else:
        cls = ScaledStdConv2d if gain else StdConv2d
        make = (lambda: cls(c, out, kernel, padding=padding, **kwargs))
    net = assert_twin(text, shape, make, atol=1e-4)
    event("refused, as timm raises" if net is None else "agrees with timm")
    if net is not None:
        assert {n for n, _ in the_layer(net).named_parameters()} == \
            {"weight"} | ({"bias"} if bias else set()) | ({"gain"} if gain else set())


def standardised_conv(x, weight, bias, gain, gamma, eps, **conv):
    """Scaled weight standardisation written out in plain torch (NF-ResNets' formula)."""
    fan_in = weight[0].numel()
    mean = weight.mean(dim=(1, 2, 3), keepdim=True)
    var = weight.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
    w = (weight - mean) / torch.sqrt(var + eps)
    if gain is not None:
        w = w * gain * gamma / math.sqrt(fan_in)
    return F.conv2d(x, w, bias, **conv)


def test_wsconv_computes_the_formula_with_any_padding_mode():
    net = archdsl.loads("input 4x7x7\nwsconv 6 k3 p1 g2 reflect gamma=1.5 gain_init=0.5 "
                        "eps=1e-5\n")
    layer = randomise(the_layer(net))
    assert torch.equal(layer.gain.detach(), layer.gain.detach())  # (out, 1, 1, 1)
    assert layer.gain.shape == (6, 1, 1, 1) and net.params == 6 * 2 * 9 + 6 + 6
    x = torch.randn(2, 4, 7, 7)
    expected = standardised_conv(F.pad(x, (1, 1, 1, 1), mode="reflect"), layer.weight,
                                 layer.bias, layer.gain, 1.5, 1e-5, groups=2)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-5)
    fresh = the_layer(net)
    assert torch.all(fresh.gain == 0.5)  # gain_init


def test_wsconv_nf_resnet_stem_matches_timm():
    """The stem of timm's nf_resnet50 (a 7x7/2 ScaledStdConv2d, gamma for relu, eps 1e-5)."""
    gamma = 1.7139588594436646
    timm_conv = ScaledStdConv2d(3, 8, 7, stride=2, padding=3, gamma=gamma, eps=1e-5)
    net = assert_twin(f"input 3x16x16\nwsconv 8 k7 s2 p3 gamma={gamma!r} eps=1e-5\n",
                      (3, 16, 16), lambda: timm_conv)
    assert net.output_shape == (8, 8, 8)


@pytest.mark.parametrize("text,code,fragment,hint", [
    ("input 3x8x8\nwsconv 4 k3 nogain gamma=2\n", "E-ARG-RANGE", "`gamma`", "nogain"),
    ("input 3x8x8\nwsconv 4 k3 nogain gain_init=0\n", "E-ARG-RANGE", "`gain_init`", "nogain"),
    ("input 3x8x8\nwsconv 4 k3 g2\n", "E-GROUPS", "groups=2", "groups must divide"),
    ("input 3x8x8\nwsconv 6 k1 g3\n", "E-ARG-RANGE", "more than one weight", "larger kernel"),
    ("input 3x8x8\nmaxpool 3 s2 same ceil\n", "E-ARG-RANGE", "ceil(I / S)", "drop `ceil`"),
    ("input 8x4x4\nsoftmax dim=tokens\n", "E-RANK", "`tokens`", "`dim=h`"),
    ("input 8\nsoftmax dim=h\n", "E-RANK", "a vector", "`dim=channels`"),
    ("input 8x4x4\nsoftmax g3\n", "E-GROUPS", "8 channels", "cardinality × groups"),
    ("input 8x4x4\nsoftmax dim=h g2\n", "E-ARG-RANGE", "`groups`", "dim=h"),
    ("input 8x4x4\nlogsoftmax cardinality=2\n", "E-ARG-RANGE", "`cardinality`", "sigmoid"),
])
def test_mistakes_are_located_with_a_hint(text, code, fragment, hint):
    assert_located_error(text, code, fragment, hint)


def test_the_argument_at_fault_is_pointed_at():
    with pytest.raises(SpecError) as info:
        archdsl.loads("input 3x8x8\nwsconv 4 k3 nogain gamma=2\n")
    (d,) = info.value.errors
    assert (d.span.line, d.span.column) == (2, 20)


# ----------------------------------------------------------------------------- same padding


@settings(max_examples=80, **SETTINGS)
@given(data=st.data())
def test_same_padding_at_any_stride_agrees_with_timm(data):
    """conv, maxpool and avgpool with `same` at any stride against timm's Conv2dSame,
    MaxPool2dSame and AvgPool2dSame: O = ceil(I / S), values equal, state dicts shared."""
    draw = data.draw
    kind = draw(st.sampled_from(["conv", "maxpool", "avgpool"]), label="kind")
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 11)), draw(st.integers(1, 11)))
    kernel, stride = draw(pairs(1, 5)), draw(pairs(1, 4))
    dilation = draw(pairs(1, 2)) if kind != "avgpool" else (1, 1)
    c = shape[0]
    if kind == "conv":
        out = draw(st.integers(1, 4))
        text = f"conv {out} k{dims(kernel)} s{dims(stride)} d{dims(dilation)} same"
        make = (lambda: Conv2dSame(c, out, kernel, stride, dilation=dilation))
    elif kind == "maxpool":
        text = f"maxpool {dims(kernel)} s{dims(stride)} d{dims(dilation)} same"
        make = (lambda: MaxPool2dSame(kernel, stride, dilation=dilation))
    else:
        text = f"avgpool {dims(kernel)} s{dims(stride)} same"
        make = (lambda: AvgPool2dSame(kernel, stride))
    net = assert_twin("input " + "x".join(map(str, shape)) + "\n" + text + "\n", shape, make)
    event(kind)
    assert net.output_shape[1:] == tuple(-(-size // s) for size, s in zip(shape[1:], stride))
    if kind == "conv" and stride == (1, 1):
        assert type(the_layer(net)) is nn.Conv2d  # stride 1 keeps PyTorch's own `same`
    window = net.graph.layer(net.graph.order[-1]).kind.window(
        net.graph.layer(net.graph.order[-1]).args, shape)
    pads = tf_same_pads(shape[1:], kernel, stride, dilation)
    assert window.padding == ((pads[2], pads[3]), (pads[0], pads[1]))


@settings(max_examples=40, **SETTINGS)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)),
       kernel=pairs(1, 4), stride=pairs(1, 3))
def test_same_average_without_the_padding_is_tensorflows(shape, kernel, stride):
    """`avgpool … same exclude_pad`: each window averages only the inputs it covers."""
    net = archdsl.loads(f"input {'x'.join(map(str, shape))}\navgpool {dims(kernel)} "
                        f"s{dims(stride)} same exclude_pad\n")
    x = torch.randn(2, *shape)
    pads = tf_same_pads(shape[1:], kernel, stride, (1, 1))
    sums = F.avg_pool2d(F.pad(x, pads), kernel, stride, divisor_override=1)
    counts = F.avg_pool2d(F.pad(torch.ones(1, 1, *shape[1:]), pads), kernel, stride,
                          divisor_override=1)
    with torch.no_grad():
        torch.testing.assert_close(the_layer(net)(x), sums / counts)


@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_strided_same_conv_with_any_padding_mode_agrees_with_torch(data):
    """The twin test_layers_vs_torch.py's conv strategy uses (tf_same_conv): reflect and
    circular padding too, refused where F.pad refuses."""
    draw = data.draw
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    kernel, stride, dilation = draw(pairs(1, 5)), draw(pairs(2, 3)), draw(pairs(1, 2))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    text = (f"input {'x'.join(map(str, shape))}\nconv 2 k{dims(kernel)} s{dims(stride)} "
            f"d{dims(dilation)} same {mode}\n")
    net = assert_twin(text, shape, lambda: tf_same_conv(shape[0], 2, kernel, stride, dilation,
                                                        mode=mode), load=False)
    event("refused, as F.pad raises" if net is None else "agrees with torch")
    if mode == "zeros":  # values too (the twin's tensors are named 1.weight, 1.bias)
        try:
            net = archdsl.loads(text)
        except SpecError:
            return
        twin = tf_same_conv(shape[0], 2, kernel, stride, dilation).eval()
        ours = the_layer(net)
        ours.load_state_dict({k.split(".", 1)[1]: v for k, v in twin.state_dict().items()})
        x = torch.randn(2, *shape)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), twin(x))


def test_the_padding_shows_where_it_is_uneven():
    """conv k3 s2 same on 8 rows pads 0 above and 1 below (timm's, TensorFlow's), and the
    explanation says so."""
    from archdsl.explain import explain

    net = archdsl.loads("input 3x8x9\nconv 4 k3 s2 same\n")
    node = net.graph.layer(net.graph.order[-1])
    assert node.kind.window(node.args, (3, 8, 9)).padding == ((0, 1), (1, 1))
    (e,) = [e for e in explain(net) if e.op == "conv"]
    steps = {s.what: s for s in e.steps}
    assert steps["padding (H)"].value == [0, 1] and steps["padding (W)"].value == [1, 1]
    assert steps["same padding in total (H)"].substituted == "max((ceil(8 / 2) - 1) * 2 + 3 - 8, 0)"
    assert "bottom/right" in steps["padding (H)"].note


def test_stride_one_same_and_valid_keep_their_meaning():
    net = archdsl.loads("input 3x8x8\nconv 4 k4 same; maxpool 3 valid; avgpool 2 s1 p=valid\n")
    model = net.to_torch()
    assert type(model.conv1) is nn.Conv2d and model.conv1.padding == "same"
    assert net.output_shape == (4, 1, 1)  # 8x8, then 2x2 (a stride of 3), then 1x1
    assert type(model.maxpool1) is nn.MaxPool2d and type(model.avgpool1) is nn.AvgPool2d


# ----------------------------------------------------------------------------- softmax


@st.composite
def softmax_case(draw):
    """A softmax or log-softmax on a map, a token sequence or a vector, over an axis or
    across groups, with its plain torch reference (None where it must be refused)."""
    log = draw(st.booleans())
    kind = "logsoftmax" if log else "softmax"
    rank = draw(st.sampled_from([3, 3, 2, 1]))
    c = draw(st.sampled_from([1, 2, 4, 6, 8, 12]))
    h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    head = {3: f"input {c}x{h}x{w}", 2: f"input {c}x{h}x{w}\ntokens", 1: f"input {c}"}[rank]
    axes = {3: {"channels": 1, "h": 2, "w": 3, "hw": None}, 2: {"tokens": 1, "channels": 2},
            1: {"channels": 1}}[rank]
    anywhere = ["channels", "tokens", "h", "w", "hw"]
    grouped = draw(st.booleans())
    if grouped:  # mostly groups that divide the channels, now and then a mistake
        groups = draw(st.sampled_from([g for g in (2, 3, 4) if c % g == 0] * 4 + [1, 2, 3, 5]))
        card = draw(st.sampled_from([1, 1, 2, 3]))
        dim = draw(st.sampled_from(["channels"] * 8 + anywhere))
    else:
        groups, card = 1, 1
        dim = draw(st.sampled_from(list(axes) * 3 + anywhere))
    words = [kind, "" if dim == "channels" and draw(st.booleans()) else f"dim={dim}",
             draw(st.sampled_from([f"g{groups}", f"groups={groups}", f"g={groups}"]))
             if grouped else "", f"cardinality={card}" if grouped and card != 1 else ""]
    text = head + "\n" + " ".join(x for x in words if x) + "\n"
    refused = dim not in axes or (grouped and (
        (groups, card) != (1, 1) and (dim != "channels" or groups == 1 or c % (groups * card))))

    def reference(x):
        if grouped and (groups, card) != (1, 1):
            flat = x if rank != 2 else x.reshape(-1, x.shape[-1])
            y = RadixSoftmax(groups, card)(flat.reshape(flat.shape[0], -1)).reshape(flat.shape)
            y = y.reshape(x.shape)
            return y.log() if log else y
        if dim == "hw":
            y = x.flatten(2)
            return (y.log_softmax(-1) if log else y.softmax(-1)).reshape(x.shape)
        return x.log_softmax(axes[dim]) if log else x.softmax(axes[dim])

    return text, None if refused else reference, rank


@settings(max_examples=80, **SETTINGS)
@given(case=softmax_case())
def test_softmax_over_an_axis_or_groups_agrees_with_torch_and_timm(case):
    text, reference, rank = case
    event("refused" if reference is None else f"rank {rank}")
    if reference is None:
        with pytest.raises(SpecError) as info:
            archdsl.loads(text)
        (d,) = info.value.errors
        assert d.code in ("E-RANK", "E-GROUPS", "E-ARG-RANGE") and d.hint, text
        return
    net = archdsl.loads(text)
    model = net.to_torch().eval()
    x = torch.randn(2, *net.input_shape) * 3
    with torch.no_grad():
        y = model(x)
        features = model[0](x) if rank == 2 else x  # the token sequence
        torch.testing.assert_close(y, reference(features), rtol=1e-4, atol=1e-5)
    assert net.output_shape == tuple(y.shape[1:]) and net.params == 0 and net.macs == 0


def test_radix_softmax_lays_the_groups_out_first_as_resnest_reads_them():
    """ResNeSt's split attention: the gate's 2*C channels (radix 2, cardinality 1) become
    per-radix weights that sum to 1 over the radix, read as x.view(B, radix, C)."""
    net = archdsl.loads("input 8x1x1\nsoftmax g2\n")
    x = torch.randn(3, 8, 1, 1)
    with torch.no_grad():
        y = net.to_torch()(x).view(3, 2, 4)
    torch.testing.assert_close(y.sum(1), torch.ones(3, 4))
    torch.testing.assert_close(y, x.view(3, 2, 4).softmax(1))


def test_softmax_over_the_channels_of_a_sequence():
    """`channels` is the channel axis of tokens too (it used to be dimension 1, the tokens)."""
    net = archdsl.loads("input 4x2x3\ntokens\nsoftmax\n")
    model = net.to_torch().eval()
    with torch.no_grad():
        y = model(torch.randn(2, 4, 2, 3))
    torch.testing.assert_close(y.sum(-1), torch.ones(2, 6))


# ----------------------------------------------------------------------------- receptive field


def measured_rows(text: str) -> int:
    """The widest receptive field (rows) of any output row of channel 0 at column 0, by
    backprop through all-ones weights: the input rows whose gradient is not zero."""
    net = archdsl.loads(text, "rf.arch")
    model = net.to_torch().eval()
    for p in model.parameters():
        torch.nn.init.constant_(p, 1.0)
    widest = 0
    for row in range(net.output_shape[1]):
        x = torch.ones(1, *net.input_shape, requires_grad=True)
        model(x)[0, 0, row, 0].backward()
        rows = (x.grad[0].abs().sum((0, 2)) > 0).nonzero()
        widest = max(widest, int(rows.max() - rows.min() + 1))
    return widest


@pytest.mark.parametrize("text,exact", [
    ("input 8x16x16\nrepeat 6 { avgpool 1 s2; adaptiveavgpool 16 }\nconv 8 k3 p1", True),
    ("input 1x12x12\nadaptiveavgpool 24\nconv 1 k3 p1", True),
    ("input 1x12x12\nadaptiveavgpool 36x12\nconv 1 k5 p2", True),
    ("input 1x5x5\nadaptiveavgpool 8\nconv 1 k3 p1", False),
    ("input 1x7x7\nconv 1 k3 p1; adaptiveavgpool 11; conv 1 k3 p1", False),
])
def test_the_field_through_an_enlarging_adaptive_pool_bounds_what_torch_reads(text, exact):
    net = archdsl.loads(text, "rf.arch")
    shown = net.graph.facts[net.graph.order[-1]].field[0][0]
    seen = measured_rows(text)
    assert shown == seen if exact else shown >= seen


def test_the_issue_spec_sees_three_pixels_not_129():
    from archdsl.report import table

    net = archdsl.loads("input 8x16x16\nrepeat 6 { avgpool 1 s2; adaptiveavgpool 16 }\n"
                        "conv 8 k3 p1\n")
    assert net.layers()[-1]["rf"] == {"size": [3, 3], "stride": [1, 1]}
    (row,) = [line for line in table(net).splitlines() if line.startswith("conv1")]
    assert row.endswith(" 3 /1")  # it was 129 /64: the enlarging pool multiplied the jump


def test_an_enlarging_adaptive_pool_steps_by_a_fraction():
    net = archdsl.loads("input 1x4x4\nadaptivemaxpool 6x2\nconv 1 k3 p1\n")
    rows = {r["name"]: r["rf"] for r in net.layers()}
    assert rows["adaptivemaxpool1"]["stride"] == [pytest.approx(2 / 3), 2]
    assert rows["conv1"]["size"][0] == math.ceil(2 + 2 * 2 / 3)


# ----------------------------------------------------------------------------- every path

NETWORK = """\
arch variants
input 3x17x17
wsconv 8 k3 s2 same nobias; relu
conv 8 k3 s2 same; relu
maxpool 3 s2 same
avgpool 2 same exclude_pad
adaptiveavgpool 4
conv 8 k1; softmax g2 cardinality=2
wsconv 4 k3 p1 nogain reflect; softmax dim=hw
flatten; linear 5; logsoftmax
"""


def test_the_network_checks_and_explains():
    from archdsl.explain import explain

    net = archdsl.loads(NETWORK)
    assert [r["output"] for r in net.layers()][:6] == [[8, 9, 9], [8, 9, 9], [8, 5, 5],
                                                       [8, 5, 5], [8, 3, 3], [8, 2, 2]]
    assert net.output_shape == (5,)
    explained = explain(net)
    assert all(e.steps for e in explained)
    ops = {e.op for e in explained}
    assert {"wsconv", "conv", "maxpool", "avgpool", "softmax", "logsoftmax"} <= ops


def test_the_network_builds_and_trains_one_step():
    net = archdsl.loads(NETWORK)
    model = net.to_torch().train()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = F.nll_loss(model(torch.randn(4, 3, 17, 17)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert model.wsconv1.weight.grad.abs().sum() > 0 and model.wsconv1.gain.grad is not None
    before = model.wsconv1.gain.detach().clone()
    optimiser.step()
    assert not torch.equal(before, model.wsconv1.gain.detach())
    assert sum(p.numel() for p in model.parameters()) == net.params


def test_the_network_exports_to_python_that_imports_only_torch():
    import ast

    from archdsl.codegen import to_python

    net = archdsl.loads(NETWORK)
    source = to_python(net)
    for cls in ("class StdConv2d", "class Conv2dSame", "class MaxPool2dSame",
                "class AvgPool2dSame", "class GroupSoftmax", "class SpatialSoftmax"):
        assert cls in source, cls
    imported = {a.name.split(".")[0] for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.Import) for a in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(ast.parse(source))
                 if isinstance(node, ast.ImportFrom)}
    assert imported == {"torch"}, imported
    scope: dict = {}
    exec(compile(source, "variants.py", "exec"), scope)
    model, exported = net.to_torch().eval(), scope["Variants"]().eval()
    exported.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 17, 17)
    with torch.no_grad():
        torch.testing.assert_close(exported(x), model(x))


def test_the_network_exports_to_onnx(tmp_path):
    assert_onnx_matches(archdsl.loads(NETWORK), torch.randn(3, 3, 17, 17), tmp_path / "v.onnx")


def test_the_network_draws():
    from archdsl.draw import to_dot

    source = to_dot(archdsl.loads(NETWORK).graph).source
    for label in ("wsconv 8 · 3×3 /2 same", "conv 8 · 3×3 /2 same", "maxpool 3×3 /2 same",
                  "softmax g2×2", "softmax hw", "wsconv 4 · 3×3 p1 nogain"):
        assert label in source, label
