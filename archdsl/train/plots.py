"""curves.png (loss and accuracy per epoch) and confusion.png, drawn with matplotlib."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

from ..files import atomic_write


def _figure(**size):
    """A figure drawn to files only: matplotlib's Figure without pyplot, so no window, no
    backend chosen for the whole process (a notebook keeps its own) and nothing to close."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(**size)
    FigureCanvasAgg(figure)  # its renderer lays the figure out (tight_layout) without a draw
    return figure


@contextmanager
def _missing_glyphs_allowed():
    """Class names in scripts the font lacks (emoji, CJK) are drawn as boxes, silently."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font",
                                category=UserWarning)
        yield


def curves_png(path: Path, rows: list[dict], write=atomic_write) -> None:
    """Loss and accuracy per epoch; `write(path, fn)` writes the file (atomically)."""
    epochs = [r["epoch"] for r in rows]
    fig = _figure(figsize=(9, 3.4), dpi=100)
    loss_ax, acc_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [r["train_loss"] for r in rows], marker="o", label="train")
    loss_ax.plot(epochs, [r["val_loss"] for r in rows], marker="o", label="validation")
    loss_ax.set(title="loss", xlabel="epoch")
    acc_ax.plot(epochs, [r["train_acc"] for r in rows], marker="o", label="train")
    acc_ax.plot(epochs, [r["val_acc"] for r in rows], marker="o", label="validation")
    acc_ax.plot(epochs, [r["val_top5"] for r in rows], marker=".", linestyle="--",
                label="validation top-5")
    acc_ax.set(title="accuracy", xlabel="epoch", ylim=(0, 1.02))
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    write(path, lambda tmp: fig.savefig(tmp, format="png"))


def confusion_png(path: Path, confusion, classes: list[str], title: str = "",
                  write=atomic_write) -> None:
    """The confusion matrix, classes as tick labels; `write(path, fn)` writes the file."""
    n = len(classes)
    size = min(max(4, 0.45 * n + 2), 14)
    fig = _figure(figsize=(size, size), dpi=100)
    ax = fig.subplots()
    matrix = confusion.numpy()
    ax.imshow(matrix, cmap="Blues")
    if n <= 30:
        ax.set_xticks(range(n), classes, rotation=90, fontsize=8)
        ax.set_yticks(range(n), classes, fontsize=8)
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title or "confusion matrix")
    with _missing_glyphs_allowed():
        fig.tight_layout()
        write(path, lambda tmp: fig.savefig(tmp, format="png"))
