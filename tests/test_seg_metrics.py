"""Issue 24: segmentation's scores (confusion, IoU), its pictures (palette masks, overlays,
the gallery of worst segmentations) and `archdsl eval`'s text and JSON for them."""

import io
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from archdsl.train.seg_metrics import confusion_update, per_class, per_image_iou, scores
from archdsl.train.seg_pictures import (IGNORE_COLOUR, MARKER, PREDICT_MARKER, marked, mask_png,
                                        overlay, overlay_png, palette, voc_colour,
                                        worst_gallery_png, worst_images, write_worst_gallery,
                                        written_by_archdsl)
from archdsl.train.seg_report import seg_eval_document, seg_eval_table

# rows: true class, columns: predicted; the 255 pixel is ignored
TARGET = torch.tensor([[[0, 0, 1], [1, 2, 255]]])
PRED = torch.tensor([[[0, 1, 1], [1, 2, 0]]])


def _confusion(pred, target, classes, ignore=255):
    return confusion_update(torch.zeros(classes, classes, dtype=torch.long), pred, target,
                            ignore)


def test_confusion_and_scores_of_a_hand_counted_case():
    confusion = _confusion(PRED, TARGET, 3)
    assert confusion.tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 1]]
    s = scores(confusion)
    assert s["pixel_acc"] == pytest.approx(4 / 5)
    assert s["iou"] == pytest.approx([1 / 2, 2 / 3, 1.0])
    assert s["miou"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert s["acc"] == pytest.approx([1 / 2, 1.0, 1.0])
    assert s["mean_acc"] == pytest.approx(2.5 / 3)
    assert s["pixels"] == [2, 2, 1]
    # logits give the same counts as their argmax
    logits = torch.nn.functional.one_hot(PRED, 3).permute(0, 3, 1, 2).float() * 5
    assert torch.equal(_confusion(logits, TARGET, 3), confusion)


def test_absent_classes_have_no_iou_and_predicted_only_ones_score_zero():
    # class 2 is predicted but never true; class 3 neither true nor predicted
    target = torch.tensor([[[0, 0, 1, 1]]])
    pred = torch.tensor([[[0, 2, 1, 1]]])
    s = scores(_confusion(pred, target, 4))
    assert s["iou"][2] == 0.0 and s["acc"][2] is None
    assert s["iou"][3] is None and s["acc"][3] is None and s["pixels"][3] == 0
    assert s["miou"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert s["mean_acc"] == pytest.approx((1 / 2 + 1) / 2)
    named = per_class(_confusion(pred, target, 4), ["bg", "cat", "dog", "eel"])
    assert named["eel"] == {"iou": None, "acc": None, "pixels": 0}
    assert named["cat"] == {"iou": 1.0, "acc": 1.0, "pixels": 2}


def test_only_ignored_pixels_score_nothing():
    target = torch.full((2, 3, 3), 255)
    confusion = _confusion(torch.zeros(2, 3, 3, dtype=torch.long), target, 3)
    assert confusion.sum() == 0
    s = scores(confusion)
    assert math.isnan(s["pixel_acc"]) and math.isnan(s["miou"]) and math.isnan(s["mean_acc"])
    assert s["iou"] == [None] * 3
    assert torch.isnan(per_image_iou(torch.zeros(2, 3, 3, dtype=torch.long), target, 3)).all()


def _brute_force(pred, target, classes, ignore):
    """The confusion counted one pixel at a time."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    for t, p in zip(target.reshape(-1).tolist(), pred.reshape(-1).tolist()):
        if t != ignore and 0 <= t < classes:
            counts[t, p] += 1
    return counts


def _brute_iou(counts):
    """Per-class IoU with NaN for a class that is nowhere, and its nanmean."""
    ious = []
    for c in range(len(counts)):
        union = counts[c].sum() + counts[:, c].sum() - counts[c, c]
        ious.append(counts[c, c] / union if union else np.nan)
    return ious, (np.nanmean(ious) if not np.isnan(ious).all() else np.nan)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_confusion_and_iou_agree_with_a_pixel_by_pixel_count(seed):
    rng = np.random.default_rng(seed)
    classes = int(rng.integers(2, 7))
    n, h, w = int(rng.integers(1, 4)), int(rng.integers(1, 9)), int(rng.integers(1, 9))
    target = rng.integers(0, classes, (n, h, w))
    target[rng.random((n, h, w)) < 0.2] = 255
    guess = rng.integers(0, classes, (n, h, w))
    pred = np.where((rng.random((n, h, w)) < 0.5) & (target != 255), target, guess)
    # two batches added one after the other count what one batch of both counts
    confusion = torch.zeros(classes, classes, dtype=torch.long)
    half = max(1, n // 2)
    for part in (slice(0, half), slice(half, n)):
        confusion_update(confusion, torch.from_numpy(pred[part]),
                         torch.from_numpy(target[part]).to(torch.uint8))
    counts = _brute_force(pred, target, classes, 255)
    assert confusion.tolist() == counts.tolist()
    s = scores(confusion)
    ious, miou = _brute_iou(counts)
    assert [np.nan if v is None else v for v in s["iou"]] == pytest.approx(ious, nan_ok=True)
    assert s["miou"] == pytest.approx(miou, nan_ok=True)
    scored = counts.sum()
    assert s["pixel_acc"] == pytest.approx(np.trace(counts) / scored if scored else np.nan,
                                           nan_ok=True)
    each = per_image_iou(torch.from_numpy(pred), torch.from_numpy(target), classes)
    assert each.shape == (n,)
    expected = [_brute_iou(_brute_force(pred[i], target[i], classes, 255))[1] for i in range(n)]
    assert each.tolist() == pytest.approx(expected, nan_ok=True)


def test_per_image_iou_scores_each_image_on_its_own_classes():
    target = torch.tensor([[[0, 0], [1, 1]], [[2, 2], [2, 255]]])
    pred = torch.tensor([[[0, 0], [1, 1]], [[2, 0], [2, 1]]])
    # image 0: perfect; image 1: class 2 IoU 2/3, class 0 predicted only (0); the 255 is out
    assert per_image_iou(pred, target, 3).tolist() == pytest.approx([1.0, (2 / 3 + 0) / 2])
    logits = torch.nn.functional.one_hot(pred, 3).permute(0, 3, 1, 2).float()
    assert per_image_iou(logits, target, 3).tolist() == pytest.approx([1.0, 1 / 3])


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="shape"):
        _confusion(torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 3), 2)


def test_palette_takes_the_data_sets_colours_then_vocs():
    assert palette(3) == [(0, 0, 0), (128, 0, 0), (0, 128, 0)]
    assert voc_colour(15) == (192, 128, 128)  # VOC's person
    assert len(set(palette(40))) == 40
    assert palette(3, [10, 20, 30, 40, 50, 60]) == [(10, 20, 30), (40, 50, 60), (0, 128, 0)]


def test_a_mask_png_holds_the_class_indices_and_the_palette():
    mask = np.array([[0, 1, 2], [2, 255, 0]], dtype=np.uint8)
    colours = [(1, 2, 3), (200, 0, 0), (0, 0, 250)]
    png = mask_png(mask, colours, software=PREDICT_MARKER)
    image = Image.open(io.BytesIO(png))
    assert image.mode == "P" and image.size == (3, 2)
    assert np.array_equal(np.asarray(image), mask)
    flat = image.getpalette()
    assert [tuple(flat[3 * i:3 * i + 3]) for i in range(3)] == colours
    assert tuple(flat[3 * 255:3 * 256]) == IGNORE_COLOUR
    assert image.info["Software"] == PREDICT_MARKER


def test_overlay_mixes_the_class_colour_into_the_image():
    image = np.full((2, 3, 3), 100, dtype=np.uint8)
    mask = np.array([[0, 1, 1], [255, 0, 1]], dtype=np.uint8)
    colours = [(0, 0, 0), (200, 40, 0)]
    mixed = overlay(image, mask, colours, alpha=0.5)
    assert mixed.shape == (2, 3, 3) and mixed.dtype == np.uint8
    assert mixed[0, 0].tolist() == [50, 50, 50]
    assert mixed[0, 1].tolist() == [150, 70, 50]
    assert mixed[1, 0].tolist() == [178, 178, 178]  # ignored: half white
    assert np.array_equal(overlay(image, mask, colours, alpha=0.0), image)
    grey = overlay(np.full((2, 3), 100, dtype=np.uint8), mask, colours, alpha=1.0)
    assert grey[0, 1].tolist() == [200, 40, 0]
    with pytest.raises(ValueError, match="resize the mask"):
        overlay(image, np.zeros((3, 3), dtype=np.uint8), colours)
    picture = Image.open(io.BytesIO(overlay_png(image, mask, colours)))
    assert picture.mode == "RGB" and np.array_equal(np.asarray(picture), mixed)


def test_worst_images_are_the_lowest_iou_first_without_unscored_ones():
    worst = worst_images([0.5, float("nan"), 0.1, 0.5, 0.9], ["a", "b", "c", "d", "e"], size=3)
    assert [(w["path"], w["iou"]) for w in worst] == [("c", 0.1), ("a", 0.5), ("d", 0.5)]


def _entries():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    truth = np.zeros((24, 32), dtype=np.uint8)
    truth[5:15, 8:20] = 1
    truth[0, :] = 255
    predicted = np.zeros((12, 16), dtype=np.uint8)  # smaller than the image: resized
    predicted[2:8, 4:10] = 2
    return [{"path": "val/images/one.png", "iou": 0.25, "image": image, "truth": truth,
             "predicted": predicted},
            {"path": "val/images/gone.png", "iou": 0.5, "image": None, "truth": truth,
             "predicted": predicted},
            {"path": "val/images/grey.png", "iou": 0.75, "image": image[:, :, 0],
             "truth": truth, "predicted": truth}]


def test_the_gallery_opens_and_carries_its_marker(tmp_path):
    from archdsl.errors import UsageError
    from archdsl.output_files import writable_output
    from archdsl.train import gallery

    classes = ["background", "cat", "dog"]
    png = worst_gallery_png(_entries(), "run: the 3 worst", classes)
    picture = Image.open(io.BytesIO(png))
    assert picture.size[0] > 200 and picture.size[1] > 3 * 100
    assert picture.info["Software"] == MARKER
    out = tmp_path / "worst.png"
    assert write_worst_gallery(_entries(), out, True, "run", classes) == out
    assert written_by_archdsl(out) and not gallery.written_by_archdsl(out)
    writable_output(out, "--gallery", False, ours=written_by_archdsl)  # ours: replaced
    other = tmp_path / "mine.png"
    other.write_bytes(mask_png(np.zeros((2, 2), dtype=np.uint8), palette(2)))
    assert not written_by_archdsl(other) and not marked(tmp_path / "missing.png", MARKER)
    with pytest.raises(UsageError, match="--force"):
        writable_output(other, "--gallery", False, ours=written_by_archdsl)
    assert write_worst_gallery([], out, True, "run", classes) is None


def _result(classes, confusion, worst):
    s = scores(confusion)
    return {"count": 4, "loss": 0.5, "pixel_acc": s["pixel_acc"], "miou": s["miou"],
            "mean_acc": s["mean_acc"], "classes": classes,
            "per_class": per_class(confusion, classes), "confusion": confusion,
            "worst": worst, "gallery": "run/worst_segmentations.png"}


def test_the_table_names_every_class_with_its_numbers():
    confusion = torch.tensor([[80, 20, 0], [10, 30, 0], [0, 0, 0]])
    r = _result(["background", "cat", "eel"], confusion,
                [{"path": "a.png", "iou": 0.125, "index": 0}])
    table = seg_eval_table(r)
    assert table.splitlines()[0] == \
        "4 images  loss 0.5000  pixel accuracy 78.6%  mean IoU 61.4%  mean class accuracy 77.5%"
    rows = {line.split()[0]: line.split() for line in table.splitlines()[3:6]}
    assert rows["background"] == ["background", "72.7%", "80.0%", "100"]
    assert rows["cat"] == ["cat", "50.0%", "75.0%", "40"]
    assert rows["eel"] == ["eel", "-", "-", "0"]
    lines = [line.split() for line in table.splitlines()]
    assert ["0", "1", "2"] in lines  # the confusion's columns, numbered as its rows
    assert ["0", "background", "80.0", "20.0", "."] in lines
    assert ["1", "cat", "25.0", "75.0", "."] in lines
    assert ["2", "eel", ".", ".", "."] in lines
    assert " 12.5%  a.png" in table and "wrote run/worst_segmentations.png" in table
    doc = seg_eval_document(r)
    assert json.loads(json.dumps(doc)) == doc
    assert doc["confusion"] == confusion.tolist() and doc["worst"] == [{"path": "a.png",
                                                                         "iou": 0.125}]
    assert doc["per_class"]["cat"] == {"iou": 0.5, "acc": 0.75, "pixels": 40}


def test_many_classes_show_the_most_confused_pairs():
    classes = [f"class{i}" for i in range(15)]
    confusion = torch.eye(15, dtype=torch.long) * 10
    confusion[3, 7] = 5
    confusion[9, 2] = 8
    table = seg_eval_table(_result(classes, confusion, []))
    assert all(any(line.split()[:1] == [c] for line in table.splitlines()) for c in classes)
    pairs = table[table.index("most confused"):].splitlines()
    assert pairs[1:3] == ["class9 -> class2: 8 (44.4%)", "class3 -> class7: 5 (33.3%)"]
    assert "no image has a pixel to score" in table
