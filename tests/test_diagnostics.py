"""Every diagnostic code: a bad spec, the exact line and column, the exit code, no traceback."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from archdsl import SpecError, loads
from archdsl.cli import main

ROOT = Path(__file__).resolve().parent.parent

# (code, spec text, line, column) — the first diagnostic with that code must sit exactly there.
CASES = [
    ("E-SYNTAX", "input 3x32x32\nconv 64 k3,\n", 2, 11),
    ("E-SYNTAX", "input 3x32x32\nresidual< conv 8 k3 p1\n", 2, 22),
    ("E-SYNTAX", "input 3x32x32\nconv 8 k3 >\n", 2, 11),
    ("E-SYNTAX", "input 3x32x32\nlinear \"ten\"\n", 2, 8),
    ("E-PLACEMENT", "input 3x8x8\nblock a(c) {\n  block b(d) { relu }\n  relu\n}\na 1\n", 3, 9),
    ("E-DUPLICATE", "input 3x8x8\nblock a(c) { relu }\nblock a(c) { relu }\na 1\n", 3, 7),
    ("E-DUPLICATE", "input 3x8x8\ninput 3x8x8\nrelu\n", 2, 1),
    ("E-INIT", "init resnet zero_residul\ninput 3x8x8\nrelu\n", 1, 13),
    ("E-NO-INPUT", "conv 8 k3\n", 1, 1),
    ("E-INPUT", "input 32x32\nrelu\n", 1, 1),
    ("E-PARAM", "arch n(c)\ninput 3x8x8\nconv c k3\n", 1, 8),
    ("E-UNKNOWN-LAYER", "input 3x8x8\nconv 8 k3\nrelu; maxpol 2\n", 3, 7),
    ("E-UNKNOWN-ARG", "input 3x8x8\nconv 8 k3 strde=2\n", 2, 11),
    ("E-UNKNOWN-NAME", "input 3x8x8\nconv 8 k3 nobais\n", 2, 11),
    ("E-UNKNOWN-NAME", "input 3x8x8\nconv 8 k3 s=stride\n", 2, 13),
    ("E-ARG-COUNT", "input 3x8x8\nconv 8 9 k3\n", 2, 8),
    ("E-ARG-COUNT", "input 3x8x8\nblock b(c) { conv c k3 }\nb 1 2\n", 3, 5),
    ("E-ARG-MISSING", "input 3x8x8\nconv 8\n", 2, 1),
    ("E-ARG-DUPLICATE", "input 3x8x8\nconv 8 k3 s1 stride=2\n", 2, 14),
    ("E-ARG-TYPE", "input 3x8x8\nconv 8 k3 padding_mode=mirror\n", 2, 11),
    ("E-ARG-TYPE", "input 3x8x8\ndropout true\n", 2, 9),
    ("E-ARG-RANGE", "input 3x8x8\ndropout 1.5\n", 2, 9),
    ("E-ARG-RANGE", "input 3x8x8\nconv 0 k3\n", 2, 6),
    ("E-ARG-RANGE", "input 3x8x8\nmaxpool 2 p2\n", 2, 11),
    ("E-ARG-RANGE", "input 3x8x8\nconv 8 k3 s2 p=same\n", 2, 14),
    ("E-CHANNELS", "arch n(c=64)\ninput 3x8x8\nconv c/3 k3\n", 3, 6),
    ("E-EXPR", "arch n(c=64)\ninput 3x8x8\nconv c/0 k3\n", 3, 8),
    ("E-KERNEL", "input 3x8x8\nconv 8 k3 s2\nconv 8 k3 s2\nconv 8 k3\n", 4, 8),
    ("E-EMPTY", "input 3x4x4\nmaxpool 2\nmaxpool 2\nmaxpool 2\n", 4, 9),
    ("E-RANK", "input 3x8x8\nconv 8 k3\nlinear 10\n", 3, 1),
    ("E-RANK", "input 3x8x8\nflatten\nconv 8 k3\n", 3, 1),
    ("E-GROUPS", "input 6x8x8\nconv 8 k3 g4\n", 2, 11),
    ("E-GROUPS", "input 6x8x8\ngroupnorm 4\n", 2, 11),
    ("E-PADDING", "input 3x4x4\nconv 8 k9 p4 reflect\n", 2, 11),
    ("E-SHAPE", "input 8x8x8\nadd< conv 8 k3 p1 | conv 8 k3 >\n", 2, 21),
    ("E-SHAPE", "input 8x8x8\nresidual< conv 8 k3 s2 p1 | conv 8 k1 >\n", 2, 29),
    ("E-SHAPE", "input 8x8x8\nresidual< conv 8 k3 >\n", 2, 1),
    ("E-CONCAT", "input 8x8x8\nconcat< conv 8 k3 p1 | conv 8 k3 >\n", 2, 24),
    ("E-COMBINATOR", "input 8x8x8\nresidul< relu >\n", 2, 1),
    ("E-COMBINATOR", "input 8x8x8\nconcat< relu >\n", 2, 1),
    ("E-COMBINATOR", "input 8x8x8\nadd< relu |  >\n", 2, 11),
    ("E-RECURSION", "input 8x8x8\nblock a(c) { b c }\nblock b(c) { a c }\na 1\n", 3, 14),
    ("E-TOO-BIG", "input 8x8x8\nrepeat 100000000 { relu }\n", 2, 8),
    ("E-TOO-BIG", "input 8x8x8\nrepeat 99999999999999999999 { relu }\n", 2, 8),
    ("E-TOO-BIG", "input 8x8x8\nblock b(n) { repeat n { relu } }\nrepeat 9 { repeat 9 { b 9999 } }\n",
     3, 8),
    ("E-NESTING", "input 8x8x8\n" + "add< identity | " * 250 + "relu" + " >" * 250 + "\n", 2, None),
    ("E-NESTING", "input 8x8x8\n" + "add< identity | " * 60 + "relu" + " >" * 60 + "\n", 2, None),
    ("E-NESTING", "input 8x8x8\nconv " + "+".join(["1"] * 400) + " k3\n", 2, 6),
    ("W-NO-NONLINEARITY", "input 3x8x8\nconv 8 k3 p1\nconv 8 k3 p1\nrelu\n", 3, 1),
    ("W-FINAL-ACTIVATION", "input 3x8x8\nflatten\nlinear 10\nrelu\n", 4, 1),
    ("W-SOFTMAX-LOSS", "input 3x8x8\nflatten\nlinear 10\nsoftmax\n", 4, 1),
    ("W-HIDDEN-NAME", "input 3x8x8\ndef max(a, b) = a\nconv max(4, 8) k1\n", 2, 5),
    ("E-DUPLICATE", "arch a(c=4, c=16)\ninput 3x8x8\nconv c k1\n", 1, 13),
    ("W-BIAS-BEFORE-BN", "input 3x8x8\nconv 8 k3\nbn\nrelu\n", 2, 1),
    ("W-STRIDE-DROP", "input 3x9x9\nconv 8 k2 s2\nrelu\n", 2, 1),
    ("W-HUGE", "input 3x8x8\nrelu\nconv 99999999999 k3\n", 3, 1),
    ("W-HUGE", "input 3x100000x100000\nconv 8 k3\n", 2, 1),
    ("W-DEEP-PLAIN", "input 3x8x8\nrepeat 21 { conv 8 k3 p1; relu }\n", 2, 13),
]


def _first(diagnostics, code):
    found = [d for d in diagnostics if d.code == code]
    assert found, f"no {code} among {[(d.code, d.message) for d in diagnostics]}"
    return found[0]


@pytest.mark.parametrize("code,text,line,column", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_diagnostic_is_located(code, text, line, column, tmp_path, capsys):
    from archdsl.network import analyse

    _, diagnostics = analyse(text, "bad.arch")
    d = _first(diagnostics, code)
    assert d.span is not None and d.span.file == "bad.arch"
    assert d.span.line == line
    if column is not None:
        assert d.span.column == column
    spec = tmp_path / "bad.arch"
    spec.write_text(text)
    args = [str(spec)] + (["--strict"] if code.startswith("W-") else [])
    assert main(["check", *args]) == 1
    err = capsys.readouterr().err
    assert f"bad.arch:{line}:" in err and f"[{code}]" in err
    assert "Traceback" not in err


def test_every_code_in_the_source_has_a_case():
    source = "".join(p.read_text() for p in (ROOT / "archdsl").rglob("*.py"))
    codes = set(re.findall(r'"([EW]-[A-Z-]+[A-Z])"', source))
    codes -= {"E-INTERNAL", "E-FILE", "E-API"}  # a bug guard, and the API's own (test_hostile_api)
    assert codes <= {c[0] for c in CASES}, codes - {c[0] for c in CASES}


def test_language_md_error_example_renders_exactly(capsys):
    path = ROOT / "tests" / "fixtures" / "mynet.arch"
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    expected = (
        f"{path}:9:60: error[E-SHAPE]: add needs equal shapes: body gives 128x28x28, "
        "shortcut gives 128x56x56\n"
        "  |\n"
        "9 |   residual< conv c k3 s=2 p1; bn; relu; conv c k3 p1; bn | conv c k1; bn >\n"
        "  |                                                            ^^^^^^^^^ keeps 56x56\n"
        "  = hint: give the shortcut the body's stride: `conv c k1 s=2`\n")
    assert expected in err


def test_all_errors_of_a_file_are_reported():
    text = ("input 3x32x32\n"
            "conv 8 k3 strde=2\n"      # unknown keyword
            "relu; maxpol 2\n"         # unknown layer
            "conv 8 k3 g3\n"           # groups do not divide 8... input is 8 after the first conv
            "dropout 2\n")             # out of range
    with pytest.raises(SpecError) as info:
        loads(text, "many.arch")
    codes = [d.code for d in info.value.errors]
    assert codes == ["E-UNKNOWN-ARG", "E-UNKNOWN-LAYER", "E-ARG-RANGE"], codes
    lines = [d.span.line for d in info.value.errors]
    assert lines == [2, 3, 5]


def test_several_syntax_errors_are_reported():
    text = "input 3x8x8\nconv 8 k3,\nrelu\nlinear 'x'\n"
    with pytest.raises(SpecError) as info:
        loads(text)
    assert [(d.code, d.span.line) for d in info.value.errors] == [("E-SYNTAX", 2), ("E-SYNTAX", 4)]


def test_did_you_mean_hints():
    cases = {
        "input 3x8x8\nmaxpol 2\n": "`maxpool`",
        "input 3x8x8\nconv 8 k3 strid=2\n": "`stride`",
        "input 3x8x8\nconv 8 k3 nobais\n": "`nobias`",
        "arch n(width=8)\ninput 3x8x8\nconv widht k3\n": "`width`",
        "input 3x8x8\nconcatt< relu | relu >\n": "`concat`",
    }
    for text, expected in cases.items():
        with pytest.raises(SpecError) as info:
            loads(text)
        hint = info.value.errors[0].hint or ""
        assert "did you mean" in hint and expected in hint, (text, hint)


def test_no_traceback_and_exit_codes_in_a_real_process(tmp_path):
    bad = tmp_path / "bad.arch"
    bad.write_text("input 3x8x8\nconv 8 k9\n")
    run = subprocess.run([sys.executable, "-m", "archdsl", "check", str(bad)],
                         capture_output=True, text=True)
    assert run.returncode == 1
    assert "E-KERNEL" in run.stderr and "Traceback" not in run.stderr + run.stdout
    missing = subprocess.run([sys.executable, "-m", "archdsl", "check", str(tmp_path / "no.arch")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_a_runaway_repeat_is_refused_before_it_is_expanded():
    from archdsl.network import analyse

    _, diagnostics = analyse("input 8x8x8\nblock b(n) { repeat n { relu } }\n"
                             "repeat 1000 { b 1000 }\n")
    assert [d.code for d in diagnostics] == ["E-TOO-BIG"]
    # the estimate counts the million layers without making them
    assert "about 1,000,000)" in diagnostics[0].message


def test_a_parameter_without_a_value_is_the_only_error():
    # the layers that read it are not blamed for a value that was never given
    with pytest.raises(SpecError) as exc:
        loads("arch x(c)\ninput 3x8x8\nconv c k3\nlinear c\n", "x.arch")
    assert [(d.code, d.span.line, d.span.column) for d in exc.value.diagnostics] == \
        [("E-PARAM", 1, 8)]
