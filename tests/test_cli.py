"""`archdsl check`: the table, JSON, options and exit codes."""

import json
from pathlib import Path

import pytest

from archdsl.cli import main

SPECS = Path(__file__).resolve().parent.parent / "specs"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


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


def test_a_block_cannot_take_a_layer_kinds_name(tmp_path, capsys):
    spec = tmp_path / "shadow.arch"
    spec.write_text("input 3x8x8\nblock conv(c) { relu }\nconv 4\n")
    code, _, err = run(capsys, "check", str(spec))
    assert code == 1 and "shadow.arch:2:7: error[E-DUPLICATE]" in err
