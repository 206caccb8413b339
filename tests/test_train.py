"""`archdsl train`: the built-in digits, image folders of every kind, the run folder, errors."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from archdsl.cli import main
from archdsl.train import TrainConfig, train
from archdsl.train.data import load_dataset
from helpers import run_cli

SPECS = Path(__file__).resolve().parent.parent / "specs"
TINY = """arch tiny(num_classes=2)
input {channels}x16x16
conv 8 k3 p1 nobias; bn; relu; maxpool 2
adaptiveavgpool 1; flatten; linear num_classes
"""


run = run_cli


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
    # four epochs (the README's main job, which the suite runs too, trains ten)
    train(SPECS / "lenet5.arch", "digits", TrainConfig(epochs=4, quiet=True), out=str(out))
    rows = (out / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "lr",
                      "images_per_s", "seconds"]
    assert len(rows) == 5
    best = max(float(r.split(",")[4]) for r in rows[1:])
    assert best >= 0.9, rows  # 94.4% here, with 2 threads and with 1
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
    saved = load_file(str(out / "best.safetensors"))
    model.load_state_dict(saved)
    loaded = model.state_dict()
    assert loaded.keys() == saved.keys() and len(saved) == 10  # 5 layers' weights and biases
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)
    assert not torch.equal(saved["conv1.weight"], archdsl.build(SPECS / "lenet5.arch")
                           .state_dict()["conv1.weight"])  # trained, not a fresh start


def test_a_class_folder_is_split_stratified_and_odd_files_are_skipped(tmp_path, capsys):
    data = make_images(tmp_path / "pets")
    (data / "cat" / "notes.txt").write_text("not an image")
    (data / "dog" / "empty.png").write_bytes(b"")
    good = (data / "dog" / "dog_0.png").read_bytes()
    (data / "dog" / "truncated.png").write_bytes(good[: len(good) // 2])
    spec = tmp_path / "tiny.arch"
    spec.write_text(TINY.format(channels=3))
    code, out, err = run(capsys, "train", spec, data, "--epochs", "1", "--out", tmp_path / "r",
                         "--val-split", "0.34")
    assert code == 0
    assert err.count("warning: skipped 3 file(s)") == 1
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


def metrics_without_timing(run: Path) -> list[list[str]]:
    rows = [r.split(",") for r in (run / "metrics.csv").read_text().splitlines()]
    keep = [i for i, name in enumerate(rows[0]) if name not in ("images_per_s", "seconds")]
    return [[r[i] for i in keep] for r in rows]


def test_a_killed_run_resumes_to_the_same_metrics(tmp_path, capsys):
    import subprocess
    import sys
    import time

    spec = SPECS / "lenet5.arch"
    full, part = tmp_path / "full", tmp_path / "part"
    command = [sys.executable, "-m", "archdsl", "train", str(spec), "digits", "--epochs", "3",
               "--quiet", "--out"]
    # both runs in fresh processes, so that they compute with the same thread settings
    subprocess.run(command + [str(full)], check=True, capture_output=True)
    killed = subprocess.Popen(command + [str(part)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and killed.poll() is None:
        metrics = part / "metrics.csv"
        if (part / "resume.pt").exists() and metrics.exists() and \
                len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.02)
    killed.kill()
    killed.wait()
    assert len((part / "metrics.csv").read_text().splitlines()) < 4  # it really was cut short
    subprocess.run([sys.executable, "-m", "archdsl", "train", "--resume", str(part), "--quiet"],
                   check=True, capture_output=True)
    assert metrics_without_timing(part) == metrics_without_timing(full)
    from safetensors.torch import load_file

    a, b = load_file(str(full / "last.safetensors")), load_file(str(part / "last.safetensors"))
    assert all((a[k] == b[k]).all() for k in a)


def test_resume_needs_a_run_folder(tmp_path, capsys):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text("{}")
    code, _, err = run(capsys, "train", "--resume", tmp_path / "r")
    assert code == 1 and "config.json is damaged or not archdsl's: it has no 'spec'" in err
    code, _, err = run(capsys, "train", "--resume", tmp_path / "nothing")
    assert code == 1 and "not a run folder" in err
    code, _, err = run(capsys, "train", SPECS / "lenet5.arch", "--resume", tmp_path / "r")
    assert code == 2


def test_a_run_stopped_before_its_first_epoch_resumes_from_the_start(tmp_path, capsys):
    make_images(tmp_path / "data")
    spec = tmp_path / "tiny.arch"
    spec.write_text(TINY.format(channels=3))
    options = ["--epochs", "1", "--batch-size", "4", "--quiet"]
    assert run(capsys, "train", spec, tmp_path / "data", *options, "--out", tmp_path / "r")[0] == 0
    for name in ("resume.pt", "metrics.csv", "last.safetensors", "best.safetensors"):
        (tmp_path / "r" / name).unlink()
    assert run(capsys, "train", "--resume", tmp_path / "r")[0] == 0
    assert (tmp_path / "r" / "best.safetensors").exists()
    assert len((tmp_path / "r" / "metrics.csv").read_text().splitlines()) == 2


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "lenet5"
    train(SPECS / "lenet5.arch", "digits", TrainConfig(epochs=6, quiet=True), out=str(out))
    return out


def test_the_run_folder_has_plots_and_a_resume_state(digits_run):
    for name in ("curves.png", "confusion.png", "confusion_normalized.png"):
        assert (digits_run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import torch

    state = torch.load(str(digits_run / "resume.pt"), weights_only=True)  # no code runs
    assert state["epoch"] == 6 and len(state["rows"]) == 6


def test_eval_reports_accuracy_per_class_and_the_confusion_matrix(digits_run, capsys):
    code, out, _ = run(capsys, "eval", digits_run, "digits")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("179 images  loss ") and "top-1 " in lines[0]
    last_val = float((digits_run / "metrics.csv").read_text().splitlines()[-1].split(",")[4])
    best_val = max(float(r.split(",")[4])
                   for r in (digits_run / "metrics.csv").read_text().splitlines()[1:])
    assert f"top-1 {best_val:.1%}" in lines[0]  # best.safetensors, on the run's own split
    assert last_val <= best_val
    assert "confusion matrix (rows: true class, columns: predicted)" in out
    code, out, _ = run(capsys, "eval", digits_run, "digits", "--format", "json")
    doc = json.loads(out)
    assert doc["images"] == 179 and len(doc["confusion"]) == 10
    assert sum(map(sum, doc["confusion"])) == 179
    assert sum(v["images"] for v in doc["per_class"].values()) == 179


def test_predict_prints_the_top_classes_with_probabilities(digits_run, tmp_path, capsys):
    from archdsl.train.data import load_digits

    _, samples = load_digits()
    image = tmp_path / "seven.png"
    seven = next(s for s in samples if s.label == 7)
    Image.fromarray(seven.pixels).resize((32, 32)).save(image)
    code, out, _ = run(capsys, "predict", digits_run, image, "--top", "3")
    assert code == 0
    path, rest = out.strip().split(": ")
    classes = [(c.split()[0], float(c.split()[1])) for c in rest.split(", ")]
    assert path == str(image) and len(classes) == 3
    assert classes[0][0] == "7" and 0.5 < classes[0][1] <= 1.0
    assert [p for _, p in classes] == sorted((p for _, p in classes), reverse=True)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    code, out, err = run(capsys, "predict", digits_run, broken, image)
    assert code == 1 and "cannot read it as an image" in err and str(image) in out


def test_a_checkpoint_of_another_spec_is_refused_naming_the_layer(digits_run, tmp_path, capsys):
    from safetensors.torch import save_file

    import archdsl

    other = archdsl.build(SPECS / "resnet20.arch")
    weights = tmp_path / "other.safetensors"
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(weights))
    code, _, err = run(capsys, "eval", digits_run, "digits", "--weights", weights)
    assert code == 1 and "does not fit this spec" in err
    assert "layer conv1 (" in err and "lenet5.arch:6)" in err and "needs weight of shape 6x1x5x5" in err


def test_vanishing_gradients_are_reported_with_the_layer_and_line(tmp_path, capsys):
    spec = tmp_path / "deep.arch"
    spec.write_text("arch deep(num_classes=10)\ninput 1x8x8\nflatten\n"
                    "repeat 12 { linear 32; sigmoid }\nlinear num_classes\n")
    code, _, err = run(capsys, "train", spec, "digits", "--epochs", "1", "--out", tmp_path / "r",
                       "--quiet")
    assert code == 0
    assert "warning: gradients are vanishing toward the first layers: repeat1.0.linear1" in err
    assert f"{spec}:4)" in err and "`bn`" in err


def test_a_non_finite_loss_names_the_layer(tmp_path, capsys):
    make_images(tmp_path / "data")
    spec = tmp_path / "plain.arch"
    spec.write_text("arch p(num_classes=2)\ninput 3x16x16\nflatten; linear 64; relu; "
                    "linear num_classes\n")
    code, _, err = run(capsys, "train", spec, tmp_path / "data", "--epochs", "4", "--out",
                       tmp_path / "r", "--lr", "1e30", "--optimizer", "sgd", "--batch-size", "2")
    assert code == 1 and "the loss became" in err
    import re

    assert re.search(r"the first non-finite values come out of linear\d, \S+plain.arch:3\)", err)
    assert "in epoch 1" in err and "no epoch had finished, so no weights were kept" in err


def test_progress_bar_on_a_terminal_only():
    import io

    from archdsl.train.progress import Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        bar = Progress("epoch 1/3", 2, stream=stream)
        bar.update(loss=0.5, acc=0.75, rate=100.0)
        bar.update(loss=0.4, acc=0.8, rate=120.0)
        bar.close()
    assert "\repoch 1/3 [" in tty.getvalue() and "2/2  loss 0.4000 acc 80.0%" in tty.getvalue()
    assert pipe.getvalue() == ""


def test_tensorboard_and_bf16_autocast_on_the_cpu(tmp_path, capsys):
    code, out, _ = run(capsys, "train", SPECS / "lenet5.arch", "digits", "--epochs", "1", "--out",
                       tmp_path / "r", "--tensorboard", "--precision", "bf16", "--quiet",
                       "--schedule", "step", "--step-size", "1", "--gamma", "0.5")
    assert code == 0 and out == ""  # --quiet: nothing on stdout
    assert list((tmp_path / "r" / "tensorboard").glob("events.out.tfevents.*"))
    assert json.loads((tmp_path / "r" / "config.json").read_text())["precision"] == "bfloat16"


@pytest.mark.parametrize("argv", [
    ["train", str(SPECS / "lenet5.arch"), "digits", "--epochs", "0"],
    ["train", str(SPECS / "lenet5.arch"), "digits", "--batch-size", "0"],
    ["train", str(SPECS / "lenet5.arch"), "digits", "--val-split", "1.5"],
    ["train", str(SPECS / "lenet5.arch")],
    ["train", str(SPECS / "missing.arch"), "digits"],
])
def test_training_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


# ----------------------------------------------------------------------------- input pipeline


def _metrics(run: Path) -> list[list[str]]:
    """metrics.csv without the timing columns."""
    return [line.split(",")[:7] for line in (run / "metrics.csv").read_text().splitlines()]


def test_memory_and_disk_caches_train_alike_and_the_disk_cache_is_reused(tmp_path, monkeypatch):
    import archdsl.train.pipeline as pipeline

    config = dict(epochs=2, quiet=True, cache_dir=str(tmp_path / "cache"))
    train(SPECS / "lenet5.arch", "digits", TrainConfig(cache="memory", **config),
          out=str(tmp_path / "memory"))
    train(SPECS / "lenet5.arch", "digits", TrainConfig(cache="disk", **config),
          out=str(tmp_path / "disk"))
    assert _metrics(tmp_path / "memory") == _metrics(tmp_path / "disk")
    files = sorted((tmp_path / "cache").iterdir())
    assert [f.name.split("-")[0] for f in files] == ["1618x1x37x37", "179x1x37x37"]

    def no_decoding(*args):
        raise AssertionError("the disk cache was decoded again")

    monkeypatch.setattr(pipeline, "resized_pixels", no_decoding)
    train(SPECS / "lenet5.arch", "digits", TrainConfig(cache="disk", **config),
          out=str(tmp_path / "again"))
    assert _metrics(tmp_path / "again") == _metrics(tmp_path / "disk")
    assert sorted((tmp_path / "cache").iterdir()) == files


def test_augmenting_on_the_device_learns_as_well(tmp_path):
    """`--augment-on gpu` runs on any device: here the CPU stands in for the GPU."""
    out = tmp_path / "run"
    code = main(["train", str(SPECS / "lenet5.arch"), "digits", "--epochs", "4", "--quiet",
                 "--augment-on", "gpu", "--cache", "memory", "--out", str(out)])
    assert code == 0
    best = max(float(row[4]) for row in _metrics(out)[1:])
    # chance is 10%; four epochs reached 83-94% on either path with seeds 0-2
    assert best >= 0.8, _metrics(out)
    options = json.loads((out / "config.json").read_text())["options"]
    assert options["augment_on"] == "gpu" and options["cache"] == "memory"


def test_curves_show_whole_epochs_accuracy_in_percent_the_learning_rate_and_the_run():
    from archdsl.train.plots import curves_figure

    rows = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "train_acc": 0.1 * e,
             "val_acc": 0.123 * e, "val_top5": 0.2 * e, "lr": 0.05 / e} for e in (1, 2, 3)]
    fig = curves_figure(rows, title="lenet5: runs/lenet5-1")
    fig.canvas.draw()
    loss, acc, lr = fig.axes
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    # the console prints `acc 24.6%`: the plot's values are those percentages
    assert list(acc.lines[1].get_ydata()) == pytest.approx([12.3, 24.6, 36.9])
    assert "%" in acc.get_title() and acc.get_ylim()[1] > 100
    assert list(lr.lines[0].get_ydata()) == pytest.approx([0.05, 0.025, 0.05 / 3])
    assert "learning rate" in lr.get_title()
    assert fig._suptitle.get_text() == "lenet5: runs/lenet5-1"


def test_the_confusion_matrix_has_a_colour_bar_level_labels_and_a_normalised_twin():
    import torch

    from archdsl.train.plots import confusion_figure

    counts = torch.tensor([[8, 2, 0], [1, 3, 0], [0, 0, 0]])
    fig = confusion_figure(counts, ["cat", "dog", "eel"], "validation")
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "images"  # the colour bar
    assert {t.get_rotation() for t in fig.axes[0].get_xticklabels()} == {0.0}
    cells = {t.get_text() for t in fig.axes[0].texts}
    assert cells == {"8", "2", "1", "3"}
    normal = confusion_figure(counts, ["cat", "dog", "eel"], "validation", normalized=True)
    assert normal.axes[1].get_ylabel() == "% of the true class"
    assert {t.get_text() for t in normal.axes[0].texts} == {"80", "20", "25", "75"}
    assert "normalised" in normal.axes[0].get_title()
    long = [f"a rather long class name {i}" for i in range(12)]
    wide = confusion_figure(torch.eye(12, dtype=torch.long), long)
    assert {t.get_rotation() for t in wide.axes[0].get_xticklabels()} == {90.0}


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_more_epochs_after_a_finished_schedule_plan_it_again(tmp_path, schedule):
    """Issue 13: `--resume --epochs 2` after a finished 1-epoch cosine run trained at lr 0
    from where the schedule had ended; it is planned again over 2 epochs, and said so."""
    from archdsl.train import resume

    spec = tmp_path / "tiny.arch"
    spec.write_text(TINY.format(channels=3))
    make_images(tmp_path / "data")
    config = TrainConfig(epochs=1, batch_size=4, quiet=True, schedule=schedule,
                         warmup_epochs=0)
    train(spec, str(tmp_path / "data"), config, out=str(tmp_path / "r"))
    lines = []
    resume(tmp_path / "r", epochs=2, log=lines.append)
    said = [line for line in lines if "planned again" in line]
    assert len(said) == 1, lines
    if schedule == "cosine":  # 1 of 2 epochs done: half way down from 0.05
        assert "goes on at 0.025 (it was 0)" in said[0]
    rows = metrics_without_timing(tmp_path / "r")
    assert [r[0] for r in rows] == ["epoch", "1", "2"]
    import json

    assert json.loads((tmp_path / "r" / "config.json").read_text())["options"]["epochs"] == 2


def test_the_run_keeps_the_very_text_it_compiled(tmp_path, monkeypatch):
    """Issue 21: the spec was read up to five times, so a file saved while a run started
    could leave a run folder whose copy is not what was trained. It is read once now."""
    from archdsl.train import setup

    spec = tmp_path / "tiny.arch"
    first = ("arch tiny(num_classes=2)\ninput 3x8x8\nconv 4 k3 p1; relu\n"
             "adaptiveavgpool 1; flatten; linear num_classes\n")
    spec.write_text(first)
    make_images(tmp_path / "data", size=(8, 8))
    real = setup.load_dataset

    def saved_meanwhile(*args, **kwargs):  # an editor saves the spec while the run starts
        spec.write_text(first.replace("conv 4", "conv 16"))
        return real(*args, **kwargs)

    monkeypatch.setattr(setup, "load_dataset", saved_meanwhile)
    run = train(spec, str(tmp_path / "data"), TrainConfig(epochs=1, batch_size=4, quiet=True),
                out=str(tmp_path / "r"))
    from safetensors.torch import load_file

    assert (run / "tiny.arch").read_text() == first
    assert load_file(str(run / "last.safetensors"))["conv1.weight"].shape == (4, 3, 3, 3)
