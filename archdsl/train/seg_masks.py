"""Segmentation masks and class lists: what a mask PNG's pixels mean, and classes.txt.

A mask is a PNG label image the size of its image, whose pixel values are class indices
(0, 1, …), 255 marking pixels to ignore (an outline, an unlabelled region; never a class):
- a palette ("P") or grey ("L", "1", 16-bit) PNG: the values are the indices, whatever the
  palette's colours;
- an RGB(A) PNG: its colours are mapped to classes through the data set's colours (a
  classes.txt colour column, else the palette of its palette masks; a colour no class has is
  an error); without colours, an RGB mask whose three channels are equal is read as grey, and
  any other is an error, since its colours are not class indices.

classes.txt, beside the data (the folder of images/ and masks/, of train/ and val/, or of the
table), names the classes in label order: line k (counting only lines with a name) is label k.
Blank lines and lines starting with `#` are left out. A line may end with the class's colour,
`road 128 64 128` or `road #804080` (all lines or none), and may start with its label,
`0 background` (all lines or none; each the next number). A line `ignore R G B` gives the
colour of the pixels to ignore in RGB masks; it is not a class.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import DataError, Sample, printable, unreadable

IGNORE = 255
MAX_CLASSES = 255  # labels 0-254: 255 is the ignore value
INDEX_MODES = ("1", "L", "P", "LA", "PA")
WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
COLOUR_MODES = ("RGB", "RGBA", "RGBX")
LINE = re.compile(r"(?P<name>.*?)(?:[\s,:]+(?:#(?P<hex>[0-9a-fA-F]{6})|"
                  r"(?P<r>\d{1,3})[\s,]+(?P<g>\d{1,3})[\s,]+(?P<b>\d{1,3})))?\s*")
NUMBERED = re.compile(r"(?P<label>\d{1,3})[\s,:]+(?P<rest>\S.*)")
COLOUR_HINT = ("list each class's colour in classes.txt beside the data (`road 128 64 128`, "
               "one class a line, in label order)")


@dataclass
class ClassList:
    """classes.txt read: the names in label order, their colours (or None), and the colour
    of ignored pixels in RGB masks (or None)."""

    path: Path
    names: list[str]
    colours: list[tuple[int, int, int]] | None = None
    ignore: tuple[int, int, int] | None = None

    def palette(self) -> list[int] | None:
        """The colours as a flat RGB palette (the ignore colour at 255), or None."""
        if self.colours is None:
            return None
        flat = [v for colour in self.colours for v in colour]
        if self.ignore is not None:
            flat += [0] * (3 * IGNORE - len(flat)) + list(self.ignore)
        return flat


def read_classes(path: Path) -> ClassList:
    """classes.txt (module docstring); a DataError names the line and says what to write."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {printable(path)} ({exc}); it names the classes, one a "
                        "line: make it a readable UTF-8 text file") from None
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.strip().startswith("#")]
    if not lines:
        raise DataError(f"{printable(path)} names no class; write the class names in label "
                        "order, one a line (`background`, then `cat`, …)")
    lines = _without_numbers(path, lines)
    names, colours, ignore = [], [], None
    for n, line in lines:
        name, colour = _parsed(path, n, line)
        if name.lower() == "ignore":
            if colour is None:
                raise DataError(f"{printable(path)}:{n}: `ignore` is not a class: 255 in a mask "
                                "marks the pixels to ignore. Remove the line, or give the "
                                "colour of ignored pixels in RGB masks (`ignore 224 224 192`)")
            ignore = colour
            continue
        if name in names:
            raise DataError(f"{printable(path)}:{n}: the class {printable(name)!r} is named "
                            f"twice (label {names.index(name)} and {len(names)}); name each "
                            "class once")
        names.append(name)
        colours.append(colour)
    return ClassList(path, names, _colours(path, names, colours, ignore), ignore)


def _without_numbers(path: Path, lines):
    """The lines without their label numbers, when every line starts with one; each must be
    the next label (255 for `ignore`)."""
    numbered = [NUMBERED.fullmatch(line) for _, line in lines]
    if not all(numbered):
        return lines
    out, expected = [], 0
    for (n, _), match in zip(lines, numbered):
        label, rest = int(match["label"]), match["rest"]
        is_ignore = rest.split()[0].lower() == "ignore"
        if label != (IGNORE if is_ignore else expected):
            raise DataError(f"{printable(path)}:{n}: label {label} where "
                            f"{IGNORE if is_ignore else expected} comes next; classes.txt lists "
                            "the classes in label order from 0, one a line, without gaps (a "
                            "label unused in the masks still needs its line)")
        expected += 0 if is_ignore else 1
        out.append((n, rest))
    return out


def _parsed(path: Path, n: int, line: str):
    """A line's name and colour (or None)."""
    match = LINE.fullmatch(line)
    name = match["name"].strip()
    if match["hex"]:
        colour = tuple(int(match["hex"][i:i + 2], 16) for i in (0, 2, 4))
    elif match["r"]:
        colour = (int(match["r"]), int(match["g"]), int(match["b"]))
        if max(colour) > 255:
            raise DataError(f"{printable(path)}:{n}: the colour {colour} has a value above 255; "
                            "write red, green and blue from 0 to 255")
    else:
        colour = None
    if not name or re.search(r"[\x00-\x1f\x7f]", name):
        raise DataError(f"{printable(path)}:{n}: {printable(line)!r} gives no class name; "
                        "write the name, then optionally its colour (`road 128 64 128`)")
    return name, colour


def _colours(path: Path, names, colours, ignore):
    """The classes' colours, or None: every class has one, or none has; no two share one."""
    if len(names) > MAX_CLASSES:
        raise DataError(f"{printable(path)} names {len(names)} classes; masks hold labels 0 "
                        f"to {MAX_CLASSES - 1} (255 marks pixels to ignore), so at most "
                        f"{MAX_CLASSES}")
    given = [c is not None for c in colours]
    if not any(given):
        return None
    if not all(given):
        coloured, bare = names[given.index(True)], names[given.index(False)]
        raise DataError(f"{printable(path)}: the class {printable(coloured)!r} has a colour but "
                        f"{printable(bare)!r} has none; give a colour to every class or to "
                        "none")
    seen: dict[tuple, str] = {}
    for name, colour in list(zip(names, colours)) + ([("ignore", ignore)] if ignore else []):
        if colour in seen:
            raise DataError(f"{printable(path)}: {printable(seen[colour])!r} and "
                            f"{printable(name)!r} have one colour, {colour}, so an RGB mask "
                            "could not tell them apart; give each its own colour")
        seen[colour] = name
    return colours


# ----------------------------------------------------------------------------- mask files


def open_mask(path: Path, load: bool = True):
    """The mask's PIL image (decoded when `load`); a file that is not a readable PNG is a
    DataError that names it."""
    from PIL import Image

    try:
        image = Image.open(path)
        if load:
            image.load()
    except Exception as exc:  # noqa: BLE001 - any failure is the same mistake for the user
        raise DataError(f"the mask {printable(path)} cannot be read as a PNG "
                        f"({unreadable(exc, Path(path))}); save each mask as a PNG label "
                        "image (its pixel values the class indices)") from None
    if image.format != "PNG":
        image.close()
        lossy = " (JPEG's compression changes pixel values, so the labels would be wrong)" \
            if image.format == "JPEG" else ""
        raise DataError(f"the mask {printable(path)} is a {image.format} file, not a "
                        f"PNG{lossy}; save each mask as a PNG label image (its pixel values "
                        "the class indices)")
    return image


def decode_mask(sample: Sample, classes: int | None = None,
                palette: list[int] | None = None) -> np.ndarray:
    """The sample's mask as uint8 HxW class indices, 255 where ignored (module docstring).
    `palette`: the data set's colours (DataSet.palette), which map an RGB mask's colours to
    classes. With `classes` (the class count), a label beyond them is a DataError naming
    the file. Built-in masks are returned as they are: read-only, not copied."""
    if sample.mask_pixels is not None:
        values, name = sample.mask_pixels, "the built-in mask"
    else:
        with open_mask(sample.mask) as image:
            values = _indices(image, Path(sample.mask), palette, classes)
        name = printable(sample.mask)
    if classes is not None:
        check_labels(values, classes, name,
                     "paint those pixels with a class's label, or 255 to leave them out")
    return values


def _indices(image, path: Path, palette, classes) -> np.ndarray:
    mode = image.mode
    if mode in INDEX_MODES:
        array = np.asarray(image)
        return (array[..., 0] if array.ndim == 3 else array).astype(np.uint8, copy=False)
    if mode in WIDE_MODES:
        array = np.asarray(image)
        if array.size and array.max() > IGNORE:
            y, x = np.argwhere(array > IGNORE)[0]
            raise DataError(f"the mask {printable(path)} holds the value {array[y, x]} (at x={x}, "
                            f"y={y}); labels go from 0 to {MAX_CLASSES - 1}, and 255 marks pixels "
                            "to ignore: save the mask with its values in that range")
        return array.astype(np.uint8)
    if mode in COLOUR_MODES:
        rgb = np.asarray(image.convert("RGB") if mode != "RGB" else image)
        if palette:
            return _mapped(rgb, path, palette, classes)
        if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
            return np.ascontiguousarray(rgb[..., 0])  # grey saved as RGB
        raise DataError(f"the mask {printable(path)} is an RGB image, whose colours are not "
                        "class indices; save the masks as palette or grey PNGs whose pixel "
                        "values are the class indices (0, 1, …; 255 to ignore), or "
                        + COLOUR_HINT)
    raise DataError(f"the mask {printable(path)} is a {mode} image, which holds no class "
                    "indices; save it as a palette or grey PNG whose pixel values are the "
                    "class indices")


def _mapped(rgb: np.ndarray, path: Path, palette: list[int], classes) -> np.ndarray:
    """An RGB mask's colours as class indices: the first palette entry of each colour (among
    the first `classes`, and 255 for the ignore colour)."""
    entries = np.asarray(palette[:3 * 256], dtype=np.uint32).reshape(-1, 3)
    codes = (entries[:, 0] << 16) | (entries[:, 1] << 8) | entries[:, 2]
    usable = [i for i in range(len(codes)) if classes is None or i < classes or i == IGNORE]
    table: dict[int, int] = {}
    for i in usable:
        table.setdefault(int(codes[i]), i)
    pixels = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) \
        | rgb[..., 2]
    colours, inverse = np.unique(pixels, return_inverse=True)
    lookup = np.array([table.get(int(c), -1) for c in colours], dtype=np.int16)
    if (lookup < 0).any():
        code = int(colours[np.argmax(lookup < 0)])
        y, x = np.argwhere(pixels == code)[0]
        colour = (code >> 16, (code >> 8) & 255, code & 255)
        raise DataError(f"the mask {printable(path)} has pixels of the colour {colour} (the first "
                        f"at x={x}, y={y}), which is no class's colour (the data set's colours "
                        "come from classes.txt, else from its palette masks); give that colour "
                        "a class in classes.txt, or its own line `ignore R G B` to leave those "
                        "pixels out")
    return lookup[inverse.reshape(pixels.shape)].astype(np.uint8)


def check_labels(values: np.ndarray, classes: int, name: str, fix: str) -> None:
    """A DataError naming the mask when a pixel's label is `classes` or more and not 255."""
    beyond = (values >= classes) & (values != IGNORE)
    if not beyond.any():
        return
    y, x = np.argwhere(beyond)[0]
    raise DataError(f"the mask {name} has pixels labelled {values[y, x]} (the first at x={x}, "
                    f"y={y}), beyond the {classes} classes (labels 0 to {classes - 1}; 255 marks "
                    f"pixels to ignore); {fix}")
