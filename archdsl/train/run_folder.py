"""The run folder: making it, the writers of its files, and reading config.json and resume.pt
back with every field checked, so that a damaged or tampered file is refused with a message.

An epoch's files are written to temporary names and renamed together, resume.pt last (see
archdsl/files.py), so whatever stops a run, the folder holds the last whole checkpoint.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
import os
import shlex
import shutil
import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from ..files import WriteError, is_temporary, remove_temporaries
from .errors import TrainError
from .units import format_bytes

METRICS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "val_miou",
           "lr", "images_per_s", "seconds"]  # a row has val_top5 (classes) or val_miou (pixels)
PROBE = ".archdsl-write-test"  # written and deleted to see that the folder is writable
RUN_FILES = {"config.json", "metrics.csv", "last.safetensors", "best.safetensors", "resume.pt",
             "curves.png", "confusion.png", "confusion_normalized.png", "ema.safetensors",
             "confidently_wrong.png"}
LOCK = ".archdsl.lock"  # flock'ed by the process training the run (holds its pid), then deleted


def spec_copy_name(spec_path: Path) -> str:
    """The name of the spec's copy in the run folder: the spec's own name ending in `.arch`,
    which no file of the run has (`net.txt`, `net.ARCH` and `config.json` become `net.arch`,
    `net.arch` and `config.arch`), so that the run can always read its copy back."""
    stem = Path(spec_path).name
    if "." in stem.lstrip("."):
        stem = stem[:stem.rindex(".")]
    return (stem.lstrip(".") or "spec") + ".arch"


# ----------------------------------------------------------------------------- the lock


_held: ContextVar[list | None] = ContextVar("archdsl_run_locks", default=None)
_FOR_LIFE: list = []  # locks taken outside any run_locks block: held until the process exits


@contextmanager
def run_locks():
    """Release, when the block ends however it ends, every run folder `lock_run` locked in
    it, deleting its lock file. A process that dies releases its locks with it (flock), so
    a lock file left by a killed run blocks nothing."""
    held: list = []
    token = _held.set(held)
    try:
        yield
    finally:
        _held.reset(token)
        for fd, path in held:
            if _same_file(fd, path):
                path.unlink()  # while still locked: a waiting process then makes a new one
            os.close(fd)  # closing the file releases its flock


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


def lock_run(run: Path) -> None:
    """Lock the run folder `run` for this process (an exclusive flock on its .archdsl.lock,
    holding this process's id), until the enclosing `run_locks` block ends; TrainError when
    another process trains in it. Locking a folder this process holds already is a no-op."""
    import fcntl

    path = Path(run) / LOCK
    held = _held.get()
    if held is None:
        held = _FOR_LIFE
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise TrainError(f"cannot lock the run folder {run}: {exc.strerror or exc}") from None
        if any(os.path.sameopenfile(fd, mine) for mine, _ in held):
            os.close(fd)
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            raise TrainError(f"{run} is in use: another archdsl train (pid {holder or 'unknown'}) "
                             "is training in it; wait for it to finish, or stop it first") from None
        if _same_file(fd, path):
            break
        os.close(fd)  # its holder deleted it as we opened it: lock the new one
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    held.append((fd, path))


def resume_command(run: Path) -> str:
    """The command that continues the run in `run`, quoted for a shell; for a run trained
    by several workers, with as many (its config.json says how many)."""
    command = f"archdsl train --resume {shlex.quote(str(run))}"
    try:
        workers = json.loads((Path(run) / "config.json").read_text()).get("distributed") or {}
        per_node, nodes = int(workers.get("nproc_per_node", 1)), int(workers.get("nnodes", 1))
    except (OSError, ValueError, TypeError, AttributeError):
        return command
    if per_node > 1 or nodes > 1:
        command += f" --nproc-per-node {per_node}"
    if nodes > 1:
        command += f" --nnodes {nodes} --rdzv-endpoint HOST:PORT"
    return command


def default_run_folder(name: str) -> str:
    """runs/<arch name>-<date-time>, in the current folder."""
    return f"runs/{name}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"


def make_run_folder(spec_path: Path, name: str, out: str | None, exist_ok: bool,
                    needed: int) -> Path:
    """The run folder, made and checked writable with `needed` bytes free, before any
    training. A folder that holds anything but what a run killed while starting left is
    refused without `exist_ok`."""
    if out is None:
        out = default_run_folder(name)
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise TrainError(f"{path} is a file; --out needs a folder")
    if (path / "config.json").is_file():
        lock_run(path)  # before looking at its files: a run may be training in it
    if path.is_dir() and not exist_ok and _holds_files(path, spec_path):
        if (path / "config.json").is_file():
            raise TrainError(f"{path} already holds a run; choose another --out, continue it "
                             f"with `{resume_command(path)}`, or add --exist-ok to write into it")
        raise TrainError(f"{path} is not empty and holds no run (it has no config.json); choose "
                         "another --out (a new or empty folder), or add --exist-ok to write "
                         "the run's files beside what is there")
    check_space(path, needed)
    try:
        path.mkdir(parents=True, exist_ok=True)
        lock_run(path)
        probe = path / PROBE
        probe.write_bytes(b"\0" * 4096)
        probe.unlink()
    except OSError as exc:
        fix = "fix the folder's permissions"
        if not path.is_dir():
            on = _nearest_existing(path)
            fix = (f"{on} is a virtual file system that holds no files of ours" if _virtual(on)
                   else f"make sure {on} is a folder you can write into")
            raise TrainError(f"cannot make the folder {path}: {exc.strerror or exc}; choose "
                             f"another --out ({fix})") from None
        raise TrainError(f"cannot write into {path}: {exc.strerror or exc}; choose another --out "
                         f"or {fix}") from None
    remove_temporaries(path, RUN_FILES | {spec_copy_name(spec_path)})
    return path


def _holds_files(path: Path, spec_path: Path) -> bool:
    """Whether `path` holds files other than temporaries of killed writes, or the copy of this
    very spec that a run killed before writing config.json leaves."""
    copy = spec_copy_name(spec_path)
    for entry in path.iterdir():
        if entry.is_file() and (entry.name in (PROBE, LOCK)
                                or is_temporary(entry, RUN_FILES | {copy})):
            continue
        if (entry.name == copy and entry.is_file()
                and not (path / "config.json").exists()
                and entry.read_bytes() == spec_path.read_bytes()):
            continue
        return True
    return False


def check_space(path: Path, needed: int) -> None:
    """Refuse to start when the disk under `path` has less than `needed` bytes free."""
    existing = _nearest_existing(path)
    try:
        usage = shutil.disk_usage(existing)
    except OSError:
        return  # cannot tell; the writes themselves report a full disk
    free = usage.free
    if usage.total == 0:
        return  # /proc, /sys: no disk at all; making the folder says why it fails
    if free < needed:
        raise TrainError(f"{path} is on a disk with {format_bytes(free)} free, but the run's "
                         f"checkpoints need about {format_bytes(needed)}; free some space or "
                         "choose another --out")


def _nearest_existing(path: Path) -> Path:
    existing = Path(path).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing


def _virtual(path: Path) -> bool:
    """Whether `path` is on a file system of no size (/proc, /sys): not a disk."""
    try:
        return shutil.disk_usage(path).total == 0
    except OSError:
        return False


def checkpoint_bytes(parameter_bytes: int, optimizer: str) -> int:
    """Disk space a run needs: last, best and resume.pt (weights and optimizer state), twice
    over while a new checkpoint is written beside the old one, and room for the plots."""
    slots = 2 if optimizer == "adamw" else 1
    return 2 * parameter_bytes * (3 + slots) + 4 * 2 ** 20


def write_error(exc: WriteError, then: str) -> TrainError:
    """A TrainError for a failed write: what failed, the disk's free space, and `then`."""
    try:
        free = f"; the disk has {format_bytes(shutil.disk_usage(exc.path.parent).free)} free"
    except OSError:
        free = ""
    return TrainError(f"cannot write {exc.path}: {exc.reason}{free}. Nothing was half-written: "
                      f"{then}")


# ----------------------------------------------------------------------------- writers


def json_text(data, indent: int | None = 2) -> str:
    """JSON that every reader takes: NaN and infinities (which json.dumps would write as
    `NaN` and `Infinity`, not JSON) become null, where there is no value."""
    def finite(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: finite(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [finite(x) for x in v]
        return v

    return json.dumps(finite(data), indent=indent, allow_nan=False)


def json_writer(data):
    text = json_text(data) + "\n"  # ASCII, with \u escapes: readable in any locale
    return lambda tmp: Path(tmp).write_text(text, encoding="ascii")


def weights_writer(state: dict):
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    return lambda tmp: save_file(tensors, tmp)


def metrics_writer(rows: list[dict]):
    def write(tmp):
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=[k for k in METRICS if not rows or k in rows[0]])
            w.writeheader()
            w.writerows(rows)

    return write


# ----------------------------------------------------------------------------- readers


def read_config(run: Path) -> dict:
    """config.json of a run folder, every field `--resume`, eval and predict use checked."""
    path = Path(run) / "config.json"
    if not Path(run).is_dir():
        raise TrainError(f"{run} is not a run folder: no such folder")
    if not path.is_file():
        raise TrainError(f"{run} is not a run folder (it has no config.json); give the folder "
                         "`archdsl train` wrote, e.g. runs/lenet5-20261122-205400")
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not valid JSON"
        raise TrainError(f"cannot read {path}: {reason}; it was changed or damaged after the "
                         "run wrote it") from None
    problem = _config_problem(saved)
    if problem:
        raise TrainError(f"{path} is damaged or not archdsl's: {problem}")
    if not (Path(run) / saved["spec"]).is_file():
        raise TrainError(f"{run} has lost its copy of the spec, {saved['spec']}; put the spec "
                         "the run was trained with back there")
    return saved


def _config_problem(saved) -> str | None:
    def numbers(v):
        return isinstance(v, list) and v and all(isinstance(x, (int, float)) for x in v)

    if not isinstance(saved, dict):
        return "it holds no settings object"
    checks = [
        ("spec", lambda v: isinstance(v, str) and v and Path(v).name == v and v.endswith(".arch")),
        ("parameters", lambda v: isinstance(v, dict)),
        ("classes", lambda v: isinstance(v, list) and v and all(isinstance(c, str) for c in v)),
        ("input", lambda v: isinstance(v, list) and len(v) == 3
         and all(isinstance(d, int) and d > 0 for d in v)),
        ("normalisation", lambda v: isinstance(v, dict) and numbers(v.get("mean"))
         and numbers(v.get("std"))),
        ("options", lambda v: isinstance(v, dict)),
        ("dataset_arg", lambda v: isinstance(v, str)),
    ]
    for key, ok in checks:
        if key not in saved:
            return f"it has no {key!r}"
        if not ok(saved[key]):
            return f"its {key!r} is not what archdsl train writes"
    return None


def read_resume_state(path: Path) -> dict:
    """resume.pt, read without executing code (weights_only) and checked field by field."""
    import torch

    from ..checkpoints import why_unloadable

    try:
        with warnings.catch_warnings():  # torch's notes on odd pickles: the error says it
            warnings.simplefilter("ignore")
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated, tampered or foreign: one clear message
        raise TrainError(
            f"{path} is damaged or not archdsl's, so the run cannot go on from it "
            f"({why_unloadable(exc)}); nothing in it was run. Its weights may still be "
            f"in last.safetensors. To train the run again from the start, delete {path.name} "
            f"and run `{resume_command(path.parent)}`") from None

    def is_tensor_dict(v):
        return isinstance(v, dict) and all(isinstance(t, torch.Tensor) for t in v.values())

    checks = [
        ("epoch", lambda v: isinstance(v, int) and v >= 0),
        ("rows", lambda v: isinstance(v, list) and all(isinstance(r, dict) for r in v)),
        ("best", lambda v: isinstance(v, (int, float))),
        ("model", is_tensor_dict),
        ("optimizer", lambda v: isinstance(v, dict)),
        ("schedule", lambda v: isinstance(v, dict)),
        ("random", lambda v: isinstance(v, dict)
         and {"python", "numpy", "torch", "loader"} <= set(v)),
    ]
    problem = None
    if not isinstance(state, dict):
        problem = "it holds no run state"
    else:
        problem = next((f"its {key!r} is missing or malformed" for key, ok in checks
                        if key not in state or not ok(state[key])), None)
        if problem is None and "step" in state and not (
                isinstance(state["step"], int) and isinstance(state.get("partial"), dict)):
            problem = "its part-done epoch is malformed"
    if problem is None and not all(torch.isfinite(t).all() for t in state["model"].values()
                                   if t.is_floating_point()):
        problem = "its weights hold NaN or infinite values"
    if problem:
        raise TrainError(f"{path} is not a resume state of archdsl train: {problem}. To train "
                         f"the run again from the start, delete it and run "
                         f"`{resume_command(path.parent)}`")
    return state
