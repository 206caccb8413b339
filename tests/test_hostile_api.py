"""Hostile input to the Python API and the files it reads (issue 16's red-team cases that
live outside training): every one gets a SpecError or a clear OSError, never another
exception, and what archdsl writes always compiles."""

import copy
import pickle
from pathlib import Path

import pytest

import archdsl
from archdsl.network import MAX_SPEC_BYTES, read_spec_data

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5.arch"


@pytest.mark.parametrize("text", [None, 42, 3.5, ["input 3x8x8"], object()])
def test_loads_refuses_what_is_not_text(text):
    with pytest.raises(archdsl.SpecError) as err:
        archdsl.loads(text)
    assert err.value.diagnostics[0].code == "E-API"
    assert type(text).__name__ in err.value.diagnostics[0].message


def test_loads_reads_bytes_as_utf8():
    net = archdsl.loads(LENET.read_bytes(), "lenet5.arch")
    assert net.params == 61_706


@pytest.mark.parametrize("shape", [(1.5, 32, 32), (None, 32, 32), (True, 32, 32), "1xx32",
                                   "a", 7, {"c": 1}])
def test_a_bad_input_shape_is_a_spec_error(shape):
    with pytest.raises(archdsl.SpecError) as err:
        archdsl.loads(LENET.read_text(), input_shape=shape)
    assert err.value.diagnostics[0].code == "E-INPUT"


@pytest.mark.parametrize("shape", [(1, 32, 32), [1, 32, 32], "1x32x32"])
def test_an_input_shape_can_be_a_tuple_a_list_or_text(shape):
    assert archdsl.loads(LENET.read_text(), input_shape=shape).input_shape == (1, 32, 32)


def test_a_huge_spec_text_is_refused_before_parsing():
    with pytest.raises(archdsl.SpecError) as err:
        archdsl.loads("input 3x8x8\n" + " " * (MAX_SPEC_BYTES + 1))
    assert err.value.diagnostics[0].code == "E-FILE"
    assert "at most 1.0 MiB" in err.value.diagnostics[0].message


def test_an_endless_file_is_read_only_up_to_the_limit():
    with pytest.raises(OSError) as err:
        read_spec_data(Path("/dev/zero"))
    assert "larger than 1.0 MiB" in str(err.value)
    with pytest.raises(archdsl.SpecError) as err:
        archdsl.load("/dev/zero")
    assert err.value.diagnostics[0].code == "E-FILE"


def test_check_of_dev_zero_is_a_usage_error(capsys):
    from archdsl.cli import main

    assert main(["check", "/dev/zero"]) == 2
    err = capsys.readouterr().err
    assert "cannot read /dev/zero: it is larger than 1.0 MiB" in err and "Traceback" not in err


def test_a_network_pickles_and_deep_copies():
    net = archdsl.load(ROOT / "specs" / "resnet18.arch")
    for other in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        assert other.params == net.params and other.summary() == net.summary()
        assert other.graph.layer("conv1").kind is net.graph.layer("conv1").kind  # the registry's
        assert other.graph.layer("conv1").args == net.graph.layer("conv1").args


@pytest.mark.parametrize("stem", ["1net", "class", "None", "net-2", "ünïcode", "_"])
def test_exported_source_always_compiles(tmp_path, stem):
    from archdsl.codegen import to_python

    spec = tmp_path / f"{stem}.arch"
    spec.write_text("input 1x8x8\nconv 4 k3 p1; relu; flatten; linear 10\n")
    source = to_python(archdsl.load(spec))
    compile(source, str(spec), "exec")  # raises SyntaxError on a bad class name
    scope: dict = {"__name__": "exported"}
    exec(compile(source, str(spec), "exec"), scope)
    import torch

    modules = [v for v in scope.values() if isinstance(v, type)
               and issubclass(v, torch.nn.Module) and v.__module__ == "exported"]
    network = modules[-1]  # the file defines the network's class last
    assert f"`{network.__name__}()` builds the network" in source
    assert network()(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_a_long_name_is_not_echoed_whole():
    name = "a" * 500_000
    with pytest.raises(archdsl.SpecError) as err:
        archdsl.loads(f"input 3x8x8\nrelu; {name} 3; relu\n")
    rendered = err.value.render()
    assert len(rendered) < 600 and "…" in rendered
    assert err.value.diagnostics[0].code == "E-UNKNOWN-LAYER"


def test_a_long_line_is_shown_around_the_culprit():
    with pytest.raises(archdsl.SpecError) as err:
        archdsl.loads("input 3x8x8\n" + "relu; " * 40 + "conv 3 k3 bogus; relu\n")
    excerpt, carets = err.value.render().split("\n")[2:4]
    assert excerpt.startswith("2 | …") and excerpt.endswith("conv 3 k3 bogus; relu")
    assert excerpt[carets.index("^"):carets.index("^") + 5] == "bogus"


@pytest.mark.parametrize("special", ["fifo", "symlink", "folder", "/dev/full", "/dev/null"])
def test_only_regular_files_are_replaced(tmp_path, special):
    import os

    from archdsl.files import WriteError, atomic_write_bytes

    target = {"fifo": tmp_path / "f", "symlink": tmp_path / "l", "folder": tmp_path / "d"}.get(
        special, Path(special))
    if special == "fifo":
        os.mkfifo(target)
    elif special == "symlink":
        (tmp_path / "real").write_text("mine")
        target.symlink_to(tmp_path / "real")
    elif special == "folder":
        target.mkdir()
    before = os.lstat(target).st_mode
    with pytest.raises(WriteError) as err:
        atomic_write_bytes(target, b"x")
    assert "not a regular file" in str(err.value)
    assert os.lstat(target).st_mode == before
    if special == "symlink":
        assert (tmp_path / "real").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_an_unwritable_place_is_a_write_error():
    from archdsl.files import WriteError, atomic_write_bytes

    with pytest.raises(WriteError) as err:
        atomic_write_bytes(Path("/proc/x.py"), b"x")
    assert str(err.value).startswith("cannot write /proc/x.py:")


def _fake_dot(tmp_path, body: str) -> dict:
    import os

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    dot = bin_dir / "dot"
    dot.write_text("#!/bin/sh\n" + body + "\n")
    dot.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


@pytest.mark.parametrize("body,said", [
    ("echo 'Format: \"png\" not recognized' >&2; exit 1", 'failed (exit 1): Format: "png" not'),
    ("kill -SEGV $$", "was killed by SIGSEGV"),
])
def test_a_failing_dot_is_a_render_error(tmp_path, monkeypatch, body, said):
    from archdsl.draw import RenderError, render, to_dot

    env = _fake_dot(tmp_path, body)
    monkeypatch.setenv("PATH", env["PATH"])
    dot = to_dot(archdsl.load(LENET).graph)
    with pytest.raises(RenderError) as err:
        render(dot, "png")
    assert said in str(err.value) and "-o NAME.dot" in str(err.value)


def test_export_refuses_an_example_batch_larger_than_memory(tmp_path, monkeypatch):
    from archdsl import export as export_module
    from archdsl.export import ExportError, export

    monkeypatch.setattr("archdsl.memory.memory_size", lambda: 64 << 20)
    net = archdsl.load(LENET, input_shape=(1, 2000, 2000))
    with pytest.raises(ExportError) as err:
        export(net, "torchscript", tmp_path / "x.ts")
    assert "example batch of 2 1x2000x2000 inputs" in str(err.value)
    assert "64.0 MiB" in str(err.value) and not (tmp_path / "x.ts").exists()
    del export_module
