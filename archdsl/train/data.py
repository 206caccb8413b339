"""Data for `archdsl train`: the built-in digits, or a folder of images in ImageFolder layout.

A folder is either `train/<class>/…` with `val/<class>/…` (or `test/`), or `<class>/…` alone,
split into train and validation by a seeded, stratified `val_split`. Images in any mode PIL
reads (grayscale, RGB, RGBA, CMYK, palette, 16-bit, float) are converted to the spec's channel
count, turned upright by their EXIF orientation; files that are not images or fail to decode
are skipped and summarised once, and class folders left with no usable image are left out.
A folder that cannot be read, and two class folders that are one folder (a link), are errors:
either would train on other data than the folder shows.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import random
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ArchdslError

DIGITS = Path(__file__).resolve().parent.parent / "datasets" / "digits.csv.gz"
VAL_NAMES = ("val", "valid", "validation", "test")
MAX_DISTINCT_SYNTHETIC = 1024
CONVERTIBLE = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "RGBa", "La", "CMYK", "YCbCr")


class DataError(ArchdslError):
    """A data set that cannot be used, with a message for the user."""


@dataclass
class Sample:
    """One image: a file to decode, or (built-in data) the pixels themselves."""

    label: int
    path: Path | None = None
    pixels: np.ndarray | None = None  # uint8, HxW or HxWxC
    # segmentation: the image's label image, a PNG file or (built-in data) its values, HxW
    # uint8 class indices with 255 where no class is given (train/seg_data.py)
    mask: Path | None = None
    mask_pixels: np.ndarray | None = None


@dataclass
class DataSet:
    classes: list[str]
    train: list[Sample]
    val: list[Sample]
    source: str
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    split: str = "folders"  # "folders" (train/ and val/) or "val_split"
    empty_classes: list[str] = field(default_factory=list)  # folders left out: no usable image
    root: Path | None = None  # the image folder (None for built-in data)
    warnings: list[str] = field(default_factory=list)  # for the user, a line each (a table's)
    task: str = "classify"  # or "segment": each sample has a mask (train/seg_data.py)
    palette: list[int] | None = None  # segmentation: the masks' PNG palette (flat RGB), if any

    def counts(self) -> dict[str, list[int]]:
        """The images of each class (in `classes` order), training and validation."""
        found = {}
        for part in ("train", "val"):
            n = [0] * len(self.classes)
            for s in getattr(self, part):
                n[s.label] += 1
            found[part] = n
        return found


def class_counts_line(data: DataSet, show: int = 12) -> str:
    """The images per class in one line: every class when there are at most `show`, else the
    three with fewest and most training images; with a hint when the largest class has ten
    times the images of the smallest."""
    counts = data.counts()
    pairs = [(c, t, v) for c, t, v in zip(data.classes, counts["train"], counts["val"])]

    def shown(group):
        return ", ".join(f"{printable(c)} {t:,}/{v:,}" for c, t, v in group)

    if len(pairs) <= show:
        text = "images per class (train/val): " + shown(pairs)
    else:
        by_size = sorted(pairs, key=lambda p: (p[1], p[0]))
        text = (f"images per class (train/val): fewest {shown(by_size[:3])}; most "
                f"{shown(by_size[:-4:-1])} (config.json lists all {len(pairs)})")
    small, large = min(counts["train"]), max(counts["train"])
    if small and large >= 10 * small:
        text += (f"; the largest class has {large / small:.0f}x the images of the smallest: "
                 "--class-weights auto or --sampler balanced evens them out")
    return text


# Characters that would end a line or drive a terminal: C0 and C1 controls, DEL, and
# Unicode's line and paragraph separators.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
CONTROL_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(path) -> str:
    """A file or folder name as one line of text that any UTF-8 stream can write: bytes that
    are not UTF-8 (kept by Python as lone surrogates) are shown as `\\xff` escapes, and
    control characters as `\\n`, `\\t`, `\\x1b` (so a name is never two lines of output)."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return CONTROL.sub(_escaped, text)


def _escaped(match) -> str:
    char = match.group()
    if char in CONTROL_ESCAPES:
        return CONTROL_ESCAPES[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


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
        n_val = min(n_val, len(items) - 1)  # every class keeps a training image
        val += items[:n_val]
        train += items[n_val:]
    rng.shuffle(train)
    return train, val


def _listing(folder: Path) -> list[os.DirEntry]:
    """A folder's entries; one that cannot be read is a DataError, as leaving its images out
    without a word would train on part of the data."""
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError as exc:
        why = "permission denied" if isinstance(exc, PermissionError) else (
            exc.strerror or type(exc).__name__)
        raise DataError(f"{printable(folder)} cannot be read ({why}), so its images would be "
                        "left out; make it readable (chmod -R u+rX), or move it out of the data "
                        "set") from None


def _class_folders(root: Path) -> list[Path]:
    """The class folders of `root`, links to folders included, by name (hidden ones left out)."""
    return sorted(Path(e.path) for e in _listing(root)
                  if not e.name.startswith(".") and e.is_dir())


def _files(folder: Path) -> list[Path]:
    """The files under a class folder, in sub-folders too (hidden ones, and links to folders,
    left out); a sub-folder that cannot be read is a DataError."""
    files = []
    for entry in _listing(folder):
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            files += _files(Path(entry.path))
        elif entry.is_file():
            files.append(Path(entry.path))
    return sorted(files)


def _one_folder_each(folders: list[Path]) -> None:
    """Refuse class folders that are one folder under two names (a link to another): its
    images would be trained on under two labels, or validated on after training on them."""
    seen: dict[str, Path] = {}
    for folder in folders:
        real = os.path.realpath(folder)
        if real in seen:
            first = seen[real]
            raise DataError(f"{printable(first)} and {printable(folder)} are the same folder "
                            f"({printable(real)}), so its images would be used twice (under two "
                            "labels, or for training and for validation); remove the link, or "
                            "copy the images that belong to each")
        seen[real] = folder


def class_name(folder: Path) -> str:
    """A class's name: its folder's name, printable."""
    return printable(folder.name)


def load_folder(root: Path, val_split: float, seed: int, channels: int = 3) -> DataSet:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; give an image folder (class sub-folders) or "
                        "`digits` for the built-in data set")
    subdirs = {p.name.lower(): p for p in _class_folders(root)}
    if "train" in subdirs:
        val_dir = next((subdirs[n] for n in VAL_NAMES if n in subdirs), None)
        if val_dir is None:
            others = sorted(n for n in subdirs if n != "train")
            raise DataError(
                f"{root} has a train/ folder, which archdsl reads as the training half of a "
                f"train/ + val/ layout, but no val/ (or test/) beside it"
                + (f"; if train/ is one of the classes ({', '.join(others[:3])}"
                   f"{', …' if len(others) > 3 else ''} are the others), rename it"
                   if others else "; add val/ with the same class folders"))
        train_dir = subdirs["train"]
        if not _class_folders(train_dir):
            raise DataError(f"{train_dir} has no class folders")
        _one_folder_each(_class_folders(train_dir) + _class_folders(val_dir))
        train, skipped = _readable_images(train_dir, channels)
        val, bad_val = _readable_images(val_dir, channels)
        classes = sorted(train)
        extra = [c for c in val if c not in train]
        if extra:
            raise DataError(f"{val_dir} has classes that {train_dir.name}/ lacks or holds no "
                            "usable "
                            f"image of: {', '.join(extra[:5])}; add their training images or "
                            "remove those folders")
        empty = sorted({class_name(p) for p in _class_folders(train_dir)} - set(classes))
        _require_images(train_dir, classes, skipped)
        index = {c: i for i, c in enumerate(classes)}
        return DataSet(classes, _labelled(train, index), _labelled(val, index), printable(root),
                       skipped=skipped + bad_val, empty_classes=empty, root=root)
    if not subdirs:
        raise DataError(f"{root} has no class folders: put each class's images in a folder named "
                        "after the class (cat/…, dog/…)")
    _one_folder_each(list(subdirs.values()))
    images, skipped = _readable_images(root, channels)  # before splitting, to keep the balance
    classes = sorted(images)
    _require_images(root, classes, skipped)
    empty = sorted({class_name(p) for p in _class_folders(root)} - set(classes))
    samples = _labelled(images, {c: i for i, c in enumerate(classes)})
    train, val = stratified_split(samples, val_split, seed)
    return DataSet(classes, train, val, printable(root), skipped=skipped, split="val_split",
                   empty_classes=empty, root=root)


def _readable_images(root: Path, channels: int) -> tuple[dict[str, list[Path]], list]:
    """The files of each class folder of `root` that decode, by class (classes with none are
    left out), and (path, reason) for the files that do not."""
    images, skipped = {}, []
    for folder in _class_folders(root):
        samples = [Sample(0, path=f) for f in _files(folder)]
        good, bad = check_decodable(samples, channels)
        skipped += bad
        if good:
            name = class_name(folder)
            if name in images:  # `\xff` spelled out, beside a folder named by the byte
                raise DataError(f"{printable(root)} has two class folders named {name!r}; "
                                "rename one")
            images[name] = [s.path for s in good]
    return images, skipped


def _labelled(images: dict[str, list[Path]], index: dict[str, int]) -> list[Sample]:
    return [Sample(index[c], path=f) for c in sorted(images) for f in images[c]]


def _require_images(root: Path, classes: list[str], skipped: list) -> None:
    if classes:
        return
    if skipped:
        path, reason = skipped[0]
        raise DataError(f"{root} has no usable images: none of its {len(skipped)} file(s) can be "
                        f"read as an image (the first, {path}: {reason}); put PNG or JPEG "
                        "images in its class folders")
    raise DataError(f"{root}'s class folders are empty; put each class's images in a folder "
                    "named after the class (cat/…, dog/…)")


def load_dataset(source: str, val_split: float = 0.1, seed: int = 0, channels: int = 3) -> DataSet:
    """The built-in `digits`, random images (`synthetic`, `synthetic:N` or `synthetic:NxK`:
    N 256x256 images, default 10,000, of K classes, default 10), or an image folder whose
    unreadable files are set aside. A CSV/TSV table is read by table_data.load_dataset."""
    if source == "digits" and not Path(source).exists():
        classes, samples = load_digits()
        train, val = stratified_split(samples, val_split, seed)
        return DataSet(classes, train, val, "digits (built in)", split="val_split")
    if source.split(":")[0] == "synthetic" and not Path(source).exists():
        return load_synthetic(source, val_split, seed, channels)
    return load_folder(Path(source), val_split, seed, channels)


def load_synthetic(source: str, val_split: float, seed: int, channels: int) -> DataSet:
    """`synthetic[:N[xK]]`: random images for benchmarks."""
    import re

    match = re.fullmatch(r"synthetic(?::(\d+)(?:x(\d+))?)?", source)
    n, k = (int(match[1] or 10000), int(match[2] or 10)) if match else (0, 0)
    if n < 2 or k < 2:
        raise DataError(f"{source!r}: write synthetic:N (N random images, at least 2) or "
                        "synthetic:NxK (of K classes, at least 2), e.g. synthetic:5000x10")
    if channels not in (1, 3):
        raise DataError(f"the spec's input has {channels} channels; images give 1 or 3")
    samples = synthetic_samples(n, k, channels, 256, seed)
    train, val = stratified_split(samples, val_split, seed)
    return DataSet([f"class{c}" for c in range(k)], train, val,
                   f"synthetic ({n:,} random 256x256 images, {k} classes)", split="val_split")


def synthetic_samples(n: int, classes: int, channels: int = 3, size=256,
                      seed: int = 0) -> list[Sample]:
    """`n` random images of `classes` balanced classes, as uint8 pixels (HxW for 1 channel,
    HxWxC for 3). Each class tints the noise with its own colour, so a network can learn
    them; at most 1,024 distinct images are made and shared, which keeps it cheap."""
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    rng = np.random.default_rng(seed)
    distinct = min(n, classes * max(1, MAX_DISTINCT_SYNTHETIC // classes))
    shape = (height, width) if channels == 1 else (height, width, channels)
    tints = rng.integers(0, 128, (classes, 1, 1, channels), dtype=np.uint8)
    noise = np.frombuffer(rng.bytes(distinct * height * width * channels), np.uint8)
    noise = (noise >> 1).reshape(distinct, height, width, channels)
    images = [(noise[d] + tints[d % classes]).reshape(shape) for d in range(distinct)]
    return [Sample(i % classes, pixels=images[i % distinct]) for i in range(n)]


def decode(sample: Sample, channels: int):
    """A PIL image in the spec's channel count: L for 1 channel, RGB for 3."""
    from PIL import Image

    if sample.pixels is not None:
        image = Image.fromarray(sample.pixels)
    else:
        with Image.open(sample.path) as opened:
            opened.load()
            image = _upright(opened)
    image = _to_8bit(image)
    if image.mode not in CONVERTIBLE:
        raise ValueError(f"unsupported colour mode {image.mode}")
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


def _upright(image):
    """The image as it is meant to be seen: a camera's EXIF orientation (rotated, mirrored)
    applied to the pixels; an image without one, or with a damaged EXIF block, as stored."""
    from PIL import ImageOps

    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a damaged EXIF block does not make the pixels unusable
        return image
    if orientation in (None, 1):
        return image
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - as above
        return image


@contextmanager
def quiet_decoding():
    """Decode without PIL's DecompressionBombWarning reaching stderr: an image over PIL's
    pixel limit but under twice it is used (it is only slow); above that, decoding fails and
    the file is skipped with its reason. Scoped, and meant for the thread that starts the
    decoding (warning filters are per process)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def _to_8bit(image):
    """16-bit, 32-bit and float images become 8-bit grayscale, scaled by the range of their
    finite values (NaN and infinities become black and white)."""
    from PIL import Image

    if image.mode.startswith("I") or image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        finite = array[np.isfinite(array)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        array = np.nan_to_num(array, nan=low, posinf=high, neginf=low)
        scale = 255.0 / (high - low) if high > low else 0.0
        return Image.fromarray(np.clip((array - low) * scale, 0, 255).astype(np.uint8))
    return image


def unreadable(exc: BaseException, path: Path | None = None) -> str:
    """Why a file is not a usable image, in words: `empty file`, `not an image`, …"""
    from PIL import Image, UnidentifiedImageError

    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "a folder, not an image"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if path is not None and path.is_file() and path.stat().st_size == 0:
        return "empty file"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image"
    if isinstance(exc, Image.DecompressionBombError):
        return "too many pixels (a decompression bomb?)"
    if isinstance(exc, ValueError) and "colour mode" in str(exc):
        return str(exc)
    if isinstance(exc, (OSError, SyntaxError, EOFError)):
        return "truncated or damaged"
    return f"cannot be decoded ({type(exc).__name__})"


def check_decodable(samples: list[Sample], channels: int) -> tuple[list[Sample], list]:
    """Keep the images that decode; return them and (path, reason) for the others."""
    good, bad = [], []
    for s in samples:
        if s.pixels is not None:
            good.append(s)
            continue
        try:
            with quiet_decoding():
                decode(s, channels)
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 - any unreadable file is skipped, not fatal
            bad.append((str(s.path), unreadable(exc, s.path)))
            continue
        good.append(s)
    return good, bad


# ----------------------------------------------------------------------------- fingerprint


def _digest(names) -> str:
    h = hashlib.blake2b(digest_size=8)
    for name in sorted(names):
        h.update(os.fsencode(name) + b"\0")
    return h.hexdigest()


def fingerprint(data: DataSet) -> dict | None:
    """What a run's split rests on, for config.json: each class's image count and a digest of
    its files' names (relative to the folder), and a digest of the validation images. None
    for built-in data, which does not change."""
    if data.root is None:
        return None

    def name(sample: Sample) -> str:
        try:
            return os.path.relpath(sample.path, data.root)
        except ValueError:  # a table's image on another drive (Windows)
            return str(sample.path)

    by_class: dict[int, list[str]] = {}
    for s in data.train + data.val:
        by_class.setdefault(s.label, []).append(name(s))
    if data.task == "segment":  # every image has label 0: the images are one group
        classes = {"images": by_class.get(0, [])}
    else:
        classes = {c: by_class.get(i, []) for i, c in enumerate(data.classes)}
    return {"classes": {c: {"images": len(names), "files": _digest(names)}
                        for c, names in classes.items()},
            "validation": _digest(f"{s.label}/{name(s)}" for s in data.val)}


def changes_since(saved: dict | None, data: DataSet) -> str | None:
    """How `data` differs from the data a run started on (its config.json fingerprint), in
    words with what to do; None when it is the same (or either is unknown)."""
    now = fingerprint(data)
    if not saved or now is None:
        return None
    then_classes, now_classes = saved.get("classes", {}), now["classes"]
    changed = []
    for c in sorted(set(then_classes) | set(now_classes)):
        was = then_classes.get(c, {"images": 0, "files": ""})
        is_ = now_classes.get(c, {"images": 0, "files": ""})
        diff = is_["images"] - was["images"]
        who = "it" if data.task == "segment" else repr(c)
        if diff > 0:
            changed.append(f"{who} has {diff} image(s) more ({is_['images']}, was "
                           f"{was['images']})")
        elif diff < 0:
            changed.append(f"{who} has {-diff} image(s) fewer ({is_['images']}, was "
                           f"{was['images']})")
        elif is_["files"] != was["files"]:
            changed.append(f"{who} has as many images but not the same files (some added, as "
                           "many removed or renamed)")
    if changed:
        what = (f"{data.source} changed since the run started: "
                + "; ".join(changed[:5]) + (f"; and {len(changed) - 5} more class(es)"
                                            if len(changed) > 5 else ""))
    elif saved.get("validation") != now["validation"]:
        what = (f"the validation split of {data.source} is not the one the run started with "
                "(the same files, split by another version of archdsl)")
    else:
        return None
    return (f"{what}. Going on would split the images anew, so images the run has validated on "
            "could be trained on; start a new run on the data as it is now (archdsl train SPEC "
            f"{data.source} --out NEW_FOLDER), or put the data back as it was to resume")
