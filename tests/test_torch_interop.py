"""Compiled specs work with the rest of PyTorch: torch.compile, torch.export, channels_last,
bf16 autocast, TorchScript tracing and ONNX (checked with onnxruntime).

The specs below cover every construct the backend emits: plain chains (alexnet), residuals
with inserted projections (resnet18), concat (googlenet), grouped convolutions with
residuals (mobilenet_v2), and mul/add/concat branches (branches)."""

import warnings
from pathlib import Path

import pytest
import torch

import archdsl

SPECS = Path(__file__).resolve().parent.parent / "specs"
REPRESENTATIVE = ["alexnet", "resnet18", "googlenet", "mobilenet_v2", "branches", "googlenet_aux"]


def model_and_input(name, size=64):
    """The compiled spec and a batch of 2 at its own input size, or at most `size`."""
    torch.manual_seed(0)
    net = archdsl.load(SPECS / f"{name}.arch")
    channels, height, width = net.input_shape
    return net.to_torch().eval(), torch.randn(2, channels, min(height, size), min(width, size))


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_dynamo_captures_the_whole_network_in_one_graph(name):
    model, x = model_and_input(name)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="eager")  # raises on a graph break
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x))


# issue 23's families: arithmetic, transposes, weight standardisation, transposed convolution
NEW_FAMILIES = {"poolformer_s12": ((3, 64, 64), {}), "mixer_b16": ((3, 64, 64), {"patches": 16}),
                "nf_resnet50": ((3, 64, 64), {}), "unet": ((1, 64, 64), {})}


@pytest.mark.parametrize("name", sorted(NEW_FAMILIES))
def test_dynamo_captures_each_new_family_in_one_graph(name):
    shape, settings = NEW_FAMILIES[name]
    torch.manual_seed(0)
    model = archdsl.build(SPECS / f"{name}.arch", input_shape=shape, **settings).train()
    x = torch.randn(2, *shape)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="eager")  # raises on a graph break
    torch.testing.assert_close(compiled(x), model(x))


def test_inductor_compiles_and_agrees():
    model, x = model_and_input("lenet5")
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_torch_export(name):
    model, x = model_and_input(name)
    program = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x))


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_channels_last(name):
    model, x = model_and_input(name)
    with torch.no_grad():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)
        got = model(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_bf16_autocast(name):
    model, x = model_and_input(name)
    with torch.no_grad():
        expected = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = model(x)
    assert got.dtype == torch.bfloat16
    # bf16 keeps 8 bits of mantissa: compare against the output's own scale
    scale = expected.abs().max()
    assert (got.float() - expected).abs().max() <= 0.05 * scale + 1e-3


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_torchscript_trace(name):
    model, x = model_and_input(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # tracing is deprecated, still supported
        traced = torch.jit.trace(model, x)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x))


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "branches"])
def test_onnx_export_runs_in_onnxruntime(name, tmp_path):
    import onnxruntime
    model, x = model_and_input(name)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=True, verbose=False)
    session = onnxruntime.InferenceSession(str(path))
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), model(x), rtol=1e-4, atol=1e-4)
