"""Named values: `-> a` names what a statement leaves, `a` (or `a, b`) makes named values the
running ones again, `output a, b` picks the network's outputs.

A name lives in the body that makes it (the file, a block's body, one time round a repeat,
one branch) and in the bodies inside that one; a block's body sees only its own inputs. A
value is used only after the statement that makes it, so the graph cannot have a cycle. The
expansion (walk.py) binds and looks names up here; after it, `unused` reports the names and
the layers whose output nothing reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..diagnostics import Diagnostic, DiagnosticError, Span, did_you_mean, error, warning
from ..graph import GraphOutput, NamedValue

# Several values flowing on together (a block's outputs, `a, b`), or the one running value.
Flow = str | tuple[str, ...]


@dataclass
class Names:
    """The values named in one body, and the body around it whose names it also sees."""

    up: "Names | None" = None
    own: dict[str, NamedValue] = field(default_factory=dict)

    def find(self, name: str) -> NamedValue | None:
        names: Names | None = self
        while names is not None:
            if name in names.own:
                return names.own[name]
            names = names.up
        return None

    def visible(self) -> list[str]:
        out, names = [], self
        while names is not None:
            out += list(names.own)
            names = names.up
        return out


def count_of(flow: Flow) -> int:
    return len(flow) if isinstance(flow, tuple) else 1


def flow_text(flow: Flow, graph) -> str:
    """`2 values flow here (b1, b2)`: the running values, by the names they go by."""
    named = {v.node: v.name for v in graph.names}
    shown = ", ".join(named.get(n, n) for n in flow)
    return f"{len(flow)} values flow here ({shown})"


def bind(names: Names, targets, flow: Flow, graph, taken, given: bool = False) -> None:
    """`-> a, b`: name the running values (`given`: a block's inputs, named in its header).
    `taken(name)` says what else a name would hide (a layer kind, a block, a parameter) or
    None."""
    nodes = flow if isinstance(flow, tuple) else (flow,)
    if len(targets) != len(nodes):
        raise DiagnosticError(error(
            "E-ARITY", f"{_count(len(targets), 'name')} for {_count(len(nodes), 'value')}",
            targets[0].span, hint=f"name each value the statement leaves: "
                                  f"`-> {', '.join(f'v{i + 1}' for i in range(len(nodes)))}`"))
    for target, node in zip(targets, nodes):
        before = names.find(target.name)
        other = taken(target.name)
        if before is not None:
            where = "in this body" if target.name in names.own else "in an enclosing body"
            raise DiagnosticError(error(
                "E-DUPLICATE", f"`{target.name}` is already named on line {before.span.line} "
                f"({where}): a name stands for one value", target.span,
                hint=f"give this value a name of its own, e.g. `{_fresh(target.name, names)}`"))
        if other is not None:
            raise DiagnosticError(error(
                "E-DUPLICATE", f"`{target.name}` is {other}, so a value cannot take that name",
                target.span, hint=f"name the value e.g. `{target.name}_out`"))
        value = NamedValue(target.name, node, target.span, given=given)
        names.own[target.name] = value
        graph.names.append(value)


def use(names: Names, name, graph, known: dict[str, Span]) -> str:
    """The node a name written as a value stands for (its use recorded), or E-UNKNOWN-NAME
    saying why it cannot be seen here."""
    value = names.find(name.name)
    if value is not None:
        value.uses.append(name.span)
        graph.dataflow = True
        return value.node
    raise DiagnosticError(unknown(name.name, name.span, names, known))


def unknown(name: str, span: Span, names: Names, known: dict[str, Span],
            others: list[str] = ()) -> Diagnostic:
    """Why `name` is no value here: named later, named in another body, or not at all."""
    made = known.get(name)
    if made is not None and (made.line, made.column) > (span.line, span.column):
        return error("E-UNKNOWN-NAME", f"`{name}` is used before it is made", span,
                     hint=f"`{name}` is named on line {made.line}: move this use after it "
                          "(a value exists once the statement that makes it has run)")
    if made is not None:
        return error("E-UNKNOWN-NAME", f"`{name}` is not seen here", span,
                     hint=f"`{name}` is named on line {made.line}, inside another body: a name "
                          "is seen in the body that makes it and the bodies inside that one "
                          "(give a block the values it needs as inputs: "
                          "`block name(c) a, b { … }`)")
    return error("E-UNKNOWN-NAME", f"unknown name `{name}`", span,
                 hint=did_you_mean(name, names.visible() + list(others)) or
                 "name a value where it is made, `conv 64 k3 -> a`, then use it: `a; relu`")


def outputs(decl, names: Names, end: Flow, graph, known, diagnostics,
            last: Span | None = None) -> list[GraphOutput]:
    """The network's outputs: `output a, b aux=0.3` or else the running value at the end
    (`last`, the statement that leaves it)."""
    if decl is None:
        if isinstance(end, tuple):
            if not any(d.is_error for d in diagnostics):
                named = {v.node: v.name for v in graph.names}
                diagnostics.append(error(
                    "E-ARITY", f"the network ends with {len(end)} values ("
                    f"{', '.join(named.get(n, n) for n in end)}) and no `output` line", last,
                    hint="say which are its outputs, the main one first: `output a, b`"))
            return [GraphOutput("output", end[0])]
        return [GraphOutput("output", end)]
    found, seen = [], {}
    for item in decl.items:
        try:
            node = use(names, item.name, graph, known)
        except DiagnosticError as exc:
            diagnostics.append(exc.diagnostic)
            continue
        if item.name.name in seen:
            diagnostics.append(error("E-DUPLICATE", f"`{item.name.name}` is an output twice",
                                     item.name.span, hint="name each output once"))
            continue
        seen[item.name.name] = item
        found.append(GraphOutput(item.name.name, node, _aux(item, diagnostics, found),
                                 item.name.span))
    if len(found) > 1:
        graph.dataflow = True
    return found or [GraphOutput("output", end[0] if isinstance(end, tuple) else end)]


def _aux(item, diagnostics, found) -> float | None:
    """`aux=0.3`: an output used only in training, its loss weighted 0.3."""
    weight = None
    for option in item.options:
        value = getattr(option.value, "value", None)
        if option.name != "aux":
            diagnostics.append(error("E-UNKNOWN-ARG", f"an output has no option `{option.name}`",
                                     option.span, hint="`aux=0.3` marks an output used only in "
                                                       "training, its loss weighted 0.3"))
        elif not isinstance(value, (int, float)) or value < 0:
            diagnostics.append(error("E-ARG-TYPE", "`aux` takes the weight of the output's loss, "
                                     "a number of at least 0", option.value.span,
                                     hint="e.g. `aux=0.3` (GoogLeNet's)"))
        elif not found:
            diagnostics.append(error("E-ARG-RANGE", "the first output is the main one and cannot be "
                                     "an auxiliary one", option.span,
                                     hint="list the main output first: `output logits, aux "
                                          "aux=0.3`"))
        else:
            weight = float(value)
    return weight


def unused(graph, outputs_: list[GraphOutput]) -> list[Diagnostic]:
    """W-UNUSED for each name nothing reads and each layer whose output goes nowhere (once per
    place in the file, however many times a block or repeat made it)."""
    ends = {o.node for o in outputs_}
    found, said = [], set()
    by_span: dict[Span, list[NamedValue]] = {}
    for value in graph.names:
        by_span.setdefault(value.span, []).append(value)
    for span, values in by_span.items():
        if not any(v.uses or v.given or v.node in ends for v in values):
            said.add(values[0].node)
            found.append(warning("W-UNUSED", f"`{values[0].name}` is named but never used",
                                 span, hint=f"use it (`{values[0].name}; …`, or as an output: "
                                            f"`output …, {values[0].name}`), or drop the name"))
    spans = set()
    for nid, node in graph.layers():
        if graph.successors(nid) or nid in ends or nid in said or node.inserted or \
                node.span in spans:
            continue
        spans.add(node.span)
        what = "the input" if node.kind is None else f"`{graph.source_text(node.span)}`"
        found.append(warning("W-UNUSED", f"the output of {what} is never used", node.span,
                             hint="name it (`-> x`) and use it, or remove it"))
    return found


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def _fresh(name: str, names: Names) -> str:
    taken = set(names.visible())
    return next(f"{name}{i}" for i in range(2, 1000) if f"{name}{i}" not in taken)


def all_names(spec) -> dict[str, Span]:
    """Every name a spec gives a value (`-> a`, a block's inputs), with the first place."""
    from ..syntax_tree import Combinator, Repeat

    found: dict[str, Span] = {}
    todo = [spec.body, *(b.body for b in spec.blocks.values())]
    for block in spec.blocks.values():
        for n in block.inputs:
            found.setdefault(n.name, n.span)
    while todo:
        for st in todo.pop():
            for n in getattr(st, "names", ()):
                found.setdefault(n.name, n.span)
            if isinstance(st, Repeat):
                todo.append(st.body)
            elif isinstance(st, Combinator):
                todo.extend(b.body for b in st.branches)
    return found


def port_problems(spec, block) -> list[Diagnostic]:
    """A block's header names (`block f(c) a, b -> p { … }`): its inputs once each, and none
    the name of a parameter, block, function or layer kind."""
    from .. import layers

    found, seen = [], set()
    params = {p.name for p in block.params}
    for name in block.inputs:
        other = ("a parameter of the block" if name.name in params else "a block"
                 if name.name in spec.blocks else "a function" if name.name in spec.functions
                 else "a layer kind" if layers.get(name.name) is not None else None)
        if name.name in seen:
            found.append(error("E-DUPLICATE", f"the block takes `{name.name}` twice", name.span,
                               hint="give each input a name of its own"))
        elif other is not None:
            found.append(error("E-DUPLICATE", f"`{name.name}` is {other}, so an input cannot "
                               "take that name", name.span,
                               hint=f"name the input e.g. `{name.name}_in`"))
        seen.add(name.name)
    return found
