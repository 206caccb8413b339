"""The run-side cases of the red-team report (issue 16): each test is named after its case
and carries the reproducer, in the report's notation (A = `archdsl`, D = a folder with a/
and b/). Each ended in a run that could not be used, a lie, or a silent loss."""

import functools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import helpers
from archdsl.cli import main
from archdsl.files import is_temporary
from archdsl.train import TrainError, resume

TINY = helpers.TINY.format(channels=3)
run = helpers.run_cli
images = functools.partial(helpers.image_folder, per_class=4, size=12)  # D: 4 12x12 a class
spec = helpers.tiny_spec


def finite(path: Path) -> bool:
    return all(torch.isfinite(t).all() for t in load_file(str(path)).values())


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return images(tmp_path_factory.mktemp("data") / "D")


QUICK = ["--epochs", "1", "--batch-size", "4", "--quiet"]


# ----------------------------------------------------------------------------- case 1


@pytest.mark.parametrize("name", ["net.txt", "lenet5", "net.ARCH", "config.json"])
def test_case1_a_spec_not_named_arch_trains_a_run_that_can_be_used(name, data, tmp_path,
                                                                   capsys):
    """cp L net.txt; A train net.txt D --epochs 1 --out r; A predict r D/a/0.png — the run
    was refused: "config.json is damaged or not archdsl's: its 'spec'…"."""
    r = tmp_path / "r"
    assert run(capsys, "train", spec(tmp_path, name=name), data, *QUICK, "--out", r)[0] == 0
    saved = json.loads((r / "config.json").read_text())
    copy = {"net.txt": "net.arch", "lenet5": "lenet5.arch", "net.ARCH": "net.arch",
            "config.json": "config.arch"}[name]
    assert saved["spec"] == copy and (r / copy).read_text() == TINY
    code, out, err = run(capsys, "predict", r, data / "a" / "0.png")
    assert code == 0 and out.startswith(f"{data / 'a' / '0.png'}: "), err
    assert run(capsys, "eval", r, data)[0] == 0
    if name == "config.json":  # the copy took no file of the run's place
        assert run(capsys, "train", "--resume", r, "--epochs", "2")[0] == 0
        assert len(json.loads((r / "config.json").read_text())["classes"]) == 2


# ----------------------------------------------------------------------------- case 2


def weights_break_in(monkeypatch, epoch: int) -> None:
    """The weights become NaN at the end of `epoch` (as an update that overflows leaves
    them: every loss and gradient of the epoch was finite)."""
    from archdsl.train import loop

    validated = loop._validated

    def break_then_validate(s, at_epoch, *args):
        if at_epoch == epoch:
            with torch.no_grad():
                next(s.model.parameters()).fill_(float("nan"))
        return validated(s, at_epoch, *args)

    monkeypatch.setattr(loop, "_validated", break_then_validate)


def test_case2_non_finite_weights_are_never_saved_and_stop_the_run(data, tmp_path, capsys,
                                                                   monkeypatch):
    """A train L D --epochs 2 --lr nan: "best val accuracy 50%", val loss nan, exit 0, and
    "the last good checkpoint (epoch 1) is kept", which was NaN."""
    r = tmp_path / "r"
    weights_break_in(monkeypatch, epoch=2)
    code, out, err = run(capsys, "train", spec(tmp_path), data, "--epochs", "3",
                         "--batch-size", "4", "--out", r)
    assert code == 1 and "best val accuracy" not in out
    assert re.search(r"the weights became non-finite \(NaN or infinite\) in epoch 2 at layer "
                     r"conv1's weight \(\S*tiny.arch:3\) \(the validation loss was nan\); they "
                     r"were not saved, and the last good checkpoint \(epoch 1\) is kept in ", err)
    assert torch.load(str(r / "resume.pt"), weights_only=True)["epoch"] == 1
    assert finite(r / "best.safetensors") and finite(r / "last.safetensors")
    assert len((r / "metrics.csv").read_text().splitlines()) == 2


def test_case2_non_finite_weights_in_the_first_epoch_leave_no_checkpoint(data, tmp_path, capsys,
                                                                         monkeypatch):
    """A train L D --epochs 1 --lr nan: NaN weights were saved as best with exit 0."""
    r = tmp_path / "r"
    weights_break_in(monkeypatch, epoch=1)
    code, out, err = run(capsys, "train", spec(tmp_path), data, *QUICK, "--out", r)
    assert code == 1
    assert "in epoch 1 at layer conv1's weight" in err
    assert "no epoch had finished, so no weights were kept" in err
    assert not any((r / f).exists() for f in ("best.safetensors", "last.safetensors",
                                              "resume.pt"))


def test_case2_a_checkpoint_with_a_non_finite_tensor_is_refused_before_writing(tmp_path):
    from types import SimpleNamespace

    from archdsl.train.state import _refuse_non_finite

    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.bias[0] = float("inf")
    s = SimpleNamespace(model=model, network=SimpleNamespace(graph={}))
    state = {"model": model.state_dict(), "optimizer": {"state": {}}}
    with pytest.raises(TrainError, match=r"non-finite .* at tensor bias; they were not saved"):
        _refuse_non_finite(s, state)


# ----------------------------------------------------------------------------- case 5


@pytest.mark.parametrize("name", [b"b\xff", "$x^$", "cost$%$"])
def test_case5_class_names_that_are_not_plain_text_never_cost_the_run(name, tmp_path, capsys):
    """A class folder named $'b\\xff' (not UTF-8), `$x^$` or `cost$%$` (matplotlib math
    text): "internal error" after epoch 1, nothing checkpointed, every resume crashed."""
    d = images(tmp_path / "D", classes=("a", name))
    r = tmp_path / "r"
    code, _, err = run(capsys, "train", spec(tmp_path), d, *QUICK, "--out", r)
    assert code == 0 and "warning" not in err, err
    for file in ("best.safetensors", "resume.pt", "confusion.png", "curves.png"):
        assert (r / file).is_file(), file
    assert run(capsys, "train", "--resume", r, "--epochs", "2")[0] == 0


def test_case5_a_plot_that_fails_is_one_warning_and_the_run_goes_on(data, tmp_path, capsys,
                                                                    monkeypatch):
    from archdsl.train import plots

    def confusion_png(*args, **kwargs):
        raise ValueError("Unknown symbol: \\x")

    monkeypatch.setattr(plots, "confusion_png", confusion_png)
    r = tmp_path / "r"
    code, _, err = run(capsys, "train", spec(tmp_path), data, "--epochs", "2", "--batch-size",
                       "4", "--quiet", "--out", r)
    assert code == 0
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings[0] == ("warning: could not draw confusion.png (ValueError: Unknown symbol: "
                           "\\x); training goes on without it")
    assert torch.load(str(r / "resume.pt"), weights_only=True)["epoch"] == 2
    assert (r / "curves.png").is_file() and not (r / "confusion.png").exists()


# ----------------------------------------------------------------------------- case 12


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> Path:
    r = tmp_path_factory.mktemp("runs") / "r"
    assert main([str(a) for a in ("train", spec(r.parent), data, *QUICK, "--out", r)]) == 0
    return r


def test_case12_eval_on_an_empty_set_is_a_data_error_and_json_has_no_nan(trained, data, tmp_path,
                                                                         capsys, monkeypatch):
    """A eval r E (E: train/a, train/b with images, an empty val/): exit 0 with "0 images
    loss nan"; --format json printed NaN, which is not JSON."""
    from archdsl.train import inference

    e = tmp_path / "E"
    images(e / "train")
    for c in ("a", "b"):
        (e / "val" / c).mkdir(parents=True)
    for fmt in ("table", "json"):
        code, out, err = run(capsys, "eval", trained, e, "--format", fmt)
        assert code != 0 and out == ""
        assert f"{e} has no images to evaluate on" in err
    evaluate = inference.evaluate

    def diverged(*args, **kwargs):
        return {**evaluate(*args, **kwargs), "loss": float("nan"), "top5": float("inf")}

    monkeypatch.setattr(inference, "evaluate", diverged)

    def no_constants(word):
        raise AssertionError(f"{word} is not JSON")

    code, out, _ = run(capsys, "eval", trained, data, "--format", "json")
    assert code == 0
    document = json.loads(out, parse_constant=no_constants)
    assert (document["loss"], document["top5"], document["images"]) == (None, None, 8)


# ----------------------------------------------------------------------------- case 17


def test_case17_a_second_process_cannot_train_in_a_run_folder_in_use(data, tmp_path, capsys):
    """A train L D --out r &; A train --resume r: both were accepted, both wrote r, both
    exited 0. The second is refused naming the folder and the holder; a killed holder's lock
    blocks nothing."""
    r = tmp_path / "r"
    child = subprocess.Popen(
        [sys.executable, "-m", "archdsl", "train", str(spec(tmp_path)), str(data), "--epochs",
         "100000", "--batch-size", "4", "--out", str(r)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        for line in child.stdout:
            if line.startswith("epoch 1/"):
                break
        for argv in (["train", "--resume", r],
                     ["train", spec(tmp_path), data, *QUICK, "--out", r, "--exist-ok"]):
            code, _, err = run(capsys, *argv)
            assert code == 1
            assert err.strip() == (f"archdsl train: error: {r} is in use: another archdsl train "
                                   f"(pid {child.pid}) is training in it; wait for it to "
                                   "finish, or stop it first")
        assert child.poll() is None
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
    done = torch.load(str(r / "resume.pt"), weights_only=True)["epoch"]
    code, _, err = run(capsys, "train", "--resume", r, "--epochs", done + 1)
    assert code == 0, err
    assert torch.load(str(r / "resume.pt"), weights_only=True)["epoch"] == done + 1
    assert not (r / ".archdsl.lock").exists()  # deleted as the run ended


# ----------------------------------------------------------------------------- case 19


@pytest.fixture(scope="module")
def two_epochs(data, tmp_path_factory) -> Path:
    r = tmp_path_factory.mktemp("runs") / "r2"
    argv = ("train", spec(r.parent), data, "--epochs", "2", "--batch-size", "4", "--quiet",
            "--out", r)
    assert main([str(a) for a in argv]) == 0
    return r


def test_case19_a_resume_refuses_the_options_it_would_ignore(two_epochs, capsys):
    """A train --resume r --lr .5 --batch-size 7: both options were ignored without a word."""
    with pytest.raises(TrainError) as caught:
        resume(two_epochs, given={"lr": 0.5, "batch_size": 7, "quiet": True})
    assert str(caught.value) == (
        f"--resume continues {two_epochs} with the options it was started with (its "
        "config.json); --lr 0.5, --batch-size 7 cannot change on a resume: leave them out "
        "(--epochs may raise the number of epochs), or start a new run with them")
    # the same from the command line, before anything is written
    before = (two_epochs / "config.json").read_text()
    code, out, err = run(capsys, "train", "--resume", two_epochs, "--lr", ".5",
                         "--batch-size", "7")
    assert code == 2 and out == ""  # a usage mistake (issue 25)
    assert err.strip() == f"archdsl train: error: {caught.value}".replace(
        "--lr 0.5, --batch-size 7", "--batch-size 7, --lr 0.5")  # the options' declared order
    assert (two_epochs / "config.json").read_text() == before


def test_case19_a_class_named_train_is_told_how_it_was_read(tmp_path, capsys):
    """A class folder named `train` gave "has train/ but no val/"."""
    folder = images(tmp_path / "d", classes=("train", "cat"))
    code, _, err = run(capsys, "train", spec(tmp_path), folder, *QUICK, "--out", tmp_path / "r")
    assert code == 1
    assert "reads as the training half of a train/ + val/ layout" in err
    assert "if train/ is one of the classes (cat are the others), rename it" in err


def test_case19_a_resume_refuses_fewer_epochs_than_the_run_has(two_epochs, capsys):
    """A train --resume r --epochs 1 on a run of 2 epochs: "after epoch 2 of 1", saved."""
    before = (two_epochs / "config.json").read_text()
    code, out, err = run(capsys, "train", "--resume", two_epochs, "--epochs", "1")
    assert code == 1 and out == ""
    assert err.strip() == (f"archdsl train: error: {two_epochs} has finished 2 epoch(s); "
                           "--epochs 1 would end it before that. Give --epochs 3 or more to "
                           "train it further, or leave --epochs out to finish it as it was "
                           "started")
    assert (two_epochs / "config.json").read_text() == before


def test_case19_out_on_a_data_folder_does_not_call_it_a_run(data, tmp_path, capsys):
    """A train L D --out D: "already holds a run; … --resume D"."""
    code, _, err = run(capsys, "train", spec(tmp_path), data, *QUICK, "--out", data)
    assert code == 1 and "--resume" not in err
    assert err.strip() == (f"archdsl train: error: {data} is not empty and holds no run (it has "
                           "no config.json); choose another --out (a new or empty folder), or "
                           "add --exist-ok to write the run's files beside what is there")
    assert sorted(p.name for p in data.iterdir()) == ["a", "b"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_case19_out_in_proc_is_not_a_full_disk(data, tmp_path, capsys):
    """A train L D --out /proc/x: "0 bytes free"."""
    code, _, err = run(capsys, "train", spec(tmp_path), data, *QUICK, "--out", "/proc/x")
    assert code == 1 and "free" not in err
    assert err.strip().startswith("archdsl train: error: cannot make the folder /proc/x: ")
    assert err.strip().endswith("choose another --out (/proc is a virtual file system that "
                                "holds no files of ours)")


def test_case19_cache_dir_on_a_file_says_so(data, tmp_path, capsys):
    """A train L D --cache disk --cache-dir FILE: "File exists"."""
    file = tmp_path / "FILE"
    file.write_text("")
    code, _, err = run(capsys, "train", spec(tmp_path), data, *QUICK, "--cache", "disk",
                       "--cache-dir", file)
    assert code == 2
    assert err.strip() == (f"archdsl train: error: --cache-dir {file} is a file; give a folder "
                           "(it is made if it does not exist)")


def test_case19_an_unreadable_checkpoint_is_not_called_damaged(two_epochs, capsys, monkeypatch):
    """chmod 0 r/best.safetensors; A train --resume r: "damaged… FileNotFoundError"."""
    from archdsl.train import state

    best = two_epochs / "best.safetensors"

    def unreadable(path, *args, **kwargs):
        if Path(path) == best:
            raise PermissionError(13, "Permission denied", str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(state, "open", unreadable, raising=False)
    code, _, err = run(capsys, "train", "--resume", two_epochs, "--epochs", "3")
    assert code == 1 and "damaged" not in err
    assert err.strip() == (f"archdsl train: error: cannot read {best}: Permission denied; the "
                           "resumed run would replace it. Make it readable (chmod u+r), or "
                           "delete it (the run writes it again), then run `archdsl train "
                           f"--resume {two_epochs}`")


def test_case19_predict_with_an_unreadable_checkpoint_is_not_called_damaged(
        two_epochs, data, capsys, monkeypatch):
    """eval and predict called a checkpoint they were not allowed to read "damaged"."""
    import safetensors.torch

    def unreadable(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(safetensors.torch, "load_file", unreadable)
    image = next((data / "a").iterdir())
    code, _, err = run(capsys, "predict", two_epochs, image)
    assert code == 1 and "damaged" not in err
    assert f"cannot read the checkpoint {two_epochs / 'best.safetensors'}: Permission denied" \
        in err


def test_case19_one_image_classes_do_not_ask_for_a_val_split_they_have(tmp_path, capsys):
    """A train L O (O: a/ and b/, one image each): "add … a --val-split above 0" when it is
    0.1 already."""
    d = images(tmp_path / "O", per_class=1)
    code, _, err = run(capsys, "train", spec(tmp_path), d, *QUICK, "--out", tmp_path / "r")
    assert code == 0
    assert ("warning: there are no validation images, so best.safetensors will hold the last "
            "epoch's weights; to measure accuracy, --val-split 0.1 held out none, as each class "
            "has a single image (one is kept for training); add images, or a val/ folder") in err


# ----------------------------------------------------------------------------- case 22


def test_case22_sigterm_saves_the_run_as_ctrl_c_does(tmp_path):
    """A train L D &; kill -TERM $!: no message, temporary files left."""
    d = images(tmp_path / "D", per_class=30)
    r = tmp_path / "r"
    child = subprocess.Popen(
        [sys.executable, "-m", "archdsl", "train", str(spec(tmp_path)), str(d), "--epochs",
         "100000", "--batch-size", "2", "--out", str(r)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        for line in child.stdout:
            if line.startswith("epoch 1/"):
                break
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    assert "Traceback" not in err
    assert "SIGTERM: stopping after this step to save the run" in err
    assert err.strip().splitlines()[-1].endswith(f"Continue it with: archdsl train --resume {r}")
    assert torch.load(str(r / "resume.pt"), weights_only=True)["epoch"] >= 1
    assert not [p for p in r.iterdir() if is_temporary(p)]


def test_case22_sigterm_while_a_run_starts_is_an_interruption(data, tmp_path, capsys,
                                                              monkeypatch):
    from archdsl.train import setup

    datasets = setup.datasets

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler raises at once
        return datasets(*args, **kwargs)

    monkeypatch.setattr(setup, "datasets", terminated)
    code, _, err = run(capsys, "train", spec(tmp_path), data, *QUICK, "--out", tmp_path / "r")
    assert code == 130 and err.strip() == "archdsl train: interrupted before training started"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_case22_several_nodes_say_what_they_wait_for(monkeypatch):
    """A train L D --nproc-per-node 1 --nnodes 2 --rdzv-endpoint node0:29500: waited with no
    output."""
    import torch.distributed.run as torchrun

    from archdsl.train.distributed import launch, torchrun_arguments

    said = []
    monkeypatch.setattr(torchrun, "run", lambda options: said.append("workers started"))
    args = torchrun_arguments(1, 2, None, "node0:29500", None, [])
    assert launch(args, ["L", "D"], None, said.append) == 0
    assert said == ["waiting for 2 nodes at the rendezvous endpoint node0:29500 (rendezvous id "
                    "archdsl); start the same command on every node", "workers started"]
    said.clear()
    launch(torchrun_arguments(1, 2, 1, "node0:29500", None, []), ["L", "D"], None, said.append)
    assert said[0] == ("waiting for 2 nodes at the rendezvous endpoint node0:29500 (this is "
                       "node 1); start the same command on every node, each with its own "
                       "--node-rank")
