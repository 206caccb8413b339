"""check, draw, export and train agree: a generated spec that checks clean builds, runs a
forward pass with exactly the shapes the check computed for every layer, exports to Python
source that computes the same output, and renders to DOT source with every layer in it."""

import importlib.util
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings

from archdsl.codegen import to_python
from archdsl.draw import DrawOptions, to_dot
from archdsl.layers import REGISTRY
from archdsl.network import analyse
from fuzzgen import strategy, valid_spec


def _network(text):
    network, diagnostics = analyse(text, "agree.arch")
    assert network is not None, [(d.code, d.message) for d in diagnostics]
    return network


def _run_with_shapes(network, model, x):
    """The model's output, and the output shape of every layer of the network (its report's
    rows), seen at run time (a merge is computed by its combinator's module, whose path is
    the group's name)."""
    seen, hooks = {}, []
    for row in network.layers():
        nid = row["name"]
        path = nid.rsplit(".", 1)[0] if REGISTRY[row["op"]].family == "merge" else nid
        hooks.append(model.get_submodule(path).register_forward_hook(
            lambda m, i, o, nid=nid: seen.__setitem__(nid, tuple(o.shape[1:]))))
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
    return out, seen


def _exported(network, tmp_path):
    """The network's class from `archdsl export --to python` source, imported."""
    path = tmp_path / f"agree_{abs(hash(network.source))}.py"
    path.write_text(to_python(network))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules.pop(path.stem, None)
    classes = [v for v in vars(module).values()
               if isinstance(v, type) and v.__module__ == module.__name__]
    return classes[-1]  # the network's class comes last


def assert_agreement(text, tmp_path):
    network = _network(text)
    rows = network.layers()  # one per layer, in order, with its checked output shape
    torch.manual_seed(0)
    model = network.to_torch().eval()
    assert sum(p.numel() for p in model.parameters()) == network.params
    assert sum(b.numel() for b in model.buffers()) == network.buffers
    x = torch.randn(2, *network.input_shape)
    out, seen = _run_with_shapes(network, model, x)
    assert tuple(out.shape) == (2, *network.output_shape)
    assert seen == {r["name"]: tuple(r["output"]) for r in rows}  # every layer ran, as checked
    assert len(rows) == len({r["name"] for r in rows})  # so no layer is missing from `seen`

    exported = _exported(network, tmp_path)()
    assert list(exported.state_dict()) == list(model.state_dict())
    exported.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(exported.eval()(x), out, rtol=1e-5, atol=1e-6)

    for collapse in ("none", "auto", "all"):
        source = to_dot(network.graph, network.diagnostics,
                        DrawOptions(collapse=collapse)).source
        assert "×".join(map(str, network.output_shape)) in source  # the output node
        if collapse == "none":
            for r in rows:
                assert f"n_{r['name'].replace('.', '__')}" in source, r["name"]


@settings(settings.default, max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(text=strategy(valid_spec))
def test_generated_specs_agree_everywhere(tmp_path, text):
    assert_agreement(text, tmp_path)


@pytest.mark.parametrize("text", [
    # the deepest nesting the checker allows still runs in PyTorch (which recurses per module)
    "input 4x4x4\n" + "add< identity | " * 49 + "conv 4 k1" + " >" * 49 + "\nrelu\n",
    "input 4x4x4\n" + "repeat 1 { " * 49 + "conv 4 k1; relu" + " }" * 49 + "\n",
    "input 4x4x4\n" + "".join(f"block b{i} {{ b{i + 1}; relu }}\n" for i in range(98)) +
    "block b98 { conv 4 k3 p1 }\nb0\n",
    # a block call, a branch and a repeat that make no layers
    "input 4x6x6\nblock b(c) { repeat 0 { relu } }\nb 1\nconcat< repeat 0 { relu } | conv 4 k1 >\n"
    "residual< repeat 0 { relu } >\nflatten\nlinear 3\n",
    # the projection shortcut with rectangular strides, and huge-but-legal arguments unused
    "input 3x9x7\nresidual< conv 8 k3 s2x1 p1; bn; relu; conv 8 k1 >\nrelu\n"
    "adaptiveavgpool 99999x1\nflatten\nlinear 2\n",
    # layernorm over a whole CxHxW sample with C == H == W: the exported file once wrote
    # nn.LayerNorm(4) (the last dimension only) for nn.LayerNorm((4, 4, 4)) (found in CI)
    "input 1x8x8\nconv 4 k3 s2 p1\nlayernorm\nadaptiveavgpool 1; flatten; linear 2\n",
])
def test_edge_cases_agree_everywhere(text, tmp_path):
    assert_agreement(text, tmp_path)
