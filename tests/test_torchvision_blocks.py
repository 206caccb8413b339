"""The kinds that rebuild torchvision's ShuffleNetV2, ConvNeXt and RegNet blocks (split,
shuffle, layernorm2d, pointwise, layerscale, stochasticdepth, and shortcut_first< shortcut |
body >): their outputs against torchvision's own code (InvertedResidual, CNBlock,
StochasticDepth, ResBottleneckBlock), their errors, their drawing labels, and the exported
Python and ONNX files of those families' smallest models. Their receptive fields and MACs are
in test_infer.py, transfer_weights' matching in test_weight_mapping.py."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import archdsl
from archdsl import SpecError

ROOT = Path(__file__).resolve().parent.parent


def compiled(text):
    net = archdsl.loads(text)
    return net, net.to_torch().eval()


def test_split_and_shuffle_compute_shufflenets_unit():
    from torchvision.models.shufflenetv2 import InvertedResidual

    net, ours = compiled("input 16x6x6\n"
                         "concat< split 0 2 | split 1 2; conv 8 k1 nobias; bn; relu\n"
                         "        conv 8 k3 p1 g8 nobias; bn; conv 8 k1 nobias; bn; relu >\n"
                         "shuffle 2\n")
    ref = InvertedResidual(16, 16, 1).eval()
    archdsl.transfer_weights(ref, ours)
    x = torch.randn(2, 16, 6, 6)
    torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)
    assert net.params == sum(p.numel() for p in ref.parameters())


def test_split_follows_torch_chunk_for_uneven_channels():
    x = torch.randn(2, 5, 3, 3)
    for index, size in enumerate((2, 2, 1)):  # x.chunk(3): 2, 2 and 1 channels
        net, ours = compiled(f"input 5x3x3\nsplit {index} 3\n")
        assert net.output_shape == (size, 3, 3)
        torch.testing.assert_close(ours(x), x.chunk(3, dim=1)[index])
    with pytest.raises(SpecError) as info:
        archdsl.loads("input 4x3x3\nsplit 2 3\n")  # x.chunk(3) of 4 channels makes only 2
    (d,) = info.value.errors
    assert (d.code, d.span.line) == ("E-ARG-RANGE", 2)
    assert "only 2 chunks" in d.message and "0 to 1" in d.hint


def test_shuffle_errors():
    with pytest.raises(SpecError) as info:
        archdsl.loads("input 6x4x4\nshuffle 4\n")
    (d,) = info.value.errors
    assert d.code == "E-GROUPS" and "does not divide the 6 channels" in d.message
    with pytest.raises(SpecError) as info:
        archdsl.loads("input 6\nshuffle 2\n")
    assert info.value.errors[0].code == "E-RANK"


def test_convnext_block_against_torchvisions_cnblock():
    from torchvision.models.convnext import CNBlock, LayerNorm2d

    net, ours = compiled("input 8x7x7\n"
                         "residual< conv 8 k7 p3 g8; layernorm2d eps=1e-6; pointwise 32; gelu\n"
                         "          pointwise 8; layerscale 0.5; stochasticdepth 0.3 >\n"
                         "layernorm2d eps=1e-6\n")
    ref = nn.Sequential(CNBlock(8, 0.5, 0.3), LayerNorm2d(8, eps=1e-6))
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(torch.randn(p.shape))
    ref.eval()
    archdsl.transfer_weights(ref, ours)  # layer_scale is CNBlock's first tensor, ours last
    x = torch.randn(2, 8, 7, 7)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
    assert (net.params, net.buffers) == (sum(p.numel() for p in ref.parameters()), 0)
    # MACs: the depthwise 7x7 and the two Linear layers at each of the 49 positions
    assert net.macs == 49 * 8 * 49 + 2 * 49 * 8 * 32
    assert ours.residual1.body.layerscale1.layer_scale.shape == (8, 1, 1)


def test_stochastic_depth_is_torchvisions():
    from torchvision.ops import StochasticDepth

    x = torch.randn(64, 3, 2, 2)
    for p, mode in [(0.3, "row"), (0.5, "batch"), (1.0, "row"), (0.0, "row")]:
        _, ours = compiled(f"input 3x2x2\nstochasticdepth {p} {mode}\n")
        ref = StochasticDepth(p, mode)
        ours.train(), ref.train()
        torch.manual_seed(7)
        got = ours(x)
        torch.manual_seed(7)
        torch.testing.assert_close(got, ref(x))
        ours.eval()
        assert ours(x) is x or torch.equal(ours(x), x)  # the identity in eval mode
    _, ours = compiled("input 3x2x2\nstochasticdepth 0.5\n")
    ours.train()
    y = ours(x)
    kept = (y.flatten(1) != 0).any(1)
    assert 0 < int(kept.sum()) < 64  # some samples dropped, some kept
    torch.testing.assert_close(y[kept], 2 * x[kept])  # whole samples, kept ones scaled 1/(1-p)


def test_shortcut_first_registers_the_shortcut_first():
    text = ("input 8x8x8\nshortcut_first< conv 16 k1 s2 nobias; bn | "
            "conv 16 k1 nobias; bn; relu; conv 16 k3 s2 p1 nobias; bn >\n")
    net, ours = compiled(text)
    keys = list(ours.state_dict())
    assert keys[0] == "shortcut_first1.shortcut.conv1.weight"
    assert keys.index("shortcut_first1.body.conv1.weight") > keys.index(
        "shortcut_first1.shortcut.bn1.num_batches_tracked")
    x = torch.randn(2, 8, 8, 8)
    sc, body = ours.shortcut_first1.shortcut, ours.shortcut_first1.body
    torch.testing.assert_close(ours(x), sc(x) + body(x))
    # torchvision's RegNet block (proj before f) transfers straight in
    from torchvision.models.regnet import ResBottleneckBlock
    ref = ResBottleneckBlock(8, 16, 2, nn.BatchNorm2d, nn.ReLU, 16, 1.0, None).eval()
    _, ours = compiled("input 8x8x8\nshortcut_first< conv 16 k1 s2 nobias; bn | "
                       "conv 16 k1 nobias; bn; relu; conv 16 k3 s2 p1 nobias; bn; relu; "
                       "conv 16 k1 nobias; bn >\nrelu\n")
    archdsl.transfer_weights(ref, ours)
    torch.testing.assert_close(ours(x), ref(x))


def test_shortcut_first_shape_error_points_at_the_body():
    with pytest.raises(SpecError) as info:
        archdsl.loads("input 8x8x8\nshortcut_first< identity | conv 16 k3 s2 p1 >\n")
    (d,) = info.value.errors
    assert d.code == "E-SHAPE" and "shortcut gives 8x8x8, body gives 16x4x4" in d.message
    assert d.span.column == 28 and "1x1 `conv`" in d.hint


def test_drawing_labels():
    from archdsl.draw import to_dot

    net = archdsl.loads("input 8x4x4\nsplit 1 2; shuffle 2; pointwise 6; layerscale 0.1; "
                        "stochasticdepth 0.2\n")
    dot = str(to_dot(net.graph))
    for label in ("split 1/2", "shuffle 2", "pointwise 6", "layerscale 0.1",
                  "stochasticdepth 0.2"):
        assert label in dot, label


def load_exported(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("spec,sets", [
    ("shufflenet_v2.arch", ["c2=48", "c3=96", "c4=192", "c5=1024"]),
    ("convnext.arch", []),
])
def test_export_python_and_onnx(tmp_path, spec, sets):
    """A family's smallest model exported to standalone Python (which imports nothing from
    archdsl) and to ONNX: both compute the compiled module's outputs."""
    import onnxruntime

    params = {k: int(v) for k, v in (s.split("=") for s in sets)}
    net = archdsl.load(ROOT / "specs" / spec, input_shape=(3, 64, 64), **params)
    ours = net.to_torch().eval()
    weights = tmp_path / "w.pt"
    torch.save(ours.state_dict(), weights)
    args = [a for s in sets for a in ("--set", s)] + ["--input", "3x64x64"]
    cli = [sys.executable, "-m", "archdsl", "export"]
    py, onnx_file = tmp_path / "net.py", tmp_path / "net.onnx"
    for to, out, extra in (("python", py, []), ("onnx", onnx_file, ["--weights", str(weights)])):
        run = subprocess.run(cli + ["--to", to, "-o", str(out), str(ROOT / "specs" / spec)] +
                             args + extra, capture_output=True, text=True, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
    source = py.read_text()
    assert "archdsl" not in source.split('"""', 2)[2].split("class ", 1)[0]  # imports torch only
    module = load_exported(py)
    cls = [v for v in vars(module).values() if isinstance(v, type) and
           issubclass(v, nn.Module) and v.__module__ == module.__name__][-1]  # the network
    standalone = cls(**params).eval()
    standalone.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = ours(x)
        torch.testing.assert_close(standalone(x), expected)
    session = onnxruntime.InferenceSession(str(onnx_file))
    feed = {session.get_inputs()[0].name: x[:1].numpy()}
    (y,) = session.run(None, feed)
    torch.testing.assert_close(torch.from_numpy(y), expected[:1], rtol=1e-3, atol=1e-4)
