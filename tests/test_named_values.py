"""Named values, several values and several outputs (docs/language.md, "Named values and
several outputs"): `-> a` names what a statement leaves, `a` or `a, b` makes named values the
running ones, blocks take and give several values, `output` picks the network's outputs.

Each path a user takes is run here: check (shapes, errors, the report and JSON), explain,
draw, build (against a torch twin written by hand), a training step with an auxiliary loss,
export (Python, ONNX, TorchScript, torch.export), fmt and the language server; googlenet's
and inception_v3's auxiliary classifiers against torchvision in both modes.
"""

import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import archdsl
from archdsl.network import analyse

SPECS = Path(__file__).resolve().parent.parent / "specs"

# A small encoder whose two scales meet twice: the skip `e1` is used two statements after
# it is made, `e2` twice, and the network has a main and an auxiliary output.
SKIPS = """\
arch skips(num_classes=5)
input 3x16x16
conv 8 k3 p1; relu -> e1
maxpool 2; conv 16 k3 p1; relu -> e2
e1; avgpool 2; conv 16 k1 -> s1
e2, s1; add
relu; conv 16 k3 p1; relu -> deep
deep, e2; concat
adaptiveavgpool 1; flatten; linear num_classes -> logits
e2; adaptiveavgpool 1; flatten; linear num_classes -> aux
output logits, aux aux=0.4
"""


class SkipsTwin(nn.Module):
    """SKIPS written by hand in torch, modules registered in the spec's order."""

    def __init__(self, num_classes=5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.conv3 = nn.Conv2d(8, 16, 1)
        self.conv4 = nn.Conv2d(16, 16, 3, padding=1)
        self.linear1 = nn.Linear(32, num_classes)
        self.linear2 = nn.Linear(16, num_classes)

    def forward(self, x):
        e1 = torch.relu(self.conv1(x))
        e2 = torch.relu(self.conv2(nn.functional.max_pool2d(e1, 2)))
        s1 = self.conv3(nn.functional.avg_pool2d(e1, 2))
        deep = torch.relu(self.conv4(torch.relu(e2 + s1)))
        joined = torch.cat([deep, e2], dim=1)
        logits = self.linear1(joined.mean((2, 3)))
        if not self.training:
            return logits
        return logits, self.linear2(e2.mean((2, 3)))


def skips():
    return archdsl.loads(SKIPS, "skips.arch")


def test_check_follows_every_path_and_reports_names_and_outputs():
    net = skips()
    assert not net.diagnostics
    graph = net.graph
    assert graph.shape("concat1") == (32, 8, 8)
    assert [(o.name, o.aux) for o in graph.outputs] == [("logits", None), ("aux", 0.4)]
    from archdsl.report import to_json

    report = json.loads(json.dumps(to_json(net, [])))
    names = {n["name"]: n for n in report["names"]}
    assert names["e2"]["made"]["line"] == 4
    assert sorted(u["line"] for u in names["e2"]["used"]) == [6, 8, 10]
    assert names["deep"]["shape"] == [16, 8, 8]
    assert [o["name"] for o in report["outputs"]] == ["logits", "aux"]
    # MACs follow every path: the auxiliary head's linear layer is counted
    assert net.macs == sum(graph.facts[n].macs for n in graph.order)
    assert graph.facts["linear2"].macs == 16 * 5


def test_a_plain_spec_keeps_its_json_document():
    net = archdsl.load(SPECS / "resnet18.arch")
    from archdsl.report import to_json

    assert "names" not in to_json(net, []) and not net.graph.dataflow


def test_build_equals_a_hand_written_twin_in_train_and_eval():
    net = skips()
    ours, twin = net.to_torch(), SkipsTwin()
    archdsl.transfer_weights(twin, ours)
    x = torch.randn(2, 3, 16, 16)
    ours.eval(), twin.eval()
    torch.testing.assert_close(ours(x), twin(x))
    ours.train(), twin.train()
    got, expected = ours(x), twin(x)
    assert got._fields == ("logits", "aux")
    torch.testing.assert_close(got.logits, expected[0])
    torch.testing.assert_close(got.aux, expected[1])


def test_eval_runs_no_layer_that_only_an_auxiliary_output_reads():
    model = skips().to_torch().eval()
    calls = []
    model.linear2.register_forward_hook(lambda *a: calls.append("aux head"))
    model(torch.randn(1, 3, 16, 16))
    assert calls == []
    model.train()(torch.randn(2, 3, 16, 16))
    assert calls == ["aux head"]


def test_blocks_take_and_give_several_values_and_repeat_threads_them():
    text = """\
input 3x16x16
block pair(c) hi, lo -> h, l {
  hi; conv c k3 p1; relu -> h
  lo; conv c k3 p1; relu -> l
}
conv 8 k3 p1 -> a
maxpool 2 -> b
a, b
repeat 3 { pair 8 }
-> top, bottom
top; avgpool 2 -> small
small, bottom; add
"""
    net = archdsl.loads(text, "pair.arch")
    assert not [d for d in net.diagnostics if d.is_error]
    assert net.output_shape == (8, 8, 8)
    model = net.to_torch().eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        a = model.conv1(x)
        hi, lo = a, nn.functional.max_pool2d(a, 2)
        for i in range(3):
            pair = model.repeat1[i].pair1
            hi, lo = torch.relu(pair.conv1(hi)), torch.relu(pair.conv2(lo))
        expected = nn.functional.avg_pool2d(hi, 2) + lo
        torch.testing.assert_close(model(x), expected)


def _first(text, code):
    _, diagnostics = analyse(text, "bad.arch")
    return next(d for d in diagnostics if d.code == code)


@pytest.mark.parametrize("text,code,line,words", [
    ("input 3x8x8\nb; relu\nconv 4 k1 -> b\nb\n", "E-UNKNOWN-NAME", 2,
     "used before it is made"),
    ("input 3x8x8\nblock f { conv 4 k1 -> inner }\nf\ninner\n", "E-UNKNOWN-NAME", 4,
     "not seen here"),
    ("input 3x8x8\nconv 4 k1 -> skip\nrelu\nskp\n", "E-UNKNOWN-LAYER", 4, "`skip`"),
    ("input 3x8x8\nconv 4 k1 -> a\nrelu -> a\na\n", "E-DUPLICATE", 3, "already named on line 2"),
    ("input 3x8x8\nconv 4 k1 -> conv\nrelu\n", "E-DUPLICATE", 2, "layer kind"),
    ("input 3x8x8\nconv 4 k1 -> a\nconv 4 k1 -> b\na, b; relu\n", "E-ARITY", 4, "2 values"),
    ("input 3x8x8\nblock two a, b { a }\nconv 4 k1\ntwo\n", "E-ARITY", 4, "takes 2 values"),
    ("input 3x8x8\nconv 4 k1 -> a\noutput a, nothing\n", "E-UNKNOWN-NAME", 3, "`nothing`"),
    ("input 3x8x8\nconv 4 k1 -> a\nrelu -> b\noutput a aux=0.3, b\n", "E-ARG-RANGE", 4,
     "main one"),
])
def test_mistakes_with_names_are_located_and_explained(text, code, line, words):
    d = _first(text, code)
    assert d.span.line == line
    assert words in d.message + " " + (d.hint or "")


def test_unused_names_and_dead_layers_are_warned_once_per_place():
    _, diagnostics = analyse("input 3x8x8\nblock f { conv 4 k1 -> spare; relu }\n"
                             "f; f\nconv 4 k1 -> a\nconv 2 k1\na\n", "w.arch")
    unused = [d for d in diagnostics if d.code == "W-UNUSED"]
    assert [(d.span.line, "spare" in d.message) for d in unused] == [(2, True), (5, False)]


def test_a_block_named_like_a_kind_shadows_it_with_a_warning():
    net = archdsl.loads("input 8x4x4\nblock shuffle(c) { conv c k1 }\nshuffle 3\n", "s.arch")
    assert [d.code for d in net.diagnostics] == ["W-SHADOW"]
    assert net.output_shape == (3, 4, 4) and net.params == 8 * 3 + 3


def test_explain_shows_a_merge_of_named_values_and_takes_a_name():
    from archdsl.explain import explain, render_text

    text = render_text(explain(skips(), ["add1"]))
    assert "16x8x8 + 16x8x8" in text and "receptive field" in text
    assert [e.name for e in explain(skips(), ["e2"])] == ["relu2"]


def test_draw_shows_each_output_and_labels_named_edges():
    from archdsl.draw import to_dot

    source = to_dot(skips().graph).source
    assert 'output [label="logits' in source and 'output2 [label="aux' in source
    assert "training, loss ×0.4" in source
    assert source.count("e1\n") >= 1 and source.count(" e2\n") >= 2


def test_generated_python_runs_the_graph_and_returns_every_output(tmp_path):
    from archdsl.codegen import to_python

    net = skips()
    path = tmp_path / "skips.py"
    path.write_text(to_python(net))
    sys.path.insert(0, str(tmp_path))
    try:
        generated = __import__("skips").Skips()
    finally:
        sys.path.remove(str(tmp_path))
    ours = net.to_torch()
    generated.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(generated.eval()(x), ours.eval()(x))
    got, expected = generated.train()(x), ours.train()(x)
    assert got._fields == expected._fields == ("logits", "aux")
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)


def test_exports_run_with_named_values(tmp_path):
    import onnxruntime

    from archdsl.export import export

    net = skips()
    x = torch.randn(2, 3, 16, 16)
    torch.manual_seed(0)  # every export builds the network afresh: the same weights each time
    model = net.to_torch().eval()
    with torch.no_grad():
        expected = model(x)
    torch.manual_seed(0)
    onnx = export(net, "onnx", tmp_path / "s.onnx")
    torch.manual_seed(0)
    scripted = torch.jit.load(str(export(net, "torchscript", tmp_path / "s.ts")))
    torch.manual_seed(0)
    exported = torch.export.load(str(export(net, "exported", tmp_path / "s.pt2"))).module()
    session = onnxruntime.InferenceSession(str(onnx))
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), expected, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), expected)
        torch.testing.assert_close(exported(x), expected)


def test_training_adds_the_weighted_auxiliary_loss():
    from archdsl.flow import weighted_loss

    model = skips().to_torch().train()
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    torch.manual_seed(0)
    out = model(x)
    main, loss = weighted_loss(out, y, nn.functional.cross_entropy,
                               [o.aux for o in skips().graph.outputs])
    ce = nn.functional.cross_entropy
    torch.testing.assert_close(loss, ce(out.logits, y) + 0.4 * ce(out.aux, y))
    assert main is out.logits


def test_train_command_runs_a_spec_with_an_auxiliary_output(tmp_path):
    import numpy as np
    from PIL import Image

    from archdsl.cli import main

    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(
                tmp_path / "data" / c / f"{i}.png")
    spec = tmp_path / "aux.arch"
    spec.write_text(SKIPS.replace("num_classes=5", "num_classes=2"))
    code = main(["train", str(spec), str(tmp_path / "data"), "--epochs", "1", "--out",
                 str(tmp_path / "run")])
    assert code == 0
    assert (tmp_path / "run" / "config.json").is_file()


def test_fmt_keeps_names_and_lays_them_out():
    from archdsl.fmt import format_text

    ugly = "input 3x8x8\nconv 4 k1->a\nrelu ->b\na,b;add\n-> s\ns\noutput s\n"
    assert format_text(ugly) == ("input 3x8x8\nconv 4 k1 -> a\nrelu -> b\na, b; add\n-> s\n"
                                 "s\noutput s\n")


def test_the_language_server_knows_names():
    from archdsl.lsp.features import hover
    from archdsl.lsp.index import check, definition_of, references

    doc = check(SKIPS, "skips.arch")
    use = doc.at(8, 7)  # `e2` in `deep, e2; concat`
    assert use.role == "value-use"
    assert definition_of(doc, use)[2].line == 4
    assert [s.line for s in references(doc, use)] == [4, 6, 8, 10]
    assert "16x8x8" in hover(doc, 8, 7) and "relu2" in hover(doc, 8, 7)


@pytest.mark.parametrize("model,spec,size", [("googlenet", "googlenet_aux.arch", 64),
                                             ("inception_v3", "inception_v3_aux.arch", 299)])
def test_auxiliary_classifiers_equal_torchvision_in_train_and_eval(model, spec, size):
    import torchvision

    sys.path.insert(0, str(Path(__file__).parent))
    from test_zoo import randomise

    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.device("meta"):
        tv = getattr(torchvision.models, model)(weights=None, aux_logits=True,
                                                init_weights=False)
    tv = randomise(tv, x)
    ours = archdsl.load(SPECS / spec, input_shape=(3, size, size)).to_torch()
    archdsl.transfer_weights(tv, ours)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), tv.eval()(x), rtol=1e-4, atol=1e-5)
        tv.train(), ours.train()
        torch.manual_seed(2)  # dropout draws the same masks: the heads run in the same order
        expected = tv(x)
        torch.manual_seed(2)
        got = ours(x)
    assert len(got) == len(expected) and got[0].abs().max() > 1e-2
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_several_main_outputs_export_by_name(tmp_path):
    """Outputs not marked `aux` are all returned in eval: a named tuple from the module,
    named outputs in ONNX, a dict by name from torch.export."""
    import onnxruntime

    from archdsl.export import export

    net = archdsl.loads("input 3x8x8\nconv 4 k3 p1 -> a\nrelu; conv 2 k1 -> b\noutput a, b\n",
                        "two.arch")
    torch.manual_seed(0)
    expected = net.to_torch().eval()(torch.ones(1, 3, 8, 8))
    assert expected._fields == ("a", "b")
    torch.manual_seed(0)
    session = onnxruntime.InferenceSession(str(export(net, "onnx", tmp_path / "two.onnx")))
    assert [o.name for o in session.get_outputs()] == ["a", "b"]
    torch.manual_seed(0)
    program = torch.export.load(str(export(net, "exported", tmp_path / "two.pt2"))).module()
    got = program(torch.ones(1, 3, 8, 8))
    assert set(got) == {"a", "b"}
    torch.testing.assert_close(got["b"], expected.b.detach())
    from archdsl.codegen import to_python

    namespace = {}
    exec(compile(to_python(net), "two.py", "exec"), namespace)
    generated = namespace["Two"]()
    torch.manual_seed(0)
    generated.load_state_dict(net.to_torch().state_dict())
    out = generated.eval()(torch.ones(1, 3, 8, 8))
    assert out._fields == ("a", "b")
    torch.testing.assert_close(out.b, expected.b.detach())


def test_a_name_on_its_own_line_names_the_running_value():
    """`-> x` first in a block names what the block takes; after a statement already named,
    `-> b` gives the same value a second name."""
    net = archdsl.loads("input 3x8x8\nblock f {\n  -> x\n  conv 4 k1; relu -> y\n  x, y; concat\n}\n"
                        "f\nconv 4 k1 -> a\n-> b\na, b; add\n", "own.arch")
    assert not net.diagnostics
    assert net.graph.shape("f1.concat1") == (7, 8, 8)
    assert {v.name: v.node for v in net.graph.names if v.name in "ab"} == {"a": "conv1",
                                                                           "b": "conv1"}


def test_a_network_with_names_copies_and_pickles_whole(tmp_path):
    """EMA's deepcopy and torch.save of the whole module keep the graph's steps pointing at
    the copy's own modules, and the outputs' named tuples."""
    import copy

    model = skips().to_torch().train()
    x = torch.randn(2, 3, 16, 16)
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.linear2.weight.add_(1.0)  # the copy's own modules run, not the original's
    assert not torch.equal(twin(x).aux, model(x).aux)
    torch.save(model, tmp_path / "whole.pt")
    loaded = torch.load(tmp_path / "whole.pt", weights_only=False).train()
    torch.testing.assert_close(loaded(x).logits, model(x).logits)
    assert loaded(x)._fields == ("logits", "aux")


def test_dynamo_captures_a_network_with_names_in_one_graph_in_training_too():
    model = skips().to_torch().train()
    x = torch.randn(2, 3, 16, 16)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="eager")  # raises on a break
    got, expected = compiled(x), model(x)
    assert got._fields == ("logits", "aux")
    torch.testing.assert_close(got.aux, expected.aux)
