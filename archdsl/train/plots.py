"""curves.png (loss, accuracy and learning rate per epoch), confusion.png and
confusion_normalized.png, drawn with matplotlib.

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


def png_bytes(fig, software: str | None = None) -> bytes:
    """The figure as PNG; `software` goes into its `Software` tEXt chunk (a marker that says
    which archdsl command wrote it) instead of matplotlib's name."""
    buffer = io.BytesIO()
    with _missing_glyphs_allowed(), warnings.catch_warnings():
        # long class names: matplotlib warns that it cannot fit them and draws them anyway
        warnings.filterwarnings("ignore", message="Tight layout not applied")
        fig.tight_layout()
        fig.savefig(buffer, format="png",
                    metadata={"Software": software} if software is not None else None)
    return buffer.getvalue()


def marked(path: Path, marker: str) -> bool:
    """Whether the file at `path` is a PNG carrying `marker` in its Software tEXt chunk (a
    picture an earlier archdsl command wrote, png_bytes' `software`)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return head.startswith(b"\x89PNG") and b"tEXtSoftware\x00" + marker.encode() in head


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


def curves_png(rows: list[dict], title: str = "", top5: bool = True) -> bytes:
    """curves_figure as PNG bytes."""
    return png_bytes(curves_figure(rows, title, top5))


def curves_figure(rows: list[dict], title: str = "", top5: bool = True):
    """Loss, accuracy (in %, as the console prints it) and learning rate per epoch, on
    whole-number epoch ticks; `title` names the run. `top5`: draw the validation top-5
    accuracy too (not for 5 classes or fewer, where it is 100%). Rows of a segmentation run
    (with `val_miou`) draw the pixel accuracy and the mean IoU instead."""
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in rows]
    fig = _figure(figsize=(12, 3.6), dpi=100)
    loss_ax, acc_ax, lr_ax = fig.subplots(1, 3)
    loss_ax.plot(epochs, [r["train_loss"] for r in rows], marker="o", label="train")
    loss_ax.plot(epochs, [r["val_loss"] for r in rows], marker="o", label="validation")
    loss_ax.set(title="loss", xlabel="epoch")
    acc_ax.plot(epochs, [100 * r["train_acc"] for r in rows], marker="o", label="train")
    acc_ax.plot(epochs, [100 * r["val_acc"] for r in rows], marker="o", label="validation")
    if top5 and "val_top5" in rows[0]:
        acc_ax.plot(epochs, [100 * r["val_top5"] for r in rows], marker=".", linestyle="--",
                    label="validation top-5")
    if "val_miou" in rows[0]:  # segmentation: accuracy of pixels, and the mean IoU
        acc_ax.plot(epochs, [100 * r["val_miou"] for r in rows], marker="s",
                    label="validation mean IoU")
    acc_ax.set(title="accuracy (%)" if "val_miou" not in rows[0] else "pixel accuracy, IoU (%)",
               xlabel="epoch", ylim=(0, 102))
    lr_ax.plot(epochs, [r["lr"] for r in rows], marker="o", color="tab:green")
    lr_ax.set(title="learning rate (end of each epoch)", xlabel="epoch")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    for ax in (loss_ax, acc_ax, lr_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        if ax is not lr_ax:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(label(title), **PLAIN)
    return fig


def confusion_png(confusion, classes: list[str], title: str = "",
                  normalized: bool = False) -> bytes:
    """confusion_figure as PNG bytes."""
    return png_bytes(confusion_figure(confusion, classes, title, normalized))


def confusion_figure(confusion, classes: list[str], title: str = "", normalized: bool = False):
    """The confusion matrix (rows: true class), classes as tick labels (plain text, level
    where they fit), with a colour bar. `normalized`: each row as the share of its true
    class, in %."""
    n = len(classes)
    size = min(max(4, 0.45 * n + 2), 14)
    fig = _figure(figsize=(size + 1, size), dpi=100)
    ax = fig.subplots()
    counts = confusion.numpy()
    if normalized:
        totals = counts.sum(axis=1, keepdims=True)
        matrix = 100.0 * counts / (totals + (totals == 0))
        image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=100)
    else:
        matrix = counts
        image = ax.imshow(matrix, cmap="Blues", vmin=0)
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("% of the true class" if normalized else "images")
    if n <= 30:
        _cells(ax, matrix, counts, classes, size, normalized)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    name = title or "confusion matrix"
    ax.set_title(label(name + (", normalised by true class" if normalized else "")), **PLAIN)
    return fig


def confusion_normalized_png(confusion, classes: list[str], title: str = "") -> bytes:
    """confusion_png with each row as the share (%) of its true class."""
    return confusion_png(confusion, classes, title, normalized=True)


def fits_unrotated(names: list[str], width_inches: float, fontsize: float = 8) -> bool:
    """Whether every name, written level, fits under its column of a matrix `width_inches`
    wide (a character is about 0.6 of the font size wide)."""
    widest = max((len(n) for n in names), default=0) * 0.6 * fontsize / 72
    return widest <= 0.9 * width_inches / max(len(names), 1)


def _cells(ax, matrix, counts, classes, size, normalized) -> None:
    """Tick labels (level where they fit) and each non-empty cell's number."""
    n = len(classes)
    names = [label(c) for c in classes]
    level = fits_unrotated(names, 0.75 * size)
    ax.set_xticks(range(n), names, rotation=0 if level else 90, fontsize=8, **PLAIN)
    ax.set_yticks(range(n), names, fontsize=8, **PLAIN)
    top = matrix.max() if matrix.size else 0
    for i in range(n):
        for j in range(n):
            if counts[i, j]:
                text = f"{matrix[i, j]:.0f}" if normalized else str(matrix[i, j])
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] > top / 2 else "black")


def write_png(path: Path, png: bytes, write=atomic_write) -> None:
    """Write PNG bytes with `write(path, fn)` (atomically by default)."""
    write(path, lambda tmp: Path(tmp).write_bytes(png))
