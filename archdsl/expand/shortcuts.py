"""The shortcuts pass: `residual< body >` whose body changes the shape gets torchvision's
projection (downsample), a bias-free 1x1 conv at the body's stride and a batch norm, made
from those kinds' own declared defaults. It runs after the walk and before inference, and
needs the shapes that reach each such merge, which it infers as it goes."""

from __future__ import annotations

from .. import layers
from ..graph import Branch, LayerGraph, LayerNode
from ..layers.base import LayerError
from ..layers.merge import combinator
from .arguments import defaults


def insert_shortcuts(graph: LayerGraph) -> None:
    """Insert a projection on every auto shortcut whose body changes the shape. A merge that no
    projection can bridge is left as it is; inference reports it."""
    from ..infer import infer_node

    sites = [n for n, node in graph.layers() if node.merge is not None and node.merge.auto_shortcut]
    if not sites:
        return
    i = 0
    while i < len(graph.order):
        nid = graph.order[i]
        i += 1
        node = graph.layer(nid)
        if node.merge is not None and node.merge.auto_shortcut and not node.invalid:
            how = combinator(node.merge.combinator)
            body, given = (graph.facts[p].shape for p in graph.inputs(nid))
            if body is not None and given is not None and body != given:
                try:
                    made = _project(graph, nid, body, how.projection_stride(body, given))
                except LayerError:
                    continue  # inference says why no projection fits
                for name in made:
                    infer_node(graph, name)
                i += len(made)
        try:
            infer_node(graph, nid)
        except LayerError:
            pass  # inference says what is wrong


def _project(graph: LayerGraph, merge_id: str, body: tuple, stride) -> list[str]:
    """Put the projection's layers between the fork and the merge; return their names."""
    merge = graph.layer(merge_id)
    site = merge.merge
    prefix = graph.groups[site.group].name + ".shortcut."
    if len(body) == 3:
        kind = layers.get("conv")
        args = defaults(kind, out=body[0], kernel=(1, 1), stride=stride, bias=False)
    else:
        kind = layers.get("linear")
        args = defaults(kind, out=body[0], bias=False)
    bn = layers.get("bn")
    branch = graph.new_group(Branch, prefix[:-1], "shortcut", site.keyword_span, site.group,
                             role="shortcut")
    groups = merge.groups + (branch.id,)
    proj = LayerNode(f"{prefix}{kind.name}1", kind, args, site.keyword_span, groups,
                     inserted=True)
    norm = LayerNode(f"{prefix}bn1", bn, defaults(bn), site.keyword_span, groups, inserted=True)
    graph.insert_between(site.fork, merge_id, [proj, norm])
    site.auto_shortcut = False
    site.projection = (proj.name, norm.name)
    return [proj.name, norm.name]
