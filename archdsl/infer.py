"""The static pass: output shapes, parameters, MACs, receptive fields and memory per node.

Walks the finished layer graph in topological order using the layer registry and records a
Facts per node; it changes no structure (projection shortcuts are made before it, by the
shortcuts pass). A layer whose rule fails gets a located diagnostic and no shape; layers
downstream of it are skipped rather than reported again, and independent parts of the
network are still checked.

MACs count one per multiply-add of convolutions and linear layers (the figure papers and
torchvision quote); pooling, normalisation, activations and merges count 0.
Memory is float32: parameters and buffers, and each layer's output per sample; what is too
much is memory.py's, and where a failed rule points is locate.py's.
"""

from __future__ import annotations

from .diagnostics import Diagnostic
from .graph import BYTES_PER_VALUE, Facts, LayerGraph, Totals
from .layers.base import LayerError
from .locate import locate
from .memory import huge
from .propagate import work_out

NO_GROWTH = ((1, 1), (1, 1))


def infer(graph: LayerGraph) -> list[Diagnostic]:
    """Fill in every node's Facts and the graph's totals; return the diagnostics."""
    diagnostics: list[Diagnostic] = []
    for nid in graph.order:
        graph.facts[nid] = Facts()
        try:
            infer_node(graph, nid)
        except LayerError as exc:
            diagnostics.append(locate(graph, nid, exc))
    graph.totals = totals(graph)
    if not any(d.is_error for d in diagnostics):
        diagnostics += huge(graph)
    return diagnostics


def infer_node(graph: LayerGraph, nid: str) -> None:
    """The Facts of one node from its inputs' (already inferred), by the node's own rules
    (propagate.py); LayerError where PyTorch would fail. A node whose inputs have no shape is
    left unchecked."""
    node, facts = graph.layer(nid), graph.facts[nid]
    if node.kind is None:  # the input
        if graph.input_shape is not None:
            facts.set_output(tuple(graph.input_shape), NO_GROWTH)
            facts.bound = tuple(graph.input_shape[1:]) if len(graph.input_shape) == 3 else None
        return
    if node.invalid or any(graph.facts[p].shape is None for p in graph.inputs(nid)):
        return
    calc = work_out(graph, nid)
    facts.set_output(tuple(calc.output), calc.rf)
    facts.bound = calc.bound
    facts.params, facts.buffers, facts.macs = calc.params, calc.buffers, calc.macs


def totals(graph: LayerGraph) -> Totals:
    facts = [graph.facts[n] for n in graph.order]
    params = sum(f.params for f in facts)
    buffers = sum(f.buffers for f in facts)
    return Totals(params=params, buffers=buffers, macs=sum(f.macs for f in facts),
                  param_bytes=(params + buffers) * BYTES_PER_VALUE,
                  activation_bytes=sum(f.memory for f in facts[1:]))
