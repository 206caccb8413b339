"""Issue 14, datasets as they come: CSV/TSV tables of `path,label[,split]` rows; val/valid/
validation/test folders; hidden folders ignored."""

import functools
from pathlib import Path

import pytest

from archdsl.train import DataError, TrainConfig, load_dataset, train
from helpers import image_files

images = functools.partial(image_files, size=(12, 10))  # noise PNGs named as given


def test_a_csv_with_names_and_a_split_column(tmp_path):
    images(tmp_path / "img", [f"{i}.png" for i in range(6)])
    (tmp_path / "img" / "broken.png").write_text("not an image")
    table = tmp_path / "labels.csv"
    table.write_text("path,label,split\nimg/0.png,dog,train\nimg/1.png,cat,train\n"
                     "img/2.png,dog,train\nimg/3.png,cat,valid\nimg/4.png,dog,val\n"
                     "img/5.png,cat,train\nimg/broken.png,cat,train\nimg/gone.png,dog,train\n")
    data = load_dataset(str(table))
    assert data.classes == ["cat", "dog"]
    assert sorted((s.path.name, s.label) for s in data.train) == [
        ("0.png", 1), ("1.png", 0), ("2.png", 1), ("5.png", 0)]
    assert sorted((s.path.name, s.label) for s in data.val) == [("3.png", 0), ("4.png", 1)]
    assert sorted(Path(p).name for p, _ in data.skipped) == ["broken.png", "gone.png"]


def test_a_tsv_with_integer_labels_and_no_split_is_split_by_class(tmp_path):
    images(tmp_path, [f"{i}.png" for i in range(20)])
    table = tmp_path / "data.tsv"
    table.write_text("".join(f"{i}.png\t{[2, 10][i % 2]}\n" for i in range(20)))
    data = load_dataset(str(table), val_split=0.2, seed=0)
    assert data.classes == ["2", "10"]  # ordered as numbers
    assert len(data.val) == 4 and sorted(s.label for s in data.val) == [0, 0, 1, 1]
    assert data.split == "val_split"


@pytest.mark.parametrize("text, message", [
    ("a.png,cat,holdout\n", "labels.csv:1: split 'holdout' is neither train nor val"),
    ("a.png\n", "labels.csv:1: expected `path,label` or `path,label,split`, got 'a.png'"),
    ("a.png,cat,train\nb.png,dog\n", "gives a split for some rows and not others"),
    ("path,label\n", "lists no images"),
])
def test_a_table_that_cannot_be_read_says_where(tmp_path, text, message):
    images(tmp_path, ["a.png", "b.png"])
    (tmp_path / "labels.csv").write_text(text)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace("`", ".")):
        load_dataset(str(tmp_path / "labels.csv"))


def test_val_folder_names_and_hidden_folders(tmp_path):
    for split in ("train", "validation"):
        for c in ("a", "b"):
            images(tmp_path / "d" / split / c, ["0.png", "1.png"])
    images(tmp_path / "d" / "train" / ".ipynb_checkpoints", ["0.png"])
    (tmp_path / "d" / "train" / "a" / ".DS_Store").write_bytes(b"\0\1")
    data = load_dataset(str(tmp_path / "d"))
    assert data.classes == ["a", "b"] and len(data.train) == 4 and len(data.val) == 4
    assert data.skipped == []


def test_a_run_trains_on_a_csv_and_resumes(tmp_path):
    from archdsl.train import resume

    images(tmp_path / "img", [f"{i}.png" for i in range(8)])
    table = tmp_path / "labels.csv"
    table.write_text("".join(f"img/{i}.png,{'ab'[i % 2]},{'val' if i < 2 else 'train'}\n"
                             for i in range(8)))
    spec = tmp_path / "tiny.arch"
    spec.write_text("arch tiny(num_classes=2)\ninput 3x8x8\nconv 4 k3 p1; relu\n"
                    "adaptiveavgpool 1; flatten; linear num_classes\n")
    run = train(spec, str(table), TrainConfig(epochs=1, batch_size=4, quiet=True),
                out=str(tmp_path / "r"))
    resume(run, epochs=2, log=lambda line: None)
    assert len((run / "metrics.csv").read_text().splitlines()) == 3
    import json

    config = json.loads((run / "config.json").read_text())
    assert config["split"] == "table" and config["val_images"] == 2
