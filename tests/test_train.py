"""`archdsl train`: the built-in digits, image folders of every kind, the run folder, errors."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from archdsl.cli import main
from archdsl.train import TrainConfig, train
from archdsl.train.data import load_dataset

SPECS = Path(__file__).resolve().parent.parent / "specs"
TINY = """arch tiny(num_classes=2)
input {channels}x16x16
conv 8 k3 p1 nobias; bn; relu; maxpool 2
adaptiveavgpool 1; flatten; linear num_classes
"""


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def make_images(folder: Path, classes=("cat", "dog"), per_class=6, size=(20, 24)):
    """Images in many modes, plus files that are not images."""
    rng = np.random.default_rng(0)
    modes = ["RGB", "L", "RGBA", "CMYK", "P", "I;16", "LA", "1"]
    for c, name in enumerate(classes):
        d = folder / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            mode = modes[(i + c) % len(modes)]
            array = rng.integers(0, 255, size=(*size[::-1], 3), dtype=np.uint8)
            image = Image.fromarray(array).convert("RGB")
            if mode == "I;16":
                image = Image.fromarray((array[..., 0].astype(np.uint16) * 257))
            elif mode != "RGB":
                image = image.convert(mode)
            ext = "tiff" if mode in ("CMYK", "I;16") else "png"
            image.save(d / f"{name}_{i}.{ext}")
    return folder


def test_lenet5_learns_the_builtin_digits(tmp_path):
    out = tmp_path / "run"
    train(SPECS / "lenet5.arch", "digits", TrainConfig(epochs=12, quiet=True), out=str(out))
    rows = (out / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "lr",
                      "images_per_s", "seconds"]
    assert len(rows) == 13
    best = max(float(r.split(",")[4]) for r in rows[1:])
    assert best >= 0.95, rows
    config = json.loads((out / "config.json").read_text())
    assert config["classes"] == [str(d) for d in range(10)]
    assert config["train_images"] + config["val_images"] == 1797
    assert config["parameters"] == {"num_classes": 10}
    assert len(config["normalisation"]["mean"]) == 1 and config["options"]["seed"] == 0
    assert {"lenet5.arch", "config.json", "metrics.csv", "best.safetensors",
            "last.safetensors"} <= {p.name for p in out.iterdir()}


def test_weights_load_back_into_the_compiled_spec(tmp_path):
    from safetensors.torch import load_file

    import archdsl

    out = tmp_path / "run"
    train(SPECS / "lenet5.arch", "digits", TrainConfig(epochs=1, quiet=True), out=str(out))
    model = archdsl.build(SPECS / "lenet5.arch")
    model.load_state_dict(load_file(str(out / "best.safetensors")))


def test_a_class_folder_is_split_stratified_and_odd_files_are_skipped(tmp_path, capsys):
    data = make_images(tmp_path / "pets")
    (data / "cat" / "notes.txt").write_text("not an image")
    (data / "dog" / "empty.png").write_bytes(b"")
    good = (data / "dog" / "dog_0.png").read_bytes()
    (data / "dog" / "truncated.png").write_bytes(good[: len(good) // 2])
    spec = tmp_path / "tiny.arch"
    spec.write_text(TINY.format(channels=3))
    code, out, _ = run(capsys, "train", spec, data, "--epochs", "1", "--out", tmp_path / "r",
                       "--val-split", "0.34")
    assert code == 0
    assert out.count("warning: skipped 3 file(s)") == 1
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["classes"] == ["cat", "dog"] and config["split"] == "val_split"
    assert config["train_images"] == 8 and config["val_images"] == 4  # 2 of 6 per class
    assert len(config["skipped"]) == 3
    assert "epoch 1/1" in out and "\r" not in out  # plain lines off a terminal


def test_train_and_val_folders_and_grayscale_specs(tmp_path, capsys):
    make_images(tmp_path / "data" / "train", per_class=4)
    make_images(tmp_path / "data" / "val", per_class=2)
    spec = tmp_path / "gray.arch"
    spec.write_text(TINY.format(channels=1))
    code, _, _ = run(capsys, "train", spec, tmp_path / "data", "--epochs", "1", "--out",
                     tmp_path / "r", "--optimizer", "adamw", "--schedule", "onecycle",
                     "--label-smoothing", "0.1", "--clip-grad", "1.0", "--no-augment")
    assert code == 0
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (config["train_images"], config["val_images"], config["split"]) == (8, 4, "folders")
    assert config["options"]["optimizer"] == "adamw" and config["options"]["lr"] == 0.001


def test_the_class_count_must_match_the_last_layer(tmp_path, capsys):
    make_images(tmp_path / "data")
    spec = tmp_path / "fixed.arch"
    spec.write_text("input 3x16x16\nconv 4 k3; relu; adaptiveavgpool 1; flatten; linear 5\n")
    code, _, err = run(capsys, "train", spec, tmp_path / "data", "--epochs", "1",
                       "--out", tmp_path / "r")
    assert code == 1 and "gives 5 outputs" in err and "has 2 classes" in err
    assert not (tmp_path / "r").exists()


def test_a_non_finite_loss_stops_the_run(tmp_path, capsys):
    make_images(tmp_path / "data")
    spec = tmp_path / "plain.arch"
    spec.write_text("arch p(num_classes=2)\ninput 3x16x16\nflatten; linear 64; relu; "
                    "linear num_classes\n")
    code, _, err = run(capsys, "train", spec, tmp_path / "data", "--epochs", "3", "--out",
                       tmp_path / "r", "--lr", "1e30", "--optimizer", "sgd")
    assert code == 1 and "the loss became" in err and "--lr" in err


def test_an_existing_run_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "precious.txt").write_text("mine")
    code, _, err = run(capsys, "train", SPECS / "lenet5.arch", "digits", "--epochs", "1",
                       "--out", out)
    assert code == 1 and "--exist-ok" in err and (out / "precious.txt").read_text() == "mine"


def test_dataset_errors_are_clear(tmp_path):
    from archdsl.train import DataError

    with pytest.raises(DataError, match="not a folder"):
        load_dataset(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        load_dataset(str(tmp_path / "empty"))
    (tmp_path / "half" / "train" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no val/"):
        load_dataset(str(tmp_path / "half"))
