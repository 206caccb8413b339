"""The static pass: output shapes, parameters, MACs, receptive fields and memory per node.

Walks the finished layer graph in topological order using the layer registry and records a
Facts per node; it changes no structure (projection shortcuts are made before it, by the
shortcuts pass). A layer whose rule fails gets a located diagnostic and no shape; layers
downstream of it are skipped rather than reported again, and independent parts of the
network are still checked.

MACs count one per multiply-add of convolutions and linear layers (the figure papers and
torchvision quote); pooling, normalisation, activations and merges count 0.
Memory is float32: parameters and buffers, and each layer's output per sample.
"""

from __future__ import annotations

from .diagnostics import Diagnostic, called_here, error, warning
from .graph import BYTES_PER_VALUE, BlockCall, Facts, LayerGraph, Totals
from .layers.base import LayerError, fmt_shape
from .layers.merge import combinator
from .propagate import work_out

# Beyond this, `check` warns (W-HUGE): 1G float32 values, seven times VGG-19's parameters.
HUGE_BYTES = 4 << 30
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
        diagnostics += _huge(graph)
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


# ----------------------------------------------------------------------------- size limits


def _largest(graph: LayerGraph, key: str):
    """The node with the most `key` (params, memory), for pointing at the culprit."""
    def size(n):
        f = graph.facts[n]
        return f.params + f.buffers if key == "params" else f.memory

    return max(graph.order[1:], key=size, default=None)


def _huge(graph: LayerGraph) -> list[Diagnostic]:
    """W-HUGE: parameters, or one layer's output, too large for any ordinary machine."""
    from .report import human_bytes, human_count

    found = []
    t = graph.totals
    if t.param_bytes > HUGE_BYTES:
        nid = _largest(graph, "params")
        f = graph.facts[nid]
        found.append(warning(
            "W-HUGE", f"the network has {human_count(t.params)} parameters: about "
            f"{human_bytes(t.param_bytes)} in float32; this layer alone has "
            f"{human_count(f.params + f.buffers)}", graph.layer(nid).span,
            hint="check the channel counts and sizes; building the network (train, export) needs "
                 "that much memory and is refused when the machine does not have it"))
    nid = _largest(graph, "memory")
    if nid is not None and graph.facts[nid].memory > HUGE_BYTES:
        f = graph.facts[nid]
        found.append(warning(
            "W-HUGE", f"this layer's output, {fmt_shape(f.shape)}, needs about "
            f"{human_bytes(f.memory)} in float32 for a single sample", graph.layer(nid).span,
            hint="check the input size and the channel counts; a forward pass needs at least "
                 "that much memory"))
    return found


def build_refusal(graph: LayerGraph, limit: int) -> Diagnostic | None:
    """E-TOO-BIG when the parameters and buffers need more than `limit` bytes: the error that
    building the torch module gives instead of trying to allocate them."""
    from .report import human_bytes

    need = graph.totals.param_bytes
    if need <= limit:
        return None
    nid = _largest(graph, "params")
    f = graph.facts[nid]
    return error("E-TOO-BIG", f"building this network needs about {human_bytes(need)} for its "
                 f"parameters (float32), more than the {human_bytes(limit)} of memory here",
                 graph.layer(nid).span, hint="make the layers smaller: this one is the largest, "
                 f"with {f.params + f.buffers:,} values")


def memory_size() -> int:
    """The memory this process may use, in bytes: the machine's physical memory, or less
    where an address-space limit is set (`ulimit -v`); 64 GiB where neither can be told."""
    import os

    try:
        size = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        size = 64 << 30
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY and soft > 0:
            size = min(size, soft)
    except (ImportError, OSError, ValueError):
        pass
    return size


# ----------------------------------------------------------------------------- diagnostics


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
