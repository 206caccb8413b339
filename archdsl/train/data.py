"""Data for `archdsl train`: the built-in digits, or a folder of images in ImageFolder layout.

A folder is either `train/<class>/…` with `val/<class>/…` (or `test/`), or `<class>/…` alone,
split into train and validation by a seeded, stratified `val_split`. Images in any mode PIL
reads (grayscale, RGB, RGBA, CMYK, palette, 16-bit) are converted to the spec's channel count;
files that are not images or fail to decode are skipped and summarised once.
"""

from __future__ import annotations

import gzip
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DIGITS = Path(__file__).resolve().parent.parent / "datasets" / "digits.csv.gz"
VAL_NAMES = ("val", "valid", "validation", "test")


class DataError(Exception):
    """A data set that cannot be used, with a message for the user."""


@dataclass
class Sample:
    """One image: a file to decode, or (built-in data) the pixels themselves."""

    label: int
    path: Path | None = None
    pixels: np.ndarray | None = None  # uint8, HxW or HxWxC


@dataclass
class DataSet:
    classes: list[str]
    train: list[Sample]
    val: list[Sample]
    source: str
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    split: str = "folders"  # "folders" (train/ and val/) or "val_split"


def load_digits() -> tuple[list[str], list[Sample]]:
    """scikit-learn's 1,797 8x8 digits, shipped inside the package, as 0–255 grayscale."""
    with gzip.open(DIGITS, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.float32)
    pixels = np.clip(rows[:, :64] * (255.0 / 16.0) + 0.5, 0, 255).astype(np.uint8)
    labels = rows[:, 64].astype(int)
    samples = [Sample(int(y), pixels=p.reshape(8, 8)) for p, y in zip(pixels, labels)]
    return [str(d) for d in range(10)], samples


def stratified_split(samples: list[Sample], fraction: float, seed: int):
    """Split each class by `fraction`, seeded, so both parts keep the class balance."""
    rng = random.Random(seed)
    by_class: dict[int, list[Sample]] = {}
    for s in samples:
        by_class.setdefault(s.label, []).append(s)
    train, val = [], []
    for label in sorted(by_class):
        items = by_class[label][:]
        rng.shuffle(items)
        n_val = int(round(len(items) * fraction)) if len(items) > 1 else 0
        if fraction > 0 and len(items) > 1:
            n_val = max(n_val, 1)
        val += items[:n_val]
        train += items[n_val:]
    rng.shuffle(train)
    return train, val


def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def load_folder(root: Path, val_split: float, seed: int, channels: int = 3) -> DataSet:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; give an image folder (class sub-folders) or "
                        "`digits` for the built-in data set")
    subdirs = {p.name.lower(): p for p in _class_folders(root)}
    if "train" in subdirs:
        val_dir = next((subdirs[n] for n in VAL_NAMES if n in subdirs), None)
        if val_dir is None:
            raise DataError(f"{root} has train/ but no val/ (or test/) folder next to it")
        classes = [p.name for p in _class_folders(subdirs["train"])]
        if not classes:
            raise DataError(f"{subdirs['train']} has no class folders")
        index = {c: i for i, c in enumerate(classes)}
        extra = [p.name for p in _class_folders(val_dir) if p.name not in index]
        if extra:
            raise DataError(f"{val_dir} has classes that train/ lacks: {', '.join(extra[:5])}")
        train = [Sample(index[c], path=f) for c in classes for f in _files(subdirs["train"] / c)]
        val = [Sample(index[p.name], path=f) for p in _class_folders(val_dir) for f in _files(p)]
        train, bad_train = check_decodable(train, channels)
        val, bad_val = check_decodable(val, channels)
        return DataSet(classes, train, val, str(root), skipped=bad_train + bad_val)
    classes = [p.name for p in _class_folders(root)]
    if not classes:
        raise DataError(f"{root} has no class folders: put each class's images in a folder named "
                        "after the class (cat/…, dog/…)")
    samples = [Sample(i, path=f) for i, c in enumerate(classes) for f in _files(root / c)]
    samples, skipped = check_decodable(samples, channels)  # before splitting, to keep the balance
    train, val = stratified_split(samples, val_split, seed)
    return DataSet(classes, train, val, str(root), skipped=skipped, split="val_split")


def load_dataset(source: str, val_split: float = 0.1, seed: int = 0, channels: int = 3) -> DataSet:
    """The built-in `digits`, or an image folder whose unreadable files are set aside."""
    if source == "digits" and not Path(source).exists():
        classes, samples = load_digits()
        train, val = stratified_split(samples, val_split, seed)
        return DataSet(classes, train, val, "digits (built in)", split="val_split")
    return load_folder(Path(source), val_split, seed, channels)


def decode(sample: Sample, channels: int):
    """A PIL image in the spec's channel count: L for 1 channel, RGB for 3."""
    from PIL import Image

    if sample.pixels is not None:
        image = Image.fromarray(sample.pixels)
    else:
        with Image.open(sample.path) as opened:
            opened.load()
            image = opened
    image = _to_8bit(image)
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if channels == 1:
        return image.convert("L")
    if channels == 3:
        return image.convert("RGB")
    raise DataError(f"the spec's input has {channels} channels; images give 1 (grayscale) or 3 "
                    "(RGB)")


def _to_8bit(image):
    """16-bit and float images become 8-bit grayscale, scaled by their range."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min()), float(array.max())
        scale = 255.0 / (high - low) if high > low else 0.0
        return Image.fromarray(((array - low) * scale).astype(np.uint8))
    return image


def check_decodable(samples: list[Sample], channels: int) -> tuple[list[Sample], list]:
    """Keep the images that decode; return them and (path, reason) for the others."""
    good, bad = [], []
    for s in samples:
        if s.pixels is not None:
            good.append(s)
            continue
        try:
            decode(s, channels)
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 - any unreadable file is skipped, not fatal
            bad.append((str(s.path), type(exc).__name__))
            continue
        good.append(s)
    return good, bad
