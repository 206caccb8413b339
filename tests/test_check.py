"""The static pass: shapes, parameters, MACs, receptive fields, memory and totals."""

from archdsl import loads


def node(net, name):
    """What the checker found for one layer (its Facts), as a dict."""
    return vars(net.graph.facts[name])


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
    from archdsl.network import analyse

    _, diagnostics = analyse("input 3x8x8\nconv 8 k9\nconv 8 k3\nlinear 10\n")
    assert [d.code for d in diagnostics] == ["E-KERNEL"]


def test_independent_branches_are_all_checked():
    from archdsl.network import analyse

    _, diagnostics = analyse("input 8x8x8\nconcat< conv 8 k9 | conv 8 k3 g3 | identity >\n")
    assert sorted(d.code for d in diagnostics) == ["E-GROUPS", "E-KERNEL"]


def test_vector_networks():
    net = loads("input 784\nlinear 256; relu; dropout 0.2; linear 10\n")
    assert net.output_shape == (10,)
    assert net.params == 784 * 256 + 256 + 256 * 10 + 10


def test_a_broadcast_gate_keeps_the_full_size_branch_jump():
    """Squeeze-and-excitation: the 1x1 gate sees the whole map, but the product is on the
    full-size grid; taking the gate's jump made the field explode (182002 /175616 here)."""
    net = loads("input 16x56x56\nrepeat 3 { conv 16 k3 p1; relu; "
                "mul< identity | adaptiveavgpool 1; conv 16 k1; sigmoid > }\n")
    muls = [r["rf"] for r in net.layers() if r["op"] == "mul"]
    assert [m["stride"] for m in muls] == [[1, 1]] * 3
    # the first gate's global pool sees the whole padded input, 56 + 2 (one padded row each
    # side of the conv); after it each conv reads two more padded rows, and no field is larger
    # than the input and that padding (the recurrence alone went on: 115, 172)
    assert [m["size"][0] for m in muls] == [56 + 2, 56 + 4, 56 + 6]
