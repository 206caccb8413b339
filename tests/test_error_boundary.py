"""One error boundary (archdsl.cli.guarded): every command, with a failure injected at each
place it writes a file or starts a program, ends with one plain message and a documented
exit code (1 or 2), never a traceback, and leaves no half-written file behind."""

import errno
import os
from pathlib import Path

import pytest
from PIL import Image

from archdsl.cli import main

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5.arch"


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _eacces(*args, **kwargs):
    raise PermissionError(errno.EACCES, "Permission denied")


def _erofs(*args, **kwargs):
    raise OSError(errno.EROFS, "Read-only file system")


def _bug(*args, **kwargs):
    raise ZeroDivisionError("injected")


# where archdsl writes files (every write goes through archdsl/files.py) and what can fail
WRITES = {
    "full disk while writing": ("archdsl.files._finish", _enospc),
    "rename refused": ("archdsl.files.os.replace", _eacces),
    "read-only folder": ("archdsl.files.tempfile.mkstemp", _erofs),
    "a bug while writing": ("archdsl.files._finish", _bug),
}


def _dot_fails(*args, **kwargs):
    import graphviz

    raise graphviz.CalledProcessError(1, ["dot", "-Tsvg"], output=b"", stderr=b"dot: bad")


def _dot_missing(*args, **kwargs):
    import graphviz

    raise graphviz.ExecutableNotFound(["dot"])


PROGRAMS = {
    "dot fails": ("graphviz.Digraph.pipe", _dot_fails),
    "dot missing": ("graphviz.Digraph.pipe", _dot_missing),
    "dot cannot start": ("graphviz.Digraph.pipe", _eacces),
}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for c, colour in (("a", 0), ("b", 255)):
        (root / c).mkdir()
        for i in range(4):
            Image.new("L", (12, 12), colour if i % 2 else 255 - colour).save(root / c / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def trained(images, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "r"
    assert main(["train", str(LENET), str(images), "--epochs", "1", "--out", str(run),
                 "--quiet"]) == 0
    return run


def _commands(tmp: Path, images: Path, run: Path | None):
    return {
        "draw svg": ["draw", str(LENET), "-o", str(tmp / "x.svg")],
        "draw dot": ["draw", str(LENET), "-o", str(tmp / "x.dot")],
        "export python": ["export", str(LENET), "--to", "python", "-o", str(tmp / "x.py")],
        "export torchscript": ["export", str(LENET), "--to", "torchscript", "-o",
                               str(tmp / "x.ts")],
        "train": ["train", str(LENET), str(images), "--epochs", "1", "--quiet", "--out",
                  str(tmp / "run")],
    }


def _one_message(capsys, code: int, command: str) -> str:
    out, err = capsys.readouterr()
    assert code in (1, 2), (code, err)
    assert "Traceback" not in out + err and err.strip(), err
    assert any(line.startswith(f"archdsl {command}") for line in err.splitlines()), err
    return err


def _no_temporaries(folder: Path) -> None:
    from archdsl.files import is_temporary

    left = [p for p in folder.rglob(".*") if p.is_file() and is_temporary(p)]
    assert left == [], left


@pytest.mark.parametrize("failure", sorted(WRITES))
@pytest.mark.parametrize("command", ["draw svg", "draw dot", "export python",
                                     "export torchscript", "train"])
def test_a_failed_write_is_one_message(command, failure, tmp_path, images, monkeypatch, capsys):
    target, fail = WRITES[failure]
    monkeypatch.setattr(target, fail)
    argv = _commands(tmp_path, images, None)[command]
    code = main(argv)
    err = _one_message(capsys, code, argv[0])
    if failure == "a bug while writing":
        assert "internal error: ZeroDivisionError: injected" in err
    else:
        assert ("No space left" in err or "Permission denied" in err
                or "Read-only file system" in err), err
    _no_temporaries(tmp_path)


@pytest.mark.parametrize("failure", sorted(PROGRAMS))
def test_a_failed_program_is_one_message(failure, tmp_path, monkeypatch, capsys):
    target, fail = PROGRAMS[failure]
    monkeypatch.setattr(target, fail)
    code = main(["draw", str(LENET), "-o", str(tmp_path / "x.png")])
    err = _one_message(capsys, code, "draw")
    assert "Graphviz's `dot`" in err and not (tmp_path / "x.png").exists()


def test_a_failed_launch_of_workers_is_one_message(tmp_path, images, monkeypatch, capsys):
    monkeypatch.setattr("torch.distributed.run.run", _eacces)
    code = main(["train", str(LENET), str(images), "--epochs", "1", "--nproc-per-node", "2",
                 "--out", str(tmp_path / "run")])
    _one_message(capsys, code, "train")


@pytest.mark.parametrize("command", ["check", "eval", "predict"])
def test_a_bug_in_a_reading_command_is_one_message(command, trained, images, monkeypatch,
                                                   capsys):
    target = {"check": "archdsl.network.analyse_graph",
              "eval": "archdsl.train.inference.load_run",
              "predict": "archdsl.train.inference.load_run"}[command]
    monkeypatch.setattr(target, _bug)
    argv = {"check": ["check", str(LENET)],
            "eval": ["eval", str(trained), str(images)],
            "predict": ["predict", str(trained), str(images / "a" / "0.png")]}[command]
    err = _one_message(capsys, main(argv), command)
    assert "internal error: ZeroDivisionError: injected" in err


def test_the_traceback_is_there_when_asked_for(monkeypatch):
    monkeypatch.setattr("archdsl.network.analyse_graph", _bug)
    monkeypatch.setenv("ARCHDSL_TRACEBACK", "1")
    with pytest.raises(ZeroDivisionError):
        main(["check", str(LENET)])


def test_draw_refuses_an_unknown_block_name(tmp_path, capsys):
    code = main(["draw", str(ROOT / "specs" / "resnet18.arch"), "-o", str(tmp_path / "x.dot"),
                 "--collapse", "basicc"])
    err = _one_message(capsys, code, "draw")
    assert code == 2 and "did you mean `basic`?" in err and not (tmp_path / "x.dot").exists()


def test_a_name_the_terminal_cannot_show_is_escaped(trained, images, tmp_path, capfd):
    """`PYTHONIOENCODING=utf-8 archdsl predict R $'img\\xff.png' ok.png`: both are classified."""
    import shutil
    import subprocess
    import sys

    odd = os.fsencode(tmp_path) + b"/img\xff.png"
    shutil.copy(images / "a" / "0.png", odd)
    run = subprocess.run([sys.executable, "-m", "archdsl", "predict", os.fsencode(trained), odd,
                          os.fsencode(images / "b" / "1.png")],
                         env={**os.environ, "PYTHONIOENCODING": "utf-8",
                              "PYTHONPATH": str(ROOT)}, capture_output=True)
    out, err = run.stdout.decode("utf-8"), run.stderr.decode("utf-8")
    assert run.returncode == 0, err
    assert "Traceback" not in err and len(out.strip().splitlines()) == 2
    assert "img\\udcff.png:" in out or "img\\xff.png:" in out


def test_every_reported_error_is_one_class_carrying_its_exit_code():
    """Issue 21: one error base. The boundary catches ArchdslError alone (no string matching
    on module names); each error knows its exit status; the training library raises its own
    errors, never one it imports from the command line's modules."""
    import ast
    from pathlib import Path

    from archdsl.checkpoints import CheckpointError, CheckpointMismatch
    from archdsl.command_values import UsageError
    from archdsl.diagnostics import SpecError
    from archdsl.draw import RenderError
    from archdsl.errors import ArchdslError
    from archdsl.export import ExportError
    from archdsl.files import WriteError
    from archdsl.train.config import OptionError
    from archdsl.train.data import DataError
    from archdsl.train.errors import Interrupted, TrainError

    codes = {UsageError: 2, OptionError: 2, ExportError: 2, SpecError: 1, TrainError: 1,
             DataError: 1, CheckpointError: 1, CheckpointMismatch: 1, RenderError: 1,
             Interrupted: 130}
    for cls, code in codes.items():
        assert issubclass(cls, ArchdslError) and cls.exit_code == code, cls
    assert issubclass(WriteError, (OSError, ArchdslError)) and WriteError.exit_code == 1
    root = Path(__file__).resolve().parent.parent / "archdsl"
    cli = "".join(path.read_text() for path in (root / "cli").glob("*.py"))
    assert "sys.modules.get(" not in cli and "_is(exc" not in cli
    for path in (root / "train").glob("*.py"):
        imported = {node.module for node in ast.walk(ast.parse(path.read_text()))
                    if isinstance(node, ast.ImportFrom) and node.module}
        assert not imported & {"command_values", "cli"}, path.name
