"""`archdsl explain`: the arithmetic behind every number `check` prints, with the layer's own
values substituted, so that a hand calculation can be checked line by line.

A checked network in, one LayerExplanation per layer out, each a list of Steps (formula,
substituted, value, note). The steps are not a second derivation: each layer's own rules
(`LayerKind.rules`) and the receptive-field recurrence (propagate.py) are run again with a
recording calculator (archdsl/layers/calc.py), the very code `check` ran, so the numbers an
explanation arrives at are the checker's. The command is archdsl/cli/explain.py.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from .diagnostics import shorten
from .layers.base import fmt_shape
from .layers.calc import Step
from .number_text import plain
from .graph import capped
from .propagate import work_out

__all__ = ["LayerExplanation", "Step", "UnknownLayer", "explain",
           "explain_layer", "select", "render_text", "to_json"]


@dataclass
class LayerExplanation:
    """The worked arithmetic of one layer, and the numbers it arrives at."""

    name: str
    op: str
    line: int
    written: str  # the statement as written, or what made the layer
    input: list[tuple]  # one shape per input (a merge has one per branch)
    output: tuple
    steps: list[Step] = field(default_factory=list)
    params: int = 0
    buffers: int = 0
    macs: int = 0
    rf: tuple | None = None  # ((size_h, size_w), (jump_h, jump_w)), as check shows it

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of `archdsl explain --format json`."""
        return {"name": self.name, "op": self.op, "line": self.line, "written": self.written,
                "input": [list(x) for x in self.input], "output": list(self.output),
                "params": self.params, "buffers": self.buffers, "macs": self.macs,
                "rf": {"size": list(self.rf[0]), "stride": [plain(j) for j in self.rf[1]]}
                if self.rf else None,
                "steps": [s.to_dict() for s in self.steps]}


class UnknownLayer(ValueError):
    """A LAYER that names no layer, block call or line of the spec (the message suggests)."""


# ----------------------------------------------------------------------------- the API


def explain(network, layers=None) -> list[LayerExplanation]:
    """Explain every layer of a checked Network (or LayerGraph), in topological order, or
    only `layers`: node names (`conv1`, `basic1.residual1.body.conv1`), block calls or
    combinators (`basic1`: every layer in it), blocks (`basic`: every call of it), named
    values (`e2`: the layer that makes it, in each call or time round it is named) and spec
    line numbers (`5` or 5: the layers written there, or made by a call written there).
    Raises UnknownLayer for one that matches nothing."""
    graph = getattr(network, "graph", network)
    return [explain_layer(graph, nid) for nid in select(graph, layers)]


def explain_layer(graph, nid: str) -> LayerExplanation:
    """The explanation of node `nid` of a checked graph: its rules run again, recorded."""
    calc = work_out(graph, nid, recording=True)
    node = graph.layer(nid)
    return LayerExplanation(
        nid, node.op, node.span.line, _written(graph, node), list(calc.xs), tuple(calc.output),
        calc.steps, calc.params, calc.buffers, calc.macs, capped(calc.rf, calc.bound))


def _written(graph, node) -> str:
    if node.merge is not None:
        return f"the merge closing {node.merge.combinator}<…> (line {node.span.line})"
    if node.inserted:
        return "inserted by archdsl (projection shortcut)"
    return graph.source_text(node.span)


# ----------------------------------------------------------------------------- choosing layers


def select(graph, wanted) -> list[str]:
    """The node names `wanted` names (see `explain`), in topological order; all layers when
    `wanted` is empty."""
    names = [nid for nid, node in graph.layers() if node.kind is not None]
    if not wanted:
        return names
    chosen: set[str] = set()
    for item in wanted:
        chosen |= _matching(graph, names, str(item).strip())
    return [n for n in names if n in chosen]


def _matching(graph, names: list[str], item: str) -> set[str]:
    if item.isdigit():
        line = int(item)
        written_there = {g.id for g in graph.groups.values() if g.span.line == line}
        found = {n for n in names if graph.layer(n).span.line == line
                 or written_there.intersection(graph.layer(n).groups)}
        if not found:
            lines = sorted({graph.layer(n).span.line for n in names}
                           | {graph.groups[g].span.line for n in names
                              for g in graph.layer(n).groups})
            raise UnknownLayer(f"no layer is written on line {line} of {graph.file}; layers are "
                               f"on lines {_ranges(lines)}")
        return found
    if item in names:
        return {item}
    made = {v.node for v in graph.names if v.name == item}  # a named value: its layers
    if made:
        return made
    groups = {g.name for g in graph.groups.values()}
    if item in groups:
        return {n for n in names if n.startswith(item + ".")}
    calls = {g.name for g in graph.groups.values() if g.block == item}  # a block: every call
    if calls:
        return {n for n in names if any(n.startswith(c + ".") for c in calls)}
    known = names + sorted(groups)
    close = sorted(difflib.get_close_matches(item, known, n=3, cutoff=0.6), key=known.index)
    close += [n for n in names if n.endswith("." + item) and n not in close][:3]
    hint = ("did you mean " + ", ".join(f"`{c}`" for c in close[:4]) + "?") if close else \
        "`archdsl check` lists the layers' names"
    raise UnknownLayer(f"no layer, block call or line `{shorten(item)}` in {graph.file}; "
                       f"{hint}")  # a 100 KB name is not echoed whole


def _ranges(lines: list[int]) -> str:
    """`5-9, 12, 14-16`."""
    out: list[list[int]] = []
    for n in lines:
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in out)


# ----------------------------------------------------------------------------- output


def _number(value) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        return fmt_shape(value) if isinstance(value, (list, tuple)) else str(value)
    return f"{value:,}"


def render_text(explanations: list[LayerExplanation]) -> str:
    """The worked arithmetic of each layer: a heading, then one block per step (what, the
    formula; `= substituted = value`; a note)."""
    blocks = []
    width = max((len(s.what) for e in explanations for s in e.steps), default=0) + 2
    for e in explanations:
        inputs = ", ".join(fmt_shape(x) for x in e.input)
        lines = [f"{e.name}  ({e.op}, line {e.line}: {e.written})",
                 f"  {inputs} -> {fmt_shape(e.output)}"]
        for s in e.steps:
            lines.append(f"  {s.what:<{width}}{s.formula}")
            result = _number(s.value)
            stated = s.substituted.replace(",", "") == result.replace(",", "") or (
                isinstance(s.value, list) and "=" in s.substituted)
            shown = s.substituted if stated else f"{s.substituted} = {result}"
            lines.append(f"  {'':<{width}}= {shown}")
            if s.note:
                lines.append(f"  {'':<{width}}({s.note})")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def to_json(network, explanations: list[LayerExplanation]) -> dict[str, Any]:
    """The JSON document of `archdsl explain --format json`."""
    graph = getattr(network, "graph", network)
    return {"arch": graph.name, "file": graph.file,
            "layers": [e.to_dict() for e in explanations]}
