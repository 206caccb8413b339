"""Completion, document symbols, inlay hints and semantic tokens of a checked Document
(positions 1-based here; server.py converts)."""

from __future__ import annotations

import re

from lsprotocol import types as lsp

from ..graph import Branch, Iteration
from ..layers.base import fmt_shape
from .features import STATEMENT_WORDS
from .index import ARCH, Document
from .positions import Columns

# ----------------------------------------------------------------------------- completion

_STATEMENT_START = re.compile(r"(^|[;{<|])\s*[A-Za-z_0-9]*$")


def completion(doc: Document, line: int, column: int) -> list[lsp.CompletionItem]:
    """What may be written at (line, column): kinds, blocks and statement words at a
    statement's start; after a layer kind its flags, keywords and words; after `=` or in a
    value's place the parameters in scope (and an argument's choices)."""
    text = doc.lines[line - 1][:column - 1] if 0 < line <= len(doc.lines) else ""
    text = text.split("#")[0]
    scope = doc.scope_at(line)
    if _STATEMENT_START.search(text):
        return _statement_items(doc)
    fragment = re.split(r"[;{<|]", text)[-1].strip()
    op = fragment.split()[0] if fragment else ""
    keyword = re.search(r"([A-Za-z_][A-Za-z0-9_]*)=[^\s=]*$", text)
    items = _param_items(doc, scope)
    if keyword:
        return _choice_items(op, keyword.group(1)) + items
    if doc.spec is not None and op in doc.spec.blocks:
        block = doc.spec.blocks[op]
        return [lsp.CompletionItem(f"{p.name}=", kind=lsp.CompletionItemKind.Field,
                                   detail=f"parameter of block {op}", insert_text=f"{p.name}=")
                for p in block.params] + items
    return _argument_items(op) + items


def _statement_items(doc: Document) -> list[lsp.CompletionItem]:
    from ..layers import REGISTRY
    from ..layers.merge import combinator_names

    items = [lsp.CompletionItem(name, kind=lsp.CompletionItemKind.Function,
                                detail=kind.summary, documentation=_arguments_doc(kind))
             for name, kind in sorted(REGISTRY.items())]
    items += [lsp.CompletionItem(f"{name}<", kind=lsp.CompletionItemKind.Struct,
                                 detail="combinator: branches separated by |",
                                 insert_text=f"{name}< ")
              for name in combinator_names()]
    for block in (doc.spec.blocks.values() if doc.spec else ()):
        params = ", ".join(p.name for p in block.params)
        items.append(lsp.CompletionItem(block.name, kind=lsp.CompletionItemKind.Class,
                                        detail=f"block {block.name}({params})"))
    items += [lsp.CompletionItem(word, kind=lsp.CompletionItemKind.Keyword, detail=doc_)
              for word, doc_ in STATEMENT_WORDS.items()]
    return items


def _arguments_doc(kind) -> str:
    lines = []
    for a in kind.args:
        how = f"`{a.flag}N`, " if a.flag else ""
        lines.append(f"- {how}`{a.name}=`: {a.doc}")
    lines += [f"- `{w}`: {arg}={value}" for w, (arg, value) in kind.words.items()]
    return "\n".join(lines)


def _argument_items(op: str) -> list[lsp.CompletionItem]:
    from ..layers import REGISTRY

    kind = REGISTRY.get(op)
    if kind is None:
        return []
    items = []
    for a in kind.args:
        if a.flag:
            items.append(lsp.CompletionItem(a.flag, kind=lsp.CompletionItemKind.Property,
                                            detail=f"{a.name}: {a.doc}", sort_text=f"0{a.flag}"))
        items.append(lsp.CompletionItem(f"{a.name}=", kind=lsp.CompletionItemKind.Field,
                                        detail=a.doc, insert_text=f"{a.name}=",
                                        sort_text=f"1{a.name}"))
    items += [lsp.CompletionItem(w, kind=lsp.CompletionItemKind.EnumMember,
                                 detail=f"{arg}={value}", sort_text=f"2{w}")
              for w, (arg, value) in kind.words.items()]
    return items


def _choice_items(op: str, name: str) -> list[lsp.CompletionItem]:
    from ..layers import REGISTRY

    kind = REGISTRY.get(op)
    arg = next((a for a in kind.args if a.name == name), None) if kind else None
    return [lsp.CompletionItem(c, kind=lsp.CompletionItemKind.EnumMember, detail=arg.doc)
            for c in (arg.choices if arg else ())]


def _param_items(doc: Document, scope: str) -> list[lsp.CompletionItem]:
    items = []
    for name, p in doc.params_in_scope(scope).items():
        owner = "arch" if doc.spec and doc.spec.arch and p in doc.spec.arch.params else scope
        value = doc.graph.params.get(name) if doc.graph is not None and owner == "arch" else None
        detail = f"parameter of {owner}" + (f" = {value}" if value is not None else "")
        items.append(lsp.CompletionItem(name, kind=lsp.CompletionItemKind.Variable,
                                        detail=detail, sort_text=f"3{name}"))
    return items


# ----------------------------------------------------------------------------- symbols


def symbols(doc: Document, columns: Columns | None = None) -> list[lsp.DocumentSymbol]:
    """The arch header, the input, each block (its parameters inside) and each top-level
    statement, with its output shape. `columns` converts positions (code points when left
    out)."""
    from ..graph import span_text

    _range = (columns or Columns(doc.lines)).range
    spec, out = doc.spec, []
    if spec is None:
        return out
    if spec.arch is not None:
        out.append(lsp.DocumentSymbol(f"arch {spec.arch.name}", lsp.SymbolKind.Module,
                                      _range(spec.arch.span), _range(spec.arch.span)))
    if spec.input is not None:
        out.append(lsp.DocumentSymbol("input", lsp.SymbolKind.Variable, _range(spec.input.span),
                                      _range(spec.input.span),
                                      detail=fmt_shape(spec.input.dims)))
    for block in spec.blocks.values():
        params = [lsp.DocumentSymbol(p.name, lsp.SymbolKind.TypeParameter, _range(p.span),
                                     _range(p.span)) for p in block.params]
        out.append(lsp.DocumentSymbol(block.name, lsp.SymbolKind.Class, _range(block.span),
                                      _range(block.name_span), children=params))
    shapes = line_shapes(doc)
    for st in spec.body:
        name = span_text(doc.lines, st.span)[:60] or "statement"
        out.append(lsp.DocumentSymbol(name, lsp.SymbolKind.Function, _range(st.span),
                                      _range(st.span), detail=shapes.get(st.span.end_line)))
    return out


# ----------------------------------------------------------------------------- inlay hints


def line_shapes(doc: Document) -> dict[int, str]:
    """Each line's output shape: the last layer a line's statements (or the calls, repeats
    and combinators it closes) make; a line of a block body called several times shows each
    distinct shape."""
    graph = doc.graph
    if graph is None:
        return {}
    last: dict[int, dict] = {}  # line -> {instance: node}
    for nid, node in graph.layers():
        if graph.facts[nid].shape is None:
            continue
        outer = node.groups[0] if node.groups else None
        lines = {node.span.end_line if node.merge is not None else node.span.line}
        lines.update(graph.groups[g].span.end_line for g in node.groups
                     if not isinstance(graph.groups[g], (Branch, Iteration)))
        for line in lines:
            last.setdefault(line, {})[outer] = nid
    shapes = {}
    for line, by_instance in last.items():
        distinct = list(dict.fromkeys(fmt_shape(graph.facts[n].shape)
                                      for n in by_instance.values()))
        shapes[line] = ", ".join(distinct[:3]) + (", …" if len(distinct) > 3 else "")
    return shapes


def inlay_hints(doc: Document, first: int, last: int,
                columns: Columns | None = None) -> list[lsp.InlayHint]:
    """`-> 64x56x56` at the end of each line's code, lines first..last (1-based)."""
    columns = columns or Columns(doc.lines)
    hints = []
    for line, shape in sorted(line_shapes(doc).items()):
        if not first <= line <= last or line > len(doc.lines):
            continue
        code = doc.lines[line - 1].split("#")[0].rstrip()
        hints.append(lsp.InlayHint(columns.position(line, len(code) + 1), f"-> {shape}",
                                   kind=lsp.InlayHintKind.Type, padding_left=True))
    return hints


# ----------------------------------------------------------------------------- semantic tokens

TOKEN_TYPES = ["keyword", "function", "class", "parameter", "property", "enumMember", "number",
               "operator", "comment", "type", "namespace", "variable"]
# every Occurrence role (index.py) has its colour
_ROLE_TYPES = {"kind": "function", "block-call": "class", "block-def": "class",
               "combinator": "type", "param-def": "parameter", "param-use": "parameter",
               "index-def": "variable", "index-use": "variable",
               "value-def": "variable", "value-use": "variable",
               "keyword": "property", "argument": "property", "word": "enumMember"}
_LEXICAL = {"comment": "comment", "int": "number", "float": "number", "shape": "number",
            "op": "operator"}


def semantic_tokens(doc: Document, columns: Columns | None = None) -> list[int]:
    """The LSP's relative encoding of every coloured token (5 integers each); columns and
    lengths in `columns`' units (code points when left out)."""
    from ..fmt import tokens

    width = (columns or Columns(doc.lines)).width
    roles = {(o.span.line, o.span.column): _ROLE_TYPES.get(o.role) for o in doc.occurrences}
    data: list[int] = []
    prev_line, prev_col, line, line_start = 0, 0, 0, 0
    seen, seen_units = 0, 0  # the line's code points and units before the last token
    for kind, text, offset in tokens(doc.text):
        if kind == "newline":
            line, line_start, seen, seen_units = line + 1, offset + 1, 0, 0
            continue
        col = offset - line_start
        if kind == "name":
            found = roles.get((line + 1, col + 1))
            found = found or ("keyword" if text in STATEMENT_WORDS else "namespace")
        else:
            found = _LEXICAL.get(kind)
        if found is None:
            continue
        seen_units += width(doc.text[line_start + seen:offset])  # counted once per line
        seen = col
        data += [line - prev_line, seen_units - prev_col if line == prev_line else seen_units,
                 width(text), TOKEN_TYPES.index(found), 0]
        prev_line, prev_col = line, seen_units
    return data


__all__ = ["completion", "symbols", "line_shapes", "inlay_hints", "semantic_tokens",
           "TOKEN_TYPES", "ARCH"]
