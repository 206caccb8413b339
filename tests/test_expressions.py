"""Expressions: min, max, round, floor, ceil, comparisons, `(a if cond else b)`, the spec's own
functions (`def`), and block parameters that name a layer kind; each mistake located."""

import pytest

from archdsl import SpecError, loads


def widths(text, **params):
    """The output width of every conv in `text` (after `input 3x8x8`)."""
    g = loads("input 3x8x8\n" + text, "t.arch", **params).graph
    return [g.facts[nid].shape[0] for nid, node in g.layers() if node.op == "conv"]


def errors(text, **params):
    with pytest.raises(SpecError) as info:
        loads(text, "t.arch", **params)
    return [d for d in info.value.diagnostics if d.is_error]


def one_error(text, **params):
    (d,) = errors(text, **params)
    return d


@pytest.mark.parametrize("expr, value", [
    ("min(8, 3, 5)", 3), ("max(2, 9)", 9), ("max(1.5, 2) * 2", 4),
    ("round(2.5)", 2), ("round(3.5)", 4), ("round(2.6)", 3),   # halves to even, as Python's
    ("floor(7.9)", 7), ("ceil(7.1)", 8), ("ceil(2 * 1.1 * 10)", 22),
    ("(4 if 3 > 2 else 5)", 4), ("(4 if 3 <= 2 else 5)", 5), ("(4 if 2 == 2 else 5)", 4),
    ("(4 if 2 != 2 else 5)", 5), ("(4 if 2 >= 3 else 6 if 1 < 2 else 7)", 6),
    ("max(1, (3 if 1 < 2 else 9)) + 1", 4),
])
def test_functions_comparisons_and_the_conditional(expr, value):
    assert widths(f"conv {expr} k1\n") == [value]


def test_a_conditional_reads_parameters_and_true_false():
    text = "arch n(c=16, se=true)\ninput 3x8x8\nconv (c * 2 if se else c) k1\n"
    assert [loads(text, se=s).graph.facts["conv1"].shape[0] for s in (True, False)] == [32, 16]


def test_only_the_chosen_branch_is_evaluated():
    assert widths("conv (4 if 1 < 2 else 1 / 0) k1\n") == [4]


def make_divisible(v, divisor=8, min_value=None):
    """torchvision's _make_divisible (models/_utils.py), copied so that the test needs no torch."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


DIVISIBLE = """\
def rounded(v, d=8) = max(d, floor(v / d + 0.5) * d)
def divisible(v, d=8) = (rounded(v, d) + d if rounded(v, d) < 0.9 * v else rounded(v, d))
"""


@pytest.mark.parametrize("v", [3, 12, 16 * 1.1, 20.8, 30, 35.9, 36, 40 * 1.4, 72 * 0.75,
                               112 * 1.8, 1000 * 0.35, 88.0])
def test_make_divisible_written_with_def_is_torchvisions(v):
    assert widths(DIVISIBLE + f"conv divisible({v}) k1\n") == [make_divisible(v)]


def test_a_def_reads_the_arch_parameters_and_other_defs():
    text = "arch n(width=1.0)\n" + DIVISIBLE + "def adjust(c) = divisible(c * width)\n" \
        "input 3x8x8\nconv adjust(40) k1\n"
    assert loads(text, width=1.4).graph.facts["conv1"].shape[0] == make_divisible(40 * 1.4)
    assert loads(text).graph.facts["conv1"].shape[0] == 40


def test_a_def_may_set_an_arch_parameters_default():
    text = "def twice(v) = v * 2\narch n(c=twice(4))\ninput 3x8x8\nconv c k1\n"
    assert loads(text).graph.params["c"] == 8


def test_unknown_function_is_located_with_a_suggestion():
    d = one_error("input 3x8x8\nconv maxx(8, 4) k1\n")
    assert (d.code, d.span.line, d.span.column, d.span.end_column) == ("E-UNKNOWN-NAME", 2, 6, 10)
    assert "unknown function `maxx`" in d.message and "`max`" in d.hint


def test_wrong_number_of_values_is_located():
    d = one_error("input 3x8x8\nconv round(2.5, 1) k1\n")
    assert d.code == "E-ARG-COUNT" and (d.span.column, d.span.end_column) == (6, 19)
    assert "`round` takes 1 value, but 2 were given" in d.message
    d = one_error("input 3x8x8\nconv max(8) k1\n")
    assert "`max` takes at least 2 values, but 1 was given" in d.message


def test_a_word_is_not_a_number_for_a_function():
    d = one_error("arch n(m=same)\ninput 3x8x8\nconv max(8, m) k1\n")
    assert d.code == "E-EXPR" and d.span.column == 13 and "not a number" in d.message


def test_the_condition_must_be_true_or_false():
    d = one_error("input 3x8x8\nconv (4 if 3 else 5) k1\n")
    assert d.code == "E-EXPR" and d.span.column == 12
    assert "the condition is 3, not true or false" in d.message and "comparison" in d.hint


def test_words_are_not_compared():
    d = one_error("arch n(m=same)\ninput 3x8x8\nconv (4 if m == 2 else 5) k1\n")
    assert d.code == "E-EXPR" and d.span.column == 12 and "is a word" in d.message


def test_a_comparison_outside_parentheses_is_a_syntax_error():
    d = errors("input 3x8x8\nconv 4 >= 3\n")[0]
    assert d.code == "E-SYNTAX" and d.span.line == 2


def test_a_def_called_with_too_many_values():
    d = one_error("def f(x, y=1) = x + y\ninput 3x8x8\nconv f(1, 2, 3) k1\n")
    assert d.code == "E-ARG-COUNT" and d.span.line == 3
    assert "`f` takes 2 values (1 without a default), but 3 were given" in d.message
    assert "line 1" in d.hint


def test_an_error_inside_a_def_names_the_call():
    d = one_error("def f(x) = x / 0\ninput 3x8x8\nconv f(2) k1\n")
    assert d.code == "E-EXPR" and d.span.line == 1 and "division by zero" in d.message
    assert [(n.message, n.span.line, n.span.column) for n in d.notes] == \
        [("in `f`, called here", 3, 6)]


def test_a_def_that_calls_itself_is_refused():
    d = one_error("def f(x) = f(x) + 1\ninput 3x8x8\nconv f(2) k1\n")
    assert d.code == "E-RECURSION" and "`f` calls itself" in d.message


def test_defs_belong_at_the_top_level_once():
    d = one_error("input 3x8x8\nrepeat 1 { def f(x) = x }\nrelu\n")
    assert d.code == "E-PLACEMENT" and "`def` must be defined at the top level" in d.message
    d = one_error("def f(x) = x\ndef f(y) = y\ninput 3x8x8\nrelu\n")
    assert d.code == "E-DUPLICATE" and d.span.line == 2


# ----------------------------------------------------------------------------- kind parameters

CNA = "block cna(c, act=relu) { conv c k3 p1 nobias; bn; act }\ninput 3x8x8\n"


def ops(text, **params):
    return [node.op for _, node in loads(text, "t.arch", **params).graph.layers()][1:]


def test_a_block_parameter_names_a_layer_kind():
    assert ops(CNA + "cna 8\ncna 8 act=hardswish\ncna 8 act=identity\n") == \
        ["conv", "bn", "relu", "conv", "bn", "hardswish", "conv", "bn", "identity"]


def test_a_kind_parameter_may_name_a_block_and_an_arch_parameter_a_kind():
    text = "arch n(act=silu)\nblock two { relu; relu }\nblock cna(c, act=act) { conv c k1; act }" \
           "\ninput 3x8x8\ncna 4\ncna 4 act=two\nact\n"
    assert ops(text) == ["conv", "silu", "conv", "relu", "relu", "silu"]
    assert ops(text, act="gelu")[-1] == "gelu"


def test_a_parameter_holding_a_number_keeps_a_kinds_own_name():
    text = "arch n(dropout=0.3)\ninput 3x8x8\nflatten; dropout dropout\n"
    assert loads(text).graph.layer("dropout1").args.p == 0.3


def test_a_kind_parameter_holding_no_kind_is_located_with_the_call():
    d = one_error(CNA + "cna 8 act=relux\n")
    assert (d.code, d.span.line, d.span.column, d.span.end_column) == ("E-UNKNOWN-LAYER", 1, 51, 54)
    assert "the parameter `act` holds `relux`, which is not a layer kind or block" in d.message
    assert "`relu`" in d.hint
    assert [(n.span.line, n.span.column) for n in d.notes] == [(3, 1)]


def test_a_kind_parameter_holding_a_number_is_located():
    d = one_error(CNA + "cna 8 act=3\n")
    assert d.code == "E-UNKNOWN-LAYER" and "holds 3" in d.message and "act=relu" in d.hint
