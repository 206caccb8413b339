"""Warnings for the mistakes learners make. Each lint is one small function over the checked
graph; none of them fires on a well-formed network (the specs in specs/, but for the stride
drop of SqueezeNet's stem: a real finding on torchvision's layout, docs/language.md)."""

from __future__ import annotations

from .diagnostics import Diagnostic, warning
from .graph import BlockCall
from .locate import with_calls
from .layers.base import fmt_shape

PLAIN_DEPTH_LIMIT = 20  # VGG-19's 19 weighted layers train without normalisation; deeper rarely do


def lint(graph) -> list[Diagnostic]:
    """Every lint's warnings, without repeats (a statement inside `repeat` warns once)."""
    found: dict[tuple, Diagnostic] = {}
    for rule in (no_nonlinearity, final_activation, softmax_before_loss, bias_before_batchnorm,
                 stride_drops_rows, deep_plain_stack):
        for node, d in rule(graph):
            # the first layer that warns names the chain of block calls it came through
            found.setdefault((d.code, d.span), (node, d))
    return [with_calls(graph, node, d) for node, d in found.values()]


def _nodes(graph):
    """(name, LayerNode) of every checked layer, the input left out."""
    for nid, node in graph.layers():
        if node.kind is not None and graph.facts[nid].shape is not None:
            yield nid, node


def _line(node) -> str:
    return f"line {node.span.line}"


def no_nonlinearity(graph):
    """Two weighted layers with nothing nonlinear between them collapse into one linear map."""
    sources = _linear_sources(graph)
    nonlinear_blocks = _nonlinear_blocks(graph)
    for nid, node in _nodes(graph):
        if not node.kind.weighted or node.kind.nonlinear:
            continue  # attention, an MLP: weighted, but no linear map of their input
        for prev_id in _sources_before(graph, nid, sources):
            prev = graph.layer(prev_id)
            if _is_bottleneck(graph, prev_id, nid):
                continue  # a deliberate low-rank factorisation (MobileNetV2's linear bottleneck)
            if nonlinear_blocks.intersection(prev.groups).difference(node.groups):
                continue  # a block's linear output, read by the next block: a linear bottleneck
            if _is_separable(graph, prev_id, nid) or _read_elsewhere(graph, prev_id, nid):
                continue
            yield node, warning(
                "W-NO-NONLINEARITY",
                f"`{node.op}` follows `{prev.op}` ({_line(prev)}) with no nonlinearity between "
                "them: together they are a single linear map", node.span,
                hint="add an activation such as `relu` between them")


def _nonlinear_blocks(graph) -> set[int]:
    """The block calls that hold a nonlinear layer. One that ends in a weighted layer ends
    linearly by design (the linear bottleneck of MobileNetV2/V3, EfficientNet, MnasNet: the
    projection that closes a block, read by the expansion or depthwise conv that opens the next);
    a block of weighted layers alone is no such design, and still warns."""
    found: set[int] = set()
    for _, node in graph.layers():
        if node.kind is not None and node.kind.nonlinear:
            found.update(g for g in node.groups if isinstance(graph.groups[g], BlockCall))
    return found


_MAX_SOURCES = 8  # enough to find one that is not a bottleneck; keeps long chains linear


def _sources_before(graph, nid, sources) -> list[str]:
    """Weighted layers that reach `nid` through linear, weight-free layers only."""
    found: list[str] = []
    for p in reversed(list(graph.dag.pred[nid])):
        kind = graph.layer(p).kind
        if kind is None or kind.nonlinear:
            continue
        for s in [p] if kind.weighted else sources[p]:
            if s not in found:
                found.append(s)
    return found[:_MAX_SOURCES]


def _linear_sources(graph) -> dict[str, list[str]]:
    """For every node, the weighted layers that reach its output through linear, weight-free
    layers only (the node itself excluded), in one pass in topological order: walking back
    from every layer instead would be quadratic along a chain of residual merges."""
    sources: dict[str, list[str]] = {}
    for nid, node in graph.layers():
        kind = node.kind
        if kind is None or kind.nonlinear or kind.weighted:
            sources[nid] = []
        else:
            sources[nid] = _sources_before(graph, nid, sources)
    return sources


def _is_bottleneck(graph, prev_id, nid) -> bool:
    """A linear bottleneck: narrower than both sides, or (MobileNetV3's projection 16 -> 16
    before an expansion to 72) a pointwise map that keeps the width before a wider layer."""
    (x,) = [graph.shape(p) for p in graph.inputs(prev_id)]
    width_in, width_mid, width_out = x[0], graph.shape(prev_id)[0], graph.shape(nid)[0]
    if width_mid >= width_out:
        return False
    if width_mid < width_in:
        return True
    prev = graph.layer(prev_id)
    pointwise = len(x) == 1 or prev.kind.receptive(prev.args, x)[0] == (1, 1)
    return width_mid == width_in and pointwise


def _is_separable(graph, prev_id, nid) -> bool:
    """A depthwise convolution and a 1x1 (a conv or a pointwise layer: asked of its kind's
    receptive rule, not its name), in either order: the depthwise-separable factorisation
    (Xception, ShuffleNet: depthwise, then 1x1) or the same two maps the other way round (a
    light conv block: 1x1, then depthwise), each far fewer weights than the one map it equals."""
    return (_depthwise(graph, prev_id) and _one_by_one(graph, nid)) or \
        (_one_by_one(graph, prev_id) and _depthwise(graph, nid))


def _input_shape(graph, nid):
    (x,) = [graph.shape(p) for p in graph.inputs(nid)]
    return x


def _depthwise(graph, nid) -> bool:
    """A layer whose groups are its input channels (more than one): one filter a channel."""
    groups = getattr(graph.layer(nid).args, "groups", None)  # a kind without groups: None
    x = _input_shape(graph, nid)
    return groups is not None and len(x) == 3 and groups == x[0] > 1


def _one_by_one(graph, nid) -> bool:
    """A layer on a feature map whose window is 1x1: it mixes channels at each position."""
    node, x = graph.layer(nid), _input_shape(graph, nid)
    return len(x) == 3 and node.kind.receptive(node.args, x)[0] == (1, 1)


def _read_elsewhere(graph, prev_id, nid) -> bool:
    """Whether the output of `prev_id` is also read by another path before it reaches `nid`
    (a residual stream, a fork): it is then no mere intermediate of one linear map (MaxViT's
    stem feeds both an MBConv's shortcut and its pre-normed body)."""
    at = prev_id
    while True:
        successors = list(graph.dag.succ[at])
        if len(successors) != 1:
            return len(successors) > 1
        (at,) = successors
        kind = graph.layer(at).kind
        if at == nid or kind is None or kind.weighted or kind.nonlinear:
            return False


def _output_chain(graph):
    """The nodes at the end of the network, walking back over layers that only move values
    (the `reshapes` trait: flatten, dropout, identity)."""
    nid = graph.output
    while nid is not None and graph.layer(nid).kind is not None:
        node = graph.layer(nid)
        yield nid, node
        if not node.kind.reshapes or len(graph.dag.pred[nid]) != 1:
            return
        (nid,) = graph.dag.pred[nid]


def _last_real_layer(graph):
    for nid, node in _output_chain(graph):
        if not node.kind.reshapes:
            return nid, node
    return None, None


def final_activation(graph):
    """An activation after the classifier squashes the scores a loss needs."""
    nid, node = _last_real_layer(graph)
    if node is None or not node.kind.activation or node.kind.scores_to_probabilities:
        return
    (prev,) = graph.dag.pred[nid]
    while graph.layer(prev).kind is not None and graph.layer(prev).kind.reshapes:
        (prev,) = graph.dag.pred[prev]
    kind = graph.layer(prev).kind
    if kind is not None and kind.classifier:
        yield node, warning(
            "W-FINAL-ACTIVATION",
            f"`{node.op}` after the last classifier layer limits the scores it can give",
            node.span, hint="end the network with the last `linear`: the loss wants raw scores "
                            "(logits)")


def softmax_before_loss(graph):
    """PyTorch's cross-entropy applies log-softmax itself; a softmax before it is applied twice."""
    _, node = _last_real_layer(graph)
    if node is not None and node.kind.gives_probabilities:
        yield node, warning(
            "W-SOFTMAX-LOSS", "the network ends in softmax, but the cross-entropy loss already "
            "applies it: training sees softmax twice and learns slowly", node.span,
            hint="remove the final `softmax`, and apply it to the scores only when you want "
                 "probabilities (at prediction time)")


def bias_before_batchnorm(graph):
    """A bias right before batch norm is cancelled by its mean subtraction."""
    for nid, node in _nodes(graph):
        args = node.args
        if not node.kind.weighted or not getattr(args, "bias", False) or "bias" in args.given:
            continue
        succ = graph.successors(nid)
        if len(succ) == 1 and graph.layer(succ[0]).kind.cancels_bias:
            yield node, warning(
                "W-BIAS-BEFORE-BN", f"`{node.op}`'s bias is cancelled by the batch norm after it",
                node.span, hint="add `nobias` (bn's shift plays its part), or write `bias=true` "
                                "to keep it on purpose")


def stride_drops_rows(graph):
    """A stride that does not fit the input leaves its last rows or columns unread (asked of
    the kind's `window`, whatever its arguments are called)."""
    for nid, node in _nodes(graph):
        if not node.kind.sliding_window or node.inserted:
            continue
        (x,) = [graph.shape(p) for p in graph.inputs(nid)]
        window = node.kind.window(node.args, x)
        if window.ceil:
            continue
        for axis, what in ((0, "rows"), (1, "columns")):
            k, s, size = window.reach[axis], window.stride[axis], x[1 + axis]
            before, after = window.padding[axis]
            if k < s:
                continue  # the windows leave gaps by design (e.g. a strided 1x1 projection)
            left_over = (size + before + after - k) % s
            if left_over > after:
                dropped = left_over - after
                what = what if dropped > 1 else what[:-1]
                fix = ("use an input size that fits, or `ceil`" if window.ceil is not None
                       else "or use an input size that fits the stride")  # None: no ceil mode
                yield node, warning(
                    "W-STRIDE-DROP", f"stride {s} skips the last {dropped} {what} of the "
                    f"{fmt_shape(x)} input", node.span,
                    hint=f"pad by {after + s - left_over} more, {fix}")
                break


def deep_plain_stack(graph):
    """Many weighted layers with no normalisation or shortcut: gradients tend to vanish."""
    depth: dict[str, int] = {}
    for nid, node in graph.layers():
        preds = [depth.get(p, 0) for p in graph.dag.pred[nid]]
        kind = node.kind
        if kind is None or kind.normalises:
            depth[nid] = 0
        elif kind.merges:
            depth[nid] = min(preds) if preds else 0  # a shortcut is a short path for gradients
        else:
            depth[nid] = max(preds, default=0) + (1 if kind.weighted else 0)
        if depth[nid] == PLAIN_DEPTH_LIMIT + 1 and kind is not None and kind.weighted:
            yield node, warning(
                "W-DEEP-PLAIN", f"{depth[nid]} weighted layers in a row with no normalisation or "
                "shortcut (deeper than VGG-19): gradients are likely to vanish", node.span,
                hint="add `bn` after the convolutions, or residual connections (`residual< … >`)")
            return
