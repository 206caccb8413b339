"""archdsl in Jupyter: the `%%arch` cell magic (a Network shows itself through its own
`_repr_html_` and `_repr_svg_`, in network.py).

    %load_ext archdsl
    %%arch net          <- the cell is a spec; its Network is bound to `net`
                           (`%%arch net --set num_classes=3 --input 3x32x32` as `check` takes them)
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


class CellError(Exception):
    """A `%%arch` cell that failed: IPython shows the message alone (`_render_traceback_`)
    instead of a Python traceback, and, as after any failing cell, stops "Run All"."""

    def _render_traceback_(self) -> list[str]:
        return str(self).splitlines()


def name_problem(name: str, namespace: dict) -> str | None:
    """Why `%%arch NAME` may not bind NAME in the notebook's namespace, or None. A name may
    be rebound while it holds a Network (a cell run again); anything else it holds, Python's
    built-ins and IPython's own names stay as they are."""
    import builtins
    import keyword

    from .network import Network

    if not name.isidentifier() or not name.isascii():
        return f"`{name}` is not a Python name: write `%%arch net` (letters, digits and _, " \
               "not starting with a digit)"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"`{name}` is a Python keyword: choose another name, e.g. `{name}_net`"
    if name.startswith("__") or hasattr(builtins, name):
        return f"`{name}` is Python's own, and binding it would break later cells: choose " \
               f"another name, e.g. `{name.strip('_') or 'net'}_net`"
    held = namespace.get(name, None)
    if name in namespace and not isinstance(held, Network):
        what = type(held).__name__
        return f"`{name}` already holds a {what} of this notebook, which the network would " \
               f"replace: choose another name, or `del {name}` first"
    return None


def magic_line(line: str) -> tuple[str, dict, tuple | None]:
    """`%%arch [NAME] [--set NAME=VALUE]... [--input CxHxW]` -> (NAME or "", the --set
    values, the input shape or None), read as `archdsl check` reads those options; a
    CellError says what is wrong with the line."""
    import shlex

    from .command_values import UsageError, parse_input, parse_sets

    usage = "%%arch [NAME] [--set NAME=VALUE]... [--input CxHxW]"
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise CellError(f"%%arch: cannot read the line ({exc}); it takes {usage}") from None
    names, sets, shape = [], [], None
    while words:
        word = words.pop(0)
        option, eq, value = word.partition("=")
        if option in ("--set", "--input"):
            if not eq:
                if not words:
                    raise CellError(f"%%arch: {option} needs a value: {usage}")
                value = words.pop(0)
            if option == "--set":
                sets.append(value)
            else:
                shape = value
        elif word.startswith("-"):
            raise CellError(f"%%arch: unknown option {word!r}; the line takes {usage}")
        else:
            names.append(word)
    if len(names) > 1:
        raise CellError(f"%%arch takes one name to bind the network to, got {' '.join(names)!r}"
                        f" ({usage})")
    try:
        return (names[0] if names else ""), parse_sets(sets), parse_input(shape)
    except UsageError as exc:
        raise CellError(f"%%arch: {exc}") from None


def load_ipython_extension(ipython) -> None:
    """`%load_ext archdsl`: register the `%%arch [NAME]` cell magic."""
    from IPython.core.magic import register_cell_magic  # noqa: F401 - IPython is there

    def arch(line: str, cell: str):
        from IPython.display import HTML, display

        from .network import Network, analyse

        name, params, input_shape = magic_line(line)
        problem = name and name_problem(name, ipython.user_ns)
        if problem:
            raise CellError(f"%%arch {name}: {problem}")
        network, diagnostics = analyse(cell, "cell", params, input_shape)
        if network is None:
            stale = name and isinstance(ipython.user_ns.get(name), Network)
            if stale:  # later cells must not go on with the network of an older text
                del ipython.user_ns[name]
            raise CellError(diagnostics_text(diagnostics, cell) + (
                f"\n`{name}` no longer holds the network of this cell's previous run" if stale
                else ""))
        if network.warnings:
            print(diagnostics_text(network.warnings, cell))
        if name:
            ipython.user_ns[name] = network
        display(HTML(network._repr_html_()))
        return None

    ipython.register_magic_function(arch, magic_kind="cell", magic_name="arch")
