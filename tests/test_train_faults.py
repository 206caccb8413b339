"""`archdsl train` under faults: odd and broken data, Ctrl-C, SIGKILL, non-finite numbers, a
full disk, and damaged or malicious checkpoints. Each must end in a clear message and a
non-zero exit (or a finished run), never a traceback, a hang or a lost result."""

import csv
import errno
import json
import multiprocessing
import os
import pickle
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from archdsl.cli import main
from archdsl.files import is_temporary
from archdsl.train import TrainConfig, train
from archdsl.train.data import Sample, check_decodable, decode, load_dataset

from helpers import image_folder as tiny_images
from helpers import run_cli as run
from helpers import same_weights
from helpers import tiny_spec


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if is_temporary(p)]


def metrics_without_timing(run: Path) -> list[list[str]]:
    rows = list(csv.reader((run / "metrics.csv").read_text().splitlines()))
    keep = [i for i, name in enumerate(rows[0]) if name not in ("images_per_s", "seconds")]
    return [[r[i] for i in keep] for r in rows]


# ----------------------------------------------------------------------------- data


def odd_images(folder: Path) -> dict[str, str]:
    """One image per unusual mode and size; returns file name -> the mode PIL opens it in."""
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 255, (10, 12, 3), dtype=np.uint8))
    gray16 = rng.integers(0, 65535, (10, 12)).astype(np.uint16)
    floats = rng.normal(size=(10, 12)).astype(np.float32)
    floats[0, 0], floats[1, 1], floats[2, 2] = np.nan, np.inf, -np.inf
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray(rng.integers(0, 255, (10, 12), dtype=np.uint8)))
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(gray16).save(folder / "gray16.png")
    Image.fromarray(gray16.astype(np.int32) - 30000).save(folder / "int32.tiff")
    Image.fromarray(floats).save(folder / "float.tiff")
    palette.save(folder / "palette.png", transparency=0)
    rgb.convert("LA").save(folder / "gray_alpha.png")
    rgba.save(folder / "rgba.png")
    rgb.convert("CMYK").save(folder / "cmyk.jpg")
    rgb.convert("1").save(folder / "bits.png")
    rgb.resize((1, 1)).save(folder / "one_pixel.png")
    rgb.resize((3, 2)).save(folder / "three_by_two.png")
    return {"gray16.png": "I;16", "int32.tiff": "I", "float.tiff": "F", "palette.png": "P",
            "gray_alpha.png": "LA", "rgba.png": "RGBA", "cmyk.jpg": "CMYK", "bits.png": "1",
            "one_pixel.png": "RGB", "three_by_two.png": "RGB"}


def test_every_unusual_mode_and_tiny_size_is_read_and_trained_on(tmp_path, capsys):
    modes = {}
    for name in ("a", "b"):
        modes = odd_images(tmp_path / "data" / name)
    for file, mode in modes.items():
        with Image.open(tmp_path / "data" / "a" / file) as image:
            assert image.mode == mode, file  # the test really holds each mode
    for channels in (1, 3):
        data = load_dataset(str(tmp_path / "data"), 0.2, 0, channels)
        assert data.skipped == [] and len(data.train) + len(data.val) == 2 * len(modes)
        for sample in data.train + data.val:
            image = decode(sample, channels)
            assert image.mode == ("L" if channels == 1 else "RGB")
            assert np.isfinite(np.asarray(image, dtype=np.float32)).all()
    float_pixels = np.asarray(decode(Sample(0, path=tmp_path / "data" / "a" / "float.tiff"), 1))
    assert float_pixels.min() == 0 and float_pixels.max() == 255  # NaN and inf scaled, not cast
    code, out, err = run(capsys, "train", tiny_spec(tmp_path), tmp_path / "data", "--epochs", "1",
                         "--batch-size", "4", "--out", tmp_path / "r")
    assert code == 0 and "warning" not in err and "epoch 1/1" in out


def test_bad_files_are_skipped_with_a_warning_naming_each_and_a_count(tmp_path, capsys):
    data = tiny_images(tmp_path / "data")
    noise = Image.fromarray(np.random.default_rng(2).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    noise.save(tmp_path / "whole.png")
    noise.save(tmp_path / "whole.jpg")
    good_png, good_jpg = (tmp_path / "whole.png").read_bytes(), (tmp_path / "whole.jpg").read_bytes()
    (data / "a" / "truncated.png").write_bytes(good_png[: len(good_png) // 2])
    (data / "b" / "truncated.jpg").write_bytes(good_jpg[: len(good_jpg) // 2])
    (data / "a" / "empty.png").write_bytes(b"")
    (data / "b" / "notes.txt").write_text("not an image")
    (data / "b" / "random.jpg").write_bytes(b"garbage " * 60)
    (data / "a" / ".DS_Store").write_bytes(b"\0\1")  # hidden files are not even looked at
    code, out, err = run(capsys, "train", tiny_spec(tmp_path), data, "--epochs", "1",
                         "--batch-size", "4", "--out", tmp_path / "r")
    assert code == 0
    warning = [line for line in err.splitlines() if line.startswith("warning: skipped")]
    assert len(warning) == 1 and warning[0].startswith(
        "warning: skipped 5 file(s) that are not readable images: ")
    assert "(config.json lists them all)" in warning[0]
    skipped = json.loads((tmp_path / "r" / "config.json").read_text())["skipped"]
    assert sorted(Path(p).name for p in skipped) == ["empty.png", "notes.txt", "random.jpg",
                                                     "truncated.jpg", "truncated.png"]
    assert f"{data / 'a' / 'empty.png'} (empty file)" in warning[0]
    assert f"{data / 'a' / 'truncated.png'} (truncated or damaged)" in warning[0]
    reasons = dict(check_decodable([Sample(0, path=data / "b" / n) for n in
                                    ("notes.txt", "random.jpg", "truncated.jpg")], 3)[1])
    assert reasons == {str(data / "b" / "notes.txt"): "not an image",
                       str(data / "b" / "random.jpg"): "not an image",
                       str(data / "b" / "truncated.jpg"): "truncated or damaged"}


def test_empty_class_folders_are_left_out_with_a_warning(tmp_path, capsys):
    data = tiny_images(tmp_path / "data", classes=("a", "b"))
    (data / "empty").mkdir()
    (data / "only junk").mkdir()
    (data / "only junk" / "x.png").write_bytes(b"")
    code, _, err = run(capsys, "train", tiny_spec(tmp_path), data, "--epochs", "1",
                       "--batch-size", "4", "--out", tmp_path / "r")
    assert code == 0
    assert "warning: left out 2 class folder(s) with no usable image: 'empty', 'only junk'" in err
    assert json.loads((tmp_path / "r" / "config.json").read_text())["classes"] == ["a", "b"]


def test_a_single_class_is_a_clear_error(tmp_path, capsys):
    data = tiny_images(tmp_path / "data", classes=("cats",))
    (data / "dogs").mkdir()  # a second folder, but empty
    code, out, err = run(capsys, "train", tiny_spec(tmp_path), data, "--epochs", "1",
                         "--out", tmp_path / "r")
    assert code == 1 and out == ""
    assert f"archdsl train: error: {data} has a single class, 'cats'; classification needs at " \
           "least two" in err
    assert not (tmp_path / "r").exists()


def test_nothing_usable_is_a_located_error(tmp_path, capsys):
    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        (tmp_path / "data" / name / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    code, _, err = run(capsys, "train", tiny_spec(tmp_path), tmp_path / "data", "--out",
                       tmp_path / "r")
    assert code == 1
    assert f"{tmp_path / 'data'} has no usable images: none of its 2 file(s) can be read" in err
    assert str(tmp_path / "data" / "a" / "broken.png") in err
    (tmp_path / "empty" / "a").mkdir(parents=True)
    code, _, err = run(capsys, "train", tiny_spec(tmp_path), tmp_path / "empty", "--out",
                       tmp_path / "r")
    assert code == 1 and "class folders are empty" in err
    tiny_images(tmp_path / "split" / "train")
    tiny_images(tmp_path / "split" / "val", classes=("a",), per_class=2)
    (tmp_path / "split" / "val" / "c").mkdir()
    (tmp_path / "split" / "val" / "c" / "0.png").write_bytes((tmp_path / "split" / "val" / "a" /
                                                              "0.png").read_bytes())
    code, _, err = run(capsys, "train", tiny_spec(tmp_path), tmp_path / "split", "--out",
                       tmp_path / "r")
    assert code == 1 and "has classes that train/ lacks or holds no usable image of: c" in err


@pytest.mark.filterwarnings("error::UserWarning")  # no "Glyph missing" noise either
def test_class_names_with_spaces_and_unicode(tmp_path, capsys):
    names = ("grey cat", "chien 🐕", "Ökologie")
    data = tiny_images(tmp_path / "data", classes=names)
    spec = tiny_spec(tmp_path).read_text().replace("num_classes=2", "num_classes=3")
    (tmp_path / "tiny.arch").write_text(spec)
    code, _, err = run(capsys, "train", tmp_path / "tiny.arch", data, "--epochs", "1",
                       "--batch-size", "4", "--out", tmp_path / "r")
    assert code == 0 and "warning" not in err
    assert json.loads((tmp_path / "r" / "config.json").read_text())["classes"] == sorted(names)
    code, out, _ = run(capsys, "eval", tmp_path / "r", data)
    assert code == 0 and all(name in out for name in names)
    code, out, _ = run(capsys, "predict", tmp_path / "r", data / "grey cat" / "0.png")
    assert code == 0 and any(name in out for name in names)


def test_no_validation_images_still_keeps_best_weights(tmp_path, capsys):
    data = tiny_images(tmp_path / "data")
    code, _, err = run(capsys, "train", tiny_spec(tmp_path), data, "--epochs", "2",
                       "--batch-size", "4", "--val-split", "0", "--out", tmp_path / "r")
    assert code == 0 and "warning: there are no validation images" in err
    assert same_weights(tmp_path / "r" / "best.safetensors", tmp_path / "r" / "last.safetensors")


@pytest.mark.parametrize("workers", [0, 1])
def test_an_image_lost_during_the_run_stops_it_naming_the_file(tmp_path, capsys, monkeypatch,
                                                              workers):
    from archdsl.train import progress

    data = tiny_images(tmp_path / "data")
    original = progress.Progress.update

    def update_then_lose_class_a(self, **kw):
        original(self, **kw)
        if self.label.startswith("epoch 2/") and self.done == 1:
            for image in (data / "a").iterdir():
                image.unlink()

    monkeypatch.setattr(progress.Progress, "update", update_then_lose_class_a)
    code, _, err = run(capsys, "train", tiny_spec(tmp_path), data, "--epochs", "3",
                       "--batch-size", "4", "--workers", workers, "--quiet", "--out",
                       tmp_path / "r")
    assert code == 1
    assert re.fullmatch(
        rf"archdsl train: error: {re.escape(str(data / 'a'))}/\d+\.png can no longer be read "
        r"\(no such file\); it was readable when the run started\. Was it changed or deleted\? "
        r"The run stopped; the checkpoint of epoch 1 is intact\. Put the file back \(or remove "
        r"it and start a new run\), then continue with: archdsl train --resume \S+", err.strip())
    assert torch.load(str(tmp_path / "r" / "resume.pt"), weights_only=True)["epoch"] == 1


# ----------------------------------------------------------------------------- Ctrl-C


def interrupt_at(monkeypatch, epoch: int, step: int, then=None):
    """Send this process SIGINT as step `step` of epoch `epoch` finishes (a real Ctrl-C)."""
    from archdsl.train import progress

    original = progress.Progress.update

    def update(self, **kw):
        original(self, **kw)
        if self.label.startswith(f"epoch {epoch}/") and self.done == step:
            os.kill(os.getpid(), signal.SIGINT)
            if then is not None:
                then()

    monkeypatch.setattr(progress.Progress, "update", update)


def test_ctrl_c_saves_the_step_and_resume_matches_an_uninterrupted_run(tmp_path, capsys,
                                                                      monkeypatch):
    data = tiny_images(tmp_path / "data", per_class=10)
    spec = tiny_spec(tmp_path)
    options = ["--epochs", "3", "--batch-size", "4", "--quiet"]
    assert run(capsys, "train", spec, data, *options, "--out", tmp_path / "full")[0] == 0
    with monkeypatch.context() as patch:
        interrupt_at(patch, epoch=2, step=2)
        code, out, err = run(capsys, "train", spec, data, *options, "--out", tmp_path / "part")
    assert code == 130 and out == ""
    hint = err.strip().splitlines()[-1]
    assert hint == (f"archdsl train: interrupted in epoch 2 after step 2 of 5; the run is saved. "
                    f"Continue it with: archdsl train --resume {tmp_path / 'part'}")
    state = torch.load(str(tmp_path / "part" / "resume.pt"), weights_only=True)
    assert (state["epoch"], state["step"]) == (1, 2)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    code, _, _ = run(capsys, "train", "--resume", tmp_path / "part", "--quiet")
    assert code == 0
    assert metrics_without_timing(tmp_path / "part") == metrics_without_timing(tmp_path / "full")
    assert same_weights(tmp_path / "part" / "last.safetensors",
                        tmp_path / "full" / "last.safetensors")


def test_a_second_ctrl_c_while_saving_corrupts_nothing(tmp_path, capsys, monkeypatch):
    data = tiny_images(tmp_path / "data")
    spec = tiny_spec(tmp_path)
    run_dir = tmp_path / "r"
    real_save = torch.save

    def save_then_ctrl_c(obj, f, *a, **kw):  # the second Ctrl-C comes half-way through
        real_save(obj, f, *a, **kw)
        Path(f).write_bytes(Path(f).read_bytes()[:100])
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)  # the handler raises KeyboardInterrupt at once

    with monkeypatch.context() as patch:
        interrupt_at(patch, epoch=2, step=1,
                     then=lambda: patch.setattr(torch, "save", save_then_ctrl_c))
        code, _, err = run(capsys, "train", spec, data, "--epochs", "3", "--batch-size", "4",
                           "--quiet", "--out", run_dir)
    assert code == 130
    assert err.strip().splitlines()[-1] == (
        "archdsl train: interrupted again before the run was saved; the checkpoint of epoch 1 is "
        f"intact and nothing is half-written. Continue it with: archdsl train --resume {run_dir}")
    assert temporaries(run_dir) == []
    assert torch.load(str(run_dir / "resume.pt"), weights_only=True)["epoch"] == 1
    load_file(str(run_dir / "last.safetensors"))
    assert run(capsys, "train", "--resume", run_dir, "--quiet")[0] == 0
    assert len(metrics_without_timing(run_dir)) == 4


def test_ctrl_c_in_a_terminal_reaches_every_process_and_exits_130(tmp_path, capsys):
    """A real run with a data-loader worker, and SIGINT to its whole process group, as a
    terminal sends it."""
    data = tiny_images(tmp_path / "data", per_class=30)
    run_dir = tmp_path / "r"
    child = subprocess.Popen(
        [sys.executable, "-m", "archdsl", "train", str(tiny_spec(tmp_path)), str(data),
         "--epochs", "200", "--batch-size", "2", "--workers", "1", "--out", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        for line in child.stdout:
            if line.startswith("epoch 1/"):
                break
        os.killpg(child.pid, signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].endswith(f"Continue it with: archdsl train --resume "
                                                  f"{run_dir}")
    state = torch.load(str(run_dir / "resume.pt"), weights_only=True)
    assert state["epoch"] >= 1 and temporaries(run_dir) == []


# ----------------------------------------------------------------------------- SIGKILL


def _cli(argv, started: str | None = None):
    """`archdsl ARGV` in a forked process; touches `started` as training begins."""
    torch.set_num_threads(1)  # tiny runs are quickest so, and two of them share the cores
    if started:
        from archdsl.train import run

        run_epochs = run.run_epochs

        def run_and_tell(*args, **kwargs):
            Path(started).touch()
            return run_epochs(*args, **kwargs)

        run.run_epochs = run_and_tell
    sys.exit(main(argv))


def check_every_file_loads(run_dir: Path) -> None:
    """No file of the run folder is ever half-written, whenever the run was killed."""
    from archdsl.train.run_folder import read_config, read_resume_state

    names = {p.name for p in run_dir.iterdir()}
    if "config.json" in names:
        read_config(run_dir)
    if "resume.pt" in names:
        state = read_resume_state(run_dir / "resume.pt")
        assert len(state["rows"]) == state["epoch"]
    for name in ("best.safetensors", "last.safetensors"):
        if name in names:
            assert load_file(str(run_dir / name))
    if "metrics.csv" in names:
        rows = list(csv.reader((run_dir / "metrics.csv").read_text().splitlines()))
        assert rows[0][0] == "epoch" and all(len(r) == 9 for r in rows)
    for name in ("curves.png", "confusion.png"):
        if name in names:
            with Image.open(run_dir / name) as image:
                image.load()


def test_sigkill_at_random_moments_then_resume_always_completes(tmp_path):
    """Kill a real run with SIGKILL at random moments, in training and in checkpointing, and
    resume it each time: it always completes, no file is ever corrupt, and it ends exactly as
    an uninterrupted run. Runs are forked from a server that has torch loaded, to be quick."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["archdsl.cli", "archdsl.train.run", "archdsl.network",
                                    "torchvision.transforms.v2", "matplotlib.figure",
                                    "safetensors.torch"])
    data = tiny_images(tmp_path / "data", per_class=6)
    spec = tiny_spec(tmp_path)
    start = ["train", str(spec), str(data), "--epochs", "16", "--batch-size", "4", "--quiet"]

    def launch(argv, started=None):
        process = context.Process(target=_cli, args=(argv, started and str(started)))
        process.start()
        return process

    def next_command():
        if (run_dir / "config.json").exists():
            return ["train", "--resume", str(run_dir), "--quiet"]
        return start + ["--out", str(run_dir)]  # killed before the run existed

    warm_up = context.Process(target=time.sleep, args=(0,))  # waits for the server's imports
    warm_up.start()
    warm_up.join()
    reference = launch(start + ["--out", str(tmp_path / "full")])  # alongside the kills
    run_dir = tmp_path / "killed"
    rng = random.Random(7)
    kills = during_writes = of_resumed = 0
    epochs = []  # the last finished epoch after each kill
    began = time.monotonic()
    epoch_seconds = 0.6  # an epoch here, most of it writing the checkpoint: measured as it goes

    def finished_epoch() -> int:
        try:  # resume.pt is replaced atomically: absent or whole
            return torch.load(str(run_dir / "resume.pt"), weights_only=True)["epoch"]
        except (FileNotFoundError, RuntimeError, EOFError):
            return 0

    while kills < 15:
        command = next_command()
        started = tmp_path / f"started-{kills}"
        process = launch(command, started)
        delay = rng.uniform(0.0, 0.5)  # the first kill comes while the run starts
        if kills:  # the others as it trains: in the epoch after the next one finishes, or in
            # this one, at a random moment of an epoch's length, however slow the machine is
            deadline = time.monotonic() + 120
            while not started.exists() and process.is_alive() and time.monotonic() < deadline:
                time.sleep(0.005)
            target, since = finished_epoch() + rng.choice((0, 1)), time.monotonic()
            while finished_epoch() < target and process.is_alive() and \
                    time.monotonic() < deadline:
                time.sleep(0.005)
            if finished_epoch() >= target > 0 and time.monotonic() > since:
                epoch_seconds = max(epoch_seconds, time.monotonic() - since)
            delay = rng.uniform(0.0, epoch_seconds)
        process.join(timeout=delay)
        if process.exitcode is not None:
            assert process.exitcode == 0
            break  # finished before the kill
        process.kill()
        process.join()
        kills += 1
        of_resumed += "--resume" in command
        if run_dir.exists():
            during_writes += bool(temporaries(run_dir))
            check_every_file_loads(run_dir)
        if (run_dir / "resume.pt").exists():
            epochs.append(torch.load(str(run_dir / "resume.pt"), weights_only=True)["epoch"])
    final = launch(next_command())
    final.join(timeout=300)
    reference.join(timeout=300)
    assert final.exitcode == 0 and reference.exitcode == 0
    seconds = time.monotonic() - began
    print(f"{kills} kills ({of_resumed} of resumed runs, {during_writes} while a file was being "
          f"written) in {seconds:.1f} s; finished epochs after each: {epochs}")
    assert kills >= 10 and of_resumed >= 5 and max(epochs) >= 3  # kills in later epochs too
    check_every_file_loads(run_dir)
    assert temporaries(run_dir) == []
    assert metrics_without_timing(run_dir) == metrics_without_timing(tmp_path / "full")
    assert same_weights(run_dir / "last.safetensors", tmp_path / "full" / "last.safetensors")
    assert same_weights(run_dir / "best.safetensors", tmp_path / "full" / "best.safetensors")


# ----------------------------------------------------------------------------- numbers


def test_a_non_finite_gradient_stops_the_run_naming_the_layer(tmp_path, capsys, monkeypatch):
    """The loss stays finite; a gradient (of a bias, which gradient health does not track)
    becomes infinite in epoch 2. The run stops naming it, and epoch 1's checkpoint stays."""
    from archdsl.train.health import GradientHealth

    data = tiny_images(tmp_path / "data")
    spec = tiny_spec(tmp_path)
    init, record, calls = GradientHealth.__init__, GradientHealth.record, []

    def init_keeping_the_model(self, network, model):
        init(self, network, model)
        self.conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))

    def record_then_break(self):
        calls.append(1)
        if len(calls) == 7:  # epoch 2 (4 steps an epoch), step 3
            self.conv.bias.grad[0] = float("inf")
        record(self)

    monkeypatch.setattr(GradientHealth, "__init__", init_keeping_the_model)
    monkeypatch.setattr(GradientHealth, "record", record_then_break)
    code, _, err = run(capsys, "train", spec, data, "--epochs", "3", "--batch-size", "4",
                       "--quiet", "--out", tmp_path / "r")
    assert code == 1
    assert re.search(r"the gradients became non-finite at layer conv1's bias \(\S*tiny.arch:3\) "
                     r"\(the loss was [0-9.]+\) in epoch 2, step 3", err), err
    assert f"the last good checkpoint (epoch 1) is kept in {tmp_path / 'r'}" in err
    assert "--clip-grad" in err
    assert torch.load(str(tmp_path / "r" / "resume.pt"), weights_only=True)["epoch"] == 1
    assert len(metrics_without_timing(tmp_path / "r")) == 2


def test_a_huge_learning_rate_stops_at_the_loss_naming_layer_and_line(tmp_path, capsys):
    data = tiny_images(tmp_path / "data")
    code, _, err = run(capsys, "train", tiny_spec(tmp_path), data, "--epochs", "3",
                       "--batch-size", "4", "--lr", "1e38", "--quiet", "--out", tmp_path / "r")
    assert code == 1
    assert re.search(r"the (loss became (nan|inf)|gradients became non-finite at layer \w+'s "
                     r"\w+ \(\S*tiny.arch:\d\)) .*in epoch 1, step 2", err), err
    assert re.search(r"(come out of \w+, |at layer \w+'s \w+ \()\S*tiny.arch:\d\)", err), err
    assert "no epoch had finished, so no weights were kept" in err


# ----------------------------------------------------------------------------- disk


def test_an_unwritable_out_folder_fails_before_training(tmp_path, capsys, monkeypatch):
    data = tiny_images(tmp_path / "data")
    spec = tiny_spec(tmp_path)
    (tmp_path / "a file").write_text("mine")
    code, out, err = run(capsys, "train", spec, data, "--out", tmp_path / "a file" / "run")
    assert code == 1 and out == ""
    assert f"cannot make the folder {tmp_path / 'a file' / 'run'}: Not a directory" in err
    assert (tmp_path / "a file").read_text() == "mine"
    write_bytes = Path.write_bytes

    def read_only(self, data):
        if self.name == ".archdsl-write-test":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", read_only)
    code, out, err = run(capsys, "train", spec, data, "--out", tmp_path / "r")
    assert code == 1 and out == ""
    assert err.strip() == (f"archdsl train: error: cannot write into {tmp_path / 'r'}: Permission "
                           "denied; choose another --out or fix the folder's permissions")


def test_too_little_free_space_fails_before_training(tmp_path, capsys, monkeypatch):
    from archdsl.train import run_folder

    monkeypatch.setattr(run_folder.shutil, "disk_usage",
                        lambda path: shutil._ntuple_diskusage(10 ** 9, 10 ** 9, 1000))
    code, out, err = run(capsys, "train", tiny_spec(tmp_path), tiny_images(tmp_path / "data"),
                         "--out", tmp_path / "r")
    assert code == 1 and out == ""
    assert re.search(r"is on a disk with 1.0 KB free, but the run's checkpoints need about "
                     r"[0-9.]+ MB; free some space or choose another --out", err)
    assert not (tmp_path / "r").exists()


def full_disk_on_call(n: int, real, partial: bool = True):
    """A writer that works n - 1 times, then writes part of its file and finds the disk full."""
    calls = []

    def write(obj, path, *a, **kw):
        calls.append(path)
        if len(calls) < n:
            return real(obj, path, *a, **kw)
        if partial:
            Path(path).write_bytes(b"\0" * 64)
        raise OSError(errno.ENOSPC, "No space left on device")

    return write


def test_a_full_disk_mid_run_leaves_the_last_checkpoint_whole(tmp_path, capsys, monkeypatch):
    import safetensors.torch

    data = tiny_images(tmp_path / "data")
    run_dir = tmp_path / "r"
    options = ["--epochs", "3", "--batch-size", "4", "--quiet"]
    with monkeypatch.context() as patch:  # epoch 1 writes last and best; epoch 2's last fails
        patch.setattr(safetensors.torch, "save_file",
                      full_disk_on_call(3, safetensors.torch.save_file))
        code, out, err = run(capsys, "train", tiny_spec(tmp_path), data, *options, "--out",
                             run_dir)
    assert code == 1 and out == ""
    message = err.strip()
    assert message.startswith(f"archdsl train: error: cannot write {run_dir / 'last.safetensors'}: "
                              "No space left on device; the disk has ")
    assert message.endswith("free. Nothing was half-written: the checkpoint of epoch 1 is "
                            "intact. Free some space (or fix the folder's permissions), then "
                            f"continue with: archdsl train --resume {run_dir}")
    assert temporaries(run_dir) == []
    check_every_file_loads(run_dir)
    assert len(metrics_without_timing(run_dir)) == 2  # the header and epoch 1
    with monkeypatch.context() as patch:  # torch reports a full disk as a RuntimeError
        def torch_full(obj, f, *a, **kw):
            raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos "
                               "64 vs 0\nPytorchStreamWriter failed writing file data/0")

        patch.setattr(torch, "save", torch_full)
        code, _, err = run(capsys, "train", "--resume", run_dir, "--quiet")
    assert code == 1 and f"cannot write {run_dir / 'resume.pt'}: RuntimeError" in err
    assert temporaries(run_dir) == [] and len(metrics_without_timing(run_dir)) == 2
    assert run(capsys, "train", "--resume", run_dir, "--quiet")[0] == 0  # space freed
    assert len(metrics_without_timing(run_dir)) == 4


def test_a_full_disk_before_the_first_epoch(tmp_path, capsys, monkeypatch):
    full = full_disk_on_call(1, None)
    monkeypatch.setattr("archdsl.train.setup.json_writer", lambda data: lambda tmp: full(data, tmp))
    code, _, err = run(capsys, "train", tiny_spec(tmp_path), tiny_images(tmp_path / "data"),
                       "--out", tmp_path / "r")
    assert code == 1 and f"cannot write {tmp_path / 'r' / 'config.json'}: No space left" in err
    assert "no training was done" in err
    assert temporaries(tmp_path / "r") == [] and not (tmp_path / "r" / "config.json").exists()


# ----------------------------------------------------------------------------- trust


class Payload:
    """Unpickling this runs code: it writes a marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("trust")
    data = tiny_images(root / "data")
    out = root / "run"
    train(tiny_spec(root), str(data), TrainConfig(epochs=2, batch_size=4, quiet=True),
          out=str(out))
    return out, data


def damage(path: Path, how: str, marker: Path) -> None:
    good = path.read_bytes()
    if how == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage header":
        path.write_bytes(b"\xff" * 16 + good[16:])
    elif how == "pickle":
        path.write_bytes(pickle.dumps(Payload(marker)))
    elif how == "torch pickle":
        torch.save({"model": Payload(marker)}, str(path))
    elif how == "nan weights" and path.suffix == ".safetensors":
        save_file({k: torch.full_like(v, float("nan")) for k, v in load_file(str(path)).items()},
                  str(path))
    elif how == "nan weights":
        state = torch.load(str(path), weights_only=True)
        state["model"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                          for k, v in state["model"].items()}
        torch.save(state, str(path))


DAMAGE = ["truncated", "empty", "garbage header", "pickle", "torch pickle", "nan weights"]


@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("target", ["best.safetensors", "last.safetensors", "resume.pt"])
def test_a_damaged_or_malicious_checkpoint_is_refused_everywhere(finished_run, tmp_path, capsys,
                                                                 how, target):
    source, data = finished_run
    run_dir = tmp_path / "run"
    shutil.copytree(source, run_dir)
    marker = tmp_path / "marker"
    damage(run_dir / target, how, marker)
    image = data / "a" / "0.png"
    commands = [["train", "--resume", run_dir, "--epochs", "3"],
                ["export", run_dir / "tiny.arch", "--to", "torchscript", "-o", tmp_path / "x.ts",
                 "--weights", run_dir / target]]
    weights = {"best.safetensors": "best", "last.safetensors": "last"}.get(target,
                                                                        run_dir / target)
    commands += [["eval", run_dir, data, "--weights", weights],
                 ["predict", run_dir, image, "--weights", weights]]
    for argv in commands:
        code, out, err = run(capsys, *argv)
        assert code != 0, (argv, out)
        assert str(run_dir / target) in err, (argv, err)
        assert re.search(r"damaged|not a resume state|NaN or infinite|does not fit|holds no "
                         r"weights", err), (argv, err)
        assert "internal error" not in err and "weights_only" not in err, err  # no unsafe advice
        assert not marker.exists(), argv  # no code in the file ever ran
    assert not (tmp_path / "x.ts").exists()
    assert metrics_without_timing(run_dir) == metrics_without_timing(source)  # nothing lost


def test_a_run_resumes_from_another_working_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny_images(tmp_path / "data")
    tiny_spec(tmp_path)
    options = ["--batch-size", "4", "--quiet", "--out", "r"]
    assert run(capsys, "train", "tiny.arch", "data", "--epochs", "1", *options)[0] == 0
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "2")[0] == 0
    assert len(metrics_without_timing(tmp_path / "r")) == 3


def test_a_resume_state_of_the_wrong_shape_is_refused(finished_run, tmp_path, capsys):
    source, _ = finished_run
    run_dir = tmp_path / "run"
    shutil.copytree(source, run_dir)
    good = torch.load(str(run_dir / "resume.pt"), weights_only=True)
    for broken in ({"epoch": "2"}, [1, 2, 3], {**good, "random": {}},
                   {**good, "optimizer": {"state": {}, "param_groups": []}},
                   {**good, "model": {k: v[:1] for k, v in good["model"].items()}}):
        torch.save(broken, str(run_dir / "resume.pt"))
        code, _, err = run(capsys, "train", "--resume", run_dir)
        assert code == 1 and str(run_dir / "resume.pt") in err, err
        assert "internal error" not in err


@pytest.mark.parametrize("config", [
    "{not json", "[]", '{"spec": "tiny.arch"}',
    None,  # spec pointing outside the run folder
])
def test_a_damaged_config_json_is_refused(finished_run, tmp_path, capsys, config):
    source, data = finished_run
    run_dir = tmp_path / "run"
    shutil.copytree(source, run_dir)
    if config is None:
        saved = json.loads((run_dir / "config.json").read_text())
        config = json.dumps({**saved, "spec": "../../outside.arch"})
    (run_dir / "config.json").write_text(config)
    for argv in (["train", "--resume", run_dir], ["eval", run_dir, data],
                 ["predict", run_dir, data / "a" / "0.png"]):
        code, _, err = run(capsys, *argv)
        assert code == 1 and str(run_dir / "config.json") in err, err


def test_an_unexpected_failure_is_one_message_not_a_traceback(finished_run, capsys, monkeypatch):
    from archdsl.train import inference

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(inference, "load_run", broken)
    code, _, err = run(capsys, "eval", finished_run[0], finished_run[1])
    assert code == 1 and err.startswith("archdsl eval: internal error: ZeroDivisionError: "
                                        "division by zero\nThis is a bug in archdsl")
    monkeypatch.setenv("ARCHDSL_TRACEBACK", "1")
    with pytest.raises(ZeroDivisionError):
        main(["eval", str(finished_run[0]), str(finished_run[1])])
