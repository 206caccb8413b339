"""Writing output files without ever leaving half of one behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(out: Path, write: Callable[[str], None]) -> None:
    """Call `write(tmp_path)` on a temporary file beside `out`, then rename it into place.

    A failure (or a kill) before the rename leaves `out` as it was.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=out.suffix, dir=out.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it the usual mode
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(out: Path, data: bytes) -> None:
    atomic_write(out, lambda tmp: Path(tmp).write_bytes(data))
