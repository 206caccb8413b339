"""Segmentation's pictures: a colour per class, a mask as a palette PNG, a mask laid over its
image, and `archdsl eval`'s gallery of the worst segmentations (image | true mask | predicted
mask, a row per image, titled with its file and IoU, and a legend of the classes drawn).

Masks are H×W uint8 arrays of class indices, 255 for the ignored pixels (drawn white); images
are H×W×3 (or H×W grey) uint8 arrays. Nothing here imports torch.

The gallery carries a tEXt marker (`Software: archdsl eval: worst segmentations`), as
gallery.py's does, so that a later eval may replace a gallery it wrote without --force; the
PNGs `archdsl predict` writes may carry PREDICT_MARKER the same way (`software=`).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from .plots import PLAIN, _figure, label, marked, png_bytes
from .seg_masks import IGNORE  # drawn in IGNORE_COLOUR

MARKER = "archdsl eval: worst segmentations"
PREDICT_MARKER = "archdsl predict: segmentation"
DEFAULT_NAME = "worst_segmentations.png"  # in the run folder, archdsl's to replace
SIZE = 8  # images in the gallery unless --gallery-size
TILE = 160  # pixels on an image's longer side in the gallery
IGNORE_COLOUR = (255, 255, 255)
LEGEND_MOST = 24  # classes named under the gallery; more are left out, and it says so


def voc_colour(i: int) -> tuple[int, int, int]:
    """Class i's colour in PASCAL VOC's colour map: the bits of i dealt out in turn to red,
    green and blue, from each channel's highest bit down (0 is black, 1 dark red, 2 green)."""
    r = g = b = 0
    for bit in range(7, -1, -1):
        r |= (i & 1) << bit
        g |= ((i >> 1) & 1) << bit
        b |= ((i >> 2) & 1) << bit
        i >>= 3
    return r, g, b


def palette(n: int, given=None) -> list[tuple[int, int, int]]:
    """A colour for each of `n` classes: the data set's own PNG palette where `given` (a flat
    [r, g, b, r, g, b, ...] list, as PIL's getpalette returns it) has one for the class, else
    VOC's colour map, whose colours stay apart from their neighbours'."""
    given = list(given or [])
    return [tuple(int(v) for v in given[3 * i:3 * i + 3]) if 3 * i + 3 <= len(given)
            else voc_colour(i) for i in range(n)]


def _lookup(colours) -> np.ndarray:
    """A 256×3 table from label to colour: `colours` for the classes, VOC's for any label
    beyond them, IGNORE_COLOUR for 255."""
    table = np.array([voc_colour(i) for i in range(256)], dtype=np.uint8)
    table[:min(len(colours), 256)] = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)[:256]
    table[IGNORE] = IGNORE_COLOUR
    return table


def _png(image, software: str | None) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    if software is not None:
        info.add_text("Software", software)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, optimize=False)
    return buffer.getvalue()


def _mask_array(mask) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask is H×W class indices, got an array of shape {mask.shape}")
    return mask.astype(np.uint8, copy=False)


def mask_png(mask, colours, software: str | None = None) -> bytes:
    """The mask as a palette ("P") PNG: each pixel's value is its class index (255 for the
    ignored), so the file is also a label image `archdsl train` reads, and its palette holds
    `colours` (and IGNORE_COLOUR at 255), so a viewer shows the classes in colour."""
    from PIL import Image

    image = Image.fromarray(_mask_array(mask))  # mode L; a palette makes it P
    image.putpalette(_lookup(colours).flatten().tolist())
    return _png(image, software)


def overlay(image, mask, colours, alpha: float = 0.5) -> np.ndarray:
    """The image (H×W×3 or H×W uint8) with each pixel's class colour laid over it, `alpha`
    of the colour to 1 - alpha of the image: an H×W×3 uint8 array."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"an image is H×W×3 or H×W, got an array of shape {image.shape}")
    mask = _mask_array(mask)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"the mask is {mask.shape[1]}×{mask.shape[0]} pixels but the image "
                         f"{image.shape[1]}×{image.shape[0]}; resize the mask to the image first")
    painted = _lookup(colours)[mask].astype(np.float32)
    mixed = (1 - alpha) * image[:, :, :3].astype(np.float32) + alpha * painted
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def overlay_png(image, mask, colours, alpha: float = 0.5, software: str | None = None) -> bytes:
    """overlay as an RGB PNG."""
    from PIL import Image

    return _png(Image.fromarray(overlay(image, mask, colours, alpha)), software)


def worst_images(ious: list[float], names: list[str], size: int = SIZE) -> list[dict]:
    """The (up to) `size` images with the lowest IoU, the worst first (equal ones in data
    order), as {index, path, iou}; images with nothing scored (a NaN IoU) are left out."""
    scored = [i for i, v in enumerate(ious) if v is not None and not math.isnan(v)]
    scored.sort(key=lambda i: (ious[i], i))
    return [{"index": i, "path": names[i], "iou": float(ious[i])} for i in scored[:size]]


def _fit(array, longer: int, nearest: bool, size=None) -> np.ndarray:
    """The array resized to `size` (width, height), or to `longer` pixels on its longer side:
    a mask with `nearest` (labels are not blended), an image smoothed down, or enlarged with
    square pixels when small (as gallery.thumbnail does)."""
    from PIL import Image

    array = np.asarray(array).astype(np.uint8, copy=False)
    picture = Image.fromarray(array)
    width, height = picture.size
    if size is None:
        scale = longer / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if picture.size == tuple(size):
        return array
    nearest = nearest or size[0] >= 2 * width
    return np.asarray(picture.resize(size, Image.NEAREST if nearest else Image.BILINEAR))


def _short(path: str, most: int = 30) -> str:
    return path if len(path) <= most else "…" + path[-(most - 1):]


def _row(axes, entry: dict, colours) -> set[int]:
    """Draw one entry's image and its two overlays into three axes; the labels it shows."""
    image = entry.get("image")
    if image is None:  # changed or gone since eval read it: say so in the tiles
        for ax in axes:
            ax.imshow(np.full((TILE, TILE, 3), 200, dtype=np.uint8))
            ax.text(TILE / 2, TILE / 2, "cannot be read", ha="center", va="center", fontsize=8)
        shown = set()
    else:
        image = _fit(image, TILE, nearest=False)
        if image.ndim == 2:  # grey: drawn grey, not through a colour map
            image = np.repeat(image[:, :, None], 3, axis=2)
        size = (image.shape[1], image.shape[0])
        truth = _fit(_mask_array(entry["truth"]), TILE, True, size)
        predicted = _fit(_mask_array(entry["predicted"]), TILE, True, size)
        for ax, picture in zip(axes, (image, overlay(image, truth, colours),
                                      overlay(image, predicted, colours))):
            ax.imshow(picture, interpolation="nearest")
        shown = set(np.unique(truth).tolist()) | set(np.unique(predicted).tolist())
    axes[0].set_title(_short(label(entry["path"])), fontsize=8, **PLAIN)
    axes[1].set_title("true mask", fontsize=8, **PLAIN)
    axes[2].set_title(f"predicted (IoU {100 * entry['iou']:.1f}%)", fontsize=8, **PLAIN)
    return shown


def _legend(ax, shown: set[int], classes: list[str], colours) -> None:
    """The colour and name of each class the gallery shows (up to LEGEND_MOST of them)."""
    from matplotlib.patches import Patch

    table = _lookup(colours) / 255
    labels = sorted(shown)
    named = [i for i in labels if i != IGNORE][:LEGEND_MOST]
    handles = [Patch(facecolor=table[i], edgecolor="0.3",
                     label=label(classes[i]) if i < len(classes) else f"label {i}")
               for i in named]
    if IGNORE in shown:
        handles.append(Patch(facecolor=table[IGNORE], edgecolor="0.3", label="ignored (255)"))
    left = len([i for i in labels if i != IGNORE]) - len(named)
    if handles:
        ax.legend(handles=handles, loc="center", ncol=min(6, len(handles)), fontsize=7,
                  frameon=False, title=f"(and {left} more classes)" if left else None)


def worst_gallery_figure(entries: list[dict], title: str, classes: list[str], colours=None):
    """A row per entry: its image | the true mask over it | the predicted mask over it, and
    under them a legend of the classes drawn. An entry: {"path", "iou", "image" (H×W×3 or
    H×W uint8, None when it can no longer be read), "truth", "predicted" (H×W uint8 masks,
    resized with nearest neighbours to the image where their size differs)}."""
    colours = colours if colours is not None else palette(len(classes))
    rows = max(1, len(entries))
    fig = _figure(figsize=(8, 2.7 * rows + 0.9), dpi=100)
    grid = fig.add_gridspec(rows + 1, 3, height_ratios=[1] * rows + [0.3])
    shown: set[int] = set()
    for r, entry in enumerate(entries):
        axes = [fig.add_subplot(grid[r, c]) for c in range(3)]
        for ax in axes:
            ax.set_axis_off()
        shown |= _row(axes, entry, colours)
    key = fig.add_subplot(grid[rows, :])
    key.set_axis_off()
    _legend(key, shown, classes, colours)
    if title:
        fig.suptitle(label(title), fontsize=10, **PLAIN)
    return fig


def worst_gallery_png(entries: list[dict], title: str, classes: list[str],
                      colours=None) -> bytes:
    """worst_gallery_figure as PNG bytes, with archdsl's marker."""
    return png_bytes(worst_gallery_figure(entries, title, classes, colours), software=MARKER)


def written_by_archdsl(path: Path) -> bool:
    """Whether the file at `path` is a gallery of worst segmentations an earlier eval wrote:
    the `ours` of archdsl/output_files.py's rule for --gallery FILE."""
    return marked(path, MARKER)


def write_worst_gallery(entries: list[dict], out: Path | None, must: bool, title: str,
                        classes: list[str], colours=None, warn=None) -> Path | None:
    """Draw the worst segmentations into `out` (atomically) and return it; None when there is
    nothing to draw or no `out`. As gallery.write_gallery: a failure to draw, or to write the
    default gallery (`must` false), is a warning through `warn`; with `must` (--gallery FILE)
    a write failure is raised."""
    from .gallery import write_picture

    if out is None or not entries:
        return None
    return write_picture(lambda: worst_gallery_png(entries, title, classes, colours), out, must,
                         warn)
