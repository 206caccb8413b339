"""Every family in specs/ trains: `archdsl.train.train` runs one real training step of each
spec file's smallest model (the smallest entry of specs/torchvision.toml that uses the file,
or the file's own defaults), at the small input its zoo entry is compared at, on a synthetic
folder of images. Every trainable parameter must get a finite gradient and the epoch must
report a finite loss: a layer kind that cannot be trained (its weights unknown to the
gradient-health report, a module that breaks backward) fails here, whatever family holds it.

Writing the checkpoint is replaced by a check of the model (the files of a run are the same
for every kind, and tests/test_train.py and tests/test_run_faults.py test them): writing
VGG-11's 133M parameters three times would cost more than its step.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

import archdsl
from helpers import image_folder
from test_zoo import ZOO, entry, small_input

SPECS = Path(__file__).resolve().parent.parent / "specs"
# the U-Net and torchvision's segmentation models (the zoo's `task = "segment"`) label pixels:
# `archdsl train` on class folders refuses them. Their training steps, with a per-pixel loss,
# are in tests/test_geometry.py (the U-Net), tests/test_segmentation_zoo.py and, for the small
# U-Net trained on `shapes`, docs/training.md's example (run by tests/test_doc_examples.py).
DENSE = {"unet.arch", "unet_small.arch"} | {e["spec"] for e in ZOO.values()
                                            if e.get("task") == "segment"}
FAMILIES = sorted(p.name for p in SPECS.glob("*.arch") if p.name not in DENSE)
# specs outside the zoo trained at a smaller input than their own (with what that needs)
SMALL = {"mixer_b16.arch": ((3, 64, 64), {"patches": 16}), "nf_resnet50.arch": ((3, 64, 64), {}),
         "poolformer_s12.arch": ((3, 64, 64), {})}


def smallest(spec_file: str) -> tuple[str, dict, tuple | None]:
    """(model name, `--set` values, input shape or None for the spec's own) of the spec
    file's smallest zoo model by parameters, or the spec's defaults when no entry uses it."""
    names = [n for n, e in ZOO.items() if e["spec"] == spec_file]
    if spec_file in SMALL:
        shape, params = SMALL[spec_file]
        return spec_file.removesuffix(".arch"), params, shape
    if not names:
        return spec_file.removesuffix(".arch"), {}, None
    sized = []
    for name in names:
        path, params, _, _ = entry(name)
        shape = small_input(name)
        sized.append((archdsl.load(path, input_shape=shape, **params).params, name, params,
                      shape))
    _, name, params, shape = min(sized)
    return name, params, shape


def test_every_spec_file_is_a_family_here():
    assert len(FAMILIES) >= 34
    assert {"vit.arch", "swin.arch", "swin_v2.arch", "maxvit.arch", "lenet5.arch"} <= set(FAMILIES)


@pytest.mark.parametrize("spec_file", FAMILIES)
def test_one_training_step(spec_file, tmp_path, monkeypatch):
    import torch

    from archdsl.train import TrainConfig, train
    from archdsl.train import loop

    name, params, shape = smallest(spec_file)
    text = (SPECS / spec_file).read_text(encoding="utf-8")
    if shape is not None:
        text, n = re.subn(r"(?m)^input \S+", "input " + "x".join(map(str, shape)), text)
        assert n == 1
    spec = tmp_path / spec_file
    spec.write_text(text, encoding="utf-8")
    network = archdsl.load(spec, **params)
    side = network.input_shape[1:]
    data = image_folder(tmp_path / "data", per_class=3, size=(side[1], side[0]))

    checked = []

    def check_instead_of_writing(s, epoch, rows, best, improved, confusion, log=None):
        model = s.model
        missing = [k for k, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert missing == [], f"{name}: no gradient reached {missing[:5]}"
        broken = [k for k, p in model.named_parameters()
                  if p.grad is not None and not torch.isfinite(p.grad).all()]
        assert broken == [], f"{name}: non-finite gradients in {broken[:5]}"
        checked.append((epoch, rows[-1]["train_loss"]))

    monkeypatch.setattr(loop, "checkpoint", check_instead_of_writing)
    lines: list[str] = []
    config = TrainConfig(epochs=1, batch_size=4, val_split=0.34, device="cpu", threads=1)
    train(spec, str(data), config, params=params, out=str(tmp_path / "run"), log=lines.append)
    assert len(checked) == 1 and checked[0][0] == 1, lines
    assert math.isfinite(checked[0][1]), lines
    assert any(line.startswith("epoch 1/1  train loss") for line in lines), lines
