"""`archdsl eval`'s gallery of the most confidently wrong images: the misclassified images
with the highest predicted probability, drawn as they are (resized, not normalised), each
titled with its true and predicted class and the confidence, its file below in small type.

The PNG carries a tEXt marker (`Software: archdsl eval: confidently wrong`), so that a later
eval may replace a gallery it wrote without --force, and nothing else.
"""

from __future__ import annotations

import math
from pathlib import Path

from .plots import PLAIN, _figure, label, marked, png_bytes

MARKER = "archdsl eval: confidently wrong"
DEFAULT_NAME = "confidently_wrong.png"  # in the run folder, archdsl's to replace
SIZE = 16  # images in the gallery unless --gallery-size
TILE = 128  # pixels on an image's longer side
COLUMNS = 4


def confidently_wrong(labels: list[int], predicted: list[int], confidence: list[float],
                      names: list[str], classes: list[str], size: int = SIZE) -> list[dict]:
    """The (up to) `size` misclassified images with the highest predicted probability, the
    most confident first (equal ones in data order): index, path, true, predicted and
    confidence (the predicted class's softmax probability)."""
    wrong = [i for i, (y, p) in enumerate(zip(labels, predicted)) if y != p]
    wrong.sort(key=lambda i: (-confidence[i], i))
    return [{"index": i, "path": names[i], "true": classes[labels[i]],
             "predicted": classes[predicted[i]], "confidence": confidence[i]}
            for i in wrong[:size]]


def thumbnail(sample):
    """The image as the file holds it (upright, in colour), its longer side TILE pixels:
    a small image is enlarged with square pixels, a large one smoothed down."""
    from PIL import Image

    from .data import decode, quiet_decoding

    with quiet_decoding():
        image = decode(sample, 3)
    width, height = image.size
    scale = TILE / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.NEAREST if scale >= 2 else Image.BILINEAR)


def _short(path: str, most: int = 40) -> str:
    return path if len(path) <= most else "…" + path[-(most - 1):]


def gallery_figure(entries: list[dict], samples: list, title: str = ""):
    """A grid of `entries` (confidently_wrong's), COLUMNS wide, the image of each from
    `samples[entry["index"]]`; an image that can no longer be read is a grey tile saying so."""
    import numpy as np

    columns = min(COLUMNS, len(entries))
    rows = math.ceil(len(entries) / columns)
    fig = _figure(figsize=(2.5 * columns, 2.9 * rows + 0.5), dpi=100)
    axes = list(fig.subplots(rows, columns, squeeze=False).flat)
    for ax in axes:
        ax.set_axis_off()
    for ax, entry in zip(axes, entries):
        try:
            ax.imshow(np.asarray(thumbnail(samples[entry["index"]])), interpolation="nearest")
        except Exception:  # noqa: BLE001 - changed since eval read it: say so in the tile
            ax.imshow(np.full((TILE, TILE, 3), 200, dtype=np.uint8))
            ax.text(TILE / 2, TILE / 2, "cannot be read", ha="center", va="center", fontsize=8)
        ax.set_title(f"true: {label(entry['true'])}\npredicted: {label(entry['predicted'])} "
                     f"({100 * entry['confidence']:.1f}%)", fontsize=9, **PLAIN)
        ax.text(0.5, -0.03, _short(label(entry["path"])), transform=ax.transAxes, ha="center",
                va="top", fontsize=6, color="0.3", **PLAIN)
    if title:
        fig.suptitle(label(title), fontsize=10, **PLAIN)
    return fig


def gallery_png(entries: list[dict], samples: list, title: str = "") -> bytes:
    """gallery_figure as PNG bytes, with archdsl's marker."""
    return png_bytes(gallery_figure(entries, samples, title), software=MARKER)


def written_by_archdsl(path: Path) -> bool:
    """Whether the file at `path` is a gallery an earlier eval wrote (its PNG marker): the
    `ours` of archdsl/output_files.py's rule for --gallery FILE."""
    return marked(path, MARKER)


def write_gallery(result: dict, out: Path | None, must: bool, title: str = "",
                  warn=None) -> Path | None:
    """Draw evaluate_run's confidently wrong images into `out` (atomically) and return it; None
    when there is nothing to draw or no `out`. A failure to draw, or to write the default
    gallery (`must` false: the run folder may be read-only), is a warning through `warn`, as
    the evaluation stands without it; with `must` (--gallery FILE) a write failure is raised."""
    entries = result["confidently_wrong"]
    if out is None or not entries:
        return None
    heading = (f"{title}: " if title else "") + \
        f"the {len(entries)} most confidently wrong of {result['wrong']} misclassified images"
    return write_picture(lambda: gallery_png(entries, result["samples"], heading), out, must,
                         warn)


def write_picture(draw, out: Path, must: bool, warn=None) -> Path | None:
    """Write the PNG bytes `draw()` makes to `out` (atomically) and return it. A failure to
    draw, or to write where `must` is false (the run folder may be read-only), is a warning
    through `warn` (stderr by default) and gives None: the numbers stand without the
    picture; with `must` (a file the user named) a write failure is raised."""
    import sys

    from ..files import WriteError
    from .plots import write_png

    warn = warn or (lambda text: print(text, file=sys.stderr))
    try:
        png = draw()
    except Exception as exc:  # noqa: BLE001 - the numbers stand without the picture
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        warn(f"warning: could not draw {out.name} ({type(exc).__name__}: {first})")
        return None
    try:
        write_png(out, png)
    except WriteError as exc:
        if must:
            raise
        warn(f"warning: {exc}; the gallery was not written (give --gallery FILE elsewhere, or "
             "--no-gallery)")
        return None
    return out

