"""Training on small data (issue 25): an epoch's batches said at the start, the last partial
batch kept when it is more than a small part of the epoch (never a batch of one image), a
smaller --batch-size suggested, top-5 only where it says something, and the usage mistakes
of train and predict exiting 2."""

import json
from pathlib import Path

import pytest
import torch

from archdsl.train.batches import plan_epoch
from archdsl.train.images import ShardedOrder
from helpers import image_folder, run_cli, same_weights

# a conv, batch norm on the feature map and on a vector (a batch of one image breaks it)
BN_SPEC = """arch bnnet(num_classes=2)
input 3x8x8
block basic(c) { conv c k3 p1; bn; relu }
basic 4
adaptiveavgpool 1; flatten; linear 8; bn; relu; linear num_classes
"""


def spec(folder: Path) -> Path:
    path = folder / "bnnet.arch"
    path.write_text(BN_SPEC)
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """150 training images of 3 classes (and 15 to validate): the issue's reproducer."""
    root = tmp_path_factory.mktemp("small")
    image_folder(root / "data" / "train", classes=("a", "b", "c"), per_class=50)
    image_folder(root / "data" / "val", classes=("a", "b", "c"), per_class=5)
    return root


# ----------------------------------------------------------------------------- the plan


def test_the_last_partial_batch_is_kept_when_it_is_more_than_a_small_part():
    p = plan_epoch(150, 64)  # the 150 images: 2 steps and 22 dropped, before
    assert (p.steps, p.last, p.left_out) == (3, 22, 0)
    assert p.line() == ("3 steps an epoch: 2 of 64 images and a last one of 22; few steps for "
                        "so small a data set: --batch-size 16 makes 10")
    assert p.advice() == "; with only 3 steps an epoch, try --batch-size 16 (10 steps an epoch)"
    digits = plan_epoch(1618, 64)  # large data sets keep their batches
    assert (digits.steps, digits.last, digits.left_out) == (25, 0, 18)
    assert digits.line() == ("25 steps an epoch of 64 images; 18 images (1.1%) left out of "
                             "each epoch, others each time") and digits.advice() == ""
    assert plan_epoch(1281167, 1024, 8).left_out == 143
    assert plan_epoch(40, 64).line() == ("1 step an epoch, of all 40 training images (fewer "
                                         "than --batch-size 64); few steps for so small a data "
                                         "set: --batch-size 8 makes 5")
    assert plan_epoch(128, 64).line() == "2 steps an epoch of 64 images; few steps for so " \
                                         "small a data set: --batch-size 16 makes 8"
    assert plan_epoch(1, 1).advice() == "" and plan_epoch(5, 1).steps == 5
    # never drop more than 2% silently: what is left out is at most that, or a batch of one
    for images in range(2, 400):
        for batch in (2, 8, 16, 64):
            p = plan_epoch(images, batch)
            assert p.left_out <= max(0.02 * images, 1) and p.smallest >= min(2, images)


def test_a_last_batch_of_one_image_is_left_out_and_workers_split_it_evenly():
    assert plan_epoch(33, 16).last == 0 and plan_epoch(33, 16).left_out == 1
    two = plan_epoch(151, 64, world=2)  # 23 left over: 22 split 11 and 11, one image out
    assert (two.steps, two.last, two.left_out) == (3, 22, 1)
    assert "(32 on each of 2 workers)" in two.line() and "1 image (0.7%) left out" in two.line()
    assert plan_epoch(130, 64, world=2).last == 0  # 1 image on each worker: left out
    assert plan_epoch(150, 64, keep_last=False).last == 0  # a run from before the rule


@pytest.mark.parametrize("world", [1, 2, 3])
def test_the_workers_share_the_kept_last_batch_of_the_single_process_order(world):
    size, batch = 150, 60
    last = plan_epoch(size, batch, world).last
    assert last == 30
    single = list(ShardedOrder(size, torch.Generator().manual_seed(3), batch, last=last))
    shards = [ShardedOrder(size, torch.Generator().manual_seed(3), batch, r, world, last=last)
              for r in range(world)]
    parts = [list(s) for s in shards]
    assert [len(p) for p in parts] == [len(s) for s in shards] == [150 // world] * world
    assert len(single) == 150 and len({i for i, _ in single}) == 150  # every image, once
    share, last_share = batch // world, last // world
    for step in range(2):
        together = [i for p in parts for i in p[step * share:(step + 1) * share]]
        assert together == single[step * batch:(step + 1) * batch]
    together = [i for p in parts for i in p[2 * share:]]
    assert together == single[2 * batch:] and all(len(p[2 * share:]) == last_share
                                                  for p in parts)


def test_a_resumed_epoch_skips_whole_batches_and_keeps_the_last():
    full = list(ShardedOrder(150, torch.Generator().manual_seed(1), 64, last=22))
    for steps in (1, 2, 3):
        order = ShardedOrder(150, torch.Generator().manual_seed(1), 64, last=22)
        order.skip = steps * 64
        assert list(order) == full[steps * 64:]


# ----------------------------------------------------------------------------- real runs


def test_150_images_train_on_every_image_and_say_how(small, capsys):
    run = small / "run"
    code, out, err = run_cli(capsys, "train", spec(small), small / "data", "--epochs", "1",
                             "--out", run)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[2] == ("3 steps an epoch: 2 of 64 images and a last one of 22; few steps for "
                        "so small a data set: --batch-size 16 makes 10")
    assert "top5" not in lines[3]  # 3 classes: every image is among the 5 most likely
    assert lines[-1] == (f"best val accuracy {lines[-1].split()[3]} weights in "
                         f"{run / 'best.safetensors'}; with only 3 steps an epoch, try "
                         "--batch-size 16 (10 steps an epoch)")
    assert json.loads((run / "config.json").read_text())["last_batch"] == 22


def test_a_resume_is_exact_with_a_kept_last_batch(small, capsys):
    straight, stopped = small / "straight", small / "stopped"
    common = [spec(small), small / "data", "--schedule", "constant", "--quiet"]
    assert run_cli(capsys, "train", *common, "--epochs", "2", "--out", straight)[0] == 0
    assert run_cli(capsys, "train", *common, "--epochs", "1", "--out", stopped)[0] == 0
    assert run_cli(capsys, "train", "--resume", stopped, "--epochs", "2")[0] == 0
    assert same_weights(straight / "last.safetensors", stopped / "last.safetensors")


def test_a_run_from_before_the_rule_resumes_without_the_last_batch(small, capsys):
    run = small / "old"
    argv = [spec(small), small / "data", "--epochs", "1", "--quiet", "--out", run]
    assert run_cli(capsys, "train", *argv)[0] == 0
    config = json.loads((run / "config.json").read_text())
    del config["last_batch"]  # as an older archdsl wrote it
    (run / "config.json").write_text(json.dumps(config))
    code, out, err = run_cli(capsys, "train", "--resume", run, "--epochs", "2")
    assert code == 0, err
    assert json.loads((run / "config.json").read_text())["last_batch"] == 0


def test_batch_norm_never_gets_a_batch_of_one_image(tmp_path, capsys):
    data = image_folder(tmp_path / "d", counts={"a": 18, "b": 17})  # 33 train / 2 val
    code, out, err = run_cli(capsys, "train", spec(tmp_path), data, "--epochs", "1",
                             "--batch-size", "16", "--val-split", "0.05", "--out",
                             tmp_path / "r")
    assert code == 0, err  # the last batch, one image, is left out (torch would refuse it)
    assert "2 steps an epoch of 16 images; 1 image (3.0%) left out" in out
    code, _, err = run_cli(capsys, "train", spec(tmp_path), data, "--epochs", "1",
                           "--batch-size", "1", "--out", tmp_path / "r1")
    assert code == 2 and err.strip() == (
        "archdsl train: error: --batch-size 1: a training batch holds one image; the "
        "network's batch norm needs two or more to compute its statistics: give --batch-size "
        "2 or more")


def test_top5_is_printed_only_with_more_than_5_classes(small, tmp_path, capsys):
    code, out, _ = run_cli(capsys, "eval", small / "run", small / "data")
    assert code == 0 and out.splitlines()[0].count("top-") == 1  # top-1 alone
    code, out, _ = run_cli(capsys, "eval", small / "run", small / "data", "--format", "json",
                           "--no-gallery")
    assert code == 0 and json.loads(out)["top5"] is None
    six = image_folder(tmp_path / "six", classes=tuple("abcdef"), per_class=4, noise=True)
    code, out, err = run_cli(capsys, "train", spec(tmp_path), six, "--epochs", "1",
                             "--val-split", "0.25", "--out", tmp_path / "r6")
    assert code == 0, err
    assert " top5 " in [line for line in out.splitlines() if line.startswith("epoch 1/1")][0]
    code, out, _ = run_cli(capsys, "eval", tmp_path / "r6", six)
    assert code == 0 and "  top-5 " in out.splitlines()[0]


# ----------------------------------------------------------------------------- usage mistakes


def test_a_resume_given_another_option_exits_2(small, capsys):
    code, out, err = run_cli(capsys, "train", "--resume", small / "run", "--lr", "0.1")
    assert code == 2 and out == ""
    assert err.strip() == (f"archdsl train: error: --resume continues {small / 'run'} with the "
                           "options it was started with (its config.json); --lr 0.1 cannot "
                           "change on a resume: leave it out (--epochs may raise the number of "
                           "epochs), or start a new run with it")


def test_freeze_of_a_misspelt_block_exits_2_and_names_the_closest(small, capsys):
    code, out, err = run_cli(capsys, "train", spec(small), small / "data", "--epochs", "1",
                             "--freeze", "basik", "--out", small / "frozen")
    assert code == 2
    assert err.strip() == ("archdsl train: error: --freeze basik: the spec has no layer or "
                           "group of that name; did you mean `basic`? Its top-level names are "
                           "basic1, bn1, linear1, linear2")
    assert not (small / "frozen" / "config.json").exists()


def test_predict_of_a_missing_path_is_a_usage_error(small, capsys):
    image = next((small / "data" / "val" / "a").iterdir())
    code, out, err = run_cli(capsys, "predict", small / "run", image, small / "missing.png")
    assert code == 2 and out == ""
    assert err.strip() == (f"archdsl predict: error: {small / 'missing.png'} does not exist: no "
                           "such file or folder; give image files, or folders that hold some")
    broken = small / "broken.png"  # an existing file that is no image stays a row
    broken.write_text("not an image")
    code, out, err = run_cli(capsys, "predict", small / "run", image, broken, "--csv", "-")
    assert code == 1 and "cannot read it as an image (not an image)" in out


def test_eval_help_names_csv_data_sets(capsys):
    code, out, _ = run_cli(capsys, "eval", "--help")
    assert code == 0 and "a CSV/TSV file of path,label[,split] rows" in " ".join(out.split())
