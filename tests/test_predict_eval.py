"""Issue 14: `archdsl predict` on folders of images, in batches, to CSV; `archdsl eval`'s
gallery of the most confidently wrong images (confidently_wrong.png).

Every expectation about the model's answers is computed here, independently of archdsl's
inference code: the run's weights loaded into the compiled spec with safetensors, the images
normalised by hand with the run's mean and std."""

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from archdsl.cli import main
from helpers import image_folder

CLASSES = ("a", "b", "c")
SPEC = ("arch tiny(num_classes=3)\ninput 3x8x8\nconv 4 k3 p1; relu\n"
        "adaptiveavgpool 1; flatten; linear num_classes\n")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run of a tiny spec trained one epoch on 3 classes of 6 random 8x8 images: (the data
    folder, the run folder)."""
    from archdsl.train import TrainConfig, train

    root = tmp_path_factory.mktemp("predict_eval")
    image_folder(root / "d", classes=CLASSES, per_class=6, noise=True)
    (root / "tiny.arch").write_text(SPEC)
    run = train(root / "tiny.arch", str(root / "d"),
                TrainConfig(epochs=1, batch_size=4, quiet=True), out=str(root / "r"))
    return root / "d", Path(run)


def probabilities(run: Path, paths) -> torch.Tensor:
    """The softmax of the run's best weights on each image, computed without archdsl's
    inference module."""
    from safetensors.torch import load_file

    import archdsl

    saved = json.loads((run / "config.json").read_text())
    model = archdsl.load(run / saved["spec"], **saved["parameters"]).to_torch().eval()
    model.load_state_dict(load_file(str(run / "best.safetensors")))
    mean = torch.tensor(saved["normalisation"]["mean"])[:, None, None]
    std = torch.tensor(saved["normalisation"]["std"])[:, None, None]
    pixels = [torch.tensor(np.asarray(Image.open(p).convert("RGB")), dtype=torch.float32)
              for p in paths]
    x = torch.stack([(p.permute(2, 0, 1) / 255 - mean) / std for p in pixels])
    with torch.no_grad():
        return torch.softmax(model(x), dim=1)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def folder(trained, tmp_path):
    """Five images in a folder, a sub-folder and a sub-sub-folder, beside hidden files and
    folders (a notebook's checkpoints, .DS_Store) and a text file that predict leaves out."""
    data, _ = trained
    top = tmp_path / "imgs"
    for sub in ("z", "z/deep", ".ipynb_checkpoints", ".hidden"):
        (top / sub).mkdir(parents=True)
    sources = sorted(data.glob("*/*.png"))
    for name, src in zip(("m.png", "b.PNG", "z/a.png", "z/deep/q.png", "z/c.jpeg"), sources):
        shutil.copy(src, top / name)
    shutil.copy(sources[5], top / ".ipynb_checkpoints" / "m-checkpoint.png")
    shutil.copy(sources[6], top / ".hidden" / "x.png")
    shutil.copy(sources[7], top / ".dot.png")
    (top / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (top / "notes.txt").write_text("not an image")
    return top


FOUND = ["b.PNG", "m.png", "z/a.png", "z/c.jpeg", "z/deep/q.png"]


# ----------------------------------------------------------------------------- predict


def test_a_folder_is_searched_recursively_in_sorted_order_hidden_files_left_out(
        trained, folder, capsys):
    _, r = trained
    code, out, err = run(capsys, "predict", r, folder)
    assert code == 0 and err == ""
    names = [line.split(": ")[0] for line in out.splitlines()]
    assert names == [str(folder / n) for n in FOUND]
    # a folder and files given beside it: each in its place, a file as written
    code, out, _ = run(capsys, "predict", r, folder / "m.png", folder / "z", folder / "b.PNG")
    assert [line.split(": ")[0] for line in out.splitlines()] == \
        [str(folder / n) for n in ("m.png", "z/a.png", "z/c.jpeg", "z/deep/q.png", "b.PNG")]


def read_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_csv_has_a_row_per_image_with_the_models_top_classes(trained, folder, tmp_path,
                                                                 capsys):
    _, r = trained
    out_file = tmp_path / "p.csv"
    code, out, err = run(capsys, "predict", r, folder, "--csv", out_file, "--batch-size", "2")
    assert code == 0 and err == ""
    assert out == f"wrote {out_file} (5 images)\n"  # no table when the CSV is written
    text = out_file.read_text()
    header = text.splitlines()[0]
    assert header == "path,label_1,prob_1,label_2,prob_2,label_3,prob_3,error"
    rows = read_csv(text)
    assert [row["path"] for row in rows] == [str(folder / n) for n in FOUND]
    probs = probabilities(r, [row["path"] for row in rows])
    for row, p in zip(rows, probs):
        shown = [float(row[f"prob_{k}"]) for k in (1, 2, 3)]
        assert shown == sorted(shown, reverse=True) and sum(shown) <= 1 + 1e-5
        assert all(len(row[f"prob_{k}"].split(".")[1]) == 6 for k in (1, 2, 3))
        assert row["label_1"] == CLASSES[int(p.argmax())]
        assert float(row["prob_1"]) == pytest.approx(float(p.max()), abs=2e-6)
        assert sorted(row[f"label_{k}"] for k in (1, 2, 3)) == list(CLASSES)
        assert row["error"] == ""
    # --top 1: one label and probability per row
    code, out, _ = run(capsys, "predict", r, folder, "--csv", "-", "--top", "1")
    assert out.splitlines()[0] == "path,label_1,prob_1,error"
    assert [row["label_1"] for row in read_csv(out)] == [row["label_1"] for row in rows]


def test_csv_dash_writes_the_csv_to_stdout(trained, folder, tmp_path, capsys):
    _, r = trained
    code, out, err = run(capsys, "predict", r, folder, "--csv", "-")
    assert code == 0 and err == ""
    assert run(capsys, "predict", r, folder, "--csv", tmp_path / "same.csv")[0] == 0
    assert out == (tmp_path / "same.csv").read_text()
    assert not (Path.cwd() / "-").exists()


def test_predictions_go_through_the_model_in_batches(trained, folder, monkeypatch, capsys):
    from archdsl.train import inference

    _, r = trained
    sizes = []
    load_run = inference.load_run

    def counting(*args, **kwargs):
        network, model, saved = load_run(*args, **kwargs)
        model.register_forward_hook(lambda m, inputs, output: sizes.append(len(inputs[0])))
        return network, model, saved

    monkeypatch.setattr(inference, "load_run", counting)
    code, batched, _ = run(capsys, "predict", r, folder, "--batch-size", "2", "--csv", "-")
    assert code == 0 and sizes == [2, 2, 1]
    sizes.clear()
    code, default, _ = run(capsys, "predict", r, folder, "--csv", "-")
    assert sizes == [5] and read_csv(default) == read_csv(batched)
    assert run(capsys, "predict", r, folder, "--batch-size", "0")[0] == 2


def test_a_file_the_user_owns_is_not_replaced_without_force(trained, folder, tmp_path, capsys):
    _, r = trained
    mine = tmp_path / "mine.csv"
    mine.write_text("my,own,data\n")
    code, out, err = run(capsys, "predict", r, folder, "--csv", mine)
    assert (code, out) == (2, "")
    assert err == (f"archdsl predict: error: {mine} exists; choose another --csv, or add "
                   "--force to replace it\n")
    assert mine.read_text() == "my,own,data\n"
    assert run(capsys, "predict", r, folder, "--csv", tmp_path)[0] == 2  # a folder
    assert run(capsys, "predict", r, folder, "--csv", mine, "--force")[0] == 0
    assert len(read_csv(mine.read_text())) == 5


def test_an_unreadable_image_is_reported_and_has_an_error_row(trained, folder, capsys):
    _, r = trained
    (folder / "z" / "broken.png").write_bytes(b"not a png")
    code, out, err = run(capsys, "predict", r, folder, "--csv", "-")
    assert code == 1
    assert err == f"{folder / 'z' / 'broken.png'}: cannot read it as an image (not an image)\n"
    rows = read_csv(out)
    assert len(rows) == 6 and "Traceback" not in err
    broken = next(row for row in rows if row["path"].endswith("broken.png"))
    assert broken["error"] == "cannot read it as an image (not an image)"
    assert broken["label_1"] == broken["prob_1"] == ""
    assert all(row["error"] == "" and row["label_1"] in CLASSES
               for row in rows if row is not broken)
    code, out, _ = run(capsys, "predict", r, folder)  # the table: the others are printed
    assert code == 1 and len(out.splitlines()) == 5


def test_a_folder_without_images_is_a_located_error(trained, tmp_path, capsys):
    _, r = trained
    empty = tmp_path / "empty"
    (empty / ".ipynb_checkpoints").mkdir(parents=True)
    (empty / ".ipynb_checkpoints" / "x.png").write_bytes(b"")
    (empty / "readme.txt").write_text("no images here")
    code, out, err = run(capsys, "predict", r, empty)
    assert (code, out) == (1, "") and err.count("\n") == 1
    assert err.startswith(f"archdsl predict: error: {empty}: no images in this folder or its "
                          "sub-folders (image files end in .png, .jpg")
    assert f"such as {empty / 'readme.txt'}" in err


# ----------------------------------------------------------------------------- eval


def expected_wrong(trained, size: int) -> list[dict]:
    """The misclassified images of the data folder with the highest predicted probability,
    from the model's own outputs."""
    data, r = trained
    paths = sorted(data.glob("*/*.png"))
    probs = probabilities(r, paths)
    wrong = [{"path": str(p), "true": p.parent.name, "predicted": CLASSES[int(q.argmax())],
              "confidence": float(q.max())}
             for p, q in zip(paths, probs) if CLASSES[int(q.argmax())] != p.parent.name]
    return sorted(wrong, key=lambda w: -w["confidence"])[:size]


def test_eval_draws_the_most_confidently_wrong_images(trained, monkeypatch, capsys):
    from archdsl.train import gallery

    data, r = trained
    expected = expected_wrong(trained, 4)
    assert len(expected) == 4  # the tiny model is wrong often enough
    figures = []
    figure = gallery.gallery_figure
    monkeypatch.setattr(gallery, "gallery_figure",
                        lambda *a, **k: figures.append(figure(*a, **k)) or figures[-1])
    (r / "confidently_wrong.png").unlink(missing_ok=True)
    code, out, err = run(capsys, "eval", r, data, "--format", "json", "--gallery-size", "4")
    assert code == 0 and err == ""
    doc = json.loads(out)
    got = doc["confidently_wrong"]
    assert [(w["path"], w["true"], w["predicted"]) for w in got] == \
        [(w["path"], w["true"], w["predicted"]) for w in expected]
    assert [w["confidence"] for w in got] == pytest.approx(
        [w["confidence"] for w in expected], abs=1e-5)
    assert doc["gallery"] == str(r / "confidently_wrong.png")
    assert doc["misclassified"] == len(expected_wrong(trained, 100))
    png = (r / "confidently_wrong.png").read_bytes()
    assert png.startswith(b"\x89PNG") and gallery.written_by_archdsl(r / "confidently_wrong.png")
    shown = [ax for ax in figures[0].axes if ax.images]
    assert len(shown) == 4
    for ax, w in zip(shown, expected):
        title = ax.get_title()
        assert title == (f"true: {w['true']}\npredicted: {w['predicted']} "
                         f"({100 * w['confidence']:.1f}%)")
        short = w["path"] if len(w["path"]) <= 40 else "…" + w["path"][-39:]
        assert [t.get_text() for t in ax.texts] == [short]  # the file, below the image
        # the image as the file holds it, enlarged with square pixels (not normalised)
        pixels = np.asarray(Image.open(w["path"]).convert("RGB"))
        assert (ax.images[0].get_array()[::16, ::16] == pixels).all()


def test_eval_table_lists_them_and_a_users_file_is_not_replaced(trained, tmp_path, capsys):
    data, r = trained
    expected = expected_wrong(trained, 16)
    picture = tmp_path / "wrong.png"
    code, out, _ = run(capsys, "eval", r, data, "--gallery", picture)
    assert code == 0 and picture.read_bytes().startswith(b"\x89PNG")
    listed = out.split("most confidently wrong: ")[1].splitlines()
    assert listed[0].startswith(f"{len(expected)} of ")
    assert [line.split()[-1] for line in listed[1:-1]] == [w["path"] for w in expected]
    assert listed[-1] == f"wrote {picture}"
    # an earlier gallery is replaced; a file of the user's is not, unless --force
    assert run(capsys, "eval", r, data, "--gallery", picture)[0] == 0
    mine = tmp_path / "mine.png"
    mine.write_bytes(png := Image.new("RGB", (4, 4)).tobytes())
    code, out, err = run(capsys, "eval", r, data, "--gallery", mine)
    assert (code, out, mine.read_bytes()) == (2, "", png)
    assert err == (f"archdsl eval: error: {mine} exists and is not an archdsl gallery; choose "
                   "another --gallery, or add --force to replace it\n")
    assert run(capsys, "eval", r, data, "--gallery", mine, "--force")[0] == 0
    assert mine.read_bytes() != png
    assert run(capsys, "eval", r, data, "--gallery", tmp_path / "x.jpg")[0] == 2


def test_no_gallery_writes_no_picture(trained, capsys):
    data, r = trained
    (r / "confidently_wrong.png").unlink(missing_ok=True)
    code, out, _ = run(capsys, "eval", r, data, "--no-gallery", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["gallery"] is None and len(doc["confidently_wrong"]) > 0
    assert not (r / "confidently_wrong.png").exists()
    code, out, _ = run(capsys, "eval", r, data, "--no-gallery")
    assert code == 0 and "wrote" not in out and not (r / "confidently_wrong.png").exists()
    for wrong in (["--gallery-size", "0"], ["--no-gallery", "--gallery", "x.png"]):
        try:
            code = main(["eval", str(r), str(data), *wrong])
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code
        assert code == 2 and "archdsl eval: error: " in capsys.readouterr().err


def test_when_nothing_is_wrong_one_line_and_no_picture(trained, tmp_path, capsys):
    data, r = trained
    paths = sorted(data.glob("*/*.png"))
    for path, p in zip(paths, probabilities(r, paths)):  # each image under its predicted class
        (tmp_path / "right" / CLASSES[int(p.argmax())]).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, tmp_path / "right" / CLASSES[int(p.argmax())] / path.name.replace(
            ".png", f"-{path.parent.name}.png"))
    (r / "confidently_wrong.png").unlink(missing_ok=True)
    code, out, _ = run(capsys, "eval", r, tmp_path / "right")
    assert code == 0 and "top-1 100.0%" in out.splitlines()[0]
    assert out.splitlines()[-1] == \
        "no image is misclassified: no gallery of confidently wrong images"
    assert not (r / "confidently_wrong.png").exists()
    code, out, _ = run(capsys, "eval", r, tmp_path / "right", "--format", "json")
    doc = json.loads(out)
    assert (doc["confidently_wrong"], doc["gallery"], doc["misclassified"]) == ([], None, 0)


def test_training_validation_keeps_nothing_per_image():
    """evaluate() without `keep` (the training loop's call) returns what it always did."""
    from torch import nn

    from archdsl.train.inference import evaluate

    model = nn.Linear(4, 3)
    x, y = torch.randn(10, 4), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
    plain = evaluate(model, loader, torch.device("cpu"), nn.CrossEntropyLoss(), 3)
    kept = []
    more = evaluate(model, loader, torch.device("cpu"), nn.CrossEntropyLoss(), 3, keep=kept)
    assert set(plain) == {"loss", "acc", "top5", "confusion", "count"}
    assert plain["loss"] == more["loss"] and plain["confusion"].equal(more["confusion"])
    confidence = torch.cat([c for c, _ in kept])
    predicted = torch.cat([p for _, p in kept])
    with torch.no_grad():
        probs = torch.softmax(model(x), dim=1)
    assert predicted.equal(probs.argmax(1)) and torch.allclose(confidence, probs.max(1).values)


def test_eval_reads_a_val_folder_given_without_train(trained, tmp_path):
    """Issue 26, item 13: `eval RUN DATA` with DATA/val/<class>/ and no train/ said "classes
    the run never saw: val"; the held-out folder is the test set, as the docs say."""
    import shutil

    from archdsl.train import evaluate_run

    data, run = trained
    shutil.copytree(data, tmp_path / "DATA" / "val")
    held_out = evaluate_run(run, str(tmp_path / "DATA"))
    direct = evaluate_run(run, str(data))
    assert held_out["count"] == direct["count"] == 6 * len(CLASSES)
    assert held_out["acc"] == direct["acc"]
    assert torch.equal(torch.as_tensor(held_out["confusion"]), torch.as_tensor(direct["confusion"]))
