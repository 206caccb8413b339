"""`upsample` (nearest, bilinear, bicubic by a whole scale): shapes and values against torch
(its property-based twin is in test_layers_vs_torch.py), receptive fields against the
gradient torch computes, and a decoder with a named skip through every path."""

import pytest
import torch

import archdsl
from archdsl.network import analyse
from helpers import measured_field


@pytest.mark.parametrize("text,exact", [
    ("upsample 2\nconv 1 k3 p1", True),
    ("upsample 2 mode=bilinear\nconv 1 k3 p1", True),
    ("upsample 2 mode=bicubic\nconv 1 k3 p1", True),
    ("upsample 2 mode=bilinear align_corners=true\nconv 1 k3 p1", True),
    ("conv 1 k3 p1; upsample 3 mode=bilinear; conv 1 k5 p2", False),
])
def test_the_receptive_field_through_upsampling_bounds_what_torch_reads(text, exact):
    text = "input 1x12x12\n" + text
    net = archdsl.loads(text, "u.arch")
    shown = net.graph.facts[net.graph.order[-1]].field[0][0]
    seen = measured_field(text)
    assert shown == seen if exact else shown >= seen  # the recurrence rounds up fractions


def test_jumps_after_upsampling_are_fractions_of_an_input_pixel():
    net = archdsl.loads("input 3x8x8\nupsample 2 mode=bilinear; conv 4 k3 p1\n", "u.arch")
    rows = {r["name"]: r["rf"] for r in net.layers()}
    assert rows["conv1"] == {"size": [3, 3], "stride": [0.5, 0.5]}
    from archdsl.report import table

    assert "3 /0.5" in table(net)


def test_align_corners_with_nearest_is_refused_at_the_argument():
    _, diagnostics = analyse("input 3x8x8\nupsample 2 align_corners=true\n", "u.arch")
    (d,) = [d for d in diagnostics if d.is_error]
    assert d.code == "E-ARG-RANGE" and d.span.column == 12 and "bilinear" in d.hint


DECODER = """\
input 3x16x16
conv 8 k3 p1; relu -> skip
maxpool 2; conv 16 k3 p1; relu
upsample 2 mode=bilinear
concat< identity | skip >
conv 8 k3 p1
"""


def test_a_decoder_with_a_skip_equals_torch():
    net = archdsl.loads(DECODER, "d.arch")
    assert net.output_shape == (8, 16, 16)
    model = net.to_torch().eval()
    x = torch.randn(2, 3, 16, 16)
    f = torch.nn.functional
    skip = torch.relu(model.conv1(x))
    deep = torch.relu(model.conv2(f.max_pool2d(skip, 2)))
    up = f.interpolate(deep, scale_factor=2.0, mode="bilinear", align_corners=False)
    expected = model.conv3(torch.cat([up, skip], dim=1))
    torch.testing.assert_close(model(x), expected)


def test_the_decoder_trains_exports_and_draws(tmp_path):
    import onnxruntime

    from archdsl.codegen import to_python
    from archdsl.draw import to_dot
    from archdsl.export import export

    net = archdsl.loads(DECODER, "d.arch")
    model = net.to_torch().train()
    loss = model(torch.randn(2, 3, 16, 16)).square().mean()
    loss.backward()
    assert model.conv1.weight.grad.abs().sum() > 0
    assert "nn.Upsample(scale_factor=2.0, mode='bilinear', align_corners=False)" in \
        to_python(net)
    torch.manual_seed(0)
    onnx = export(net, "onnx", tmp_path / "d.onnx")
    torch.manual_seed(0)
    model = net.to_torch().eval()
    x = torch.randn(1, 3, 16, 16)
    session = onnxruntime.InferenceSession(str(onnx))
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(out), model(x), rtol=1e-4, atol=1e-5)
    assert "upsample ×2 bilinear" in to_dot(net.graph).source
