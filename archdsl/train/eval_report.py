"""`archdsl eval`'s report of evaluate_run's result: the text table, and the JSON document.
Nothing here imports torch."""

from __future__ import annotations

from pathlib import Path

from .units import top_k_shown


def eval_document(r: dict, gallery: Path | None) -> dict:
    """The JSON document (before non-finite numbers are made null): the summary, per-class
    scores, confusion matrix, the most confidently wrong images and the gallery's path."""
    wrong = [{k: e[k] for k in ("path", "true", "predicted", "confidence")}
             for e in r["confidently_wrong"]]
    top5 = r["top5"] if top_k_shown(len(r["classes"])) else None  # 100% with 5 classes or fewer
    return {"images": r["count"], "loss": r["loss"], "top1": r["acc"], "top5": top5,
            "per_class": r["per_class"], "classes": r["classes"],
            "confusion": r["confusion"].tolist(), "misclassified": r["wrong"],
            "confidently_wrong": wrong, "gallery": str(gallery) if gallery else None}


def eval_table(r: dict, gallery: Path | None) -> str:
    """The summary line, each class's accuracy, precision, recall and F1, the confusion
    matrix (rows: true class), then the most confidently wrong images."""
    top5 = f"  top-5 {r['top5']:.1%}" if top_k_shown(len(r["classes"])) else ""
    lines = [f"{r['count']} images  loss {r['loss']:.4f}  top-1 {r['acc']:.1%}{top5}"]
    width = max(len(c) for c in r["classes"])
    column = max(width, len("class"))
    lines.append(f"\n{'class':{column}}  images  accuracy  precision  recall      F1")
    for name, v in r["per_class"].items():
        a, p, rc, f = (f"{v[k]:.1%}" if v[k] is not None else "-"
                       for k in ("acc", "precision", "recall", "f1"))
        lines.append(f"{name:{column}}  {v['images']:6}  {a:>8}  {p:>9}  {rc:>6}  {f:>6}")
    lines.append("\nconfusion matrix (rows: true class, columns: predicted)")
    cells = max(len(str(int(r["confusion"].max()))), 3)
    short = [c[:cells] for c in r["classes"]]
    lines.append(" " * (width + 1) + " ".join(f"{c:>{cells}}" for c in short))
    for name, row in zip(r["classes"], r["confusion"].tolist()):
        lines.append(f"{name:{width}} " + " ".join(f"{v:>{cells}}" for v in row))
    lines.append("\n" + wrong_lines(r, gallery))
    return "\n".join(lines)


def wrong_lines(r: dict, gallery: Path | None) -> str:
    """One line when no image is misclassified; else a line per confidently wrong image
    (confidence, true -> predicted, path), and the gallery written."""
    entries = r["confidently_wrong"]
    if not entries:
        return "no image is misclassified: no gallery of confidently wrong images"
    lines = [f"most confidently wrong: {len(entries)} of {r['wrong']} misclassified "
             "images (confidence  true -> predicted  path)"]
    lines += [f"{100 * e['confidence']:5.1f}%  {e['true']} -> {e['predicted']}  {e['path']}"
              for e in entries]
    if gallery is not None:
        lines.append(f"wrote {gallery}")
    return "\n".join(lines)
