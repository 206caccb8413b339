"""Layer graph -> a graphviz picture (`archdsl draw`).

One node per layer with its key arguments and parameter count, the input and output as their
own nodes, every edge labelled with the tensor it carries, combinators as a fork and a merge
node (⊕ add, ⊗ mul, a concat node), blocks and repeats as labelled clusters, colours by
layer family with a legend, and the spec line as each node's tooltip. A collapsed block call
is one node. Layers with errors are red and carry the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .diagnostics import Diagnostic
from .draw_collapse import (PAGE_NODES, PAGE_RANKS, collapsed_groups, drawn_size, group_chain,
                            times, unknown_blocks, unknown_expand)
from .draw_render import MARKER, RenderError, drawn_by_archdsl, mark, png_size, render
from .graph import BlockCall, Branch, CombinatorGroup, Iteration, RepeatGroup, span_text
from .layers.base import fmt_shape
from .number_text import params_label

# fill colour and legend name per layer family (hues far apart: pooling orange is no yellow)
FAMILIES = {
    "conv": ("#a4c2f4", "convolution"),
    "pool": ("#f6b26b", "pooling"),
    "norm": ("#b6d7a8", "normalisation"),
    "activation": ("#fff2a8", "activation"),
    "linear": ("#d5a6bd", "linear"),
    "merge": ("#d9d9d9", "merge"),
    "arith": ("#b4a7d6", "arithmetic"),
    "shape": ("#f3f3f3", "reshape / dropout"),
    "block": ("#ffffff", "collapsed block or repeat"),
}
ERROR_FILL, ERROR_LINE = "#f4cccc", "#cc0000"


@dataclass
class DrawOptions:
    collapse: str | list[str] = "auto"  # "auto", "all", "none" or block names
    direction: str = "TB"
    # groups or blocks kept open, "first" or "none"; None: "first" where the page still fits
    expand: list[str] | None = None


@dataclass
class _Cluster:
    group: object
    nodes: list[tuple[str, dict]] = field(default_factory=list)
    children: list[int] = field(default_factory=list)
    # where each node and child cluster starts in the written order (a layer's position)
    starts: dict = field(default_factory=dict)
    # whether a combinator here has a branch in a child cluster or a collapsed block
    branches_in_children: bool = False

    def in_order(self) -> list:
        """The cluster's nodes ((id, attrs)) and child clusters (ids) as they are emitted:
        its nodes as placed, then its children; but in the written order where a combinator
        has branches in child clusters or collapsed blocks, so that graphviz keeps the branches in the order
        written (a pool branch of plain layers beside branches of block calls stays last)."""
        if not self.branches_in_children:
            return self.nodes + self.children
        items = self.nodes + self.children
        return sorted(items, key=lambda it: self.starts[it if isinstance(it, int) else it[0]])

    def title_anchor(self) -> str | None:
        """The node the cluster's title sits beside: its first node (a fork point too, when
        the cluster starts with a combinator), or None when a child cluster comes first."""
        if not self.branches_in_children:
            return next((n for n, attrs in self.nodes if attrs.get("shape") != "point"), None)
        first = self.in_order()[0]
        return None if isinstance(first, int) else first[0]


def _shape_text(shape) -> str:
    return "?" if shape is None else "×".join(str(d) for d in shape)


def to_dot(graph, diagnostics: list[Diagnostic] = (), options: DrawOptions | None = None):
    """Build the graphviz.Digraph of a (possibly partially) checked layer graph."""
    import graphviz

    options = options or DrawOptions()
    dot = graphviz.Digraph(name=graph.name, comment=f"{MARKER}: {graph.file}")
    dot.attr(rankdir=options.direction, fontname="Helvetica", fontsize="11", nodesep="0.25",
             ranksep="0.3", labelloc="t", tooltip=graph.name,
             ordering="out")  # branches left to right in the order written
    dot.attr("node", shape="box", style="rounded,filled", fontname="Helvetica", fontsize="10",
             margin="0.12,0.05", height="0.3")
    dot.attr("edge", fontname="Helvetica", fontsize="8", color="#555555", arrowsize="0.6")
    stand_in, block_members = _stand_ins(graph, collapsed_groups(graph, options.collapse,
                                                                      options.expand))
    clusters, fork_ids, families_used = _place_nodes(
        graph, stand_in, block_members, _errors_by_node(graph, diagnostics))
    _emit_cluster(dot, clusters, None, graph.groups)
    ends = _draw_outputs(dot, graph)
    _draw_edges(dot, graph, stand_in, fork_ids)
    for nid, node_id, shape in ends:
        dot.edge(stand_in[nid], node_id, label=f" {shape}")
    dot.attr(label=_heading(graph, families_used))
    return dot


def _draw_outputs(dot, graph) -> list[tuple[str, str, str]]:
    """An output node per output: `output` for the one of a plain network; each by its name
    where the spec names several (`output logits, aux aux=0.3`), an auxiliary one dashed.
    Returns (graph node, output node, shape) for the edges into them."""
    ends = []
    several = len(graph.outputs) > 1
    for i, out in enumerate(graph.outputs or [None]):
        nid = graph.output if out is None else out.node
        shape = _shape_text(graph.shape(nid))
        node_id = "output" if i == 0 else f"output{i + 1}"
        name = out.name if several else "output"
        aux = out is not None and out.aux is not None
        dot.node(node_id, f"{name}\n{shape}" + (f"\n(training, loss ×{out.aux:g})" if aux else ""),
                 shape="box", style="rounded,dashed" if aux else "rounded,bold",
                 fillcolor="white", tooltip="an output used only in training" if aux
                 else "the network's output")
        ends.append((nid, node_id, shape))
    return ends


def _stand_ins(graph, collapsed: set[int]):
    """Which drawn node stands for each graph node (a collapsed block stands for all of its
    layers), and each collapsed block's layers."""
    stand_in: dict[str, str] = {}
    block_members: dict[int, list[str]] = {gid: [] for gid in collapsed}
    for nid, node in graph.layers():
        hidden_in = next((g for g in node.groups if g in collapsed), None)
        if hidden_in is not None:
            stand_in[nid] = f"block{hidden_in}"
            block_members[hidden_in].append(nid)
        else:
            stand_in[nid] = _node_id(nid)
    return stand_in, block_members


def _place_nodes(graph, stand_in, block_members, errors):
    """Every drawn node (layers, fork points, collapsed blocks) in its cluster: returns the
    clusters, the fork point of each merge, and the families drawn (for the legend)."""
    groups = graph.groups
    source_lines = graph.source.split("\n")
    families_used: set[str] = set()
    clusters: dict[int | None, _Cluster] = {None: _Cluster(None)}

    at: dict[str, int] = {}
    group_starts: dict[int, int] = {}
    for i, (nid, node) in enumerate(graph.layers()):
        at[nid] = i
        for g in node.groups:
            group_starts.setdefault(g, i)

    def cluster_of(node_groups) -> _Cluster:
        """The innermost drawn cluster (a block call or repeat) that holds a node."""
        parent = None
        for g in node_groups:
            if isinstance(groups[g], BlockCall) or times(groups[g]) > 1:
                if g not in clusters:
                    clusters[g] = _Cluster(groups[g])
                    clusters[parent].children.append(g)
                    clusters[parent].starts[g] = group_starts.get(g, 0)
                parent = g
        return clusters[parent]

    statements: list[tuple[_Cluster, str, dict, float]] = []
    fork_ids: dict[str, str] = {}
    forks: list[tuple[_Cluster, int]] = []  # each fork point's cluster and combinator
    for nid, node in graph.layers():
        if stand_in[nid] != _node_id(nid):
            continue
        attrs = _node_attrs(graph, nid, node, errors.get(nid), source_lines)
        families_used.add(node.kind.family if node.kind else "input")
        statements.append((cluster_of(node.groups), _node_id(nid), attrs, at[nid]))
        if node.merge is not None:
            fork = f"fork_{_node_id(nid)}"
            fork_ids[nid] = fork
            statements.append((cluster_of(node.groups[:-1]), fork,
                               {"label": "", "shape": "point", "width": "0.08",
                                "tooltip": f"{node.merge.combinator}< … > splits here"},
                               group_starts[node.merge.group] - 0.5))
            forks.append((statements[-1][0], node.merge.group))
    for gid, members in block_members.items():
        if not members:  # a call that made no layers (`repeat 0`, or errors): nothing to draw
            continue
        attrs = _block_attrs(graph, groups[gid], members, errors, source_lines)
        families_used.add("block")
        statements.append((cluster_of(group_chain(groups, gid)[:-1]), f"block{gid}", attrs,
                           at[members[0]]))
    for cluster, node_id, attrs, start in statements:
        cluster.nodes.append((node_id, attrs))
        cluster.starts[node_id] = start
    folded = {f"block{gid}": gid for gid in block_members}
    for cluster, combinator in forks:  # a branch that starts in a child cluster or block node
        inner = cluster.children + [folded[n] for n, _ in cluster.nodes if n in folded]
        cluster.branches_in_children |= any(combinator in group_chain(groups, g) for g in inner)
    return clusters, fork_ids, families_used


def _draw_edges(dot, graph, stand_in, fork_ids) -> None:
    """Each graph edge between drawn nodes, labelled with the tensor it carries; branches
    leave from their combinator's fork point rather than from the layer before."""
    merges_by_fork: dict[str, list[str]] = {}
    for merge in fork_ids:
        merges_by_fork.setdefault(graph.layer(merge).merge.fork, []).append(merge)

    def inside(nid, merge) -> bool:
        outer = graph.layer(merge).groups
        return nid == merge or graph.layer(nid).groups[:len(outer)] == outer

    def fork_point(u, v):
        """The innermost combinator, forking at u, whose branch v belongs to."""
        candidates = [m for m in merges_by_fork.get(u, ()) if inside(v, m)]
        return max(candidates, key=lambda m: len(graph.layer(m).groups), default=None)

    counts: dict[str, int] = {}
    for value in graph.names:
        counts[value.name] = counts.get(value.name, 0) + 1
    named = {v.node: v.name for v in graph.names if v.uses and counts[v.name] == 1}
    drawn_edges = set()
    for u, v, _ in graph.edges():
        merge = fork_point(u, v)
        a = fork_ids[merge] if merge is not None else stand_in[u]
        b = stand_in[v]
        if a == b or (a, b) in drawn_edges:
            continue
        drawn_edges.add((a, b))
        role = _role(graph, merge, v) if merge is not None else None
        role = role or named.get(u)  # a named value's uses: edges labelled with the name
        attrs = {"label": (f" {role}\n" if role else " ") + _shape_text(graph.shape(u))}
        if role:
            attrs["fontcolor"] = "#1155cc"
        if graph.layer(v).inserted or graph.layer(u).inserted:
            attrs["style"] = "dashed"
        dot.edge(a, b, **attrs)
    for merge, point in fork_ids.items():
        fork = graph.layer(merge).merge.fork
        enclosing = [m for m in merges_by_fork.get(fork, ())
                     if m != merge and inside(merge, m)]
        outer = max(enclosing, key=lambda m: len(graph.layer(m).groups), default=None)
        src = fork_ids[outer] if outer is not None else stand_in[fork]
        dot.edge(src, point, label=f" {_shape_text(graph.shape(fork))}", arrowhead="none")


def _role(graph, merge: str, v: str) -> str | None:
    """The named role (`body`, `shortcut`) of the branch that the edge from `merge`'s fork
    point to `v` starts; None for numbered branches (`branch1`), which say nothing more. An
    edge straight to the merge is the identity shortcut of `residual< body >`."""
    site = graph.layer(merge).merge
    if v == merge:
        return "shortcut (identity)" if site.auto_shortcut else None
    chain = graph.layer(v).groups
    if site.group not in chain or chain[-1] == site.group:
        return None
    branch = graph.groups[chain[chain.index(site.group) + 1]]
    role = branch.role if isinstance(branch, Branch) else None
    return None if role is None or role.startswith("branch") else role


def title(graph, group) -> str:
    """A block call as `stage(c=64, n=2)` (every parameter by name); a collapsed repeat as
    what one iteration does and how often: `conv 64 · 3×3 p1 → relu ×2` (needs the graph)."""
    if isinstance(group, BlockCall):
        values = ", ".join(f"{name}={_value(v)}" for name, v in group.args.items())
        return f"{group.block}({values})" if values else group.block
    if graph is None:
        return group.label
    if isinstance(group, RepeatGroup):
        iterations = group.children
        ends = iterations[:1] + iterations[-1:] if len(iterations) > 1 else iterations
        text = _ranged([_contents(graph, c) for c in ends]) if iterations else "nothing"
        return f"({text}) ×{times(group)}" if " → " in text else f"{text} ×{times(group)}"
    return _contents(graph, group.id)


def _ranged(texts: list[str]) -> str:
    """A repeat's first and last iterations in one label: each number that differs written
    first…last (`cnblock(c=96, i=0…2)`); the first's text when more than numbers differ."""
    pieces = [re.split(r"(\d+(?:\.\d+)?(?:e-?\d+)?)", t) for t in texts]
    first = pieces[0]
    if any(len(p) != len(first) or p[0::2] != first[0::2] for p in pieces):
        return texts[0]
    return "".join(part if k % 2 == 0 or all(p[k] == part for p in pieces)
                   else f"{part}…{pieces[-1][k]}" for k, part in enumerate(first))


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        return "x".join(str(d) for d in v)
    return str(v)


def _contents(graph, gid: int) -> str:
    """What a group holds, in order: its layers (`conv 64 · 3×3 p1`), its block calls by
    title, and a combinator's branches between `<` `|` `>`. Long lists end in `…`."""
    groups = graph.groups
    group = groups[gid]
    if isinstance(group, CombinatorGroup):  # its children are its branches
        inner = " | ".join(_contents(graph, b) for b in group.children)
        return f"{group.combinator}< {inner} >"
    parts: list[str] = []
    seen: set[int] = set()
    for _, node in graph.layers():
        if gid not in node.groups or node.kind is None or node.inserted:
            continue
        inner = node.groups[node.groups.index(gid) + 1:]
        if inner and not isinstance(groups[inner[0]], Iteration):
            if inner[0] not in seen:
                seen.add(inner[0])
                parts.append(title(graph, groups[inner[0]]))
        elif node.merge is None:  # an invalid node's arguments are incomplete: its name only
            parts.append(node.op if node.invalid else node.kind.describe(node.args).split("\n")[0])
    return " → ".join(parts[:3]) + (" → …" if len(parts) > 3 else "") if parts else "identity"


def _node_id(nid: str) -> str:
    return "n_" + nid.replace(".", "__")


def _title(graph) -> str:
    t = graph.totals
    return (f"{graph.name}  ·  input {_shape_text(graph.input_shape)}  ·  "
            f"{t.params:,} params  ·  {t.macs:,} MACs")


def _tooltip(span, source_lines) -> str:
    """`file:line:col: the statement`, as written in the spec."""
    return f"{span.file}:{span.line}:{span.column}: {span_text(source_lines, span)}"


def _node_attrs(graph, nid, node, error: Diagnostic | None, source_lines) -> dict:
    facts = graph.facts[nid]
    if node.kind is None:
        return {"label": f"input\n{_shape_text(facts.shape)}", "style": "rounded,bold",
                "fillcolor": "white", "tooltip": _tooltip(node.span, source_lines)}
    kind = node.kind
    if node.merge is not None:
        attrs = {"label": kind.symbol, "shape": "circle" if kind.round else "box",
                 "fillcolor": FAMILIES["merge"][0], "width": "0.3", "fixedsize": "false",
                 "fontsize": "14" if kind.round else "10"}
    else:
        # a layer whose arguments did not resolve has none to describe: its name says enough
        label = node.op if node.invalid else kind.describe(node.args)
        if facts.params:
            label += f"\n{params_label(facts.params)}"
        if node.inserted:
            label += "\n(inserted)"
        attrs = {"label": label, "fillcolor": FAMILIES.get(kind.family, ("#ffffff",))[0]}
        if node.inserted:
            attrs["style"] = "rounded,filled,dashed"
    attrs["tooltip"] = _tooltip(node.span, source_lines)
    if error is not None:
        attrs.update(fillcolor=ERROR_FILL, color=ERROR_LINE, fontcolor=ERROR_LINE, penwidth="2",
                     label=attrs["label"] + f"\n{_wrap(error.message)}")
        attrs["tooltip"] += f"\n{error.code}: {error.message}"
    elif facts.shape is None:
        attrs.update(style="rounded,dashed", fillcolor="white", fontcolor="#888888",
                     label=attrs["label"] + "\n(not checked)")
    return attrs


def _block_attrs(graph, group, members, errors, source_lines) -> dict:
    preds = [p for p in graph.inputs(members[0]) if p not in members]
    shape_in = graph.shape(preds[0]) if preds else None
    params = sum(graph.facts[m].params for m in members)
    label = (f"{title(graph, group)}\n{_shape_text(shape_in)} → "
             f"{_shape_text(graph.shape(members[-1]))}\n{params_label(params)}")
    attrs = {"label": label, "fillcolor": FAMILIES["block"][0], "style": "rounded,filled,bold",
             "tooltip": _tooltip(group.span, source_lines) + f"\n{len(members)} layers"}
    bad = next((errors[m] for m in members if m in errors), None)
    if bad is not None:
        attrs.update(fillcolor=ERROR_FILL, color=ERROR_LINE, fontcolor=ERROR_LINE,
                     label=label + f"\n{_wrap(bad.message)}")
    return attrs


def _emit_cluster(dot, clusters, key, groups) -> None:
    for item in clusters[key].in_order():
        if not isinstance(item, int):
            dot.node(item[0], **item[1])
            continue
        group = groups[item]
        with dot.subgraph(name=f"cluster_{item}") as sub:
            repeat = isinstance(group, RepeatGroup)
            label = f"repeat ×{times(group)}" if repeat else title(None, group)
            sub.attr(style="rounded,dashed" if repeat else "rounded",
                     color="#999999", fontsize="10", fontcolor="#444444", labeljust="l",
                     tooltip=f"{group.span.file}:{group.span.line}: {group.label}")
            _emit_cluster(sub, clusters, item, groups)
            _cluster_title(sub, item, label, clusters[item].title_anchor())


def _cluster_title(sub, gid: int, label: str, first: str | None) -> None:
    """A cluster's title as a text node beside its first node, on the same rank: edges
    entering the cluster run to that node and never through the title. A cluster that
    starts with a cluster inside gets an ordinary cluster label."""
    if first is None:
        sub.attr(label=label)
        return
    sub.node(f"title_{gid}", label, shape="plaintext", style="", fontsize="10",
             fontcolor="#444444", tooltip=label, margin="0.02,0.02")
    with sub.subgraph() as row:
        row.attr(rank="same")
        row.edge(f"title_{gid}", first, style="invis")


def _heading(graph, families_used: set[str]) -> str:
    """The picture's title line, and under it the legend: one row of colour swatches, the
    families in the picture, evenly spaced."""
    from html import escape

    shown = [f for f in FAMILIES if f in families_used]
    cells = "".join(f'<td bgcolor="{FAMILIES[f][0]}" border="{2 if f == "block" else 1}" '
                    f'style="rounded"><font point-size="8">{FAMILIES[f][1]}</font></td>'
                    for f in shown)
    legend = f'<tr><td><table border="0" cellborder="1" cellspacing="4" cellpadding="3">' \
             f'<tr>{cells}</tr></table></td></tr>' if cells else ""
    return f'<<table border="0" cellpadding="2"><tr><td>{escape(_title(graph))}</td></tr>' \
           f'{legend}</table>>'


def _wrap(text: str, width: int = 40) -> str:
    words, lines, line = text.split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    return "\n".join(lines)


def _errors_by_node(graph, diagnostics) -> dict[str, Diagnostic]:
    """Attach each error to the node its span points into, as the CLI names it: the
    innermost statement holding the span's start (the shortcut's conv, not the merge that
    found the mismatch); among instances of one statement (two calls of a block), the first
    that failed. A node keeps the first error that points at it."""
    found: dict[str, Diagnostic] = {}
    errors = [d for d in diagnostics if d.is_error and d.span is not None]
    if not errors:
        return found
    nodes = list(graph.layers())
    for d in errors:
        at = (d.span.line, d.span.column)
        holding = [(i, nid, node) for i, (nid, node) in enumerate(nodes)
                   if node.span.file == d.span.file and _holds(node.span, at)]
        if not holding:
            continue
        _, nid, _ = min(holding, key=lambda h: (
            (-h[2].span.line, -h[2].span.column), (h[2].span.end_line, h[2].span.end_column),
            not (graph.shape(h[1]) is None or h[2].invalid), h[0]))
        found.setdefault(nid, d)
    return found


def _holds(span, at: tuple[int, int]) -> bool:
    """Whether position `at` (line, column) lies in `span` (its first column at least)."""
    end = (span.end_line, max(span.end_column, span.column + 1) if span.end_line == span.line
           else span.end_column)
    return (span.line, span.column) <= at < end


__all__ = ["to_dot", "render", "DrawOptions", "collapsed_groups", "fmt_shape", "mark",
           "drawn_by_archdsl", "unknown_blocks", "unknown_expand", "title", "drawn_size",
           "RenderError", "PAGE_NODES", "PAGE_RANKS", "times", "group_chain", "png_size"]
