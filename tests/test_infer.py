"""The inference stage (archdsl/infer.py), through archdsl.loads, load and analyse: each
layer's output shape, parameters, buffers, MACs, receptive field and its bound (the input plus
the padding its paths read), memory and the totals; W-HUGE and the build's E-TOO-BIG; and
errors located at the argument that causes them, with the chain of block calls behind them."""

from pathlib import Path

import pytest

from archdsl import SpecError, analyse, load, loads
from archdsl.diagnostics import render_all
from archdsl.report import layer_records, table

SPECS = Path(__file__).resolve().parent.parent / "specs"


def node(net, name):
    """What the checker found for one layer (its Facts), as a dict."""
    return vars(net.graph.facts[name])


# ---------------------------------------------------------------- shapes, parameters, MACs, memory

ALEXNET_HEAD = "input 3x224x224\nconv 64 k11 s4 p2; relu; maxpool 3 s2\nconv 192 k5 p2\n"


def test_alexnet_first_layers_by_hand():
    net = loads(ALEXNET_HEAD)
    conv1 = node(net, "conv1")
    assert conv1["shape"] == (64, 55, 55)  # floor((224 + 4 - 11) / 4) + 1
    assert conv1["params"] == 64 * 3 * 11 * 11 + 64
    assert conv1["macs"] == 64 * 55 * 55 * 3 * 11 * 11
    assert conv1["rf"] == ((11, 11), (4, 4))
    assert node(net, "maxpool1")["shape"] == (64, 27, 27)
    assert node(net, "maxpool1")["rf"] == ((19, 19), (8, 8))  # 11 + (3-1)*4
    assert node(net, "conv2")["rf"] == ((51, 51), (8, 8))  # 19 + (5-1)*8
    assert conv1["memory"] == 64 * 55 * 55 * 4


def test_a_strided_padded_conv_by_hand():
    net = loads("input 3x32x32\nconv 8 k3 s2 p1\n")
    conv1 = node(net, "conv1")
    assert conv1["shape"] == (8, 16, 16)  # floor((32 + 2*1 - 3) / 2) + 1
    assert conv1["params"] == 8 * 3 * 9 + 8
    assert conv1["macs"] == 8 * 16 * 16 * 3 * 9
    assert conv1["rf"] == ((3, 3), (2, 2))
    assert conv1["memory"] == 8 * 16 * 16 * 4  # float32, one sample
    # the last window ends at (16 - 1) * 2 + 3 = 33 of the 34 padded rows: one padded row read
    assert conv1["bound"] == (33, 33)
    assert (net.params, net.buffers, net.macs) == (224, 0, 55296)
    assert net.memory == {"params": 224 * 4, "activations": 8192}


def test_totals_add_up():
    net = loads(ALEXNET_HEAD)
    layers = net.layers()
    assert net.params == sum(r["params"] for r in layers)
    assert net.macs == sum(r["macs"] for r in layers)
    assert net.memory["params"] == 4 * (net.params + net.buffers)
    assert net.memory["activations"] == sum(r["memory"] for r in layers)


def test_same_padding_keeps_the_size_with_even_kernels_and_dilation():
    net = loads("input 3x17x10\nconv 4 k4x2 p=same d3\n")
    assert net.output_shape == (4, 17, 10)


def test_ceil_mode_and_the_last_window_rule():
    # GoogLeNet's stem: 112 -> 56 with ceil mode; a window starting in the padding is dropped.
    assert loads("input 1x112x112\nmaxpool 3 s2 ceil\n").output_shape == (1, 56, 56)
    assert loads("input 1x5x5\nmaxpool 2 s2 p1 ceil\n").output_shape == (1, 3, 3)
    assert loads("input 1x6x6\nmaxpool 2 s2 p1 ceil\n").output_shape == (1, 4, 4)


def test_pool_stride_defaults_to_the_kernel():
    assert loads("input 1x9x9\navgpool 3\n").output_shape == (1, 3, 3)
    assert loads("input 1x9x9\navgpool 3 s1\n").output_shape == (1, 7, 7)


def test_adaptive_pool_and_flatten():
    net = loads("input 256x13x13\nadaptiveavgpool 6; flatten; linear 10\n")
    assert node(net, "adaptiveavgpool1")["shape"] == (256, 6, 6)
    assert node(net, "flatten1")["shape"] == (9216,)
    assert node(net, "linear1")["macs"] == 9216 * 10
    assert loads("input 8x9x9\nadaptivemaxpool 2x3\n").output_shape == (8, 2, 3)


def test_norm_parameters_and_buffers():
    net = loads("input 8x4x4\nbn; groupnorm 4; layernorm; lrn 5\nflatten; bn noaffine\n")
    assert [node(net, n)["params"] for n in ("bn1", "groupnorm1", "layernorm1", "lrn1", "bn2")] == \
        [16, 16, 2 * 8 * 4 * 4, 0, 0]
    assert node(net, "bn1")["buffers"] == 17 and node(net, "bn2")["buffers"] == 2 * 128 + 1
    assert net.buffers == 17 + 257


def test_grouped_and_depthwise_convolutions():
    net = loads("arch m(c=32)\ninput 32x8x8\nconv c k3 p1 g=c nobias\nconv 64 k1 g4\n")
    assert node(net, "conv1")["params"] == 32 * 1 * 9
    assert node(net, "conv1")["macs"] == 32 * 8 * 8 * 9
    assert node(net, "conv2")["params"] == 64 * 8 + 64


def test_merges():
    se = loads("arch m(c=16)\ninput 16x8x8\n"
               "mul< identity | adaptiveavgpool 1; conv c/4 k1; relu; conv c k1; sigmoid >\n")
    assert se.output_shape == (16, 8, 8)
    cat = loads("input 8x8x8\nconcat< conv 64 k1 | conv 96 k1; conv 128 k3 p1 | maxpool 3 s1 p1; "
                "conv 32 k1 >\n")
    assert cat.output_shape == (64 + 128 + 32, 8, 8)
    assert loads("input 10\nconcat< linear 3 | linear 4 >\n").output_shape == (7,)


def test_an_error_does_not_cascade_downstream():
    _, diagnostics = analyse("input 3x8x8\nconv 8 k9\nconv 8 k3\nlinear 10\n")
    assert [d.code for d in diagnostics] == ["E-KERNEL"]


def test_independent_branches_are_all_checked():
    _, diagnostics = analyse("input 8x8x8\nconcat< conv 8 k9 | conv 8 k3 g3 | identity >\n")
    assert sorted(d.code for d in diagnostics) == ["E-GROUPS", "E-KERNEL"]


def test_vector_networks():
    net = loads("input 784\nlinear 256; relu; dropout 0.2; linear 10\n")
    assert net.output_shape == (10,)
    assert net.params == 784 * 256 + 256 + 256 * 10 + 10


def test_channel_kinds_norms_and_drops_keep_the_receptive_field_and_count_no_macs():
    net = loads("input 8x9x9\nconv 8 k3\nsplit 0 2; shuffle 2; layernorm2d; layerscale; "
                "stochasticdepth 0.1\n")
    rows = [net.graph.facts[nid] for nid, _ in net.graph.layers()][-5:]
    assert all(f.rf == rows[0].rf for f in rows) and rows[0].rf[0] == (3, 3)
    assert all(f.macs == 0 for f in rows)


# ----------------------------------------------------------------------------- receptive field

# The receptive field `check` shows: the recurrence r_out = r_in + (K - 1) * j_in, but never
# more than the input plus the padding its paths read (issue 12: after a squeeze-excitation gate
# the recurrence went on growing: 182002 /175616 on a 56x56 input, 2.5e12 for MobileNetV3).

SE_CHAIN = """input 16x56x56
repeat 3 { conv 16 k3 p1; relu; mul< identity | adaptiveavgpool 1; conv 16 k1; sigmoid > }
"""


def fields(net):
    return {r["name"]: (tuple(r["rf"]["size"]), tuple(r["rf"]["stride"]))
            for r in layer_records(net.graph)}


def test_a_gated_chain_sees_the_padded_input_and_no_more():
    net = loads(SE_CHAIN)
    f = fields(net)
    # each 3x3 conv reads one padded row and column on each side of the 56x56 map: after the
    # first gate every position sees the whole padded input, 56 + 2 per conv so far
    assert f["repeat1.0.mul1.branch2.adaptiveavgpool1"] == ((58, 58), (56, 56))
    assert f["repeat1.1.conv1"] == ((60, 60), (1, 1))
    # the product is on the full-size grid (jump 1), not the 1x1 gate's: taking the gate's
    # jump made the field explode (182002 /175616 here; the recurrence alone: 115, 172)
    assert [f[f"repeat1.{i}.mul1.mul"] for i in range(3)] == [
        ((58, 58), (1, 1)), ((60, 60), (1, 1)), ((62, 62), (1, 1))]
    last = table(net).splitlines()
    assert [line for line in last if line.strip().startswith("mul ")][-1].endswith("62 /1")


def test_before_any_gate_the_field_is_the_recurrences():
    f = fields(loads(SE_CHAIN))
    assert f["repeat1.0.conv1"] == ((3, 3), (1, 1))
    assert f["repeat1.0.mul1.branch1.identity1"] == ((3, 3), (1, 1))


def padded_extent(net):
    """An upper bound worked out from the layers' own arguments: the input plus both sides'
    padding of every padded layer, in input pixels (its jump)."""
    size = net.input_shape[1]
    for r in layer_records(net.graph):
        node = net.graph.layer(r["name"])
        padding = getattr(node.args, "padding", (0, 0))
        if isinstance(padding, tuple) and r["rf"] is not None:
            jump_in = r["rf"]["stride"][0] // max(1, _stride(node))
            size += 2 * padding[0] * jump_in
    return size


def _stride(node):
    s = getattr(node.args, "stride", None)
    return s[0] if isinstance(s, tuple) else 1  # mobilenet_v3_small: convs only are padded


def test_mobilenet_v3_small_ends_within_its_padded_input():
    net = load(SPECS / "mobilenet_v3_small.arch")
    (size, _), (jump, _) = fields(net)[net.graph.output]
    assert jump == 224 and size <= padded_extent(net) < 2000  # not 2,531,518,039,459
    # the classifier sees what the global pool sees: the whole (padded) input
    f = fields(net)
    assert size == f["adaptiveavgpool1"][0][0] == net.graph.facts["adaptiveavgpool1"].bound[0]


def test_a_global_pool_covers_the_padded_map_and_stops_there():
    net = load(SPECS / "branches.arch")
    f = fields(net)
    before = net.graph.inputs("adaptiveavgpool1")[0]
    assert f["adaptiveavgpool1"][0] == f[before][0] == (40, 40)  # 32x32 input, padding 8
    assert f["linear1"][0] == (40, 40)


def test_unpadded_networks_keep_the_recurrence():
    # AlexNet's and ResNet-18's global pools reach exactly the padded input: nothing is capped
    for spec, last in (("alexnet", 355), ("resnet18", 627)):
        net = load(SPECS / f"{spec}.arch")
        facts = net.graph.facts[net.graph.output]
        assert facts.rf[0] == facts.field[0] == (last, last)


# ----------------------------------------------------------------------------- size limits


def test_w_huge_past_4_gib_of_parameters_points_at_the_largest_layer():
    # linear 1 -> N holds N weights and N biases: 2 * 2**29 values are exactly 4 GiB, not more
    assert analyse("input 1\nlinear 536870912\n")[1] == []
    _, diagnostics = analyse("input 1\nrelu\nlinear 536870913\n")
    assert [(d.code, d.span.line, d.message) for d in diagnostics] == [
        ("W-HUGE", 3, "the network has 1.07G parameters: about 4.0 GiB in float32; this layer "
                      "alone has 1.07G")]


def test_w_huge_past_4_gib_of_one_layers_output_points_at_the_largest_one():
    assert analyse("input 1x32768x32768\nrelu\n")[1] == []  # 2**30 values: exactly 4 GiB
    _, diagnostics = analyse("input 1x32768x32769\nconv 8 k3 p1\nrelu\n")
    assert [(d.code, d.span.line, d.message) for d in diagnostics] == [
        ("W-HUGE", 2, "this layer's output, 8x32768x32769, needs about 32.0 GiB in float32 for "
                      "a single sample")]  # once, at the first of the two 32 GiB outputs


def test_no_w_huge_beside_an_error():
    _, diagnostics = analyse("input 1\nlinear 536870913\nconv 8 k3\n")
    assert [d.code for d in diagnostics] == ["E-RANK"]


def test_the_build_limit_is_the_memory_given():
    import torch

    from archdsl.torch_backend import to_torch

    network = loads("input 3x8x8\nconv 8 k3\nbn\nrelu\nflatten\nlinear 10\n")
    need = network.memory["params"]
    assert need == 4 * (network.params + network.buffers)  # float32 parameters and buffers
    model = to_torch(network, memory_limit=need)  # exactly enough: the whole network is built
    assert sum(p.numel() for p in model.parameters()) == network.params
    assert sum(b.numel() for b in model.buffers()) == network.buffers
    with torch.no_grad():
        assert tuple(model.eval()(torch.zeros(2, 3, 8, 8)).shape) == (2, 10)
    with pytest.raises(SpecError) as info:
        to_torch(network, memory_limit=need - 1)  # one byte short: refused
    from archdsl.report import human_bytes

    (d,) = info.value.diagnostics
    assert d.code == "E-TOO-BIG" and d.is_error
    assert d.message.startswith(f"building this network needs about {human_bytes(need)} for "
                                f"its parameters")
    assert d.span.line == 6  # the largest layer: linear 10


# ----------------------------------------------------------------------------- located errors


def test_notes_are_rendered_with_their_own_place_and_caret():
    text = ("input 3x8x8\nblock inner(c) { conv c k3; conv c k9 }\nblock outer(c) {\n"
            "  inner c\n}\nouter 8\n")
    _, diagnostics = analyse(text, "t.arch")
    assert render_all(diagnostics, text) == (
        "t.arch:2:36: error[E-KERNEL]: the 9x9 kernel is larger than the padded 6x6 input "
        "(6+0 = 6 along H)\n"
        "  |\n"
        "2 | block inner(c) { conv c k3; conv c k9 }\n"
        "  |                                    ^^ input is only 6x6 here\n"
        "  = hint: use a smaller kernel, more padding, or less downsampling before this layer\n"
        "t.arch:4:3: note: in block `inner`, called here\n"
        "  |\n"
        "4 |   inner c\n"
        "  |   ^^^^^^^\n"
        "t.arch:6:1: note: in block `outer`, called here\n"
        "  |\n"
        "6 | outer 8\n"
        "  | ^^^^^^^")
