"""`archdsl train`, `eval` and `predict` on images with masks: a spec that scores every pixel
trains with per-pixel cross-entropy (255 ignored, an auxiliary output weighed, class weights
by pixels), the epoch line and metrics.csv carry pixel accuracy and mean IoU, the geometric
augmentations move each mask with its image (on the CPU and on the device path), a resumed
run ends where an uninterrupted one does, two torchrun workers train as one process, eval
reports per-class IoU, the confusion and the worst images, and predict writes masks.

Cheap by design: 16x16 images of the built-in shapes and a network of two convolutions.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from archdsl.train import TrainConfig, shapes, TrainError, evaluate_run, predict, train
from archdsl.train.errors import TrainUsageError
from archdsl.train.pipeline import GpuAugment
from archdsl.train.seg_images import joint_transforms
from helpers import run_cli, same_weights
from helpers_seg import write_segmentation_folder

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}

TINY = """arch tiny(num_classes=4)
input 3x16x16
conv 8 k3 p1; relu
conv 8 k3 p1; relu
conv num_classes k1
"""

# a main output and an auxiliary one read from the middle, as FCN's and DeepLab's are
WITH_AUX = """arch with_aux(num_classes=4)
input 3x16x16
conv 8 k3 p1; relu -> middle
conv num_classes k1 -> aux
middle
conv 8 k3 p1; relu
conv num_classes k1 -> out
output out, aux aux=0.5
"""


def spec(tmp_path, text=TINY, name="tiny.arch") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def quiet(**options) -> TrainConfig:
    return TrainConfig(**{"quiet": True, "batch_size": 8, "workers": 0, **options})


def rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_segmentation_folder(tmp_path_factory.mktemp("seg") / "data", n=24, size=16,
                                     layout="train_val", classes_file=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data):
    """Three epochs of the tiny network on the folder, and what it said."""
    root = tmp_path_factory.mktemp("run")
    lines: list[str] = []
    run = train(spec(root), str(data), quiet(epochs=3, optimizer="adamw", lr=0.01),
                out=str(root / "run"), log=lines.append)
    return run, lines


# ----------------------------------------------------------------------------- training


def test_a_run_reports_pixel_accuracy_and_mean_iou_per_epoch(trained):
    run, lines = trained
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == 3 and all("pixel acc" in e and "mIoU" in e for e in epochs)
    assert "top5" not in "".join(epochs)
    assert lines[-1].startswith("best val mean IoU")
    metrics = rows(run)
    assert list(metrics[0]) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc",
                                "val_miou", "lr", "images_per_s", "seconds"]
    assert all(0 <= float(r[k]) <= 1 for r in metrics for k in ("val_acc", "val_miou"))
    assert float(metrics[-1]["train_loss"]) < float(metrics[0]["train_loss"])
    for name in ("best.safetensors", "last.safetensors", "curves.png", "confusion.png",
                 "config.json", "resume.pt"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "segment"
    assert config["classes"] == ["background", "circle", "square", "triangle"]
    assert config["palette"][:12] == list(shapes.PALETTE)[:12]  # the masks' own colours


def test_the_best_weights_are_those_of_the_best_mean_iou(trained):
    run, _ = trained
    metrics = rows(run)
    best = max(range(len(metrics)), key=lambda i: float(metrics[i]["val_miou"]))
    state = torch.load(run / "resume.pt", weights_only=True)
    assert state["best"] == pytest.approx(float(metrics[best]["val_miou"]), abs=1e-6)


def test_a_classifier_on_masks_is_refused_naming_the_output_it_needs(tmp_path, data):
    classifier = spec(tmp_path, "arch c(num_classes=4)\ninput 3x16x16\nconv 8 k3; relu\n"
                      "adaptiveavgpool 1; flatten; linear num_classes\n")
    with pytest.raises(TrainError, match=r"gives 4, but .* segmentation data set of 4 classes"
                                         r".*4x16x16.*resize mode=bilinear"):
        train(classifier, str(data), quiet(epochs=1), out=str(tmp_path / "r"))


@pytest.mark.parametrize("option", [dict(mixup=0.2), dict(cutmix=1.0),
                                    dict(augment="trivialaugment"), dict(sampler="balanced"),
                                    dict(cache="memory")])
def test_options_that_would_split_image_and_mask_are_refused(tmp_path, data, option):
    with pytest.raises(TrainUsageError, match="not for segmentation"):
        train(spec(tmp_path), str(data), quiet(epochs=1, **option), out=str(tmp_path / "r"))


def test_the_auxiliary_output_adds_its_weighted_loss(tmp_path, data):
    from archdsl.flow import weighted_loss
    from archdsl.network import load

    network = load(spec(tmp_path, WITH_AUX, "aux.arch"))
    assert [o.aux for o in network.graph.outputs] == [None, 0.5]
    model = network.to_torch().train()
    x, y = torch.randn(2, 3, 16, 16), torch.randint(0, 4, (2, 16, 16))
    y[0, :4] = 255
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=255)
    out, aux = model(x)
    _, loss = weighted_loss((out, aux), y, loss_fn, [None, 0.5])
    expected = loss_fn(out, y) + 0.5 * loss_fn(aux, y)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()))
    lines: list[str] = []
    run = train(spec(tmp_path, WITH_AUX, "aux.arch"), str(data), quiet(epochs=1),
                out=str(tmp_path / "r"), log=lines.append)
    assert rows(run)[0]["val_miou"]


@pytest.mark.parametrize("spec_file", ["deeplabv3_mobilenet_v3_large_aux.arch",
                                       "lraspp_mobilenet_v3_large.arch"])
def test_torchvisions_segmentation_specs_train_on_masks(tmp_path, spec_file):
    """A zoo spec (an auxiliary head, a resize back to the input) through `archdsl train` at
    64x64, num_classes from the data."""
    import re

    text = (ROOT / "specs" / spec_file).read_text(encoding="utf-8")
    text, n = re.subn(r"(?m)^input \S+", "input 3x64x64", text)
    assert n == 1
    data = write_segmentation_folder(tmp_path / "data", n=6, size=64, layout="train_val")
    lines: list[str] = []
    run = train(spec(tmp_path, text, spec_file), str(data), quiet(epochs=1, batch_size=4),
                out=str(tmp_path / "r"), log=lines.append)
    assert json.loads((run / "config.json").read_text())["parameters"]["num_classes"] == 4
    assert 0 <= float(rows(run)[0]["val_miou"]) <= 1


def test_class_weights_count_pixels(tmp_path, data):
    lines: list[str] = []
    train(spec(tmp_path), str(data), quiet(epochs=1, class_weights="auto"),
          out=str(tmp_path / "r"), log=lines.append)
    (line,) = [x for x in lines if x.startswith("--class-weights auto")]
    assert "background" in line and " pixels)" in line
    weights = [float(part.split()[1]) for part in line.split(": ", 1)[1].split(", ")]
    assert weights[0] == min(weights)  # the background covers most pixels


def test_ignored_pixels_count_nowhere(tmp_path):
    from archdsl.train.task import Segmentation

    out = torch.zeros(1, 2, 2, 2)
    out[0, 1] = 1.0  # predicts class 1 everywhere
    y = torch.tensor([[[1, 255], [0, 255]]])
    correct, counted = Segmentation().step_sums(out, y)
    assert (float(correct), float(counted)) == (1.0, 2.0)


def test_the_small_unet_computes_what_its_pytorch_twin_does():
    """specs/unet_small.arch (docs/training.md trains it on `shapes`) against
    tests/unet_reference.py's SmallUNet, in training mode (batch norm on the batch)."""
    from archdsl.network import load
    from archdsl.transfer import transfer_weights
    from unet_reference import SmallUNet

    torch.manual_seed(0)
    reference = SmallUNet(width=8).train()
    ours = load(ROOT / "specs" / "unet_small.arch", width=8, input_shape=(3, 32, 32)).to_torch()
    transfer_weights(reference, ours)
    x = torch.randn(2, 3, 32, 32)
    expected, got = reference(x), ours.train()(x)
    assert got.shape == (2, 4, 32, 32) and expected.abs().max() > 1e-2
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- augmentation


def _coded(n=1, size=24, seed=0):
    """Images whose grey level is 40 x their mask's class, in 6x6 blocks (so a resampled pixel
    away from a block's edge keeps its block's value)."""
    g = torch.Generator().manual_seed(seed)
    blocks = torch.randint(0, 4, (n, size // 6, size // 6), generator=g)
    masks = blocks.repeat_interleave(6, 1).repeat_interleave(6, 2).to(torch.uint8)
    images = (masks * 40).unsqueeze(1).expand(n, 3, size, size).contiguous()
    return images, masks


def _agreement(x, masks) -> float:
    """The share of pixels whose grey level (0..1 scale) says the mask's class."""
    decoded = torch.round(x[:, 0] * 255 / 40).long()
    return float((decoded == masks).float().mean())


def test_cpu_augmentation_moves_the_mask_with_its_image():
    images, masks = _coded()
    image = Image.fromarray(images[0].permute(1, 2, 0).numpy())
    transform = joint_transforms((16, 16), None, None, train=True, augment=True, flip=True)
    drawn = []
    for seed in range(20):
        torch.manual_seed(seed)
        x, m = transform(image, masks[0].numpy())
        assert x.shape == (3, 16, 16) and m.shape == (16, 16) and m.dtype == torch.uint8
        drawn.append((x[None], m[None].long()))
    # antialiased resampling blends the pixels at blocks' edges; a mask paired with another
    # draw's image (a crop or flip that missed the mask) agrees on far fewer
    together = sum(_agreement(x, m) for x, m in drawn) / len(drawn)
    apart = sum(_agreement(drawn[i][0], drawn[i - 1][1]) for i in range(len(drawn))) / len(drawn)
    assert together > 0.8 and apart < 0.6, (together, apart)
    plain = joint_transforms((16, 16), None, None, train=False, augment=False, flip=False)
    x, m = plain(image, masks[0].numpy())
    assert _agreement(x[None], m[None].long()) > 0.8


def test_device_augmentation_moves_the_mask_with_its_image():
    images, masks = _coded(n=32)
    augment = GpuAugment((16, 16), [0.0] * 3, [1.0] * 3, scale=(0.25, 1.0), ratio=(0.75, 4 / 3),
                         generator=torch.Generator().manual_seed(0))
    x, m = augment.train()(images, masks)
    assert x.shape == (32, 3, 16, 16) and m.shape == (32, 16, 16) and m.dtype == torch.int64
    assert _agreement(x, m) > 0.85
    assert _agreement(x, m.roll(1, 0)) < 0.6 and _agreement(x, m.flip(-1)) < 0.6
    assert not torch.equal(m, augment.eval()(images, masks)[1])
    x, m = augment.eval()(images, masks)  # eval: resized, nearest for the masks
    assert _agreement(x, m) > 0.85
    assert set(m.unique().tolist()) <= set(masks.unique().tolist())


def test_a_run_with_the_device_pipeline_trains_and_validates(tmp_path, data):
    run = train(spec(tmp_path), str(data), quiet(epochs=1, augment_on="gpu"),
                out=str(tmp_path / "r"))
    assert float(rows(run)[0]["val_acc"]) > 0


# ----------------------------------------------------------------------------- resume, DDP


def test_a_resumed_run_ends_as_an_uninterrupted_one(tmp_path, data):
    from archdsl.train import resume

    whole = train(spec(tmp_path), str(data), quiet(epochs=2), out=str(tmp_path / "whole"))
    part = train(spec(tmp_path), str(data), quiet(epochs=1), out=str(tmp_path / "part"))
    resume(part, epochs=2, log=lambda line: None)

    def timeless(run):
        return [{k: v for k, v in r.items() if k not in ("images_per_s", "seconds")}
                for r in rows(run)]

    assert timeless(whole) == timeless(part)
    assert same_weights(whole / "last.safetensors", part / "last.safetensors")


def test_two_workers_train_as_one_process(tmp_path, data):
    tiny = spec(tmp_path)
    # 18 training images: three global batches of 6, 3 per worker, none left out
    common = ["--epochs", "2", "--batch-size", "6", "--workers", "0", "--quiet"]
    one = subprocess.run([sys.executable, "-m", "archdsl", "train", str(tiny), str(data),
                          *common, "--out", str(tmp_path / "one")], env=ENV,
                         capture_output=True, text=True, timeout=300)
    two = subprocess.run([sys.executable, "-m", "archdsl", "train", str(tiny), str(data),
                          *common, "--nproc-per-node", "2", "--out", str(tmp_path / "two")],
                         env=ENV, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-3000:]
    assert "Traceback" not in two.stderr
    for a, b in zip(rows(tmp_path / "one"), rows(tmp_path / "two")):
        for key in ("train_loss", "val_loss", "val_acc", "val_miou"):
            assert float(a[key]) == pytest.approx(float(b[key]), abs=2e-3), key
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["distributed"]["world_size"] == 2 and config["task"] == "segment"


# ----------------------------------------------------------------------------- eval, predict


def test_eval_reports_iou_per_class_the_confusion_and_the_worst_images(trained, data):
    run, _ = trained
    r = evaluate_run(run, str(data), gallery_size=3)
    assert r["task"] == "segment" and r["count"] == 6  # val/ holds a quarter of 24
    assert set(r["per_class"]) == {"background", "circle", "square", "triangle"}
    assert int(r["confusion"].sum()) == 6 * 16 * 16
    assert 0 <= r["miou"] <= 1 and len(r["worst"]) == 3
    assert r["worst"][0]["iou"] <= r["worst"][-1]["iou"]
    assert r["worst"][0]["predicted"].shape == (16, 16)


def test_eval_refuses_data_of_the_other_task(trained, tmp_path):
    from archdsl.train import DataError
    from helpers import image_folder

    run, _ = trained
    with pytest.raises(DataError, match="has no masks, and the run labels pixels"):
        evaluate_run(run, str(image_folder(tmp_path / "classes", size=(16, 16))))


def test_the_eval_command_prints_the_table_and_draws_the_gallery(trained, data, capsys):
    run, _ = trained
    code, out, err = run_cli(capsys, "eval", run, data)
    assert code == 0, err
    for word in ("mean IoU", "background", "circle", "square", "triangle"):
        assert word in out, word
    gallery = run / "worst_segmentations.png"
    with Image.open(gallery) as picture:
        assert picture.info.get("Software") == "archdsl eval: worst segmentations"
        assert picture.width > picture.height / 3  # image | truth | prediction per row
    code, out, err = run_cli(capsys, "eval", run, data, "--format", "json", "--no-gallery")
    document = json.loads(out)
    assert set(document["per_class"]) == {"background", "circle", "square", "triangle"}


def test_predict_writes_a_mask_and_an_overlay_at_each_images_size(trained, tmp_path):
    run, _ = trained
    picture = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 20, 3), np.uint8)).save(
        picture)
    out = tmp_path / "masks"
    results = predict(run, [str(picture)], out=out)
    (name, shares, problem, files) = results[0]
    assert problem is None and sum(shares.values()) == pytest.approx(1.0)
    with Image.open(out / "photo_mask.png") as mask:
        assert mask.mode == "P" and mask.size == (20, 30)
        assert set(np.unique(np.asarray(mask)).tolist()) <= {0, 1, 2, 3}
    with Image.open(out / "photo_overlay.png") as overlay:
        assert overlay.mode == "RGB" and overlay.size == (20, 30)
    predict(run, [str(picture)], out=out)  # its own files are replaced
    (out / "photo_mask.png").write_bytes(b"the user's")
    with pytest.raises(TrainUsageError, match="not written by archdsl predict.*--force"):
        predict(run, [str(picture)], out=out)
    assert (out / "photo_mask.png").read_bytes() == b"the user's"


def test_the_predict_command_says_what_it_wrote(trained, tmp_path, capsys):
    run, _ = trained
    picture = tmp_path / "a.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(picture)
    code, out, err = run_cli(capsys, "predict", run, picture, "--out", tmp_path / "o")
    assert code == 0, err
    assert "a_mask.png" in out and "a_overlay.png" in out
    code, out, err = run_cli(capsys, "predict", run, picture, "--csv", tmp_path / "p.csv")
    assert code == 2 and "segmentation run writes a mask" in err
    assert "Traceback" not in err and not (tmp_path / "p.csv").exists()
