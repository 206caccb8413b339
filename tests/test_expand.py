"""Syntax tree -> layer graph: nodes, edges, groups, names, parameters."""

import pytest

from archdsl import SpecError, loads
from archdsl.diagnostics import Span
from archdsl.graph import (BlockCall, Branch, CombinatorGroup, Iteration, LayerGraph, LayerNode,
                           RepeatGroup)
from archdsl.layers.base import Args


def graph(text, **params):
    return loads(text, "t.arch", **params).graph


def ops(g):
    return [node.op for _, node in g.layers()]


def test_a_chain_is_a_path_in_order():
    g = graph("input 3x8x8\nconv 8 k3 p1; bn; relu\n")
    assert ops(g) == ["input", "conv", "bn", "relu"]
    order = g.order
    assert [(u, v) for u, v, _ in g.edges()] == list(zip(order, order[1:]))
    assert g.layer("conv1").span.line == 2 and g.layer("relu1").span.column == 19
    assert g.output == "relu1"


def test_flags_words_and_keywords_resolve_to_declared_arguments():
    g = graph("arch n(s=2)\ninput 3x16x16\nconv 8 k1x3 s=s p=same d2 g1 nobias reflect\n",
              s=1)
    a = g.layer("conv1").args
    assert (a.out, a.kernel, a.stride, a.padding, a.dilation, a.groups) == \
        (8, (1, 3), (1, 1), "same", (2, 2), 1)
    assert a.bias is False and a.padding_mode == "reflect"
    assert a.given == {"out", "kernel", "stride", "padding", "dilation", "groups", "bias",
                       "padding_mode"}


def test_defaults_fill_what_is_not_written():
    a = graph("input 3x16x16\nmaxpool 3\n").layer("maxpool1").args
    assert a.stride is None and a.padding == (0, 0) and a.ceil is False and a.given == {"kernel"}


def test_blocks_bind_parameters_and_record_groups():
    g = graph("""input 3x8x8
block stage(c, n, mid=c/2) {
  repeat n { conv c k3 p1; relu }
  conv mid k1
}
stage 16 2
stage 32 n=1
""")
    convs = [n for n, node in g.layers() if node.op == "conv"]
    assert [g.layer(n).args.out for n in convs] == [16, 16, 8, 32, 16]
    assert convs[0] == "stage1.repeat1.0.conv1"
    assert convs[2] == "stage1.conv1"
    assert convs[3] == "stage2.repeat1.0.conv1"
    groups = g.groups
    first = groups[g.layer(convs[0]).groups[0]]
    assert isinstance(first, BlockCall)
    assert (first.block, first.label, first.args) == ("stage", "stage 16 2",
                                                        {"c": 16, "n": 2, "mid": 8})
    chain = [groups[i] for i in g.layer(convs[1]).groups]
    assert [type(group) for group in chain] == [BlockCall, RepeatGroup, Iteration]
    assert chain[1].count == 2 and chain[2].label == "2 of 2"
    assert [type(groups[i]) for i in chain[1].children] == [Iteration, Iteration]


def test_a_combinator_is_a_group_with_a_branch_per_role():
    g = graph("input 8x8x8\nresidual< conv 16 k3 s2 p1; bn >\n")
    combinators = [group for group in g.groups.values() if isinstance(group, CombinatorGroup)]
    assert [(c.combinator, c.name) for c in combinators] == [("residual", "residual1")]
    branches = [g.groups[i] for i in combinators[0].children]
    assert all(isinstance(b, Branch) for b in branches)
    assert [(b.role, b.name) for b in branches] == [("body", "residual1.body"),
                                                     ("shortcut", "residual1.shortcut")]
    assert all(group.block is None for group in g.groups.values())  # no block calls here


def test_insert_between_puts_a_chain_on_an_edge_keeping_its_port():
    g = LayerGraph("t", "t.arch", "")
    span = Span("t.arch", 1, 1, 1, 2)
    for name in ("a", "b", "m"):
        g.add(LayerNode(name, None, Args({}), span))
    g.connect("a", "b")
    g.connect("b", "m", 0)
    g.connect("a", "m", 1)
    g.insert_between("a", "m", [LayerNode("p", None, Args({}), span),
                                LayerNode("q", None, Args({}), span)])
    assert g.order == ["a", "b", "p", "q", "m"]
    assert sorted(g.edges()) == [("a", "b", 0), ("a", "p", 0), ("b", "m", 0), ("p", "q", 0),
                                 ("q", "m", 1)]
    assert g.inputs("m") == ["b", "q"]


def test_residual_without_shortcut_feeds_the_input_to_the_merge():
    g = graph("input 8x8x8\nresidual< conv 8 k3 p1; bn >\n")
    merge = "residual1.add"
    assert g.layer(merge).op == "add"
    ports = {u: port for u, v, port in g.edges() if v == merge}
    assert ports == {"residual1.body.bn1": 0, "input": 1}


def test_residual_inserts_a_projection_when_the_body_changes_shape():
    g = graph("input 8x8x8\nresidual< conv 16 k3 s2 p1; bn >\n")
    proj, bn = "residual1.shortcut.conv1", "residual1.shortcut.bn1"
    assert g.layer(proj).inserted and g.layer(bn).inserted
    a = g.layer(proj).args
    assert (a.out, a.kernel, a.stride, a.bias) == (16, (1, 1), (2, 2), False)
    assert g.inputs(proj) == ["input"] and g.successors(bn) == ["residual1.add"]
    order = g.order
    assert order.index(bn) < order.index("residual1.add")
    assert g.facts[proj].params == 8 * 16 and g.facts[bn].params == 32


def test_explicit_shortcut_and_branch_ports():
    g = graph("input 8x8x8\nconcat< conv 4 k1 | identity | maxpool 3 s1 p1 >\n")
    ports = sorted((port, u) for u, v, port in g.edges() if v == "concat1.concat")
    assert ports == [(0, "concat1.branch1.conv1"), (1, "concat1.branch2.identity1"),
                     (2, "concat1.branch3.maxpool1")]
    assert g.shape("concat1.concat") == (20, 8, 8)


def test_repeat_zero_inside_a_branch_passes_the_input_through():
    g = graph("arch n(k=0)\ninput 8x8x8\nadd< repeat k { conv 8 k3 p1 } | identity >\n")
    assert g.shape("add1.add") == (8, 8, 8)


def test_arch_parameters_can_be_overridden():
    text = "arch n(num_classes=1000, width=64)\ninput 3x8x8\nconv width k3; flatten; linear num_classes\n"
    assert loads(text).output_shape == (1000,)
    net = loads(text, num_classes=10, width=8)
    assert net.output_shape == (10,) and net.arch_params == {"num_classes": 10, "width": 8}
    with pytest.raises(SpecError) as info:
        loads(text, num_clases=10)
    assert info.value.errors[0].code == "E-PARAM" and "num_classes" in info.value.errors[0].hint


def test_input_shape_override():
    net = loads("input 3x224x224\nconv 8 k3\n", input_shape=(3, 32, 32))
    assert net.output_shape == (8, 30, 30)


def test_recursion_is_caught_at_the_call():
    with pytest.raises(SpecError) as info:
        loads("input 1x4x4\nblock a(c) { relu; a c }\na 1\n")
    (d,) = info.value.errors
    assert d.code == "E-RECURSION" and d.span.line == 2 and "a → a" in d.message


def test_every_node_of_a_vgg_stage_gets_a_unique_name():
    g = graph("input 3x32x32\nblock s(c) { repeat 3 { conv c k3 p1; relu }; maxpool 2 }\ns 8; s 16\n")
    names = [node.name for _, node in g.layers()]
    assert len(names) == len(set(names)) == 1 + 2 * 7


def test_edges_carry_the_tensor_shape():
    g = graph("input 3x8x8\nconv 8 k3; relu\n")
    assert g.shape("input") == (3, 8, 8)  # what the edge input -> conv1 carries
    assert g.shape("conv1") == (8, 6, 6)


def test_words_can_be_parameter_values():
    net = loads("arch n(mode=reflect)\ninput 3x8x8\nblock b(m) { conv 4 k3 p1 padding_mode=m }\n"
                "conv 4 k3 p1 padding_mode=mode; b replicate\n")
    modes = [net.graph.layer(n).args.padding_mode for n in ("conv1", "b1.conv1")]
    assert modes == ["reflect", "replicate"]


def test_a_numbered_name_never_takes_a_blocks_name():
    """Issue 26, item 10: with blocks `b` and `b1`, the first call of `b` was named `b1`, so
    `explain b1` (and `--freeze b1`) took it for block b1. A generated name that a block
    holds gets an underscore: every name stands for one thing."""
    from archdsl.explain import select

    net = loads("input 3x8x8\nblock b { conv 4 k1 }\nblock b1 { relu }\nb; b1; b; b1\n"
                "block conv1 { relu }\nconv 4 k1; conv1\n")
    calls = [g.name for g in net.graph.groups.values() if isinstance(g, BlockCall)]
    assert calls == ["b_1", "b1_1", "b2", "b1_2", "conv1_1"]
    assert "conv_1" in [n for n, _ in net.graph.layers()]  # not conv1, the block
    assert select(net.graph, ["b1"]) == ["b1_1.relu1", "b1_2.relu1"]
    assert select(net.graph, ["b"]) == ["b_1.conv_1", "b2.conv_1"]
    assert select(net.graph, ["conv1"]) == ["conv1_1.relu1"]
