"""The receptive field `check` shows: the recurrence r_out = r_in + (K - 1) * j_in, but never
more than the input plus the padding its paths read (issue 12: after a squeeze-excitation gate
the recurrence went on growing: 182002 /175616 on a 56x56 input, 2.5e12 for MobileNetV3)."""

from pathlib import Path

import archdsl
from archdsl.report import layer_records, table

SPECS = Path(__file__).resolve().parent.parent / "specs"

SE_CHAIN = """input 16x56x56
repeat 3 { conv 16 k3 p1; relu; mul< identity | adaptiveavgpool 1; conv 16 k1; sigmoid > }
"""


def fields(net):
    return {r["name"]: (tuple(r["rf"]["size"]), tuple(r["rf"]["stride"]))
            for r in layer_records(net.graph)}


def test_a_gated_chain_sees_the_padded_input_and_no_more():
    net = archdsl.loads(SE_CHAIN)
    f = fields(net)
    # each 3x3 conv reads one padded row and column on each side of the 56x56 map: after the
    # first gate every position sees the whole padded input, 56 + 2 per conv so far
    assert f["repeat1.0.mul1.branch2.adaptiveavgpool1"] == ((58, 58), (56, 56))
    assert f["repeat1.0.mul1.mul"] == ((58, 58), (1, 1))
    assert f["repeat1.1.conv1"] == ((60, 60), (1, 1))
    assert f["repeat1.2.mul1.mul"] == ((62, 62), (1, 1))
    last = table(net).splitlines()
    assert [line for line in last if line.strip().startswith("mul ")][-1].endswith("62 /1")


def test_before_any_gate_the_field_is_the_recurrences():
    f = fields(archdsl.loads(SE_CHAIN))
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
    net = archdsl.load(SPECS / "mobilenet_v3_small.arch")
    (size, _), (jump, _) = fields(net)[net.graph.output]
    assert jump == 224 and size <= padded_extent(net) < 2000  # not 2,531,518,039,459
    # the classifier sees what the global pool sees: the whole (padded) input
    f = fields(net)
    assert size == f["adaptiveavgpool1"][0][0] == net.graph.facts["adaptiveavgpool1"].bound[0]


def test_a_global_pool_covers_the_padded_map_and_stops_there():
    net = archdsl.load(SPECS / "branches.arch")
    f = fields(net)
    before = net.graph.inputs("adaptiveavgpool1")[0]
    assert f["adaptiveavgpool1"][0] == f[before][0] == (40, 40)  # 32x32 input, padding 8
    assert f["linear1"][0] == (40, 40)


def test_unpadded_networks_keep_the_recurrence():
    # AlexNet's and ResNet-18's global pools reach exactly the padded input: nothing is capped
    for spec, last in (("alexnet", 355), ("resnet18", 627)):
        net = archdsl.load(SPECS / f"{spec}.arch")
        facts = net.graph.facts[net.graph.output]
        assert facts.rf[0] == facts.field[0] == (last, last)
