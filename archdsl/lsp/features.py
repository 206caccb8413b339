"""What the language server answers, worked out from a checked Document: hover text,
completions, document symbols, inlay hints and semantic tokens. Positions are archdsl's
(1-based); server.py converts them to the editor protocol's."""

from __future__ import annotations

import re

from ..codes import explain_code
from ..graph import BlockCall
from ..layers.base import fmt_shape
from ..number_text import jump_text
from ..vocabulary import STATEMENTS, statement_keywords
from .index import ARCH, Document, Occurrence, definition_of

# The words that start a statement, with their hover text: completion offers them.
STATEMENT_WORDS = {word: STATEMENTS[word] for word in statement_keywords()}
_FLAG = re.compile(r"([a-z])([0-9]+(?:x[0-9]+)*)$")


# ----------------------------------------------------------------------------- hover


def hover(doc: Document, line: int, column: int) -> str | None:
    """Markdown for the thing at (line, column): diagnostics there, then the name."""
    parts = [f"**{d.code}**: {explain_code(d.code) or d.message}" for d in doc.diagnostics
             if d.span is not None and _covers(d.span, line, column)]
    occ = doc.at(line, column)
    if occ is not None:
        text = _HOVERS.get(occ.role, lambda d, o: None)(doc, occ)
        if text:
            parts.insert(0, text)
    elif not parts and doc.lines and 0 < line <= len(doc.lines):
        word = _word_at(doc.lines[line - 1], column)
        if word in STATEMENTS:
            parts.append(STATEMENTS[word])
        elif explain_code(word or ""):
            parts.append(f"**{word}**: {explain_code(word)}")
    return "\n\n---\n\n".join(parts) or None


def _covers(span, line: int, column: int) -> bool:
    return (span.line, span.column) <= (line, column) <= (span.end_line, span.end_column)


def _word_at(text: str, column: int) -> str | None:
    for m in re.finditer(r"[A-Za-z_][A-Za-z0-9_-]*", text):
        if m.start() < column <= m.end() + 1:
            return m.group()
    return None


def _facts_line(f) -> str:
    rf = ""
    if f.rf:
        (h, w), (sh, sw) = f.rf
        jump = jump_text(sh) if sh == sw else f"{jump_text(sh)}x{jump_text(sw)}"
        rf = f" · rf {h if h == w else f'{h}x{w}'} /{jump}"
    return (f"output **{fmt_shape(f.shape)}** · params {f.params:,} · MACs {f.macs:,}{rf}")


def _instances(doc: Document, statement, merge: bool) -> list:
    graph = doc.graph
    if graph is None or statement is None:
        return []
    return [graph.facts[nid] for nid, node in graph.layers()
            if node.kind is not None and node.span == statement.span and not node.inserted
            and (node.merge is not None) == merge]


def _with_instances(head: str, facts: list) -> str:
    if not facts:
        return head + "\n\n(not checked: the spec has errors before this layer)"
    text = head + "\n\n" + _facts_line(facts[0])
    if len(facts) > 1:
        shapes = list(dict.fromkeys(fmt_shape(f.shape) for f in facts))
        more = ", ".join(shapes[:4]) + (", …" if len(shapes) > 4 else "")
        text += f"\n\n{len(facts)} instances (block calls, repeats); outputs {more}"
    return text


def _hover_kind(doc: Document, occ: Occurrence) -> str:
    from ..layers import REGISTRY

    from .. import prelude

    kind = REGISTRY.get(occ.name)
    if kind is None and prelude.block(occ.name) is not None:
        return _hover_call(doc, occ).replace("block call", "prelude block (archdsl/prelude.arch)",
                                             1)
    head = f"**{occ.name}**: {kind.summary}" if kind else f"**{occ.name}**: unknown layer kind"
    return _with_instances(head, _instances(doc, occ.statement, merge=False))


def _hover_combinator(doc: Document, occ: Occurrence) -> str:
    head = f"**{occ.name}<…>**: combinator; every branch reads the same input"
    return _with_instances(head, _instances(doc, occ.statement, merge=True))


def _hover_call(doc: Document, occ: Occurrence) -> str:
    graph, statement = doc.graph, occ.statement
    head = f"**{occ.name}**: block call"
    if graph is None:
        return head
    calls = [g for g in graph.groups.values()
             if isinstance(g, BlockCall) and g.span == statement.span]
    lines = [head]
    for group in calls[:4]:
        members = [nid for nid, node in graph.layers() if group.id in node.groups]
        if not members:
            continue
        first_inputs = graph.inputs(members[0])
        x = graph.shape(first_inputs[0]) if first_inputs else None
        params = sum(graph.facts[n].params for n in members)
        macs = sum(graph.facts[n].macs for n in members)
        lines.append(f"`{group.label}`: {fmt_shape(x)} -> **{fmt_shape(graph.shape(members[-1]))}**"
                     f" · {len(members)} layers · params {params:,} · MACs {macs:,}")
    return "\n\n".join(lines)


def _hover_block(doc: Document, occ: Occurrence) -> str:
    block = doc.spec.blocks.get(occ.name) if doc.spec else None
    if block is None:
        return f"**{occ.name}**"
    calls = sum(1 for o in doc.occurrences if o.role == "block-call" and o.name == occ.name)
    return (f"**block {_signature(doc, block)}**\n\ncalled {calls} time{'s' if calls != 1 else ''}"
            " in the file")


def _signature(doc: Document, block) -> str:
    params = ", ".join(_param_text(doc, p) for p in block.params)
    return f"{block.name}({params})"


def _param_text(doc: Document, p) -> str:
    from ..graph import span_text

    return span_text(doc.lines, p.span) if p.span else p.name


def _hover_param(doc: Document, occ: Occurrence) -> str | None:
    target = definition_of(doc, occ)
    if target is None:
        return None
    scope, name = target[1].split(".", 1)
    if scope == ARCH:
        value = None if doc.graph is None else doc.graph.params.get(name)
        shown = f" = **{value}**" if value is not None else ""
        return f"**{name}**: parameter of `arch`{shown}"
    values = []
    if doc.graph is not None:
        for g in doc.graph.groups.values():
            if isinstance(g, BlockCall) and g.block == scope and name in g.args:
                values.append(str(g.args[name]))
    seen = ", ".join(list(dict.fromkeys(values))[:6])
    return f"**{name}**: parameter of block `{scope}`" + (f"; at its calls: {seen}" if seen else "")


def _kind_of(occ: Occurrence):
    from ..layers import REGISTRY

    statement = occ.statement
    return REGISTRY.get(getattr(statement, "op", None))


def _hover_word(doc: Document, occ: Occurrence) -> str | None:
    kind = _kind_of(occ)
    if kind is None:
        return None
    args = {a.name: a for a in kind.args}
    m = _FLAG.match(occ.name)
    if m and m.group(1) in kind.flags():
        arg = args[kind.flags()[m.group(1)]]
        return f"`{occ.name}`: {arg.name} = {m.group(2)} ({arg.doc})"
    if occ.name in kind.words:
        arg_name, value = kind.words[occ.name]
        return f"`{occ.name}`: {arg_name}={value} ({args[arg_name].doc})"
    return None


def _hover_argument(doc: Document, occ: Occurrence) -> str | None:
    kind = _kind_of(occ)
    arg = next((a for a in kind.args if a.name == occ.name), None) if kind else None
    return f"`{arg.name}`: {arg.doc}" if arg else None


def _hover_value(doc: Document, occ: Occurrence) -> str | None:
    """A named value: the layer that makes it and its shape (each call's, in a block)."""
    target = definition_of(doc, occ)
    graph = doc.graph
    if target is None or graph is None:
        return f"value `{occ.name}`"
    made = [v for v in graph.names if v.span == target[2]]
    shapes = sorted({fmt_shape(graph.shape(v.node)) for v in made})
    head = f"value `{occ.name}`, named on line {target[2].line}"
    if not made:
        return head
    return head + f": {' or '.join(shapes)}, made by `{made[0].node}`" + (
        f" ({len(made)} times: one per call or time round)" if len(made) > 1 else "")


_HOVERS = {"kind": _hover_kind, "combinator": _hover_combinator, "block-call": _hover_call,
           "block-def": _hover_block, "param-def": _hover_param, "param-use": _hover_param,
           "keyword": _hover_param, "word": _hover_word, "argument": _hover_argument,
           "value-def": _hover_value, "value-use": _hover_value}
