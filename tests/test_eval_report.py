"""Issue 14: `archdsl eval` reports per-class precision, recall and F1."""

import json

import pytest
import torch

from archdsl.train.inference import per_class_scores


def test_precision_recall_and_f1_per_class_from_the_confusion_matrix():
    # rows: true class, columns: predicted
    confusion = torch.tensor([[8, 2, 0], [4, 6, 0], [0, 0, 0]])
    scores = per_class_scores(confusion, ["cat", "dog", "eel"])
    cat, dog, eel = scores["cat"], scores["dog"], scores["eel"]
    assert cat["images"] == 10 and cat["recall"] == cat["acc"] == pytest.approx(0.8)
    assert cat["precision"] == pytest.approx(8 / 12)
    assert cat["f1"] == pytest.approx(2 * (8 / 12) * 0.8 / (8 / 12 + 0.8))
    assert dog["precision"] == pytest.approx(6 / 8) and dog["recall"] == pytest.approx(0.6)
    assert eel == {"images": 0, "acc": None, "precision": None, "recall": None, "f1": None}
    never_right = per_class_scores(torch.tensor([[0, 3], [2, 0]]), ["a", "b"])
    assert never_right["a"]["f1"] == 0.0 and never_right["a"]["precision"] == 0.0


def test_eval_json_has_them(tmp_path, capsys):
    from archdsl.cli import main
    from archdsl.train import TrainConfig, train
    from helpers import image_folder

    image_folder(tmp_path / "d", per_class=6, noise=True)
    spec = tmp_path / "tiny.arch"
    spec.write_text("arch tiny(num_classes=2)\ninput 3x8x8\nconv 4 k3 p1; relu\n"
                    "adaptiveavgpool 1; flatten; linear num_classes\n")
    run = train(spec, str(tmp_path / "d"), TrainConfig(epochs=1, batch_size=4, quiet=True),
                out=str(tmp_path / "r"))
    assert main(["eval", str(run), str(tmp_path / "d"), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    confusion = torch.tensor(doc["confusion"])
    assert doc["per_class"] == json.loads(json.dumps(per_class_scores(confusion, ["a", "b"])))
    assert set(doc["per_class"]["a"]) == {"images", "acc", "precision", "recall", "f1"}
    # the table shows the same numbers, one row per class
    assert main(["eval", str(run), str(tmp_path / "d")]) == 0
    table = capsys.readouterr().out
    assert "class  images  accuracy  precision  recall      F1" in table
    for name, v in doc["per_class"].items():
        cells = [f"{v[k]:.1%}" if v[k] is not None else "-" for k in ("acc", "precision",
                                                                      "recall", "f1")]
        assert any(line.split() == [name, str(v["images"]), *cells]
                   for line in table.splitlines()), (name, table)
