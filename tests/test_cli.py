"""`archdsl check`: the table, JSON, options and exit codes."""

import json
from pathlib import Path

import pytest

from archdsl.cli import main
from helpers import run_cli

SPECS = Path(__file__).resolve().parent.parent / "specs"


run = run_cli


def test_table_lists_every_layer_with_totals(capsys):
    code, out, err = run(capsys, "check", str(SPECS / "alexnet.arch"))
    assert code == 0 and err == ""
    assert "alexnet: 3x224x224 -> 1000" in out
    row = next(line for line in out.splitlines() if line.startswith("conv1 "))
    assert row.split() == ["conv1", "conv", "64x55x55", "23,296", "70,276,800", "11", "/4"]
    assert "61,100,840" in out and "714,188,480" in out and "MiB" in out


def test_table_groups_rows_by_block(capsys):
    code, out, _ = run(capsys, "check", str(SPECS / "resnet18.arch"))
    lines = out.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("basic 128 s=2 ")))
    block = lines[header + 1:header + 11]
    assert all(line.startswith("  ") for line in block)
    assert any("shortcut.conv1 (inserted)" in line for line in block)


def test_set_and_input_override(capsys):
    code, out, _ = run(capsys, "check", str(SPECS / "alexnet.arch"), "--set", "num_classes=10",
                       "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["output"] == [10] and doc["parameters"] == {"num_classes": 10}
    code, out, _ = run(capsys, "check", str(SPECS / "resnet18.arch"), "--input", "3x64x64",
                       "--format", "json")
    assert json.loads(out)["input"] == [3, 64, 64]


def test_json_schema(capsys):
    code, out, _ = run(capsys, "check", str(SPECS / "resnet18.arch"), "--format", "json")
    doc = json.loads(out)
    for key in ("arch", "input", "output", "params", "trainable_params", "macs", "layers",
                "diagnostics"):
        assert key in doc
    assert doc["arch"] == "resnet18" and doc["params"] == 11_689_512
    layer = doc["layers"][0]
    assert {"name", "op", "line", "output", "params", "macs", "rf"} <= set(layer)
    assert layer["output"] == [64, 112, 112] and layer["rf"] == {"size": [7, 7], "stride": [2, 2]}
    assert doc["diagnostics"] == []


def test_json_of_a_broken_spec_still_prints_and_exits_1(tmp_path, capsys):
    bad = tmp_path / "bad.arch"
    bad.write_text("input 3x8x8\nconv 8 k9\nflatten\nlinear 10; relu\n")
    code, out, err = run(capsys, "check", str(bad), "--format", "json")
    doc = json.loads(out)
    assert code == 1 and err == ""
    (d,) = doc["diagnostics"]
    assert d["severity"] == "error" and d["code"] == "E-KERNEL"
    assert (d["file"], d["line"], d["column"]) == (str(bad), 2, 8) and d["hint"]


def test_a_spec_with_errors_shows_its_table_up_to_the_first_one(tmp_path, capsys):
    """Issue 25: the sizes shrinking up to the layer that failed, then the error; no totals
    (they would count part of the network)."""
    spec = tmp_path / "shrinks.arch"
    spec.write_text("input 3x32x32\nconv 16 k3 p1\nmaxpool 2\nconv 32 k3 p1\nmaxpool 2\n"
                    "conv 64 k5\nconv 64 k5\n")
    code, out, err = run_cli(capsys, "check", spec)
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"shrinks: 3x32x32 -> ?   ({spec}; checked up to the first error)"
    rows = [line.split()[:3] for line in lines[3:-1]]
    assert rows == [["input", "3x32x32"], ["conv1", "conv", "16x32x32"],
                    ["maxpool1", "maxpool", "16x16x16"], ["conv2", "conv", "32x16x16"],
                    ["maxpool2", "maxpool", "32x8x8"], ["conv3", "conv", "64x4x4"]]
    assert not any(line.startswith(("params", "MACs", "memory")) for line in lines)
    assert "error[E-KERNEL]" in err and "input is only 4x4" in err


def test_strict_makes_warnings_fail(tmp_path, capsys):
    spec = tmp_path / "warn.arch"
    spec.write_text("input 3x8x8\nconv 8 k3 p1; bn; relu\n")
    code, out, err = run(capsys, "check", str(spec))
    assert code == 0 and "warning[W-BIAS-BEFORE-BN]" in err and "1 warning" in err
    code, _, _ = run(capsys, "check", str(spec), "--strict")
    assert code == 1


def test_several_files_exit_1_if_any_fails(tmp_path, capsys):
    bad = tmp_path / "bad.arch"
    bad.write_text("input 3x8x8\nconv 8 k9\n")
    code, out, err = run(capsys, "check", str(SPECS / "alexnet.arch"), str(bad))
    assert code == 1 and "alexnet" in out and "E-KERNEL" in err
    code, out, _ = run(capsys, "check", str(SPECS / "alexnet.arch"), str(bad), "--format", "json")
    docs = json.loads(out)
    assert [d["arch"] for d in docs] == ["alexnet", None]


@pytest.mark.parametrize("argv", [
    ["check"],
    ["check", "specs/alexnet.arch", "--set", "num_classes"],
    ["check", "specs/alexnet.arch", "--input", "3x224"],
    ["check", "specs/alexnet.arch", "--input", "axbxc"],
    ["check", "specs/alexnet.arch", "--format", "yaml"],
    ["check", "no/such/file.arch"],
    ["frobnicate"],
])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(argv))
    assert info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_folder_instead_of_file_is_a_usage_error(tmp_path, capsys):
    code, _, err = run(capsys, "check", str(tmp_path))
    assert code == 2 and "folder" in err and "Traceback" not in err


def test_crlf_file_checks_like_lf(tmp_path, capsys):
    text = (SPECS / "resnet18.arch").read_text()
    crlf = tmp_path / "crlf.arch"
    crlf.write_bytes(text.replace("\n", "\r\n").encode())
    code, out, _ = run(capsys, "check", str(crlf), "--format", "json")
    assert code == 0 and json.loads(out)["params"] == 11_689_512


def test_an_unreadable_file_does_not_stop_the_others(tmp_path, capsys):
    code, out, err = run(capsys, "check", str(SPECS / "lenet5.arch"), str(tmp_path / "none.arch"),
                         "--format", "json")
    docs = json.loads(out)
    assert code == 2 and "cannot read" in err
    assert docs[0]["arch"] == "lenet5" and docs[1]["diagnostics"][0]["code"] == "E-FILE"


def test_a_block_named_like_a_kind_shadows_it_in_its_file(tmp_path, capsys):
    spec = tmp_path / "shadow.arch"
    spec.write_text("input 3x8x8\nblock conv(c) { relu }\nconv 4\n")
    code, out, err = run(capsys, "check", str(spec))
    assert code == 0 and "shadow.arch:2:7: warning[W-SHADOW]" in err
    assert "relu1" in out and "params                     0" in out  # the block, not a conv


# ----------------------------------------------------------------------------- issue 13


def _stdin(monkeypatch, text):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))


def test_a_spec_from_standard_input_is_named_stdin(monkeypatch, capsys, tmp_path):
    bad = "input 3x8x8\nconv 4 k9\n"
    _stdin(monkeypatch, bad)
    code, _, err = run(capsys, "check", "-")
    assert code == 1 and err.startswith("<stdin>:2:8: error[E-KERNEL]: the 9x9 kernel is larger")
    assert "<stdin>: 1 error, 0 warnings" in err
    good = "input 3x8x8\nconv 4 k3\n"
    _stdin(monkeypatch, good)
    code, out, _ = run(capsys, "check", "-", "-")  # read once, checked twice
    assert code == 0 and out.count("3x8x8 -> 4x6x6   (<stdin>)") == 2
    _stdin(monkeypatch, good)
    assert run(capsys, "draw", "-", "-o", tmp_path / "s.dot")[0] == 0
    assert (tmp_path / "s.dot").read_text().startswith("// archdsl draw: <stdin>")
    _stdin(monkeypatch, good)
    assert run(capsys, "explain", "-", "conv1")[1].startswith("conv1  (conv, line 2: conv 4 k3)")
    _stdin(monkeypatch, good)
    assert run(capsys, "export", "-", "--to", "python") == (
        2, "", "archdsl export: error: the spec comes from standard input: name the output "
               "with -o OUT\n")
    _stdin(monkeypatch, good)
    assert run(capsys, "draw", "-") == (
        2, "", "archdsl draw: error: the spec comes from standard input: name the picture "
               "with -o OUT\n")


def test_draw_collapse_takes_names_and_leaves_file_alone(tmp_path, capsys):
    out = tmp_path / "v.dot"
    assert run(capsys, "draw", "--collapse", "stage", "specs/vgg16.arch", "-o", out)[0] == 0
    assert out.read_text().count('label="stage(c=') == 5
    assert run(capsys, "draw", "specs/resnet20.arch", "--collapse", "basic,stage", "-o",
               out)[0] == 0
    assert run(capsys, "draw", "specs/resnet20.arch", "--collapse", "basic", "--collapse",
               "stage", "-o", out)[0] == 0
    assert out.read_text().count('label="stage(c=') == 3
    assert run(capsys, "draw", "--collapse", "stgae", "specs/vgg16.arch", "-o", out) == (
        2, "", "archdsl draw: error: --collapse stgae: specs/vgg16.arch calls no block named "
               "`stgae`; did you mean `stage`?\n")
    assert run(capsys, "draw", "specs/lenet5.arch", "--collapse", "x", "-o", out)[2] == (
        "archdsl draw: error: --collapse x: specs/lenet5.arch calls no block named `x`; it "
        "calls no blocks\n")
    assert run(capsys, "draw", "specs/vgg16.arch", "--collapse", "all,stage", "-o", out)[2] == (
        "archdsl draw: error: --collapse all stands alone; it cannot be mixed with other "
        "values\n")


def test_drawing_twice_to_the_same_png_or_pdf_needs_no_force(tmp_path, capsys):
    for name in ("r.png", "r.pdf"):
        out = tmp_path / name
        for _ in range(2):
            assert run(capsys, "draw", "specs/lenet5.arch", "-o", out)[:2] == (0, f"wrote {out}\n")
        data = out.read_bytes()
        if name.endswith(".png"):  # a tEXt chunk right after IHDR, with its CRC
            import zlib

            assert data[33:37] == (len(b"Software\0archdsl draw: specs/lenet5.arch"))\
                .to_bytes(4, "big") and data[37:45] == b"tEXtSoft"
            body = data[37:37 + 4 + int.from_bytes(data[33:37], "big")]
            assert data[37 + len(body):41 + len(body)] == zlib.crc32(body).to_bytes(4, "big")
        else:
            assert b"\n% archdsl draw: specs/lenet5.arch\nstartxref\n" in data[-200:]
        other = tmp_path / ("other" + out.suffix)
        other.write_bytes(data.replace(b"archdsl draw", b"someone else"))
        code, _, err = run(capsys, "draw", "specs/lenet5.arch", "-o", other)
        assert code == 2 and "is not an archdsl drawing" in err


def test_explain_takes_set_and_input(capsys):
    code, out, _ = run(capsys, "explain", "specs/lenet5.arch", "conv1", "--input", "1x28x28")
    assert code == 0 and out.splitlines()[1] == "  1x28x28 -> 6x24x24"
    code, out, _ = run(capsys, "explain", "specs/lenet5.arch", "linear3", "--set",
                       "num_classes=7")
    assert code == 0 and out.splitlines()[1] == "  84 -> 7"
    assert run(capsys, "explain", "specs/lenet5.arch", "--input", "3x2")[2] == (
        "archdsl explain: error: --input takes CxHxW with sizes of at least 1 (e.g. 3x32x32), "
        "got '3x2'\n")


# ----------------------------------------------------------------------------- output files


def test_a_folder_is_never_an_output_file(tmp_path, capsys):
    (tmp_path / "pics.dot").mkdir()
    assert run(capsys, "draw", "specs/lenet5.arch", "-o", tmp_path / "pics.dot") == (
        2, "", f"archdsl draw: error: {tmp_path / 'pics.dot'} is a folder; give -o a file name "
               f"such as {tmp_path / 'pics.dot' / 'net.svg'}\n")
    assert run(capsys, "export", "specs/lenet5.arch", "--to", "python", "-o",
               tmp_path / "pics.dot")[2] == (
        f"archdsl export: error: {tmp_path / 'pics.dot'} is a folder; give -o a file name such "
        f"as {tmp_path / 'pics.dot' / 'net.py'}\n")


def test_the_output_rule_replaces_only_what_archdsl_wrote_or_with_force(tmp_path):
    from archdsl.errors import UsageError
    from archdsl.output_files import writable_output

    def ours(path):
        return path.read_text() == "written by archdsl"

    mine, theirs = tmp_path / "mine.csv", tmp_path / "ours.csv"
    mine.write_text("notes")
    theirs.write_text("written by archdsl")
    writable_output(tmp_path / "new.csv", "--csv", False)
    writable_output(mine, "--csv", True)
    writable_output(theirs, "--csv", False, ours=ours, kind="an archdsl table")
    with pytest.raises(UsageError) as refused:
        writable_output(mine, "--csv", False, ours=ours, kind="an archdsl table")
    assert str(refused.value) == (f"{mine} exists and is not an archdsl table; choose another "
                                  "--csv, or add --force to replace it")
    with pytest.raises(UsageError, match="is a folder; give --csv a file name$"):
        writable_output(tmp_path, "--csv", True)


def test_checking_imports_neither_torch_nor_another_command():
    """`archdsl check` loads what it needs alone: train's options are declared only when
    `archdsl train` is parsed (or its help shown), and a command's library only when it runs."""
    import subprocess
    import sys

    code = ("import sys; from archdsl.cli import main; main(['check', 'specs/lenet5.arch']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or "
            "m.startswith(('archdsl.train', 'archdsl.fmt', 'archdsl.timing', 'archdsl.lsp'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=SPECS.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
