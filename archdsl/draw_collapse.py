"""Which groups a drawing shows as single nodes (`archdsl draw --collapse` and `--expand`).

By default the deepest repeats and block calls are collapsed first, then combinators, until
the picture fits a page. `--expand NAME` keeps a group open whatever the collapse says: one
block call or repeat by the dotted name `archdsl check` gives its layers (`stage2`,
`stage2.repeat1`, `inception1`), every call of a block by the block's name, or `first`, the
first call of each block called more than once. The drawing itself is archdsl/draw.py.
"""

from __future__ import annotations

from .graph import BlockCall, CombinatorGroup, RepeatGroup

# What a page holds: by default the deepest blocks and repeats are collapsed until the drawing
# has at most PAGE_NODES nodes and PAGE_RANKS nodes along its longest path. One instance of
# each repeated block is then drawn open where the drawing still has at most PAGE_NODES nodes
# and OPEN_RANKS ranks (the most a page holds; PAGE_RANKS leaves room for that instance).
PAGE_NODES, PAGE_RANKS, OPEN_RANKS = 60, 22, 30
# `--expand first`: the first call of each block called more than once; `--expand none`:
# nothing opened (the default opens `first` where the drawing still fits a page)
FIRST, NOTHING = "first", "none"


def times(group) -> int:
    """How many times a repeat runs (0 for any other group)."""
    return group.count if isinstance(group, RepeatGroup) else 0


def block_calls(graph):
    return [g for g in graph.groups.values() if isinstance(g, BlockCall)]


def _depth(groups, g) -> int:
    d = 0
    while g.parent is not None:
        g = groups[g.parent]
        d += 1
    return d


def _ancestors(groups, g):
    while g.parent is not None:
        g = groups[g.parent]
        yield g.id


def _outermost(ids: set[int], groups) -> set[int]:
    return {i for i in ids if not any(a in ids for a in _ancestors(groups, groups[i]))}


def group_chain(groups, gid):
    """The ids of a group and the groups around it, outermost first."""
    chain = []
    g = groups[gid]
    while True:
        chain.append(g.id)
        if g.parent is None:
            break
        g = groups[g.parent]
    return list(reversed(chain))


def collapsed_groups(graph, collapse, expand=None) -> set[int]:
    """The block calls (and, by default, repeats and combinators) to draw as single nodes:
    `collapse` is "auto", "all", "none" or block names; `expand` names what stays open. By
    default (`expand` None, `collapse` auto) one instance of each repeated block is drawn
    open (`first`) where the picture still fits a page, and none where it would not."""
    groups = graph.groups
    if collapse == "none":
        return set()
    if expand is None:
        if collapse == "auto":
            opened = collapsed_groups(graph, collapse, [FIRST])
            nodes, ranks = drawn_size(graph, opened)
            if nodes <= PAGE_NODES and ranks <= OPEN_RANKS:
                return opened
        expand = []
    kept = opened_groups(graph, expand)
    if collapse == "all":
        return _outermost({g.id for g in block_calls(graph)} - kept, groups)
    if collapse == "auto":
        chosen: set[int] = set()
        for ids in _foldable(graph):
            if _fits_a_page(graph, chosen):
                break
            chosen = _outermost(chosen | (ids - kept), groups)
        return chosen
    wanted = set(collapse)
    return _outermost({g.id for g in block_calls(graph) if g.block in wanted} - kept, groups)


def opened_groups(graph, expand) -> set[int]:
    """The groups `--expand NAME…` keeps open: a group named by its dotted name, with the
    groups around it; every call of a block named by the block's name (where it is drawn: a
    call inside a folded repeat stays inside it); `first`: the first call of each block
    called more than once, with the groups around it up to a repeat (a repeat may still
    fold, the call inside it). An opened group's own combinators
    stay open too (a block whose body is one `residual< … >` shows the residual); the block
    calls and repeats inside it follow the collapse."""
    groups = graph.groups
    by_name = {g.name: g for g in groups.values()}
    calls = block_calls(graph)
    kept: set[int] = set()
    for name in expand or ():
        if name == NOTHING:
            continue
        if name == FIRST:
            for block in dict.fromkeys(g.block for g in calls):
                mine = [g for g in calls if g.block == block]
                if len(mine) > 1:  # the groups around it up to a repeat, which may fold
                    around = list(_ancestors(groups, mine[0]))
                    stop = next((i for i, a in enumerate(around)
                                 if isinstance(groups[a], RepeatGroup)), len(around))
                    kept |= _with_inside(groups, mine[0]) | set(around[:stop])
        elif name in by_name:
            g = by_name[name]
            kept |= _with_inside(groups, g) | set(_ancestors(groups, g))
        else:
            for g in calls:
                if g.block == name:
                    kept |= _with_inside(groups, g)
    return kept


def _with_inside(groups, group) -> set[int]:
    """A group and what lies inside it down to the next block call or repeat: its
    combinators, their branches and a repeat's iterations."""
    found, todo = {group.id}, list(group.children)
    while todo:
        g = groups[todo.pop()]
        if not isinstance(g, (BlockCall, RepeatGroup)):
            found.add(g.id)
            todo += g.children
    return found


def _foldable(graph) -> list[set[int]]:
    """What the default drawing may collapse, deepest first: every call of one block, or
    every repeat (of two or more iterations) at one depth; then, when that is not enough,
    the combinators (`residual< … >`), deepest first."""
    groups = graph.groups
    units: dict[tuple, tuple[int, set[int]]] = {}
    for g in groups.values():
        depth = _depth(groups, g)
        if isinstance(g, BlockCall):
            key = ("block", g.block)
        elif times(g) >= 2:
            key = ("repeat", depth)
        elif isinstance(g, CombinatorGroup):
            key = ("combinator", depth)
        else:
            continue
        deepest, ids = units.get(key, (0, set()))
        units[key] = (max(deepest, depth), ids | {g.id})
    order = sorted(units, key=lambda k: (k[0] == "combinator", -units[k][0]))
    return [units[k][1] for k in order]


def drawn_size(graph, collapsed: set[int]) -> tuple[int, int]:
    """(nodes, ranks) of the picture with `collapsed` (outermost, so disjoint) groups drawn as
    one node each: every drawn node (the output included), and the nodes along the longest
    path. One pass over the layers, whatever the number of groups."""
    stand: dict[str, object] = {}
    rank: dict[object, int] = {}
    forks = 0
    for nid, node in graph.layers():
        hidden = next((g for g in node.groups if g in collapsed), None)
        s = nid if hidden is None else hidden
        stand[nid] = s
        here = max((rank[stand[u]] + (stand[u] != s) for u in graph.inputs(nid)), default=0)
        fork = hidden is None and node.merge is not None
        rank[s] = max(rank.get(s, 0), here + fork)  # the fork point is a rank of its own
        forks += fork
    return len(rank) + forks + 1, max(rank.values(), default=0) + 2


def _fits_a_page(graph, collapsed: set[int]) -> bool:
    nodes, ranks = drawn_size(graph, collapsed)
    return nodes <= PAGE_NODES and ranks <= PAGE_RANKS


def unknown_blocks(names: list[str], graph) -> str | None:
    """Why `--collapse NAME…` names a block that `graph` never calls (with the closest
    name it does call), or None when every name is called."""
    from .diagnostics import did_you_mean, shorten

    called = sorted({g.block for g in block_calls(graph)})
    for name in names:
        if name not in called:
            known = f"it calls {', '.join(called)}" if called else "it calls no blocks"
            hint = did_you_mean(name, called)
            shown = shorten(name)  # a 100 KB name is not echoed whole
            return (f"--collapse {shown}: {graph.file} calls no block named `{shown}`; "
                    + (hint or known))
    return None


def unknown_expand(names: list[str], graph) -> str | None:
    """Why `--expand NAME…` names nothing in `graph` (with the closest block or group name
    there is), or None when every name is `first`, a called block or a group."""
    from .diagnostics import did_you_mean, shorten

    blocks = {g.block for g in block_calls(graph)}
    known = blocks | {g.name for g in graph.groups.values()}
    for name in names:
        if name not in (FIRST, NOTHING) and name not in known:
            shown = shorten(name)
            hint = did_you_mean(name, known) or (
                f"it calls {', '.join(sorted(blocks))}, and its groups are named as "
                "`archdsl check --format json` names their layers (`stage2.repeat1`)"
                if blocks else "it has no blocks or repeats to open")
            return f"--expand {shown}: {graph.file} has no block or group named `{shown}`; " \
                   + hint
    return None
