"""Numbers stay finite and within a float's range (about 1.8e308), whoever writes them: a
literal, an operation, a built-in function, `--set`, `--input` and the Python API's
parameters. Anything beyond is a located error, never NaN, inf or an internal error."""

import json
import math
import re

import pytest
from helpers import run_cli

import archdsl
from archdsl import SpecError
from archdsl.diagnostics import Span
from archdsl.expand.expressions import evaluate
from archdsl.syntax import Call, Num

HEAD = "arch t(c=4)\ninput 3x8x8\n"
BIG = "9" * 400  # an integer literal beyond a float
LONG = "9" * 5000  # … and beyond Python's int() of a string (4,300 digits)


def errors(text, **params):
    with pytest.raises(SpecError) as info:
        archdsl.loads(text, "t.arch", **params)
    found = [d for d in info.value.diagnostics if d.is_error]
    assert all(d.code != "E-INTERNAL" for d in found), found
    return found


def one_error(text, **params):
    (d,) = errors(text, **params)
    return d


def column_of(text: str, fragment: str) -> int:
    """The column of `fragment` on the last line of `text`."""
    return text.rstrip("\n").split("\n")[-1].index(fragment) + 1


# ----------------------------------------------------------------------------- literals

@pytest.mark.parametrize("statement, literal", [
    ("layerscale 1e999", "1e999"),
    ("bn eps=(1e999-1e999)", "1e999"),
    ("dropout (1e999 - 1e999)", "1e999"),
    ("leakyrelu 1e999", "1e999"),
    (f"conv {BIG} k3", BIG),
    (f"conv {LONG} k3", LONG),
    (f"conv ({BIG}/7) k3", BIG),
    (f"conv ({BIG}+1) k3", BIG),
    (f"layerscale ({BIG}*1.0)", BIG),
    (f"repeat {BIG} {{ relu }}", BIG),
    (f"conv 8 kernel={LONG}x3", LONG),
    ("conv floor(1e999) k3", "1e999"),
    ("conv round(1e999-1e999) k3", "1e999"),
])
def test_a_literal_beyond_a_float_is_an_error_at_the_literal(statement, literal):
    text = HEAD + statement + "\n"
    d = errors(text)[0]
    assert d.code == "E-EXPR" and "too large" in d.message
    assert (d.span.line, d.span.column) == (3, column_of(text, literal))
    assert "1.8e308" in d.hint


def test_a_parameter_default_beyond_a_float_is_an_error():
    d = errors("arch t(e=1e999-1e999)\ninput 3x8x8\nbn eps=e\n")[0]
    assert d.code == "E-EXPR" and (d.span.line, d.span.column) == (1, 10)


@pytest.mark.parametrize("flag", [f"k{LONG}", f"k3x{BIG}"])
def test_a_flag_beyond_a_float_is_an_error_at_the_flag(flag):
    d = one_error(HEAD + f"conv 8 {flag}\n")
    assert d.code == "E-EXPR" and "too large" in d.message and d.span.column == 8


def test_an_input_beyond_a_float_is_an_input_error():
    d = one_error(f"input {LONG}x8x8\nrelu\n")
    assert d.code == "E-INPUT" and "too large" in d.message and d.span.line == 1


def test_large_finite_literals_still_check():
    net = archdsl.loads(HEAD + "leakyrelu 1e300; layerscale 1e-300; bn eps=0.000001\n")
    assert net.graph.facts["leakyrelu1"].shape == (3, 8, 8)


def test_huge_widths_and_repeats_are_warned_or_refused_not_internal():
    net = archdsl.loads(HEAD + f"conv {'9' * 300} k3; conv {'9' * 300} k1\n")
    assert any(d.code == "W-HUGE" for d in net.diagnostics)
    assert "e+" in net.summary()
    assert one_error(HEAD + f"repeat {'9' * 300} {{ relu }}\n").code == "E-TOO-BIG"


# ----------------------------------------------------------------------------- operations

@pytest.mark.parametrize("expr, operation", [
    ("(1e308 + 1e308)", "1e308 + 1e308"),
    ("(-1e308 - 1e308)", "-1e308 - 1e308"),
    ("(1e308 / 1e-300)", "1e308 / 1e-300"),
    ("(1e308 // 1e-300)", "1e308 // 1e-300"),
])
def test_an_operation_beyond_a_float_is_an_error_at_the_operation(expr, operation):
    text = HEAD + f"layerscale {expr}\n"
    d = one_error(text)
    assert d.code == "E-EXPR" and "too large" in d.message
    assert d.span.column == column_of(text, operation)


@pytest.mark.parametrize("name", ["floor", "round", "ceil", "min", "max"])
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_function_refuses_what_is_not_finite(name, value):
    span = Span("t.arch", 1, 1, 1, 9)
    args = (Num(value, span),) * (2 if name in ("min", "max") else 1)
    with pytest.raises(archdsl.diagnostics.DiagnosticError) as info:
        evaluate(Call(name, span, args, span), {})
    d = info.value.diagnostic
    assert d.code == "E-EXPR" and "finite" in d.message


def test_a_value_that_is_not_quite_whole_is_shown_exactly():
    d = one_error(HEAD + "conv (0.1*3*10) k3\n")
    assert d.message == "conv out = 3.0000000000000004 is not a whole number"


def test_a_value_that_is_plainly_not_whole_keeps_its_short_form():
    d = one_error(HEAD + "conv (10/3) k3\n")
    assert d.message == "conv out = 3.33333 is not a whole number"


# ----------------------------------------------------------------------------- the Python API

@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 10**400, 10**5000],
                         ids=["inf", "-inf", "nan", "10**400", "10**5000"])
def test_a_python_parameter_beyond_a_float_is_a_parameter_error(value):
    d = one_error(HEAD + "conv c k3\n", c=value)
    assert d.code == "E-PARAM" and "`c`" in d.message and d.span.line == 3


# ----------------------------------------------------------------------------- the command line

@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "t.arch"
    path.write_text("arch t(c=4, slope=0.1)\ninput 3x8x8\nconv c k3; leakyrelu slope\n")
    return path


@pytest.mark.parametrize("value", ["1_000", "\u0661\u0662", "\uff11\uff12", "1e999", LONG,
                                   f"3x{LONG}", "1e999x3"])
def test_set_refuses_what_the_language_refuses(capsys, spec, value):
    code, out, err = run_cli(capsys, "check", spec, "--set", f"c={value}")
    assert code == 2 and "internal" not in err.lower() and out == ""


@pytest.mark.parametrize("value", ["inf", "nan", "Infinity"])
def test_set_reads_inf_and_nan_as_words(capsys, spec, value):
    code, _, err = run_cli(capsys, "check", spec, "--set", f"slope={value}")
    assert code == 1 and "E-PARAM" in err and "internal" not in err.lower()


@pytest.mark.parametrize("value, width", [("1e3", 1000), ("8", 8), ("+8", 8), ("16.0", 16),
                                          (".5e2", 50)])
def test_set_still_reads_numbers(capsys, spec, value, width):
    code, out, _ = run_cli(capsys, "check", spec, "--set", f"c={value}", "--format", "json")
    assert code == 0 and json.loads(out)["layers"][0]["output"] == [width, 6, 6]


@pytest.mark.parametrize("value", [f"3x{LONG}x8", f"{LONG}", "3x\u0661x8"])
def test_input_refuses_what_the_language_refuses(capsys, spec, value):
    code, out, err = run_cli(capsys, "check", spec, "--input", value)
    assert code == 2 and "internal" not in err.lower() and out == ""


def _strict(text: str):
    """JSON as every reader takes it: Infinity and NaN are refused."""
    def refuse(constant):
        raise AssertionError(f"{constant} in JSON output")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("text", [
    "arch t(s=1e999)\ninput 3x8x8\nrelu\n",
    "arch t(s=1e999-1e999)\ninput 3x8x8\nrelu\n",
    HEAD + "layerscale 1e999\n",
    HEAD + f"conv {'9' * 300} k3; conv {'9' * 300} k1\n",
    HEAD + "leakyrelu 1e300\n",
])
def test_check_json_is_strict(capsys, tmp_path, text):
    path = tmp_path / "t.arch"
    path.write_text(text)
    _, out, _ = run_cli(capsys, "check", path, "--format", "json")
    document = _strict(out)
    assert all(d["code"] != "E-INTERNAL" for d in document["diagnostics"])


def test_export_writes_no_inf_or_nan(capsys, tmp_path):
    path = tmp_path / "t.arch"
    path.write_text(HEAD + "conv 4 k3; leakyrelu 1e300; layerscale 1e-300\n")
    code, _, _ = run_cli(capsys, "export", path, "--to", "python", "-o", tmp_path / "t.py")
    source = (tmp_path / "t.py").read_text()
    assert code == 0 and not re.search(r"\b(inf|nan)\b", source)
    assert "negative_slope=1e+300" in source
    compile(source, "t.py", "exec")
    path.write_text(HEAD + "leakyrelu 1e999\n")
    code, _, err = run_cli(capsys, "export", path, "--to", "python", "-o", tmp_path / "u.py")
    assert code == 1 and "E-EXPR" in err and not (tmp_path / "u.py").exists()


@pytest.mark.parametrize("value", [math.nan, math.inf, 10**5000], ids=["nan", "inf", "10**5000"])
def test_an_unused_python_parameter_beyond_a_float_reaches_no_json_and_no_source(value):
    from archdsl.codegen import to_python

    net = archdsl.loads(HEAD + "relu\n", c=value)
    document = net.to_dict()
    assert document["parameters"]["c"] is None
    json.dumps(document, allow_nan=False)
    with pytest.raises(SpecError) as info:
        to_python(net)
    assert info.value.diagnostics[0].code == "E-PARAM"
