"""`archdsl export`: standalone PyTorch source, ONNX, TorchScript and torch.export files."""

import ast
import importlib.util
from pathlib import Path

import pytest
import torch

import archdsl
from archdsl.codegen import to_python
from helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent

SPECS = Path(__file__).resolve().parent.parent / "specs"
ALL_SPECS = sorted(p.stem for p in SPECS.glob("*.arch"))


def import_file(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def network_class(module):
    classes = [v for v in vars(module).values()
               if isinstance(v, type) and v.__module__ == module.__name__]
    return classes[-1]  # the network's class comes last


def generated(name, tmp_path, **params):
    net = archdsl.load(SPECS / f"{name}.arch", **params)
    path = tmp_path / f"gen_{name}.py"
    path.write_text(to_python(net))
    return net, import_file(path), path


@pytest.mark.parametrize("name", ALL_SPECS)
def test_python_source_builds_the_same_module(name, tmp_path):
    net, module, path = generated(name, tmp_path)
    imports = {alias.name.split(".")[0] for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, (ast.Import, ast.ImportFrom))
               for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module)])}
    assert imports == {"torch"}
    ours = network_class(module)()  # constructible with no arguments
    reference = net.to_torch()
    assert list(ours.state_dict()) == list(reference.state_dict())
    assert sum(p.numel() for p in ours.parameters()) == net.params


@pytest.mark.parametrize("name", ["lenet5", "alexnet", "resnet18", "googlenet", "mobilenet_v2",
                                  "branches", "vgg11_bn"])
def test_python_source_computes_the_same_outputs(name, tmp_path):
    net, module, _ = generated(name, tmp_path)
    ours, reference = network_class(module)().eval(), net.to_torch().eval()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, *net.input_shape)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=0)


def test_python_source_reads_like_the_spec(tmp_path):
    _, _, path = generated("alexnet", tmp_path)
    text = path.read_text()
    assert "self.conv1 = nn.Conv2d(3, 64, 11, stride=4, padding=2)" in text
    assert "x = self.conv1(x)             # 64x55x55" in text
    assert "def __init__(self, num_classes=1000):" in text
    assert "self.linear3 = nn.Linear(4096, num_classes)" in text
    _, _, path = generated("resnet18", tmp_path)
    text = path.read_text()
    assert "class Basic_128_s_2(nn.Module):" in text
    assert "x = y1_1 + y1_2" in text and "self.residual1.shortcut.conv1(x)" in text
    for line in text.split("def forward")[1].splitlines()[1:]:
        if line.strip().startswith(("x =", "y")):
            assert "  # " in line  # every statement of forward shows its output shape


def test_arch_parameters_become_keyword_arguments(tmp_path):
    _, module, _ = generated("lenet5", tmp_path)
    assert network_class(module)(num_classes=3)(torch.randn(1, 1, 32, 32)).shape == (1, 3)
    spec = tmp_path / "wide.arch"
    spec.write_text("arch wide(width=8, num_classes=10)\ninput 3x8x8\n"
                    "conv width k3 p1; relu; conv width*2 k3 p1; relu\n"
                    "adaptiveavgpool 1; flatten; linear num_classes\n")
    net = archdsl.load(spec)
    path = tmp_path / "gen_wide.py"
    path.write_text(to_python(net))
    cls = network_class(import_file(path))
    assert cls(num_classes=4)(torch.randn(1, 3, 8, 8)).shape == (1, 4)
    with pytest.raises(ValueError, match="built for width=8"):
        cls(width=16)  # width changes channels deep inside: the file cannot follow it


run = run_cli


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(3)
    model = archdsl.build(SPECS / "lenet5.arch").eval()
    path = tmp_path / "lenet5.pt"
    torch.save(model.state_dict(), path)
    return model, path


def test_onnx_with_weights_runs_in_onnxruntime(tmp_path, capsys, checkpoint):
    import onnxruntime

    model, weights = checkpoint
    out = tmp_path / "lenet5.onnx"
    code, stdout, _ = run(capsys, "export", SPECS / "lenet5.arch", "--to", "onnx", "-o", out,
                          "--weights", weights)
    assert code == 0 and f"wrote {out}" in stdout
    session = onnxruntime.InferenceSession(str(out))
    x = torch.randn(3, 1, 32, 32)  # another batch size than the export's example
    (got,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), model(x), rtol=1e-4, atol=1e-5)


# The zoo's new families, made small with --set (same layers, fewer channels and blocks)
SMALL_FAMILIES = {
    "vit": ({"patch": 8, "layers": 1, "hidden": 32, "heads": 2, "mlp": 64}, (3, 32, 32)),
    "swin": ({"embed": 8, "h1": 1, "h2": 1, "h3": 2, "h4": 2, "d3": 2, "window": 2},
             (3, 64, 64)),
    "swin_v2": ({"embed": 8, "h1": 1, "h2": 1, "h3": 2, "h4": 2, "d3": 2, "window": 2},
                (3, 64, 64)),
    "maxvit": ({"stem": 8, "c1": 8, "c2": 16, "c3": 16, "c4": 32, "head_dim": 8,
                "partition": 2}, (3, 64, 64)),  # every stage's map a multiple of 2x2
    "convnext": ({"d3": 1, "c1": 8, "c2": 16, "c3": 16, "c4": 32, "layer_scale": 0.5},
                 (3, 64, 64)),
    "shufflenet_v2": ({"c2": 16, "c3": 32, "c4": 64, "c5": 64, "stem": 8}, (3, 64, 64)),
}


@pytest.mark.parametrize("name", sorted(SMALL_FAMILIES))
def test_onnx_of_each_new_family_runs_in_onnxruntime(name, tmp_path, capsys):
    import onnxruntime

    params, input_shape = SMALL_FAMILIES[name]
    torch.manual_seed(3)
    model = archdsl.load(SPECS / f"{name}.arch", input_shape=input_shape,
                         **params).to_torch().eval()
    weights = tmp_path / "w.pt"
    torch.save(model.state_dict(), weights)
    sets = [a for k, v in params.items() for a in ("--set", f"{k}={v}")]
    out = tmp_path / f"{name}.onnx"
    code, _, err = run(capsys, "export", SPECS / f"{name}.arch", "--to", "onnx", "-o", out,
                       "--weights", weights, "--input", "x".join(map(str, input_shape)), *sets)
    assert code == 0, err
    session = onnxruntime.InferenceSession(str(out))
    x = torch.randn(2, *input_shape)
    (got,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        expected = model(x)
    assert expected.abs().max() > 1e-3
    torch.testing.assert_close(torch.from_numpy(got), expected, rtol=1e-4, atol=1e-5)


def test_torchscript_and_exported_programs(tmp_path, capsys, checkpoint):
    model, weights = checkpoint
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        expected = model(x)
    ts, pt2 = tmp_path / "m.ts", tmp_path / "m.pt2"
    assert run(capsys, "export", SPECS / "lenet5.arch", "--to", "torchscript", "-o", ts,
               "--weights", weights)[0] == 0
    assert run(capsys, "export", SPECS / "lenet5.arch", "--to", "exported", "-o", pt2,
               "--weights", weights)[0] == 0
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(ts))(x), expected)
        torch.testing.assert_close(torch.export.load(str(pt2)).module()(x), expected)


def test_safetensors_weights(tmp_path, capsys):
    from safetensors.torch import save_file

    model = archdsl.build(SPECS / "lenet5.arch").eval()
    weights = tmp_path / "w.safetensors"
    save_file(model.state_dict(), str(weights))
    out = tmp_path / "m.ts"
    assert run(capsys, "export", SPECS / "lenet5.arch", "--to", "torchscript", "-o", out,
               "--weights", weights)[0] == 0
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(out))(x), model(x))


def test_a_checkpoint_of_another_spec_is_refused(tmp_path, capsys, checkpoint):
    _, weights = checkpoint
    code, _, err = run(capsys, "export", SPECS / "alexnet.arch", "--to", "onnx", "-o",
                       tmp_path / "a.onnx", "--weights", weights)
    assert code == 1 and "does not fit this spec" in err
    assert not (tmp_path / "a.onnx").exists()


def test_nothing_the_user_owns_is_overwritten(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "lenet5.py"
    mine.write_text("# my own file\n")
    code, _, err = run(capsys, "export", SPECS / "lenet5.arch", "--to", "python")
    assert code == 2 and "--force" in err and mine.read_text() == "# my own file\n"
    assert run(capsys, "export", SPECS / "lenet5.arch", "--to", "python", "--force")[0] == 0
    assert "class Lenet5" in mine.read_text()
    spec = tmp_path / "net.py"
    spec.write_text((SPECS / "lenet5.arch").read_text())
    code, _, err = run(capsys, "export", spec, "--to", "python", "-o", spec, "--force")
    assert code == 2 and "over the spec itself" in err


def test_a_spec_with_errors_is_not_exported(tmp_path, capsys):
    bad = tmp_path / "bad.arch"
    bad.write_text("input 3x8x8\nconv 8 k9\n")
    code, _, err = run(capsys, "export", bad, "--to", "python", "-o", tmp_path / "bad.py")
    assert code == 1 and "E-KERNEL" in err and not (tmp_path / "bad.py").exists()


def test_python_export_takes_no_weights(tmp_path, capsys, checkpoint):
    _, weights = checkpoint
    code, _, err = run(capsys, "export", SPECS / "lenet5.arch", "--to", "python", "-o",
                       tmp_path / "x.py", "--weights", weights)
    assert code == 2 and "load_state_dict" in err


def _run_folder(tmp_path, classes: int = 3) -> Path:
    """What `archdsl train` leaves (the parts export reads): the spec's copy, config.json with
    the parameters it was trained with, and best.safetensors of a 3-class LeNet-5."""
    import json

    from safetensors.torch import save_file

    run = tmp_path / "runs" / "lenet5-1"
    run.mkdir(parents=True)
    (run / "lenet5.arch").write_text((ROOT / "specs" / "lenet5.arch").read_text())
    (run / "config.json").write_text(json.dumps({"spec": "lenet5.arch",
                                                 "parameters": {"num_classes": classes}}))
    model = archdsl.load(ROOT / "specs" / "lenet5.arch", num_classes=classes).to_torch()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(run / "best.safetensors"))
    return run


def test_a_run_folder_exports_with_its_parameters_and_best_weights(tmp_path, capsys,
                                                                    monkeypatch):
    """Issue 25: `export RUN --to onnx` uses the run's num_classes and its best weights."""
    run = _run_folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "export", run, "--to", "torchscript")
    assert code == 0, err
    assert out == (f"wrote lenet5.ts (torchscript, with weights from "
                   f"{run / 'best.safetensors'})\n")
    module = torch.jit.load(str(tmp_path / "lenet5.ts"))
    assert module(torch.randn(2, 1, 32, 32)).shape == (2, 3)
    code, out, _ = run_cli(capsys, "check", run)  # check and explain read the run alike
    assert code == 0 and out.startswith("lenet5: 1x32x32 -> 3   ")
    code, out, _ = run_cli(capsys, "explain", run, "linear3")
    assert code == 0 and "84 * 3" in out
    code, _, err = run_cli(capsys, "draw", run, "-o", tmp_path / "run.dot")
    assert code == 0, err
    dot = (tmp_path / "run.dot").read_text()
    assert 'label=" 3"' in dot and "61,111 params" in dot  # 3 classes: 61,111, not 61,706
    code, out, err = run_cli(capsys, "time", run, "--batch-size", "2", "--repeat", "1",
                             "--warmup", "0")
    assert code == 0 and out.startswith("lenet5: 1x32x32 -> 3"), err


def test_weights_of_another_class_count_hint_the_set_value(tmp_path, capsys):
    """Issue 25: the spec's default 10 classes against a 3-class run's weights."""
    run = _run_folder(tmp_path)
    code, _, err = run_cli(capsys, "export", ROOT / "specs" / "lenet5.arch", "--to", "onnx",
                           "-o", tmp_path / "x.onnx", "--weights", run / "best.safetensors")
    assert code == 1 and "needs weight of shape 10x84, the checkpoint has 3x84" in err
    assert "it was trained for 3 classes: add `--set num_classes=3`, or give the run " \
           "folder instead of the spec" in err
