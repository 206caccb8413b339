"""What many test files build: a tiny spec, a tiny folder of images, a CLI call that must
never print a traceback, and a comparison of two weight files. Imported as `helpers` (pytest
puts tests/ on sys.path). Nothing here imports torch at import time: a test that checks the
check path stays torch-free may import this module."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

import archdsl
from archdsl.cli import main
from archdsl.diagnostics import SpecError

TINY = """arch tiny(num_classes=2)
input {channels}x8x8
conv 4 k3 p1; relu
adaptiveavgpool 1; flatten; linear num_classes
"""


def tiny_spec(folder: Path, channels: int = 3, name: str = "tiny.arch",
              classes: int = 2) -> Path:
    """A four-channel conv, a pooling and a linear head on `channels`x8x8 images."""
    path = Path(folder) / name
    path.write_text(TINY.format(channels=channels).replace("num_classes=2",
                                                           f"num_classes={classes}"))
    return path


def image_folder(folder: Path, classes=("a", "b"), per_class: int = 8, size=(8, 8),
                 counts: dict | None = None, noise: bool = False) -> Path:
    """PNGs in one folder per class (ImageFolder's layout), seeded; `size` is (width,
    height) or one side. By default class c's pixels lie in 100c..100c+119, so the classes
    can be told apart; `noise` draws every pixel from 0..254 (nothing to learn). `counts`
    (class -> images) overrides classes and per_class. Class names may be bytes: folder
    names that are not UTF-8."""
    counts = counts or {c: per_class for c in classes}
    width, height = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(0)
    for c, (name, n) in enumerate(counts.items()):
        where = os.path.join(os.fsencode(folder), os.fsencode(name))
        os.makedirs(where, exist_ok=True)
        for i in range(n):
            if noise:
                pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
            else:
                pixels = rng.integers(0, 120, (height, width, 3), dtype=np.uint8) + 100 * c
            Image.fromarray(pixels).save(os.fsdecode(os.path.join(where, b"%d.png" % i)))
    return Path(folder)


def image_files(folder: Path, names, size=(8, 8)) -> Path:
    """Noise images (RGB, 0..254, seeded, each its own) at `folder`/NAME for each of `names`,
    flat or in subfolders (made as needed); the name's suffix picks the format, `size` is
    (width, height) or one side. For data sets that name their files (CSV/TSV tables)."""
    width, height = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(0)
    for name in names:
        (Path(folder) / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(
            Path(folder) / name)
    return Path(folder)


def same_weights(a: Path, b: Path) -> bool:
    """Two safetensors files hold the same tensor names with exactly equal values."""
    import torch
    from safetensors.torch import load_file

    x, y = load_file(str(a)), load_file(str(b))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """`archdsl ARGV…` in this process: exit status, stdout, stderr; never a traceback."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's --help and usage errors
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def assert_located_error(text: str, code: str, fragment: str, hint: str | None) -> None:
    """`text` fails to load with one error `code`, saying `fragment` (and `hint`), located on
    its last line."""
    import pytest

    with pytest.raises(SpecError) as err:
        archdsl.loads(text)
    (d,) = [d for d in err.value.diagnostics if d.is_error]
    assert d.code == code and fragment in d.message and d.span.line == text.count("\n")
    if hint:
        assert hint in d.hint


def copy_in_order(src, dst) -> None:
    """Every tensor of `src` into `dst`, the k-th into the k-th in registration order, where
    the two differ only in axes of size 1: timm's Scale holds a C-vector, archdsl's
    layerscale the C×1×1 tensor torchvision's ConvNeXt holds."""
    import torch

    theirs, ours = list(src.state_dict().values()), list(dst.state_dict().items())
    assert len(theirs) == len(ours)
    with torch.no_grad():
        for value, (key, target) in zip(theirs, ours):
            assert value.squeeze().shape == target.squeeze().shape, key
            target.copy_(value.reshape(target.shape))


def assert_onnx_matches(net, x, path: Path) -> None:
    """`net` exported to ONNX at `path` gives in onnxruntime what its compiled module gives on
    `x` (both built from one seed, so with the same weights)."""
    import onnxruntime
    import torch

    from archdsl.export import export

    torch.manual_seed(0)
    onnx = export(net, "onnx", path)
    torch.manual_seed(0)
    model = net.to_torch().eval()
    session = onnxruntime.InferenceSession(str(onnx))
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(out), model(x), rtol=1e-4, atol=1e-5)


def generated_module(source: str, folder: Path, name: str):
    """The Python module `source` (an `export --to python` file) imported as `name` from
    `folder`."""
    import importlib.util

    path = Path(folder) / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_macs(module, x) -> tuple:
    """Run `module` on `x`; its output and the multiply-accumulates of one sample, counted
    on the torch side: convolutions (output elements x (in channels / groups) x kernel area)
    and linear layers (in x out, at each position where one runs over a map's channels), the
    two archdsl counts."""
    import torch
    from torch import nn

    total = []

    def conv_hook(m, inputs, out):
        kh, kw = m.kernel_size
        total.append(out.numel() // out.shape[0] * (m.in_channels // m.groups) * kh * kw)

    def linear_hook(m, inputs, out):  # once per position when applied over a map's channels
        total.append(out.numel() // out.shape[0] // m.out_features * m.in_features *
                     m.out_features)

    hooks = [m.register_forward_hook(conv_hook) for m in module.modules()
             if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_hook(linear_hook) for m in module.modules()
              if isinstance(m, nn.Linear)]
    try:
        with torch.no_grad():
            y = module(x)
    finally:
        for h in hooks:
            h.remove()
    return y, sum(total)


def measured_field(text: str) -> int:
    """The widest receptive field (rows) of any output position of channel 0, by backprop
    through all-ones weights (an output that reads no input, between a dilated transposed
    kernel's taps, is passed over)."""
    import torch

    net = archdsl.loads(text, "field.arch")
    model = net.to_torch().eval()
    for p in model.parameters():
        torch.nn.init.constant_(p, 1.0)
    widest = 0
    for c in range(net.output_shape[1]):
        x = torch.ones(1, *net.input_shape, requires_grad=True)
        model(x)[0, 0, c, min(c, net.output_shape[2] - 1)].backward()
        rows = (x.grad[0].abs().sum((0, 2)) > 0).nonzero()
        if len(rows):
            widest = max(widest, int(rows.max() - rows.min() + 1))
    return widest
