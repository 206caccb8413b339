"""Upsampling and geometry (issue 23): `convtranspose`, `pixelshuffle`, `pixelunshuffle`,
`upsample size=`, `pad`, `crop` and the two merges of a value and a reference, `resize` and
`cropto`; then specs/unet.arch, the 2015 U-Net, against a plain nn.Module written from the
paper.

Each kind's torch twin is here (TWINNED_HERE): hypothesis draws its arguments (in the forms
the language allows) and a small input; archdsl refuses the layer exactly where torch raises
(or says it is stricter), and otherwise gives torch's output shape, parameters and MACs
(FlopCounterMode's multiply-adds), and the compiled module gives the values of a plain
torch / F reference. Receptive fields are checked against the gradient torch computes
(tests/test_upsample.py's measure). One sample network holding every kind then goes through
each path: explain, build, a training step, Python export, ONNX, the drawing and fmt.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.transforms.functional import center_crop

import archdsl
from helpers import assert_onnx_matches, measured_field
from archdsl.transfer import transfer_weights
from unet_reference import UNet

TWINNED_HERE = ("convtranspose", "pixelshuffle", "pixelunshuffle", "pad", "crop", "resize",
                "cropto")

SETTINGS = dict(deadline=None, max_examples=30,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TORCH_ERRORS = (RuntimeError, ValueError, IndexError, ZeroDivisionError)

pytestmark = [pytest.mark.usefixtures("one_thread"),  # conftest.py: tiny tensors, one thread
              pytest.mark.filterwarnings("ignore::UserWarning")]


def dims(shape) -> str:
    return "x".join(map(str, shape))


class Stricter(Exception):
    """torch would run, archdsl refuses on purpose with `code`."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def assert_twin(spec: str, shape: tuple, reference, *, module=None, code=None):
    """`spec` (an `input` line is put first) against `reference(x)`, a plain torch function
    of the input batch (it may raise as torch would, or raise Stricter). `module`, a torch
    module inside `reference` whose parameters the spec's single layer holds, gets its
    weights from the compiled network. `code` is the diagnostic expected where torch raises."""
    net, diagnostics = archdsl.analyse(f"input {dims(shape)}\n{spec}\n")
    errors = [d for d in diagnostics if d.is_error]
    x = torch.randn(2, *shape)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as flops:
            reference(x[:1])
        expected = reference(x)
    except Stricter as exc:
        assert [d.code for d in errors] == [exc.code], (spec, shape, errors)
        return None
    except TORCH_ERRORS as exc:
        assert errors, f"torch raised {exc!r} but archdsl accepts {spec!r} on {shape}"
        if code is not None:
            assert errors[0].code == code, (spec, errors)
        return None
    assert not errors, f"{spec!r} on {shape}: torch runs, archdsl says {errors}"
    assert net.output_shape == tuple(expected.shape[1:]), spec
    theirs = sum(p.numel() for p in module.parameters()) if module is not None else 0
    assert net.params == theirs, spec
    assert net.macs == flops.get_total_flops() // 2, spec
    ours = net.to_torch().eval()
    if module is not None:
        transfer_weights(module, ours)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), expected, rtol=1e-4, atol=1e-5)
    return net


def side(lo=1, hi=8):
    return st.integers(lo, hi)


def pair_word(draw, flag: str | None, name: str, value: tuple, default=None) -> str | None:
    """An `HxW` argument as a flag, `flag=`, `name=`, or left out at its default."""
    if value == default and draw(st.booleans()):
        return None
    text = str(value[0]) if value[0] == value[1] and draw(st.booleans()) else dims(value)
    forms = [f"{name}={text}"] + ([f"{flag}{text}", f"{flag}={text}"] if flag else [])
    return draw(st.sampled_from(forms))


# ----------------------------------------------------------------------------- convtranspose


@given(data=st.data())
@settings(**{**SETTINGS, "max_examples": 60})
def test_convtranspose_agrees_with_torch(data):
    draw = data.draw
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c = draw(st.integers(1, 3)) * draw(st.sampled_from([1, groups]))
    out = draw(st.integers(1, 3)) * draw(st.sampled_from([1, groups]))
    shape = (c, draw(side(1, 6)), draw(side(1, 6)))
    kernel, stride = (draw(side(1, 4)), draw(side(1, 4))), (draw(side(1, 3)), draw(side(1, 3)))
    padding = (draw(st.integers(0, 2)),) * 2
    output_padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)),) * 2
    bias = draw(st.booleans())
    words = [f"convtranspose {out}", pair_word(data.draw, "k", "kernel", kernel),
             pair_word(data.draw, "s", "stride", stride, (1, 1)),
             pair_word(data.draw, "p", "padding", padding, (0, 0)),
             pair_word(data.draw, None, "output_padding", output_padding, (0, 0)),
             pair_word(data.draw, "d", "dilation", dilation, (1, 1)),
             None if groups == 1 and draw(st.booleans()) else f"g{groups}",
             None if bias else draw(st.sampled_from(["nobias", "bias=false"]))]
    spec = " ".join(w for w in words if w)
    module = None
    try:
        module = nn.ConvTranspose2d(c, out, kernel, stride=stride, padding=padding,
                                    output_padding=output_padding, groups=groups, bias=bias,
                                    dilation=dilation)
    except ValueError:
        pass

    def reference(x):
        if module is None:
            raise ValueError("groups")
        y = module(x)
        if 0 in y.shape:  # torch leaves H or W empty where the other is not: no output
            raise Stricter("E-PADDING")
        return y

    assert_twin(spec, shape, reference, module=module)


@pytest.mark.parametrize("spec,code,where", [
    ("convtranspose 4 k3 output_padding=1", "E-ARG-RANGE", "output_padding"),
    ("convtranspose 4 k3 s2 output_padding=2", "E-ARG-RANGE", "output_padding"),
    ("convtranspose 4 k3 padding_mode=reflect", "E-ARG-RANGE", "padding_mode"),
    ("convtranspose 3 k3 g2", "E-GROUPS", "g2"),
    ("convtranspose 4 k1 p2", "E-PADDING", "p2"),
])
def test_convtranspose_refusals_point_at_the_argument_with_a_hint(spec, code, where):
    text = f"input 4x3x3\n{spec}\n"
    _, diagnostics = archdsl.analyse(text)
    (d,) = [d for d in diagnostics if d.is_error]
    assert d.code == code and d.hint
    assert text.splitlines()[1][d.span.column - 1:].startswith(where)


@pytest.mark.parametrize("k,s,d", [(2, 2, 1), (3, 2, 1), (4, 2, 1), (5, 3, 1), (3, 2, 2),
                                   (2, 2, 3), (3, 3, 2), (1, 2, 1)])
def test_the_receptive_field_of_a_transposed_convolution_is_what_torch_reads(k, s, d):
    text = f"input 1x12x12\nconvtranspose 1 k{k} s{s} d{d}"
    net = archdsl.loads(text)
    shown = net.graph.facts[net.graph.order[-1]].field[0][0]
    assert shown == measured_field(text)
    g = s // math.gcd(s, d)
    assert shown == (k - 1) // g * g * d // s + 1  # the rule the layer reference states
    assert net.layers()[-1]["rf"]["stride"] == [1 / s, 1 / s]


@pytest.mark.parametrize("text,exact", [
    ("conv 1 k3 p1; convtranspose 1 k2 s2; conv 1 k3 p1", True),
    ("convtranspose 1 k3 s2 p1 output_padding=1; conv 1 k3 p1", False),
    ("pixelshuffle 2; conv 1 k3 p1", False),
    ("conv 4 k1; pixelunshuffle 2; conv 1 k1", True),
    ("pad 2; conv 1 k3", True),
    ("pad 1 2 0 3 mode=replicate; conv 1 k3", False),
    ("conv 1 k3 p1; crop 8; conv 1 k3 p1", True),
    ("upsample size=20x20 mode=bilinear; conv 1 k3 p1", False),
    ("conv 1 k3 p1 -> a\nmaxpool 2; conv 1 k3 p1 -> b\nb, a; resize mode=bilinear", False),
    ("conv 1 k3 p1 -> a\nmaxpool 2 -> b\na, b; cropto; conv 1 k3 p1", True),
])
def test_receptive_fields_bound_what_torch_reads(text, exact):
    text = "input 4x12x12\n" + text if "pixelshuffle" in text else "input 1x12x12\n" + text
    net = archdsl.loads(text)
    shown = net.graph.facts[net.graph.order[-1]].field[0][0]
    seen = measured_field(text)
    assert shown == seen if exact else shown >= seen


# ----------------------------------------------------------------------------- pixel shuffle


@given(data=st.data())
@settings(**SETTINGS)
def test_pixelshuffle_and_unshuffle_agree_with_torch(data):
    draw = data.draw
    kind = draw(st.sampled_from(["pixelshuffle", "pixelunshuffle"]))
    r = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 3)) * draw(st.sampled_from([1, r * r])), draw(side()),
             draw(side()))
    spec = f"{kind} " + draw(st.sampled_from([str(r), f"factor={r}"]))
    function = F.pixel_shuffle if kind == "pixelshuffle" else F.pixel_unshuffle
    assert_twin(spec, shape, lambda x: function(x, r), code="E-SHAPE")


def test_pixelshuffle_of_channels_not_divisible_says_which_to_give():
    _, diagnostics = archdsl.analyse("input 6x4x4\npixelshuffle 2\n")
    (d,) = diagnostics
    assert d.code == "E-SHAPE" and "divisible by 2x2 = 4" in d.message and "conv 4" in d.hint
    _, diagnostics = archdsl.analyse("input 6x4x5\npixelunshuffle 2\n")
    (d,) = diagnostics
    assert d.code == "E-SHAPE" and "width divisible by 2" in d.message and "crop 4x4" in d.hint


# ----------------------------------------------------------------------------- upsample size=


@given(data=st.data())
@settings(**SETTINGS)
def test_upsample_to_a_size_agrees_with_torch(data):
    draw = data.draw
    shape = (draw(st.integers(1, 3)), draw(side()), draw(side()))
    size = (draw(side(1, 12)), draw(side(1, 12)))
    mode = draw(st.sampled_from(["nearest", "bilinear", "bicubic"]))
    corners = draw(st.booleans()) if mode != "nearest" else False
    spec = " ".join(filter(None, ["upsample", f"size={dims(size)}", f"mode={mode}",
                                  "align_corners=true" if corners else None]))
    kwargs = {"align_corners": corners} if mode != "nearest" else {}
    assert_twin(spec, shape, lambda x: F.interpolate(x, size=size, mode=mode, **kwargs))


def test_upsample_takes_a_scale_or_a_size_not_both():
    _, diagnostics = archdsl.analyse("input 3x8x8\nupsample 2 size=16\n")
    (d,) = diagnostics
    assert d.code == "E-ARG-RANGE" and d.span.column == 12 and "drop" in d.hint
    assert archdsl.loads("input 3x8x8\nupsample\n").output_shape == (3, 16, 16)  # scale 2


# ----------------------------------------------------------------------------- pad, crop


@given(data=st.data())
@settings(**{**SETTINGS, "max_examples": 50})
def test_pad_agrees_with_f_pad(data):
    draw = data.draw
    shape = (draw(st.integers(1, 3)), draw(side(1, 5)), draw(side(1, 5)))
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular", None]))
    value = draw(st.sampled_from([None, 0.5])) if mode in ("constant", None) else None
    if draw(st.booleans()):
        sides = (draw(st.integers(0, 4)),) * 4
        numbers = str(sides[0])
    else:
        sides = tuple(draw(st.integers(0, 4)) for _ in range(4))
        numbers = " ".join(map(str, sides))
    words = [f"pad {numbers}", None if mode is None else
             draw(st.sampled_from([mode, f"mode={mode}"])),
             None if value is None else f"value={value}"]
    spec = " ".join(w for w in words if w)

    def reference(x):
        if mode in ("constant", None):
            return F.pad(x, sides, value=value or 0.0)
        return F.pad(x, sides, mode=mode)

    assert_twin(spec, shape, reference, code="E-PADDING")


@pytest.mark.parametrize("spec,code", [("pad 1 2", "E-ARG-MISSING"),
                                       ("pad 1 mode=reflect value=2", "E-ARG-RANGE"),
                                       ("crop 9x4", "E-SHAPE")])
def test_pad_and_crop_refusals(spec, code):
    _, diagnostics = archdsl.analyse(f"input 2x8x8\n{spec}\n")
    (d,) = diagnostics
    assert d.code == code and d.hint


@pytest.mark.parametrize("kind", ["pad 1", "crop 2", "pixelshuffle 1", "pixelunshuffle 1",
                                  "convtranspose 2 k1", "upsample size=2"])
def test_a_vector_is_refused(kind):
    _, diagnostics = archdsl.analyse(f"input 8\n{kind}\n")
    assert [d.code for d in diagnostics] == ["E-RANK"]


@given(data=st.data())
@settings(**SETTINGS)
def test_crop_is_torchvisions_center_crop(data):
    draw = data.draw
    shape = (draw(st.integers(1, 3)), draw(side(1, 9)), draw(side(1, 9)))
    size = (draw(side(1, 10)), draw(side(1, 10)))
    spec = "crop " + draw(st.sampled_from([dims(size), f"size={dims(size)}"]))

    def reference(x):
        if size[0] > shape[1] or size[1] > shape[2]:
            raise Stricter("E-SHAPE")  # torchvision would pad the map first
        return center_crop(x, list(size))

    assert_twin(spec, shape, reference)


# ----------------------------------------------------------------------------- the merges


@given(data=st.data())
@settings(**SETTINGS)
def test_resize_agrees_with_f_interpolate(data):
    draw = data.draw
    shape = (draw(st.integers(1, 3)), draw(side()), draw(side()))
    ref = (draw(side(1, 12)), draw(side(1, 12)))
    mode = draw(st.sampled_from(["nearest", "bilinear", "bicubic", None]))
    corners = draw(st.booleans()) if mode not in ("nearest", None) else False
    combinator = mode is None and draw(st.booleans())
    if combinator:  # the combinator takes no arguments: nearest
        spec = f"resize< identity | adaptiveavgpool {dims(ref)} >"
    else:
        spec = "\n".join(["-> x", f"adaptiveavgpool {dims(ref)} -> ref", "x, ref; resize " +
                          " ".join(filter(None, [mode and f"mode={mode}",
                                                 "align_corners=true" if corners else None]))])
    mode = mode or "nearest"
    kwargs = {"align_corners": corners} if mode != "nearest" else {}
    assert_twin(spec, shape, lambda x: F.interpolate(x, size=ref, mode=mode, **kwargs))


@given(data=st.data())
@settings(**SETTINGS)
def test_cropto_is_torchvisions_center_crop_to_the_reference(data):
    draw = data.draw
    shape = (draw(st.integers(1, 3)), draw(side(1, 9)), draw(side(1, 9)))
    ref = (draw(side(1, 10)), draw(side(1, 10)))
    if draw(st.booleans()):
        spec = f"cropto< identity | adaptivemaxpool {dims(ref)} >"
    else:
        spec = f"-> x\nadaptivemaxpool {dims(ref)} -> ref\nx, ref; cropto"

    def reference(x):
        if ref[0] > shape[1] or ref[1] > shape[2]:
            raise Stricter("E-SHAPE")
        return center_crop(x, list(ref))

    assert_twin(spec, shape, reference)


@pytest.mark.parametrize("spec,code", [
    ("-> x\nflatten -> v\nx, v; resize", "E-RANK"),
    ("-> x\nmaxpool 2 -> y\nx, y, y; cropto", "E-ARITY"),
    ("cropto< maxpool 2 | identity >", "E-SHAPE"),
    ("-> x\nmaxpool 2 -> y\nx, y; resize align_corners=true", "E-ARG-RANGE"),
])
def test_the_merges_refuse_what_torch_cannot_do(spec, code):
    _, diagnostics = archdsl.analyse(f"input 2x8x8\n{spec}\n")
    assert [d.code for d in diagnostics if d.is_error] == [code]


def test_cropto_of_a_smaller_value_says_which_comes_first():
    _, diagnostics = archdsl.analyse("input 2x8x8\n-> x\nmaxpool 2 -> y\ny, x; cropto\n")
    (d,) = diagnostics
    assert d.code == "E-SHAPE" and "larger map first" in d.hint


# ----------------------------------------------------------------------------- every path

SAMPLE = """\
input 3x16x16
conv 8 k3 p1; relu -> e
pad 1 2 3 4 mode=reflect; crop 16x16 -> cr
pixelunshuffle 2; conv 32 k1; pixelshuffle 2 -> sh
e; maxpool 2; convtranspose 8 k3 s2 p1 output_padding=1 -> up
e; upsample size=7x9 mode=bilinear -> small
small, e; resize mode=bicubic -> rs
e; pad 2 value=0.5 -> big
big, e; cropto -> ct
cr, sh, up, rs, ct; concat
resize< identity | maxpool 2 >
cropto< identity | maxpool 4 >
conv 4 k1
"""
KINDS = ("pad", "crop", "pixelunshuffle", "pixelshuffle", "convtranspose", "upsample", "resize",
         "cropto")


def sample():
    return archdsl.loads(SAMPLE, "sample.arch")


def test_the_sample_checks_and_explains_every_kind():
    from archdsl.explain import explain

    net = sample()
    assert net.output_shape == (4, 2, 2) and not net.diagnostics
    explained = {e.op: e for e in explain(net)}
    for kind in KINDS:
        assert explained[kind].steps, kind
    steps = {s.what: s for s in explained["convtranspose"].steps}
    assert steps["output size (H and W)"].value == 16
    assert steps["inputs one output reads (H and W)"].value == 2
    assert steps["MACs"].value == 8 * 8 * 8 * 8 * 9


def test_every_substitution_of_the_new_kinds_evaluates_to_its_value():
    """A learner can type each `substituted` of the kinds' own steps into Python and get the
    step's value (the receptive field's steps are propagate.py's, rounded up after a
    fractional jump)."""
    import re

    from archdsl.explain import explain

    arithmetic = re.compile(r"[0-9 +\-*/().,a-z]*")
    functions = {"floor": math.floor, "ceil": math.ceil, "round": round, "max": max, "min": min}
    checked = 0
    for e in explain(sample()):
        for s in e.steps:
            if e.op in KINDS and isinstance(s.value, int) and \
                    arithmetic.fullmatch(s.substituted) and not \
                    s.what.startswith(("receptive field", "jump", "field limit")):
                for part in s.substituted.split(" = "):
                    assert eval(part, functions) == s.value, (e.name, s.what, part)
                checked += 1
    assert checked > 25


def reference_sample(model, x):
    """SAMPLE's forward pass written with torch and F on the compiled modules' weights."""
    e = torch.relu(model.conv1(x))
    cr = center_crop(F.pad(e, (1, 2, 3, 4), mode="reflect"), [16, 16])
    sh = F.pixel_shuffle(model.conv2(F.pixel_unshuffle(cr, 2)), 2)
    up = model.convtranspose1(F.max_pool2d(e, 2))
    small = F.interpolate(e, size=(7, 9), mode="bilinear", align_corners=False)
    rs = F.interpolate(small, size=(16, 16), mode="bicubic", align_corners=False)
    ct = center_crop(F.pad(e, (2, 2, 2, 2), value=0.5), [16, 16])
    y = torch.cat([cr, sh, up, rs, ct], 1)
    y = F.interpolate(y, size=(8, 8), mode="nearest")
    y = center_crop(y, [2, 2])
    return model.conv3(y)


def test_the_sample_builds_and_computes_what_torch_does():
    model = sample().to_torch().eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference_sample(model, x))


def test_the_sample_pickles_and_traces_with_its_merges_arguments():
    """The compiled network keeps each merge's arguments (`resize mode=bicubic`) through
    torch.save's pickling and a TorchScript trace."""
    import io
    import warnings

    model = sample().to_torch().eval()
    x = torch.randn(2, 3, 16, 16)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = torch.load(buffer, weights_only=False)
        traced = torch.jit.trace(model, x)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))
        torch.testing.assert_close(traced(x), model(x))


def test_the_sample_trains_one_step():
    model = sample().to_torch().train()
    model(torch.randn(2, 3, 16, 16)).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_the_sample_exports_to_python_that_imports_only_torch(tmp_path):
    import ast

    from archdsl.codegen import to_python

    net = sample()
    source = to_python(net)
    tree = ast.parse(source)
    imported = {a.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for a in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported == {"torch"}, imported
    assert "class CenterCrop" in source
    assert "nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1, output_padding=1)" in source
    assert "mode='bicubic'" in source
    namespace: dict = {}
    exec(compile(source, "sample.py", "exec"), namespace)
    model = net.to_torch().eval()
    exported = next(v for k, v in namespace.items() if isinstance(v, type) and
                    issubclass(v, nn.Module) and k.lower().startswith("sample"))().eval()
    exported.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(exported(x), model(x))


def test_the_sample_exports_to_onnx(tmp_path):
    assert_onnx_matches(sample(), torch.randn(1, 3, 16, 16), tmp_path / "sample.onnx")


def test_the_sample_draws_each_kind():
    from archdsl.draw import to_dot

    source = to_dot(sample().graph).source
    for label in ("pad 1 2 3 4 reflect", "crop 16x16", "pixelunshuffle /2", "pixelshuffle ×2",
                  "convtranspose 8 · 3×3 ×2 p1 op1", "upsample to 7x9 bilinear",
                  "resize bicubic", "cropto", "pad 2"):
        assert label in source, label


def test_fmt_keeps_every_kind(tmp_path):
    from archdsl.fmt import format_text

    formatted = format_text(SAMPLE)
    assert format_text(formatted) == formatted
    ours, theirs = sample(), archdsl.loads(formatted, "sample.arch")
    assert [r["op"] for r in ours.layers()] == [r["op"] for r in theirs.layers()]
    assert (ours.params, ours.macs, ours.output_shape) == \
        (theirs.params, theirs.macs, theirs.output_shape)


# ----------------------------------------------------------------------------- U-Net

UNET = Path(__file__).resolve().parent.parent / "specs" / "unet.arch"


def test_unet_checks_cleanly_with_the_papers_parameters():
    net = archdsl.load(UNET)
    assert not net.diagnostics, "\n".join(map(str, net.diagnostics))
    assert (net.input_shape, net.output_shape) == ((1, 256, 256), (2, 256, 256))
    with torch.device("meta"):
        reference = UNet()
    assert net.params == sum(p.numel() for p in reference.parameters()) == 31_030_658
    assert net.buffers == 0


def test_unet_without_padding_maps_the_papers_572_tile_to_388():
    net = archdsl.load(UNET, padding=0, input_shape=(1, 572, 572))
    assert net.output_shape == (2, 388, 388) and not net.diagnostics
    crops = [r["output"] for r in net.layers() if r["op"] == "cropto"]
    assert crops == [[512, 56, 56], [256, 104, 104], [128, 200, 200], [64, 392, 392]]


@pytest.mark.parametrize("padding,side", [(1, 32), (0, 188)])
def test_unet_computes_what_the_papers_network_does(padding, side):
    """After transfer_weights the spec's network and the hand-written one agree output for
    output: padded at 1x32x32, and unpadded (cropping every skip) at its smallest tile, 188."""
    torch.manual_seed(0)
    reference = UNet(padding=padding).eval()
    net = archdsl.load(UNET, padding=padding, input_shape=(1, side, side))
    with torch.device("meta"):
        ours = net.to_torch()
    ours.to_empty(device="cpu")
    transfer_weights(reference, ours)
    x = torch.randn(1, 1, side, side)
    with torch.no_grad():
        expected, got = reference(x), ours.eval()(x)
    assert expected.shape == got.shape == (1, *net.output_shape)
    assert expected.abs().max() > 1e-3
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_unet_trains_one_step_on_per_pixel_labels():
    """One step on a map of class labels per pixel (F.cross_entropy over the class
    dimension); `archdsl train` on images with masks is tests/test_segmentation_train.py's."""
    torch.manual_seed(0)
    model = archdsl.load(UNET, input_shape=(1, 32, 32)).to_torch().train()
    x, target = torch.randn(2, 1, 32, 32), torch.randint(0, 2, (2, 32, 32))
    loss = F.cross_entropy(model(x), target)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_every_kind_twinned_here_is_registered_and_new():
    from archdsl.layers import REGISTRY
    from archdsl.layers.merge import MergeKind

    assert set(TWINNED_HERE) <= set(REGISTRY)
    assert {k for k in TWINNED_HERE if isinstance(REGISTRY[k], MergeKind)} == {"resize", "cropto"}
