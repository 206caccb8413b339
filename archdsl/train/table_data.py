"""A data set written as a table: a CSV (or, by its .tsv extension, a tab-separated) file of
`path,label` rows with an optional third column `split` (train, or val / valid / validation /
test). Paths are relative to the file; labels are class names, or integers (ordered as
numbers). A first row naming the columns (`path,label[,split]`) is a header. Without a split
column, --val-split holds out a stratified share as for a folder."""

from __future__ import annotations

import csv
from pathlib import Path

from . import data as _data
from .data import VAL_NAMES, DataError, DataSet, Sample, check_decodable, printable, \
    stratified_split

TABLE_SUFFIXES = (".csv", ".tsv")


def is_table(source: str) -> bool:
    """Whether DATASET names a CSV or TSV file."""
    return Path(source).suffix.lower() in TABLE_SUFFIXES and Path(source).is_file()


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, cells) of each non-empty row, the header left out."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [(n, [c.strip() for c in row]) for n, row in
                    enumerate(csv.reader(f, delimiter=delimiter), 1) if any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if rows and [c.lower() for c in rows[0][1][:2]] == ["path", "label"]:
        rows = rows[1:]
    return rows


def _split_of(path: Path, n: int, cell: str) -> str:
    word = cell.lower()
    if word in ("train", "") or word in VAL_NAMES:
        return "val" if word in VAL_NAMES else word
    raise DataError(f"{path}:{n}: split {cell!r} is neither train nor val (valid, validation, "
                    "test); write one of them, or leave the column empty")


def load_table(source: str, val_split: float, seed: int, channels: int = 3) -> DataSet:
    """The images a CSV/TSV file lists, with their labels; unreadable ones set aside."""
    path = Path(source)
    entries = []
    for n, cells in _rows(path):
        if len(cells) not in (2, 3) or not cells[0] or not cells[1]:
            raise DataError(f"{path}:{n}: expected `path,label` or `path,label,split`, got "
                            f"{','.join(cells)!r}")
        split = _split_of(path, n, cells[2]) if len(cells) == 3 else ""
        entries.append((path.parent / cells[0], cells[1], split))
    if not entries:
        raise DataError(f"{path} lists no images; write one `path,label` row per image")
    labels = {label for _, label, _ in entries}
    numeric = all(label.lstrip("-").isdigit() for label in labels)
    classes = sorted(labels, key=int if numeric else str)
    index = {c: i for i, c in enumerate(classes)}
    missing = [(str(p), "no such file") for p, _, _ in entries if not p.is_file()]
    samples = [(Sample(index[label], path=p), split) for p, label, split in entries
               if p.is_file()]
    good, bad = check_decodable([s for s, _ in samples], channels)
    kept = {id(s) for s in good}
    samples = [(s, split) for s, split in samples if id(s) in kept]
    splits = {split for _, split in samples}
    if splits - {""} and "" in splits:
        raise DataError(f"{path} gives a split for some rows and not others; give one for "
                        "every row, or for none (then --val-split holds images out)")
    if not samples:
        raise DataError(f"{path} lists no usable image ({len(missing) + len(bad)} missing or "
                        "unreadable); paths are relative to the file's folder")
    if splits == {""}:
        train, val = stratified_split([s for s, _ in samples], val_split, seed)
        how = "val_split"
    else:
        train = [s for s, split in samples if split == "train"]
        val = [s for s, split in samples if split == "val"]
        how = "table"
    return DataSet(classes, train, val, printable(path), skipped=missing + bad, split=how,
                   root=path.parent)


def load_dataset(source: str, val_split: float = 0.1, seed: int = 0,
                 channels: int = 3) -> DataSet:
    """Any DATASET: a CSV/TSV table here, the rest as data.load_dataset reads them."""
    if is_table(source):
        return load_table(source, val_split, seed, channels)
    return _data.load_dataset(source, val_split, seed, channels)
