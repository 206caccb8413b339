"""curves.png (loss and accuracy per epoch) and confusion.png, drawn with matplotlib.

A plot must never cost the run: class names are drawn as plain text (a `$` in a folder name
is not TeX, a name that is not UTF-8 is shown with `?` for its bad bytes), and `drawn` turns
any failure of matplotlib into one warning while the checkpoint is written without the plot.
"""

from __future__ import annotations

import io
import warnings
from contextlib import contextmanager
from pathlib import Path

from ..files import atomic_write

PLAIN = {"parse_math": False, "usetex": False}  # every text drawn as it is written


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


def label(name: str) -> str:
    """A class name as the plot shows it: the bytes of a name that is not UTF-8 (a folder
    name Python read with surrogate escapes) become `?`."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace(
        "\ufffd", "?")


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    with _missing_glyphs_allowed(), warnings.catch_warnings():
        # long class names: matplotlib warns that it cannot fit them and draws them anyway
        warnings.filterwarnings("ignore", message="Tight layout not applied")
        fig.tight_layout()
        fig.savefig(buffer, format="png")
    return buffer.getvalue()


def drawn(draw, *args, warn=None, **kwargs) -> bytes | None:
    """The PNG `draw(*args, **kwargs)` makes, or None after one warning through `warn` when
    matplotlib fails on it (missing, or an input it cannot lay out)."""
    try:
        return draw(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a plot is never worth the run
        if warn is not None:
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            warn(f"warning: could not draw {draw.__name__.removesuffix('_png')}.png "
                 f"({type(exc).__name__}: {first}); training goes on without it")
        return None


def curves_png(rows: list[dict]) -> bytes:
    """Loss and accuracy per epoch, as PNG bytes."""
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
    return png_bytes(fig)


def confusion_png(confusion, classes: list[str], title: str = "") -> bytes:
    """The confusion matrix, classes as tick labels (plain text), as PNG bytes."""
    n = len(classes)
    size = min(max(4, 0.45 * n + 2), 14)
    fig = _figure(figsize=(size, size), dpi=100)
    ax = fig.subplots()
    matrix = confusion.numpy()
    ax.imshow(matrix, cmap="Blues")
    if n <= 30:
        names = [label(c) for c in classes]
        ax.set_xticks(range(n), names, rotation=90, fontsize=8, **PLAIN)
        ax.set_yticks(range(n), names, fontsize=8, **PLAIN)
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(label(title or "confusion matrix"), **PLAIN)
    return png_bytes(fig)


def write_png(path: Path, png: bytes, write=atomic_write) -> None:
    """Write PNG bytes with `write(path, fn)` (atomically by default)."""
    write(path, lambda tmp: Path(tmp).write_bytes(png))
