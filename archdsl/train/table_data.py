"""A data set written as a table: a CSV (or, by its .tsv extension, a tab-separated) file of
`path,label` rows with an optional third column `split` (train, or val / valid / validation /
test). Without a split column, --val-split holds out a stratified share as for a folder.

A table is read so that it never trains on other data than it shows:
- the first row is a header when it names the columns (`path`, `file`, `filename` or `image`,
  then `label`, `class` or `category`, then `split`; any case, spaces and `_` ignored), a row
  when its file exists, and an error otherwise, so a header in other words is never a class;
- paths are relative to the file; rows naming one image (after normalising the path) are that
  image once: with one label and split, a warning counts them; otherwise an error names the
  lines. The split is taken over images, never rows;
- a missing or unreadable file is skipped and listed like a folder's, and a label left with no
  usable image is no class (listed like an empty class folder);
- labels are names, any text without control characters, compared as written; when every
  label is an integer, classes are ordered as numbers, and one number written two ways
  (`1` and `01`) is refused, as a spreadsheet that dropped some cells' zeros would otherwise
  train an output too many;
- rows naming images outside the file's folder (absolute paths, `..`) are counted in a
  warning."""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import data as _data
from .data import CONTROL, VAL_NAMES, DataError, DataSet, Sample, check_decodable, printable, \
    stratified_split

TABLE_SUFFIXES = (".csv", ".tsv")
PATH_COLUMN = ("path", "file", "filename", "filepath", "image", "imagepath")
LABEL_COLUMN = ("label", "class", "classname", "category")
SPLIT_COLUMN = ("split",)
INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)  # ASCII: `²` is a digit to isdigit, not to int


@dataclass
class Row:
    """One row of a table: its first line in the file, the path as written, its label, and
    its split (`train`, `val`, or `` without a split column)."""

    line: int
    file: str
    label: str
    split: str


def is_table(source: str) -> bool:
    """Whether DATASET names a CSV or TSV file."""
    return Path(source).suffix.lower() in TABLE_SUFFIXES and Path(source).is_file()


def _cells(path: Path) -> list[tuple[int, list[str]]]:
    """(first line, cells trimmed) of each non-empty row; a quoted cell may span lines."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    rows, end = [], 0
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            for row in reader:
                start, end = end + 1, reader.line_num
                if any(c.strip() for c in row):
                    rows.append((start, [c.strip() for c in row]))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    return rows


def _column(cell: str) -> str:
    return re.sub(r"[\s_-]", "", cell.lower())


def _is_header(cells: list[str]) -> bool:
    names = [_column(c) for c in cells]
    return (len(names) in (2, 3) and names[0] in PATH_COLUMN and names[1] in LABEL_COLUMN
            and all(name in SPLIT_COLUMN for name in names[2:]))


def _without_header(path: Path, rows: list[tuple[int, list[str]]]):
    """The rows after the header; a first row that is neither a header nor names a file is
    refused, since reading it as a row would make its second cell a class without images."""
    if not rows:
        return rows
    line, cells = rows[0]
    if _is_header(cells):
        return rows[1:]
    if cells[0] and (path.parent / cells[0]).is_file():
        return rows
    raise DataError(
        f"{printable(path)}:{line}: the first row, {printable(','.join(cells))!r}, is not a "
        "header archdsl reads (`path,label` or `path,label,split`; `file`, `filename` or "
        "`image` for path, `class` or `category` for label, in any case) nor a row naming a "
        f"file beside {printable(path.name)}; write that header, or fix the row's path")


def _split_of(path: Path, line: int, cell: str) -> str:
    word = cell.lower()
    if word in ("train", "") or word in VAL_NAMES:
        return "val" if word in VAL_NAMES else word
    raise DataError(f"{printable(path)}:{line}: split {cell!r} is neither train nor val (valid, "
                    "validation, test); write one of them, or leave the column empty")


def _rows(path: Path) -> list[Row]:
    rows = []
    for line, cells in _without_header(path, _cells(path)):
        if len(cells) not in (2, 3) or not cells[0] or not cells[1]:
            raise DataError(f"{printable(path)}:{line}: expected `path,label` or "
                            f"`path,label,split`, got {printable(','.join(cells))!r}")
        split = _split_of(path, line, cells[2]) if len(cells) == 3 else ""
        rows.append(Row(line, cells[0], cells[1], split))
    if not rows:
        raise DataError(f"{printable(path)} lists no images; write one `path,label` row per "
                        "image")
    if len({row.split == "" for row in rows}) > 1:
        raise DataError(f"{printable(path)} gives a split for some rows and not others; give "
                        "one for every row, or for none (then --val-split holds images out)")
    return rows


def _check_labels(path: Path, rows: list[Row]) -> None:
    """Refuse a label with a control character (often an unbalanced quote swallowing lines)
    and one number written two ways."""
    numbers: dict[int, Row] = {}
    for row in rows:
        if CONTROL.search(row.label):
            raise DataError(f"{printable(path)}:{row.line}: the label {row.label!r} holds a "
                            "control character (a line break, a tab; an unbalanced quote?); "
                            "a class name is shown on one line: write it without")
        if INTEGER.fullmatch(row.label):
            first = numbers.setdefault(int(row.label), row)
            if first.label != row.label:
                raise DataError(f"{printable(path)}:{row.line}: the label {row.label!r} is the "
                                f"number {first.label!r} of line {first.line} written another "
                                "way; labels are compared as written, so they would be two "
                                "classes: write each class one way")


def _one_row_per_image(path: Path, rows: list[Row]) -> tuple[list[Row], list[str]]:
    """Each image's first row, and a warning counting the rows that repeat one; an image
    given two labels, or for training and for validation, is refused."""
    first: dict[str, Row] = {}
    keys: dict[str, str] = {}  # a path as written -> the file it names, resolved once
    repeats = []
    for row in rows:
        key = keys.get(row.file) or keys.setdefault(
            row.file, os.path.normcase(os.path.realpath(path.parent / row.file)))
        seen = first.setdefault(key, row)
        if seen is row:
            continue
        if seen.label != row.label or seen.split != row.split:
            _refuse_two_rows(path, seen, row)
        repeats.append((row, seen))
    if not repeats:
        return rows, []
    row, seen = repeats[0]
    return list(first.values()), [
        f"{len(repeats):,} row(s) of {printable(path)} repeat an image an earlier row lists "
        f"with the same label (the first: line {row.line}, {printable(row.file)}, as on line "
        f"{seen.line}); each image is used once"]


def _refuse_two_rows(path: Path, seen: Row, row: Row) -> None:
    """Two rows naming one image with another label, or another split."""
    where = f"{printable(path)}:{row.line}: {printable(row.file)}"
    if seen.label != row.label:
        raise DataError(f"{where} is labelled {row.label!r} here and {seen.label!r} on line "
                        f"{seen.line} (the same image); an image has one label: remove the "
                        "wrong row")
    words = {"train": "training", "val": "validation"}
    raise DataError(f"{where} is for {words[row.split]} here and for {words[seen.split]} on "
                    f"line {seen.line}, so it would be validated on after training on it: keep "
                    "one row")


def _outside(path: Path, rows: list[Row]) -> list[str]:
    """A warning counting the rows whose image lies outside the table's folder."""
    away = [row for row in rows if os.path.isabs(row.file)
            or os.path.normpath(row.file).split(os.sep)[0] == os.pardir]
    if not away:
        return []
    return [f"{len(away):,} row(s) of {printable(path)} name images outside its folder (an "
            f"absolute path or `..`; the first: line {away[0].line}, {printable(away[0].file)}), "
            "so the data set is not only that folder: moving it would lose them"]


def _classes(labels) -> list[str]:
    """Integers ordered as numbers (each is written one way: _check_labels), else as text."""
    numeric = all(INTEGER.fullmatch(label) for label in labels)
    return sorted(labels, key=int if numeric else str)


def load_table(source: str, val_split: float, seed: int, channels: int = 3) -> DataSet:
    """The images a CSV/TSV file lists, each once with its label; missing and unreadable
    ones set aside, and labels left without an image dropped (module docstring)."""
    path = Path(source)
    rows = _rows(path)
    _check_labels(path, rows)
    rows, warnings = _one_row_per_image(path, rows)
    warnings += _outside(path, rows)
    files = [(row, path.parent / row.file) for row in rows]
    missing = [(str(p), "no such file") for _, p in files if not p.is_file()]
    good, bad = check_decodable([Sample(0, path=p) for _, p in files if p.is_file()], channels)
    usable = {s.path for s in good}
    rows = [row for row, p in files if p in usable]
    if not rows:
        raise DataError(f"{printable(path)} lists no usable image ({len(missing) + len(bad)} "
                        "missing or unreadable); paths are relative to the file's folder")
    classes = _classes({row.label for row in rows})
    empty = [c for c in _classes({row.label for row, _ in files}) if c not in set(classes)]
    index = {c: i for i, c in enumerate(classes)}
    samples = [(Sample(index[row.label], path=path.parent / row.file), row.split)
               for row in rows]
    if rows[0].split == "":
        train, val = stratified_split([s for s, _ in samples], val_split, seed)
        how = "val_split"
    else:
        train = [s for s, split in samples if split == "train"]
        val = [s for s, split in samples if split == "val"]
        how = "table"
        _every_class_trained(path, classes, train, val)
    return DataSet(classes, train, val, printable(path), skipped=missing + bad, split=how,
                   empty_classes=empty, root=path.parent, warnings=warnings)


def _every_class_trained(path: Path, classes: list[str], train, val) -> None:
    """A class with validation images but no training image would be an output never
    trained; refused, as a folder's val/ class without a train/ one is. A table with no
    training rows at all is a test set (eval), which train refuses itself."""
    if not train:
        return
    untrained = sorted({s.label for s in val} - {s.label for s in train})
    if untrained:
        names = ", ".join(repr(classes[i]) for i in untrained[:5])
        raise DataError(f"{printable(path)} has validation images of {names} but no usable "
                        "training image of it; add training rows, or remove its rows")


def load_dataset(source: str, val_split: float = 0.1, seed: int = 0,
                 channels: int = 3) -> DataSet:
    """Any DATASET: images with masks (segmentation: seg_data.py), a CSV/TSV table here, the
    rest as data.load_dataset reads them."""
    from .seg_data import is_segmentation, load_segmentation

    if is_segmentation(source):
        return load_segmentation(source, val_split, seed, channels)
    if is_table(source):
        return load_table(source, val_split, seed, channels)
    return _data.load_dataset(source, val_split, seed, channels)
