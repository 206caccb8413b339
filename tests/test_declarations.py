"""The names a spec declares (archdsl/declarations.py): issue 26, items 15 and 17."""

import pytest

import archdsl
from archdsl.network import analyse


def _found(text):
    _, diagnostics = analyse(text, "names.arch")
    return [(d.code, d.span.line, d.span.column, d.message) for d in diagnostics]


@pytest.mark.parametrize("text,line,column,owner", [
    ("arch a(c=4, c=16)\ninput 3x8x8\nconv c k1\n", 1, 13, "the `arch` header"),
    ("input 3x8x8\nblock b(c, c) { conv c k1 }\nb 4 8\n", 2, 12, "block `b`"),
    ("input 3x8x8\ndef f(x, x) = x\nconv f(4, 8) k1\n", 2, 10, "`def f`"),
])
def test_a_parameter_declared_twice_is_an_error_at_the_second(text, line, column, owner):
    """Duplicate parameter names were accepted, the last winning."""
    (found,) = _found(text)
    assert found == ("E-DUPLICATE", line, column,
                     f"{owner} declares the parameter `{text.split('(')[1][0]}` twice")


@pytest.mark.parametrize("word", ["block", "repeat", "if", "input"])
def test_a_block_named_like_a_keyword_is_pointed_out_at_its_definition(word):
    """`block block(c)` / `block repeat(c)` were accepted, and every call was a baffling
    E-SYNTAX: the definition is named first now."""
    found = _found(f"input 3x8x8\nblock {word}(c) {{ conv c k1 }}\n{word} 4\n")
    assert found[0] == ("E-DUPLICATE", 2, 7, f"`{word}` is a keyword of the language, so a "
                                              "block cannot take that name")
    assert all(code in ("E-DUPLICATE", "E-SYNTAX") for code, *_ in found)


def test_a_def_named_like_a_keyword_is_pointed_out_too():
    found = _found("input 3x8x8\ndef if(x) = x\nconv 4 k1\n")
    assert found[0][:3] == ("E-DUPLICATE", 2, 5) and "a def cannot take that name" in found[0][3]


def test_a_def_or_parameter_hiding_the_languages_own_is_warned_about():
    """`def max(…)` and a parameter named `true` hid built-ins silently."""
    net = archdsl.loads("input 3x8x8\ndef max(a, b) = a\nconv max(4, 8) k1\n")
    (w,) = net.warnings
    assert (w.code, w.span.line) == ("W-HIDDEN-NAME", 2) and "hides the built-in function" in \
        w.message
    assert [n.args.out for _, n in net.graph.layers() if n.kind is not None] == [4]  # the def's
    net = archdsl.loads("arch a(true=4)\ninput 3x8x8\nconv true k1\n")
    assert [w.code for w in net.warnings] == ["W-HIDDEN-NAME"]


def test_no_spec_in_specs_declares_a_name_twice_or_hides_one():
    from pathlib import Path

    for spec in sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.arch")):
        codes = {d.code for d in archdsl.load(spec).diagnostics}
        assert not codes & {"E-DUPLICATE", "W-HIDDEN-NAME"}, spec.name
