"""The memory policy of a checked graph: W-HUGE where the parameters, or one layer's output,
pass what an ordinary machine holds; E-TOO-BIG where building the torch module would need
more memory than this machine has (torch_backend, codegen and export refuse it instead of
trying to allocate it); and how much memory this process may use.
"""

from __future__ import annotations

from .diagnostics import Diagnostic, error, warning
from .graph import LayerGraph
from .layers.base import fmt_shape

# Beyond this, `check` warns (W-HUGE): 1G float32 values, seven times VGG-19's parameters.
HUGE_BYTES = 4 << 30


def _largest(graph: LayerGraph, key: str):
    """The node with the most `key` (params, memory), for pointing at the culprit."""
    def size(n):
        f = graph.facts[n]
        return f.params + f.buffers if key == "params" else f.memory

    return max(graph.order[1:], key=size, default=None)


def huge(graph: LayerGraph) -> list[Diagnostic]:
    """W-HUGE: parameters, or one layer's output, too large for any ordinary machine."""
    from .number_text import human_bytes, human_count

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
    from .number_text import human_bytes

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
