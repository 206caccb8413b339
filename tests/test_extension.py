"""A new layer kind and a new merge kind, each one addition in this file only (the recipe of
docs/architecture.md): both check, draw, compile to torch with the outputs of a hand-written
module, and export to Python source that runs the same."""

import pytest
import torch
from torch import nn

import archdsl
from archdsl.codegen import to_python
from archdsl.draw import to_dot
from archdsl.layers import REGISTRY
from archdsl.layers.base import FLOAT, Arg, LayerKind, call, layer
from archdsl.layers.merge import COMBINATORS, MergeKind, broadcast
from archdsl.layers.base import LayerError, fmt_shape

SPEC = """arch ext(lo=-0.5)
input 3x8x8
conv 4 k3 p1
hardtanh lo 0.75
max< conv 4 k1 | conv 4 k3 p1; hardtanh | identity >
"""


@pytest.fixture
def registered():
    """Register `hardtanh` (a layer) and `max` (a merge: `max< a | b >`) for one test."""

    @layer("hardtanh", family="activation", positional=("min", "max"), nonlinear=True,
           summary="x clipped to [min, max] (torch.nn.Hardtanh)")
    class Hardtanh(LayerKind):
        args = (Arg("min", FLOAT, -1.0, doc="lower bound"),
                Arg("max", FLOAT, 1.0, doc="upper bound"))

        def torch(self, a, x):
            return call("Hardtanh", a.min, a.max)

    @layer("max", family="merge", summary="element-wise maximum of the branches")
    class Max(MergeKind):
        symbol, round, module_name = "max", False, "Max"
        reference = {"shape": "the branches' shape, broadcast as torch.maximum does",
                     "errors": "E-SHAPE (shapes that neither match nor broadcast)"}

        def combine(self, xs):
            y = broadcast(xs)
            if y is None:
                raise LayerError("E-SHAPE", "max needs shapes that match or broadcast, but the "
                                 "branches give " + ", ".join(fmt_shape(x) for x in xs))
            return y

        def merge(self, outputs):
            y = outputs[0]
            for other in outputs[1:]:
                y = torch.maximum(y, other)
            return y

        def python(self, names):
            expr = names[0]
            for name in names[1:]:
                expr = f"torch.maximum({expr}, {name})"
            return expr

    yield
    for name in ("hardtanh", "max"):
        REGISTRY.pop(name, None)
        COMBINATORS.pop(name, None)


class HandWritten(nn.Module):
    """SPEC written by hand, module for module."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.hardtanh1 = nn.Hardtanh(-0.5, 0.75)
        self.a = nn.Conv2d(4, 4, 1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.b_act = nn.Hardtanh()

    def forward(self, x):
        x = self.hardtanh1(self.conv1(x))
        return torch.maximum(torch.maximum(self.a(x), self.b_act(self.b(x))), x)


def test_a_new_layer_and_merge_check(registered):
    net = archdsl.loads(SPEC)
    assert net.output_shape == (4, 8, 8)
    assert net.params == (4 * 27 + 4) + (4 * 4 + 4) + (4 * 36 + 4)
    ops = [r["op"] for r in net.layers()]
    assert ops.count("hardtanh") == 2 and ops[-1] == "max"
    assert "max<…>" in net.summary()


def test_a_new_merge_reports_its_own_shape_error(registered):
    with pytest.raises(archdsl.SpecError) as err:
        archdsl.loads("input 3x8x8\nmax< conv 4 k1 | conv 4 k1 s2 >\n")
    assert "max needs shapes that match or broadcast" in str(err.value)


def test_a_new_layer_and_merge_draw(registered):
    source = to_dot(archdsl.loads(SPEC).graph).source
    assert "hardtanh" in source and 'label=max' in source


def test_a_new_layer_and_merge_compile_to_torch(registered):
    model = archdsl.loads(SPEC).to_torch().eval()
    reference = HandWritten().eval()
    ours = dict(model.named_parameters())
    with torch.no_grad():
        for name, param in reference.named_parameters():
            param.copy_(ours[{"a": "max1.branch1.conv1", "b": "max1.branch2.conv1"}.get(
                name.split(".")[0], name.split(".")[0]) + "." + name.split(".")[1]])
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    assert type(model.get_submodule("max1")).__name__ == "Branches"
    assert "Max(" in repr(model)


def test_a_new_layer_and_merge_export_to_python(registered):
    net = archdsl.loads(SPEC)
    source = to_python(net)
    assert "nn.Hardtanh(min_val=lo, max_val=0.75, inplace=True)" in source  # passed through
    assert "torch.maximum(torch.maximum(" in source
    scope: dict = {}
    exec(compile(source, "ext.py", "exec"), scope)
    model, exported = net.to_torch().eval(), scope["Ext"]().eval()
    exported.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), exported(x))
    assert torch.equal(scope["Ext"](lo=-0.25).hardtanh1(torch.tensor([-1.0])),
                       torch.tensor([-0.25]))


def test_the_layer_reference_documents_both_kinds(registered):
    """docs/gen_layers.py renders the two kinds from their own declarations."""
    from test_layer_reference import gen_layers

    section = gen_layers().render()
    assert "#### `hardtanh`" in section and "x clipped to [min, max]" in section
    assert "#### `max`" in section and "broadcast as torch.maximum does" in section
    assert "`max< >`" in section  # the merge section's list of combinators


def test_the_unknown_combinator_hint_lists_the_registrys_combinators(registered):
    """Hints that list combinators come from the registry: a merge registered in a test is
    among them (the hand-written "residual, concat, add and mul" had gone stale)."""
    from archdsl.layers.merge import combinator_names

    _, diagnostics = archdsl.analyse("input 3x8x8\nzzz< relu | relu >\n")
    (d,) = diagnostics
    assert d.code == "E-COMBINATOR" and d.hint.startswith("the combinators are ")
    assert set(d.hint.removeprefix("the combinators are ").split(", ")) == \
        set(combinator_names()) >= {"residual", "shortcut_first", "add", "mul", "concat", "max"}
