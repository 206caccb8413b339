"""Data for segmentation (`archdsl train` on images with masks): the built-in `shapes`, a
folder of images and masks, or a table of them; each image paired with a mask PNG that gives
every pixel's class (seg_masks.py says how its pixels are read; 255 = ignore).

- `images/` and `masks/` side by side: a mask has its image's name (relative to the folder,
  sub-folders kept) with .png (images/a/cat1.jpg -> masks/a/cat1.png), and a seeded
  --val-split holds images out for validation;
- `train/` and `val/` (or `test/`, `valid/`, `validation/`), each with images/ and masks/;
- a CSV (or TSV) table with a header naming its columns `image` and `mask` (any case, in any
  order), and optionally `split` (train, or val / valid / validation / test); paths relative
  to the table's folder.

The classes come from classes.txt beside the data (seg_masks.py), else from the masks: as many
as the largest label found + 1, named class0, class1, …. Every image is decoded at load, as
for classification (one that cannot be read is set aside with its reason), and so is every
mask: a mask that is missing, is not a PNG, differs in size from its image, or holds a label
beyond classes.txt's is an error that names the file, since training on it would learn wrong
labels. A mask without an image is left out with a warning: it changes nothing learnt.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import shapes
from .data import VAL_NAMES, DataError, DataSet, Sample, _class_folders, _files, decode, \
    printable, quiet_decoding, stratified_split, unreadable
from .seg_masks import IGNORE, ClassList, check_labels, decode_mask, open_mask, read_classes

__all__ = ["is_segmentation", "load_segmentation", "decode_mask", "SHAPES", "CLASSES_FILE"]

SHAPES = "shapes"
MAX_SHAPES = 50_000
CLASSES_FILE = "classes.txt"
IMAGE_COLUMN = ("image", "imagepath", "imagefile", "path", "file", "filename")
MASK_COLUMN = ("mask", "maskpath", "maskfile")
SPLIT_COLUMN = ("split",)
TABLE_SUFFIXES = (".csv", ".tsv")  # as table_data.py reads them (which imports this module)


@dataclass
class Pair:
    """An image, its mask (None when it has none), its part (`train`, `val`, or `` when
    --val-split decides) and where it was listed (a table's line, for messages)."""

    image: Path
    mask: Path | None
    part: str = ""
    where: str = ""


def is_segmentation(source: str) -> bool:
    """Whether DATASET is segmentation data: `shapes[:N]` (when no such file exists), a folder
    holding images/ and masks/ (or train/ with them), or a table with a `mask` column."""
    path = Path(source)
    if source.split(":")[0] == SHAPES and not path.exists():
        return True
    if path.is_dir():
        try:
            return _layout(path) is not None
        except (DataError, OSError):
            return False
    if path.suffix.lower() in TABLE_SUFFIXES and path.is_file():
        return any(name in MASK_COLUMN for name in _header_names(path))
    return False


def load_segmentation(source: str, val_split: float = 0.1, seed: int = 0,
                      channels: int = 3) -> DataSet:
    """The DataSet (task "segment") of DATASET; each sample's label is 0, its mask the file
    (or, for `shapes`, the values) giving its pixels' classes (module docstring)."""
    if channels not in (1, 3):
        raise DataError(f"the spec's input has {channels} channels; images give 1 (grayscale) "
                        "or 3 (RGB)")
    path = Path(source)
    if source.split(":")[0] == SHAPES and not path.exists():
        return load_shapes(source, val_split, seed)
    if path.is_dir():
        root, split = path, "folders" if _layout(path) == "train_val" else "val_split"
        pairs, warnings = _folder_pairs(path)
    elif path.suffix.lower() in TABLE_SUFFIXES and path.is_file():
        root = path.parent
        pairs, warnings = _table_pairs(path)
        split = "table" if pairs[0].part else "val_split"
    else:
        raise DataError(f"{printable(source)} is neither a folder nor a CSV/TSV table; give a "
                        "folder with images/ and masks/, a table with image and mask columns, "
                        f"or `{SHAPES}` for the built-in data set")
    samples, skipped = _checked(pairs, channels, printable(source))
    listed = root / CLASSES_FILE
    class_list = read_classes(listed) if listed.is_file() else None
    palette = (class_list.palette() if class_list else None) or _mask_palette(samples)
    classes, more = _classes(samples, class_list, palette, printable(source))
    if split == "val_split":
        train, val = stratified_split([s for s, _ in samples], val_split, seed)
    else:
        train = [s for s, part in samples if part == "train"]
        val = [s for s, part in samples if part == "val"]
    return DataSet(classes, train, val, printable(source), skipped=skipped, split=split,
                   root=root, warnings=warnings + more, task="segment", palette=palette)


def load_shapes(source: str, val_split: float, seed: int) -> DataSet:
    """The built-in `shapes` (shapes.py), or `shapes:N` for N of its images; the split is
    seeded, the images are not."""
    match = re.fullmatch(SHAPES + r"(?::(\d+))?", source)
    n = int(match[1]) if match and match[1] else shapes.COUNT if match else 0
    if not 2 <= n <= MAX_SHAPES:
        raise DataError(f"{source!r}: write `{SHAPES}` ({shapes.COUNT} images) or "
                        f"`{SHAPES}:N` for N images, from 2 to {MAX_SHAPES:,}")
    images, masks = shapes.generate(n)
    samples = [Sample(0, pixels=image, mask_pixels=mask) for image, mask in zip(images, masks)]
    train, val = stratified_split(samples, val_split, seed)
    return DataSet(list(shapes.CLASSES), train, val, shapes.describe(n), split="val_split",
                   task="segment", palette=list(shapes.PALETTE))


# ----------------------------------------------------------------------------- folders


def _subfolders(folder: Path) -> dict[str, Path]:
    """The folders in `folder` by their name in lower case."""
    return {p.name.lower(): p for p in _class_folders(folder)}


def _layout(root: Path) -> str | None:
    """`train_val` (train/ holds images/ and masks/), `images_masks`, or None."""
    found = _subfolders(root)
    if "train" in found and {"images", "masks"} <= set(_subfolders(found["train"])):
        return "train_val"
    return "images_masks" if {"images", "masks"} <= set(found) else None


def _folder_pairs(root: Path) -> tuple[list[Pair], list[str]]:
    """The (image, mask) pairs of a folder in either layout, and warnings."""
    layout = _layout(root)
    if layout is None:
        raise DataError(f"{printable(root)} has no images/ and masks/ folders (nor train/ and "
                        "val/ with them); put the images in images/ and each one's mask, a PNG "
                        "of the same name, in masks/")
    if layout == "images_masks":
        return _pairs_of(root, "")
    found = _subfolders(root)
    val_dir = next((found[n] for n in VAL_NAMES if n in found), None)
    if val_dir is None:
        raise DataError(f"{printable(root)} has train/ with images/ and masks/ but no val/ (or "
                        "test/) beside it; add val/ with its own images/ and masks/, or move "
                        "train/'s images/ and masks/ up into the folder to have --val-split "
                        "hold some images out")
    if not {"images", "masks"} <= set(_subfolders(val_dir)):
        raise DataError(f"{printable(val_dir)} has no images/ and masks/ folders; put the "
                        "validation images in images/ and their masks in masks/, as in train/")
    train, warned = _pairs_of(found["train"], "train")
    val, more = _pairs_of(val_dir, "val")
    return train + val, warned + more


def _pairs_of(folder: Path, part: str) -> tuple[list[Pair], list[str]]:
    """Each file of folder/images with the mask of its name in folder/masks (or None), and a
    warning counting the masks that have no image."""
    found = _subfolders(folder)
    images_dir, masks_dir = found["images"], found["masks"]
    images, masks = _by_name(images_dir), _by_name(masks_dir)
    if not images:
        raise DataError(f"{printable(images_dir)} is empty; put the images in it, and each "
                        f"one's mask (a PNG of the same name) in {printable(masks_dir)}")
    if not masks:
        raise DataError(f"{printable(masks_dir)} is empty; put each image's mask in it, a PNG "
                        f"of the image's name ({images_dir.name}/cat1.jpg -> "
                        f"{masks_dir.name}/cat1.png)")
    pairs = [Pair(image, masks.get(key), part) for key, image in sorted(images.items())]
    orphans = sorted(set(masks) - set(images))
    if not orphans:
        return pairs, []
    return pairs, [f"{len(orphans):,} mask(s) in {printable(masks_dir)} have no image of their "
                   f"name in {printable(images_dir)} (the first: "
                   f"{printable(masks[orphans[0]].name)}); they are left out"]


def _by_name(folder: Path) -> dict[str, Path]:
    """The files under `folder` by their path relative to it without the extension; two
    files of one name (cat1.jpg and cat1.png) are an error, as either could be meant."""
    found: dict[str, Path] = {}
    for file in _files(folder):
        key = file.relative_to(folder).with_suffix("").as_posix()
        if key in found:
            raise DataError(f"{printable(found[key])} and {printable(file)} have one name, so "
                            "it is not clear which one the mask of that name belongs to; "
                            "rename or remove one")
        found[key] = file
    return found


# ----------------------------------------------------------------------------- tables


def _header_names(path: Path) -> list[str]:
    """The first row's cells, normalised as column names ([] when it cannot be read)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            for row in csv.reader(f, delimiter=_delimiter(path)):
                if any(c.strip() for c in row):
                    return [_column(c.strip()) for c in row]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    return []


def _delimiter(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


def _column(cell: str) -> str:
    """A column's name as compared: lower case, without spaces, `_` and `-`."""
    return re.sub(r"[\s_-]", "", cell.lower())


def _cells(path: Path) -> list[tuple[int, list[str]]]:
    """(first line, cells trimmed) of each non-empty row; a quoted cell may span lines."""
    rows, end = [], 0
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=_delimiter(path))
            for row in reader:
                start, end = end + 1, reader.line_num
                if any(c.strip() for c in row):
                    rows.append((start, [c.strip() for c in row]))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {printable(path)}: {exc}") from None
    return rows


def _split_of(path: Path, line: int, cell: str) -> str:
    """`train` or `val` (a split column's cell, in any case)."""
    word = cell.lower()
    if word == "train" or word in VAL_NAMES:
        return "val" if word in VAL_NAMES else word
    raise DataError(f"{printable(path)}:{line}: split {cell!r} is neither train nor val (valid, "
                    "validation, test); write one of them")


def _columns(path: Path, line: int, names: list[str]) -> dict[str, int]:
    """Which cell holds the image, the mask and (if any) the split."""
    where = {}
    for i, name in enumerate(names):
        role = next((r for r, aliases in (("image", IMAGE_COLUMN), ("mask", MASK_COLUMN),
                                          ("split", SPLIT_COLUMN)) if name in aliases), None)
        if role is None or role in where:
            what = "a second" if role else "an unknown"
            raise DataError(f"{printable(path)}:{line}: {what} column {name!r}; a table of "
                            "images and masks has the columns `image,mask` or "
                            "`image,mask,split`")
        where[role] = i
    for role in ("image", "mask"):
        if role not in where:
            raise DataError(f"{printable(path)}:{line}: the header names no {role} column; "
                            f"name the column of {role} paths `{role}` (`image,mask` or "
                            "`image,mask,split`)")
    return where


def _table_pairs(path: Path) -> tuple[list[Pair], list[str]]:
    """The (image, mask) pairs a table lists, each image once; a repeated row is counted in a
    warning, an image given two masks or two splits is an error."""
    rows = _cells(path)
    if not rows:
        raise DataError(f"{printable(path)} is empty; write the header `image,mask`, then one "
                        "row per image")
    (line, header), rows = rows[0], rows[1:]
    where = _columns(path, line, [_column(c) for c in header])
    if not rows:
        raise DataError(f"{printable(path)} lists no images; write one `image,mask` row per "
                        "image")
    pairs, first, repeats = [], {}, 0
    for line, cells in rows:
        if len(cells) != len(header) or not cells[where["image"]] or not cells[where["mask"]]:
            raise DataError(f"{printable(path)}:{line}: expected {len(header)} cells "
                            f"({','.join(header)}) with an image and a mask path, got "
                            f"{printable(','.join(cells))!r}")
        part = _split_of(path, line, cells[where["split"]]) if "split" in where else ""
        pair = Pair(path.parent / cells[where["image"]], path.parent / cells[where["mask"]],
                    part, f"{printable(path)}:{line}: ")
        key = os.path.normcase(os.path.realpath(pair.image))
        seen = first.setdefault(key, pair)
        if seen is pair:
            pairs.append(pair)
        elif os.path.realpath(seen.mask) != os.path.realpath(pair.mask) or seen.part != part:
            raise DataError(f"{pair.where}{printable(cells[where['image']])} is listed on "
                            f"{seen.where.rstrip(': ')} too, with another mask or split; "
                            "list each image once")
        else:
            repeats += 1
    if len({p.part == "" for p in pairs}) > 1:
        raise DataError(f"{printable(path)} gives a split for some rows and not others; give "
                        "one for every row, or for none (then --val-split holds images out)")
    return pairs, ([f"{repeats:,} row(s) of {printable(path)} repeat an image listed before "
                    "with the same mask; each image is used once"] if repeats else [])


# ----------------------------------------------------------------------------- checks


def _checked(pairs: list[Pair], channels: int, source: str):
    """(sample, part) of each pair whose image decodes, and (path, reason) for the others; an
    image without a mask, and a mask that is no PNG or differs in size, are errors."""
    samples, skipped, unmasked = [], [], []
    for pair in pairs:
        if not pair.image.is_file():
            skipped.append((str(pair.image), "no such file"))
            continue
        size, reason = _image_size(pair.image, channels)
        if size is None:
            skipped.append((str(pair.image), reason))
        elif pair.mask is None:
            unmasked.append(pair.image)
        else:
            _check_mask(pair, size)
            samples.append((Sample(0, path=pair.image, mask=pair.mask), pair.part))
    if unmasked:
        raise DataError(f"{len(unmasked):,} image(s) have no mask (the first: "
                        f"{printable(unmasked[0])}, whose mask would be "
                        f"{printable(_expected_mask(unmasked[0]))}); add each one's mask, a PNG "
                        "of the same name, or move the image out of the data set")
    if not samples:
        first = f" (the first, {printable(skipped[0][0])}: {skipped[0][1]})" if skipped else ""
        raise DataError(f"{source} has no usable image: none of its {len(skipped)} image(s) "
                        f"can be read{first}; give PNG or JPEG images")
    return samples, skipped


def _image_size(path: Path, channels: int):
    """The image's (width, height) as it is seen (upright), or None and why it cannot be
    read."""
    try:
        with quiet_decoding():
            return decode(Sample(0, path=path), channels).size, ""
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable file is skipped, not fatal
        return None, unreadable(exc, path)


def _check_mask(pair: Pair, size: tuple[int, int]) -> None:
    if not pair.mask.is_file():
        raise DataError(f"{pair.where}the mask {printable(pair.mask)} of "
                        f"{printable(pair.image)} does not exist; add it, or fix the path")
    with open_mask(pair.mask, load=False) as mask:
        stored = mask.size
    if stored != size:
        turned = (" (the image's EXIF orientation turns it; the mask must be drawn on the "
                  "image as it is shown)" if stored == size[::-1] else "")
        raise DataError(f"{pair.where}the mask {printable(pair.mask)} is {stored[0]}x{stored[1]} "
                        f"pixels but its image {printable(pair.image)} is {size[0]}x{size[1]}"
                        f"{turned}; a mask labels each pixel of its image, so save it at the "
                        "image's size")


def _expected_mask(image: Path) -> Path:
    """Where a folder's image's mask would be: masks/ beside images/, the name with .png."""
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i].lower() == "images":
            parts[i] = "masks"
            break
    return Path(*parts).with_suffix(".png")


def _mask_palette(samples) -> list[int] | None:
    """The palette of the first palette mask, or None."""
    for sample, _ in samples:
        with open_mask(sample.mask, load=False) as image:
            if image.mode in ("P", "PA"):
                return list(image.getpalette() or []) or None
    return None


def _classes(samples, class_list: ClassList | None, palette, source: str):
    """The class names (classes.txt's, else class0 … up to the largest label) and warnings;
    each mask is decoded, and checked against classes.txt."""
    limit = len(class_list.names) if class_list else None
    if class_list and limit < 2:
        raise DataError(f"{printable(class_list.path)} names one class; segmentation needs at "
                        "least two (a background and a thing): name the others")
    counts, train_counts = np.zeros(256, np.int64), np.zeros(256, np.int64)
    for sample, part in samples:
        values = decode_mask(sample, palette=palette)
        if class_list:
            check_labels(values, limit, printable(sample.mask),
                         f"add the class to {printable(class_list.path)}, or paint those pixels "
                         "255 to leave them out")
        found = np.bincount(values.ravel(), minlength=256)
        counts += found
        if part != "val":
            train_counts += found
    labels = np.flatnonzero(counts[:IGNORE])
    if class_list:
        names = class_list.names
    elif not labels.size or labels.max() == 0:
        raise _one_class(source, counts)
    else:
        names = [f"class{k}" for k in range(labels.max() + 1)]
    unseen = [n for k, n in enumerate(names) if not train_counts[k]]
    shown = ", ".join(printable(n) for n in unseen[:5]) + (", …" if len(unseen) > 5 else "")
    warnings = [f"{len(unseen)} class(es) have no pixel in the training masks of {source} "
                f"({shown}); the network never learns them"] if unseen else []
    return names, warnings


def _one_class(source: str, counts) -> DataError:
    if counts[IGNORE]:
        return DataError(f"the masks of {source} hold no label but 0 and 255, and 255 marks "
                         "pixels to ignore, so they give a single class. Black-and-white "
                         "masks? Save "
                         "them with 0 for the background and 1 for the objects (or write a "
                         f"{CLASSES_FILE} and keep 255 for pixels to ignore)")
    return DataError(f"every pixel of the masks of {source} is labelled 0, a single class; "
                     "segmentation needs at least two: label the objects' pixels 1, 2, …")
