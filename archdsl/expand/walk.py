"""The graph walk: statements in scope -> nodes, edges and groups of a LayerGraph.

One node per layer instance, in topological order. Edges carry tensors; at a merge the
edge's `port` is the branch index. Blocks, repeats and combinators are recorded as Groups,
with the combinator's branches (and their first layers, for pointing at a culprit) copied
into the merge node's MergeSite, so that nothing of the syntax tree is kept.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .. import layers
from ..diagnostics import Diagnostic, DiagnosticError, Span, called_here, did_you_mean, error
from ..graph import (BlockCall, Branch, CombinatorGroup, Iteration, LayerGraph, LayerNode,
                     MergeSite, RepeatGroup, Written)
from ..layers.base import Args
from ..layers.habits import kind_hint
from ..layers.merge import MergeKind, combinator, combinator_names
from ..layers.types import show
from ..layers.types import FLOAT, INT
from ..number_text import count_text
from ..syntax import Arith, BlockDef, Combinator, Keyword, Layer, Name, Repeat, Spec, Values
from .arith import Lowering
from .. import prelude
from .prelude_calls import at_call_site
from .arguments import resolve
from .binder import bind as bind_call
from .budget import afford, spend
from .expressions import evaluate
from .named import Flow, Names, all_names, bind, count_of, flow_text, unknown, use

# Beyond the deepest published networks (ResNet-152 has 516 layers, DenseNet-264 about 1,000,
# the CIFAR ResNet-1202 about 3,600); stops runaway repeats, and keeps checking and drawing
# the largest spec it allows under a second on a laptop-class CPU.
MAX_NODES = 5_000
# Block calls, repeats and combinators nested inside each other (a combinator or a repeat
# counts twice: itself and its branch or iteration). PyTorch runs nested modules by Python
# recursion, and a forward pass through much deeper nesting would hit its recursion limit.
MAX_DEPTH = 100
_FATAL = ("E-TOO-BIG", "E-NESTING")  # nothing sensible is left to check after these


@dataclass
class Scope:
    values: dict[str, Any]
    prefix: str
    groups: tuple[int, ...]
    counts: dict[str, int] = field(default_factory=dict)
    depth: int = 0
    indices: dict[str, Span] = field(default_factory=dict)  # repeat index -> where it is named
    taken: frozenset[str] = frozenset()  # names a numbered one may not be: the spec's blocks
    names: Names = field(default_factory=Names)  # the values named (`-> a`) that it sees

    def child_name(self, base: str) -> str:
        """`conv1`, `relu6_1`; `b_1` for the first call of block `b` where a block is named
        `b1` (a name stands for one thing: `--freeze b1` and `explain b1` mean block b1)."""
        self.counts[base] = self.counts.get(base, 0) + 1
        sep = "_" if base[-1].isdigit() else ""  # relu6_1, not relu61
        while f"{base}{sep}{self.counts[base]}" in self.taken:
            sep += "_"
        return f"{self.prefix}{base}{sep}{self.counts[base]}"


class Walk:
    """Emits the statements of one spec into `graph`."""

    def __init__(self, spec: Spec, graph: LayerGraph, diagnostics: list[Diagnostic]):
        self.spec, self.graph, self.diagnostics = spec, graph, diagnostics
        self.call_stack: list[str] = []
        self.known = all_names(spec)  # every value name in the file, where first named

    # ------------------------------------------------------------------------- helpers
    def add(self, node: LayerNode) -> str:
        spend(node.span)
        if len(self.graph.order) > MAX_NODES:  # the input node and MAX_NODES layers
            raise DiagnosticError(error(
                "E-TOO-BIG", f"the network expands to more than {MAX_NODES:,} layers", node.span,
                hint="check the `repeat` counts"))
        return self.graph.add(node)

    def group(self, cls, name, label, span, scope: Scope, **fields) -> int:
        spend(span)
        parent = scope.groups[-1] if scope.groups else None
        return self.graph.new_group(cls, name, label, span, parent, **fields).id

    def child(self, scope: Scope, name: str, gid: int, values=None, indices=None,
              names: Names | None = None) -> Scope:
        """The scope inside a group: a block call's `values` (and no repeat index), a repeat
        iteration's `values` and `indices`, or else the enclosing scope's; `names`, a body's
        own named values (else the enclosing scope's)."""
        if scope.depth >= MAX_DEPTH:
            raise DiagnosticError(error("E-NESTING", f"blocks, repeats and combinators nest more "
                                        f"than {MAX_DEPTH} levels deep",
                                        self.graph.groups[gid].span,
                                        hint="flatten the nesting, or define a `block` for a part "
                                             "that repeats"))
        return Scope(values=scope.values if values is None else values, prefix=f"{name}.",
                     groups=scope.groups + (gid,), depth=scope.depth + 1, taken=scope.taken,
                     indices=(scope.indices if values is None else indices or {}),
                     names=scope.names if names is None else names)

    # ------------------------------------------------------------------------- statements
    def emit(self, stmts, src: Flow, scope: Scope) -> Flow:
        """Emit `stmts` reading `src`; return the node (or nodes) whose output they leave."""
        for st in stmts:
            before = src
            try:
                if isinstance(st, Layer):
                    src = self.layer(st, src, scope)
                elif isinstance(st, Repeat):
                    src = self.repeat(st, src, scope)
                elif isinstance(st, Combinator):
                    src = self.combinator(st, src, scope)
                elif isinstance(st, Arith):
                    src = Lowering(self, st, src, scope).emit()
                elif isinstance(st, Values) and st.values:  # (`-> a` alone names what flows)
                    src = tuple(use(scope.names, n, self.graph, self.known) for n in st.values)
                if st.names:
                    bind(scope.names, st.names, src, self.graph, lambda n: self.taken(n, scope))
            except DiagnosticError as exc:
                if exc.diagnostic.code in _FATAL:
                    raise
                self.diagnostics.append(exc.diagnostic)
                if st.names and count_of(before) == len(st.names) and not any(
                        scope.names.find(n.name) for n in st.names):  # no follow-on errors
                    bind(scope.names, st.names, before, self.graph, lambda n: None)
        return src

    def taken(self, name: str, scope: Scope) -> str | None:
        """What a value named `name` would hide, or None."""
        if name in scope.indices:
            return "a repeat's index"
        if name in scope.values:
            return "a parameter"
        if name in self.spec.blocks:
            return "a block"
        if name in self.spec.functions:
            return "a function"
        return "a layer kind" if layers.get(name) is not None else None

    def layer(self, st: Layer, src: Flow, scope: Scope) -> Flow:
        if scope.names.find(st.op) is not None:  # a named value: it becomes the running value
            if st.args:
                raise DiagnosticError(error(
                    "E-ARG-COUNT", f"`{st.op}` is a named value: it takes no arguments",
                    st.args[0].span, hint=f"write `{st.op}` alone to go on from it"))
            return use(scope.names, Name(st.op, st.op_span), self.graph, self.known)
        st = self.named_kind(st, scope.values)
        if st.op in self.spec.blocks:
            return self.call(st, self.spec.blocks[st.op], src, scope)
        kind = layers.get(st.op)
        if isinstance(kind, MergeKind) and isinstance(src, tuple):
            return self.merge(st, kind, src, scope)
        block = prelude.block(st.op) if kind is None else None
        if block is not None:
            return at_call_site(self, st, lambda: self.call(st, block, src, scope))
        if kind is None or isinstance(kind, MergeKind):
            raise DiagnosticError(self.unknown_layer(st, scope))
        if isinstance(src, tuple):
            raise DiagnosticError(error(
                "E-ARITY", f"`{st.op}` reads one value, but {flow_text(src, self.graph)}",
                st.op_span, hint="go on from one of them (`a; …`), or merge them first "
                                 "(`a, b; add` or `a, b; concat`)"))
        args, spans, ok = resolve(kind, st, scope.values, self.diagnostics, self.spec.blocks,
                                  self.spec.source)
        node = LayerNode(scope.child_name(st.op), kind, args, st.span, scope.groups, spans,
                         invalid=not ok)
        if not scope.groups:
            node.named_args = self.named_args(kind, st, spans)
        name = self.add(node)
        self.graph.connect(src, name)
        return name

    def unknown_layer(self, st: Layer, scope: Scope):
        if combinator(st.op) is not None:
            return error("E-COMBINATOR", f"`{st.op}` joins branches and is written with angle "
                         "brackets", st.op_span,
                         hint=f"write `{st.op}< branch | branch >`, or merge named values: "
                              f"`a, b; {st.op}`")
        if st.op in self.known and not st.args:
            return unknown(st.op, st.op_span, scope.names, self.known)
        known = [k for k, v in layers.REGISTRY.items() if not isinstance(v, MergeKind)]
        hint = kind_hint(st.op) or did_you_mean(st.op, known + list(self.spec.blocks) +
                                                scope.names.visible() + prelude.names())
        return error("E-UNKNOWN-LAYER", f"unknown layer `{st.op}`", st.op_span,
                     hint=hint or "see `docs/language.md` for the layer kinds")

    def merge(self, st: Layer, kind: MergeKind, src: tuple, scope: Scope) -> str:
        """`a, b; add`: a merge kind written as a layer merges the values flowing."""
        args, spans, ok = resolve(kind, st, scope.values, self.diagnostics, self.spec.blocks,
                                  self.spec.source)
        name = self.add(LayerNode(scope.child_name(st.op), kind, args, st.span, scope.groups,
                                  spans, invalid=not ok))
        self.merge_inputs(list(src), name, st.span, scope)
        self.graph.dataflow = True
        return name

    def merge_inputs(self, ends: list[str], merge: str, span, scope: Scope) -> None:
        """Connect `ends` to `merge`, port by port; a value read twice (`a, a; mul`) passes
        through an identity node the second time (the graph holds one edge per pair)."""
        seen = set()
        for port, end in enumerate(ends):
            if end in seen:
                again = self.graph.add(LayerNode(f"{merge}_input{port + 1}", layers.get(
                    "identity"), Args({}), span, scope.groups, inserted=True),
                    self.graph.order.index(merge))
                self.graph.connect(end, again)
                end = again
            seen.add(end)
            self.graph.connect(end, merge, port)

    def named_kind(self, st: Layer, values: dict[str, Any]) -> Layer:
        """`act` where a parameter `act` holds a layer kind or block (`block cna(c, act=relu)`):
        the statement of that kind. A parameter holding a number keeps a kind's own name
        (`dropout dropout`); one holding anything else where a layer belongs is an error."""
        if st.op not in values:
            return st
        value = values[st.op]
        if isinstance(value, str) and (value in self.spec.blocks or _is_layer(value)):
            return dataclasses.replace(st, op=str(value))
        if st.op in self.spec.blocks or _is_layer(st.op):
            return st
        known = [k for k, v in layers.REGISTRY.items() if not isinstance(v, MergeKind)]
        raise DiagnosticError(error(
            "E-UNKNOWN-LAYER", f"the parameter `{st.op}` holds {_quoted(value)}, which is not a "
            "layer kind or block", st.op_span,
            hint=(did_you_mean(str(value), known + list(self.spec.blocks))
                  if isinstance(value, str) else None) or
            f"give `{st.op}` the name of a layer kind, e.g. `{st.op}=relu`"))

    def named_args(self, kind, st: Layer, spans) -> dict[str, str]:
        """Arguments of a top-level layer written as an `arch` parameter's bare name (`linear
        num_classes`), for codegen to pass through: number arguments only."""
        by_span = {span: arg for arg, span in spans.items()}
        types = {a.name: a.type for a in kind.args}
        out = {}
        for a in st.args:
            expr = a.value if isinstance(a, Keyword) else a
            arg = by_span.get(a.span)
            if isinstance(expr, Name) and expr.name in self.graph.params and arg is not None \
                    and types[arg] in (INT, FLOAT):
                out[arg] = expr.name
        return out

    def repeat(self, st: Repeat, src: str, scope: Scope) -> str:
        count = evaluate(st.count, scope.values)
        if isinstance(count, float) and count.is_integer():
            count = int(count)
        if isinstance(count, str):  # a word, held by a parameter
            held = f"the parameter `{st.count.name}` holds" if isinstance(st.count, Name) \
                else "it is"
            raise DiagnosticError(error("E-UNKNOWN-NAME", f"repeat needs a whole number, but "
                                        f"{held} the word `{count}`", st.count.span))
        if not isinstance(count, int) or isinstance(count, bool):
            raise DiagnosticError(error("E-ARG-TYPE", f"repeat needs a whole number, got "
                                        f"{show(count)}", st.count.span))
        if count < 0:
            raise DiagnosticError(error("E-ARG-RANGE", f"repeat count {count} is negative",
                                        st.count.span))
        if st.index is not None:
            self.check_index(st.index, scope)
        estimate = len(self.graph.order) - 1 + self.repeat_size(st, count, scope.values, 0)
        if estimate > MAX_NODES:
            raise DiagnosticError(error("E-TOO-BIG", f"repeat {count_text(count)} would make the "
                                        f"network more than {MAX_NODES:,} layers (about "
                                        f"{count_text(estimate)})",
                                        st.count.span, hint="check the `repeat` counts"))
        afford(st.count.span, count, f"repeat {count_text(count)}")  # one step an iteration
        name = scope.child_name("repeat")
        gid = self.group(RepeatGroup, name, f"repeat {count}", st.span, scope, count=count)
        outer = self.child(scope, name, gid)
        for i in range(count):
            iname = f"{name}.{i}"
            igid = self.group(Iteration, iname, f"{i + 1} of {count}", st.span, outer)
            errors = len(self.diagnostics)
            inner = self.child(outer, iname, igid, names=Names(outer.names)) \
                if st.index is None else self.child(
                outer, iname, igid, {**outer.values, st.index.name: i},
                {**outer.indices, st.index.name: st.index.span}, names=Names(outer.names))
            src = self.emit(st.body, src, inner)
            if len(self.diagnostics) > errors:
                break  # every further iteration would only repeat the same errors
        return src

    def check_index(self, index: Name, scope: Scope) -> None:
        """`repeat n as i`: the index may not hide a name in scope (an enclosing repeat's
        index, a parameter), a value, a layer kind or a block."""
        name, what = index.name, None
        if name in scope.indices:
            what = f"the index of the enclosing `repeat` on line {scope.indices[name].line}"
        elif name in scope.values:
            block = next((self.graph.groups[g].block for g in reversed(scope.groups)
                          if isinstance(self.graph.groups[g], BlockCall)), None)
            mine = block is not None and name in {p.name for p in self.spec.blocks[block].params}
            what = f"a parameter of block `{block}`" if mine else "a parameter of the `arch` header"
        elif name in ("true", "false"):
            what = "a value"
        elif name in self.spec.blocks:
            what = "a block"
        elif _is_layer(name):
            what = "a layer kind"
        if what is not None:
            raise DiagnosticError(error(
                "E-DUPLICATE", f"the repeat's index `{name}` would hide `{name}`, {what}",
                index.span, hint=f"give the index a name of its own, e.g. `{_fresh(name, scope)}`"))

    def combinator(self, st: Combinator, src: Flow, scope: Scope) -> str:
        how = combinator(st.kind)
        if isinstance(src, tuple):
            raise DiagnosticError(error(
                "E-ARITY", f"`{st.kind}<` reads one value, but {flow_text(src, self.graph)}",
                st.kind_span, hint=f"go on from one of them first (`a; {st.kind}< … >`), or "
                                   f"merge them: `a, b; {st.kind}`"))
        if how is None:
            raise DiagnosticError(error("E-COMBINATOR", f"unknown combinator `{st.kind}<`",
                                        st.kind_span,
                                        hint=did_you_mean(st.kind, combinator_names()) or
                                        "the combinators are " + ", ".join(combinator_names())))
        _check_branches(st, how)
        n = len(st.branches)
        name = scope.child_name(st.kind)
        gid = self.group(CombinatorGroup, name, f"{st.kind}<…>", st.span, scope,
                         combinator=st.kind)
        inner = self.child(scope, name, gid)
        ends = []
        errors = len(self.diagnostics)
        for role, branch in zip(how.roles(n), st.branches):
            bname = f"{name}.{role}"
            bgid = self.group(Branch, bname, role, branch.span, inner, role=role)
            bscope = self.child(inner, bname, bgid, names=Names(inner.names))
            end = self.emit(branch.body, src, bscope)
            if end == src:  # the branch made no layer (e.g. `repeat 0`): pass the input through
                end = self.add(LayerNode(f"{bname}.identity", layers.get("identity"), Args({}),
                                         branch.span, bscope.groups, inserted=True))
                self.graph.connect(src, end)
            ends.append(end)
        site = MergeSite(st.kind, gid, st.kind_span, src, [b.span for b in st.branches],
                         [[Written(s.op, s.span) for s in b.body if isinstance(s, Layer)]
                          for b in st.branches], auto_shortcut=how.auto_shortcut(n))
        merge = self.add(LayerNode(f"{name}.{how.merge_name}", how.merge_kind, Args({}), st.span,
                                   inner.groups, merge=site,
                                   # a branch with errors may lack layers: no shapes to compare
                                   invalid=len(self.diagnostics) > errors))
        if site.auto_shortcut:
            ends.append(src)
        self.merge_inputs(ends, merge, st.span, inner)
        return merge

    def call(self, st: Layer, block: BlockDef, src: Flow, scope: Scope) -> Flow:
        if block.name in self.call_stack:
            chain = " → ".join(self.call_stack[self.call_stack.index(block.name):] + [block.name])
            raise DiagnosticError(error("E-RECURSION", f"block `{block.name}` calls itself "
                                        f"({chain})", st.op_span,
                                        hint="a block cannot contain itself; use `repeat` for "
                                             "repetition"))
        takes = max(1, len(block.inputs))
        if count_of(src) != takes:
            flowing = flow_text(src, self.graph) if isinstance(src, tuple) else "one flows here"
            raise DiagnosticError(error(
                "E-ARITY", f"block `{block.name}` takes {takes} value{'s' if takes > 1 else ''}, "
                f"but {flowing}", st.op_span,
                hint=f"make them the running values first: `{', '.join(n.name for n in block.inputs)}"
                     f"; {block.name} …`" if takes > 1 else
                     "go on from one of them first (`a; …`)").with_note(
                f"`{block.name}` is defined here", block.name_span))
        binding = bind_call(block, st, scope.values, self.graph.params)
        name = scope.child_name(block.name)
        gid = self.group(BlockCall, name, binding.label(block), st.span, scope,
                         block=block.name,
                         args={p.name: binding.values[p.name] for p in block.params})
        self.call_stack.append(block.name)
        first = len(self.diagnostics)
        note = (called_here(block.name), st.span)
        try:
            inner = self.child(scope, name, gid, binding.values, names=Names())
            if block.inputs:
                bind(inner.names, block.inputs, src, self.graph, lambda n: None, given=True)
            end = self.emit(block.body, src, inner)
            if block.outputs:
                ends = tuple(use(inner.names, o, self.graph, self.known) for o in block.outputs)
                end = ends if len(ends) > 1 else ends[0]
            return end
        except DiagnosticError as exc:  # too big or too deep: say through which calls
            raise DiagnosticError(exc.diagnostic.with_note(*note)) from None
        finally:
            self.call_stack.pop()
            self.diagnostics[first:] = [d.with_note(*note) for d in self.diagnostics[first:]]

    def size(self, stmts, env: dict[str, Any], depth: int = 0) -> int:
        """How many layers `stmts` will make, known before making them (1 where unknown), so
        that a runaway `repeat` is refused at once rather than after minutes of expansion."""
        total = 0
        for st in stmts:
            spend(st.span)
            if depth > 20:
                return total + 1
            if isinstance(st, Repeat):
                count = evaluate_or(st.count, env, 1)
                count = count if isinstance(count, int) and count >= 0 else 1
                total += self.repeat_size(st, count, env, depth)
            elif isinstance(st, Combinator):
                total += 1 + sum(self.size(b.body, env, depth + 1) for b in st.branches)
            elif isinstance(st, Layer) and str(env.get(st.op, st.op)) in self.spec.blocks:
                block = self.spec.blocks[str(env.get(st.op, st.op))]
                inner = bind_call(block, st, env, self.graph.params, strict=False).values
                total += self.size(block.body, inner, depth + 1)
            else:
                total += 1
            if total > MAX_NODES:
                return total
        return total


    def repeat_size(self, st: Repeat, count: int, env: dict[str, Any], depth: int) -> int:
        """The layers of `count` iterations of `st`: each iteration's own where the body may
        read the index (each one counted against the work budget, so a count too large to
        go through is refused there), else count × one."""
        if st.index is None:
            return count * self.size(st.body, env, depth + 1)
        afford(st.count.span, count, f"repeat {count_text(count)}")
        total = 0
        for i in range(count):
            total += self.size(st.body, {**env, st.index.name: i}, depth + 1)
            if total > MAX_NODES:
                break
        return total


def _is_layer(name: str) -> bool:
    kind = layers.get(name)
    return kind is not None and not isinstance(kind, MergeKind)


def evaluate_or(e, env, fallback):
    try:
        return evaluate(e, env)
    except DiagnosticError:
        return fallback


def _check_branches(st: Combinator, how) -> None:
    n = len(st.branches)
    if how.max_branches is not None and n > how.max_branches:
        message, hint = how.too_many()
        raise DiagnosticError(error("E-COMBINATOR", message, st.branches[how.max_branches].span,
                                    hint=hint))
    if n < how.min_branches:
        raise DiagnosticError(error("E-COMBINATOR", f"{st.kind} needs at least "
                                    f"{_words(how.min_branches)} branches", st.span,
                                    hint=f"separate branches with `|`: "
                                    f"`{st.kind}< identity | … >`"))
    for b in st.branches:
        if not b.body:
            raise DiagnosticError(error("E-COMBINATOR", "empty branch", b.span,
                                        hint="write `identity` for a branch that passes its "
                                             "input through"))


def _fresh(name: str, scope: Scope) -> str:
    """A name like `name` that nothing in `scope` has."""
    for candidate in ("i", "j", "k", "index", *(f"{name}{n}" for n in range(2, 100))):
        if candidate not in scope.values and candidate not in scope.indices and \
                candidate != name and not _is_layer(candidate):
            return candidate
    return f"{name}_index"


def _words(n: int) -> str:
    return {2: "two", 3: "three"}.get(n, str(n))


__all__ = ["Walk", "Scope", "MAX_NODES", "MAX_DEPTH", "Span"]


def _quoted(value) -> str:
    return f"`{value}`" if isinstance(value, str) else show(value)
