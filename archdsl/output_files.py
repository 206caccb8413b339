"""The one rule for a file a command writes where the user said (draw's and export's -o,
predict's --csv, eval's --gallery): a folder is refused, and an existing file is replaced
only with --force, or when archdsl itself wrote it (a drawing, a gallery: the caller's `ours`
recognises its marker)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .errors import UsageError


def writable_output(out: Path, option: str, force: bool,
                    ours: Callable[[Path], bool] | None = None, kind: str = "",
                    such_as: str = "") -> None:
    """A UsageError when writing `out` (named by `option`, `-o` or `--csv`) would replace
    what the user owns: a folder (`such_as` is a file name to suggest in it), or an existing
    file, without `force`, that `ours` does not recognise as archdsl's `kind`."""
    out = Path(out)
    if out.is_dir():
        example = f" such as {out / such_as}" if such_as else ""
        raise UsageError(f"{out} is a folder; give {option} a file name{example}")
    if out.exists() and not force and not (ours is not None and ours(out)):
        what = f"exists and is not {kind}" if kind else "exists"
        raise UsageError(f"{out} {what}; choose another {option}, or add --force to replace it")
