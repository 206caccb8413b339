"""Where a failed rule points: the argument or the branch that causes it, and the chain of
block calls that led to the layer (a note on each call, innermost first)."""

from __future__ import annotations

from .diagnostics import Diagnostic, called_here, error
from .graph import BlockCall, LayerGraph
from .layers.base import LayerError
from .layers.merge import combinator


def locate(graph: LayerGraph, nid: str, exc: LayerError) -> Diagnostic:
    """The diagnostic for a rule's failure at `nid`, pointing at the argument or the branch
    that causes it."""
    node = graph.layer(nid)
    span = node.arg_spans.get(exc.arg, node.span) if exc.arg else node.span
    label, hint, message = exc.label, exc.hint, exc.message
    site = node.merge
    if site is not None and exc.code in ("E-SHAPE", "E-CONCAT"):
        xs = [graph.facts[p].shape for p in graph.inputs(nid)]
        span, label, hint, message = combinator(site.combinator).culprit(
            site, xs, exc, graph.source_text)
    if node.inserted and site is None:
        hint = (hint + "; " if hint else "") + "this layer was inserted by archdsl as a projection " \
                                                "shortcut"
    return with_calls(graph, node, error(exc.code, message, span, hint=hint, label=label))


def with_calls(graph: LayerGraph, node, d: Diagnostic) -> Diagnostic:
    """`d`, about a layer, with a note on each block call that holds the layer, innermost
    first: the chain of calls that led there (the node's groups; no syntax tree needed)."""
    for gid in reversed(node.groups):
        group = graph.groups[gid]
        if isinstance(group, BlockCall):
            d = d.with_note(called_here(group.block), group.span)
    return d


def with_calls_at(graph: LayerGraph, d: Diagnostic) -> Diagnostic:
    """`d` with the call chain of the first layer whose statement it points at (for the
    lints, which name a layer by its span)."""
    if d.span is None or d.notes:
        return d
    for _, node in graph.layers():
        if node.span == d.span or d.span in node.arg_spans.values():
            return with_calls(graph, node, d)
    return d
