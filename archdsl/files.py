"""Writing output files without ever leaving half of one behind.

Every file is written to a temporary name beside it (`.NAME.XXXXXXXX.EXT`), flushed to the
disk, and renamed into place. A failure, a Ctrl-C or a kill before the rename leaves the
old file as it was; a kill can leave a temporary behind, which `remove_temporaries` clears.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .errors import ArchdslError


class WriteError(OSError, ArchdslError):
    """A file that could not be written; `path` is the file that was to be written."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"cannot write {path}: {reason}")
        self.path, self.reason = Path(path), reason


def _temporary(out: Path) -> str:
    """A new empty file beside `out`; WriteError when `out` is something other than a regular
    file (a device, a FIFO, a symlink, a folder), or when its folder cannot take one."""
    refuse_special(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=out.suffix, dir=out.parent)
    except OSError as exc:
        raise WriteError(out, exc.strerror or str(exc)) from exc
    os.close(fd)
    return tmp


_SPECIAL = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"),
            (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
            (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))


def refuse_special(out: Path) -> None:
    """WriteError unless `out` is absent or a regular file: archdsl replaces nothing else
    (renaming over /dev/full or a symlink would replace the device or the link itself)."""
    try:
        mode = os.lstat(out).st_mode
    except OSError:
        return  # absent (or unreachable: creating the temporary says why)
    for test, what in _SPECIAL:
        if test(mode):
            raise WriteError(out, f"it is {what}, not a regular file; archdsl only replaces "
                             "regular files (write to another path)")


def _finish(tmp: str, out: Path, write: Callable[[str], None], any_failure: bool) -> None:
    """Run `write(tmp)` and flush the result to the disk. An OSError (or, with `any_failure`,
    any exception) becomes a WriteError naming `out`."""
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())  # the rename must not reach the disk before the data
    except OSError as exc:
        raise WriteError(out, exc.strerror or str(exc)) from exc
    except Exception as exc:  # torch and safetensors report a full disk in their own way
        if not any_failure:
            raise
        first = (str(exc).splitlines() or [""])[0]
        raise WriteError(out, f"{type(exc).__name__}: {first}") from exc
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it the usual mode


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not every system can sync a folder
    finally:
        os.close(fd)


def atomic_write(out: Path, write: Callable[[str], None], keep: os.stat_result | None = None
                 ) -> None:
    """Call `write(tmp_path)` on a temporary file beside `out`, then rename it into place.
    `keep`: the replaced file's stat, whose permission bits, owner and group the new file
    gets (a private 0600 spec stays private).

    A failure (or a kill) before the rename leaves `out` as it was; failures raise WriteError.
    """
    out = Path(out)
    tmp = _temporary(out)
    try:
        _finish(tmp, out, write, any_failure=False)
        if keep is not None:
            _keep_mode(tmp, out, keep)
        os.replace(tmp, out)
        _sync_folder(out.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _keep_mode(tmp: str, out: Path, keep: os.stat_result) -> None:
    try:
        if (keep.st_uid, keep.st_gid) != (os.getuid(), os.getgid()):
            os.chown(tmp, keep.st_uid, keep.st_gid)
        os.chmod(tmp, stat.S_IMODE(keep.st_mode))
    except OSError as exc:
        raise WriteError(out, f"cannot keep its owner and permissions ({exc.strerror or exc})"
                         ) from exc


def atomic_write_bytes(out: Path, data: bytes) -> None:
    atomic_write(out, lambda tmp: Path(tmp).write_bytes(data))


@contextmanager
def atomic_batch() -> Iterator[Callable[[Path, Callable[[str], None]], None]]:
    """Several files written as one: `write(out, fn)` for each, renamed into place in that
    order only once all are written. A failure or Ctrl-C while writing changes none of them;
    any failure of a write is a WriteError naming its file."""
    pending: list[tuple[str, Path]] = []

    def write(out: Path, fn: Callable[[str], None]) -> None:
        out = Path(out)
        tmp = _temporary(out)
        pending.append((tmp, out))
        _finish(tmp, out, fn, any_failure=True)

    try:
        yield write
        with _signals_held():  # Ctrl-C between two renames would leave a mixed set
            for tmp, out in pending:
                os.replace(tmp, out)
        if pending:
            _sync_folder(pending[0][1].parent)
    finally:
        for tmp, _ in pending:
            if os.path.exists(tmp):
                os.unlink(tmp)


@contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait (where the system allows) until the block is done."""
    import signal
    import threading

    held = {signal.SIGINT, signal.SIGTERM} if hasattr(signal, "pthread_sigmask") else set()
    if not held or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def is_temporary(path: Path, names: set[str] | None = None) -> bool:
    """Whether `path` is a temporary left by a write that was killed (of one of `names`)."""
    match = re.fullmatch(r"\.(.+)\.[a-z0-9_]{8}(\.[^.]*)?", Path(path).name)
    if match is None or not match.group(1).endswith(match.group(2) or ""):
        return False
    return names is None or match.group(1) in names


def remove_temporaries(folder: Path, names: set[str]) -> list[Path]:
    """Delete the temporaries of `names` in `folder` that killed writes left behind."""
    removed = []
    for path in Path(folder).iterdir():
        if path.is_file() and is_temporary(path, names):
            path.unlink()
            removed.append(path)
    return removed
