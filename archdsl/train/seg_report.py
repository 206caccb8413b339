"""`archdsl eval`'s report of a segmentation run: the text table, and the JSON document.
Nothing here imports torch.

Both read one `result` dict, the evaluation of a run on a data set:

    count      images evaluated
    loss       mean per-pixel cross-entropy over the scored pixels (float)
    pixel_acc  share of scored pixels predicted right (float, NaN without any)
    miou       mean IoU over the classes in the truth or the prediction (NaN without any)
    mean_acc   mean accuracy over the classes with true pixels (optional)
    classes    the class names, in label order
    per_class  {name: {"iou": float | None, "acc": float | None, "pixels": int}}, in label
               order (seg_metrics.per_class); None where the class has no pixel to score
    confusion  C×C pixel counts, rows: true class, columns: predicted (a list of lists, or
               anything with .tolist(), such as a LongTensor)
    worst      the worst segmentations, the worst first: [{"path", "iou"}, ...]
               (seg_pictures.worst_images; further keys are left out of the JSON)
    gallery    the gallery's path as written, or None (optional)

Scored pixels are those not labelled 255 (ignored).
"""

from __future__ import annotations

import math

CONFUSION_MOST = 12  # classes up to which the whole confusion is printed
PAIRS = 10  # most confused pairs printed for more classes


def _pct(value) -> str:
    """A share as a percentage with one decimal; `-` for none (None or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.1%}"


def _matrix(confusion) -> list[list[int]]:
    rows = confusion.tolist() if hasattr(confusion, "tolist") else confusion
    return [[int(v) for v in row] for row in rows]


def seg_eval_document(result: dict) -> dict:
    """The JSON document (before non-finite numbers are made null): the summary, per-class
    scores, the confusion matrix in pixels, the worst segmentations and the gallery's path."""
    gallery = result.get("gallery")
    return {"images": result["count"], "loss": result["loss"],
            "pixel_acc": result["pixel_acc"], "miou": result["miou"],
            "mean_acc": result.get("mean_acc"), "per_class": result["per_class"],
            "classes": result["classes"], "confusion": _matrix(result["confusion"]),
            "worst": [{"path": e["path"], "iou": e["iou"]} for e in result["worst"]],
            "gallery": str(gallery) if gallery else None}


def seg_eval_table(result: dict) -> str:
    """The summary line, each class's IoU, accuracy and true pixels, the confusion (as
    percentages of each true class for up to CONFUSION_MOST classes, else the most confused
    pairs), then the worst segmentations and the gallery written."""
    r = result
    mean_acc = f"  mean class accuracy {_pct(r['mean_acc'])}" if "mean_acc" in r else ""
    lines = [f"{r['count']} images  loss {r['loss']:.4f}  pixel accuracy {_pct(r['pixel_acc'])}"
             f"  mean IoU {_pct(r['miou'])}{mean_acc}"]
    column = max([len("class")] + [len(c) for c in r["classes"]])
    lines.append(f"\n{'class':{column}}     IoU  accuracy      pixels")
    for name, v in r["per_class"].items():
        lines.append(f"{name:{column}}  {_pct(v['iou']):>6}  {_pct(v['acc']):>8}  "
                     f"{v['pixels']:>10}")
    matrix = _matrix(r["confusion"])
    lines.append("")
    if len(r["classes"]) <= CONFUSION_MOST:
        lines += confusion_lines(matrix, r["classes"])
    else:
        lines += confused_pairs(matrix, r["classes"])
    lines.append("\n" + worst_lines(r))
    return "\n".join(lines)


def confusion_lines(matrix: list[list[int]], classes: list[str]) -> list[str]:
    """The confusion with each row as the percentage of its true class's pixels; columns are
    numbered as the rows are (names would not fit); `.` where no pixel fell."""
    width = max(len(c) for c in classes) + len(str(len(classes) - 1)) + 1
    lines = ["confusion, % of each true class's pixels (rows: true class, columns: predicted)",
             " " * width + "".join(f"{j:>7}" for j in range(len(classes)))]
    for i, (name, row) in enumerate(zip(classes, matrix)):
        total = sum(row)
        cells = "".join(f"{100 * v / total:>7.1f}" if v else f"{'.':>7}" for v in row)
        lines.append(f"{f'{i} {name}':{width}}{cells}")
    return lines


def confused_pairs(matrix: list[list[int]], classes: list[str], most: int = PAIRS) -> list[str]:
    """The `most` (true, predicted) pairs of different classes with the most pixels, with the
    share of the true class's pixels each takes."""
    pairs = [(v, i, j) for i, row in enumerate(matrix) for j, v in enumerate(row)
             if i != j and v]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    if not pairs:
        return ["no pixel of one class was predicted as another"]
    shown = min(most, len(pairs))
    lines = [f"the {shown} most confused pair{'s' if shown != 1 else ''} (true -> predicted: "
             "pixels, % of the true class's pixels)"]
    for v, i, j in pairs[:most]:
        lines.append(f"{classes[i]} -> {classes[j]}: {v} ({v / sum(matrix[i]):.1%})")
    return lines


def worst_lines(result: dict) -> str:
    """A line per worst segmentation (its IoU and path), then the gallery written; one line
    when no image had a pixel to score."""
    entries = result["worst"]
    if not entries:
        return "no image has a pixel to score: no gallery of worst segmentations"
    n = len(entries)
    lines = [f"worst segmentations: the {n} image{'s' if n != 1 else ''} with the lowest IoU "
             "(IoU  path)"]
    lines += [f"{100 * e['iou']:5.1f}%  {e['path']}" for e in entries]
    if result.get("gallery"):
        lines.append(f"wrote {result['gallery']}")
    return "\n".join(lines)
