"""Issue 14, start from weights: --init (a torchvision-structured state_dict, an archdsl run,
torchvision's cache), --freeze and --unfreeze-at."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from archdsl.cli import main
from archdsl.train import TrainConfig, TrainError, train

SPECS = Path(__file__).resolve().parent.parent / "specs"


def small_resnet18(folder: Path) -> Path:
    """specs/resnet18.arch at 32x32 (the same tensors; the input size changes no weight)."""
    text = (SPECS / "resnet18.arch").read_text().replace("input 3x224x224", "input 3x32x32")
    spec = folder / "resnet18.arch"
    spec.write_text(text)
    return spec


def patterns(folder: Path, classes: int, per_class: int, seed: int, size: int = 16) -> Path:
    """Class k: a bright square in one of `classes` places, on noise."""
    rng = np.random.default_rng(seed)
    for k in range(classes):
        (folder / f"c{k}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 150, (size, size, 3)).astype(np.uint8)
            y, x = divmod(k, 2)
            half = size // 2
            pixels[y * half:(y + 1) * half, x * half:(x + 1) * half] += 100
            Image.fromarray(pixels).save(folder / f"c{k}" / f"{i}.png")
    return folder


@pytest.fixture(scope="module")
def torchvision_file(tmp_path_factory):
    import torchvision

    torch.manual_seed(3)
    model = torchvision.models.resnet18(num_classes=1000)
    with torch.no_grad():  # running statistics that are not the defaults
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    path = tmp_path_factory.mktemp("tv") / "resnet18_tv.pth"
    torch.save(model.state_dict(), path)
    return path, model.state_dict()


def test_a_torchvision_state_dict_loads_by_structure_and_the_head_starts_fresh(
        tmp_path, torchvision_file):
    from safetensors.torch import load_file

    path, source = torchvision_file
    spec = small_resnet18(tmp_path)
    patterns(tmp_path / "data", 10, 2, seed=0, size=32)
    lines = []
    # the backbone frozen (batch norm statistics too): after an epoch it is still the source
    run = train(spec, str(tmp_path / "data"),
                TrainConfig(epochs=1, batch_size=10, init=str(path), freeze=["conv1", "bn1",
                                                                              "basic"]),
                out=str(tmp_path / "r"), log=lines.append)
    weights = load_file(str(run / "last.safetensors"))
    backbone = [k for k in source if not k.startswith("fc.")]
    import archdsl

    order = list(archdsl.build(spec, num_classes=10).state_dict())  # the spec's module order
    ours = [k for k in order if not k.startswith("linear1.")]
    assert len(backbone) == len(ours) == 120
    for theirs, mine in zip(backbone, ours):  # torchvision's order is the spec's
        assert torch.equal(source[theirs], weights[mine]), (theirs, mine)
    assert weights["linear1.weight"].shape == (10, 512)
    info = json.loads((run / "config.json").read_text())["init"]
    assert info["loaded"] == 120 and info["unused"] == ["fc.weight 1000x512", "fc.bias 1000"]
    assert info["reinitialised"] == ["linear1.weight 10x512", "linear1.bias 10"]
    said = [line for line in lines if line.startswith("--init ")]
    assert len(said) == 1 and "re-initialised 2 that do not fit" in said[0]
    assert "layer linear1" in said[0] and "fc.weight 1000x512" in said[0]
    frozen = [line for line in lines if line.startswith("--freeze: ")]
    assert len(frozen) == 1 and "5,130 of 11,181,642 parameters train" in frozen[0], frozen


def test_unfreeze_at_thaws_the_layers(tmp_path):
    from safetensors.torch import load_file

    spec = tmp_path / "tiny.arch"
    spec.write_text("arch tiny(num_classes=4)\ninput 3x16x16\nconv 8 k3 p1; bn; relu\n"
                    "adaptiveavgpool 1; flatten; linear num_classes\n")
    data = patterns(tmp_path / "data", 4, 4, seed=0)
    first = train(spec, str(data), TrainConfig(epochs=1, batch_size=8, quiet=True),
                  out=str(tmp_path / "a"))
    start = load_file(str(first / "last.safetensors"))
    said = []
    run = train(spec, str(data), TrainConfig(epochs=1, batch_size=8, init=str(first),
                                             freeze=["conv1", "bn1"], unfreeze_at=2),
                out=str(tmp_path / "b"), log=said.append)
    # issue 26, item 18: an --unfreeze-at past the last epoch was accepted without a word
    assert any(line.startswith("warning: --unfreeze-at 2 is after the last epoch (1): the "
                               "frozen layers stay frozen in this run") for line in said)
    after1 = load_file(str(run / "last.safetensors"))
    for key in ("conv1.weight", "bn1.weight", "bn1.running_mean", "bn1.running_var"):
        assert torch.equal(after1[key], start[key]), key
    assert not torch.equal(after1["linear1.weight"], start["linear1.weight"])
    from archdsl.train import resume

    resume(run, epochs=2, log=lambda line: None)
    after2 = load_file(str(run / "last.safetensors"))
    for key in ("conv1.weight", "bn1.running_mean"):
        assert not torch.equal(after2[key], start[key]), key


def accuracy(run):
    return float((run / "metrics.csv").read_text().splitlines()[-1].split(",")[4])


def test_fine_tuning_from_a_run_beats_the_same_epochs_from_scratch(tmp_path):
    spec = tmp_path / "tiny.arch"
    spec.write_text("arch tiny(num_classes=4)\ninput 3x16x16\nconv 8 k3 p1; bn; relu; "
                    "maxpool 2\nconv 16 k3 p1; bn; relu\nadaptiveavgpool 1; flatten; "
                    "linear num_classes\n")
    source = patterns(tmp_path / "source", 4, 40, seed=1)
    target = patterns(tmp_path / "target", 4, 10, seed=2)  # held out: 30% of each class
    # no flips: they would move the square to another class's place
    base = dict(batch_size=8, quiet=True, val_split=0.3, seed=0, augment="none")
    pre = train(spec, str(source), TrainConfig(epochs=4, **base), out=str(tmp_path / "pre"))
    assert accuracy(pre) > 0.9  # the source run learnt the patterns
    tuned = train(spec, str(target), TrainConfig(epochs=1, init=str(pre), **base),
                  out=str(tmp_path / "tuned"))
    scratch = train(spec, str(target), TrainConfig(epochs=1, **base),
                    out=str(tmp_path / "scratch"))

    assert accuracy(tuned) > accuracy(scratch) + 0.2, (accuracy(tuned), accuracy(scratch))


def test_init_torchvision_reads_the_local_cache_and_says_where_it_belongs(
        tmp_path, monkeypatch, capsys, torchvision_file):
    import shutil

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    spec = small_resnet18(tmp_path)
    patterns(tmp_path / "data", 2, 2, seed=0, size=32)
    argv = ["train", str(spec), str(tmp_path / "data"), "--epochs", "1", "--batch-size", "4",
            "--init", "torchvision", "--quiet"]
    code = main(argv + ["--out", str(tmp_path / "r1")])
    err = capsys.readouterr().err
    where = tmp_path / "th" / "hub" / "checkpoints"
    assert code == 1 and "Traceback" not in err
    assert f"--init torchvision needs resnet18's weights (ResNet18_Weights.IMAGENET1K_V1) in " \
           f"{where / 'resnet18-f37072fd.pth'}, which is not there; nothing is downloaded" in err
    assert not (tmp_path / "r1").exists()  # refused before the run folder was made
    where.mkdir(parents=True)
    shutil.copy(torchvision_file[0], where / "resnet18-f37072fd.pth")
    assert main(argv + ["--out", str(tmp_path / "r2")]) == 0
    info = json.loads((tmp_path / "r2" / "config.json").read_text())["init"]
    assert info["loaded"] == 120 and info["file"] == str(where / "resnet18-f37072fd.pth")


def test_init_and_freeze_errors_are_one_clear_line(tmp_path, capsys):
    spec = tmp_path / "tiny.arch"
    spec.write_text("arch tiny(num_classes=2)\ninput 3x16x16\nconv 8 k3 p1; relu\n"
                    "adaptiveavgpool 1; flatten; linear num_classes\n")
    patterns(tmp_path / "data", 2, 2, seed=0)
    base = ["train", str(spec), str(tmp_path / "data"), "--epochs", "1", "--quiet"]
    assert main(base + ["--init", str(tmp_path / "nothing.pt")]) == 1
    assert "--init: cannot read the checkpoint" in capsys.readouterr().err
    assert main(base + ["--freeze", "conv9"]) == 2  # a usage mistake (issue 25)
    err = capsys.readouterr().err
    assert "--freeze conv9: the spec has no layer or group of that name; did you mean `conv1`? " \
           "Its top-level names are conv1, linear1" in err and "Traceback" not in err
    other = tmp_path / "other.pt"
    torch.save({"w": torch.zeros(3, 3, 7, 7)}, other)
    with pytest.raises(TrainError, match="none of its tensors fits"):
        train(spec, str(tmp_path / "data"), TrainConfig(epochs=1, quiet=True, init=str(other)),
              out=str(tmp_path / "r"))


def test_freezing_every_layer_is_refused_before_training(tmp_path):
    """Issue 26, item 12: freezing every layer ended in torch's "element 0 of tensors does
    not require grad" after announcing 0 trainable parameters."""
    from archdsl.train import TrainError

    spec = tmp_path / "tiny.arch"
    spec.write_text("arch tiny(num_classes=4)\ninput 3x16x16\nconv 8 k3 p1; relu\n"
                    "adaptiveavgpool 1; flatten; linear num_classes\n")
    data = patterns(tmp_path / "data", 4, 4, seed=0)
    with pytest.raises(TrainError, match="holds every one of the .* parameters still, so there "
                                         "is nothing to train"):
        train(spec, str(data), TrainConfig(epochs=1, batch_size=8, quiet=True,
                                           freeze=["conv1", "linear1"]),
              out=str(tmp_path / "r"))


def test_freeze_takes_a_block_by_its_calls_and_says_when_a_layer_has_no_weights():
    """Issue 26, items 10 and 18: with blocks `b` and `b1`, `--freeze b1` took the first call
    of `b` (named `b1`); a block whose name ends in a digit was never found; `--freeze relu1`
    said there is no such layer."""
    import archdsl
    from archdsl.train import TrainError
    from archdsl.train.transfer import frozen_modules

    net = archdsl.loads("input 3x8x8\nblock b { conv 4 k1 }\nblock b1 { conv 4 k1; relu }\n"
                        "b; b1; b; b1\nflatten; linear 2\n")
    model = net.to_torch()
    assert frozen_modules(model, ["b1"], net.graph) == ["b1_1.conv1", "b1_2.conv1"]
    assert frozen_modules(model, ["b"], net.graph) == ["b_1.conv1", "b2.conv1"]
    assert frozen_modules(model, ["b2"], net.graph) == ["b2.conv1"]  # a call by its name
    with pytest.raises(TrainError, match=r"--freeze b1_1.relu1: it holds no "
                                         r"weights, so there is nothing to freeze"):
        frozen_modules(model, ["b1_1.relu1"], net.graph)
    with pytest.raises(TrainError, match="--freeze flatten9: the spec has no layer or group"):
        frozen_modules(model, ["flatten9"], net.graph)
