"""What `archdsl predict` reads and writes besides the run: the image files of the paths it is
given (a folder is searched, its sub-folders too), and the CSV of its predictions (no cell of
which a spreadsheet would run as a formula). Whether --csv FILE may be written is
archdsl/output_files.py's rule, as for every file a command writes.

Nothing here imports torch.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

from .data import DataError, printable
from .errors import TrainUsageError

# The names a folder's images end in (any case). The training loader tries every file of a
# class folder; a folder to predict on is often a download or a camera's folder, with notes,
# CSVs and thumbnails beside the pictures, so only files with an image's name are taken.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".webp", ".tiff", ".jpe",
                  ".jfif", ".ppm", ".pgm", ".pbm", ".pnm", ".tga")


def find_images(paths: list[str]) -> list[str]:
    """The files to classify: a file as given, a folder's image files (IMAGE_SUFFIXES) in it
    and its sub-folders, hidden files and folders (`.ipynb_checkpoints`, `.DS_Store`) and
    links to folders left out, in sorted order. A folder without images is a DataError; a
    path that does not exist (a typo, a file moved) is a usage error (exit 2), before any
    image is read: an existing file that is no image is still classified as unreadable."""
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise TrainUsageError(_not_found(missing))
    found = []
    for path in paths:
        if not os.path.isdir(path):
            found.append(path)
            continue
        images, others = _walk(path)
        if not images:
            raise DataError(_no_images(path, others))
        found += sorted(images, key=lambda p: Path(p).parts)
    return found


def _walk(folder: str) -> tuple[list[str], list[str]]:
    """The image files under `folder` and the other files (not hidden) beside them."""
    try:
        with os.scandir(folder) as listing:
            entries = list(listing)
    except OSError as exc:
        why = "permission denied" if isinstance(exc, PermissionError) else (
            exc.strerror or type(exc).__name__)
        raise DataError(f"{printable(folder)} cannot be read ({why}), so its images cannot be "
                        "classified; make it readable (chmod -R u+rX), or leave it out") from None
    images, others = [], []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            more, other = _walk(entry.path)
            images += more
            others += other
        elif entry.is_file():
            is_image = os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES
            (images if is_image else others).append(entry.path)
    return images, others


def _not_found(missing: list[str]) -> str:
    shown = ", ".join(printable(p) for p in missing[:3]) + (" …" if len(missing) > 3 else "")
    what = "does not exist" if len(missing) == 1 else f"do not exist ({len(missing)} paths)"
    return (f"{shown} {what}: no such file or folder; give image files, or folders that hold "
            "some")


def _no_images(folder: str, others: list[str]) -> str:
    beside = (f"; it holds {len(others)} other file(s), such as "
              f"{printable(min(others, key=lambda p: Path(p).parts))}" if others else "")
    return (f"{printable(folder)}: no images in this folder or its sub-folders (image files end "
            f"in {', '.join(IMAGE_SUFFIXES[:7])}, …; hidden files and folders are left out)"
            f"{beside}. Give image files, or a folder that holds some")


# What a spreadsheet takes for the start of a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?", re.ASCII)


def spreadsheet_cell(text: str) -> str:
    """`text` as a CSV cell no spreadsheet runs as a formula: one starting with `=`, `+`, `-`,
    `@`, a tab or a carriage return gets a leading `'` (OWASP's advice), unless it is a plain
    number (`-5`, a class of a table with integer labels), which no spreadsheet runs."""
    if text.startswith(FORMULA_STARTS) and not NUMBER.fullmatch(text):
        return "'" + text
    return text


def predictions_csv(results: list, top: int) -> str:
    """The CSV of `predict`'s results: a header, then one row per image: its path, then
    label_k and prob_k (6 decimals) for k = 1..top, then `error` (why it could not be read;
    empty for an image that was classified, whose label and prob cells are then filled).
    Paths, class names and errors are written by spreadsheet_cell."""
    shown = max((len(best) for _, best, _ in results if best), default=top)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path"] + [f"{name}_{k}" for k in range(1, shown + 1)
                                for name in ("label", "prob")] + ["error"])
    for path, best, problem in results:
        cells = [c for name, p in best or () for c in (spreadsheet_cell(name), f"{p:.6f}")]
        writer.writerow([spreadsheet_cell(path)] + cells + [""] * (2 * shown - len(cells))
                        + [spreadsheet_cell(problem or "")])
    return text.getvalue()
