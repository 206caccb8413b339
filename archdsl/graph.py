"""The typed layer graph: what expansion makes and every later stage reads.

networkx holds the structure (edges, with the branch index of a merge's input as `port`);
each node's payload is a LayerNode (kind, resolved arguments, span, its groups), and what
the checker learns about it is a Facts record kept beside it (`graph.facts[name]`). Blocks,
repeats and combinators form a tree of Groups (BlockCall, RepeatGroup and its Iterations,
CombinatorGroup and its Branches) that drawing, the torch backend and codegen walk. No
syntax-tree object survives expansion: what later stages need of the source (a combinator's
branches, the shortcut's first strided layer) is copied into plain records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from .diagnostics import Span
from .layers.base import Args, LayerKind, numel

BYTES_PER_VALUE = 4  # float32


@dataclass(eq=False)
class Group:
    """A node of the group tree: a part of the spec that holds layers, where it was written
    and the groups directly inside it. Its class says what it is: a BlockCall, a RepeatGroup
    (with one Iteration a time round), or a CombinatorGroup (with one Branch a branch); each
    carries only its own fields. Test which with isinstance."""

    id: int
    name: str  # dotted path, as used for node names and module paths
    label: str  # what the user wrote, e.g. `basic 128 s=2`
    span: Span
    parent: int | None
    children: list[int] = field(default_factory=list, init=False)

    # The called block's name on a BlockCall, None on every other group (so that `g.block ==
    # name` picks a block's calls out of all groups).
    block: ClassVar[str | None] = None


@dataclass(eq=False)
class BlockCall(Group):
    """A call of a `block`: the block's name and its parameters' values at this call."""

    block: str = field()  # type: ignore[assignment]
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class RepeatGroup(Group):
    """A `repeat`: how many times it runs; its children are its Iterations."""

    count: int


@dataclass(eq=False)
class Iteration(Group):
    """One time round a repeat (labelled `2 of 3`)."""


@dataclass(eq=False)
class CombinatorGroup(Group):
    """`residual< … >`, `concat< … | … >` or any merge kind registered since: the
    combinator's name; its children are its Branches."""

    combinator: str


@dataclass(eq=False)
class Branch(Group):
    """One branch of a combinator, by its role: body, shortcut, branch1, …"""

    role: str


G = TypeVar("G", bound=Group)


@dataclass(eq=False)
class Written:
    """A layer statement as written (its kind or block, and where), kept for pointing at it."""

    op: str
    span: Span


@dataclass(eq=False)
class MergeSite:
    """What a merge node knows of the combinator it closes."""

    combinator: str  # residual, concat, add, mul, …
    group: int  # the combinator's group
    keyword_span: Span  # `residual` in `residual<`
    fork: str  # the node whose output every branch reads
    branch_spans: list[Span]
    branch_layers: list[list[Written]]  # each branch's own layer statements, in order
    auto_shortcut: bool = False  # `residual< body >`: the shortcut is made by the shortcuts pass
    projection: tuple[str, ...] = ()  # the layers the shortcuts pass inserted


@dataclass(eq=False)
class LayerNode:
    """One layer instance: the input, a layer, or the merge that closes a combinator."""

    name: str
    kind: LayerKind | None  # None for the input
    args: Args
    span: Span
    groups: tuple[int, ...] = ()
    arg_spans: dict[str, Span] = field(default_factory=dict)
    inserted: bool = False  # made by archdsl (a projection shortcut, an empty branch)
    invalid: bool = False  # its arguments did not resolve: nothing to check
    merge: MergeSite | None = None
    named_args: dict[str, str] = field(default_factory=dict)  # argument -> the `arch`
    #                                       parameter written as its whole value (top level)

    @property
    def op(self) -> str:
        return "input" if self.kind is None else self.kind.name


@dataclass(eq=False)
class NamedValue:
    """A value named with `-> name`: the node that makes it, where it is named, where used.
    A block or a repeat names once per call or time round, each its own NamedValue."""

    name: str
    node: str
    span: Span
    uses: list[Span] = field(default_factory=list)
    given: bool = False  # a block's input, named in its header


@dataclass(eq=False)
class GraphOutput:
    """One output of the network: its name, the node, and, for an output used only in
    training (`output logits, aux aux=0.3`), the weight of its loss."""

    name: str
    node: str
    aux: float | None = None
    span: Span | None = None


@dataclass(eq=False)
class Facts:
    """What the checker found for one node; shape None where it could not be checked."""

    shape: tuple | None = None
    params: int = 0
    buffers: int = 0
    macs: int = 0
    rf: tuple | None = None  # ((size_h, size_w), (jump_h, jump_w)), by the recurrence
    memory: int = 0  # bytes of one sample's output (float32)
    # (H, W): the input's size plus the padding on the paths that reach this node, in input
    # pixels: no receptive field is larger (infer.py)
    bound: tuple | None = None

    @property
    def field(self) -> tuple | None:
        """The receptive field as shown: the recurrence's size, but never more than `bound`
        (after a global gate or pooling, fields cover the whole padded input; the recurrence,
        which assumes shifted windows of one size, would go on growing)."""
        return capped(self.rf, self.bound)

    def set_output(self, shape: tuple, rf) -> None:
        self.shape, self.rf = shape, rf
        self.memory = numel(shape) * BYTES_PER_VALUE


def capped(rf, bound) -> tuple | None:
    """A receptive field (size, jump) with its size never over `bound`."""
    if rf is None or bound is None:
        return rf
    return (tuple(min(s, b) for s, b in zip(rf[0], bound)), rf[1])


@dataclass
class Totals:
    params: int = 0
    buffers: int = 0
    macs: int = 0
    param_bytes: int = 0
    activation_bytes: int = 0


class LayerGraph:
    """The layers of one spec, in topological order, with their groups and facts."""

    def __init__(self, name: str, file: str, source: str):
        import networkx as nx

        self.dag = nx.DiGraph()
        self.name, self.file, self.source = name, file, source
        self.order: list[str] = []
        self.groups: dict[int, Group] = {}
        self.facts: dict[str, Facts] = {}
        self.params: dict[str, Any] = {}  # the `arch` parameters' values
        # `arch` parameters read anywhere but as a whole argument of a top-level layer
        self.shaping_params: set[str] = set()
        self.input_shape: tuple | None = None
        self.output: str | None = None  # the main output's node (outputs[0])
        self.outputs: list[GraphOutput] = []
        self.names: list[NamedValue] = []
        # whether values go elsewhere than the nesting of blocks and combinators says (a name
        # used, several values, several outputs): the backend then runs the graph itself
        self.dataflow = False
        self.init: tuple[str, tuple] = ("pytorch", ())
        self.totals = Totals()

    # -- building -----------------------------------------------------------------------
    def add(self, node: LayerNode, at: int | None = None) -> str:
        self.dag.add_node(node.name, layer=node)
        if at is None:
            self.order.append(node.name)
        else:
            self.order.insert(at, node.name)
        self.facts[node.name] = Facts()
        return node.name

    def connect(self, src: str, dst: str, port: int = 0) -> None:
        self.dag.add_edge(src, dst, port=port)

    def insert_between(self, source: str, target: str, nodes: list[LayerNode]) -> None:
        """Put `nodes`, a chain, on the edge from `source` to `target` (keeping the edge's
        port at `target`), just before `target` in the order."""
        port = self.dag.edges[source, target].get("port", 0)
        self.dag.remove_edge(source, target)
        at = self.order.index(target)
        for i, node in enumerate(nodes):
            self.add(node, at + i)
            self.connect(source, node.name)
            source = node.name
        self.connect(source, target, port)

    def new_group(self, cls: type[G], name: str, label: str, span: Span, parent: int | None,
                  **fields) -> G:
        """A group of class `cls` (BlockCall, RepeatGroup, …; `fields` are its own), added
        to the tree under `parent`."""
        group = cls(len(self.groups), name, label, span, parent, **fields)
        self.groups[group.id] = group
        if parent is not None:
            self.groups[parent].children.append(group.id)
        return group

    # -- reading ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.order)

    def __contains__(self, name: str) -> bool:
        return name in self.dag

    def layer(self, name: str) -> LayerNode:
        return self.dag.nodes[name]["layer"]

    def layers(self):
        """(name, LayerNode) in topological order, the input first."""
        for name in self.order:
            yield name, self.dag.nodes[name]["layer"]

    def inputs(self, name: str) -> list[str]:
        """The nodes feeding `name`, in branch order."""
        preds = self.dag.pred[name]
        return sorted(preds, key=lambda p: preds[p].get("port", 0))

    def successors(self, name: str) -> list[str]:
        return list(self.dag.succ[name])

    def edges(self):
        """(source, destination, port) for every edge."""
        for u, v, data in self.dag.edges(data=True):
            yield u, v, data.get("port", 0)

    def shape(self, name: str) -> tuple | None:
        """The tensor `name` outputs (and every edge leaving it carries)."""
        return self.facts[name].shape

    def block_of(self, node: LayerNode) -> str | None:
        """The dotted name of the innermost block call holding a node."""
        for gid in reversed(node.groups):
            if isinstance(self.groups[gid], BlockCall):
                return self.groups[gid].name
        return None

    def contents(self) -> dict[int | None, list[tuple[str, str | int]]]:
        """What each group (None: the network) holds directly, in the spec's order: (its path
        below the group, a layer's node name or a group's id). Module paths and generated
        classes follow this tree; the input and the merges (their combinator's own work)
        are left out, and so is a group that made no layer."""
        members: dict[int | None, list] = {}
        started: set[int] = set()
        for i, (nid, node) in enumerate(self.layers()):
            if node.kind is None or node.kind.merges:  # merges are their group's (or none's)
                continue
            members.setdefault(node.groups[-1] if node.groups else None, []).append((i, nid))
            for outer, gid in zip((None,) + node.groups, node.groups):
                if gid not in started:  # a group starts where its first layer is
                    started.add(gid)
                    members.setdefault(outer, []).append((i, gid))
        out: dict[int | None, list[tuple[str, str | int]]] = {}
        for gid, entries in members.items():
            cut = len(self.groups[gid].name) + 1 if gid is not None else 0
            out[gid] = [((self.groups[item].name if isinstance(item, int) else item)[cut:], item)
                        for _, item in sorted(entries, key=lambda entry: entry[0])]
        return out

    def may_work_in_place(self, name: str) -> bool:
        """Whether an activation reading `name` may overwrite it: nothing else reads it, and
        its kind makes a fresh tensor that its own backward pass does not need."""
        kind = self.layer(name).kind
        return kind is not None and kind.fresh_output and len(self.dag.succ[name]) == 1

    def source_text(self, span: Span) -> str:
        """The text a span covers on its first line, stripped."""
        return span_text(self.source.split("\n"), span)


def span_text(lines: list[str], span: Span) -> str:
    """What `span` covers on its first line of `lines`, stripped."""
    line = lines[span.line - 1] if 0 < span.line <= len(lines) else ""
    end = span.end_column - 1 if span.end_line == span.line else len(line)
    return line[span.column - 1:end].strip()
