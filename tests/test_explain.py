"""`archdsl explain`: every number it shows is recomputed here with this file's own formulas
(the ones tutorials teach), its substituted arithmetic evaluates to the value it states, and
it agrees with `check` for every layer of every spec in specs/."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

import archdsl
from archdsl.explain import UnknownLayer, explain, explain_layer, render_text
from archdsl.layers import REGISTRY
from archdsl.layers.base import FLOAT, INT, PAIR, LayerKind, layer
from archdsl.layers.merge import MergeKind
from helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
TRICKY = "input 3x31x31; conv 8 k3 d2 p1; maxpool 3 s2 ceil; conv 16 k3 g4 p1 nobias"


# ----------------------------------------------------------------------------- a hand calculation


def out_size(i, k, s, pad_total, d=1, ceil=False, pad_left=0):
    """O = floor((I - K_eff + 2P) / S) + 1, or ceil with PyTorch's last-window rule."""
    k_eff = d * (k - 1) + 1
    exact = (i - k_eff + pad_total) / s
    o = (math.ceil(exact) if ceil else math.floor(exact)) + 1
    if ceil and (o - 1) * s >= i + pad_left:
        o -= 1
    return o


def grow(rf, kernel, stride):
    (r, j) = rf
    return (tuple(r[a] + (kernel[a] - 1) * j[a] for a in (0, 1)),
            tuple(j[a] * stride[a] for a in (0, 1)))


def widest_adaptive(i, o):
    return max(math.ceil((n + 1) * i / o) - math.floor(n * i / o) for n in range(o))


NO_WINDOW = ((1, 1), (1, 1))


def by_hand(op, a, xs, rfs):
    """(output, params, buffers, macs, rf, window) of one layer, from its arguments `a` (a
    dict); `window` is the (kernel, stride) it slides over H and W, "merge" for a merge."""
    x, rf = xs[0], rfs[0]
    if op == "conv":
        k, s, d, g = a["kernel"], a["stride"], a["dilation"], a["groups"]
        pads = [d[i] * (k[i] - 1) if a["padding"] == "same" else
                0 if a["padding"] == "valid" else 2 * a["padding"][i] for i in (0, 1)]
        hw = tuple(out_size(x[1 + i], k[i], s[i], pads[i], d[i]) for i in (0, 1))
        per_position = x[0] // g * k[0] * k[1]
        params = a["out"] * per_position + (a["out"] if a["bias"] else 0)
        k_eff = tuple(d[i] * (k[i] - 1) + 1 for i in (0, 1))
        return ((a["out"],) + hw, params, 0, a["out"] * hw[0] * hw[1] * per_position,
                grow(rf, k_eff, s), (k_eff, s))
    if op in ("maxpool", "avgpool"):
        k, p = a["kernel"], a["padding"]
        s = a["stride"] or k
        d = a.get("dilation", (1, 1))
        hw = tuple(out_size(x[1 + i], k[i], s[i], 2 * p[i], d[i], a["ceil"], p[i]) for i in (0, 1))
        k_eff = tuple(d[i] * (k[i] - 1) + 1 for i in (0, 1))
        return ((x[0],) + hw, 0, 0, 0, grow(rf, k_eff, s), (k_eff, s))
    if op in ("adaptiveavgpool", "adaptivemaxpool"):
        o = a["size"]
        kernel = tuple(widest_adaptive(x[1 + i], o[i]) for i in (0, 1))
        stride = tuple(max(x[1 + i] // o[i], 1) for i in (0, 1))
        return ((x[0],) + tuple(o), 0, 0, 0, grow(rf, kernel, stride), (kernel, stride))
    if op == "linear":  # on a vector, or on each token of a sequence
        y = x[:-1] + (a["out"],)
        return (y, x[-1] * a["out"] + (a["out"] if a["bias"] else 0), 0,
                math.prod(y[:-1]) * x[-1] * a["out"], rf, None)
    if op == "bn":
        return (x, 2 * x[0] if a["affine"] else 0, 2 * x[0] + 1, 0, rf, None)
    if op in ("groupnorm", "layernorm"):
        count = x[0] if op == "groupnorm" else x[-1] if len(x) == 2 else math.prod(x)
        return (x, 2 * count if a["affine"] else 0, 0, 0, rf, None)
    if op == "prelu":
        return (x, x[0] if a["per_channel"] else 1, 0, 0, rf, None)
    if op == "flatten":
        return ((math.prod(x),), 0, 0, 0, grow(rf, x[1:], (1, 1)) if len(x) == 3 else rf,
                (x[1:], (1, 1)) if len(x) == 3 else None)
    if op == "concat":
        y = (sum(s[0] for s in xs),) + x[1:]
    elif op in ("add", "mul"):
        y = tuple(max(dims) for dims in zip(*xs))
    else:
        return by_hand_zoo(op, a, x, rf)
    # the widest branch's field; the jump of the branches at the output's size (a broadcast
    # 1x1 gate's grid is not the output's)
    full = [r for r, s in zip(rfs, xs) if len(s) == 3 and s[1:] == y[1:]] or rfs
    return (y, 0, 0, 0, (tuple(max(r[0][i] for r in rfs) for i in (0, 1)),
                         tuple(max(r[1][i] for r in full) for i in (0, 1))), "merge")


IMAGE = {}  # the input's H x W, for the field after attention (set by check_by_hand)


def by_hand_zoo(op, a, x, rf):
    """The same for the kinds added for the torchvision zoo, from torch's and torchvision's
    module layouts (nn.MultiheadAttention, nn.Linear, LayerNorm2d, Swin's and MaxViT's
    modules), and the MACs fvcore counts: one per multiply-add of a linear map or an
    attention product."""
    if op == "tokens":
        return ((x[1] * x[2], x[0]), 0, 0, 0, rf, None)
    if op == "classtoken":
        return ((1, a["dim"]), a["dim"], 0, 0, rf, None)
    if op == "posembed":
        return (x, x[0] * x[1], 0, 0, rf, None)
    if op == "token":
        return ((x[1],), 0, 0, 0, rf, None)
    if op == "attention":
        n, c = x
        in_proj = 3 * c * c + (3 * c if a["bias"] else 0)
        out_proj = c * c + (c if a["bias"] else 0)
        macs = 3 * n * c * c + n * c * c + n * n * c + n * n * c  # q k v, out, QK^T, AV
        return (x, in_proj + out_proj, 0, macs, (IMAGE["hw"], rf[1]), None)
    if op == "split":
        chunks = list(range(x[0]))
        size = -(-x[0] // a["chunks"])
        pieces = [chunks[i:i + size] for i in range(0, x[0], size)]
        return ((len(pieces[a["index"]]),) + x[1:], 0, 0, 0, rf, None)
    if op in ("layernorm2d", "layerscale", "pointwise"):
        c = x[0]
        if op == "pointwise":
            out = a["out"]
            return ((out,) + x[1:], c * out + (out if a["bias"] else 0), 0,
                    x[1] * x[2] * c * out, rf, None)
        return (x, (2 * c if a["affine"] else 0) if op == "layernorm2d" else c, 0, 0, rf, None)
    return by_hand_windows(op, a, x, rf)


def by_hand_windows(op, a, x, rf):
    """Swin's and MaxViT's kinds: torchvision's parameters, and MACs on the map padded to
    whole windows."""
    if op == "windowattention":
        c, (wh, ww), heads = x[0], a["window"], a["heads"]
        params = 3 * c * c + c * c + (4 * c if a["bias"] else 0)
        offsets = (2 * wh - 1) * (2 * ww - 1)
        params += heads + 2 * 512 + 512 + 512 * heads if a["cosine"] else offsets * heads
        params += 2 * c if a["postnorm"] else 0
        buffers = (wh * ww) ** 2 + (offsets * 2 if a["cosine"] else 0)
        positions = math.ceil(x[1] / wh) * wh * math.ceil(x[2] / ww) * ww
        macs = positions * (4 * c * c + 2 * wh * ww * c)
        macs += offsets * (2 * 512 + 512 * heads) if a["cosine"] else 0
        kernel = (min(wh, x[1]), min(ww, x[2]))
        return (x, params, buffers, macs, grow(rf, kernel, (1, 1)), (kernel, (1, 1)))
    if op == "patchmerging":
        c = x[0]
        y = (2 * c, math.ceil(x[1] / 2), math.ceil(x[2] / 2))
        norm = 2 * (2 * c) if a["postnorm"] else 2 * (4 * c)
        return (y, 4 * c * 2 * c + norm, 0, y[1] * y[2] * 4 * c * 2 * c,
                grow(rf, (2, 2), (2, 2)), ((2, 2), (2, 2)))
    if op == "mlp":
        c, h = x[0], a["hidden"]
        params = (c * h + h) + (h * c + c) + (2 * c if a["postnorm"] else 0)
        return (x, params, 0, x[1] * x[2] * (c * h + h * c), rf, None)
    if op == "partitionattention":
        c, p = x[0], a["size"]
        params = 3 * c * c + 3 * c + c * c + c + (2 * p - 1) ** 2 * (c // a["head_dim"])
        macs = x[1] * x[2] * (4 * c * c + 2 * p * p * c)
        if a["partition"] == "grid":  # p taps, x / p apart
            kernel = tuple((p - 1) * (x[1 + i] // p) + 1 for i in (0, 1))
        else:
            kernel = (p, p)
        return (x, params, p ** 4, macs, grow(rf, kernel, (1, 1)), (kernel, (1, 1)))
    return (x, 0, 0, 0, rf, None)  # activations, dropout, identity, lrn, shuffle, ...


def next_bound(xs, y, rfs, bounds, window):
    """The input's extent plus the padding read on the paths to here (docs/language.md: no
    field is larger): a window reaching (O - 1) * S + K past its I inputs reads that much
    padding, in input pixels (times j_in); a merge takes its widest branch's."""
    if window == "merge":
        return tuple(max(b[i] for b in bounds) for i in (0, 1))
    x, rf, bound = xs[0], rfs[0], bounds[0]
    if len(x) != 3:
        return bound
    kernel, stride = window or NO_WINDOW
    out = y[1:] if len(y) == 3 else (1, 1)
    return tuple(bound[i] + max(0, (out[i] - 1) * stride[i] + kernel[i] - x[1 + i]) * rf[1][i]
                 for i in (0, 1))


def check_by_hand(network):
    """Walk the network with `by_hand`, comparing each layer's explanation on the way: the
    receptive field shown is the recurrence's, capped at the bound."""
    graph = network.graph
    hw = tuple(network.input_shape[1:])
    IMAGE["hw"] = hw
    state = {"input": (tuple(network.input_shape), ((1, 1), (1, 1)), hw)}
    explanations = explain(network)
    assert len(explanations) == len(graph) - 1
    for e in explanations:
        feeds = graph.inputs(e.name)
        xs, rfs, bounds = ([state[f][i] for f in feeds] for i in (0, 1, 2))
        y, params, buffers, macs, rf, window = by_hand(
            e.op, graph.layer(e.name).args.as_dict(), xs, rfs)
        bound = next_bound(xs, y, rfs, bounds, window)
        shown = (tuple(min(rf[0][i], bound[i]) for i in (0, 1)), rf[1])
        assert [tuple(x) for x in e.input] == xs, e.name
        assert (tuple(e.output), e.params, e.buffers, e.macs, e.rf) == \
            (y, params, buffers, macs, shown), e.name
        state[e.name] = (y, rf, bound)
    return {e.name: e for e in explanations}


def steps(e):
    return {s.what: s for s in e.steps}


# ----------------------------------------------------------------------------- the numbers


def test_alexnet_by_hand():
    found = check_by_hand(archdsl.load(SPECS / "alexnet.arch"))
    assert sum(e.params for e in found.values()) == 61_100_840  # torchvision's AlexNet
    conv1 = steps(found["conv1"])
    size = conv1["output size (H and W)"]
    assert size.formula == "O = floor((I - K + 2P) / S) + 1"
    assert size.substituted.startswith("floor((224 - 11 + 2*2) / 4) + 1")
    assert size.value == 55 and "rounds down" in size.note
    assert conv1["weight"].value == 64 * 3 * 11 * 11 and conv1["bias"].value == 64
    assert conv1["parameters"].value == 23_296 and conv1["MACs"].value == 70_276_800
    assert conv1["receptive field (H and W)"].value == 11 and conv1["jump (H and W)"].value == 4
    assert steps(found["linear1"])["weight"].value == 9216 * 4096
    assert "output = input" in steps(found["relu1"])["output"].formula


def test_resnet18_by_hand():
    found = check_by_hand(archdsl.load(SPECS / "resnet18.arch"))
    assert sum(e.params for e in found.values()) == 11_689_512  # torchvision's ResNet-18
    bn = steps(found["bn1"])
    assert bn["weight (gamma)"].value == bn["bias (beta)"].value == 64
    assert bn["buffers"].value == 64 + 64 + 1
    add = found["basic3.residual1.add"]
    assert "projection" in steps(add)["output"].note and add.output == (128, 28, 28)
    assert "identity" in steps(found["basic1.residual1.add"])["output"].note
    assert steps(found["basic1.residual1.add"])["receptive field (H and W)"].substituted == \
        "max(27, 11)"


def test_dilation_ceil_and_groups_by_hand():
    found = check_by_hand(archdsl.loads(TRICKY))
    conv1, pool, conv2 = (steps(found[n]) for n in ("conv1", "maxpool1", "conv2"))
    assert conv1["kernel reach (H and W)"].value == 5  # 2 * (3 - 1) + 1
    assert conv1["output size (H and W)"].formula == "O = floor((I - K_eff + 2P) / S) + 1"
    assert conv1["output size (H and W)"].value == 29 and conv1["parameters"].value == 224
    assert conv1["MACs"].value == 8 * 29 * 29 * 3 * 3 * 3
    assert pool["output size (H and W)"].formula.startswith("O = ceil(")
    assert pool["output size (H and W)"].value == 14
    assert conv2["weight"].value == 16 * (8 // 4) * 3 * 3 and conv2["bias"].value == 0
    assert "groups 4" in conv2["weight"].note and conv2["MACs"].value == 56_448
    assert found["conv2"].rf == ((11, 11), (2, 2))


@pytest.mark.parametrize("spec, size, words", [
    ("input 1x6x6; maxpool 3 s2 ceil", 3, "rounds up"),          # floor would give 2
    ("input 1x5x5; maxpool 2 s2 p1 ceil", 3, "last-window rule"),  # ceil gives 4, minus 1
    ("input 1x8x8; maxpool 3 s2", 3, "rounds down"),         # 5 / 2 = 2.5
])
def test_rounding_is_explained(spec, size, words):
    e = check_by_hand(archdsl.loads(spec))["maxpool1"]
    step = steps(e)["output size (H and W)"]
    assert step.value == size and words in step.note


def test_padding_modes_rectangles_and_merges_by_hand():
    found = check_by_hand(archdsl.loads(
        "input 3x10x12\nconcat< conv 8 k1 | conv 4 k4 same reflect >\n"
        "mul< relu | adaptiveavgpool 1 >\nconv 6 k3x1 s2x1 valid\nadaptivemaxpool 3x5\n"
        "groupnorm 2; layernorm; prelu perchannel; avgpool 2\nflatten; bn noaffine; "
        "linear 10 nobias"))
    same = steps(found["concat1.branch2.conv1"])
    assert same["padding (H and W)"].value == [1, 2]  # an even kernel: one more after
    assert same["output size (H)"].value == 10 and same["output size (W)"].value == 12
    assert "reflect" in same["output size (W)"].note
    assert steps(found["concat1.concat"])["channels"].substituted == "8 + 4"
    assert "broadcast" in steps(found["mul1.mul"])["output"].formula
    assert {"output size (H)", "output size (W)"} <= set(steps(found["conv1"]))
    assert steps(found["bn1"])["parameters"].formula == "none (noaffine)"


ARITHMETIC = re.compile(r"[0-9 +\-*/().,a-z]*")


def test_every_substitution_evaluates_to_its_value():
    """A learner can type each `substituted` into Python and get the step's value."""
    checked = 0
    networks = [archdsl.load(SPECS / f"{spec}.arch") for spec in
                ("alexnet", "resnet18", "googlenet", "mobilenet_v2", "mobilenet_v3_small",
                 "swin_v2", "vit")]
    networks += [archdsl.loads(t) for t in (TRICKY, SE_CHAIN, *SMALL.values())]
    for network in networks:
        for e in explain(network):
            for s in e.steps:
                if not isinstance(s.value, int) or not ARITHMETIC.fullmatch(s.substituted):
                    continue
                for part in s.substituted.split(" = "):
                    value = eval(part, {"floor": math.floor, "ceil": math.ceil, "max": max,
                                        "min": min})
                    assert value == s.value, (e.name, s.what, part, s.value)
                checked += 1
    assert checked > 1000


@pytest.mark.parametrize("spec", sorted(p.name for p in SPECS.glob("*.arch")))
def test_every_spec_agrees_with_check(spec):
    network = archdsl.load(SPECS / spec)
    explained = explain(network)
    assert [e.name for e in explained] == [n for n, node in network.graph.layers()
                                           if node.kind is not None]
    for e in explained:
        facts = network.graph.facts[e.name]
        assert (tuple(e.output), e.params, e.macs) == (tuple(facts.shape), facts.params,
                                                       facts.macs), e.name


def test_explain_runs_the_rules_check_ran(monkeypatch):
    """One code path: a kind's rules give check its numbers and explain its steps, so a
    change to the rules shows in both (there is no second derivation to drift)."""
    kind = type(REGISTRY["conv"])
    real = kind.rules

    def doubled(self, a, x, calc):
        real(self, a, x, calc)
        calc.params = calc.step("parameters, twice", "2 * parameters", f"2 * {calc.params}",
                                2 * calc.params)

    monkeypatch.setattr(kind, "rules", doubled)
    network = archdsl.loads("input 3x8x8\nconv 4 k3\n")
    assert network.params == 2 * (4 * 3 * 9 + 4)
    (e,) = explain(network)
    assert e.params == network.params
    assert [s.value for s in e.steps if s.what == "parameters, twice"] == [network.params]


def test_an_explanation_is_not_a_check_of_its_own():
    """explain reads the graph's facts for nothing but the inputs: an output fact changed by
    hand does not change the explanation (it is worked out again by the same rules)."""
    network = archdsl.load(SPECS / "alexnet.arch")
    network.graph.facts["conv1"].params += 1
    assert explain_layer(network.graph, "conv1").params == 23296


# ----------------------------------------------------------------------------- every kind


REQUIRED = {"out": "4", "groups": "2", "size": "2", "kernel": "2", "index": "1"}


def statement(kind) -> str:
    """One statement using `kind` with made-up values for its required arguments."""
    if isinstance(kind, MergeKind):
        return f"{kind.name}< identity | identity >"
    words = [kind.name]
    for arg in kind.args:
        if not arg.required:
            continue
        value = REQUIRED.get(arg.name, arg.choices[0] if arg.choices else
                             {INT: "2", PAIR: "1", FLOAT: "0.5"}.get(arg.type, "1"))
        words.append(value if arg.name in kind.positional else
                     f"{arg.flag}{value}" if arg.flag else f"{arg.name}={value}")
    return " ".join(words)


def test_every_registered_kind_is_explained():
    for name, kind in sorted(REGISTRY.items()):
        network = None
        for before in ("input 4x8x8", "input 4", "input 4x8x8; tokens"):  # a map, a vector, tokens
            network, _ = archdsl.analyse(f"{before}\n{statement(kind)}\n")
            if network is not None:
                break
        assert network is not None, f"no sample spec checks for {name}: {statement(kind)}"
        explained = [e for e in explain(network) if e.op == name]
        assert explained and all(e.steps for e in explained), name
        assert render_text(explained)


def test_a_new_kind_is_explained_by_its_own_rules():
    """A kind registered anywhere explains itself: its rules' steps, and the identity's one
    step for a kind that changes nothing."""
    @layer("padtwo", family="shape", summary="pads two zeros on every side, with a scale")
    class PadTwo(LayerKind):
        def rules(self, a, x, calc):
            c, h, w = x
            out = calc.per_axis("output size", lambda i: ("O = I + 4", f"{x[1 + i]} + 4",
                                                          x[1 + i] + 4, "two zeros each side"))
            calc.output = (c, *out)
            calc.params = calc.step("parameters", "C scales", str(c), c)

    try:
        network = archdsl.loads("input 3x8x8; padtwo; relu")
        assert network.output_shape == (3, 12, 12) and network.params == 3
        e = explain(network)
        pad, relu = steps(e[0]), steps(e[1])
        assert pad["output size (H and W)"].substituted == "8 + 4"
        assert pad["parameters"].value == 3 and e[0].output == (3, 12, 12)
        assert relu["output"].formula == "output = input"
        assert "no parameters" in relu["output"].note
    finally:
        REGISTRY.pop("padtwo", None)


def test_a_kind_with_rules_of_the_old_form_is_refused_at_registration():
    """`shape`/`params` methods would be silently ignored beside `rules`: refused, with
    what to write instead."""
    with pytest.raises(TypeError, match=r"padthree.*`shape`.*rules\(self, a, x, calc\)"):
        @layer("padthree", family="shape")
        class PadThree(LayerKind):
            def shape(self, a, x):
                return x
    assert "padthree" not in REGISTRY


# ----------------------------------------------------------------------------- the command


def run(capsys, *argv):
    return run_cli(capsys, "explain", *argv)


def test_json_is_valid_and_complete(capsys):
    code, out, err = run(capsys, str(SPECS / "resnet18.arch"), "--format", "json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    network = archdsl.load(SPECS / "resnet18.arch")
    assert doc["arch"] == "resnet18"
    assert [r["name"] for r in doc["layers"]] == [r["name"] for r in network.layers()]
    for record, check in zip(doc["layers"], network.layers()):
        assert {"name", "op", "line", "input", "output", "steps"} <= set(record)
        assert (record["output"], record["params"], record["macs"], record["rf"]) == \
            (check["output"], check["params"], check["macs"], check["rf"])
        assert record["steps"] and all({"formula", "substituted", "value"} <= set(s)
                                       for s in record["steps"])


def test_layers_by_name_line_block_call_and_block(capsys):
    alexnet, resnet = str(SPECS / "alexnet.arch"), str(SPECS / "resnet18.arch")

    def names(*argv):
        code, out, err = run(capsys, *argv, "--format", "json")
        assert code == 0, err
        return [r["name"] for r in json.loads(out)["layers"]]

    assert names(alexnet, "conv1") == ["conv1"]
    assert names(alexnet, "5") == ["conv1", "relu1", "maxpool1"]  # line 5
    assert names(alexnet, "linear3", "conv2") == ["conv2", "linear3"]  # network order
    assert names(resnet, "basic1.residual1.body.conv1") == ["basic1.residual1.body.conv1"]
    assert names(resnet, "11") == names(resnet, "basic1", "basic2")  # `basic 64; basic 64`
    assert len(names(resnet, "basic")) == 8 * 7 + 3 * 2  # 8 calls, 3 projections
    code, out, _ = run(capsys, alexnet, "maxpool1")
    assert code == 0 and out.startswith("maxpool1  (maxpool, line 5: maxpool 3 s2)")
    assert "= floor((55 - 3 + 2*0) / 2) + 1 = floor(52 / 2) + 1 = 26 + 1 = 27" in out


@pytest.mark.parametrize("argv, words", [
    (("conv9",), "did you mean `conv1`?"),
    (("body.conv1",), "`basic1.residual1.body.conv1`"),
    (("3",), "layers are on lines 6-7, 10-16"),
])
def test_an_unknown_layer_is_one_line_and_exit_2(capsys, argv, words):
    code, out, err = run(capsys, str(SPECS / "resnet18.arch"), *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("archdsl explain: error: ")
    assert words in err
    with pytest.raises(UnknownLayer):
        explain(archdsl.load(SPECS / "resnet18.arch"), list(argv))


def test_unreadable_and_broken_specs(tmp_path, capsys):
    code, _, err = run(capsys, str(tmp_path / "missing.arch"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "cannot read" in err
    broken = tmp_path / "broken.arch"
    broken.write_text("input 3x8x8\nconv 4 k9\n")
    code, out, err = run(capsys, str(broken))
    assert code == 1 and out == "" and "E-KERNEL" in err
    assert "explained up to the first error; 1 layer from there on left unexplained" in err


def test_a_spec_with_errors_is_explained_up_to_the_first_one(tmp_path, capsys):
    """Issue 25: the learner sees where the size went before the layer that failed."""
    spec = tmp_path / "shrinks.arch"
    spec.write_text("input 3x32x32\nconv 16 k3 p1\nmaxpool 2\nconv 32 k3 p1\nmaxpool 2\n"
                    "conv 64 k5\nconv 64 k5\n")
    code, out, err = run(capsys, str(spec))
    assert code == 1
    assert [line.split()[0] for line in out.splitlines() if line and not line[0].isspace()] == \
        ["conv1", "maxpool1", "conv2", "maxpool2", "conv3"]
    assert "32x8x8 -> 64x4x4" in out and "error[E-KERNEL]" in err and "7 | conv 64 k5" in err
    code, out, err = run(capsys, str(spec), "conv4", "--format", "json")
    assert code == 1 and json.loads(out)["layers"] == [] and "left unexplained" in err
    spec.write_text("input 3x8x8\nzzz 4\n")  # no layer graph at all: nothing to show
    code, out, err = run(capsys, str(spec))
    assert code == 1 and out == "" and "nothing explained" in err


def test_explaining_imports_no_torch():
    code = ("import sys, archdsl; from archdsl.explain import explain, render_text; "
            "render_text(explain(archdsl.load('specs/googlenet.arch'))); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))")
    run_ = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run_.returncode == 0, run_.stderr
    assert run_.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- the zoo's kinds


ZOO_SPECS = ("vit", "swin", "swin_v2", "maxvit", "convnext", "shufflenet_v2", "regnet_y",
             "mobilenet_v3_small", "efficientnet")


@pytest.mark.parametrize("spec", ZOO_SPECS)
def test_zoo_specs_by_hand(spec):
    check_by_hand(archdsl.load(SPECS / f"{spec}.arch"))


SMALL = {
    "channels": "input 7x5x5\nconcat< split 0 3 | split 2 3 >\nshuffle 2\nlayernorm2d noaffine\n"
                "pointwise 6 nobias\nlayernorm2d\npointwise 3\nlayerscale 0.1\n"
                "stochasticdepth 0.2 batch",
    "tokens": "input 8x6x6\nconv 8 k2 s2\ntokens\nconcat< classtoken 8 | identity >\nposembed\n"
              "residual< layernorm; attention 2 nobias >\nattention 4\nlinear 5\ntoken 0\n"
              "linear 3",
    "windows": "input 8x10x9\nwindowattention 2 window=4x3 shift=2x1\npatchmerging\n"
               "mlp 12 postnorm\nwindowattention 4 window=3 cosine postnorm nobias\n"
               "patchmerging postnorm",
    "partitions": "input 8x8x8\npartitionattention window size=2 head_dim=4\n"
                  "partitionattention grid size=4 head_dim=2",
    "shortcut_first": "input 8x8x8\nshortcut_first< conv 16 k1 s2 nobias; bn | "
                      "conv 16 k3 s2 p1 nobias; bn >",
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_zoo_kinds_by_hand(name):
    check_by_hand(archdsl.loads(SMALL[name]))


def test_channel_kinds_show_their_arithmetic():
    found = check_by_hand(archdsl.loads(SMALL["channels"]))
    last = steps(found["concat1.branch2.split1"])  # 7 channels in chunks of 3: 3, 3 and 1
    assert last["chunk size"].value == 3 and last["chunks made"].value == 3
    assert last["channels"].value == 1 and "channels 6 to 6" in last["channels"].note
    assert found["shuffle1"].output == (4, 5, 5)
    assert steps(found["shuffle1"])["channels per group"].value == 2
    assert steps(found["layernorm2d1"])["parameters"].formula == "none (noaffine)"
    assert steps(found["layernorm2d2"])["parameters"].value == 2 * 6
    pointwise = steps(found["pointwise2"])
    assert pointwise["parameters"].value == 6 * 3 + 3 and pointwise["MACs"].value == 5 * 5 * 6 * 3
    assert steps(found["layerscale1"])["parameters"].value == 3
    assert "whole batch" in steps(found["stochasticdepth1"])["output"].note


def test_token_kinds_show_their_arithmetic():
    found = check_by_hand(archdsl.loads(SMALL["tokens"]))
    assert found["tokens1"].output == (9, 8) and steps(found["tokens1"])["tokens"].value == 9
    assert steps(found["concat1.branch1.classtoken1"])["parameters"].value == 8
    assert steps(found["posembed1"])["parameters"].substituted == "10 * 8"
    bare = steps(found["residual1.body.attention1"])
    assert bare["parameters"].value == 4 * 8 * 8 and "in_proj bias" not in bare
    attention = steps(found["attention1"])
    assert attention["head size"].value == 2
    assert attention["in_proj weight"].value == 3 * 8 * 8
    assert attention["parameters"].value == 4 * 8 * 8 + 4 * 8
    assert attention["MACs"].value == 4 * 10 * 8 * 8 + 2 * 10 * 10 * 8
    assert attention["receptive field (H and W)"].value == 6  # the whole 6x6 input
    assert found["attention1"].rf == ((6, 6), (2, 2))
    assert steps(found["linear1"])["MACs"].value == 10 * 8 * 5  # per token
    assert found["token1"].output == (5,)


def test_window_kinds_show_their_arithmetic():
    found = check_by_hand(archdsl.loads(SMALL["windows"]))
    first = steps(found["windowattention1"])
    assert first["padded to whole windows (H)"].value == 12  # 10 up to whole windows of 4
    assert first["padded to whole windows (W)"].value == 9
    assert first["position bias table"].value == 7 * 5 * 2 and first["buffers"].value == 144
    assert "rolled by 2x1" in first["output"].note
    merge = steps(found["patchmerging1"])
    assert merge["output size (W)"].value == 5 and "odd side" in merge["output size (W)"].note
    assert found["patchmerging1"].params == 8 * 8 * 8 + 2 * 4 * 8
    cosine = steps(found["windowattention2"])
    assert cosine["position bias MLP"].value == 3 * 512 + 512 * 4
    assert "in_proj bias" not in cosine and "qkv bias" not in cosine
    assert steps(found["mlp1"])["parameters"].value == 2 * 16 * 12 + 12 + 16 + 2 * 16


def test_shortcut_first_says_it_is_a_sum_of_equal_shapes():
    found = check_by_hand(archdsl.loads(SMALL["shortcut_first"]))
    add = steps(found["shortcut_first1.add"])["output"]
    assert add.formula == "shortcut + body: equal shapes, no broadcasting"
    assert "registered first" in add.note


SE_CHAIN = ("input 16x56x56\nrepeat 3 { conv 16 k3 p1; relu; "
            "mul< identity | adaptiveavgpool 1; conv 16 k1; sigmoid > }")


@pytest.mark.parametrize("spec", ["mobilenet_v3_small", "se_chain"])
def test_the_receptive_field_is_the_one_check_shows(spec):
    network = archdsl.loads(SE_CHAIN) if spec == "se_chain" else \
        archdsl.load(SPECS / f"{spec}.arch")
    shown = {r["name"]: r["rf"] for r in network.layers()}  # check's JSON records
    capped = 0
    for e in explain(network):
        assert {"size": list(e.rf[0]), "stride": list(e.rf[1])} == shown[e.name], e.name
        if "receptive field shown (H and W)" in steps(e):
            capped += 1
            step = steps(e)["receptive field shown (H and W)"]
            assert step.value == e.rf[0][0] < int(step.substituted.split("(")[1].split(",")[0])
            assert "capped" in step.note
    assert capped > 0
    check_by_hand(network)


def test_a_squeeze_excitation_chain_is_capped_and_says_why():
    found = check_by_hand(archdsl.loads(SE_CHAIN))
    # 56 plus the one padded row on each side that each 3x3 conv reads
    assert [found[f"repeat1.{i}.mul1.mul"].rf for i in range(3)] == \
        [((58, 58), (1, 1)), ((60, 60), (1, 1)), ((62, 62), (1, 1))]
    pool = steps(found["repeat1.1.mul1.branch2.adaptiveavgpool1"])
    assert pool["receptive field (H and W)"].substituted == "60 + (56 - 1) * 1"  # 115
    assert pool["field limit (H and W)"].value == 60
    assert pool["receptive field shown (H and W)"].substituted == "min(115, 60)"
    conv = steps(found["repeat1.2.conv1"])
    assert "r_in is the recurrence's 115, not the 60 shown" in \
        conv["receptive field (H and W)"].note
    assert conv["receptive field (H and W)"].value == 117
    assert conv["receptive field shown (H and W)"].value == 62


def test_every_kind_with_numbers_of_its_own_shows_them_as_steps():
    """A kind with parameters, buffers, MACs, a new shape or a window writes its own rules
    (`LayerKind.rules`), and each of those numbers is the value of one of its steps."""
    from archdsl.layers.base import LayerKind

    for name, kind in sorted(REGISTRY.items()):
        for before in ("input 4x8x8", "input 4", "input 4x8x8; tokens"):
            network, _ = archdsl.analyse(f"{before}\n{statement(kind)}\n")
            if network is not None:
                break
        for e in explain(network):
            if e.op != name:
                continue
            values = [s.value for s in e.steps]
            for number in (e.params, e.buffers, e.macs):
                assert not number or number in values, (name, number, values)
            if tuple(e.output) != tuple(e.input[0]):
                assert list(e.output) in values or e.output[0] in values, (name, values)
            if e.params or e.buffers or e.macs or tuple(e.output) != tuple(e.input[0]):
                assert type(kind).rules is not LayerKind.rules, name


def test_the_unread_rows_agree_in_number(capsys, tmp_path):
    for size, left, words in ((8, 1, "row/column"), (10, 3, "rows/columns")):
        spec = tmp_path / f"s{size}.arch"
        spec.write_text(f"input 1x{size}x{size}\nconv 1 k3 s4\n")
        code, out, _ = run(capsys, str(spec))
        assert code == 0
        assert f"so the last {left} {words} of the padded input fit no whole window" in out


def test_a_huge_layer_name_is_not_echoed_whole(tmp_path, capsys):
    """Issue 26, item 17: `explain SPEC NAME` echoed a 100 KB name whole."""
    from helpers import run_cli

    spec = tmp_path / "s.arch"
    spec.write_text("input 3x8x8\nconv 4 k1\n")
    code, _, err = run_cli(capsys, "explain", spec, "y" * 100_000)
    assert code != 0 and len(err) < 400 and "no layer, block call or line `yyy" in err
