"""Tensor arithmetic (`y - x`, `(a + b) * 0.5`, `* 1.7015`), learnt tensors (`param`),
reductions (`mean`, `sum`, `norm`), `sqrt`, `reciprocal`, and `and`/`or`/`not` in conditions:
statically checked shapes against torch (property-based), values against plain torch, and
every path (explain, draw, Python and ONNX export, a training step, fmt, the language server).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archdsl
from archdsl.network import analyse
from helpers import assert_onnx_matches, generated_module

# The kinds whose torch twins are here (test_layers_vs_torch.py imports this); the merges
# `sub` and `div` are twinned there, through their combinators.
TWINNED_HERE = ("scalar", "param", "mean", "sum", "norm", "sqrt", "reciprocal")

SETTINGS = dict(deadline=None, max_examples=40,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny tensors, one thread

MIXER = """\
arch poolmix
input 3x8x8

# PoolFormer's token mixer, pool(x) - x, and a learnt per-channel gain
block mixer x {
  avgpool 3 s1 p1 count_include_pad=false -> y
  y - x
}
relu -> x
mixer -> m
param channel 0.5 -> g
x + m * g -> z
(z + x) * 0.5 - x / 4
* 1.7015 -> o
1 - 2 / (o * o + 1) -> w
norm hw keep
mean channels keep
+ 1e-6 -> d
w / d
"""


def reference(x, g):
    x = torch.relu(x)
    y = torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    z = x + (y - x) * g
    out = ((z + x) * 0.5 - x / 4) * 1.7015
    w = 1 - 2 / (out * out + 1)
    n = w.pow(2).sum((2, 3), keepdim=True).sqrt()
    return w / (n.mean(1, keepdim=True) + 1e-6)


def test_arithmetic_statements_equal_plain_torch():
    net = archdsl.loads(MIXER, "m.arch")
    assert net.output_shape == (3, 8, 8) and net.params == 3
    model = net.to_torch()
    with torch.no_grad():
        model.param1.weight.copy_(torch.tensor([0.5, -1.0, 2.0]).view(1, 3, 1, 1))
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(model(x), reference(x, model.param1.weight))
    ops = [r["op"] for r in net.layers()]
    assert {"sub", "mul", "add", "scalar", "param", "norm", "mean", "div"} <= set(ops)


def test_operators_follow_precedence_and_a_leading_operator_takes_the_running_value():
    net = archdsl.loads("input 2x4x4\nrelu -> a\nsigmoid -> b\na - b * 2 + b / 4\n"
                        "* 3 + a -> c\n- a - b\n* (c - 1) -> d\n")
    model = net.to_torch()
    x = torch.randn(1, 2, 4, 4)
    a, b = torch.relu(x), torch.sigmoid(torch.relu(x))
    c = (a - b * 2 + b / 4) * 3 + a  # as if the running value were written first
    torch.testing.assert_close(model(x), (c - a - b) * (c - 1))


@pytest.mark.parametrize("text,code,line,column,words", [
    ("input 3x8x8\nrelu -> a\nmean hw -> b\na * b\n", "E-SHAPE", 4, 1, "broadcast"),
    ("input 3x8x8\nrelu -> a\nsigmoid -> b\na, b\n* 2\n", "E-ARITY", 5, 1, "running"),
    ("input 3x8x8\nrelu\n3 * 4\n", "E-EXPR", 3, 1, "only numbers"),
    ("input 3x8x8\nrelu -> a\nq - a\n", "E-UNKNOWN-NAME", 3, 1, "`q`"),
    ("input 3x8x8\nrelu -> a\na / 0\n", "E-EXPR", 3, 1, "division by zero"),
    ("input 3x8x8\nmean tokens\n", "E-RANK", 2, 6, "tokens"),
    ("input 3x8x8\nrelu -> a\na - b\nsigmoid -> b\n", "E-UNKNOWN-NAME", 3, 5, "`b`"),
])
def test_mistakes_in_arithmetic_are_located(text, code, line, column, words):
    _, diagnostics = analyse(text, "t.arch")
    found = [d for d in diagnostics if d.is_error]
    assert found, text
    d = found[0]
    assert (d.code, d.span.line, d.span.column) == (code, line, column), d
    assert words in d.message + (d.hint or ""), d


def test_the_hint_for_a_statement_with_a_number_mentions_the_running_tensor():
    _, diagnostics = analyse("input 3x8x8\nrelu\n3 * 4\n", "t.arch")
    assert "* 0.5" in diagnostics[0].hint


def test_a_negative_first_argument_is_told_how_to_write_it():
    _, diagnostics = analyse("input 1x4x4\nconv -1 k3\n", "t.arch")
    assert diagnostics[0].code == "E-SYNTAX" and "(-1)" in diagnostics[0].hint


@pytest.mark.parametrize("condition,stride", [
    ("1 < 2 and 3 < 4", 2), ("1 < 2 and 4 < 3", 1), ("2 < 1 or 3 < 4", 2),
    ("not 1 < 2", 1), ("not (1 < 2 and 4 < 3)", 2), ("big and not small", 2),
])
def test_conditions_join_with_and_or_not(condition, stride):
    net = archdsl.loads(f"arch c(big=true, small=false)\ninput 1x8x8\n"
                        f"conv 1 k1 s=(2 if {condition} else 1)\n")
    assert net.output_shape == (1, 8 // stride, 8 // stride)


def test_and_needs_true_or_false():
    _, diagnostics = analyse("input 1x8x8\nconv 1 k1 s=(2 if 3 and 1 < 2 else 1)\n", "t.arch")
    assert diagnostics[0].code == "E-EXPR" and "true or false" in diagnostics[0].message


# ------------------------------------------------------------------------------ torch twins

RANKS = {3: st.tuples(st.integers(1, 6), st.integers(1, 7), st.integers(1, 7)),
         2: st.tuples(st.integers(1, 9), st.integers(1, 6)),
         1: st.tuples(st.integers(1, 9))}
DIMS = {3: {"channels": (1,), "hw": (2, 3), "h": (2,), "w": (3,), "all": (1, 2, 3)},
        2: {"tokens": (1,), "channels": (2,), "all": (1, 2)},
        1: {"channels": (1,), "all": (1,)}}


def spec_for(shape, line):
    before = "input " + "x".join(map(str, shape)) if len(shape) != 2 else \
        f"input {shape[1]}x1x{shape[0]}\ntokens"
    return f"{before}\n{line}\n"


def run(text, x):
    net = archdsl.loads(text)
    model = net.to_torch().eval()
    if "tokens" in text.split("\n")[1]:
        x = x.transpose(1, 2).reshape(x.shape[0], x.shape[2], 1, x.shape[1])
    with torch.no_grad():
        return net, model(x)


@settings(**SETTINGS)
@given(data=st.data(), rank=st.sampled_from([3, 2, 1]),
       how=st.sampled_from(["mean", "sum", "norm"]), keep=st.booleans())
def test_reductions_agree_with_torch(data, rank, how, keep):
    shape = data.draw(RANKS[rank])
    over = data.draw(st.sampled_from(sorted(DIMS[rank])))
    p = data.draw(st.sampled_from([2.0, 1.0, 3.0])) if how == "norm" else None
    line = f"{how} {over}" + (" keep" if keep else "") + (f" p={p:g}" if p else "")
    x = torch.randn(2, *shape)
    dims = DIMS[rank][over]
    if not keep and len(dims) == rank:  # nothing left per sample: refused with a hint
        _, diagnostics = analyse(spec_for(shape, line), "t.arch")
        assert diagnostics[0].code == "E-RANK" and "keep" in diagnostics[0].hint
        return
    net, got = run(spec_for(shape, line), x)
    if how == "norm":
        expected = torch.linalg.vector_norm(x, ord=p, dim=dims, keepdim=keep)
    else:
        expected = getattr(x, how)(dims, keepdim=keep)
    assert net.output_shape == tuple(expected.shape[1:])
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert net.params == net.macs == 0


@settings(**SETTINGS)
@given(data=st.data(), rank=st.sampled_from([3, 2, 1]),
       op=st.sampled_from(["add", "sub", "mul", "div"]), reverse=st.booleans(),
       value=st.floats(0.25, 4.0))
def test_scalar_agrees_with_torch(data, rank, op, reverse, value):
    shape = data.draw(RANKS[rank])
    line = f"scalar {op} {value!r}" + (" reversed" if reverse else "")
    x = torch.rand(2, *shape) + 0.5  # no zero to divide by
    net, got = run(spec_for(shape, line), x)
    f = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}[op]
    expected = f(torch.tensor(value), x) if reverse else f(x, value)
    torch.testing.assert_close(got, expected)
    assert net.output_shape == shape and net.params == 0


@settings(**SETTINGS)
@given(data=st.data(), rank=st.sampled_from([3, 2, 1]),
       per=st.sampled_from(["scalar", "channel", "position"]), init=st.floats(-2, 2))
def test_param_has_the_declared_shape_and_start(data, rank, per, init):
    shape = data.draw(RANKS[rank])
    net, got = run(spec_for(shape, f"param {per} init={init!r}"), torch.randn(2, *shape))
    kept = {"scalar": (), "channel": {3: (0,), 2: (1,), 1: (0,)}[rank],
            "position": {3: (1, 2), 2: (0,), 1: (0,)}[rank]}[per]
    expected_shape = tuple(d if i in kept else 1 for i, d in enumerate(shape))
    assert net.output_shape == expected_shape == tuple(got.shape[1:])
    assert net.params == got[0].numel()
    torch.testing.assert_close(got, torch.full_like(got, init))


@pytest.mark.parametrize("kind,f", [("sqrt", torch.sqrt), ("reciprocal", torch.reciprocal)])
@settings(**SETTINGS)
@given(data=st.data(), rank=st.sampled_from([3, 2, 1]))
def test_elementwise_functions_agree_with_torch(kind, f, data, rank):
    shape = data.draw(RANKS[rank])
    x = torch.rand(2, *shape) + 0.1
    net, got = run(spec_for(shape, kind), x)
    torch.testing.assert_close(got, f(x))
    assert net.output_shape == shape


def test_every_kind_here_is_registered_and_used():
    from archdsl.layers import REGISTRY

    assert set(TWINNED_HERE) <= set(REGISTRY)
    ops = {r["op"] for r in archdsl.loads(MIXER + "sqrt; reciprocal; sum all keep\n").layers()}
    assert (set(TWINNED_HERE) | {"sub", "div"}) <= ops


# ------------------------------------------------------------------------------ every path


def test_explain_shows_the_arithmetic():
    from archdsl.explain import explain, render_text

    net = archdsl.loads(MIXER, "m.arch")
    text = render_text(explain(net))
    assert "x * 1.7015" in text and "1 - x" not in text.split("scalar")[0]
    assert "sub1" in text and "the mean over channels" in text


def test_draw_shows_each_operation():
    from archdsl.draw import to_dot

    source = to_dot(archdsl.loads(MIXER, "m.arch").graph).source
    assert 'label="x × 1.7015"' in source and 'label="1 - x"' in source
    assert "label=sub" in source and "label=div" in source
    assert "param channel = 0.5" in source and "arithmetic" in source  # in the legend


def test_generated_python_and_onnx_equal_the_network(tmp_path):
    from archdsl.codegen import to_python

    net = archdsl.loads(MIXER, "m.arch")
    source = to_python(net)
    assert "import archdsl" not in source
    generated = generated_module(source, tmp_path, "poolmix").Poolmix()
    model = net.to_torch().eval()
    generated.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(generated.eval()(x), model(x))
    assert_onnx_matches(net, x, tmp_path / "m.onnx")


def test_a_training_step_learns_the_param():
    net = archdsl.loads(MIXER, "m.arch")
    model = net.to_torch().train()
    before = model.param1.weight.detach().clone()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(4, 3, 8, 8)).square().mean().backward()
    optimiser.step()
    assert not torch.equal(model.param1.weight, before)


def test_the_train_command_trains_a_spec_with_arithmetic(tmp_path, capsys):
    from helpers import image_folder, run_cli

    spec = tmp_path / "a.arch"
    spec.write_text("arch a(num_classes=2)\ninput 3x8x8\nconv 4 k3 p1 -> x\nrelu -> y\n"
                    "x * 0.5 + y\nparam channel 1 -> g\n* g\nmean hw\nlinear num_classes\n")
    data = image_folder(tmp_path / "data")
    code, out, err = run_cli(capsys, "train", str(spec), str(data), "--epochs", "1",
                             "--out", str(tmp_path / "run"))
    assert code == 0, out + err


def test_fmt_lays_out_arithmetic_and_keeps_its_meaning():
    from archdsl.fmt import format_text

    ugly = "input 3x8x8\nrelu->x\nsigmoid->y\ny-x*-1\n*1.7015\n(x+y)/2\nconv 4 k1 s=(1 if 2<3 and not 1>2 else 2)\n"
    pretty = format_text(ugly)
    assert pretty == ("input 3x8x8\nrelu -> x\nsigmoid -> y\ny - x * -1\n* 1.7015\n(x + y) / 2\n"
                      "conv 4 k1 s=(1 if 2 < 3 and not 1 > 2 else 2)\n")
    assert format_text(pretty) == pretty
    def meaning(text):
        return [(r["name"], r["output"]) for r in archdsl.loads(text).layers()]

    assert meaning(pretty) == meaning(ugly)


def test_the_language_server_sees_names_in_arithmetic():
    from archdsl.lsp.index import check, definition_of, references

    doc = check(MIXER, "m.arch")
    use = doc.at(13, 2)  # `z` in `(z + x) * 0.5 - x / 4`
    assert use is not None and use.role == "value-use" and use.name == "z"
    assert definition_of(doc, use)[2].line == 12
    assert [s.line for s in references(doc, use)] == [12, 13]
