"""Text -> syntax tree: every construct of the language, with positions."""

from archdsl.syntax import (BinOp, Combinator, Keyword, Layer, Name, Neg, Num, Repeat, ShapeLit,
                            parse)


def ok(text):
    spec, diagnostics = parse(text, "t.arch")
    assert not diagnostics, diagnostics
    return spec


def test_header_input_and_layers():
    spec = ok("arch alexnet(num_classes=1000, width=1.5)\ninput 3x224x224\nconv 64 k11 s4 p2; relu\n")
    assert spec.name == "alexnet"
    assert [(p.name, p.default.value) for p in spec.arch.params] == [("num_classes", 1000),
                                                                      ("width", 1.5)]
    assert spec.input.dims == (3, 224, 224)
    conv, relu = spec.body
    assert conv.op == "conv" and relu.op == "relu"
    assert conv.args[0] == Num(64, conv.args[0].span)
    assert [a.name for a in conv.args[1:]] == ["k11", "s4", "p2"]
    assert (conv.span.line, conv.span.column) == (3, 1)
    assert (relu.span.line, relu.span.column) == (3, 20)


def test_separators_comments_crlf_and_bom():
    text = "\ufeff# a comment line\r\ninput 1x8x8   # trailing\r\n\r\nrelu;; relu ;\r\n  # indented\r\nrelu\r\n"
    spec = ok(text)
    assert [s.op for s in spec.body] == ["relu", "relu", "relu"]
    assert spec.body[2].span.line == 6
    assert spec.input.span.line == 2


def test_empty_and_comment_only_files_parse():
    assert ok("").body == ()
    assert ok("# nothing here\n\n").body == ()


def test_keywords_take_expressions_and_words():
    (conv,) = ok("conv c*4 k1x7 s=s p=same padding_mode=reflect eps=-1e-3 x=(c+1)//2 bias=false\n").body
    out, kernel, s, p, mode, eps, x, bias = conv.args
    assert isinstance(out, BinOp) and out.op == "*"
    assert kernel.name == "k1x7"
    assert isinstance(s, Keyword) and s.value == Name("s", s.value.span)
    assert p.value.name == "same" and mode.value.name == "reflect"
    assert isinstance(eps.value, Neg) and eps.value.operand.value == 0.001
    assert isinstance(x.value, BinOp) and x.value.op == "//"
    assert bias.value.name == "false"


def test_operator_precedence():
    (layer,) = ok("linear a+b*c-d/e\n").body
    e = layer.args[0]
    # ((a + (b*c)) - (d/e))
    assert e.op == "-" and e.left.op == "+" and e.left.right.op == "*" and e.right.op == "/"


def test_shapes_are_literals():
    (pool,) = ok("adaptiveavgpool 7x7\n").body
    assert pool.args[0] == ShapeLit((7, 7), pool.args[0].span)


def test_blocks_repeat_and_combinators():
    spec = ok("""
block stage(c, n=2) {
  repeat n { conv c k3 p1; relu }
  maxpool 2
}
residual< conv 64 k3 p1; bn | conv 64 k1; bn >
concat<
  conv 64 k1
| maxpool 3 s1 p1; conv 32 k1
>
stage 64
""")
    block = spec.blocks["stage"]
    assert [p.name for p in block.params] == ["c", "n"] and block.params[1].default.value == 2
    assert isinstance(block.body[0], Repeat) and block.body[0].count == Name("n", block.body[0].count.span)
    res, cat, call = spec.body
    assert isinstance(res, Combinator) and res.kind == "residual" and len(res.branches) == 2
    assert [s.op for s in res.branches[1].body] == ["conv", "bn"]
    assert isinstance(cat, Combinator) and len(cat.branches) == 2
    assert cat.branches[1].span.line == 9
    assert isinstance(call, Layer) and call.op == "stage"


def test_syntax_errors_are_located_with_hints():
    spec, diagnostics = parse("input 3x8x8\nconv 64, 3\n", "t.arch")
    assert spec is None
    (d,) = diagnostics
    assert (d.code, d.span.line, d.span.column) == ("E-SYNTAX", 2, 8)
    assert "commas" in d.hint


def test_unclosed_combinator_names_the_missing_bracket():
    _, (d,) = parse("residual< conv 8 k3\n", "t.arch")
    assert "`>`" in d.message and d.hint == "add the missing `>`"


def test_negative_positional_needs_parentheses():
    spec = ok("leakyrelu (-0.5)\n")
    assert isinstance(spec.body[0].args[0], Neg)
    _, (d,) = parse("input 1x2x2\nconv -1 k3\n", "t.arch")
    assert "negative" in d.hint


def test_binary_garbage_is_a_located_error():
    spec, diagnostics = parse("\x00\x01\x02conv", "t.arch")
    assert spec is None and diagnostics[0].code == "E-SYNTAX"
    assert diagnostics[0].span.line == 1


def test_placement_and_duplicates():
    _, diagnostics = parse("arch a\narch b\ninput 1x2x2\nblock x(c) { input 1x2x2 }\n", "t.arch")
    assert [d.code for d in diagnostics] == ["E-DUPLICATE", "E-PLACEMENT"]


def test_a_spaced_minus_before_a_number_is_flagged():
    _, (d,) = parse("input 784\nlinear 10 -5\n", "t.arch")
    assert (d.code, d.span.line, d.span.column) == ("E-SYNTAX", 2, 8)
    assert "`10 (-5)`" in d.hint
    assert ok("linear 10 - 5\n").body[0].args[0].op == "-"
    assert ok("linear 10-5\n").body[0].args[0].op == "-"


def test_an_unclosed_bracket_is_one_error():
    _, diagnostics = parse("input 3x8x8\nresidual< conv 8 k3 p1\nrelu\n", "t.arch")
    assert len(diagnostics) == 1 and "`>`" in diagnostics[0].message


def test_parameter_lists_may_span_lines():
    spec = ok("arch net(\n  num_classes=10,\n  width=64\n)\n")
    assert [p.name for p in spec.arch.params] == ["num_classes", "width"]


def test_init_is_a_statement_of_the_grammar():
    from archdsl.syntax import _parser

    tree = _parser().parse("init resnet zero_residual\ninput 3x8x8\nrelu\n")
    assert [s.data for s in tree.children[0].children] == ["init", "input", "layer"]
    spec = ok("init resnet zero_residual\ninput 3x8x8\nprelu init=0.1\n")
    assert (spec.init.scheme, spec.init.options, spec.init.span.line) == ("resnet", ("zero_residual",), 1)
    assert [s.op for s in spec.body] == ["prelu"] and spec.body[0].args[0].name == "init"


def test_init_mistakes():
    cases = {
        "init\n": ("E-INIT", 1, 1, "`init` needs a scheme"),
        "init 3\n": ("E-INIT", 1, 6, "`init` takes words only"),
        "init resnet 10 -5\n": ("E-INIT", 1, 13, "`init` takes words only"),
        "init resnet bad\n": ("E-INIT", 1, 13, "`init resnet` has no option `bad`"),
        "init resnet\ninit pytorch\n": ("E-DUPLICATE", 2, 1, "two `init` lines"),
        "repeat 2 { init resnet }\n": ("E-PLACEMENT", 1, 12, "`init` belongs at the top level"),
    }
    for text, (code, line, column, message) in cases.items():
        _, (d,) = parse(text, "t.arch")
        assert (d.code, d.span.line, d.span.column) == (code, line, column), text
        assert message in d.message, (text, d.message)


def test_syntax_errors_are_named_by_example():
    """The table of examples in syntax.py names each mistake wherever it stands."""
    cases = [
        ("input 3x8x8\nblock b(c) {\n  residual< conv c k3 p1\n", 3, 24,
         "the file ends before a closing `>`", "add the missing `>`"),
        ("block b(c) {\n  repeat 2 { relu; conv c k3", 2, 28,
         "the file ends before a closing `}`", "add the missing `}`"),
        ("arch net(c=64\ninput 3x8x8\n", 2, 1, "unexpected `input`", None),
        ("input 3x8x8 relu\n", 1, 13, "unexpected `relu`: statements are separated by `;` or a new line",
         "write `; relu` or start `relu` on a new line"),
        ("add< relu | conv 8 k3 > bn\n", 1, 25, "unexpected `bn`: statements are separated",
         "write `; bn` or start `bn` on a new line"),
        ("conv (8\nrelu\n", 1, 8, "unexpected new line", "a `)` is missing"),
        ("arch n(c=(8\n", 1, 12, "unexpected new line", "a `)` is missing"),
        ("conv 8 k3 >\n", 1, 11, "`>` closes nothing here", None),
        ("block b(c) { relu }}\n", 1, 20, "`}` closes nothing here", None),
        ("block b(c, d\n", 1, 12, "the file ends in the middle of a statement", None),
    ]
    for text, line, column, message, hint in cases:
        _, diagnostics = parse(text, "t.arch")
        d = diagnostics[0]
        assert (d.code, d.span.line, d.span.column) == ("E-SYNTAX", line, column), (text, d)
        assert d.message.startswith(message), (text, d.message)
        if hint is not None:
            assert d.hint == hint, (text, d.hint)


def test_every_example_of_the_table_is_named_by_its_own_row():
    """Each example is a syntax error (`_example_error` raises on one that parses) that the
    table matches back to its own label: no row hides another, no example is dead."""
    from archdsl.syntax import _EXAMPLES, _example_error, _mistake

    checked = 0
    for by_label in _EXAMPLES.values():
        for label, snippets in by_label.items():
            for snippet in snippets:
                assert _mistake(_example_error(snippet)) == label, (label, snippet)
                checked += 1
    assert checked > 100
