"""The Python API: load, loads, Network, SpecError — and no other exception for any text."""

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archdsl
from archdsl import Network, SpecError

SPECS = Path(__file__).resolve().parent.parent / "specs"


def test_load_returns_a_checked_network():
    net = archdsl.load(SPECS / "resnet18.arch", num_classes=10)
    assert isinstance(net, Network)
    assert net.output_shape == (10,) and net.input_shape == (3, 224, 224)
    assert net.params == net.trainable_params == 11_689_512 - 513_000 + 5_130
    assert net.diagnostics == []
    assert "resnet18" in net.summary() and len(net.graph) > 50
    assert "11,181,642 params" in repr(net)


def test_spec_error_carries_every_diagnostic_and_renders():
    with pytest.raises(SpecError) as info:
        archdsl.loads("input 3x8x8\nconv 8 k9\nmaxpol 2\n", "x.arch")
    err = info.value
    assert [d.code for d in err.errors] == ["E-KERNEL", "E-UNKNOWN-LAYER"]
    assert str(err).startswith("x.arch:2:8: error[E-KERNEL]")
    assert "(and 1 more error)" in str(err)
    assert "^^" in err.render()


def test_unreadable_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError) as info:
        archdsl.load(tmp_path / "missing.arch")
    assert info.value.errors[0].code == "E-FILE"


def test_the_check_path_never_imports_torch():
    import subprocess

    code = ("import sys, archdsl; archdsl.load('specs/resnet18.arch').summary(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=SPECS.parent, check=True).stdout
    assert out.strip() == "[]"


TOKENS = ["conv", "64", "k3", "s2", "p1", "relu", "bn", ";", "\n", "residual<", "concat<", "|",
          ">", "{", "}", "block", "b(c)", "repeat", "2", "x", "=", "c", "-", "/", "0", "(", ")",
          "input", "3x8x8", "linear", "flatten", "maxpool", "same", "g=c", "arch", "n(c=3)",
          "#", "\r\n", "\x00", "é", "1e309", "99999999999999999999", "adaptiveavgpool", "mul<"]


@settings(max_examples=300)
@given(st.lists(st.sampled_from(TOKENS), max_size=30).map(" ".join))
def test_no_exception_but_spec_error_for_token_soup(text):
    try:
        archdsl.loads(text)
    except SpecError as exc:
        assert exc.diagnostics and all(d.code != "E-INTERNAL" for d in exc.diagnostics), \
            exc.diagnostics


@settings(max_examples=200)
@given(st.text(max_size=60))
def test_no_exception_but_spec_error_for_any_text(text):
    try:
        archdsl.loads("input 3x8x8\n" + text)
    except SpecError as exc:
        assert all(d.code != "E-INTERNAL" for d in exc.diagnostics), exc.diagnostics
