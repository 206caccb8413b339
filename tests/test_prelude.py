"""The prelude (archdsl/prelude.arch): blocks written in the language, callable from every
spec. Each equals its reference (timm's GlobalResponseNorm, PoolFormer's Pooling, StarReLU),
what it makes points at the call, a spec's own names come first, and a spec that calls none
never reads the prelude."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import archdsl
from archdsl import prelude
from archdsl.network import analyse
from helpers import copy_in_order, generated_module

pytestmark = pytest.mark.usefixtures("one_thread")


def test_every_prelude_block_is_documented_and_checks():
    lines = prelude.PATH.read_text().splitlines()
    assert set(prelude.names()) == {"grn", "poolmixer", "starrelu"}
    for name, block in prelude.blocks().items():
        assert lines[block.span.line - 2].startswith("#"), f"{name} has no comment"
        net = archdsl.loads(f"input 4x6x6\n{name}\n", "p.arch")
        assert net.output_shape == (4, 6, 6) and not net.diagnostics


def randomised(module):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return module


@pytest.mark.parametrize("name,reference", [
    ("grn", lambda: __import__("timm.layers.grn", fromlist=["x"]).GlobalResponseNorm(
        8, channels_last=False)),
    ("poolmixer", lambda: __import__("timm.models.metaformer", fromlist=["x"]).Pooling(3)),
    ("starrelu", lambda: __import__("timm.models.metaformer", fromlist=["x"]).StarReLU()),
])
def test_each_prelude_block_equals_its_reference(name, reference):
    twin = randomised(reference()).eval()
    ours = archdsl.loads(f"input 8x7x7\n{name}\n", "p.arch").to_torch().eval()
    copy_in_order(twin, ours)
    x = torch.randn(2, 8, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), twin(x))
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in twin.parameters())


def test_what_a_prelude_block_makes_points_at_the_call():
    net = archdsl.loads("input 4x6x6\nconv 4 k1\ngrn\n", "p.arch")
    assert {r["line"] for r in net.layers() if r["name"].startswith("grn1.")} == {3}
    assert not net.graph.names  # its own names (gx, n, gamma, …) are not the user's
    _, diagnostics = analyse("input 4\ngrn\n", "q.arch")
    (d,) = [d for d in diagnostics if d.is_error]
    assert (d.span.file, d.span.line, d.code) == ("q.arch", 2, "E-RANK")


def test_an_error_raised_while_expanding_a_prelude_block_points_at_the_call():
    _, diagnostics = analyse("input 4x6x6\npoolmixer k=(1 / 0)\n", "q.arch")
    (d,) = [d for d in diagnostics if d.is_error]
    assert d.span.file == "q.arch" and d.span.line == 2
    assert all(n.span is None or n.span.file == "q.arch" for n in d.notes)


def test_a_spec_s_own_block_and_names_come_first():
    own = archdsl.loads("block grn { relu }\ninput 4x6x6\ngrn\n", "p.arch")
    assert [r["op"] for r in own.layers()] == ["relu"]
    value = archdsl.loads("input 4x6x6\nrelu -> grn\nsigmoid\ngrn, grn; add\n", "p.arch")
    assert "norm" not in {r["op"] for r in value.layers()}


def test_a_misspelt_prelude_block_is_suggested():
    _, diagnostics = analyse("input 4x6x6\npoolmixr\n", "q.arch")
    assert "poolmixer" in diagnostics[0].hint


def test_a_spec_that_calls_no_prelude_block_never_reads_it():
    code = ("import archdsl, archdsl.prelude as p; archdsl.load('specs/resnet18.arch'); "
            "print(p.blocks.cache_info().currsize)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "0"


def test_a_prelude_block_exports_draws_and_trains(tmp_path):
    from archdsl.codegen import to_python
    from archdsl.draw import to_dot

    net = archdsl.loads("arch p(num_classes=3)\ninput 3x8x8\nconv 8 k3 p1\ngrn\nstarrelu\n"
                        "poolmixer\nmean hw\nlinear num_classes\n", "p.arch")
    generated = generated_module(to_python(net), tmp_path, "p_net").P()
    model = net.to_torch()
    generated.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(generated.eval()(x), model.eval()(x))
    model.train()(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert "grn1" in to_dot(net.graph).source


def test_the_language_server_says_a_name_is_a_prelude_block():
    from archdsl.lsp.features import hover
    from archdsl.lsp.index import check

    text = hover(check("input 4x6x6\ngrn\n", "p.arch"), 2, 1)
    assert "prelude block" in text and "unknown" not in text
