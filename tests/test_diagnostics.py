"""Diagnostics: every code on a bad spec, at the exact line and column, with its exit code and
no traceback; and what they teach at the call site (issue 13): the chain of block calls behind
an error, flags given to a block, a missing `;`, an unclosed `}`, a wrong `--set`, input sizes
written out, words held by parameters, and where the drawing marks an error."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from archdsl import SpecError, loads
from archdsl.cli import main
from archdsl.diagnostics import did_you_mean
from archdsl.draw import to_dot
from archdsl.expand import Word
from archdsl.network import analyse, analyse_graph

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
    ("E-ARG-COUNT", "input 3x8x8\nconv 8 9 k3\n", 2, 6),  # at `8`, nn.Conv2d's in_channels
    ("E-ARG-COUNT", "input 3x8x8\nblock b(c) { conv c k3 }\nb 1 2\n", 3, 5),
    ("E-ARG-MISSING", "input 3x8x8\nconv 8\n", 2, 1),
    ("E-ARG-DUPLICATE", "input 3x8x8\nconv 8 k3 s1 stride=2\n", 2, 14),
    ("E-ARG-TYPE", "input 3x8x8\nconv 8 k3 padding_mode=mirror\n", 2, 11),
    ("E-ARG-TYPE", "input 3x8x8\ndropout true\n", 2, 9),
    ("E-ARG-RANGE", "input 3x8x8\ndropout 1.5\n", 2, 9),
    ("E-ARG-RANGE", "input 3x8x8\nconv 0 k3\n", 2, 6),
    ("E-ARG-RANGE", "input 3x8x8\nmaxpool 2 p2\n", 2, 11),
    ("E-ARG-RANGE", "input 3x8x8\nmaxpool 3 s2 same ceil\n", 2, 19),
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
    ("W-CHANNELS-LAST", "input 32x32x3\nconv 8 k1\nrelu\n", 1, 1),
    ("W-UNUSED", "input 3x8x8\nconv 8 k1 -> a\nrelu\n", 2, 14),
    ("W-UNUSED", "input 3x8x8\nconv 8 k1 -> a\nconv 4 k1\na; relu\n", 3, 1),
    ("W-SHADOW", "input 3x8x8\nblock shuffle(c) { conv c k1 }\nshuffle 8\n", 2, 7),
    ("E-ARITY", "input 3x8x8\nconv 8 k1 -> a\nconv 8 k1 -> b\na, b; relu\n", 4, 7),
    ("E-ARITY", "input 3x8x8\nconv 8 k1 -> a, b\n", 2, 14),
    ("E-UNKNOWN-NAME", "input 3x8x8\nconv 8 k1\nb; relu\nconv 8 k1 -> b\n", 3, 1),
    ("E-DUPLICATE", "input 3x8x8\nconv 8 k1 -> a\nrelu -> a\n", 3, 9),
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
    """The error of docs/language.md, with the block call that caused it, as text and JSON."""
    path = ROOT / "tests" / "fixtures" / "mynet.arch"
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    expected = (
        f"{path}:9:60: error[E-SHAPE]: add needs equal shapes: body gives 128x28x28, "
        "shortcut gives 128x56x56\n"
        "  |\n"
        "9 |   residual< conv c k3 s=2 p1; bn; relu; conv c k3 p1; bn | conv c k1; bn >\n"
        "  |                                                            ^^^^^^^^^ keeps 56x56\n"
        "  = hint: give the shortcut the body's stride: `conv c k1 s=2`\n"
        f"{path}:11:1: note: in block `down`, called here\n"
        "   |\n"
        "11 | down 128\n"
        "   | ^^^^^^^^\n")
    assert expected in err
    assert main(["check", str(path), "--format", "json"]) == 1
    d = json.loads(capsys.readouterr().out)["diagnostics"][0]
    assert d["notes"] == [{"message": "in block `down`, called here", "file": str(path),
                           "line": 11, "column": 1, "end_line": 11, "end_column": 9}]


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


# ----------------------------------------------------------------------------- what they teach


def check(text, **params):
    """The diagnostics of `text` (file `t.arch`) as (line, column, code, message, hint)."""
    _, diagnostics = analyse(text, "t.arch", params)
    return [(d.span.line if d.span else None, d.span.column if d.span else None, d.code,
             d.message, d.hint) for d in diagnostics]


def only(text, **params):
    _, diagnostics = analyse(text, "t.arch", params)
    assert len(diagnostics) == 1, diagnostics
    return diagnostics[0]


# -- 1. the chain of calls, and flags given to a block ---------------------------------------

BASIC = "input 3x32x32\nblock basic(c, s=1) { conv c k3 s=s p1 }\n"


def test_a_flag_given_to_a_block_is_refused_at_the_call():
    assert check(BASIC + "basic 64 s2\n") == [
        (3, 10, "E-UNKNOWN-NAME", "`s2` looks like a flag, but block `basic` takes no flags",
         "set its parameter `s` with a keyword: `s=2`")]
    assert check("input 3x32x32\nblock stage(c, n) { repeat n { conv c k3 p1; relu } }\n"
                 "stage 128 n2\n") == [
        (3, 11, "E-UNKNOWN-NAME", "`n2` looks like a flag, but block `stage` takes no flags",
         "set its parameter `n` with a keyword: `n=2`")]
    assert check(BASIC + "basic 64 s=2\n") == []


def test_an_error_inside_a_block_names_the_call_that_caused_it():
    d = only(BASIC + "basic 64 s=stride\n")  # a word passed on, used as a number in the body
    assert (d.span.line, d.span.column, d.code, d.message) == (
        2, 35, "E-UNKNOWN-NAME", "the parameter `s` holds the word `stride`, but conv stride "
        "takes a number")
    assert [(n.message, n.span.line, n.span.column) for n in d.notes] == [
        ("in block `basic`, called here", 3, 1)]
    d = only("input 3x4x4\nblock down(c) { maxpool 3; maxpool 3 }\nrelu\ndown 8\n")
    assert (d.span.line, d.span.column, d.code) == (2, 36, "E-EMPTY")
    assert [(n.message, n.span.line, n.span.column, n.span.end_column) for n in d.notes] == [
        ("in block `down`, called here", 4, 1, 7)]


def test_an_error_repeated_by_several_calls_is_reported_once_with_the_first_chain():
    _, diagnostics = analyse("input 3x8x8\nblock b(c) { conv c k3 nobais }\nb 8\nb 16\n", "t.arch")
    assert len(diagnostics) == 1
    assert [n.span.line for n in diagnostics[0].notes] == [3]
    # calls that fail differently stay apart, each with its own call
    _, diagnostics = analyse("input 3x8x8\nblock b(c) { conv c/3 k1 }\nb 8\nb 16\n", "t.arch")
    assert [(d.message, [n.span.line for n in d.notes]) for d in diagnostics] == [
        ("conv out = 2.66667 is not a whole number", [3]),
        ("conv out = 5.33333 is not a whole number", [4])]


def test_warnings_and_recursion_name_their_calls_too():
    _, diagnostics = analyse("input 3x8x8\nblock b(c) { conv c k3 p1; bn; relu }\nb 8\nb 8\n",
                             "t.arch")
    assert [(d.code, d.span.line, [(n.span.line, n.span.column) for n in d.notes])
            for d in diagnostics] == [("W-BIAS-BEFORE-BN", 2, [(3, 1)])]
    d = only("input 3x8x8\nblock a(c) { b c }\nblock b(c) { a c }\na 1\n")
    assert (d.code, [(n.message, n.span.line, n.span.column) for n in d.notes]) == (
        "E-RECURSION", [("in block `b`, called here", 2, 14), ("in block `a`, called here", 4, 1)])


def test_a_very_long_chain_of_calls_is_shown_by_its_ends():
    blocks = "".join(f"block b{i}(c) {{ b{i + 1} c }}\n" for i in range(30))
    d = only("input 3x8x8\n" + blocks + "block b30(c) { conv c k3 nobais }\nb0 8\n")
    assert len(d.notes) == 10 and d.notes[5].message == "… 22 more calls …"
    assert d.notes[5].span is None and d.notes[-1].span.line == 33


# -- 2. a missing `;`, and did-you-mean kept to close matches -------------------------------

def test_a_layer_kind_among_the_arguments_is_a_missing_separator():
    assert check("input 3x8x8\nconv 64 k3 p1 bn\n") == [
        (2, 15, "E-UNKNOWN-NAME", "`bn` is a layer kind, not an argument of conv",
         "a `;` or a new line is probably missing before `bn`: `…; bn`")]
    assert check("input 3x8x8\nblock b(c) { relu }\nconv 8 k3 b\n") == [
        (3, 11, "E-UNKNOWN-NAME", "`b` is a block, not an argument of conv",
         "a `;` or a new line is probably missing before `b`: `…; b`")]


def test_a_layer_kind_as_a_keyword_suggests_its_own_statement():
    assert check("input 3x8x8\nconv 8 k3 activation=relu\n") == [
        (2, 11, "E-UNKNOWN-ARG", "conv has no argument `activation`",
         "`relu` is a layer of its own: end this layer and write `; relu`")]
    assert check("input 3x8x8\nconv 8 k3 relu=true\n")[0][4] == \
        "`relu` is a layer of its own: end this layer and write `; relu`"
    assert check("input 3x8x8\nconv 8 k=relu\n") == [
        (2, 10, "E-UNKNOWN-NAME", "unknown name `relu`",
         "a `;` or a new line is probably missing before `relu`: `…; relu`")]


def test_did_you_mean_keeps_to_close_matches():
    assert did_you_mean("activation", ["dilation", "groups"]) is None
    assert did_you_mean("strid", ["stride"]) == "did you mean `stride`?"
    assert did_you_mean("xonv", ["conv"]) == "did you mean `conv`?"  # 0.75: close enough
    assert did_you_mean("bais", ["bias"]) == "did you mean `bias`?"


# -- 3. an unclosed `}` -------------------------------------------------------------------

def test_a_missing_brace_points_at_the_brace_it_opens():
    d = only("input 3x8x8\nblock b(c) {\n  conv c k3\nb 8\n")
    assert (d.code, d.message, d.span.line) == ("E-SYNTAX", "the file ends before a closing `}`", 4)
    assert [(n.message, n.span.line, n.span.column) for n in d.notes] == [
        ("the `{` opened here is never closed", 2, 12)]
    d = only("input 3x8x8\nresidual< conv 8 k3 p1  # a > in a comment\n  relu\n")
    assert [(n.message, n.span.line, n.span.column) for n in d.notes] == [
        ("the `<` opened here is never closed", 2, 9)]


# -- 4. a wrong --set value is blamed on the option ---------------------------------------

NET = "arch n(num_classes=10)\ninput 3x8x8\nflatten\nlinear num_classes\n"


def test_a_set_value_of_the_wrong_sort_names_the_option(tmp_path, capsys):
    assert check(NET, num_classes=Word("abc")) == [
        (None, None, "E-PARAM", "--set num_classes=abc: `num_classes` takes a number (its "
         "default is 10), not a word",
         "e.g. `--set num_classes=10` (from Python: `archdsl.load(path, num_classes=…)`)")]
    assert [(n.message, n.span.line, n.span.column) for n in
            only(NET, num_classes=Word("abc")).notes] == [("`num_classes` is declared here", 1, 8)]
    assert check(NET, num_classes=12) == [] and check(NET, num_classes=2.0) == []
    spec = tmp_path / "n.arch"
    spec.write_text(NET)
    assert main(["check", str(spec), "--set", "num_classes=abc"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error[E-PARAM]: --set num_classes=abc: `num_classes` takes a number")
    assert "linear" not in err
    assert main(["check", str(spec), "--set", "num_classes=true", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["file"] == str(spec) and doc["diagnostics"][0]["line"] is None
    assert "not true or false" in doc["diagnostics"][0]["message"]


# -- 5. input sizes written out ------------------------------------------------------------

def test_input_sizes_are_inferred_and_need_not_be_written():
    assert check("input 16x8x8\nbn 16\nflatten\nlinear 8192 10\n") == [
        (2, 4, "E-ARG-COUNT", "bn takes no more positional values",
         "input sizes are inferred from the layer before and need not be written: "
         "leave out `16` (`bn`)"),
        (4, 8, "E-ARG-COUNT", "linear takes no more positional values",  # under `8192`
         "input sizes are inferred from the layer before and need not be written: "
         "leave out `8192` (`linear 10`)")]
    assert check("input 3x8x8\ndropout 0.5 0.5\n")[0][4].startswith("dropout takes:")


# -- 6. a word held by a parameter ---------------------------------------------------------

MODE = "arch x(mode=reflect)\ninput 3x8x8\n"


def test_a_word_held_by_a_parameter_says_so():
    assert check(MODE + "conv 8 k=mode\n") == [
        (3, 10, "E-UNKNOWN-NAME", "the parameter `mode` holds the word `reflect`, but conv "
         "kernel takes a number", "give `mode` a number, or write a number here")]
    assert check(MODE + "conv mode k1\n") == [
        (3, 1, "E-ARG-MISSING", "conv needs output channels",
         "the parameter `mode` holds the word `reflect`, which conv read as "
         "`padding_mode=reflect`, not as its output channels")]
    assert check(MODE + "repeat mode { relu }\n") == [
        (3, 8, "E-UNKNOWN-NAME", "repeat needs a whole number, but the parameter `mode` holds "
         "the word `reflect`", None)]
    assert check(MODE + "relu mode\n")[0][3] == \
        "the parameter `mode` holds the word `reflect`, which is not a flag or word that relu knows"
    assert check(MODE + "conv 8 k3 padding_mode=mode\n") == []  # what the word is for


# -- 7. the drawing marks the culprit the CLI names ------------------------------------------

def test_an_error_at_a_merge_is_drawn_on_the_node_the_cli_points_at():
    text = (ROOT / "tests" / "fixtures" / "mynet.arch").read_text()
    _, graph, diagnostics = analyse_graph(text, "mynet.arch")
    src = to_dot(graph, diagnostics).source
    red = re.findall(r"^\t+(\w+) \[[^\]]*color=\"#cc0000\"", src, re.M)
    assert red == ["n_down1__residual1__shortcut__conv1"]


def test_a_parameter_hiding_a_word_is_named_where_its_value_overflows():
    assert check("arch x(same=3)\ninput 3x8x8\nconv 8 k3 same\n") == [
        (3, 11, "E-ARG-COUNT", "conv takes no more positional values",
         "the parameter `same` hides conv's own `same`, and its value is read as a positional "
         "value: rename the parameter")]
