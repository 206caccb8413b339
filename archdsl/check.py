"""The static pass: output shapes, parameters, MACs, receptive fields and memory per node.

Walks the layer graph in topological order using the layer registry. A layer whose rule
fails gets a located diagnostic and no shape; layers downstream of it are skipped rather
than reported again, and independent parts of the network are still checked.

MACs count one per multiply-add of convolutions and linear layers (the figure papers and
torchvision quote); pooling, normalisation, activations and merges count 0.
Memory is float32: parameters and buffers, and each layer's output per sample.
"""

from __future__ import annotations

from . import layers
from .diagnostics import Diagnostic, Span, error, warning
from .layers.base import Args, LayerError, fmt_shape, numel
from .layers.merge import MergeKind

BYTES_PER_VALUE = 4  # float32
# Beyond this, `check` warns (W-HUGE): 1G float32 values, seven times VGG-19's parameters.
HUGE_BYTES = 4 << 30


def check(graph) -> list[Diagnostic]:
    """Fill in shape, params, buffers, macs, rf and memory on every node; return diagnostics."""
    diagnostics: list[Diagnostic] = []
    order = graph.graph["order"]
    input_shape = graph.graph.get("input_shape")
    i = 0
    while i < len(order):  # the order grows when a projection shortcut is inserted
        nid = order[i]
        i += 1
        node = graph.nodes[nid]
        node.update(shape=None, params=0, buffers=0, macs=0, rf=None, memory=0)
        if node["op"] == "input":
            if input_shape is not None:
                _set(node, tuple(input_shape), ((1, 1), (1, 1)))
            continue
        inputs = _inputs(graph, nid)
        if node.get("invalid") or any(graph.nodes[p]["shape"] is None for p in inputs):
            continue
        xs = [graph.nodes[p]["shape"] for p in inputs]
        rfs = [graph.nodes[p]["rf"] for p in inputs]
        kind = node["kind"]
        try:
            if isinstance(kind, MergeKind):
                if node.get("auto_shortcut") and xs[0] != xs[1]:
                    inserted = _insert_projection(graph, nid, xs[0], xs[1])
                    order[i - 1:i - 1] = inserted
                    i -= 1  # check the inserted layers first, then this merge again
                    continue
                combinator = node.get("combinator")
                if combinator is not None and combinator.kind == "residual" and xs[0] != xs[1]:
                    raise LayerError("E-SHAPE", "residual needs equal shapes")
                y = kind.combine(xs)
                rf = (tuple(max(r[0][a] for r in rfs) for a in (0, 1)),
                      tuple(max(r[1][a] for r in rfs) for a in (0, 1)))
                _set(node, y, rf)
                continue
            x = xs[0]
            y = kind.shape(node["args"], x)
            _set(node, y, _grow_rf(rfs[0], *kind.receptive(node["args"], x)) if len(x) == 3
                 else rfs[0])
            node["params"] = kind.params(node["args"], x, y)
            node["buffers"] = kind.buffers(node["args"], x, y)
            node["macs"] = kind.macs(node["args"], x, y)
        except LayerError as exc:
            diagnostics.append(_locate(graph, nid, exc, xs))
    for u, _, data in graph.edges(data=True):  # edges carry the tensor their source produces
        data["shape"] = graph.nodes[u]["shape"]
    _totals(graph)
    if not any(d.is_error for d in diagnostics):
        diagnostics += _huge(graph)
    return diagnostics


def _inputs(graph, nid) -> list[str]:
    preds = graph.pred[nid]
    return sorted(preds, key=lambda p: preds[p].get("port", 0))


def _set(node, shape, rf):
    node["shape"] = shape
    node["rf"] = rf
    node["memory"] = numel(shape) * BYTES_PER_VALUE


def _grow_rf(rf, kernel, stride):
    (size_h, size_w), (jump_h, jump_w) = rf
    return ((size_h + (kernel[0] - 1) * jump_h, size_w + (kernel[1] - 1) * jump_w),
            (jump_h * stride[0], jump_w * stride[1]))


def _totals(graph) -> None:
    nodes = [graph.nodes[n] for n in graph.graph["order"]]
    params = sum(n["params"] for n in nodes)
    buffers = sum(n["buffers"] for n in nodes)
    graph.graph["totals"] = {
        "params": params,
        "buffers": buffers,
        "macs": sum(n["macs"] for n in nodes),
        "param_bytes": (params + buffers) * BYTES_PER_VALUE,
        "activation_bytes": sum(n["memory"] for n in nodes if n["op"] != "input"),
    }


# ----------------------------------------------------------------------------- size limits


def _largest(graph, key: str):
    """The node with the most `key` (params, memory), for pointing at the culprit."""
    nodes = (graph.nodes[n] for n in graph.graph["order"] if graph.nodes[n]["op"] != "input")
    return max(nodes, key=lambda n: n[key] + (n["buffers"] if key == "params" else 0),
               default=None)


def _huge(graph) -> list[Diagnostic]:
    """W-HUGE: parameters, or one layer's output, too large for any ordinary machine."""
    from .report import human_bytes, human_count

    found = []
    totals = graph.graph["totals"]
    if totals["param_bytes"] > HUGE_BYTES:
        node = _largest(graph, "params")
        found.append(warning(
            "W-HUGE", f"the network has {human_count(totals['params'])} parameters: about "
            f"{human_bytes(totals['param_bytes'])} in float32; this layer alone has "
            f"{human_count(node['params'] + node['buffers'])}", node["span"],
            hint="check the channel counts and sizes; building the network (train, export) needs "
                 "that much memory and is refused when the machine does not have it"))
    node = _largest(graph, "memory")
    if node is not None and node["memory"] > HUGE_BYTES:
        found.append(warning(
            "W-HUGE", f"this layer's output, {fmt_shape(node['shape'])}, needs about "
            f"{human_bytes(node['memory'])} in float32 for a single sample", node["span"],
            hint="check the input size and the channel counts; a forward pass needs at least "
                 "that much memory"))
    return found


def build_refusal(graph, limit: int) -> Diagnostic | None:
    """E-TOO-BIG when the parameters and buffers need more than `limit` bytes: the error that
    building the torch module gives instead of trying to allocate them."""
    from .report import human_bytes

    need = graph.graph["totals"]["param_bytes"]
    if need <= limit:
        return None
    node = _largest(graph, "params")
    return error("E-TOO-BIG", f"building this network needs about {human_bytes(need)} for its "
                 f"parameters (float32), more than the {human_bytes(limit)} of memory here",
                 node["span"], hint="make the layers smaller: this one is the largest, with "
                 f"{node['params'] + node['buffers']:,} values")


def memory_size() -> int:
    """This machine's physical memory in bytes (64 GiB where it cannot be told)."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return 64 << 30


# ----------------------------------------------------------------------------- residuals


def _insert_projection(graph, merge_id: str, body: tuple, given: tuple) -> list[str]:
    """torchvision's downsample: a bias-free 1x1 conv at the body's stride, then batch norm."""
    node = graph.nodes[merge_id]
    combinator = node["combinator"]
    if len(body) != len(given):
        raise LayerError("E-SHAPE", f"the residual body turns {fmt_shape(given)} into "
                         f"{fmt_shape(body)}, and no projection can bridge that",
                         hint="keep the body's output a feature map (or a vector) like its input")
    stride = (1, 1)
    if len(body) == 3:
        strides = []
        for axis in (1, 2):
            # a 1x1 conv with stride s gives ceil(G/s); the smallest s that reaches B is ceil(G/B)
            s = -(-given[axis] // body[axis]) if body[axis] > 0 else 0
            if s < 1 or -(-given[axis] // s) != body[axis]:
                raise LayerError(
                    "E-SHAPE", f"the residual body turns {fmt_shape(given)} into {fmt_shape(body)}, "
                    "which no strided 1x1 projection can match",
                    hint="pad the body's convolutions to keep the size (e.g. `p1` with `k3`), or "
                         "write the shortcut yourself after `|`")
            strides.append(s)
        stride = tuple(strides)
    fork = node["fork"]
    prefix = node["scope_prefix"] + "shortcut."
    span = combinator.kind_span
    groups = node["groups"]
    conv_kind, bn_kind = layers.get("conv"), layers.get("bn")
    if len(body) == 3:
        conv_args = Args({"out": body[0], "kernel": (1, 1), "stride": stride, "padding": (0, 0),
                          "dilation": (1, 1), "groups": 1, "bias": False, "padding_mode": "zeros"})
        proj_name = "conv1"
    else:
        conv_kind = layers.get("linear")
        conv_args = Args({"out": body[0], "bias": False})
        proj_name = "linear1"
    bn_args = Args({"eps": 1e-5, "momentum": 0.1, "affine": True})
    proj, bn = prefix + proj_name, prefix + "bn1"
    graph.add_node(proj, name=proj, op=conv_kind.name, kind=conv_kind, args=conv_args, span=span,
                   groups=groups, inserted=True, arg_spans={})
    graph.add_node(bn, name=bn, op="bn", kind=bn_kind, args=bn_args, span=span, groups=groups,
                   inserted=True, arg_spans={})
    port = graph.edges[fork, merge_id]["port"]
    graph.remove_edge(fork, merge_id)
    graph.add_edge(fork, proj, port=0)
    graph.add_edge(proj, bn, port=0)
    graph.add_edge(bn, merge_id, port=port)
    node["auto_shortcut"] = False
    node["projection"] = (proj, bn)
    return [proj, bn]


# ----------------------------------------------------------------------------- diagnostics


def _locate(graph, nid: str, exc: LayerError, xs) -> Diagnostic:
    node = graph.nodes[nid]
    span: Span = node["span"]
    if exc.arg and exc.arg in node.get("arg_spans", {}):
        span = node["arg_spans"][exc.arg]
    elif node["kind"] is not None and not isinstance(node["kind"], MergeKind):
        span = node["span"]
    label, hint, message = exc.label, exc.hint, exc.message
    combinator = node.get("combinator")
    if combinator is not None and exc.code in ("E-SHAPE", "E-CONCAT"):
        span, label, hint, message = _merge_culprit(graph, nid, exc, xs)
    if node.get("inserted") and combinator is None:
        hint = (hint + "; " if hint else "") + "this layer was inserted by archdsl as a projection " \
                                                "shortcut"
    return error(exc.code, message, span, hint=hint, label=label)


def _merge_culprit(graph, nid, exc: LayerError, xs):
    """Point a merge's shape error at the branch that disagrees, and say how to fix it."""
    node = graph.nodes[nid]
    combinator = node["combinator"]
    branches = combinator.branches
    if combinator.kind == "residual" and len(branches) == 2:
        body, short = xs
        message = (f"add needs equal shapes: body gives {fmt_shape(body)}, shortcut gives "
                   f"{fmt_shape(short)}")
        strided = _first_layer(branches[1].body, ("conv", "maxpool", "avgpool"))
        stmt = strided or _first_layer(branches[1].body, None)
        span = stmt.span if stmt is not None else branches[1].span
        label, hint = None, exc.hint
        if len(body) == 3 and len(short) == 3:
            label = f"keeps {short[1]}x{short[2]}" if short[1:] != body[1:] else \
                f"gives {short[0]} channels"
            if short[1:] != body[1:] and body[1] and short[1] % body[1] == 0 and strided is not None:
                stride = short[1] // body[1]
                text = _source_text(graph, strided.span)
                hint = f"give the shortcut the body's stride: `{text} s={stride}`"
            elif short[0] != body[0]:
                hint = f"make the shortcut produce {body[0]} channels"
        return span, label, hint, message
    if combinator.kind == "residual":
        return combinator.kind_span, None, exc.hint, exc.message
    # add, mul, concat: blame the first branch that differs from the first one
    odd = next((i for i, x in enumerate(xs) if i and x != xs[0]), len(xs) - 1)
    span = branches[odd].span if odd < len(branches) else combinator.kind_span
    return span, f"gives {fmt_shape(xs[odd])}", exc.hint, exc.message


def _first_layer(stmts, ops):
    from .syntax import Layer

    for st in stmts:
        if isinstance(st, Layer) and (ops is None or st.op in ops):
            return st
    return None


def _source_text(graph, span: Span) -> str:
    line = graph.graph["source"].split("\n")[span.line - 1]
    end = span.end_column - 1 if span.end_line == span.line else len(line)
    return line[span.column - 1:end].strip()
