"""Checked network -> the per-layer table and the JSON document of `archdsl check`."""

from __future__ import annotations

from typing import Any

from .graph import Branch, Iteration
from .layers.base import fmt_shape
from .layers.types import out_of_range
from .number_text import jump_text, plain
from .number_text import (  # noqa: F401 - count_text, params_label: importable here as before
    count_text, grouped, human_bytes, human_count, params_label)


def _headed(group) -> bool:
    """Whether a group opens a heading: all do but a combinator's branches."""
    return not isinstance(group, Branch)


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
            "rf": {"size": list(f.field[0]), "stride": [plain(j) for j in f.field[1]]}
            if f.rf else None,
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
        **_dataflow_json(network.graph),
        **base,
    }


def named_values(graph) -> list[dict[str, Any]]:
    """Each name given with `-> a` (or in a block's header), once per place in the file:
    the layer that makes it (the first, where a block or repeat makes it several times),
    its shape, where it is named and where used."""
    out: dict = {}
    for value in graph.names:
        entry = out.setdefault(value.span, {
            "name": value.name, "layer": value.node, "shape": _json_shape(graph.shape(
                value.node)), "made": {"line": value.span.line, "column": value.span.column},
            "used": []})
        entry["used"] += [{"line": u.line, "column": u.column} for u in value.uses
                          if {"line": u.line, "column": u.column} not in entry["used"]]
    return sorted(out.values(), key=lambda e: (e["made"]["line"], e["made"]["column"]))


def _json_shape(shape):
    return None if shape is None else list(shape)


def _dataflow_json(graph) -> dict[str, Any]:
    """`names` and `outputs` where a spec names values or has several outputs (a spec of
    nested combinators alone keeps the document it always had)."""
    if not graph.names and len(graph.outputs) < 2:
        return {}
    return {"names": named_values(graph),
            "outputs": [{"name": o.name, "layer": o.node, "shape": _json_shape(
                graph.shape(o.node)), "aux": o.aux} for o in graph.outputs]}


def dataflow_lines(graph) -> list[str]:
    """The table's lines on named values and outputs, for a spec that has them: where each
    name is made and used, and each output."""
    lines = []
    if len(graph.outputs) > 1:
        lines.append("outputs      " + ", ".join(
            f"{o.name} {fmt_shape(graph.shape(o.node))}" +
            (f" (training only, loss x{o.aux:g})" if o.aux is not None else "")
            for o in graph.outputs))
    for entry in named_values(graph):
        used = sorted({u["line"] for u in entry["used"]})
        uses = ("used on line" + ("s " if len(used) > 1 else " ") + ", ".join(map(str, used))
                if used else "not used by name")
        lines.append(f"name {entry['name']:<15} {fmt_shape(entry['shape'])} from "
                     f"{entry['layer']}, named on line {entry['made']['line']}, {uses}")
    return lines


def _rf_text(rf) -> str:
    if rf is None:
        return ""
    (h, w), (sh, sw) = rf
    size = str(h) if h == w else f"{h}x{w}"
    stride = jump_text(sh) if sh == sw else f"{jump_text(sh)}x{jump_text(sw)}"
    return f"{size} /{stride}"


def checked_prefix(graph) -> list[str]:
    """The nodes, in order, up to the first that could not be checked (a spec with errors:
    the layer that failed, and what follows it, have no shape)."""
    known = []
    for nid in graph.order:
        if graph.facts[nid].shape is None:
            break
        known.append(nid)
    return known


def _rows(graph, nodes: list[str]) -> list[tuple[str, ...]]:
    """The table's rows for `nodes` (in order), each group's heading before its first layer."""
    groups = graph.groups
    rows: list[tuple[str, ...]] = []
    open_groups: list[int] = []
    for nid in nodes:
        node, f = graph.layer(nid), graph.facts[nid]
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
            label = f"iteration {group.label}" if isinstance(group, Iteration) else group.label
            rows.append((f"{indent}{label}", f"line {group.span.line}", "", "", "", ""))
            open_groups.append(g)
        indent = "  " * len(open_groups)
        prefix = groups[open_groups[-1]].name + "." if open_groups else ""
        name = node.name[len(prefix):] if node.name.startswith(prefix) else node.name
        if node.inserted:
            name += " (inserted)"
        rows.append((f"{indent}{name}", node.op, fmt_shape(f.shape),
                     grouped(f.params), grouped(f.macs), _rf_text(f.field)))
    return rows


_HEADER = ("layer", "op", "output", "params", "MACs", "rf")


def _layout(rows: list[tuple[str, ...]]):
    """The function that writes one row, and the rule under the header."""
    widths = [max(len(r[i]) for r in rows + [_HEADER]) for i in range(len(_HEADER))]
    right = {3, 4}

    def fmt(r):
        return "  ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i])
                         for i, c in enumerate(r)).rstrip()

    return fmt, "-" * len(fmt(tuple("-" * w for w in widths)))


def partial_table(graph) -> str | None:
    """The table of a spec with errors, up to the first layer that could not be checked (no
    totals: they would count only part of the network); None when no layer has a shape (the
    first one failed), or when every layer has one (the errors are elsewhere: an unknown
    `--set` name)."""
    known = checked_prefix(graph)
    if len(known) < 2 or len(known) == len(graph.order):
        return None
    rows = _rows(graph, known)
    fmt, rule = _layout(rows)
    head = (f"{graph.name}: {fmt_shape(graph.input_shape)} -> ?   ({graph.file}; checked up to "
            "the first error)")
    return "\n".join([head, fmt(_HEADER), rule, *(fmt(r) for r in rows), rule])


def table(network) -> str:
    """A readable per-layer table grouped by block, then the totals."""
    graph = network.graph
    rows = _rows(graph, graph.order)
    fmt, rule = _layout(rows)
    lines = [f"{network.name}: {fmt_shape(network.input_shape)} -> {fmt_shape(network.output_shape)}"
             f"   ({network.file})", fmt(_HEADER), rule]
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
    extra = dataflow_lines(graph)
    return "\n".join(lines + ([rule] + extra if extra else []))
