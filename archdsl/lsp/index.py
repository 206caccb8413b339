"""One checked document as the language server sees it: the spec, the layer graph, the
diagnostics, and an index of every name in the text (what it is, where it is defined).

No editor protocol here: positions are archdsl's (1-based line and column), and the server
(server.py) converts them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..diagnostics import Diagnostic, Span
from ..syntax_tree import (Arith, BinOp, BlockDef, Call, Combinator, Compare, IfElse, Keyword,
                           Layer, Logic, Name, Neg, Param, Repeat, Spec, Values)

ARCH = ""  # the scope of the `arch` header's parameters


@dataclass(frozen=True)
class Occurrence:
    """A name in the text: what it is (`kind`, `block-def`, `block-call`, `combinator`,
    `param-def`, `param-use`, `index-def`, `index-use` (a `repeat … as i` index: the statement
    is that repeat), `keyword` (a block call's), `argument` (a kind's keyword), `word` (a flag
    such as `k3` or a bare word), `value-def` (`-> a`, a block's input) and `value-use` (`a`
    as a statement, in `a, b`, in `output` or a block's outputs)), its name, its scope (the
    block it
    belongs to, ARCH for the header's parameters), and the statement it belongs to."""

    role: str
    name: str
    span: Span
    scope: str | None = None
    statement: object = None


@dataclass
class Document:
    """A document's text and everything one check found in it."""

    text: str
    file: str
    spec: Spec | None
    graph: object
    diagnostics: list[Diagnostic]
    occurrences: list[Occurrence] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def at(self, line: int, column: int) -> Occurrence | None:
        """The name covering 1-based (line, column), or the one just before the cursor."""
        for occ in self.occurrences:
            s = occ.span
            if s.line == line and s.column <= column <= s.end_column:
                return occ
        return None

    def scope_at(self, line: int) -> str:
        """The block whose definition holds `line` (ARCH outside every block)."""
        if self.spec is not None:
            for block in self.spec.blocks.values():
                if block.span.line <= line <= block.span.end_line:
                    return block.name
        return ARCH

    def params_in_scope(self, scope: str) -> dict[str, Param]:
        """The parameters a name can refer to in `scope`: the block's, then the header's."""
        found: dict[str, Param] = {}
        if self.spec is not None and self.spec.arch is not None:
            found.update((p.name, p) for p in self.spec.arch.params)
        if self.spec is not None and scope in self.spec.blocks:
            found.update((p.name, p) for p in self.spec.blocks[scope].params)
        return found


def check(text: str, file: str, previous: Document | None = None) -> Document:
    """Check `text` as `archdsl check` does and index it. When the text does not parse, the
    index of `previous` (the last version that did) is kept, so that navigation still works."""
    from ..network import analyse_graph
    from ..syntax import normalise_source

    from ..network import MAX_SPEC_BYTES

    spec, graph, diagnostics = analyse_graph(text, file)  # it normalises the text, once
    if spec is None and len(text) <= MAX_SPEC_BYTES:
        from ..syntax import parse

        spec = parse(text, file)[0]  # a spec whose later stages failed still has its names
    text = normalise_source(text)  # the text the spans count in
    doc = Document(text, file, spec, graph, diagnostics, lines=text.split("\n"))
    if spec is not None:
        doc.occurrences = _index(spec)
    return keep_names(doc, previous)


def keep_names(doc: Document, previous: Document | None) -> Document:
    """`doc`, with the spec and index of `previous` when `doc`'s text does not parse."""
    if doc.spec is None and previous is not None:
        doc.spec, doc.occurrences = previous.spec, previous.occurrences
    return doc


def name_span(param: Param) -> Span:
    """The span of a parameter's name (its Span covers `name=default`)."""
    s = param.span
    return Span(s.file, s.line, s.column, s.line, s.column + len(param.name))


def _index(spec: Spec) -> list[Occurrence]:
    from ..layers import REGISTRY

    found: list[Occurrence] = []
    header = {p.name for p in spec.arch.params} if spec.arch else set()
    for p in spec.arch.params if spec.arch else ():
        found.append(Occurrence("param-def", p.name, name_span(p), ARCH))
        _expressions(p.default, ARCH, header, found, None)
    for block in spec.blocks.values():
        found.append(Occurrence("block-def", block.name, block.name_span, block.name, block))
        found += [Occurrence("value-def", n.name, n.span, block.name, block)
                  for n in block.inputs]
        found += [Occurrence("value-use", n.name, n.span, block.name, block)
                  for n in block.outputs]
        names = {p.name for p in block.params}
        for p in block.params:
            found.append(Occurrence("param-def", p.name, name_span(p), block.name))
            _expressions(p.default, block.name, header | names, found, None)
        _statements(block.body, block.name, spec, header | names, found, REGISTRY,
                    _value_names(block.body, block.inputs))
    _statements(spec.body, ARCH, spec, header, found, REGISTRY, _value_names(spec.body))
    for item in spec.outputs.items if spec.outputs else ():
        found.append(Occurrence("value-use", item.name.name, item.name.span, ARCH, spec.outputs))
    found.sort(key=lambda o: (o.span.line, o.span.column))
    return found


def _statements(body, scope, spec, names, found, registry, values=frozenset()) -> None:
    stack = [(st, {}) for st in reversed(body)]  # each with the repeat indices in scope
    while stack:
        st, indices = stack.pop()
        found += [Occurrence("value-def", n.name, n.span, scope, st)
                  for n in getattr(st, "names", ())]
        if isinstance(st, Values):
            found += [Occurrence("value-use", n.name, n.span, scope, st) for n in st.values]
        elif isinstance(st, Arith):  # `y - x`: value names read, numbers as any argument
            _expressions(st.expr, scope, names, found, st, indices, values)
        elif isinstance(st, Layer) and not st.args and st.op in values:
            found.append(Occurrence("value-use", st.op, st.op_span, scope, st))
        elif isinstance(st, Layer):
            role = "block-call" if st.op in spec.blocks else "kind"
            found.append(Occurrence(role, st.op, st.op_span, scope, st))
            callee = st.op if role == "block-call" else None
            for arg in st.args:
                if isinstance(arg, Keyword):
                    k = arg.span
                    found.append(Occurrence("keyword" if callee else "argument", arg.name, Span(
                        k.file, k.line, k.column, k.line, k.column + len(arg.name)),
                        callee or scope, st))
                    _expressions(arg.value, scope, names, found, st, indices)
                else:
                    _expressions(arg, scope, names, found, st, indices)
        elif isinstance(st, Repeat):
            _expressions(st.count, scope, names, found, None, indices)
            inner = indices
            if st.index is not None:  # `repeat n as i`: i is defined here, for the body
                found.append(Occurrence("index-def", st.index.name, st.index.span, scope, st))
                inner = {**indices, st.index.name: st}
            stack.extend((b, inner) for b in reversed(st.body))
        elif isinstance(st, Combinator):
            found.append(Occurrence("combinator", st.kind, st.kind_span, scope, st))
            for branch in reversed(st.branches):
                stack.extend((b, indices) for b in reversed(branch.body))


def _value_names(body, inputs=()) -> set[str]:
    """The value names a body (and the bodies inside it) gives, and a block's inputs."""
    from ..expand.named import all_names

    return set(all_names(Spec("", "", body=tuple(body)))) | {n.name for n in inputs}


def _expressions(expr, scope, names, found, statement, indices=None, values=()) -> None:
    indices = indices or {}
    stack = [expr] if expr is not None else []
    while stack:
        e = stack.pop()
        if isinstance(e, Name):
            if e.name in values and e.name not in names and e.name not in indices:
                found.append(Occurrence("value-use", e.name, e.span, scope, statement))
            elif e.name in indices:  # a repeat's index: its Occurrence holds that repeat
                found.append(Occurrence("index-use", e.name, e.span, scope, indices[e.name]))
            elif e.name in names:
                found.append(Occurrence("param-use", e.name, e.span, scope, statement))
            else:  # a flag (`k3`) or a word (`nobias`) of the statement's kind
                found.append(Occurrence("word", e.name, e.span, scope, statement))
        elif isinstance(e, BinOp):
            stack += [e.right, e.left]
        elif isinstance(e, Neg):
            stack.append(e.operand)
        elif isinstance(e, Compare):
            stack += [e.right, e.left]
        elif isinstance(e, IfElse):
            stack += [e.other, e.then, e.condition]
        elif isinstance(e, Call):
            stack += list(reversed(e.args))
        elif isinstance(e, Logic):
            stack += list(reversed(e.operands))


def definition_of(doc: Document, occ: Occurrence) -> tuple[str, str, Span] | None:
    """(role, name, span) of what `occ` refers to: a block's name or a parameter's."""
    spec = doc.spec
    if spec is None:
        return None
    if occ.role in ("block-def", "block-call") and occ.name in spec.blocks:
        return "block", occ.name, spec.blocks[occ.name].name_span
    if occ.role in ("value-def", "value-use"):
        span = _value_definition(doc, occ)
        return None if span is None else ("value", f"{occ.scope}.{occ.name}@{span.line}:"
                                                   f"{span.column}", span)
    if occ.role in ("index-def", "index-use"):  # the repeat that names it, by its place
        span = occ.statement.index.span
        return "index", f"{occ.name}@{span.line}:{span.column}", span
    if occ.role in ("param-def", "param-use", "keyword"):
        scope = occ.scope
        if occ.role == "param-use" and scope != ARCH and scope in spec.blocks and \
                occ.name not in {p.name for p in spec.blocks[scope].params}:
            scope = ARCH  # a block body reading the header's parameter
        params = spec.arch.params if scope == ARCH and spec.arch else \
            spec.blocks[scope].params if scope in spec.blocks else ()
        for p in params:
            if p.name == occ.name:
                return "param", f"{scope}.{p.name}", name_span(p)
    return None


def _value_definition(doc: Document, occ: Occurrence) -> Span | None:
    """Where the value `occ` names is named: the last `-> name` (or block input) of its
    scope before it, else the first after it (a block header's outputs come first)."""
    if occ.role == "value-def":
        return occ.span
    defs = [o.span for o in doc.occurrences if o.role == "value-def" and o.name == occ.name
            and o.scope == occ.scope]
    before = [s for s in defs if (s.line, s.column) < (occ.span.line, occ.span.column)]
    return before[-1] if before else (defs[0] if defs else None)


def references(doc: Document, occ: Occurrence, declaration: bool = True) -> list[Span]:
    """Every place that refers to what `occ` refers to (its definition first if wanted)."""
    target = definition_of(doc, occ)
    if target is None:
        return []
    spans = [target[2]] if declaration else []
    for other in doc.occurrences:
        if other.role in ("block-def", "param-def", "index-def", "value-def"):
            continue
        found = definition_of(doc, other)
        if found is not None and found[:2] == target[:2]:
            spans.append(other.span)
    return spans


def block_of(spec: Spec | None, name: str) -> BlockDef | None:
    return spec.blocks.get(name) if spec is not None else None
