"""archdsl in Jupyter: how a Network shows itself, and the `%%arch` cell magic.

    %load_ext archdsl
    %%arch net          <- the cell is a spec; its Network is bound to `net`
    arch tiny
    input 1x28x28
    ...

The magic shows the table and the drawing, or the diagnostics with the cell's own line
numbers. Needs `archdsl[notebook]` (IPython) and, for the drawing, Graphviz's `dot`.
"""

from __future__ import annotations

import html

COLLAPSE_ROWS = 40  # a table longer than this starts folded (<details>)


def svg(network) -> str | None:
    """The network's drawing as SVG text, or None where Graphviz's `dot` is missing."""
    from .draw import to_dot

    try:
        return to_dot(network.graph, network.diagnostics).pipe(format="svg").decode("utf-8")
    except Exception:  # noqa: BLE001 - no dot binary: the table alone
        return None


def network_html(network) -> str:
    """The summary table and the drawing; both folded when the network is large."""
    table = network.summary()
    rows = table.count("\n") + 1
    picture = svg(network)
    head = html.escape(repr(network))
    parts = [f"<pre>{html.escape(table)}</pre>"]
    if picture is not None:
        picture = picture[picture.find("<svg"):]  # inline: without the XML prologue
        parts.append(f"<div style='max-width:100%;overflow:auto'>{picture}</div>")
    body = "\n".join(parts)
    if rows > COLLAPSE_ROWS:
        return f"<details><summary><code>{head}</code> ({rows} table rows)</summary>\n{body}</details>"
    return f"<div><code>{head}</code>\n{body}</div>"


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
        display(HTML(network_html(network)))
        return None

    ipython.register_magic_function(arch, magic_kind="cell", magic_name="arch")
