"""The data-side cases of the red-team report (issue 16), each with its reproducer.

Notation of the report: A = `archdsl`, L = specs/lenet5.arch, D = a folder with a/ and b/,
four 12x12 PNGs each. Each case must end in a clear message (or a right result), never a
silent wrong result, a raw library warning, a hang or an "internal error"."""

import functools
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from archdsl.cli import main
from archdsl.train.data import DataError, Sample, decode, load_dataset, stratified_split
from archdsl.train.images import loader_workers
from helpers import image_folder, run_cli

ROOT = Path(__file__).resolve().parent.parent
L = ROOT / "specs" / "lenet5.arch"
ARCHDSL = [sys.executable, "-c", "import sys; from archdsl.cli import main; sys.exit(main())"]
images = functools.partial(image_folder, per_class=4, size=12)  # D: 4 12x12 PNGs a class


def run(capsys, *argv):
    code, out, err = run_cli(capsys, *argv)
    assert "internal error" not in err  # every data fault is foreseen, not a bug
    return code, out, err


def train(capsys, data: Path, out: Path, *options):
    return run(capsys, "train", L, data, "--epochs", "1", "--batch-size", "4", "--out", out,
               *options)


# ----------------------------------------------------------------------------- 15


def without_file_capabilities() -> list[str] | None:
    """A command prefix under which permissions bite: nothing as an ordinary user; as root,
    setpriv dropping the capabilities that read past them (None if there is no way)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps=-all",
              "--"]
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    return prefix if probe.returncode == 0 else None


UNREADABLE_CASES = """
import contextlib, io, json, sys
from archdsl.cli import main
results = []
for data in sys.argv[2:]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["train", sys.argv[1], data, "--epochs", "1", "--out", data + "-run"])
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""


def test_15_an_unreadable_folder_is_named_and_stops_the_run(tmp_path):
    """Reproducer: (capabilities dropped) `chmod 000 D/c; A train L D` trained on a/ and b/
    ("left out… no usable image"); with two classes it said "has a single class"; an
    unreadable sub-folder inside a class was skipped silently."""
    prefix = without_file_capabilities()
    if prefix is None:
        pytest.skip("no way to make permissions bite here (root without setpriv)")
    three = images(tmp_path / "three", classes=("a", "b", "c"))
    two = images(tmp_path / "two")
    nested = images(tmp_path / "nested")
    (nested / "b" / "more").mkdir()
    for folder in (three / "c", two / "b", nested / "b" / "more"):
        folder.chmod(0)
    try:
        done = subprocess.run([*prefix, sys.executable, "-c", UNREADABLE_CASES, str(L),
                               str(three), str(two), str(nested)], capture_output=True,
                              text=True, timeout=300, cwd=tmp_path)
    finally:
        for folder in (three / "c", two / "b", nested / "b" / "more"):
            folder.chmod(0o755)
    assert done.returncode == 0, done.stderr
    for (code, err), folder in zip(json.loads(done.stdout.splitlines()[-1]),
                                   (three / "c", two / "b", nested / "b" / "more")):
        assert code == 1 and "Traceback" not in err
        assert err.startswith(f"archdsl train: error: {folder} cannot be read (permission "
                              "denied), so its images would be left out")
        assert "left out 1 class folder" not in err and "single class" not in err
    assert not any(p.name.endswith("-run") for p in tmp_path.iterdir())


def test_15_an_unreadable_folder_is_a_data_error_without_root_tricks(tmp_path, monkeypatch):
    """The same code path where permissions cannot be made to bite: the OS refusing to list
    one folder."""
    data = images(tmp_path / "D", classes=("a", "b", "c"))
    real = os.scandir

    def refusing(path="."):
        if Path(path) == data / "c":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", refusing)
    with pytest.raises(DataError, match=r"/D/c cannot be read \(permission denied\)"):
        load_dataset(str(data), 0.25, 0, 1)


# ----------------------------------------------------------------------------- 18


def test_18_resume_after_the_data_set_changed_is_refused_saying_what_changed(tmp_path, capsys):
    """Reproducer: `A train L D --epochs 2`, stopped after epoch 1; add or remove images; `A
    train --resume R`: it went on with another validation split, so validation images could
    be trained on."""
    data = images(tmp_path / "D")
    code, _, _ = train(capsys, data, tmp_path / "r")
    assert code == 0
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["split"] == "val_split" and set(saved["data_fingerprint"]["classes"]) == {"a",
                                                                                           "b"}
    assert saved["data_fingerprint"]["classes"]["a"]["images"] == 4

    shutil.copy(data / "a" / "0.png", data / "a" / "new1.png")
    shutil.copy(data / "a" / "0.png", data / "a" / "new2.png")
    (data / "b" / "3.png").unlink()
    code, out, err = run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "2")
    assert code == 1 and "epoch 2/2" not in out
    assert f"archdsl train: error: {data} changed since the run started: 'a' has 2 image(s) " \
           "more (6, was 4); 'b' has 1 image(s) fewer (3, was 4)" in err
    assert "start a new run on the data as it is now" in err

    (data / "a" / "new1.png").unlink()
    (data / "a" / "new2.png").rename(data / "b" / "3.png")  # as many files, one not the same
    (data / "a" / "3.png").rename(data / "a" / "renamed.png")
    code, _, err = run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "2")
    assert code == 1 and "'a' has as many images but not the same files" in err

    (data / "a" / "renamed.png").rename(data / "a" / "3.png")  # back as it was
    code, out, err = run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "2")
    assert code == 0 and "epoch 2/2" in out, err


# ----------------------------------------------------------------------------- 21


def test_21_exif_orientation_is_applied_wherever_images_are_decoded(tmp_path):
    """Reproducer: a camera JPEG stored sideways with EXIF Orientation 6 was trained on, and
    classified, sideways."""
    from archdsl.train.pipeline import CachedImages

    stored = np.zeros((6, 12), dtype=np.uint8)
    stored[:, :6] = 255  # left half white, as stored
    exif = Image.Exif()
    exif[0x0112] = 3  # shown turned by 180 degrees: the right half white
    Image.fromarray(stored).save(tmp_path / "turned.png", exif=exif)
    exif[0x0112] = 6  # shown turned by 90 degrees: 6 wide, 12 high
    Image.fromarray(stored).save(tmp_path / "sideways.png", exif=exif)
    turned = np.asarray(decode(Sample(0, path=tmp_path / "turned.png"), 1))
    assert (turned[:, 6:] == 255).all() and (turned[:, :6] == 0).all()
    assert decode(Sample(0, path=tmp_path / "sideways.png"), 3).size == (6, 12)
    cached = CachedImages([Sample(0, path=tmp_path / "turned.png")], 1, (6, 12))
    assert (cached[0][0][0, :, 6:] == 255).all()


def test_21_a_class_folder_linked_to_another_is_refused_naming_both(tmp_path, capsys):
    """Reproducer: `ln -s a D/c; A train L D`: a's images were trained on under two labels."""
    data = images(tmp_path / "D")
    (data / "c").symlink_to("a")
    code, _, err = train(capsys, data, tmp_path / "r")
    assert code == 1
    assert f"error: {data / 'a'} and {data / 'c'} are the same folder ({data / 'a'})" in err
    assert not (tmp_path / "r").exists()
    split = tmp_path / "split"
    images(split / "train")
    (split / "val").mkdir()
    (split / "val" / "a").symlink_to(split / "train" / "a")  # validated on what it trains on
    code, _, err = train(capsys, split, tmp_path / "r")
    assert code == 1 and "are the same folder" in err and str(split / "val" / "a") in err


def test_21_val_split_0_9_keeps_a_training_image_in_every_class(tmp_path, capsys):
    """Reproducer: `A train L D --val-split 0.9` with a two-image class: all of it went to
    validation, and the class was never trained on."""
    data = images(tmp_path / "D")
    for name in ("2.png", "3.png"):
        (data / "a" / name).unlink()
    split = load_dataset(str(data), 0.9, 0, 1)
    assert {s.label for s in split.train} == {0, 1} and len(split.val) == 1 + 3
    two = [Sample(0, path=Path(f"{i}.png")) for i in range(2)]
    assert [len(part) for part in stratified_split(two, 0.9, 0)] == [1, 1]
    code, _, err = train(capsys, data, tmp_path / "r", "--val-split", "0.9")
    assert code == 0, err
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (saved["train_images"], saved["val_images"]) == (2, 4)


# ----------------------------------------------------------------------------- 16


@pytest.fixture(scope="module")
def odd_names(tmp_path_factory):
    """A run trained on a class folder whose name is not UTF-8, and two images to predict."""
    folder = tmp_path_factory.mktemp("names")
    data = images(folder / "D", classes=("a", os.fsdecode(b"b\xff")))
    out = folder / "r"
    assert main(["train", str(L), str(data), "--epochs", "1", "--batch-size", "4", "--quiet",
                 "--out", str(out)]) == 0
    shutil.copy(data / "a" / "0.png", folder / os.fsdecode(b"img\xff.png"))
    shutil.copy(data / "a" / "1.png", folder / "ok.png")
    return folder


def test_16_a_name_that_is_not_utf8_is_printed_escaped_and_every_image_classified(odd_names):
    """Reproducer: `PYTHONIOENCODING=utf-8 A predict R $'img\\xff.png' ok.png` gave "internal
    error", and ok.png was not classified."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run([*ARCHDSL, "predict", "r", os.fsdecode(b"img\xff.png"), "ok.png"],
                          cwd=odd_names, env=env, capture_output=True, timeout=120)
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0 and "internal error" not in err, err
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("img\\xff.png: ")
    assert lines[1].startswith("ok.png: ") and "b\\xff" in out  # the class name, too
    saved = json.loads((odd_names / "r" / "config.json").read_text())
    assert saved["classes"] == ["a", "b\\xff"]


# ----------------------------------------------------------------------------- 9


def test_9_a_thousand_workers_are_capped_by_cores_and_batches_in_one_line(tmp_path, capsys):
    """Reproducer: `A train L D --workers 1000` on six training images: still running after
    120 s, with torch's warnings about the worker count."""
    data = images(tmp_path / "D")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = train(capsys, data, tmp_path / "r", "--workers", "1000")
    assert code == 0 and "epoch 1/1" in out
    capped = [line for line in err.splitlines() if "--workers 1000" in line]
    assert capped == [line for line in err.splitlines() if line.strip()]  # the only line
    cores = len(os.sched_getaffinity(0))
    # six images in batches of 4: two batches an epoch (the last batch of 2 is kept), so at
    # most two workers, and no more than the cores
    assert capped[0].startswith(f"warning: --workers 1000 is more than this run can use: "
                                f"{min(2, cores)} data-loader worker(s) (")
    assert not [w for w in caught if "worker" in str(w.message)]
    assert loader_workers(1000, 3)[0] == min(3, cores)
    assert loader_workers(cores, 10 * cores) == (cores, None)
    assert loader_workers(cores, 10 * cores, processes_here=cores)[0] == 1
    assert loader_workers(0, 3) == (0, None)


# ----------------------------------------------------------------------------- 20


def test_20_pils_decompression_bomb_warning_stays_off_stderr(tmp_path, capsys):
    """Reproducer: a 12000x12000 PNG among D's images: PIL's DecompressionBombWarning reached
    stderr with its site-packages path, at each decoding. The image is used (it is under
    twice PIL's limit); train and predict say nothing of it."""
    data = images(tmp_path / "D")
    Image.new("L", (12000, 12000), 40).save(data / "a" / "big.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = train(capsys, data, tmp_path / "r", "--val-split", "0")
        assert code == 0 and "DecompressionBomb" not in err
        code, out, err = run(capsys, "predict", tmp_path / "r", data / "a" / "big.png")
        assert code == 0 and out.startswith(f"{data / 'a' / 'big.png'}: ")
    assert not [w for w in caught if "decompression" in str(w.message).lower()]
    assert json.loads((tmp_path / "r" / "config.json").read_text())["train_images"] == 9


def test_20_long_class_names_draw_without_matplotlibs_warning():
    """matplotlib's tight_layout warning for long class names reached stderr."""
    from archdsl.train.plots import confusion_png

    names = [f"a class with a very long name number {i} " * 3 for i in range(6)]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        import torch

        png = confusion_png(torch.eye(6, dtype=torch.long), names, title="validation")
    assert png.startswith(b"\x89PNG") and [str(w.message) for w in seen] == []


def test_20_compiles_log_lines_are_quiet_during_the_epochs_only():
    """`--compile` on the CPU printed torch's "No CUDA runtime is found" log line."""
    import logging

    from archdsl.train.loop import quiet_compile_logs

    logger = logging.getLogger("torch.utils.cpp_extension")
    before = logger.level
    with quiet_compile_logs():
        assert not logger.isEnabledFor(logging.WARNING)
    assert logger.level == before
