"""archdsl in Jupyter: a notebook with `%load_ext archdsl`, a `%%arch net` cell and a
`net.to_torch()` cell runs under a real kernel (nbclient), and its outputs hold the table
and the drawing; a spec with an error shows diagnostics located in the cell."""

import html
import shutil

import nbformat
import pytest
from nbclient import NotebookClient

import archdsl

SPEC = """arch tiny(num_classes=10)
input 1x28x28
conv 8 k3 p1; relu; maxpool 2
flatten; linear num_classes
"""
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot draws")


def _run(*cells, allow_errors=False):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=allow_errors,
                   resources={"metadata": {"path": "."}}).execute()
    return nb


def _outputs(cell) -> str:
    text = []
    for out in cell.outputs:
        text.append(out.get("text", ""))
        text += out.get("traceback", [])
        text += [str(v) for v in out.get("data", {}).values()]
    return html.unescape("\n".join(text))


@needs_dot
def test_a_notebook_shows_the_table_and_the_drawing_and_binds_the_network():
    nb = _run("%load_ext archdsl",
              "%%arch net\n" + SPEC, "model = net.to_torch()\nprint(type(model).__name__, "
              "sum(p.numel() for p in model.parameters()))")
    shown = _outputs(nb.cells[1])
    assert "tiny: 1x28x28 -> 10" in shown and "conv1" in shown and "linear1" in shown
    assert "<svg" in shown
    assert _outputs(nb.cells[2]).split()[-1] == str(archdsl.loads(SPEC).params)


def test_a_cell_with_an_error_shows_diagnostics_at_the_cells_lines():
    """The failing cell is an error (Run All stops there) shown as its diagnostics alone,
    and the name no longer holds the network of the cell's earlier, good text."""
    nb = _run("%load_ext archdsl", "%%arch net\n" + SPEC,
              "%%arch net\ninput 1x28x28\nconv 8 k3 g=3\n", "print('net' in dir())",
              allow_errors=True)
    (error,) = [out for out in nb.cells[2].outputs if out.output_type == "error"]
    shown = _outputs(nb.cells[2])
    assert "cell:2:11: error[E-GROUPS]" in shown and "Traceback" not in shown
    assert error.ename == "CellError"
    assert _outputs(nb.cells[3]).strip() == "False"


def test_network_reprs():
    net = archdsl.loads(SPEC)
    shown = net._repr_html_()
    assert "<pre>" in shown and "tiny: 1x28x28 -&gt; 10" in shown
    if shutil.which("dot"):
        assert net._repr_svg_().lstrip().startswith("<?xml") and "<svg" in shown
    big = archdsl.load("specs/resnet50.arch")._repr_html_()
    assert big.startswith("<details>")  # collapsed when large


class FakeIPython:
    """What the magic uses of IPython's shell: the namespace and magic registration."""

    def __init__(self, **names):
        self.user_ns = dict(names)
        self.magics = {}

    def register_magic_function(self, fn, magic_kind, magic_name):
        self.magics[magic_name] = fn


@pytest.mark.parametrize("name,fragment", [
    ("__builtins__", "Python's own"), ("print", "Python's own"), ("1abc", "not a Python name"),
    ("class", "keyword"), ("match", "keyword"), ("get_ipython", "already holds a function"),
    ("os", "already holds a module"), ("In", "already holds a list"), ("net extra", "one name"),
])
def test_a_name_the_notebook_needs_is_refused_and_left_alone(name, fragment, capsys):
    """Issue 26, item 8: `%%arch __builtins__` broke every later cell, `%%arch get_ipython`
    later magics, `%%arch os` replaced the module, `%%arch 1abc` bound an unusable name."""
    import os

    from archdsl.notebook import CellError, load_ipython_extension

    shell = FakeIPython(get_ipython=lambda: None, os=os, In=[""])
    load_ipython_extension(shell)
    before = dict(shell.user_ns)
    with pytest.raises(CellError, match=fragment):
        shell.magics["arch"](name, SPEC)
    assert shell.user_ns == before


def test_a_network_name_is_rebound_and_an_error_unbinds_it(capsys):
    from archdsl.notebook import CellError, load_ipython_extension

    shell = FakeIPython()
    load_ipython_extension(shell)
    shell.magics["arch"]("net", SPEC)
    first = shell.user_ns["net"]
    shell.magics["arch"]("net", SPEC.replace("conv 8", "conv 16"))
    assert shell.user_ns["net"] is not first and shell.user_ns["net"].params > first.params
    with pytest.raises(CellError, match=r"cell:2:1: error\[E-UNKNOWN-LAYER\]") as err:
        shell.magics["arch"]("net", "input 1x8x8\nconvv 8 k3\n")
    assert "`net` no longer holds" in str(err.value) and "net" not in shell.user_ns
    assert err.value._render_traceback_()[0].startswith("cell:2:1: error[E-UNKNOWN-LAYER]")


def test_the_magic_line_takes_set_and_input_as_check_does(capsys):
    """Issue 25: `%%arch net2 --set num_classes=3` bound a variable literally named
    `net2 --set num_classes=3`; the line takes --set NAME=VALUE (repeatable) and --input."""
    from archdsl.notebook import load_ipython_extension

    shell = FakeIPython()
    load_ipython_extension(shell)
    shell.magics["arch"]("net2 --set num_classes=3", SPEC)
    assert set(shell.user_ns) == {"net2"} and shell.user_ns["net2"].output_shape == (3,)
    shell.magics["arch"]("net3 --set=num_classes=5 --input 1x32x32", SPEC)
    net3 = shell.user_ns["net3"]
    assert (net3.input_shape, net3.output_shape) == ((1, 32, 32), (5,))


@pytest.mark.parametrize("line,fragment", [
    ("net --set num_classes", "--set takes NAME=VALUE"), ("net --set", "--set needs a value"),
    ("net --input 3x", "--input takes CxHxW"), ("net --sets x=1", "unknown option '--sets'"),
])
def test_a_wrong_magic_line_is_refused_and_binds_nothing(line, fragment, capsys):
    from archdsl.notebook import CellError, load_ipython_extension

    shell = FakeIPython()
    load_ipython_extension(shell)
    with pytest.raises(CellError, match=fragment):
        shell.magics["arch"](line, SPEC)
    assert shell.user_ns == {}
