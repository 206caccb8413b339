"""archdsl in Jupyter: the `%%arch` cell magic (a Network shows itself through its own
`_repr_html_` and `_repr_svg_`, in network.py).

    %load_ext archdsl
    %%arch net          <- the cell is a spec; its Network is bound to `net`
    arch tiny
    input 1x28x28
    ...

The magic shows the table and the drawing, or the diagnostics with the cell's own line
numbers. Needs `archdsl[notebook]` (IPython) and, for the drawing, Graphviz's `dot`.
"""

from __future__ import annotations


def diagnostics_text(diagnostics, source: str) -> str:
    """The diagnostics as `archdsl check` prints them, located as `cell:LINE:COL`."""
    from .diagnostics import render_all

    return render_all(diagnostics, source)


def load_ipython_extension(ipython) -> None:
    """`%load_ext archdsl`: register the `%%arch [NAME]` cell magic."""
    from IPython.core.magic import register_cell_magic  # noqa: F401 - IPython is there

    def arch(line: str, cell: str):
        from IPython.display import HTML, display

        from .network import analyse

        name = line.strip()
        network, diagnostics = analyse(cell, "cell")
        if network is None:
            print(diagnostics_text(diagnostics, cell))
            return None
        if network.warnings:
            print(diagnostics_text(network.warnings, cell))
        if name:
            ipython.user_ns[name] = network
        display(HTML(network._repr_html_()))
        return None

    ipython.register_magic_function(arch, magic_kind="cell", magic_name="arch")
