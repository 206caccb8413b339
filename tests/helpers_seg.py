"""Small segmentation data sets written to disk, for the tests of loading, training, eval and
predict: images of the built-in `shapes` (archdsl/train/shapes.py) and their masks as PNGs.
Imported as `helpers_seg` (pytest puts tests/ on sys.path); nothing here imports torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from archdsl.train import shapes


def write_mask(path: Path, mask: np.ndarray, palette: bool = True) -> Path:
    """`mask` (uint8 HxW class indices) as a palette PNG with shapes' colours, or a grey one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.ascontiguousarray(mask), "L")
    if palette:
        image = image.convert("P")
        image.putpalette(list(shapes.PALETTE))
    image.save(path)
    return path


def write_segmentation_folder(root, n: int = 8, size: int = 16, layout: str = "images_masks",
                              palette: bool = True, image_suffix: str = ".png",
                              classes_file: bool = False, seed: int = 0) -> Path:
    """A valid segmentation data set of `n` shapes images of `size`x`size` under `root`:
    images/ and masks/ (layout "images_masks"), or train/ and val/ each with them (layout
    "train_val", a quarter of the images, at least one, in val/). Masks are palette PNGs
    (`palette`) or grey ones; `classes_file` writes classes.txt with shapes' class names.
    Returns `root`."""
    if layout not in ("images_masks", "train_val"):
        raise ValueError(f"layout {layout!r}: write images_masks or train_val")
    root = Path(root)
    images, masks = shapes.generate(n, size, seed)
    n_val = max(1, n // 4) if layout == "train_val" else 0
    for i in range(n):
        part = root if layout == "images_masks" else root / ("val" if i < n_val else "train")
        image_path = part / "images" / f"img{i:03d}{image_suffix}"
        image_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(images[i])).save(image_path, quality=95)
        write_mask(part / "masks" / f"img{i:03d}.png", masks[i], palette)
    if classes_file:
        (root / "classes.txt").write_text("\n".join(shapes.CLASSES) + "\n")
    return root
