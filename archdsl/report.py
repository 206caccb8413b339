"""Checked network -> the per-layer table and the JSON document of `archdsl check`."""

from __future__ import annotations

from typing import Any

from .layers.base import fmt_shape
from .layers.merge import combinator
from .layers.types import out_of_range, scientific

_HEADED = ("block", "repeat", "iteration")  # and every combinator: each opens a heading


def _headed(group) -> bool:
    return group.kind in _HEADED or combinator(group.kind) is not None


def layer_records(graph) -> list[dict[str, Any]]:
    """One dict per layer in topological order, as in the JSON output."""
    records = []
    for nid, node in graph.layers():
        if node.kind is None:
            continue
        f = graph.facts[nid]
        records.append({
            "name": node.name,
            "op": node.op,
            "line": node.span.line,
            "column": node.span.column,
            "output": list(f.shape) if f.shape is not None else None,
            "params": f.params,
            "buffers": f.buffers,
            "macs": f.macs,
            "rf": {"size": list(f.field[0]), "stride": list(f.field[1])} if f.rf else None,
            "memory": f.memory,
            "block": graph.block_of(node),
            "inserted": node.inserted,
        })
    return records


def to_json(network, diagnostics) -> dict[str, Any]:
    """The JSON document for a checked network (None when the spec had errors)."""
    base: dict[str, Any] = {"diagnostics": [d.to_dict() for d in diagnostics]}
    if network is None:
        # a wrong `--set` value has no place, but its note shows the parameter in the file
        file = next((s.file for d in diagnostics for s in (d.span, *(n.span for n in d.notes))
                     if s is not None), None)
        return {"arch": None, "file": file, "parameters": None, "input": None, "output": None,
                "params": None,
                "trainable_params": None, "buffers": None, "macs": None, "memory": None,
                "layers": [], **base}
    return {
        "arch": network.name,
        "file": network.file,
        "parameters": {name: None if out_of_range(value) else value  # JSON has no NaN
                       for name, value in network.arch_params.items()},
        "input": list(network.input_shape),
        "output": list(network.output_shape),
        "params": network.params,
        "trainable_params": network.trainable_params,
        "buffers": network.buffers,
        "macs": network.macs,
        "memory": network.memory,
        "layers": network.layers(),
        **base,
    }


def human_bytes(n: int) -> str:
    """`1.5 GiB`; sizes beyond any memory in scientific notation (`8.1e+22 B`)."""
    if n >= 1 << 60:
        return f"{float(n):.2g} B" if n < 10**300 else f"{scientific(n, 1)} B"
    for unit, size in (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20),
                       ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def human_count(n: int) -> str:
    """`11.69M`; counts beyond 10^15 in scientific notation."""
    if n >= 10**15:
        return scientific(n, 2)
    for unit, size in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def count_text(n: int) -> str:
    """`1,000,001`, or `1.0e+300` for a count too long to read."""
    return f"{n:,}" if n < 10**15 else scientific(n, 1)


def grouped(n: int) -> str:
    """`1,000,001`: every digit of a count, as the table shows it, unless it has more than a
    thousand (then `1.00e+1200`)."""
    return f"{n:,}" if n < _THOUSAND_DIGITS else scientific(n, 2)


_THOUSAND_DIGITS = 10**1000


def params_label(n: int) -> str:
    """A drawing's parameter line: `156 params`, `36.9k params`, `2.36M params`."""
    if n >= 10**15:
        return f"{scientific(n, 2)} params"
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M params"
    if n >= 10_000:
        return f"{n / 1e3:.1f}k params"
    return f"{n:,} params"


def _rf_text(rf) -> str:
    if rf is None:
        return ""
    (h, w), (sh, sw) = rf
    size = str(h) if h == w else f"{h}x{w}"
    stride = str(sh) if sh == sw else f"{sh}x{sw}"
    return f"{size} /{stride}"


def table(network) -> str:
    """A readable per-layer table grouped by block, then the totals."""
    graph = network.graph
    groups = graph.groups
    rows: list[tuple[str, ...]] = []
    open_groups: list[int] = []
    for nid, node in graph.layers():
        f = graph.facts[nid]
        if node.kind is None:
            rows.append(("input", "", fmt_shape(f.shape), "", "", ""))
            continue
        headed = [g for g in node.groups if _headed(groups[g])]
        common = 0
        while common < min(len(open_groups), len(headed)) and open_groups[common] == headed[common]:
            common += 1
        open_groups = open_groups[:common]
        for g in headed[common:]:
            group = groups[g]
            indent = "  " * len(open_groups)
            label = group.label if group.kind != "iteration" else f"iteration {group.label}"
            rows.append((f"{indent}{label}", f"line {group.span.line}", "", "", "", ""))
            open_groups.append(g)
        indent = "  " * len(open_groups)
        prefix = groups[open_groups[-1]].name + "." if open_groups else ""
        name = node.name[len(prefix):] if node.name.startswith(prefix) else node.name
        if node.inserted:
            name += " (inserted)"
        rows.append((f"{indent}{name}", node.op, fmt_shape(f.shape),
                     grouped(f.params), grouped(f.macs), _rf_text(f.field)))
    header = ("layer", "op", "output", "params", "MACs", "rf")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    right = {3, 4}

    def fmt(r):
        return "  ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i])
                         for i, c in enumerate(r)).rstrip()

    rule = "-" * len(fmt(tuple("-" * w for w in widths)))
    lines = [f"{network.name}: {fmt_shape(network.input_shape)} -> {fmt_shape(network.output_shape)}"
             f"   ({network.file})", fmt(header), rule]
    lines += [fmt(r) for r in rows]
    mem = network.memory
    lines += [rule,
              f"params       {grouped(network.params):>15}   ({human_count(network.params)}, all "
              f"trainable; {grouped(network.buffers)} buffer values)",
              f"MACs         {grouped(network.macs):>15}   ({human_count(network.macs)} per "
              "sample)",
              f"memory       {human_bytes(mem['params']):>15}   parameters and buffers (float32)",
              f"             {human_bytes(mem['activations']):>15}   layer outputs per sample "
              "(float32, forward)"]
    return "\n".join(lines)
