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


def _run(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": "."}}).execute()
    return nb


def _outputs(cell) -> str:
    text = []
    for out in cell.outputs:
        text.append(out.get("text", ""))
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
    nb = _run("%load_ext archdsl", "%%arch net\ninput 1x28x28\nconv 8 k3 g=3\n")
    shown = _outputs(nb.cells[1])
    assert "cell:2:11: error[E-GROUPS]" in shown


def test_network_reprs():
    net = archdsl.loads(SPEC)
    shown = net._repr_html_()
    assert "<pre>" in shown and "tiny: 1x28x28 -&gt; 10" in shown
    if shutil.which("dot"):
        assert net._repr_svg_().lstrip().startswith("<?xml") and "<svg" in shown
    big = archdsl.load("specs/resnet50.arch")._repr_html_()
    assert big.startswith("<details>")  # collapsed when large
